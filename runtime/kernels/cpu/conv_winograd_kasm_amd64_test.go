//go:build amd64 && !purego

package cpu

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// winoOut4HW returns winoOut4AVX512 as checkOut4 calls it, when this CPU runs AVX-512 (nil
// otherwise).
func winoOut4HW() func(c out4Case, mm, y []float32) {
	if isa.Selected().Max < isa.AVX512 {
		return nil
	}
	return func(c out4Case, mm, y []float32) {
		consts := make([]float32, winoOut4Consts)
		winoOut4Fill(consts, c.bias, c.relu)
		tmask, fmask := winoOut4Masks(c.n)
		winoOut4AVX512(&mm[0], c.ps, c.n, &y[0], c.ldy, &consts[0], tmask, fmask)
	}
}

// winoInHW returns winoIn4AVX512 and winoIn2AVX512 as checkIn calls them, when this CPU runs
// AVX-512 (nil otherwise).
func winoInHW() func(c inCase, d inData) {
	if isa.Selected().Max < isa.AVX512 {
		return nil
	}
	return func(c inCase, d inData) {
		b := inBlock(c)
		var x [6]*float32
		for r := range x {
			x[r] = &d.zeros[0]
			if r < c.m+2 && c.off[r] >= 0 {
				x[r] = &d.item[c.off[r]]
			}
		}
		scale, shift := &b.one, &b.zero
		if c.scaled {
			scale, shift = &d.scale[0], &d.shift[0]
		}
		k := winoIn4AVX512
		if c.m == 2 {
			k = winoIn2AVX512
		}
		k(&d.rows[c.ulo], &d.rows[0], x[0], x[1], x[2], x[3], x[4], x[5], scale, shift, &d.v[0], &b)
	}
}

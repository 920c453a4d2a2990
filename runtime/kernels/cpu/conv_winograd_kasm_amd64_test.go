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

//go:build amd64 && !purego

package cpu

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// dwRowsHW returns the wrapper of the assembly kernel called name (dwRowsAsm2, dwRowsAsm512),
// when this CPU runs its level (nil otherwise).
func dwRowsHW(name string) func(dst, src, w []float32, b float32, cl dwClamp, g dwGeom) {
	k, l := dwRowsAsm2, isa.AVX2
	if name == "dwRowsAVX512" {
		k, l = dwRowsAsm512, isa.AVX512
	}
	if isa.Selected().Max < l {
		return nil
	}
	return k
}

// dwSplitHW returns dwSplitAsm512 when this CPU runs AVX-512 (nil otherwise).
func dwSplitHW() func(e, o, x []float32) {
	if isa.Selected().Max < isa.AVX512 {
		return nil
	}
	return dwSplitAsm512
}

// dwChansHW returns dwChansAsm512 when this CPU runs AVX-512 (nil otherwise).
func dwChansHW() func(pl *dwPlan, x, y, w, b []float32, nch int, p []float32, cl dwClamp) {
	if isa.Selected().Max < isa.AVX512 {
		return nil
	}
	return dwChansAsm512
}

//go:build amd64 && !purego

package cpu

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// avg2x2HW returns the AVX-512 plane kernel's wrapper and the AVX2 one (whose bits it must
// give), each nil when this CPU does not run its level.
func avg2x2HW() (avx512, avx2 func(dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32)) {
	if isa.Selected().Max >= isa.AVX512 {
		avx512 = avg2x2PlaneAsm512
	}
	if isa.Selected().Max >= isa.AVX2 {
		avx2 = avg2x2PlaneAsm2
	}
	return avx512, avx2
}

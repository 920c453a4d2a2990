//go:build amd64 && !purego

package cpu

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// dw3x3HW returns the wrapper of the assembly kernel called name (dw3x3Asm2, dw3x3Asm512), when
// this CPU runs its level (nil otherwise).
func dw3x3HW(name string) func(dst, src, w []float32, b float32, relu bool, g dwGeom) {
	k, l := dw3x3Asm2, isa.AVX2
	if name == "dw3x3AVX512" {
		k, l = dw3x3Asm512, isa.AVX512
	}
	if isa.Selected().Max < l {
		return nil
	}
	return k
}

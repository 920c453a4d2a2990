//go:build amd64 && !purego

package cpu

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// maxTapsHW returns the Go wrapper of the AVX-512 plane kernel called name (maxTapsAVX512,
// maxTaps2AVX512) when this CPU runs AVX-512 (nil otherwise).
func maxTapsHW(name string) func(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	if isa.Selected().Max < isa.AVX512 {
		return nil
	}
	if name == "maxTaps2AVX512" {
		return maxTaps2Asm512
	}
	return maxTapsAsm512
}

// poolTabHW is the table the assembly reads, which the interpreter tests compare with
// poolasm.Table.
var poolTabHW = poolTab[:]

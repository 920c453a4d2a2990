//go:build amd64 && !purego

package gemm

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// hwCode returns the assembly that gemmasm describes, when this CPU runs it (ok false
// otherwise): kern[w-1] computes 8*w columns.
func hwCode() (kern [NR / 8]kernelFunc, direct directFunc, pack packFunc, ok bool) {
	if isa.Selected().Max < isa.AVX2 {
		return kern, nil, nil, false
	}
	return kernelsAVX2, kernDirectAVX2, packAVX2, true
}

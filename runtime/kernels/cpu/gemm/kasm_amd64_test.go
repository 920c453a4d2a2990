//go:build amd64 && !purego

package gemm

import (
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm/internal/gemmasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// hwCode returns the assembly that gemmasm describes for shape s (the AVX2 or the AVX-512 file),
// when this CPU runs it (ok false otherwise).
func hwCode(s gemmasm.Shape) (kern *hwKernels, pack packFunc, ok bool) {
	if s.Lanes == 16 {
		if isa.Selected().Max < isa.AVX512 {
			return nil, nil, false
		}
		return &hwKernels{kernAVX512, kernDirectAVX512, edgeKernelsAVX512}, packAVX512, true
	}
	if isa.Selected().Max < isa.AVX2 {
		return nil, nil, false
	}
	return &hwKernels{kernAVX2, kernDirectAVX2, edgeKernelsAVX2}, packAVX2, true
}

// gemvHW is the signature of the generated matrix-vector kernels.
type gemvHW func(k int, a, x *float32, idx *int32, out *float32)

// hwGemv returns the matrix-vector kernel of the AVX-512 file when this CPU runs it (ok false
// otherwise).
func hwGemv(s gemmasm.Shape) (gemvHW, bool) {
	if s.Lanes != 16 || isa.Selected().Max < isa.AVX512 {
		return nil, false
	}
	return gemvAVX512, true
}

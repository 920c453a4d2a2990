//go:build !amd64 || purego

package gemm

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm/internal/gemmasm"

// hwCode reports that this build has no assembly: the interpreter checks run alone.
func hwCode(gemmasm.Shape) (kern *hwKernels, pack packFunc, ok bool) {
	return nil, nil, false
}

// gemvHW is the signature of the generated matrix-vector kernels.
type gemvHW func(k int, a, x *float32, idx *int32, out *float32)

// hwGemv reports that this build has no assembly.
func hwGemv(gemmasm.Shape) (gemvHW, bool) { return nil, false }

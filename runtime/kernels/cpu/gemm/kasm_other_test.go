//go:build !amd64 || purego

package gemm

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm/internal/gemmasm"

// hwCode reports that this build has no assembly: the interpreter checks run alone.
func hwCode(gemmasm.Shape) (kern []kernelFunc, direct directFunc, pack packFunc, ok bool) {
	return nil, nil, nil, false
}

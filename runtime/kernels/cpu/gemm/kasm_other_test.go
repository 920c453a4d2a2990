//go:build !amd64 || purego

package gemm

// hwCode reports that this build has no assembly: the interpreter checks run alone.
func hwCode() (kern [NR / 8]kernelFunc, direct directFunc, pack packFunc, ok bool) {
	return kern, nil, nil, false
}

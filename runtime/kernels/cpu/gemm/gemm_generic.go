//go:build !amd64 || purego

package gemm

// Without assembly the portable kernels run everywhere.
var (
	hasAVX2        = false
	defaultKernels = goKernels()
	defaultDirect  = directFunc(kernGoDirect)
	defaultGemv    = gemvFunc(gemvGo)
)

// packRows runs packGo.
func packRows(_ bool, dst, src *float32, offs *int32, k int, segs *segment, nseg int, scale, shift *float32, flags int) {
	packGo(dst, src, offs, k, segs, nseg, scale, shift, flags)
}

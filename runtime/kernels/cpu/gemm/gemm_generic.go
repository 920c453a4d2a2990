//go:build !amd64 || purego

package gemm

// avx2Table and avx512Table are nil: this build has no assembly, every level runs goTable.
var avx2Table, avx512Table *Kernels

// packRows runs packGo (there is no assembly packer in this build).
func packRows(_ packer, nr int, dst, src *float32, offs *int32, k int, segs *segment, nseg int, scale, shift *float32, flags int) {
	packGo(nr, dst, src, offs, k, segs, nseg, scale, shift, flags)
}

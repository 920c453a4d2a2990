package gemm

// WithoutGemv returns a copy of k with no matrix-vector kernel, so that single-column products
// run the narrowest micro-kernel: the avx512 level's path before it had a kernel of its own,
// which BenchmarkGEMV measures against.
func WithoutGemv(k *Kernels) *Kernels {
	c := *k
	c.gemv = nil
	return &c
}

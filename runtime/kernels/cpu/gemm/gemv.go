package gemm

// gemvFunc computes out[i] = sum_{kk<k} a[kk*MR + i] * x[kk] for i < MR (the MR of the level's
// Kernels: 4 at generic and avx2, 8 at avx512): one packed row panel of A times the vector x
// (len >= k). out has MR floats.
type gemvFunc func(k int, a, x, out []float32)

// gemvGo is the portable gemvFunc.
func gemvGo(k int, a, x, out []float32) {
	const MR = 4 // the rows of the generic and avx2 levels' panels
	a, x = a[:k*MR], x[:k]
	var s [MR]float32
	for kk, v := range x {
		p := a[kk*MR : kk*MR+MR]
		for i := range s {
			s[i] += p[i] * v
		}
	}
	copy(out[:MR], s[:])
}

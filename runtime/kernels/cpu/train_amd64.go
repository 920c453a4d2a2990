//go:build amd64 && !purego

package cpu

// stage8AVX2 transposes 8 channel rows into pixel-major order with the prologue (see stageAsm).
//
//go:noescape
func stage8AVX2(dst *float32, dstStride int, src *float32, srcStride int, n int, scale, shift *float32, relu int)

// bnSumsAVX2 is bnSumsAsm for n a multiple of 8.
//
//go:noescape
func bnSumsAVX2(x, dy *float32, n int, a, b float32, relu int) (s1, s2 float64)

// bnDXAVX2 is bnDXAsm for n a multiple of 8.
//
//go:noescape
func bnDXAVX2(x, dy, dx *float32, n int, a, b, cx, c0, m float32, flags int)

// affineAVX2 is affineRowAsm for n a multiple of 8.
//
//go:noescape
func affineAVX2(x, y *float32, n int, a, b float32, relu int)

// sumAVX2 returns the float64 sum of n floats, n a multiple of 8.
//
//go:noescape
func sumAVX2(x *float32, n int) float64

// sqDevAVX2 returns the float64 sum of (x - mean)^2 over n floats, n a multiple of 8.
//
//go:noescape
func sqDevAVX2(x *float32, n int, mean float64) float64

// rowSumAsm is rowSumGo with the sum of whole vectors in assembly (sumAVX2).
func rowSumAsm(row []float32) float64 {
	m := len(row) &^ 7
	var s float64
	if m > 0 {
		s = sumAVX2(&row[0], m)
	}
	for _, v := range row[m:] {
		s += float64(v)
	}
	return s
}

// rowStatsAsm returns the mean and biased variance of row, in float64 and two passes (the
// sums in assembly).
func rowStatsAsm(row []float32) (mean, variance float64) {
	n := len(row)
	if n == 0 {
		return rowStatsGo(row)
	}
	m := n &^ 7
	var s float64
	if m > 0 {
		s = sumAVX2(&row[0], m)
	}
	for _, v := range row[m:] {
		s += float64(v)
	}
	mean = s / float64(n)
	var q float64
	if m > 0 {
		q = sqDevAVX2(&row[0], m, mean)
	}
	for _, v := range row[m:] {
		d := float64(v) - mean
		q += d * d
	}
	return mean, q / float64(n)
}

// The kernels below compute the affine map x*a + b with one rounding (fused multiply-add), as
// the assembly GEMM packer applies a convolution's prologue, so that a BN-ReLU output stored,
// recomputed, or read through a prologue is the same number, and ReLU masks agree with the
// forward pass. Tails shorter than a vector go through the same assembly on a padded copy.

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// affineRowAsm writes y[i] = act(fma(x[i], a, b)), act = max(., 0) when relu.
func affineRowAsm(x, y []float32, a, b float32, relu bool) {
	n := len(x)
	y = y[:n]
	m := n &^ 7
	if m > 0 {
		affineAVX2(&x[0], &y[0], m, a, b, b2i(relu))
	}
	if m < n {
		var tx, ty [8]float32
		copy(tx[:], x[m:])
		affineAVX2(&tx[0], &ty[0], 8, a, b, b2i(relu))
		copy(y[m:], ty[:n-m])
	}
}

// stageAsm writes dst[p*dstStride + c] = act(fma(src[c*srcStride + p], scale[c], shift[c])) for
// cnt <= 8 channels c and n pixels p, act = max(., 0) when relu.
func stageAsm(dst []float32, dstStride int, src []float32, srcStride, cnt, n int, scale, shift [8]float32, relu bool) {
	if cnt < 8 {
		stagePartialAsm(dst, dstStride, src, srcStride, cnt, n, &scale, &shift, relu)
		return
	}
	stage8Asm(dst, dstStride, src, srcStride, n, &scale, &shift, relu)
}

// stage8Asm is stageAsm for 8 channels.
func stage8Asm(dst []float32, dstStride int, src []float32, srcStride, n int, scale, shift *[8]float32, relu bool) {
	m := n &^ 7
	if m > 0 {
		if len(src) < 7*srcStride+n || len(dst) < (n-1)*dstStride+8 {
			panic("cpu: stage slices too short")
		}
		stage8AVX2(&dst[0], dstStride, &src[0], srcStride, m, &scale[0], &shift[0], b2i(relu))
	}
	if m < n {
		var ts [64]float32
		var td [64]float32
		for c := 0; c < 8; c++ {
			copy(ts[c*8:c*8+n-m], src[c*srcStride+m:c*srcStride+n])
		}
		stage8AVX2(&td[0], 8, &ts[0], 8, 8, &scale[0], &shift[0], b2i(relu))
		for p := m; p < n; p++ {
			copy(dst[p*dstStride:p*dstStride+8], td[(p-m)*8:(p-m)*8+8])
		}
	}
}

// bnSumsAsm returns sum dz and sum dz*x over x and dy, dz = dy where fma(x, a, b) > 0 when
// relu.
func bnSumsAsm(x, dy []float32, a, b float32, relu bool) (s1, s2 float64) {
	n := len(x)
	dy = dy[:n]
	m := n &^ 7
	if m > 0 {
		s1, s2 = bnSumsAVX2(&x[0], &dy[0], m, a, b, b2i(relu))
	}
	if m < n {
		var tx, td [8]float32
		copy(tx[:], x[m:])
		copy(td[:], dy[m:])
		t1, t2 := bnSumsAVX2(&tx[0], &td[0], 8, a, b, b2i(relu))
		s1, s2 = s1+t1, s2+t2
	}
	return s1, s2
}

// bnDXAsm writes (acc: adds) a*dz + cx*(x-m) + c0 into dx, dz = dy where fma(x, a, b) > 0
// when relu.
func bnDXAsm(x, dy, dx []float32, a, b, cx, c0, m float32, relu, acc bool) {
	n := len(x)
	dy, dx = dy[:n], dx[:n]
	flags := b2i(relu) | 2*b2i(acc)
	k := n &^ 7
	if k > 0 {
		bnDXAVX2(&x[0], &dy[0], &dx[0], k, a, b, cx, c0, m, flags)
	}
	if k < n {
		var tx, td, to [8]float32
		copy(tx[:], x[k:])
		copy(td[:], dy[k:])
		copy(to[:], dx[k:])
		bnDXAVX2(&tx[0], &td[0], &to[0], 8, a, b, cx, c0, m, flags)
		copy(dx[k:], to[:n-k])
	}
}

// stagePartialAsm is stageAsm for cnt < 8 channels: dst[p*dstStride + i] for i < cnt. It runs
// stage8Asm on a copy padded to 8 channels, 32 pixels at a time, so that every value goes
// through the same arithmetic as full blocks.
func stagePartialAsm(dst []float32, dstStride int, src []float32, srcStride, cnt, n int, sc, sh *[8]float32, relu bool) {
	const chunk = 32
	var ts, td [8 * chunk]float32
	for p0 := 0; p0 < n; p0 += chunk {
		pn := min(chunk, n-p0)
		for i := 0; i < cnt; i++ {
			copy(ts[i*chunk:i*chunk+pn], src[i*srcStride+p0:i*srcStride+p0+pn])
		}
		stage8Asm(td[:], 8, ts[:], chunk, pn, sc, sh, relu)
		for p := 0; p < pn; p++ {
			copy(dst[(p0+p)*dstStride:(p0+p)*dstStride+cnt], td[p*8:p*8+cnt])
		}
	}
}

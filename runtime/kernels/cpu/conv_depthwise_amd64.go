//go:build amd64 && !purego

package cpu

//go:generate go run dwgen.go -o conv_depthwise_amd64.s -decl conv_depthwise_decl_amd64.go

// dwMask is the tail mask table of the depthwise kernels: 16 lanes of all ones, then 16 of
// zeros; the first k lanes of a vector are selected by the table's lanes from 16-k.
var dwMask = func() (m [32]uint32) {
	for i := range 16 {
		m[i] = 0xFFFFFFFF
	}
	return m
}()

// dwRowsAsm2 is dwRowsGo with the AVX2 kernel (dwRowsAVX2): the same bits.
func dwRowsAsm2(dst, src, w []float32, b float32, cl dwClamp, g dwGeom) {
	dwRowsCall(false, dst, src, w, b, cl, g)
}

// dwRowsAsm512 is dwRowsGo with the AVX-512 kernel (dwRowsAVX512): the same bits.
func dwRowsAsm512(dst, src, w []float32, b float32, cl dwClamp, g dwGeom) {
	dwRowsCall(true, dst, src, w, b, cl, g)
}

// dwRowsCall checks the bounds that dwRowsGo's slicing would check (the kernel reads
// src[off[k] + oy*wq:][:ow] for every tap and row, w[:taps], and writes dst[:oh*ow]) and runs
// the AVX2 kernel, or the AVX-512 one when wide. The kernels are called directly, not through a
// func value, so that c stays on the stack (go:noescape).
func dwRowsCall(wide bool, dst, src, w []float32, b float32, cl dwClamp, g dwGeom) {
	taps := len(g.off)
	if g.oh <= 0 || g.ow <= 0 || taps == 0 {
		if taps == 0 && g.oh > 0 && g.ow > 0 {
			dwRowsGo(dst, src, w, b, cl, g)
		}
		return
	}
	if g.wq < g.ow {
		panic("cpu: dwRows: bad geometry")
	}
	last := (g.oh-1)*g.wq + g.ow // one past the last float of a tap with offset 0
	for _, o := range g.off {
		if o < 0 || o+last > len(src) {
			panic("cpu: dwRows: input out of range")
		}
	}
	_ = w[taps-1]
	_ = dst[g.oh*g.ow-1]
	c := [3]float32{b, cl.lo, cl.hi}
	if wide {
		dwRowsAVX512(&src[0], &dst[0], g.ow, g.oh, 4*(g.wq-g.ow), &g.off[0], &w[0], taps, &c[0], &dwMask[0])
	} else {
		dwRowsAVX2(&src[0], &dst[0], g.ow, g.oh, 4*(g.wq-g.ow), &g.off[0], &w[0], taps, &c[0], &dwMask[0])
	}
}

// dwSplitIdx is the permutation of dwSplitAVX512: the even lanes of a vector, then the odd ones.
var dwSplitIdx = [16]uint32{0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15}

// dwSplitAsm512 is dwSplitGo in AVX-512 (dwSplitAVX512, tails included): the same floats.
func dwSplitAsm512(e, o, x []float32) {
	n, k, ok := dwSplitArgs(len(e), len(o), len(x))
	if !ok {
		dwSplitGo(e, o, x)
		return
	}
	dwSplitAVX512(&x[0], &e[0], &o[0], n, &dwSplitIdx[0], &k[0])
}

// dwChansAsm512 is dwChansGo with the AVX-512 channel kernels (dwChansS1AVX512,
// dwChansS2AVX512): the same bits. It checks the bounds that dwChansGo's slicing would check,
// from the plan, which the kernels trust for the rest (a row's chunk masks and stores lie within
// its input row and the plane: TestDepthwiseChansKasm runs every plan shape in the interpreter,
// which faults on any access outside the slices).
func dwChansAsm512(pl *dwPlan, x, y, w, b []float32, nch int, p []float32, cl dwClamp) {
	taps := len(pl.off)
	if nch <= 0 {
		return
	}
	if taps == 0 || pl.h <= 0 || pl.nvec <= 0 || pl.nc <= 0 || len(pl.rows) < 2*pl.h || len(pl.vec) < 3*pl.nvec ||
		len(pl.chunks) < pl.s*pl.nc || (pl.s != 1 && pl.s != 2) {
		panic("cpu: dwChans: bad plan")
	}
	_ = x[nch*pl.h*pl.w-1]
	_ = y[nch*pl.ohw-1]
	_ = w[nch*taps-1]
	_ = b[nch-1]
	_ = p[2*pl.plane-1]
	c := [2]float32{cl.lo, cl.hi}
	// Called directly, not through a func value, so that c stays on the stack (go:noescape).
	if pl.s == 1 {
		dwChansS1AVX512(&x[0], &y[0], &w[0], &b[0], nch, &p[0], 4*pl.plane, &pl.rows[0], pl.h, 4*pl.w, &pl.chunks[0], pl.nc,
			&pl.off[0], taps, &pl.vec[0], pl.nvec, &c[0], &dwSplitIdx[0])
		return
	}
	dwChansS2AVX512(&x[0], &y[0], &w[0], &b[0], nch, &p[0], 4*pl.plane, &pl.rows[0], pl.h, 4*pl.w, &pl.chunks[0], pl.nc,
		&pl.off[0], taps, &pl.vec[0], pl.nvec, &c[0], &dwSplitIdx[0])
}

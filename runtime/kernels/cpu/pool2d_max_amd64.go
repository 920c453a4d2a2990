//go:build amd64 && !purego

package cpu

//go:generate go run poolgen.go -o pool2d_avx512_amd64.s -decl pool2d_avx512_decl_amd64.go

// maxRowsAVX2 sets dst[x] = max over r < rows of src[r*step + x] for x < n: n is a positive
// multiple of 8, rows >= 1 and step is in floats.
//
//go:noescape
func maxRowsAVX2(dst, src *float32, n, rows, step int)

// maxCols1AVX2 sets dst[k] = max over j < taps of src[k + j*d] for k < n, a positive multiple
// of 8; taps >= 1.
//
//go:noescape
func maxCols1AVX2(dst, src *float32, n, taps, d int)

// maxCols2AVX2 sets dst[k] = max over j < taps of src[2k + j*d] for k < n, a positive multiple
// of 8; taps >= 1. It reads src up to index 2n-1 + (taps-1)*d, one float past the last tap.
//
//go:noescape
func maxCols2AVX2(dst, src *float32, n, taps, d int)

// maxRowsAsm is maxRowsGo in assembly, where dst holds at least one vector: dst[x] = max over
// r < rows of src[off + r*step + x] (NaN if any is NaN).
func maxRowsAsm(dst, src []float32, off, step, rows int) {
	n := len(dst)
	if n < 8 || rows < 1 {
		maxRowsGo(dst, src, off, step, rows)
		return
	}
	src = src[off : off+(rows-1)*step+n] // panics, before the assembly runs, if src is short
	n8 := n &^ 7
	maxRowsAVX2(&dst[0], &src[0], n8, rows, step)
	if n8 < n {
		// The last 8 columns again, overlapping: same inputs, same results.
		maxRowsAVX2(&dst[n-8], &src[n-8], 8, rows, step)
	}
}

// maxColsAsm is maxColsGo with strides 1 and 2 in assembly, where dst holds at least one
// vector (larger strides run in Go): dst[k] = max over j < taps of src[k*s + j*d] (NaN if any
// is NaN); src must hold maxRowSlack floats past the last tap.
func maxColsAsm(dst, src []float32, s, taps, d int) {
	n := len(dst)
	if n < 8 || taps < 1 || (s != 1 && s != 2) {
		maxColsGo(dst, src, s, taps, d)
		return
	}
	src = src[:(n-1)*s+(taps-1)*d+2] // panics, before the assembly runs, if src is short
	n8 := n &^ 7
	if s == 1 {
		maxCols1AVX2(&dst[0], &src[0], n8, taps, d)
		if n8 < n {
			maxCols1AVX2(&dst[n-8], &src[n-8], 8, taps, d)
		}
		return
	}
	maxCols2AVX2(&dst[0], &src[0], n8, taps, d)
	if n8 < n {
		maxCols2AVX2(&dst[n-8], &src[2*(n-8)], 8, taps, d)
	}
}

// maxTapsAsm2 is maxTapsGo with the AVX2 row kernel, one call per output row. The avx2 level
// keeps its hand-written row kernels: the whole-plane passes around them measured 0.9x to 1.2x
// the per-row code they replaced at GoogLeNet's, ResNet's and SqueezeNet's shapes (one Zen 5
// core, BenchmarkMaxPool), the gain being in the avx512 level's plane kernels (1.3x to 3.2x).
func maxTapsAsm2(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	for r := 0; r < rows; r++ {
		maxRowsAsm(dst[r*dp:][:n], src, r*sadv, step, taps)
	}
}

// maxTaps2Asm2 is maxTaps2Go with the AVX2 stride-2 column kernel, one call per output row.
func maxTaps2Asm2(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	for r := 0; r < rows; r++ {
		maxColsAsm(dst[r*dp:][:n], src[r*sadv:], 2, taps, step)
	}
}

// poolTab is the table of the AVX-512 pooling kernels (poolasm.Table): the tail mask lanes and
// the stride-2 permutation.
var poolTab = [48]uint32{
	0: 0xFFFFFFFF, 1: 0xFFFFFFFF, 2: 0xFFFFFFFF, 3: 0xFFFFFFFF, 4: 0xFFFFFFFF, 5: 0xFFFFFFFF, 6: 0xFFFFFFFF, 7: 0xFFFFFFFF,
	8: 0xFFFFFFFF, 9: 0xFFFFFFFF, 10: 0xFFFFFFFF, 11: 0xFFFFFFFF, 12: 0xFFFFFFFF, 13: 0xFFFFFFFF, 14: 0xFFFFFFFF, 15: 0xFFFFFFFF,
	32: 0, 33: 1, 34: 4, 35: 5, 36: 8, 37: 9, 38: 12, 39: 13, 40: 2, 41: 3, 42: 6, 43: 7, 44: 10, 45: 11, 46: 14, 47: 15,
}

// maxTapsAsm512 is maxTapsGo with the AVX-512 plane kernel (maxTapsAVX512), one call for all
// rows. The bounds maxTapsGo's slicing checks are checked here, before the assembly runs.
func maxTapsAsm512(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	if taps < 1 || sadv < 0 || step < 0 || dp < n {
		maxTapsGo(dst, dp, src, sadv, step, taps, rows, n)
		return
	}
	_ = dst[(rows-1)*dp+n-1]
	_ = src[(rows-1)*sadv+(taps-1)*step+n-1]
	maxTapsAVX512(&dst[0], &src[0], n, rows, taps, step, sadv, dp, &poolTab[0])
}

// maxTaps2Asm512 is maxTaps2Go with the AVX-512 plane kernel (maxTaps2AVX512), which reads one
// float past the last tap of each row (maxRowBuf's pitch and slack hold it).
func maxTaps2Asm512(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	if taps < 1 || sadv < 0 || step < 0 || dp < n {
		maxTaps2Go(dst, dp, src, sadv, step, taps, rows, n)
		return
	}
	_ = dst[(rows-1)*dp+n-1]
	_ = src[(rows-1)*sadv+2*(n-1)+(taps-1)*step+1]
	maxTaps2AVX512(&dst[0], &src[0], n, rows, taps, step, sadv, dp, &poolTab[0])
}

//go:build amd64 && !purego

package cpu

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

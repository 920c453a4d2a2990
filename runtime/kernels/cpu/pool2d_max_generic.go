//go:build !amd64 || purego

package cpu

// Without assembly the max-pool row kernels are the Go ones.

// maxRows sets dst[x] = max over r < rows of src[off + r*step + x] (NaN if any is NaN).
func maxRows(_ bool, dst, src []float32, off, step, rows int) {
	maxRowsGo(dst, src, off, step, rows)
}

// maxCols sets dst[k] = max over j < taps of src[k*s + j*d] (NaN if any is NaN); src must hold
// maxRowSlack floats past the last tap.
func maxCols(_ bool, dst, src []float32, s, taps, d int) {
	maxColsGo(dst, src, s, taps, d)
}

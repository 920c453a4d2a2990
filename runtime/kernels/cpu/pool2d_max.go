package cpu

import "math"

// maxRowSlack is how many -Inf floats maxRowBuf leaves past the last one a window reads: the
// stride-2 assembly reads one float past its last tap.
const maxRowSlack = 8

// maxRowCols returns how many input columns, from column 0, some max-pool window reads: the
// windows reach buffer index (OutW-1)*sw + (KW-1)*dw, that is input column that minus PadL.
func maxRowCols(wd int, w *Window2D) int {
	if w.OutW == 0 {
		return 0
	}
	reach := (w.OutW-1)*w.StrideW + (w.KW-1)*w.DilationW + 1 - w.PadL
	return max(0, min(wd, reach))
}

// maxRowBuf returns maxPlane's padded row for images wd wide, reusing *buf (and growing it when
// it is too short): buffer index b holds input column b - PadL, and every index outside the
// input columns maxPlane writes holds -Inf.
func maxRowBuf(buf *[]float32, wd int, w *Window2D) []float32 {
	cols := maxRowCols(wd, w)
	n := max(w.PadL+cols, (w.OutW-1)*w.StrideW+(w.KW-1)*w.DilationW+1) + maxRowSlack
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	row := (*buf)[:n]
	inf := float32(math.Inf(-1))
	fill(row[:w.PadL], inf)
	fill(row[w.PadL+cols:], inf)
	return row
}

// fill sets every element of s to v.
func fill(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

// maxRowsGo is the portable kernels.maxRows: dst[x] = max over r < rows of src[off + r*step + x]. The builtin
// max propagates NaN.
func maxRowsGo(dst, src []float32, off, step, rows int) {
	copy(dst, src[off:off+len(dst)])
	for r := 1; r < rows; r++ {
		s := src[off+r*step:][:len(dst)]
		for x, v := range s {
			dst[x] = max(dst[x], v)
		}
	}
}

// maxColsGo is the portable kernels.maxCols: dst[k] = max over j < taps of src[k*s + j*d].
func maxColsGo(dst, src []float32, s, taps, d int) {
	if len(dst) == 0 {
		return
	}
	src = src[:(len(dst)-1)*s+(taps-1)*d+1] // one bounds check for the loops below
	for k := range dst {
		m := src[k*s]
		for j := 1; j < taps; j++ {
			m = max(m, src[k*s+j*d])
		}
		dst[k] = m
	}
}

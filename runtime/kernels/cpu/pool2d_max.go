package cpu

import "math"

// maxRowSlack is how many -Inf floats maxRowBuf leaves past the last one a window reads: the
// stride-2 kernels read one float past their last tap.
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

// maxRowPitch returns the pitch of maxPlane's row buffer for images wd wide: the padded row
// (PadL -Inf, the input columns windows read, -Inf up to the last index a window reads) and one
// float more, which the stride-2 kernels read past their last tap.
func maxRowPitch(wd int, w *Window2D) int {
	return max(w.PadL+maxRowCols(wd, w), (w.OutW-1)*w.StrideW+(w.KW-1)*w.DilationW+1) + 1
}

// maxRowBuf returns maxPlane's row buffer for images wd wide, OutH padded rows of
// maxRowPitch floats and maxRowSlack more, reusing *buf (and growing it when it is too short):
// index oy*pitch + b of row oy holds input column b - PadL, and every index outside the input
// columns maxPlane writes holds -Inf.
func maxRowBuf(buf *[]float32, wd int, w *Window2D) []float32 {
	cols, pitch := maxRowCols(wd, w), maxRowPitch(wd, w)
	n := max(1, w.OutH)*pitch + maxRowSlack
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	rows := (*buf)[:n]
	inf := float32(math.Inf(-1))
	for oy := 0; oy < max(1, w.OutH); oy++ {
		row := rows[oy*pitch : (oy+1)*pitch]
		fill(row[:w.PadL], inf)
		fill(row[w.PadL+cols:], inf)
	}
	fill(rows[max(1, w.OutH)*pitch:], inf)
	return rows
}

// maxPlane max-pools one channel plane (h rows of wd floats) into dst in two passes over rows, a
// buffer from maxRowBuf that holds one padded row per output row (pitch maxRowPitch):
//
//	rows[oy*pitch + pl + x] = max over taps i inside the image of src[(y0 + i*dh)*wd + x]   (vertical)
//	dst[oy*OutW + ox] = max over j < KW of rows[oy*pitch + ox*sw + j*dw]                  (horizontal)
//
// where y0 = oy*sh - pt and the entries of each row outside [pl, pl+wd) hold -Inf, so that taps
// in the padding drop out of the max. Each pass is one kernel call per run of output rows with
// the same taps (kernels.maxTaps, maxTaps2): the rows whose window lies inside the image in one
// call, each border row in its own. GoogLeNet's 14x14 and 7x7 pools spent more in per-row calls
// than in the maxima. Both passes propagate NaN; a window with no tap inside the image gives
// -Inf, as in the reference.
func maxPlane(code *kernels, src, dst, rows []float32, h, wd int, w *Window2D) {
	pl, cols, pitch := w.PadL, maxRowCols(wd, w), maxRowPitch(wd, w)
	if w.OutH == 0 || w.OutW == 0 {
		return
	}
	if cols > 0 {
		for oy := 0; oy < w.OutH; {
			y0 := oy*w.StrideH - w.PadT
			i0, i1 := tapRange(y0, w.KH, w.DilationH, h)
			v := rows[oy*pitch+pl:]
			if i1 <= i0 {
				fill(v[:cols], float32(math.Inf(-1)))
				oy++
				continue
			}
			// The run of rows from oy with the same taps (the interior, or one border row).
			run := 1
			if i0 == 0 && i1 == w.KH {
				for oy+run < w.OutH {
					a, b := tapRange(y0+run*w.StrideH, w.KH, w.DilationH, h)
					if a != 0 || b != w.KH {
						break
					}
					run++
				}
			}
			code.maxTaps(v, pitch, src[(y0+i0*w.DilationH)*wd:], w.StrideH*wd, w.DilationH*wd, i1-i0, run, cols)
			oy += run
		}
	}
	switch w.StrideW {
	case 1:
		code.maxTaps(dst, w.OutW, rows, pitch, w.DilationW, w.KW, w.OutH, w.OutW)
	case 2:
		code.maxTaps2(dst, w.OutW, rows, pitch, w.DilationW, w.KW, w.OutH, w.OutW)
	default:
		for oy := 0; oy < w.OutH; oy++ {
			maxColsGo(dst[oy*w.OutW:(oy+1)*w.OutW], rows[oy*pitch:], w.StrideW, w.KW, w.DilationW)
		}
	}
}

// maxTapsGo is the portable kernels.maxTaps:
//
//	dst[r*dp + x] = max over t < taps of src[r*sadv + t*step + x]   for r < rows, x < n
//
// (NaN if any is NaN): the vertical pass of maxPlane, and its stride-1 horizontal pass.
func maxTapsGo(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	for r := 0; r < rows; r++ {
		maxRowsGo(dst[r*dp:][:n], src, r*sadv, step, taps)
	}
}

// maxTaps2Go is the portable kernels.maxTaps2, maxPlane's stride-2 horizontal pass:
//
//	dst[r*dp + k] = max over t < taps of src[r*sadv + 2k + t*step]   for r < rows, k < n
func maxTaps2Go(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	for r := 0; r < rows; r++ {
		maxColsGo(dst[r*dp:][:n], src[r*sadv:], 2, taps, step)
	}
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

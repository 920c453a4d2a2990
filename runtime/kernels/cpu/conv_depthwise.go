package cpu

import (
	"math"
	"sync/atomic"
)

// depthwiseTask computes one batch item of a convolution with one input channel per group
// (pathDepthwise): for output channel m of group g = m / (Cout/Group),
//
//	Y[m, oy, ox] = post(Bias[m] + sum_{kh,kw} W[m,kh,kw] * P[g, oy*sh + kh*dh, ox*sw + kw*dw])
//
// with P the zero-padded input (prologue applied), the sum in the order bias, then taps row by
// row (kh), left to right (kw), each product rounded and added in turn. Padded taps are added
// too (w*0), so the result is that of the padded convolution bit for bit, signed zeros
// included, whichever level runs the rows.
//
// The items of Do are chunks of consecutive output channels, at most one per thread. Each chunk
// owns per floats of scratch: the padded copy of one input channel (split by stride phase, see
// padGeom, so that every tap of every stride reads a contiguous run per output row) and, for
// narrow images, a "flat" output plane. An input channel is copied just before its output
// channels are computed, while it is in the core's cache; no padded copy of the whole input is
// made (that copy, written out to L2/L3 and read back, cost MobileNetV2 more than the 3x3
// kernels themselves).
//
// Where the level has a channel kernel (dwChanPlanes: AVX-512) and the convolution suits it
// (stride 1 or 2, no dilation, no prologue: Conv2D.dwChanGeom), a chunk runs its channels
// through it instead, dwChansGroup channels a call, the padded copy made inside the kernel
// (conv_depthwise_chans.go); the per-channel code below is then skipped.
type depthwiseTask struct {
	c       *Conv2D
	pg      padGeom
	src     []float32 // the batch item's input, Cin planes of h*w
	h, w    int
	out     []float32 // the batch item's output channels, oh*ow each
	res     []float32 // the batch item's residual, laid out as out (nil without one)
	oh, ow  int
	chunks  int       // Do's items
	per     int       // scratch floats per chunk (dwScratch)
	scratch []float32 // chunks*per floats
	off     []int     // the taps' offsets in a padded channel, kh-major (see dwOffsets)
	flat    bool      // the rows run as one flat row of the phase plane's width (see channel)
	plan    *dwPlan   // the channel path's tables, or nil on the row path (conv_depthwise_chans.go)
	// next is the channel path's next group of dwChansGroup channels: its chunks take groups
	// from it rather than a fixed share each (see chansDynamic).
	next atomic.Int32
}

// dwFlat reports whether the output rows of a depthwise channel run as one "flat" row: the
// kernel then computes (oh-1)*wq + ow consecutive columns of the padded plane's width wq (the
// wq-ow columns past each output row are computed and dropped), and the rows are copied out.
// Narrow images (MobileNet's and EfficientNet's 7x7 and 14x14 stages) would otherwise run one
// short, masked vector per row, a dependent chain of adds per tap; a flat row fills the
// unrolled loop. On Zen 5 (BenchmarkDepthwiseRows, flat=true against flat=false) flat was
// faster at every row length up to 28 (two to four times at 7 and 14, 5x5 and 3x3) and about even
// at 56 and 112, where the copy out and the wasted columns are not worth it.
func dwFlat(ow, wq int) bool { return ow <= 28 && wq-ow <= ow }

// dwScratch returns the floats of scratch one chunk of a depthwise convolution of an h x w
// input needs: a padded channel and the flat output plane.
func (c *Conv2D) dwScratch(h, w int) int {
	if g, ok := c.dwChanGeom(h, w); ok {
		return 2 * g.planeFloats(c.spec.KH, c.spec.KW)
	}
	pg := c.padGeom(h, w)
	oh, _ := c.OutputSize(h, w)
	return pg.chan_ + max(oh, 0)*pg.wq
}

// dwChunks returns the channel chunks a depthwise convolution runs in on threads threads: one
// per thread, but no fewer than about 16K multiply-adds each, so that small layers (7x7 planes)
// do not pay a fork-join for nothing.
func (c *Conv2D) dwChunks(oh, ow, threads int) int {
	s := &c.spec
	grain := max(1, 16384/max(oh*ow*s.KH*s.KW, 1))
	return max(1, min(threads, (s.Cout+grain-1)/grain))
}

// dwOffsets sets off to the offsets of the taps in a padded, phase-split channel of geometry
// pg: tap (kh, kw) of output pixel (oy, ox) reads off[kh*KW+kw] + oy*wq + ox.
func (c *Conv2D) dwOffsets(off []int, pg padGeom) []int {
	s := &c.spec
	return dwTapOffsets(off, s.KH, s.KW, s.StrideH, s.StrideW, s.DilationH, s.DilationW, pg)
}

// dwTapOffsets is dwOffsets for a kh x kw kernel of strides sh, sw and dilations dh, dw (off is
// reused when large enough).
func dwTapOffsets(off []int, kh, kw, sh, sw, dh, dw int, pg padGeom) []int {
	if cap(off) < kh*kw {
		off = make([]int, kh*kw)
	}
	off = off[:kh*kw]
	plane := pg.hq * pg.wq
	for i := 0; i < kh; i++ {
		for j := 0; j < kw; j++ {
			dy, dx := i*dh, j*dw
			phase := (dy%sh)*sw + dx%sw
			off[i*kw+j] = phase*plane + (dy/sh)*pg.wq + dx/sw
		}
	}
	return off
}

func (c *Conv2D) runDepthwise(workers *Workers, w *convWorker, in, out Image, b int, scratch []float32, threads int) {
	pg := c.padGeom(in.H, in.W)
	chunks := 1
	if workers != nil {
		chunks = c.dwChunks(out.H, out.W, threads)
	}
	per := c.dwScratch(in.H, in.W)
	w.dw = depthwiseTask{c: c, pg: pg, src: in.Item(b), h: in.H, w: in.W, out: out.Item(b), oh: out.H, ow: out.W,
		chunks: chunks, per: per, scratch: scratch[:chunks*per], off: c.dwOffsets(w.dw.off, pg), flat: dwFlat(out.W, pg.wq),
		res: itemResidual(w.res, b, 0, out.H*out.W)}
	if g, ok := c.dwChanGeom(in.H, in.W); ok {
		if !w.dwPlan.built || w.dwPlan.h != in.H || w.dwPlan.w != in.W {
			// A convWorker belongs to one Conv2D (its convState is recycled through c.free):
			// the plan changes only with the input size. Building it costs a pass over every
			// float of the flat row (tens of microseconds on a 112x112 plane).
			w.dwPlan.build(c, g, in.H, in.W)
		}
		w.dw.plan = &w.dwPlan
		w.dw.next.Store(0)
	}
	parallel(workers, &w.dw, chunks, 1, &w.wg)
}

// Do implements Task over chunks [lo, hi).
func (t *depthwiseTask) Do(lo, hi int) {
	cout := t.c.spec.Cout
	for ci := lo; ci < hi; ci++ {
		sc := t.scratch[ci*t.per : (ci+1)*t.per]
		if t.plan != nil {
			t.chansDynamic(sc[:2*t.plan.plane])
			continue
		}
		plane, flat := sc[:t.pg.chan_], sc[t.pg.chan_:]
		t.dwZeroPad(plane)
		g := -1
		for m := ci * cout / t.chunks; m < (ci+1)*cout/t.chunks; m++ {
			if mg := m / t.c.mg; mg != g {
				g = mg
				t.fill(g, plane)
			}
			t.channel(m, plane, flat)
			if t.c.hasTail() {
				// The residual and activation while the channel's plane is in cache.
				ohw := t.oh * t.ow
				t.c.finishRows(t.out, t.res, m*ohw, 1, ohw, ohw)
			}
		}
	}
}

// channel computes output channel m (its oh*ow plane of out, ReLU included) from plane, the
// padded copy of its input channel, in the level's row kernel (dwRowsGo, or the assembly of
// package dwasm, which gives the same bits). flat is scratch for oh*wq floats.
func (t *depthwiseTask) channel(m int, plane, flat []float32) {
	s := &t.c.spec
	ohw := t.oh * t.ow
	dst := t.out[m*ohw : (m+1)*ohw]
	var b float32
	if s.Bias != nil {
		b = s.Bias[m]
	}
	taps := len(t.off)
	w := t.c.w[m*taps : (m+1)*taps]
	if !t.flat {
		t.c.code.dwRows(dst, plane, w, b, t.c.dwClamp, dwGeom{off: t.off, wq: t.pg.wq, oh: t.oh, ow: t.ow})
		return
	}
	wq := t.pg.wq
	n := (t.oh-1)*wq + t.ow
	t.c.code.dwRows(flat[:n], plane, w, b, t.c.dwClamp, dwGeom{off: t.off, wq: n, oh: 1, ow: n})
	for oy := 0; oy < t.oh; oy++ {
		dwCopy(dst[oy*t.ow:(oy+1)*t.ow], flat[oy*wq:])
	}
}

// fill writes input channel ch, prologue applied, into dst as padGeom lays out one channel:
// phase (py, px) of the stride, row i, column j holds padded pixel (py + i*sh, px + j*sw). Only
// the pixels of the image are written: the padding around them is the same for every channel,
// and Do zeroes it once per chunk (dwZeroPad).
func (t *depthwiseTask) fill(ch int, dst []float32) {
	s := &t.c.spec
	hw := t.h * t.w
	x := t.src[ch*hw : (ch+1)*hw]
	var scale, shift float32 = 1, 0
	affine := s.PreScale != nil
	if affine {
		scale, shift = s.PreScale[ch], s.PreShift[ch]
	}
	relu := s.PreRelu
	sh, sw := s.StrideH, s.StrideW
	wq := t.pg.wq
	plane := t.pg.hq * wq
	if sw == 2 && !affine && !relu && t.fill2(x, dst) {
		return
	}
	for px := 0; px < sw; px++ {
		j0, j1, ix := dwCols(t.w, s.PadL, sw, wq, px)
		if j0 == j1 {
			continue
		}
		// Input row y is padded row y + PadT: row i of phase py (no division per row: it is
		// slow next to a row of 7 or 14 floats).
		py, i := s.PadT%sh, s.PadT/sh
		for y := 0; y < t.h; y++ {
			xr := x[y*t.w : (y+1)*t.w]
			o := (py*sw+px)*plane + i*wq
			if py++; py == sh {
				py, i = 0, i+1
			}
			seg := dst[o+j0 : o+j1]
			switch {
			case sw == 1 && !affine && !relu:
				dwCopy(seg, xr[ix:])
			case sw == 1:
				prologueRow(seg, xr[ix:ix+len(seg)], scale, shift, affine, relu)
			case !affine && !relu:
				stridedCopy(seg, xr[ix:], sw)
			default:
				for j := range seg {
					v := xr[ix+j*sw]
					if affine {
						v = v*scale + shift
					}
					if relu && v < 0 {
						v = 0
					}
					seg[j] = v
				}
			}
		}
	}
}

// fill2 is fill for a horizontal stride of 2 without a prologue, where both phases of a
// padded row have data and their first pixels are adjacent: it splits each input row into the
// two phase rows in one pass. It reports false (and writes nothing) for other geometries.
func (t *depthwiseTask) fill2(x, dst []float32) bool {
	s := &t.c.spec
	sh, wq := s.StrideH, t.pg.wq
	plane := t.pg.hq * wq
	a0, a1, ia := dwCols(t.w, s.PadL, 2, wq, 0)
	b0, b1, ib := dwCols(t.w, s.PadL, 2, wq, 1)
	if a0 == a1 || b0 == b1 || (ib != ia+1 && ib != ia-1) {
		return false
	}
	// Phase e is the one whose first pixel comes first in the row; o the other.
	e0, e1, o0, o1, oe, oo, ix := a0, a1, b0, b1, 0, plane, ia
	if ib < ia {
		e0, e1, o0, o1, oe, oo, ix = b0, b1, a0, a1, plane, 0, ib
	}
	py, i := s.PadT%sh, s.PadT/sh
	for y := 0; y < t.h; y++ {
		xr := x[y*t.w+ix : (y+1)*t.w]
		o := py*2*plane + i*wq
		if py++; py == sh {
			py, i = 0, i+1
		}
		t.c.code.dwSplit(dst[o+oe+e0:o+oe+e1], dst[o+oo+o0:o+oo+o1], xr)
	}
	return true
}

// dwSplitGo sets e[j] = x[2j] for j < len(e) and o[j] = x[2j+1] for j < len(o): the even and
// odd columns of a row (the kernel of fill2; dwSplitAVX512 moves the same floats).
func dwSplitGo(e, o, x []float32) {
	n := min(len(e), len(o), len(x)/2)
	src := x[:2*n]
	ee, oo := e[:n], o[:n]
	for j := range ee {
		ee[j] = src[2*j]
		oo[j] = src[2*j+1]
	}
	if len(e) > n {
		stridedCopy(e[n:], x[2*n:], 2)
	}
	if len(o) > n {
		stridedCopy(o[n:], x[2*n+1:], 2)
	}
}

// dwSplitArgs returns the arguments n and k of dwSplitAVX512 (see package dwasm) for rows of
// ne even and no odd columns from an input of nx floats, and whether the kernel takes them:
// ne - no must be 0 or 1, no >= 1, and the input must hold the ne + no floats read.
func dwSplitArgs(ne, no, nx int) (n int, k [4]uint64, ok bool) {
	if no < 1 || (ne != no && ne != no+1) || nx < ne+no {
		return 0, k, false
	}
	n = no / 16
	ce, co := ne-16*n, no-16*n
	if m := ce + co; ce > 0 {
		lanes := func(c int) uint64 { return 1<<uint(min(max(c, 0), 16)) - 1 }
		k = [4]uint64{lanes(m), lanes(m - 16), lanes(ce), lanes(co)}
	}
	return n, k, true
}

// dwCopy copies src[:len(dst)] to dst: eight floats at a time (two 16-byte moves) for the short
// rows of small planes, where a call to memmove costs more than the copy; copy for long ones.
func dwCopy(dst, src []float32) {
	if len(dst) >= 64 {
		copy(dst, src[:len(dst)])
		return
	}
	src = src[:len(dst)]
	for len(dst) >= 8 {
		v := *(*[8]float32)(src) // through a value: an array assignment that may overlap calls memmove
		*(*[8]float32)(dst) = v
		dst, src = dst[8:], src[8:]
	}
	for i := range dst {
		dst[i] = src[i]
	}
}

// dwCols returns the columns [j0, j1) of phase px of a padded row that hold image pixels (input
// columns ix, ix+sw, ...) for an image w wide with pad padL on the left.
func dwCols(w, padL, sw, wq, px int) (j0, j1, ix int) {
	j0 = max(0, (padL-px+sw-1)/sw)
	j1 = min(wq, (w+padL-px+sw-1)/sw)
	if j1 < j0 {
		j1 = j0
	}
	return j0, j1, px + j0*sw - padL
}

// dwZeroPad zeroes the padding of a padded channel dst (every float that fill does not write).
func (t *depthwiseTask) dwZeroPad(dst []float32) {
	s := &t.c.spec
	sh, sw := s.StrideH, s.StrideW
	hq, wq := t.pg.hq, t.pg.wq
	plane := hq * wq
	for py := 0; py < sh; py++ {
		for px := 0; px < sw; px++ {
			pl := dst[(py*sw+px)*plane : (py*sw+px+1)*plane]
			j0, j1, _ := dwCols(t.w, s.PadL, sw, wq, px)
			for i := 0; i < hq; i++ {
				row := pl[i*wq : (i+1)*wq]
				if y := py + i*sh - s.PadT; y < 0 || y >= t.h {
					zero(row)
					continue
				}
				zero(row[:j0])
				zero(row[j1:])
			}
		}
	}
}

// dwGeom is where the taps of a depthwise channel read: tap k of output row oy reads
// src[off[k] + oy*wq:][:ow], and the output is oh rows of ow, contiguous.
type dwGeom struct {
	off        []int
	wq, oh, ow int
}

// dwClamp bounds a depthwise channel's outputs: v = max(lo, v) (lo > v ? lo : v), then
// min(v, hi) (hi < v ? hi : v), each keeping NaN (and max keeping -0 against a 0 floor). The
// kernel applies it in registers: ReLU is {0, +Inf}, ReLU6 {0, 6}, none {-Inf, +Inf}.
type dwClamp struct{ lo, hi float32 }

// dwNoClamp leaves every value as it is.
var dwNoClamp = dwClamp{float32(math.Inf(-1)), float32(math.Inf(1))}

// dwRowsGo is the portable row kernel of depthwiseTask.channel: for each output row oy and
// column i,
//
//	v = b; v += w[0]*x_0[i]; v += w[1]*x_1[i]; ...   (taps in the order of g.off, each product
//	                                                  rounded to float32, then added)
//	v = cl.lo > v ? cl.lo : v; v = cl.hi < v ? cl.hi : v   (-0 and NaN stay)
//	dst[oy*ow + i] = v
//
// with x_k = src[g.off[k] + oy*g.wq:]. It runs tap by tap over a whole output row, which gives
// each output the same operations in the same order as one output at a time. The float32
// conversion of each product keeps the compiler from fusing it into the add (GOAMD64=v3).
func dwRowsGo(dst, src, w []float32, b float32, cl dwClamp, g dwGeom) {
	w = w[:len(g.off)]
	for oy := 0; oy < g.oh; oy++ {
		row := dst[oy*g.ow : (oy+1)*g.ow]
		for i := range row {
			row[i] = b
		}
		for k, o := range g.off {
			wk := w[k]
			xs := src[o+oy*g.wq:][:len(row)]
			for i, x := range xs {
				row[i] += float32(wk * x)
			}
		}
		if cl != dwNoClamp {
			for i, v := range row {
				if cl.lo > v {
					v = cl.lo
				}
				if cl.hi < v {
					v = cl.hi
				}
				row[i] = v
			}
		}
	}
}

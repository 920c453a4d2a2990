package cpu

import "math/bits"

// The channel path of depthwise convolutions: one kernel call computes a group of whole
// channels, padded copy included (see package internal/dwasm, ChansAVX512). The row path
// (depthwiseTask.channel) spent four to six times the taps' time on small planes (the 7x7 and
// 14x14 stages of MobileNet and EfficientNet) on Go work per row: the copy of each input row into
// the padded plane, the stride-2 split one call per row, the copy of each output row out of the
// flat plane. On Zen 5 (TestDepthwiseAB-style interleaved runs, one thread, AVX-512) the channel
// path took 1.1x (112x112, stride 1) to 5.7x (14x14, 5x5, stride 2) less time than the rows at
// every MobileNetV2 and EfficientNet-B0 shape; the Go form (dwChansGo) is slower than the Go
// rows, so the generic level keeps them.
//
// The kernel follows a plan (dwPlan) that the Go code builds once per Run from the geometry: a
// table of where each input row lands in the padded plane, the load masks of a row's chunks, the
// taps' offsets, and per 16-float vector of the flat output row, which lanes are outputs. The
// arithmetic is that of dwRowsGo, so the results are the same bits at every level.

// dwChansGroup is the channels of one channel-kernel call: the residual and activation tail
// (finishRows) then runs on them while their outputs are in L1 (16 14x14 planes: 12 KiB).
const dwChansGroup = 16

// dwPlan is the tables of the channel kernel for one input size (see package dwasm, ChansArgs,
// for their layout). It is rebuilt by each Run into the same slices, which keeps Run free of
// allocations.
type dwPlan struct {
	s      int      // the stride, 1 or 2, both directions
	h, w   int      // the input plane
	ohw    int      // the floats of one output channel
	rows   []int    // two byte offsets per input row
	chunks []uint64 // the load masks of a row's chunks: one per chunk (stride 2: two)
	nc     int      // chunks per row
	off    []int    // the taps' offsets in the plane, kh-major
	vec    []uint64 // three words per output vector: the kept lanes, the store mask, the bytes
	nvec   int
	plane  int       // floats of one scratch plane (the kernel alternates two)
	zeros  []float32 // the biases of a convolution without any
	built  bool      // build has run (for h x w)
}

// dwChanGeom is the layout of the channel path's plane: phase planes (stride 2: four) of hq rows
// of wq floats, ps floats apart (hq*wq and 16 floats of slack, which the fill's whole-vector
// stores past a row's end may write), and the flat output row of n floats.
type dwChanGeom struct {
	s, hq, wq, ps int
	oh, ow, n     int
}

// dwChanGeom returns the channel path's geometry for an h x w input, and whether the path
// takes the convolution at all: at a level whose table has the channel kernel (dwChanPlanes),
// one output channel per input channel, equal strides of 1 or 2, no dilation, no prologue (the
// kernel copies the input as it is), and no more columns dropped per output row than kept (the
// flat row computes them all).
func (c *Conv2D) dwChanGeom(h, w int) (dwChanGeom, bool) {
	s := &c.spec
	if !c.code.dwChanPlanes || c.mg != 1 || s.StrideH != s.StrideW || s.StrideH > 2 || s.DilationH != 1 || s.DilationW != 1 ||
		s.PreScale != nil || s.PreRelu {
		return dwChanGeom{}, false
	}
	oh, ow := c.OutputSize(h, w)
	st := s.StrideH
	g := dwChanGeom{s: st, hq: (h + s.PadT + s.PadB + st - 1) / st, wq: (w + s.PadL + s.PadR + st - 1) / st, oh: oh, ow: ow}
	if oh <= 0 || ow <= 0 || h <= 0 || w <= 0 || g.wq-ow > ow {
		return dwChanGeom{}, false
	}
	g.ps = g.hq*g.wq + 16
	g.n = (oh-1)*g.wq + ow
	return g, true
}

// planeFloats returns the floats of the scratch plane: the phase planes, and whatever the flat
// row's last vector reads past them.
func (g dwChanGeom) planeFloats(kh, kw int) int {
	maxOff := g.tapOff(kh-1, kw-1)
	return max(g.s*g.s*g.ps, maxOff+16*((g.n+15)/16))
}

// tapOff is the offset of tap (i, j) in the plane: phase (i%s, j%s), row i/s, column j/s.
func (g dwChanGeom) tapOff(i, j int) int {
	return ((i%g.s)*g.s+j%g.s)*g.ps + (i/g.s)*g.wq + j/g.s
}

// lanes returns the mask of the first n of 16 lanes (n clamped to 0..16).
func lanes(n int) uint64 { return 1<<uint(min(max(n, 0), 16)) - 1 }

// build sets pl to the plan of g for convolution c over an h x w input.
func (pl *dwPlan) build(c *Conv2D, g dwChanGeom, h, w int) {
	s := &c.spec
	pl.s, pl.h, pl.w, pl.ohw = g.s, h, w, g.oh*g.ow
	pl.plane = g.planeFloats(s.KH, s.KW)
	pl.off = pl.off[:0]
	for i := 0; i < s.KH; i++ {
		for j := 0; j < s.KW; j++ {
			pl.off = append(pl.off, g.tapOff(i, j))
		}
	}
	// Input row y is padded row y + PadT: phase py, row i. Stride 2 stores its even columns at
	// those of phase PadL%2 from column PadL/2, its odd ones at phase (PadL+1)%2 from (PadL+1)/2.
	pl.rows = pl.rows[:0]
	pl.chunks = pl.chunks[:0]
	if g.s == 1 {
		for y := 0; y < h; y++ {
			o := 4 * ((y+s.PadT)*g.wq + s.PadL)
			pl.rows = append(pl.rows, o, o)
		}
		pl.nc = (w + 15) / 16
		for j := 0; j < pl.nc; j++ {
			pl.chunks = append(pl.chunks, lanes(w-16*j))
		}
	} else {
		pe, po := s.PadL%2, (s.PadL+1)%2
		for y := 0; y < h; y++ {
			py, i := (y+s.PadT)%2, (y+s.PadT)/2
			pl.rows = append(pl.rows, 4*((2*py+pe)*g.ps+i*g.wq+s.PadL/2), 4*((2*py+po)*g.ps+i*g.wq+(s.PadL+1)/2))
		}
		pl.nc = (w + 31) / 32
		for j := 0; j < pl.nc; j++ {
			pl.chunks = append(pl.chunks, lanes(w-32*j), lanes(w-32*j-16))
		}
	}
	pl.nvec = (g.n + 15) / 16
	pl.vec = pl.vec[:0]
	for v := 0; v < pl.nvec; v++ {
		var keep uint64
		for l := 0; l < 16; l++ {
			if p := 16*v + l; p < g.n && p%g.wq < g.ow {
				keep |= 1 << l
			}
		}
		k := bits.OnesCount64(keep)
		pl.vec = append(pl.vec, keep, lanes(k), uint64(4*k))
	}
	if s.Bias == nil && len(pl.zeros) < s.Cout {
		pl.zeros = make([]float32, s.Cout)
	}
	pl.built = true
}

// dwChansGo computes nch output channels into y (ohw floats each) from the input channels x
// (h*w floats each), their weights w (taps each) and biases b, with p (2*pl.plane floats, zero
// where the plan writes no pixel) as the padded planes (this code uses the first): the portable form of the channel kernels
// (package dwasm, ChansAVX512), which give the same bits. Each output is
//
//	v = b; v += w[0]*p[off[0] + i]; v += w[1]*p[off[1] + i]; ...   (each product rounded, then added)
//	v = cl.lo > v ? cl.lo : v; v = cl.hi < v ? cl.hi : v
//
// for flat position i of a kept lane, in the order of dwRowsGo.
func dwChansGo(pl *dwPlan, x, y, w, b []float32, nch int, p []float32, cl dwClamp) {
	taps := len(pl.off)
	hw := pl.h * pl.w
	for ch := 0; ch < nch; ch++ {
		xc := x[ch*hw : (ch+1)*hw]
		for r := 0; r < pl.h; r++ {
			xr := xc[r*pl.w : (r+1)*pl.w]
			a, o := pl.rows[2*r]/4, pl.rows[2*r+1]/4
			for j := 0; j < pl.nc; j++ {
				if pl.s == 1 {
					n := bits.OnesCount64(pl.chunks[j])
					copy(p[a+16*j:a+16*j+n], xr[16*j:16*j+n])
					continue
				}
				n := bits.OnesCount64(pl.chunks[2*j]) + bits.OnesCount64(pl.chunks[2*j+1])
				for t := 0; 2*t < n; t++ {
					p[a+16*j+t] = xr[32*j+2*t]
					if 2*t+1 < n {
						p[o+16*j+t] = xr[32*j+2*t+1]
					}
				}
			}
		}
		wc := w[ch*taps : (ch+1)*taps]
		bias := b[ch]
		yc := y[ch*pl.ohw : (ch+1)*pl.ohw]
		q := 0
		for v := 0; v < pl.nvec; v++ {
			keep := pl.vec[3*v]
			for l := 0; l < 16; l++ {
				if keep>>l&1 == 0 {
					continue
				}
				i := 16*v + l
				acc := bias
				for k, o := range pl.off {
					acc += float32(wc[k] * p[o+i])
				}
				if cl.lo > acc {
					acc = cl.lo
				}
				if cl.hi < acc {
					acc = cl.hi
				}
				yc[q] = acc
				q++
			}
		}
	}
}

// chansDynamic runs groups of dwChansGroup channels on the channel path, with p as the planes,
// taking them from t.next until none is left. The chunks of a Run share the channels this way
// rather than computing a fixed half each: on a VM where the second thread may start late (it
// was asleep, or another process holds its core), a fixed split left the calling thread waiting
// for the late half, and 2 threads ran depthwise layers no faster than 1. Which thread computes
// a channel changes nothing in its bits.
func (t *depthwiseTask) chansDynamic(p []float32) {
	cout := t.c.spec.Cout
	groups := int32((cout + dwChansGroup - 1) / dwChansGroup)
	cleared := false
	for {
		g := t.next.Add(1) - 1
		if g >= groups {
			return
		}
		if !cleared {
			clear(p) // both planes: once per chunk, whatever its channels
			cleared = true
		}
		m := int(g) * dwChansGroup
		t.chans(m, min(m+dwChansGroup, cout), p)
	}
}

// chans runs output channels [lo, hi) on the channel path, with p as the planes (zero where
// the plan writes no pixel).
func (t *depthwiseTask) chans(lo, hi int, p []float32) {
	pl := t.plan
	s := &t.c.spec
	taps := len(pl.off)
	hw := t.h * t.w
	ohw := pl.ohw
	b := s.Bias
	if b == nil {
		b = pl.zeros
	}
	for m := lo; m < hi; m += dwChansGroup {
		n := min(dwChansGroup, hi-m)
		t.c.code.dwChans(pl, t.src[m*hw:], t.out[m*ohw:], t.c.w[m*taps:], b[m:], n, p, t.c.dwClamp)
		if t.c.hasTail() {
			t.c.finishRows(t.out, t.res, m*ohw, n, ohw, ohw)
		}
	}
}

package cpu

// depthwiseTask computes the output channels [lo, hi) of one batch item of a convolution with one
// input channel per group, from the padded copy: for output channel m of group g = m / (Cout/Group),
//
//	Y[m, oy, ox] = post(Bias[m] + sum_{kh,kw} W[m,kh,kw] * padded[g][phase(kh,kw)][oy + dy/sh][ox + dx/sw])
//
// with dy = kh*DilationH, dx = kw*DilationW and phase = (dy % sh, dx % sw). The innermost loop runs
// over contiguous ox with a fixed weight.
type depthwiseTask struct {
	c      *Conv2D
	pg     padGeom
	padded []float32
	out    []float32 // the batch item's output channels, oh*ow each
	oh, ow int
}

func (c *Conv2D) runDepthwise(workers *Workers, w *convWorker, in, out Image, b int, scratch []float32) {
	pg := c.padGeom(in.H, in.W)
	padded := scratch[:c.spec.Cin*pg.chan_]
	c.prepare(workers, w, in, b, pg, padded)
	w.dw = depthwiseTask{c: c, pg: pg, padded: padded, out: out.Item(b), oh: out.H, ow: out.W}
	grain := max(1, 16384/max(out.H*out.W*c.spec.KH*c.spec.KW, 1))
	parallel(workers, &w.dw, c.spec.Cout, grain, &w.wg)
}

// Do implements Task.
func (t *depthwiseTask) Do(lo, hi int) {
	s := &t.c.spec
	plane := t.pg.hq * t.pg.wq
	for m := lo; m < hi; m++ {
		g := m / t.c.mg
		src := t.padded[g*t.pg.chan_ : (g+1)*t.pg.chan_]
		dst := t.out[m*t.oh*t.ow : (m+1)*t.oh*t.ow]
		var b float32
		if s.Bias != nil {
			b = s.Bias[m]
		}
		w := t.c.w[m*s.KH*s.KW : (m+1)*s.KH*s.KW]
		if s.KH == 3 && s.KW == 3 && s.DilationH == 1 && s.DilationW == 1 {
			t.rows3x3(src, dst, w, b, plane)
			continue
		}
		for i := range dst {
			dst[i] = b
		}
		for kh := 0; kh < s.KH; kh++ {
			dy := kh * s.DilationH
			for kw := 0; kw < s.KW; kw++ {
				dx := kw * s.DilationW
				wv := w[kh*s.KW+kw]
				pl := src[((dy%s.StrideH)*s.StrideW+dx%s.StrideW)*plane:][:plane]
				for oy := 0; oy < t.oh; oy++ {
					row := dst[oy*t.ow : (oy+1)*t.ow]
					xs := pl[(oy+dy/s.StrideH)*t.pg.wq+dx/s.StrideW:][:len(row)]
					for i, v := range xs {
						row[i] += wv * v
					}
				}
			}
		}
		if s.PostRelu {
			for i, v := range dst {
				if v < 0 {
					dst[i] = 0
				}
			}
		}
	}
}

// rows3x3 computes one output channel of a 3x3 depthwise convolution (dilation 1, any stride;
// MobileNet's and EfficientNet's) an output row at a time with all nine taps together, where the
// general loop makes nine passes over the whole output plane: one store per output instead of
// nine loads and nine stores. The sum runs in the same order (bias, then taps row by row), so the
// results are bit-identical to the general loop's; ReLU (PostRelu) is applied in the same pass.
// The rows run in the level's kernel (dw3x3Go, or the assembly of dwasm, which gives the same
// bits): with the phase-split layout every tap of every stride reads a contiguous input row.
func (t *depthwiseTask) rows3x3(src, dst, w []float32, b float32, plane int) {
	s := &t.c.spec
	sh, sw := s.StrideH, s.StrideW
	g := dwGeom{wq: t.pg.wq, oh: t.oh, ow: t.ow}
	for kh := 0; kh < 3; kh++ {
		for kw := 0; kw < 3; kw++ {
			g.base[kh*3+kw] = ((kh%sh)*sw+kw%sw)*plane + (kh/sh)*t.pg.wq + kw/sw
		}
	}
	t.c.code.dw3x3(dst, src, w, b, s.PostRelu, g)
}

// dwGeom is where the nine taps of a 3x3 depthwise channel read: tap k of output row oy reads
// src[base[k] + oy*wq:][:ow] (base[0] is 0), and the output is oh rows of ow.
type dwGeom struct {
	base       [9]int
	wq, oh, ow int
}

// dw3x3Go is the portable kernel of rows3x3: for each output row oy and column i,
//
//	v = b + w0*x0[i] + w1*x1[i] + ... + w8*x8[i]   (left to right, each product rounded)
//	dst[oy*ow + i] = relu ? (v < 0 ? 0 : v) : v
//
// with x_k = src[g.base[k] + oy*g.wq:].
func dw3x3Go(dst, src, w []float32, b float32, relu bool, g dwGeom) {
	ow := g.ow
	w0, w1, w2, w3, w4, w5, w6, w7, w8 := w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]
	for oy := 0; oy < g.oh; oy++ {
		row := dst[oy*ow : (oy+1)*ow]
		o := oy * g.wq
		x0, x1, x2 := src[g.base[0]+o:][:ow], src[g.base[1]+o:][:ow], src[g.base[2]+o:][:ow]
		x3, x4, x5 := src[g.base[3]+o:][:ow], src[g.base[4]+o:][:ow], src[g.base[5]+o:][:ow]
		x6, x7, x8 := src[g.base[6]+o:][:ow], src[g.base[7]+o:][:ow], src[g.base[8]+o:][:ow]
		for i := range row {
			v := b
			v += w0 * x0[i]
			v += w1 * x1[i]
			v += w2 * x2[i]
			v += w3 * x3[i]
			v += w4 * x4[i]
			v += w5 * x5[i]
			v += w6 * x6[i]
			v += w7 * x7[i]
			v += w8 * x8[i]
			if relu && v < 0 {
				v = 0
			}
			row[i] = v
		}
	}
}

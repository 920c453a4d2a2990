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
		for i := range dst {
			dst[i] = b
		}
		w := t.c.w[m*s.KH*s.KW : (m+1)*s.KH*s.KW]
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

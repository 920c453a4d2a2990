package cpu

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
)

// usePadded reports whether a pathDirect convolution runs on an h x w input with runPadded: when
// the dropped columns, (wq-OW)/wq of the work, are under 1/12 (3x3 pad 1 at 28x28 and up).
func (c *Conv2D) usePadded(h, w int) bool {
	if c.path != pathDirect || c.padded < 0 {
		return false
	}
	if c.padded > 0 {
		return true
	}
	_, ow := c.OutputSize(h, w)
	wq := c.padGeom(h, w).wq
	return 12*(wq-ow) < wq
}

// flatN returns the number of flat output columns of pathPadded: (OH-1)*wq + OW.
func (c *Conv2D) flatN(h, w int) int {
	oh, ow := c.OutputSize(h, w)
	return (oh-1)*c.padGeom(h, w).wq + ow
}

func (c *Conv2D) runPadded(workers *Workers, st *convState, w *convWorker, in, out Image, b int, scratch []float32, threads int) error {
	s := &c.spec
	pg := c.padGeom(in.H, in.W)
	oh, ow := out.H, out.W
	nf := c.flatN(in.H, in.W)
	padded := scratch[:s.Cin*pg.chan_]
	flat := scratch[len(padded) : len(padded)+c.mg*nf]
	gs := scratch[len(padded)+len(flat):]
	c.prepare(workers, w, in, b, pg, padded)
	for g := 0; g < s.Group; g++ {
		src := padded[g*c.cg*pg.chan_ : (g+1)*c.cg*pg.chan_]
		if err := w.pad.rows.Init(c.code.gemm, src, st.offs, nil, nil, false); err != nil {
			return fmt.Errorf("cpu: conv: %w", err)
		}
		if err := c.gemmItem(workers, w, g, &w.pad, flat, nf, nf, gs, threads, false); err != nil {
			return err
		}
		w.unpad = unpadTask{flat: flat, nf: nf, wq: pg.wq, out: out.Data[b*out.BatchStride+g*c.mg*oh*ow:], oh: oh, ow: ow}
		if c.gemmTail() {
			w.unpad.c, w.unpad.res = c, itemResidual(w.res, b, g*c.mg, oh*ow)
		}
		parallel(workers, &w.unpad, c.mg, max(1, 8192/max(oh*ow, 1)), &w.wg)
	}
	return nil
}

// paddedPanel is the BPanel of pathPadded: B[k][n] = rows.Src[rows.Offs[k] + n], read in place.
type paddedPanel struct {
	rows gemm.Rows
}

// PackB implements gemm.BPanel (used for the last, partial panel only).
func (p *paddedPanel) PackB(dst []float32, width, k0, k1, n0, nr int) {
	segs := [1]gemm.Segment{{Lo: 0, Hi: nr, Base: n0}}
	p.rows.Pack(dst, k0, k1, segs[:])
}

// DirectRows implements gemm.DirectB.
func (p *paddedPanel) DirectRows() *gemm.Rows { return &p.rows }

// unpadTask copies output channels [lo, hi) from the flat GEMM result (row m: nf columns,
// pixel (oy, ox) at oy*wq + ox) to the output image, then applies the epilogue's tail to each
// channel when c is set (res: the residual at the output's positions, or nil).
type unpadTask struct {
	flat   []float32
	nf, wq int
	out    []float32
	oh, ow int
	c      *Conv2D
	res    []float32
}

// Do implements Task.
func (t *unpadTask) Do(lo, hi int) {
	for m := lo; m < hi; m++ {
		src := t.flat[m*t.nf : (m+1)*t.nf]
		dst := t.out[m*t.oh*t.ow : (m+1)*t.oh*t.ow]
		for oy := 0; oy < t.oh; oy++ {
			copy(dst[oy*t.ow:(oy+1)*t.ow], src[oy*t.wq:oy*t.wq+t.ow])
		}
		if t.c != nil {
			t.c.finishRows(t.out, t.res, m*t.oh*t.ow, 1, t.oh*t.ow, t.oh*t.ow)
		}
	}
}

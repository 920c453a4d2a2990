package train

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// poolUnit is a 2-D AveragePool or MaxPool. A channel-major batch is C*N contiguous planes, so
// the forward pass is the device's pool (device.TrainingPool) over one "image" of C*N channels;
// the backward pass spreads each output gradient over its window (average: divided by the
// forward pass's count; max: to the element the window chose, the first maximum in row-major
// order, which the backward pass finds again in the stored input).
type poolUnit struct {
	unitBase
	x, y     int
	max      bool
	countPad bool
	win      device.PoolSpec
	pool     device.TrainingPool
	h, w     int
	pb, pr   int
	half     bool // AveragePool 2x2, stride 2, no padding (DenseNet's transitions)
}

func (p *plan) newPool(k device.TrainingKernels, base unitBase, win *ops.Window, isMax, countPad bool) (unit, error) {
	u := &poolUnit{unitBase: base, x: base.in[0], y: base.out[0], max: isMax, countPad: countPad}
	x, err := p.act(u.x, base.node.OpType+" input", 4, 4)
	if err != nil {
		return nil, err
	}
	geo, err := win.PoolShapes(base.node.OpType, x.shape)
	if err != nil {
		return nil, err
	}
	y := p.vals[u.y]
	if y.s != geo.Out[0]*geo.Out[1] {
		return nil, fmt.Errorf("%w: %s output %v does not match its window", ops.ErrShape, base.node.OpType, y.shape)
	}
	u.h, u.w = geo.In[0], geo.In[1]
	u.pb, u.pr = geo.PadEnd[0], geo.PadEnd[1]
	u.win = device.PoolSpec{KH: geo.Kernel[0], KW: geo.Kernel[1], StrideH: geo.Stride[0], StrideW: geo.Stride[1],
		DilationH: geo.Dilation[0], DilationW: geo.Dilation[1], PadT: geo.PadBegin[0], PadL: geo.PadBegin[1],
		PadB: geo.PadEnd[0], PadR: geo.PadEnd[1], OutH: geo.Out[0], OutW: geo.Out[1], Max: isMax, CountIncludePad: countPad}
	if u.pool, err = k.NewPool(u.win); err != nil {
		return nil, err
	}
	if isMax {
		u.reads = []int{u.x}
	}
	kw := u.win
	u.half = !isMax && kw.KH == 2 && kw.KW == 2 && kw.StrideH == 2 && kw.StrideW == 2 && kw.DilationH == 1 && kw.DilationW == 1 &&
		kw.PadT == 0 && kw.PadL == 0 && u.pb == 0 && u.pr == 0 && 2*kw.OutH <= u.h && 2*kw.OutW <= u.w
	return u, nil
}

func (u *poolUnit) planes(r *run) int { v := r.p.vals[u.x]; return v.c * v.n }

// forward pools the channel-major batch as an "image batch" of C items (the channels, cs floats
// apart) of N planes each (the images).
func (u *poolUnit) forward(r *run) error {
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	w := &u.win
	in := device.Image{Data: r.data(u.x), N: xv.c, C: xv.n, H: u.h, W: u.w, BatchStride: xv.cs}
	out := device.Image{Data: r.data(u.y), N: yv.c, C: yv.n, H: w.OutH, W: w.OutW, BatchStride: yv.cs}
	return u.errorf(u.pool.Forward(r.k, in, out))
}

func (u *poolUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil || !r.p.vals[u.x].needGrad {
		return nil
	}
	dx, acc := r.gradIn(u.x)
	if !acc {
		clear(dx)
	}
	var x []float32
	if u.max {
		x = r.data(u.x)
	}
	w := u.win
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	inPlane, outPlane := u.h*u.w, w.OutH*w.OutW
	r.k.Parallel(u.planes(r), 4, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			c, n := p/xv.n, p%xv.n
			xo, yo := c*xv.cs+n*inPlane, c*yv.cs+n*outPlane
			dxp := dx[xo : xo+inPlane]
			dyp := dy[yo : yo+outPlane]
			if u.max {
				maxBackward(x[xo:xo+inPlane], dyp, dxp, u.h, u.w, &w)
			} else if u.half {
				avgBackward2x2(dyp, dxp, u.w, w.OutH, w.OutW)
			} else {
				avgBackward(dyp, dxp, u.h, u.w, &w, u.countPad, u.pb, u.pr)
			}
		}
	})
	return nil
}

// maxBackward adds each output gradient of one plane to the input element its window chose.
func maxBackward(x, dy, dx []float32, h, wd int, w *device.PoolSpec) {
	for oy := 0; oy < w.OutH; oy++ {
		for ox := 0; ox < w.OutW; ox++ {
			best, arg := float32(math.Inf(-1)), -1
			for kh := 0; kh < w.KH; kh++ {
				iy := oy*w.StrideH + kh*w.DilationH - w.PadT
				if iy < 0 || iy >= h {
					continue
				}
				for kw := 0; kw < w.KW; kw++ {
					ix := ox*w.StrideW + kw*w.DilationW - w.PadL
					if ix < 0 || ix >= wd {
						continue
					}
					i := iy*wd + ix
					if v := x[i]; arg < 0 || v > best || (v != v && best == best) {
						best, arg = v, i
					}
				}
			}
			if arg >= 0 {
				dx[arg] += dy[oy*w.OutW+ox]
			}
		}
	}
}

// avgBackward2x2 is avgBackward for 2x2 windows with stride 2 and no padding, where every window
// counts 4 elements: dx[2oy+i][2ox+j] += dy[oy][ox]/4.
func avgBackward2x2(dy, dx []float32, wd, oh, ow int) {
	for oy := 0; oy < oh; oy++ {
		r0 := dx[2*oy*wd:][:2*ow]
		r1 := dx[(2*oy+1)*wd:][:2*ow]
		for ox, d := range dy[oy*ow : (oy+1)*ow] {
			d /= 4
			r0[2*ox] += d
			r0[2*ox+1] += d
			r1[2*ox] += d
			r1[2*ox+1] += d
		}
	}
}

// avgBackward spreads each output gradient of one plane over its window, divided by the count
// the forward pass divided by.
func avgBackward(dy, dx []float32, h, wd int, w *device.PoolSpec, countPad bool, pb, pr int) {
	for oy := 0; oy < w.OutH; oy++ {
		for ox := 0; ox < w.OutW; ox++ {
			inside, padded := 0, 0
			for kh := 0; kh < w.KH; kh++ {
				iy := oy*w.StrideH + kh*w.DilationH - w.PadT
				for kw := 0; kw < w.KW; kw++ {
					ix := ox*w.StrideW + kw*w.DilationW - w.PadL
					if iy >= -w.PadT && iy < h+pb && ix >= -w.PadL && ix < wd+pr {
						padded++
					}
					if iy >= 0 && iy < h && ix >= 0 && ix < wd {
						inside++
					}
				}
			}
			count := inside
			if countPad {
				count = padded
			}
			d := dy[oy*w.OutW+ox] / float32(count)
			for kh := 0; kh < w.KH; kh++ {
				iy := oy*w.StrideH + kh*w.DilationH - w.PadT
				if iy < 0 || iy >= h {
					continue
				}
				for kw := 0; kw < w.KW; kw++ {
					ix := ox*w.StrideW + kw*w.DilationW - w.PadL
					if ix >= 0 && ix < wd {
						dx[iy*wd+ix] += d
					}
				}
			}
		}
	}
}

// gapUnit is GlobalAveragePool: each channel-major plane (c, n) averages into element (c, n) of
// the output, and its gradient spreads back evenly.
type gapUnit struct {
	unitBase
	x, y int
}

func (p *plan) newGAP(base unitBase) (unit, error) {
	u := &gapUnit{unitBase: base, x: base.in[0], y: base.out[0]}
	if _, err := p.act(u.x, "GlobalAveragePool input", 3, 8); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *gapUnit) forward(r *run) error {
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	x, y := r.data(u.x), r.data(u.y)
	S := xv.s
	r.k.Parallel(xv.c*xv.n, 64, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			c, n := p/xv.n, p%xv.n
			var s float64
			for _, v := range x[c*xv.cs+n*S:][:S] {
				s += float64(v)
			}
			y[c*yv.cs+n] = float32(s / float64(S))
		}
	})
	return nil
}

func (u *gapUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil || !r.p.vals[u.x].needGrad {
		return nil
	}
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	dx, acc := r.gradIn(u.x)
	S := xv.s
	inv := 1 / float32(S)
	r.k.Parallel(xv.c*xv.n, 64, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			c, n := p/xv.n, p%xv.n
			d := dy[c*yv.cs+n] * inv
			row := dx[c*xv.cs+n*S:][:S]
			for i := range row {
				if acc {
					row[i] += d
				} else {
					row[i] = d
				}
			}
		}
	})
	return nil
}

package ref

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// poolWindow is one output element's window along one spatial dim: the kernel positions
// k in [lo, hi) read inside the input, and the number of positions that count toward the
// average when padding is included.
type poolWindow struct{ lo, hi, padded int }

// poolDim returns the window of output coordinate o along one dim: input coordinates
// i = o*s + k*d - pb for k in [0, kernel). Positions in [0, in) are read; positions in
// [-pb, in+pe) count when padding is included.
func poolDim(o, in, k, s, d, pb, pe int) poolWindow {
	start := o*s - pb
	var w poolWindow
	w.lo, w.hi = nnValidRange(k, in, d, start)
	_, ph := nnValidRange(k, in+pb+pe, d, o*s)
	w.padded = ph
	return w
}

// averagePoolKernel runs AveragePool on float32 and float64 (float16 and bfloat16 through float32):
//
//	Y[n,c,o] = sum_{k: p(k) inside X} X[n,c,p(k)] / count,   p(k) = o*s + k*d - padBegin
//
// where count is the number of those inside positions, or with count_include_pad the number of
// positions inside the padded extent [-padBegin, in+padEnd) (ceil_mode windows reaching past it
// are not counted further). Sums accumulate in float64.
func averagePoolKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	p, err := opAs[*ops.AveragePool](op)
	if err != nil {
		return nil, err
	}
	x, err := nnInput("AveragePool", in, 0)
	if err != nil {
		return nil, err
	}
	geo, outShape, err := poolGeometry("AveragePool", &p.Window, x.Shape)
	if err != nil {
		return nil, err
	}
	dt := x.DType
	xw := nnWiden(x)
	y := tensor.New(xw.DType, outShape)
	planes := x.Shape[0] * x.Shape[1]
	switch xw.DType {
	case tensor.Float32:
		avgPoolRun(tensor.Data[float32](xw), tensor.Data[float32](y), planes, geo, p.CountIncludePad)
	case tensor.Float64:
		avgPoolRun(tensor.Data[float64](xw), tensor.Data[float64](y), planes, geo, p.CountIncludePad)
	default:
		return nil, fmt.Errorf("ref: AveragePool does not support %s", dt)
	}
	return []*tensor.Tensor{nnNarrow(y, dt)}, nil
}

func avgPoolRun[T nnFloat](x, y []T, planes int, geo *ops.Geometry, countPad bool) {
	g := poolGeom3(geo)
	inPlane, outPlane := g.in[0]*g.in[1]*g.in[2], g.out[0]*g.out[1]*g.out[2]
	for pl := 0; pl < planes; pl++ {
		src, dst := x[pl*inPlane:][:inPlane], y[pl*outPlane:][:outPlane]
		for od := 0; od < g.out[0]; od++ {
			wd := poolDim(od, g.in[0], g.k[0], g.s[0], g.d[0], g.pb[0], g.pe[0])
			for oh := 0; oh < g.out[1]; oh++ {
				wh := poolDim(oh, g.in[1], g.k[1], g.s[1], g.d[1], g.pb[1], g.pe[1])
				for ow := 0; ow < g.out[2]; ow++ {
					ww := poolDim(ow, g.in[2], g.k[2], g.s[2], g.d[2], g.pb[2], g.pe[2])
					var sum float64
					for kd := wd.lo; kd < wd.hi; kd++ {
						id := od*g.s[0] + kd*g.d[0] - g.pb[0]
						for kh := wh.lo; kh < wh.hi; kh++ {
							ih := oh*g.s[1] + kh*g.d[1] - g.pb[1]
							row := src[(id*g.in[1]+ih)*g.in[2]:][:g.in[2]]
							for kw := ww.lo; kw < ww.hi; kw++ {
								sum += float64(row[ow*g.s[2]+kw*g.d[2]-g.pb[2]])
							}
						}
					}
					count := (wd.hi - wd.lo) * (wh.hi - wh.lo) * (ww.hi - ww.lo)
					if countPad {
						count = wd.padded * wh.padded * ww.padded
					}
					// A window with nothing to count gives 0/0 = NaN, as a plain division would.
					dst[(od*g.out[1]+oh)*g.out[2]+ow] = T(sum / float64(count))
				}
			}
		}
	}
}

// poolGeom is a Geometry flattened to three spatial dims (D, H, W), leading dims of size 1.
type poolGeom struct {
	in, out, k, s, d, pb, pe [3]int
}

func poolGeom3(g *ops.Geometry) poolGeom {
	return poolGeom{
		in: nnShape3(g.In, 1), out: nnShape3(g.Out, 1), k: nnShape3(g.Kernel, 1),
		s: nnShape3(g.Stride, 1), d: nnShape3(g.Dilation, 1),
		pb: nnShape3(g.PadBegin, 0), pe: nnShape3(g.PadEnd, 0),
	}
}

// maxPoolKernel runs MaxPool on float32, float64, int8 and uint8 (float16 and bfloat16 through
// float32, which is exact for a maximum):
//
//	Y[n,c,o] = max_{k: p(k) inside X} X[n,c,p(k)],   p(k) = o*s + k*d - padBegin
//
// taking the first maximum in row-major window order and propagating NaN. The optional Indices
// output is the flat index of the chosen element in X, (n*C+c)*plane + offset, with the in-plane
// offset row-major or, for storage_order=1, column-major. A window that reads no element gives the
// type's lowest value (-Inf for floats) and index -1.
func maxPoolKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	p, err := opAs[*ops.MaxPool](op)
	if err != nil {
		return nil, err
	}
	x, err := nnInput("MaxPool", in, 0)
	if err != nil {
		return nil, err
	}
	if nOut < 1 || nOut > 2 {
		return nil, fmt.Errorf("ref: MaxPool has 1 or 2 outputs, asked for %d", nOut)
	}
	geo, outShape, err := poolGeometry("MaxPool", &p.Window, x.Shape)
	if err != nil {
		return nil, err
	}
	dt := x.DType
	xw := nnWiden(x)
	y := tensor.New(xw.DType, outShape)
	var idx []int64
	if nOut == 2 {
		idx = make([]int64, y.Len())
	}
	planes := x.Shape[0] * x.Shape[1]
	colMajor := p.StorageOrder == 1
	switch xw.DType {
	case tensor.Float32:
		maxPoolRun(tensor.Data[float32](xw), tensor.Data[float32](y), idx, planes, geo, colMajor, float32(math.Inf(-1)))
	case tensor.Float64:
		maxPoolRun(tensor.Data[float64](xw), tensor.Data[float64](y), idx, planes, geo, colMajor, math.Inf(-1))
	case tensor.Int8:
		maxPoolRun(tensor.Data[int8](xw), tensor.Data[int8](y), idx, planes, geo, colMajor, math.MinInt8)
	case tensor.Uint8:
		maxPoolRun(tensor.Data[uint8](xw), tensor.Data[uint8](y), idx, planes, geo, colMajor, 0)
	default:
		return nil, fmt.Errorf("ref: MaxPool does not support %s", dt)
	}
	outs := []*tensor.Tensor{nnNarrow(y, dt)}
	if nOut == 2 {
		outs = append(outs, tensor.FromSlice(outShape, idx))
	}
	return outs, nil
}

func maxPoolRun[T nnFloat | int8 | uint8](x, y []T, idx []int64, planes int, geo *ops.Geometry, colMajor bool, lowest T) {
	g := poolGeom3(geo)
	inPlane, outPlane := g.in[0]*g.in[1]*g.in[2], g.out[0]*g.out[1]*g.out[2]
	for pl := 0; pl < planes; pl++ {
		src, dst := x[pl*inPlane:][:inPlane], y[pl*outPlane:][:outPlane]
		for od := 0; od < g.out[0]; od++ {
			wd := poolDim(od, g.in[0], g.k[0], g.s[0], g.d[0], g.pb[0], g.pe[0])
			for oh := 0; oh < g.out[1]; oh++ {
				wh := poolDim(oh, g.in[1], g.k[1], g.s[1], g.d[1], g.pb[1], g.pe[1])
				for ow := 0; ow < g.out[2]; ow++ {
					ww := poolDim(ow, g.in[2], g.k[2], g.s[2], g.d[2], g.pb[2], g.pe[2])
					best, at := lowest, -1
					found := false
					for kd := wd.lo; kd < wd.hi; kd++ {
						id := od*g.s[0] + kd*g.d[0] - g.pb[0]
						for kh := wh.lo; kh < wh.hi; kh++ {
							ih := oh*g.s[1] + kh*g.d[1] - g.pb[1]
							for kw := ww.lo; kw < ww.hi; kw++ {
								iw := ow*g.s[2] + kw*g.d[2] - g.pb[2]
								off := (id*g.in[1]+ih)*g.in[2] + iw
								v := src[off]
								// A NaN wins and then stays: nothing compares greater than it.
								if !found || v > best || (nnIsNaN(v) && !nnIsNaN(best)) {
									best, found = v, true
									if colMajor {
										at = id + ih*g.in[0] + iw*g.in[0]*g.in[1]
									} else {
										at = off
									}
								}
							}
						}
					}
					o := (od*g.out[1]+oh)*g.out[2] + ow
					dst[o] = best
					if idx != nil {
						if at >= 0 {
							idx[pl*outPlane+o] = int64(pl*inPlane + at)
						} else {
							idx[pl*outPlane+o] = -1
						}
					}
				}
			}
		}
	}
}

// nnIsNaN reports whether v is a NaN; it is always false for integer types.
func nnIsNaN[T nnFloat | int8 | uint8](v T) bool { return v != v }

// globalAveragePoolKernel runs GlobalAveragePool: Y[n,c,1,...] = sum X[n,c,...] / plane size, the
// sum in float64.
func globalAveragePoolKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	return globalPool("GlobalAveragePool", in, func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	})
}

// globalMaxPoolKernel runs GlobalMaxPool: Y[n,c,1,...] = max X[n,c,...], NaN when any element is
// NaN (and -Inf for an empty plane).
func globalMaxPoolKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	return globalPool("GlobalMaxPool", in, func(v []float64) float64 {
		m := math.Inf(-1)
		for _, x := range v {
			if x > m || math.IsNaN(x) {
				m = x
				if math.IsNaN(x) {
					break
				}
			}
		}
		return m
	})
}

// globalPool reduces every (n, c) plane of a float tensor of rank >= 3 with reduce, working in
// float64 (exact for float32 inputs and for a maximum) and converting back to X's type.
func globalPool(op string, in []*tensor.Tensor, reduce func([]float64) float64) ([]*tensor.Tensor, error) {
	x, err := nnInput(op, in, 0)
	if err != nil {
		return nil, err
	}
	if x.Rank() < 3 {
		return nil, fmt.Errorf("ref: %s X must have rank >= 3 (N,C,D1,...), got shape %v", op, x.Shape)
	}
	if !x.DType.IsFloat() {
		return nil, fmt.Errorf("ref: %s does not support %s", op, x.DType)
	}
	planes := x.Shape[0] * x.Shape[1]
	plane := 1
	outShape := tensor.Shape{x.Shape[0], x.Shape[1]}
	for _, d := range x.Shape[2:] {
		plane *= d
		outShape = append(outShape, 1)
	}
	v := x.Float64s()
	out := make([]float64, planes)
	for p := range out {
		out[p] = reduce(v[p*plane : (p+1)*plane])
	}
	y, err := nnFloatsLike(x.DType, outShape, out)
	if err != nil {
		return nil, fmt.Errorf("ref: %s: %w", op, err)
	}
	return []*tensor.Tensor{y}, nil
}

// poolGeometry resolves a pooling window on input shape x: the geometry and the output shape
// [N, C, spatial...], checked for size. The reference kernels stop at 3 spatial dims.
func poolGeometry(op string, w *ops.Window, x tensor.Shape) (*ops.Geometry, tensor.Shape, error) {
	geo, err := w.PoolShapes(op, x)
	if err != nil {
		return geo, nil, fmt.Errorf("ref: %w", err)
	}
	if len(geo.In) > 3 {
		return geo, nil, fmt.Errorf("ref: %s with %d spatial dims is not supported (at most 3)", op, len(geo.In))
	}
	outShape := append(tensor.Shape{x[0], x[1]}, geo.Out...)
	if _, err := tensor.CheckShape(nnInt64s(outShape)); err != nil {
		return geo, nil, fmt.Errorf("ref: %s output: %w", op, err)
	}
	return geo, outShape, nil
}

package ref

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// convKernel runs Conv on float32 and float64 (float16 and bfloat16 through float32):
//
//	Y[n,m,o] = B[m] + sum_{c=0}^{C/G-1} sum_k W[m,c,k] * X[n, g*C/G + c, o*s + k*d - padBegin]
//
// with g = m / (M/G) the group of output channel m, k running over the kernel positions and input
// coordinates outside X contributing nothing. Sums accumulate in the element type, bias first,
// then input channel by input channel in kernel order.
//
// The loop nest is ordered for the cache rather than for the formula: for each output plane
// (n, m), every (input channel, kernel offset) pair adds w * (a shifted input row) to each output
// row, so the innermost loop runs over contiguous output x with a fixed weight. Output planes are
// independent and are spread over GOMAXPROCS goroutines; each plane is summed by one goroutine in
// a fixed order, so results do not depend on scheduling.
func convKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	c, err := opAs[*ops.Conv](op)
	if err != nil {
		return nil, err
	}
	x, err := nnInput("Conv", in, 0)
	if err != nil {
		return nil, err
	}
	w, err := nnInput("Conv", in, 1)
	if err != nil {
		return nil, err
	}
	var b *tensor.Tensor
	if c.HasBias {
		if b, err = nnInput("Conv", in, 2); err != nil {
			return nil, err
		}
	}
	if w.DType != x.DType || (b != nil && b.DType != x.DType) {
		return nil, fmt.Errorf("ref: Conv: X, W and B must share a type, got %s, %s and %v", x.DType, w.DType, nnDTypeOrNone(b))
	}
	var bShape []int
	if b != nil {
		bShape = b.Shape
	}
	geo, err := c.ConvShapes(x.Shape, w.Shape, bShape, b != nil)
	if err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	if len(geo.In) > 3 {
		return nil, fmt.Errorf("ref: Conv with %d spatial dims is not supported (at most 3)", len(geo.In))
	}
	outShape := append(tensor.Shape{x.Shape[0], w.Shape[0]}, geo.Out...)
	if _, err := tensor.CheckShape(nnInt64s(outShape)); err != nil {
		return nil, fmt.Errorf("ref: Conv output: %w", err)
	}
	dt := x.DType
	x, w, b = nnWiden(x), nnWiden(w), nnWiden(b)
	var y *tensor.Tensor
	switch x.DType {
	case tensor.Float32:
		y = convTyped[float32](x, w, b, c.Group, geo, outShape)
	case tensor.Float64:
		y = convTyped[float64](x, w, b, c.Group, geo, outShape)
	default:
		return nil, fmt.Errorf("ref: Conv does not support %s inputs", dt)
	}
	return []*tensor.Tensor{nnNarrow(y, dt)}, nil
}

func convTyped[T nnFloat](x, w, b *tensor.Tensor, group int, geo *ops.Geometry, outShape tensor.Shape) *tensor.Tensor {
	y := tensor.New(x.DType, outShape)
	var bias []T
	if b != nil {
		bias = tensor.Data[T](b)
	}
	convRun(tensor.Data[T](x), tensor.Data[T](w), bias, tensor.Data[T](y), x.Shape[0], x.Shape[1], w.Shape[0], group, geo)
	return y
}

// convGeom is a Geometry flattened to three spatial dims (D, H, W), leading dims of size 1.
type convGeom struct {
	in, out, k, s, d, p [3]int
}

func convGeom3(g *ops.Geometry) convGeom {
	cg := convGeom{
		in: nnShape3(g.In, 1), out: nnShape3(g.Out, 1), k: nnShape3(g.Kernel, 1),
		s: nnShape3(g.Stride, 1), d: nnShape3(g.Dilation, 1), p: nnShape3(g.PadBegin, 0),
	}
	// A pointwise convolution (1x1 kernel, stride 1, no padding) maps each input plane onto the
	// output plane element for element: treat the plane as one long row.
	pointwise := true
	for i := 0; i < 3; i++ {
		pointwise = pointwise && cg.k[i] == 1 && cg.s[i] == 1 && cg.p[i] == 0 && cg.in[i] == cg.out[i]
	}
	if pointwise {
		n := cg.in[0] * cg.in[1] * cg.in[2]
		cg.in, cg.out = [3]int{1, 1, n}, [3]int{1, 1, n}
	}
	return cg
}

// convRun computes y (N x M output planes) from x (N x C planes), w (M x C/group x kernel) and
// an optional bias.
func convRun[T nnFloat](x, w, bias, y []T, N, C, M, group int, geo *ops.Geometry) {
	g := convGeom3(geo)
	inPlane := g.in[0] * g.in[1] * g.in[2]
	outPlane := g.out[0] * g.out[1] * g.out[2]
	kSize := g.k[0] * g.k[1] * g.k[2]
	Cg, Mg := C/group, M/group
	// For each kernel offset along each dim, the output coordinates whose input coordinate
	// o*s + k*d - p falls inside the input.
	var lo, hi [3][]int
	for dim := 0; dim < 3; dim++ {
		lo[dim], hi[dim] = make([]int, g.k[dim]), make([]int, g.k[dim])
		for k := 0; k < g.k[dim]; k++ {
			lo[dim][k], hi[dim][k] = nnValidRange(g.out[dim], g.in[dim], g.s[dim], k*g.d[dim]-g.p[dim])
		}
	}
	plane := func(n, m int) {
		dst := y[(n*M+m)*outPlane:][:outPlane]
		var b0 T
		if bias != nil {
			b0 = bias[m]
		}
		for i := range dst {
			dst[i] = b0
		}
		grp := m / Mg
		for cc := 0; cc < Cg; cc++ {
			src := x[(n*C+grp*Cg+cc)*inPlane:][:inPlane]
			wk := w[(m*Cg+cc)*kSize:][:kSize]
			for kd := 0; kd < g.k[0]; kd++ {
				for kh := 0; kh < g.k[1]; kh++ {
					for kw := 0; kw < g.k[2]; kw++ {
						wv := wk[(kd*g.k[1]+kh)*g.k[2]+kw]
						convAccumulate(dst, src, wv, &g, kd, kh, kw, &lo, &hi)
					}
				}
			}
		}
	}
	nnParallel(N*M, func(i int) { plane(i/M, i%M) })
}

// convAccumulate adds wv * X[shifted by kernel offset (kd, kh, kw)] to every output element whose
// input coordinate is inside the input.
func convAccumulate[T nnFloat](dst, src []T, wv T, g *convGeom, kd, kh, kw int, lo, hi *[3][]int) {
	sw := g.s[2]
	owLo, owHi := lo[2][kw], hi[2][kw]
	if owLo >= owHi {
		return
	}
	iw0 := owLo*sw + kw*g.d[2] - g.p[2]
	for od := lo[0][kd]; od < hi[0][kd]; od++ {
		id := od*g.s[0] + kd*g.d[0] - g.p[0]
		for oh := lo[1][kh]; oh < hi[1][kh]; oh++ {
			ih := oh*g.s[1] + kh*g.d[1] - g.p[1]
			drow := dst[(od*g.out[1]+oh)*g.out[2]:][owLo:owHi]
			srow := src[(id*g.in[1]+ih)*g.in[2]:][:g.in[2]]
			if sw == 1 {
				s := srow[iw0:][:len(drow)]
				for i := range drow {
					drow[i] += wv * s[i]
				}
				continue
			}
			iw := iw0
			for i := range drow {
				drow[i] += wv * srow[iw]
				iw += sw
			}
		}
	}
}

// nnValidRange returns the output coordinates o in [lo, hi) with 0 <= o*s + off < in, clipped to
// [0, out).
func nnValidRange(out, in, s, off int) (lo, hi int) {
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	if in-1-off < 0 {
		return 0, 0
	}
	hi = min((in-1-off)/s+1, out)
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// nnParallel calls f(0..n-1), spread over up to GOMAXPROCS goroutines; each index runs exactly once.
func nnParallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

func nnDTypeOrNone(t *tensor.Tensor) any {
	if t == nil {
		return "none"
	}
	return t.DType
}

func nnInt64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

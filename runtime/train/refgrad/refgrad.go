// Package refgrad holds the reference backward kernels of training: for each operator a trainer
// differentiates, the obvious loops that compute the gradients of its inputs from the gradient of
// its output, in float64, on row-major (NCHW) tensors. They are the oracle the fast kernels of
// runtime/train and runtime/kernels/cpu are tested against, and they are themselves checked
// against central finite differences of the forward kernels of runtime/kernels/ref.
//
// Every function accepts tensors of any float type and returns float64 tensors. Shapes are
// checked with the operators' own shape functions, so errors wrap ops.ErrShape.
package refgrad

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// f64 returns t's elements as float64 (a copy).
func f64(t *tensor.Tensor) []float64 { return t.Float64s() }

func newF64(shape tensor.Shape) (*tensor.Tensor, []float64) {
	t := tensor.New(tensor.Float64, shape.Clone())
	return t, tensor.Data[float64](t)
}

// geo2 is a resolved 2-D window.
type geo2 struct {
	h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr int
}

func geo2Of(g *ops.Geometry) (geo2, error) {
	if len(g.In) != 2 {
		return geo2{}, fmt.Errorf("%w: refgrad supports 2-D windows, got %d spatial dims", ops.ErrShape, len(g.In))
	}
	return geo2{h: g.In[0], w: g.In[1], oh: g.Out[0], ow: g.Out[1], kh: g.Kernel[0], kw: g.Kernel[1],
		sh: g.Stride[0], sw: g.Stride[1], dh: g.Dilation[0], dw: g.Dilation[1],
		pt: g.PadBegin[0], pl: g.PadBegin[1], pb: g.PadEnd[0], pr: g.PadEnd[1]}, nil
}

// Conv returns the gradients of Y = Conv(X, W, B) for 2-D X [N,C,H,W], W [M,C/G,KH,KW]:
//
//	dX[n, g*C/G + c, iy, ix] = sum_{m in group g} sum_{kh,kw} W[m,c,kh,kw] * dY[n,m,oy,ox]
//	dW[m,c,kh,kw]            = sum_{n,oy,ox} dY[n,m,oy,ox] * X[n, g*C/G + c, iy, ix]
//	dB[m]                    = sum_{n,oy,ox} dY[n,m,oy,ox]
//
// over the (oy, ox) whose tap lands inside X: iy = oy*sh + kh*dh - pt, ix = ox*sw + kw*dw - pl.
func Conv(op *ops.Conv, x, w, dy *tensor.Tensor) (dx, dw, db *tensor.Tensor, err error) {
	geo, err := op.ConvShapes(x.Shape, w.Shape, nil, false)
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := geo2Of(geo)
	if err != nil {
		return nil, nil, nil, err
	}
	N, C, M := x.Shape[0], x.Shape[1], w.Shape[0]
	if !dy.Shape.Equal(tensor.Shape{N, M, g.oh, g.ow}) {
		return nil, nil, nil, fmt.Errorf("%w: Conv dY has shape %v, want [%d %d %d %d]", ops.ErrShape, dy.Shape, N, M, g.oh, g.ow)
	}
	G := op.Group
	Cg, Mg := C/G, M/G
	xs, ws, dys := f64(x), f64(w), f64(dy)
	dx, dxs := newF64(x.Shape)
	dw, dws := newF64(w.Shape)
	db, dbs := newF64(tensor.Shape{M})
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			grp := m / Mg
			for oy := 0; oy < g.oh; oy++ {
				for ox := 0; ox < g.ow; ox++ {
					d := dys[((n*M+m)*g.oh+oy)*g.ow+ox]
					dbs[m] += d
					for c := 0; c < Cg; c++ {
						ci := grp*Cg + c
						for kh := 0; kh < g.kh; kh++ {
							iy := oy*g.sh + kh*g.dh - g.pt
							if iy < 0 || iy >= g.h {
								continue
							}
							for kw := 0; kw < g.kw; kw++ {
								ix := ox*g.sw + kw*g.dw - g.pl
								if ix < 0 || ix >= g.w {
									continue
								}
								xi := ((n*C+ci)*g.h+iy)*g.w + ix
								wi := ((m*Cg+c)*g.kh+kh)*g.kw + kw
								dxs[xi] += ws[wi] * d
								dws[wi] += xs[xi] * d
							}
						}
					}
				}
			}
		}
	}
	return dx, dw, db, nil
}

// channelsOf returns N, C and the elements per (n, c) of a tensor of rank >= 2.
func channelsOf(s tensor.Shape) (n, c, inner int) {
	inner = 1
	for _, d := range s[2:] {
		inner *= d
	}
	return s[0], s[1], inner
}

// BatchStats returns the per-channel batch mean and biased variance of X [N,C,...] over N and
// the spatial dims: mu[c] = sum x / m, var[c] = sum (x - mu)^2 / m with m = N*spatial.
func BatchStats(x *tensor.Tensor) (mean, variance []float64) {
	N, C, inner := channelsOf(x.Shape)
	xs := f64(x)
	m := float64(N * inner)
	mean, variance = make([]float64, C), make([]float64, C)
	for c := 0; c < C; c++ {
		var s float64
		for n := 0; n < N; n++ {
			for _, v := range xs[(n*C+c)*inner:][:inner] {
				s += v
			}
		}
		mean[c] = s / m
		var q float64
		for n := 0; n < N; n++ {
			for _, v := range xs[(n*C+c)*inner:][:inner] {
				q += (v - mean[c]) * (v - mean[c])
			}
		}
		variance[c] = q / m
	}
	return mean, variance
}

// BatchNormTrain returns the gradients of training-mode BatchNormalization
// Y = scale * xhat + B, xhat = (X - mu) / sqrt(var + eps), with mu and the biased var the batch
// statistics of X (so they depend on X too): with m = N*spatial and sums over N and space,
//
//	dB[c]     = sum dY
//	dscale[c] = sum dY * xhat
//	dX        = scale / sqrt(var + eps) * (dY - dB/m - xhat * dscale/m)
func BatchNormTrain(x, scale *tensor.Tensor, eps float64, dy *tensor.Tensor) (dx, dscale, dbias *tensor.Tensor, err error) {
	if err := bnCheck(x, scale, dy); err != nil {
		return nil, nil, nil, err
	}
	mean, variance := BatchStats(x)
	return bnBackward(x, scale, mean, variance, eps, dy, true)
}

// BatchNormEval returns the gradients of inference-mode BatchNormalization, which normalizes
// with the given statistics (constants): dX = scale / sqrt(var + eps) * dY, dscale = sum dY*xhat,
// dB = sum dY.
func BatchNormEval(x, scale, mean, variance *tensor.Tensor, eps float64, dy *tensor.Tensor) (dx, dscale, dbias *tensor.Tensor, err error) {
	if err := bnCheck(x, scale, dy); err != nil {
		return nil, nil, nil, err
	}
	return bnBackward(x, scale, f64(mean), f64(variance), eps, dy, false)
}

func bnCheck(x, scale, dy *tensor.Tensor) error {
	if len(x.Shape) < 2 || !dy.Shape.Equal(x.Shape) || len(scale.Shape) != 1 || scale.Shape[0] != x.Shape[1] {
		return fmt.Errorf("%w: BatchNormalization X %v, scale %v, dY %v", ops.ErrShape, x.Shape, scale.Shape, dy.Shape)
	}
	return nil
}

func bnBackward(x, scale *tensor.Tensor, mean, variance []float64, eps float64, dy *tensor.Tensor, train bool) (dx, dscale, dbias *tensor.Tensor, err error) {
	N, C, inner := channelsOf(x.Shape)
	xs, dys, gs := f64(x), f64(dy), f64(scale)
	dx, dxs := newF64(x.Shape)
	dscale, dss := newF64(tensor.Shape{C})
	dbias, dbs := newF64(tensor.Shape{C})
	m := float64(N * inner)
	for c := 0; c < C; c++ {
		inv := 1 / math.Sqrt(variance[c]+eps)
		for n := 0; n < N; n++ {
			off := (n*C + c) * inner
			for i := 0; i < inner; i++ {
				xhat := (xs[off+i] - mean[c]) * inv
				dbs[c] += dys[off+i]
				dss[c] += dys[off+i] * xhat
			}
		}
		for n := 0; n < N; n++ {
			off := (n*C + c) * inner
			for i := 0; i < inner; i++ {
				if train {
					xhat := (xs[off+i] - mean[c]) * inv
					dxs[off+i] = gs[c] * inv * (dys[off+i] - dbs[c]/m - xhat*dss[c]/m)
				} else {
					dxs[off+i] = gs[c] * inv * dys[off+i]
				}
			}
		}
	}
	return dx, dscale, dbias, nil
}

// Relu returns dX = dY where X > 0, else 0 (the subgradient 0 at X = 0, as PyTorch).
func Relu(x, dy *tensor.Tensor) (*tensor.Tensor, error) {
	if !x.Shape.Equal(dy.Shape) {
		return nil, fmt.Errorf("%w: Relu X %v, dY %v", ops.ErrShape, x.Shape, dy.Shape)
	}
	xs, dys := f64(x), f64(dy)
	dx, dxs := newF64(x.Shape)
	for i, v := range xs {
		if v > 0 {
			dxs[i] = dys[i]
		}
	}
	return dx, nil
}

// MaxPool returns the gradient of 2-D MaxPool: each dY element goes to the input element its
// window chose (the first maximum in row-major window order, NaN winning).
func MaxPool(op *ops.MaxPool, x, dy *tensor.Tensor) (*tensor.Tensor, error) {
	geo, err := op.PoolShapes("MaxPool", x.Shape)
	if err != nil {
		return nil, err
	}
	g, err := geo2Of(geo)
	if err != nil {
		return nil, err
	}
	N, C := x.Shape[0], x.Shape[1]
	if !dy.Shape.Equal(tensor.Shape{N, C, g.oh, g.ow}) {
		return nil, fmt.Errorf("%w: MaxPool dY has shape %v", ops.ErrShape, dy.Shape)
	}
	xs, dys := f64(x), f64(dy)
	dx, dxs := newF64(x.Shape)
	for p := 0; p < N*C; p++ {
		for oy := 0; oy < g.oh; oy++ {
			for ox := 0; ox < g.ow; ox++ {
				best, arg := math.Inf(-1), -1
				for kh := 0; kh < g.kh; kh++ {
					iy := oy*g.sh + kh*g.dh - g.pt
					if iy < 0 || iy >= g.h {
						continue
					}
					for kw := 0; kw < g.kw; kw++ {
						ix := ox*g.sw + kw*g.dw - g.pl
						if ix < 0 || ix >= g.w {
							continue
						}
						i := (p*g.h+iy)*g.w + ix
						if v := xs[i]; arg < 0 || v > best || (math.IsNaN(v) && !math.IsNaN(best)) {
							best, arg = v, i
						}
					}
				}
				if arg >= 0 {
					dxs[arg] += dys[(p*g.oh+oy)*g.ow+ox]
				}
			}
		}
	}
	return dx, nil
}

// AveragePool returns the gradient of 2-D AveragePool on an input of shape xShape: each dY
// element is divided by its window's count (as the forward pass counts) and added to every input
// element of the window.
func AveragePool(op *ops.AveragePool, xShape tensor.Shape, dy *tensor.Tensor) (*tensor.Tensor, error) {
	geo, err := op.PoolShapes("AveragePool", xShape)
	if err != nil {
		return nil, err
	}
	g, err := geo2Of(geo)
	if err != nil {
		return nil, err
	}
	N, C := xShape[0], xShape[1]
	if !dy.Shape.Equal(tensor.Shape{N, C, g.oh, g.ow}) {
		return nil, fmt.Errorf("%w: AveragePool dY has shape %v", ops.ErrShape, dy.Shape)
	}
	dys := f64(dy)
	dx, dxs := newF64(xShape)
	for p := 0; p < N*C; p++ {
		for oy := 0; oy < g.oh; oy++ {
			for ox := 0; ox < g.ow; ox++ {
				inside, padded := 0, 0
				for kh := 0; kh < g.kh; kh++ {
					iy := oy*g.sh + kh*g.dh - g.pt
					for kw := 0; kw < g.kw; kw++ {
						ix := ox*g.sw + kw*g.dw - g.pl
						if iy >= -g.pt && iy < g.h+g.pb && ix >= -g.pl && ix < g.w+g.pr {
							padded++
						}
						if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
							inside++
						}
					}
				}
				count := inside
				if op.CountIncludePad {
					count = padded
				}
				d := dys[(p*g.oh+oy)*g.ow+ox] / float64(count)
				for kh := 0; kh < g.kh; kh++ {
					iy := oy*g.sh + kh*g.dh - g.pt
					if iy < 0 || iy >= g.h {
						continue
					}
					for kw := 0; kw < g.kw; kw++ {
						ix := ox*g.sw + kw*g.dw - g.pl
						if ix >= 0 && ix < g.w {
							dxs[(p*g.h+iy)*g.w+ix] += d
						}
					}
				}
			}
		}
	}
	return dx, nil
}

// GlobalAveragePool returns dX[n,c,...] = dY[n,c] / spatial for an input of shape xShape.
func GlobalAveragePool(xShape tensor.Shape, dy *tensor.Tensor) (*tensor.Tensor, error) {
	if len(xShape) < 3 || dy.Len() != xShape[0]*xShape[1] {
		return nil, fmt.Errorf("%w: GlobalAveragePool X %v, dY %v", ops.ErrShape, xShape, dy.Shape)
	}
	N, C, inner := channelsOf(xShape)
	dys := f64(dy)
	dx, dxs := newF64(xShape)
	for p := 0; p < N*C; p++ {
		for i := 0; i < inner; i++ {
			dxs[p*inner+i] = dys[p] / float64(inner)
		}
	}
	return dx, nil
}

// Gemm returns the gradients of Y = alpha * A' * B' + beta * C (A' = A or A^T, B' = B or B^T):
//
//	dA' = alpha * dY * B'^T,  dB' = alpha * A'^T * dY,  dC = beta * dY summed over C's broadcast dims
//
// dA and dB are transposed back to A's and B's layouts. c may be nil (then dc is nil).
func Gemm(op *ops.Gemm, a, b, c, dy *tensor.Tensor) (da, db, dc *tensor.Tensor, err error) {
	M, K, Nn, err := op.Dims(a.Shape, b.Shape)
	if err != nil {
		return nil, nil, nil, err
	}
	if !dy.Shape.Equal(tensor.Shape{M, Nn}) {
		return nil, nil, nil, fmt.Errorf("%w: Gemm dY has shape %v, want [%d %d]", ops.ErrShape, dy.Shape, M, Nn)
	}
	as, bs, dys := f64(a), f64(b), f64(dy)
	aAt := func(i, p int) int { // index of A'[i,p] in A
		if op.TransA {
			return p*M + i
		}
		return i*K + p
	}
	bAt := func(p, j int) int {
		if op.TransB {
			return j*K + p
		}
		return p*Nn + j
	}
	da, das := newF64(a.Shape)
	db, dbs := newF64(b.Shape)
	alpha := float64(op.Alpha)
	for i := 0; i < M; i++ {
		for j := 0; j < Nn; j++ {
			d := alpha * dys[i*Nn+j]
			for p := 0; p < K; p++ {
				das[aAt(i, p)] += d * bs[bAt(p, j)]
				dbs[bAt(p, j)] += d * as[aAt(i, p)]
			}
		}
	}
	if c != nil {
		if err := op.CheckC(c.Shape, M, Nn); err != nil {
			return nil, nil, nil, err
		}
		dc, err = ReduceTo(dy, c.Shape)
		if err != nil {
			return nil, nil, nil, err
		}
		for i, v := range tensor.Data[float64](dc) {
			tensor.Data[float64](dc)[i] = v * float64(op.Beta)
		}
	}
	return da, db, dc, nil
}

// ReduceTo sums dy over the dims that numpy broadcasting expanded from shape: the gradient of an
// input of shape shape that was broadcast to dy's shape.
func ReduceTo(dy *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	r := len(dy.Shape)
	if len(shape) > r {
		return nil, fmt.Errorf("%w: cannot reduce %v to %v", ops.ErrShape, dy.Shape, shape)
	}
	full := make([]int, r) // shape right-aligned, padded with 1s
	for i := range full {
		full[i] = 1
	}
	copy(full[r-len(shape):], shape)
	for i, d := range full {
		if d != 1 && d != dy.Shape[i] {
			return nil, fmt.Errorf("%w: cannot reduce %v to %v", ops.ErrShape, dy.Shape, shape)
		}
	}
	out, os := newF64(shape)
	dys := f64(dy)
	idx := make([]int, r)
	for i, v := range dys {
		rem := i
		for d := r - 1; d >= 0; d-- {
			idx[d] = rem % dy.Shape[d]
			rem /= dy.Shape[d]
		}
		o := 0
		for d := 0; d < r; d++ {
			k := idx[d]
			if full[d] == 1 {
				k = 0
			}
			o = o*full[d] + k
		}
		os[o] += v
	}
	return out, nil
}

// Add returns the gradients of Y = A + B with numpy broadcasting: dA and dB are dY summed down to
// the inputs' shapes.
func Add(aShape, bShape tensor.Shape, dy *tensor.Tensor) (da, db *tensor.Tensor, err error) {
	if da, err = ReduceTo(dy, aShape); err != nil {
		return nil, nil, err
	}
	if db, err = ReduceTo(dy, bShape); err != nil {
		return nil, nil, err
	}
	return da, db, nil
}

// Concat returns the gradient of each input of a Concat along axis (negative counts from the
// back): the slices of dY at the inputs' positions.
func Concat(axis int, shapes []tensor.Shape, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
	r := len(dy.Shape)
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return nil, fmt.Errorf("%w: Concat axis %d for rank %d", ops.ErrShape, axis, r)
	}
	outer, inner := 1, 1
	for _, d := range dy.Shape[:axis] {
		outer *= d
	}
	for _, d := range dy.Shape[axis+1:] {
		inner *= d
	}
	dys := f64(dy)
	total := dy.Shape[axis]
	var out []*tensor.Tensor
	off := 0
	for _, s := range shapes {
		if len(s) != r {
			return nil, fmt.Errorf("%w: Concat input shape %v, dY %v", ops.ErrShape, s, dy.Shape)
		}
		t, ts := newF64(s)
		k := s[axis]
		for o := 0; o < outer; o++ {
			copy(ts[o*k*inner:(o+1)*k*inner], dys[(o*total+off)*inner:(o*total+off+k)*inner])
		}
		off += k
		out = append(out, t)
	}
	if off != total {
		return nil, fmt.Errorf("%w: Concat inputs have %d along axis %d, dY %d", ops.ErrShape, off, axis, total)
	}
	return out, nil
}

// Pad returns the gradient of a constant-mode Pad of an input of shape xShape with full pads
// [b0..b(r-1), e0..e(r-1)] (negative pads crop): dX is the part of dY that holds X.
func Pad(xShape tensor.Shape, pads []int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	r := len(xShape)
	if len(pads) != 2*r || len(dy.Shape) != r {
		return nil, fmt.Errorf("%w: Pad X %v, pads %v, dY %v", ops.ErrShape, xShape, pads, dy.Shape)
	}
	for i := range xShape {
		if dy.Shape[i] != xShape[i]+pads[i]+pads[r+i] {
			return nil, fmt.Errorf("%w: Pad X %v, pads %v, dY %v", ops.ErrShape, xShape, pads, dy.Shape)
		}
	}
	dx, dxs := newF64(xShape)
	dys := f64(dy)
	idx := make([]int, r)
	for i := range dxs {
		rem := i
		for d := r - 1; d >= 0; d-- {
			idx[d] = rem % xShape[d]
			rem /= xShape[d]
		}
		o, inside := 0, true
		for d := 0; d < r; d++ {
			k := idx[d] + pads[d]
			if k < 0 || k >= dy.Shape[d] {
				inside = false
				break
			}
			o = o*dy.Shape[d] + k
		}
		if inside {
			dxs[i] = dys[o]
		}
	}
	return dx, nil
}

// SoftmaxCrossEntropy returns PyTorch's CrossEntropyLoss(reduction='mean',
// label_smoothing=eps) of logits [N,K] against class labels, and its gradient:
//
//	q[i,c]  = (1-eps)*[c == y_i] + eps/K
//	loss    = mean_i sum_c q[i,c] * (logsumexp(z_i) - z[i,c])
//	dz[i,c] = (softmax(z_i)[c] - q[i,c]) / N
func SoftmaxCrossEntropy(logits *tensor.Tensor, labels []int64, eps float64) (float64, *tensor.Tensor, error) {
	if len(logits.Shape) != 2 || logits.Shape[0] != len(labels) || logits.Shape[1] < 1 {
		return 0, nil, fmt.Errorf("%w: logits %v for %d labels", ops.ErrShape, logits.Shape, len(labels))
	}
	N, K := logits.Shape[0], logits.Shape[1]
	zs := f64(logits)
	dz, dzs := newF64(logits.Shape)
	var loss float64
	for i := 0; i < N; i++ {
		y := labels[i]
		if y < 0 || y >= int64(K) {
			return 0, nil, fmt.Errorf("%w: label %d of sample %d is outside [0, %d)", ops.ErrShape, y, i, K)
		}
		row := zs[i*K : (i+1)*K]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - mx)
		}
		lse := mx + math.Log(s)
		for c, v := range row {
			q := eps / float64(K)
			if int64(c) == y {
				q += 1 - eps
			}
			loss += q * (lse - v)
			dzs[i*K+c] = (math.Exp(v-lse) - q) / float64(N)
		}
	}
	return loss / float64(N), dz, nil
}

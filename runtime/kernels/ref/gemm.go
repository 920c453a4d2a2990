package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// gemmKernel computes Y = alpha * A' * B' + beta * C with A' = A or A^T ([M,K]), B' = B or B^T
// ([K,N]) and C (optional) broadcast to [M,N]:
//
//	Y[i,j] = alpha * sum_p A'[i,p] * B'[p,j] + beta * C[i or 0, j or 0]
//
// A transposed A is first copied into row-major [M,K] form; the product then runs in
// mmAccumulate's i-p-j order, or, when B is transposed ([N,K], as PyTorch stores Linear weights),
// as row-by-row dot products, so the inner loop is contiguous either way. Floats compute in their own precision (float16 and bfloat16 in
// float32); integer products accumulate in the integer type, and alpha/beta other than 1 are
// applied in float64 and truncated back, like ONNX's reference implementation.
func gemmKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	g, err := opAs[*ops.Gemm](op)
	if err != nil {
		return nil, err
	}
	a, err := mvInput("Gemm", in, 0)
	if err != nil {
		return nil, err
	}
	b, err := mvInput("Gemm", in, 1)
	if err != nil {
		return nil, err
	}
	c := mvOptional(in, 2)
	if a.DType != b.DType || (c != nil && c.DType != a.DType) {
		return nil, fmt.Errorf("%w: Gemm inputs have different types (A %s, B %s)", ops.ErrShape, a.DType, b.DType)
	}
	m, k, n, err := g.Dims(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if err := g.CheckC(c.Shape, m, n); err != nil {
			return nil, err
		}
	}
	if a.DType == tensor.Float16 || a.DType == tensor.BFloat16 {
		w := make([]*tensor.Tensor, 3)
		for i, t := range []*tensor.Tensor{a, b, c} {
			if t == nil {
				continue
			}
			if w[i], err = mmWiden(t); err != nil {
				return nil, err
			}
		}
		out, err := gemmKernel(op, w, nOut)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{mmNarrow(out[0], a.DType)}, nil
	}
	p := gemmProblem{m: m, k: k, n: n, transA: g.TransA, transB: g.TransB, alpha: float64(g.Alpha), beta: float64(g.Beta)}
	var out *tensor.Tensor
	switch a.DType {
	case tensor.Float32:
		out, err = gemmAs[float32](p, a, b, c, true)
	case tensor.Float64:
		out, err = gemmAs[float64](p, a, b, c, true)
	case tensor.Int8:
		out, err = gemmAs[int8](p, a, b, c, false)
	case tensor.Int16:
		out, err = gemmAs[int16](p, a, b, c, false)
	case tensor.Int32:
		out, err = gemmAs[int32](p, a, b, c, false)
	case tensor.Int64:
		out, err = gemmAs[int64](p, a, b, c, false)
	case tensor.Uint8:
		out, err = gemmAs[uint8](p, a, b, c, false)
	case tensor.Uint16:
		out, err = gemmAs[uint16](p, a, b, c, false)
	case tensor.Uint32:
		out, err = gemmAs[uint32](p, a, b, c, false)
	case tensor.Uint64:
		out, err = gemmAs[uint64](p, a, b, c, false)
	default:
		return nil, fmt.Errorf("%w: Gemm does not compute on %s", ops.ErrShape, a.DType)
	}
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

// gemmProblem holds the resolved sizes and attributes of one Gemm.
type gemmProblem struct {
	m, k, n        int
	transA, transB bool
	alpha, beta    float64
}

// mmTranspose returns the row-major [cols, rows] transpose of the row-major [rows, cols] matrix x.
func mmTranspose[T mmNum](x []T, rows, cols int) []T {
	t := make([]T, len(x))
	for i := 0; i < rows; i++ {
		row := x[i*cols : i*cols+cols]
		for j, v := range row {
			t[j*rows+i] = v
		}
	}
	return t
}

// mmDotRows sets c[i,j] = sum_p a[i,p] * bt[j,p] for row-major a [m,k] and bt [n,k]. Four rows
// of bt are taken at a time, with one accumulator each, so the loop is not bound by the latency
// of a single running sum.
func mmDotRows[T mmNum](c, a, bt []T, m, k, n int) {
	for i := 0; i < m; i++ {
		ai := a[i*k : i*k+k]
		ci := c[i*n : i*n+n]
		j := 0
		for ; j+4 <= n; j += 4 {
			b0 := bt[j*k : j*k+k][:len(ai)]
			b1 := bt[(j+1)*k : (j+1)*k+k][:len(ai)]
			b2 := bt[(j+2)*k : (j+2)*k+k][:len(ai)]
			b3 := bt[(j+3)*k : (j+3)*k+k][:len(ai)]
			var s0, s1, s2, s3 T
			for p, av := range ai {
				s0 += av * b0[p]
				s1 += av * b1[p]
				s2 += av * b2[p]
				s3 += av * b3[p]
			}
			ci[j], ci[j+1], ci[j+2], ci[j+3] = s0, s1, s2, s3
		}
		for ; j < n; j++ {
			bj := bt[j*k : j*k+k][:len(ai)]
			var s T
			for p, av := range ai {
				s += av * bj[p]
			}
			ci[j] = s
		}
	}
}

func gemmAs[T mmNum](p gemmProblem, a, b, c *tensor.Tensor, isFloat bool) (*tensor.Tensor, error) {
	ad, err := mmData[T](a)
	if err != nil {
		return nil, err
	}
	bd, err := mmData[T](b)
	if err != nil {
		return nil, err
	}
	if p.transA {
		ad = mmTranspose(ad, p.k, p.m)
	}
	y := make([]T, p.m*p.n)
	if p.transB {
		// B is [N,K]: rows of A and B are both contiguous along K, so take dot products
		// (the layout of PyTorch's Linear weights).
		mmDotRows(y, ad, bd, p.m, p.k, p.n)
	} else {
		mmAccumulate(y, ad, bd, p.m, p.k, p.n)
	}

	// C's strides over [M,N]: 0 along a broadcast (size-1 or missing) dim.
	var cd []T
	rowStr, colStr := 0, 0
	if c != nil {
		if cd, err = mmData[T](c); err != nil {
			return nil, err
		}
		switch c.Rank() {
		case 2:
			if c.Shape[0] != 1 {
				rowStr = c.Shape[1]
			}
			if c.Shape[1] != 1 {
				colStr = 1
			}
		case 1:
			if c.Shape[0] != 1 {
				colStr = 1
			}
		}
	}
	alpha, beta := p.alpha, p.beta
	for i := 0; i < p.m; i++ {
		yi := y[i*p.n : i*p.n+p.n]
		for j := range yi {
			var cv T
			if cd != nil {
				cv = cd[i*rowStr+j*colStr]
			}
			switch {
			case isFloat && cd != nil:
				yi[j] = T(alpha)*yi[j] + T(beta)*cv
			case isFloat:
				yi[j] = T(alpha) * yi[j]
			case alpha == 1 && (beta == 1 || cd == nil):
				yi[j] += cv
			case cd == nil:
				yi[j] = T(alpha * float64(yi[j]))
			default:
				yi[j] = T(alpha*float64(yi[j]) + beta*float64(cv))
			}
		}
	}
	return tensor.FromSlice(tensor.Shape{p.m, p.n}, y), nil
}

package ref

import (
	"errors"
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ErrDivideByZero is returned by integer Div when a divisor is zero; float division follows
// IEEE 754 instead (x/0 = ±Inf, 0/0 = NaN).
var ErrDivideByZero = errors.New("integer division by zero")

// arithKernel runs Add, Sub, Mul and Div:
//
//	C[i] = A[ia(i)] op B[ib(i)]
//
// where ia and ib map each output position to the input positions NumPy broadcasting selects
// (a dim of size 1 is repeated; missing leading dims count as 1). Integer arithmetic wraps
// around on overflow as in C; integer Div truncates toward zero and a zero divisor is an error
// wrapping ErrDivideByZero. float32 and float64 compute in their own type, float16 and bfloat16
// in float64 with one rounding of the result.
func arithKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.Arith](op)
	if err != nil {
		return nil, err
	}
	name := o.OpType()
	if err := ewRequire(name, in, 2); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs(name, nOut, 1); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.DType != b.DType {
		return nil, fmt.Errorf("ref: %s: %w: input types %s and %s differ", name, ops.ErrShape, a.DType, b.DType)
	}
	bDims, err := o.AlignB(ops.DimsOf(a.Shape), ops.DimsOf(b.Shape))
	if err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	bShape, _ := ops.Type{Shape: bDims}.Static()
	outShape, err := ewBroadcastShape(a.Shape, bShape)
	if err != nil {
		return nil, fmt.Errorf("ref: %s: %w", name, err)
	}
	sa, sb := ewBroadcastStrides(a.Shape, outShape), ewBroadcastStrides(bShape, outShape)
	k := o.Kind
	var data any
	switch av := a.Data.(type) {
	case []float32:
		data, err = arithTyped(k, av, tensor.Data[float32](b), sa, sb, outShape, false)
	case []float64:
		data, err = arithTyped(k, av, tensor.Data[float64](b), sa, sb, outShape, false)
	case []tensor.F16, []tensor.BF16:
		var v []float64
		v, err = arithTyped(k, a.Float64s(), b.Float64s(), sa, sb, outShape, false)
		if err == nil {
			return []*tensor.Tensor{ewFromFloat64s(a.DType, outShape, v)}, nil
		}
	case []int8:
		data, err = arithTyped(k, av, tensor.Data[int8](b), sa, sb, outShape, true)
	case []int16:
		data, err = arithTyped(k, av, tensor.Data[int16](b), sa, sb, outShape, true)
	case []int32:
		data, err = arithTyped(k, av, tensor.Data[int32](b), sa, sb, outShape, true)
	case []int64:
		data, err = arithTyped(k, av, tensor.Data[int64](b), sa, sb, outShape, true)
	case []uint8:
		data, err = arithTyped(k, av, tensor.Data[uint8](b), sa, sb, outShape, true)
	case []uint16:
		data, err = arithTyped(k, av, tensor.Data[uint16](b), sa, sb, outShape, true)
	case []uint32:
		data, err = arithTyped(k, av, tensor.Data[uint32](b), sa, sb, outShape, true)
	case []uint64:
		data, err = arithTyped(k, av, tensor.Data[uint64](b), sa, sb, outShape, true)
	default:
		return nil, ewTypeError(name, 0, a.DType)
	}
	if err != nil {
		return nil, fmt.Errorf("ref: %s: %w", name, err)
	}
	return []*tensor.Tensor{{DType: a.DType, Shape: outShape, Data: data}}, nil
}

// arithTyped computes a op b with broadcasting into a new slice of outShape's size.
func arithTyped[T arithElem](k ops.ArithKind, a, b []T, sa, sb []int, outShape tensor.Shape, isInt bool) ([]T, error) {
	out := make([]T, outShape.Size())
	switch k {
	case ops.ArithAdd:
		ewBroadcast(out, a, b, sa, sb, outShape, func(x, y T) T { return x + y })
	case ops.ArithSub:
		ewBroadcast(out, a, b, sa, sb, outShape, func(x, y T) T { return x - y })
	case ops.ArithMul:
		ewBroadcast(out, a, b, sa, sb, outShape, func(x, y T) T { return x * y })
	case ops.ArithDiv:
		if isInt && len(out) > 0 {
			for i, y := range b {
				if y == 0 {
					return nil, fmt.Errorf("%w (divisor element %d)", ErrDivideByZero, i)
				}
			}
		}
		ewBroadcast(out, a, b, sa, sb, outShape, func(x, y T) T { return x / y })
	default:
		return nil, fmt.Errorf("unknown arithmetic operator %v", k)
	}
	return out, nil
}

// ewBroadcastShape returns the NumPy broadcast of two concrete shapes, or an ErrShape error.
func ewBroadcastShape(a, b tensor.Shape) (tensor.Shape, error) {
	d, err := ops.BroadcastDims(ops.DimsOf(a), ops.DimsOf(b))
	if err != nil {
		return nil, err
	}
	s, _ := ops.Type{Shape: d}.Static()
	return s, nil
}

// ewBroadcastStrides returns, per dim of out, the element stride of a row-major tensor of shape
// in right-aligned against out: 0 where in has no such dim or a dim of size 1, which repeats it.
func ewBroadcastStrides(in, out tensor.Shape) []int {
	st := make([]int, len(out))
	s := 1
	for i := len(in) - 1; i >= 0; i-- {
		if in[i] != 1 {
			st[len(out)-len(in)+i] = s
		}
		s *= in[i]
	}
	return st
}

// ewBroadcast sets out[i] = f(a[ia], b[ib]) for every position i of shape, where ia and ib are
// the dot products of i's multi-index with the strides sa and sb. The innermost dim runs as a
// plain loop and the outer dims as an odometer.
func ewBroadcast[T, U any](out []U, a, b []T, sa, sb []int, shape tensor.Shape, f func(T, T) U) {
	if len(out) == 0 {
		return
	}
	r := len(shape)
	if r == 0 {
		out[0] = f(a[0], b[0])
		return
	}
	inner, da, db := shape[r-1], sa[r-1], sb[r-1]
	idx := make([]int, r-1)
	offA, offB := 0, 0
	for o := 0; o < len(out); o += inner {
		ia, ib := offA, offB
		row := out[o : o+inner]
		for k := range row {
			row[k] = f(a[ia], b[ib])
			ia += da
			ib += db
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			offA += sa[d]
			offB += sb[d]
			if idx[d] < shape[d] {
				break
			}
			offA -= sa[d] * shape[d]
			offB -= sb[d] * shape[d]
			idx[d] = 0
		}
	}
}

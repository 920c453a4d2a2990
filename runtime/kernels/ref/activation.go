package ref

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// reluKernel runs Relu: Y = max(X, 0) element-wise, for every numeric type (NaN stays NaN;
// unsigned inputs are returned unchanged).
func reluKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	if _, err := opAs[*ops.Relu](op); err != nil {
		return nil, err
	}
	if err := ewRequire("Relu", in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs("Relu", nOut, 1); err != nil {
		return nil, err
	}
	x := in[0]
	var data any
	switch d := x.Data.(type) {
	case []float32:
		data = reluOf(d)
	case []float64:
		data = reluOf(d)
	case []tensor.F16:
		data = ewMap(d, func(v tensor.F16) tensor.F16 { return tensor.F16From(max(v.Float32(), 0)) })
	case []tensor.BF16:
		data = ewMap(d, func(v tensor.BF16) tensor.BF16 { return tensor.BF16From(max(v.Float32(), 0)) })
	case []int8:
		data = reluOf(d)
	case []int16:
		data = reluOf(d)
	case []int32:
		data = reluOf(d)
	case []int64:
		data = reluOf(d)
	case []uint8:
		data = reluOf(d)
	case []uint16:
		data = reluOf(d)
	case []uint32:
		data = reluOf(d)
	case []uint64:
		data = reluOf(d)
	default:
		return nil, ewTypeError("Relu", 0, x.DType)
	}
	return []*tensor.Tensor{ewLike(x, x.DType, data)}, nil
}

// reluOf returns max(v, 0) for every v of d.
func reluOf[T arithElem](d []T) []T {
	var zero T
	return ewMap(d, func(v T) T { return max(v, zero) })
}

// leakyReluKernel runs LeakyRelu: Y = X where X >= 0 and Y = alpha*X elsewhere, on float types.
func leakyReluKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.LeakyRelu](op)
	if err != nil {
		return nil, err
	}
	alpha := float64(o.Alpha)
	return ewUnaryFloat("LeakyRelu", in, nOut, func(v float64) float64 {
		if v < 0 {
			return alpha * v
		}
		return v
	})
}

// sigmoidKernel runs Sigmoid: Y = 1/(1+exp(-X)) on float types, computed as exp(X)/(1+exp(X))
// for negative X so that exp never overflows.
func sigmoidKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	if _, err := opAs[*ops.Sigmoid](op); err != nil {
		return nil, err
	}
	return ewUnaryFloat("Sigmoid", in, nOut, func(v float64) float64 {
		if v >= 0 {
			return 1 / (1 + math.Exp(-v))
		}
		e := math.Exp(v)
		return e / (1 + e)
	})
}

// hardSigmoidKernel runs HardSigmoid: Y = max(0, min(1, alpha*X + beta)) on float types.
func hardSigmoidKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.HardSigmoid](op)
	if err != nil {
		return nil, err
	}
	alpha, beta := float64(o.Alpha), float64(o.Beta)
	return ewUnaryFloat("HardSigmoid", in, nOut, func(v float64) float64 {
		return hardSigmoid(v, alpha, beta)
	})
}

// hardSwishKernel runs HardSwish: Y = X * max(0, min(1, X/6 + 1/2)) on float types.
func hardSwishKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	if _, err := opAs[*ops.HardSwish](op); err != nil {
		return nil, err
	}
	return ewUnaryFloat("HardSwish", in, nOut, func(v float64) float64 {
		return v * hardSigmoid(v, 1.0/6, 0.5)
	})
}

// hardSigmoid returns max(0, min(1, alpha*v + beta)); NaN passes through (both comparisons
// are false for NaN, so it is returned unchanged).
func hardSigmoid(v, alpha, beta float64) float64 {
	y := alpha*v + beta
	if y > 1 {
		return 1
	}
	if y < 0 {
		return 0
	}
	return y
}

// ewUnaryFloat applies f to every element of the float tensor in[0], in float64, and rounds the
// results once to the input's type.
func ewUnaryFloat(op string, in []*tensor.Tensor, nOut int, f func(float64) float64) ([]*tensor.Tensor, error) {
	if err := ewRequire(op, in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs(op, nOut, 1); err != nil {
		return nil, err
	}
	x := in[0]
	v, err := ewFloat64s(op, 0, x)
	if err != nil {
		return nil, err
	}
	for i := range v {
		v[i] = f(v[i])
	}
	return []*tensor.Tensor{ewFromFloat64s(x.DType, x.Shape, v)}, nil
}

// identityKernel runs Identity: Y = X, as a copy (kernels never alias their inputs).
func identityKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	if _, err := opAs[*ops.Identity](op); err != nil {
		return nil, err
	}
	if err := ewRequire("Identity", in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs("Identity", nOut, 1); err != nil {
		return nil, err
	}
	if !in[0].DType.Supported() {
		return nil, ewTypeError("Identity", 0, in[0].DType)
	}
	return []*tensor.Tensor{in[0].Clone()}, nil
}

// clipKernel runs Clip: Y = min(max(X, lo), hi) element-wise, applying lo first, so that lo > hi
// gives hi everywhere; an absent bound does not clip and NaN passes through. The bounds are the
// attributes (opset < 11, float inputs only) or the optional one-element inputs 1 and 2, of X's
// type. float16 and bfloat16 compare in float32, which is exact.
func clipKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.Clip](op)
	if err != nil {
		return nil, err
	}
	if err := ewRequire("Clip", in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs("Clip", nOut, 1); err != nil {
		return nil, err
	}
	x := in[0]
	// lo and hi hold the bounds as one-element tensors of X's type, or nil.
	var lo, hi *tensor.Tensor
	if o.BoundInputs {
		lo, hi = ewOptional(in, 1), ewOptional(in, 2)
		for i, b := range []*tensor.Tensor{lo, hi} {
			if b == nil {
				continue
			}
			if b.DType != x.DType {
				return nil, fmt.Errorf("ref: Clip: %w: bound input %d is %s, X is %s", ops.ErrShape, i+1, b.DType, x.DType)
			}
			if b.Len() != 1 {
				return nil, fmt.Errorf("ref: Clip: %w: bound input %d must be a scalar, got shape %v", ops.ErrShape, i+1, b.Shape)
			}
		}
	} else {
		if !x.DType.IsFloat() {
			return nil, fmt.Errorf("ref: Clip: %w: attribute bounds need a float input, got %s", ops.ErrShape, x.DType)
		}
		if o.HasMin {
			lo = ewFromFloat64s(x.DType, tensor.Shape{}, []float64{float64(o.Min)})
		}
		if o.HasMax {
			hi = ewFromFloat64s(x.DType, tensor.Shape{}, []float64{float64(o.Max)})
		}
	}
	var data any
	switch d := x.Data.(type) {
	case []float32:
		data = clipOf(d, lo, hi)
	case []float64:
		data = clipOf(d, lo, hi)
	case []tensor.F16:
		l, h := ewWidenBound(lo), ewWidenBound(hi)
		data = ewMap(clipOf(ewMap(d, tensor.F16.Float32), l, h), tensor.F16From)
	case []tensor.BF16:
		l, h := ewWidenBound(lo), ewWidenBound(hi)
		data = ewMap(clipOf(ewMap(d, tensor.BF16.Float32), l, h), tensor.BF16From)
	case []int8:
		data = clipOf(d, lo, hi)
	case []int16:
		data = clipOf(d, lo, hi)
	case []int32:
		data = clipOf(d, lo, hi)
	case []int64:
		data = clipOf(d, lo, hi)
	case []uint8:
		data = clipOf(d, lo, hi)
	case []uint16:
		data = clipOf(d, lo, hi)
	case []uint32:
		data = clipOf(d, lo, hi)
	case []uint64:
		data = clipOf(d, lo, hi)
	default:
		return nil, ewTypeError("Clip", 0, x.DType)
	}
	return []*tensor.Tensor{ewLike(x, x.DType, data)}, nil
}

// ewWidenBound converts a one-element float16 or bfloat16 bound to a float32 tensor, exactly (nil
// stays nil).
func ewWidenBound(b *tensor.Tensor) *tensor.Tensor {
	if b == nil {
		return nil
	}
	return tensor.Scalar(float32(b.Float64s()[0]))
}

// clipOf returns d clipped to the one-element bounds lo and hi (each may be nil), whose data
// must be []T.
func clipOf[T arithElem](d []T, lo, hi *tensor.Tensor) []T {
	out := make([]T, len(d))
	copy(out, d)
	if lo != nil {
		l := tensor.Data[T](lo)[0]
		for i, v := range out {
			if v < l {
				out[i] = l
			}
		}
	}
	if hi != nil {
		h := tensor.Data[T](hi)[0]
		for i, v := range out {
			if v > h {
				out[i] = h
			}
		}
	}
	return out
}

package ref

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// elementwiseKernels returns the kernels of the element-wise, activation, Cast, softmaxKernel,
// reduction and loss operators.
func elementwiseKernels() map[string]Kernel {
	return map[string]Kernel{
		"Add": arithKernel, "Sub": arithKernel, "Mul": arithKernel, "Div": arithKernel,
		"Relu":                      reluKernel,
		"LeakyRelu":                 leakyReluKernel,
		"Sigmoid":                   sigmoidKernel,
		"HardSigmoid":               hardSigmoidKernel,
		"HardSwish":                 hardSwishKernel,
		"Identity":                  identityKernel,
		"Clip":                      clipKernel,
		"Dropout":                   dropoutKernel,
		"Cast":                      castKernel,
		"Softmax":                   softmaxKernel,
		"LogSoftmax":                softmaxKernel,
		"ReduceMean":                reduceMeanKernel,
		"SoftmaxCrossEntropyLoss":   softmaxCrossEntropyLossKernel,
		"NegativeLogLikelihoodLoss": nllLossKernel,
	}
}

// arithElem is the set of element types Go can do arithmetic on directly.
type arithElem interface {
	int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64
}

// ewRequire checks that the kernel got at least n inputs, the first n of them present.
func ewRequire(op string, in []*tensor.Tensor, n int) error {
	if len(in) < n {
		return fmt.Errorf("ref: %s: %w: got %d inputs, want at least %d", op, ops.ErrArity, len(in), n)
	}
	for i := 0; i < n; i++ {
		if in[i] == nil {
			return fmt.Errorf("ref: %s: %w: input %d is required", op, ops.ErrArity, i)
		}
	}
	return nil
}

// ewOptional returns in[i], or nil when the input is absent.
func ewOptional(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// ewCheckOutputs reports an error unless 1 <= nOut <= max.
func ewCheckOutputs(op string, nOut, max int) error {
	if nOut < 1 || nOut > max {
		return fmt.Errorf("ref: %s: %w: %d outputs requested, it has 1 to %d", op, ops.ErrArity, nOut, max)
	}
	return nil
}

// ewTypeError is the error for an input of an element type the kernel does not handle.
func ewTypeError(op string, i int, d tensor.DType) error {
	return fmt.Errorf("ref: %s: %w: input %d has unsupported type %s", op, ops.ErrShape, i, d)
}

// ewMap returns f applied to every element of in.
func ewMap[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// ewLike returns a tensor of x's shape holding data, whose dtype is that of the slice.
func ewLike(x *tensor.Tensor, dt tensor.DType, data any) *tensor.Tensor {
	return &tensor.Tensor{DType: dt, Shape: x.Shape.Clone(), Data: data}
}

// ewFloat64s returns the elements of a float tensor as float64, exactly.
func ewFloat64s(op string, i int, t *tensor.Tensor) ([]float64, error) {
	if !t.DType.IsFloat() {
		return nil, ewTypeError(op, i, t.DType)
	}
	return t.Float64s(), nil
}

// ewFromFloat64s returns a float tensor of dtype dt and the given shape, each value rounded once
// to dt (nearest, ties to even).
func ewFromFloat64s(dt tensor.DType, shape tensor.Shape, v []float64) *tensor.Tensor {
	t := &tensor.Tensor{DType: dt, Shape: shape.Clone()}
	switch dt {
	case tensor.Float32:
		t.Data = ewMap(v, func(f float64) float32 { return float32(f) })
	case tensor.Float16:
		t.Data = ewMap(v, ewF16)
	case tensor.BFloat16:
		t.Data = ewMap(v, ewBF16)
	default:
		t.Data = v
	}
	return t
}

// ewRoundOdd32 rounds f to float32 with round-to-odd: an inexact result gets its last mantissa bit
// set. Rounding that result again to a format with at least two fewer mantissa bits (float16,
// bfloat16) gives the correctly rounded value of f, which float64 -> float32 -> float16 with two
// round-to-nearest steps does not always do.
func ewRoundOdd32(f float64) float32 {
	r := float32(f)
	if float64(r) == f || math.IsNaN(f) || math.IsInf(float64(r), 0) {
		return r
	}
	b := math.Float32bits(r)
	if b&1 == 0 {
		if math.Abs(float64(r)) > math.Abs(f) {
			b-- // the magnitude bits step down toward f
		} else {
			b++
		}
	}
	return math.Float32frombits(b)
}

// ewF16 rounds f to the nearest float16, ties to even.
func ewF16(f float64) tensor.F16 { return tensor.F16From(ewRoundOdd32(f)) }

// ewBF16 rounds f to the nearest bfloat16, ties to even.
func ewBF16(f float64) tensor.BF16 { return tensor.BF16From(ewRoundOdd32(f)) }

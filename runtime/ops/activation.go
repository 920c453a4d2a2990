package ops

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Relu is Y = max(X, 0) element-wise. Opset 14 added the signed integer types; dnx accepts any
// numeric type at any version (unsigned inputs pass through unchanged).
type Relu struct{}

// OpType returns "Relu".
func (*Relu) OpType() string { return "Relu" }

// Infer returns X's type.
func (*Relu) Infer(in []*Arg) ([]Type, error) { return ewInferUnary("Relu", in, ewNumericClass) }

func decodeRelu(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	return &Relu{}, nil
}

// LeakyRelu is Y = X for X >= 0 and Y = Alpha*X otherwise, element-wise, on float types.
type LeakyRelu struct {
	Alpha float32 // default 0.01
}

// OpType returns "LeakyRelu".
func (*LeakyRelu) OpType() string { return "LeakyRelu" }

// Infer returns X's type.
func (*LeakyRelu) Infer(in []*Arg) ([]Type, error) {
	return ewInferUnary("LeakyRelu", in, ewFloatClass)
}

func decodeLeakyRelu(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	alpha, err := n.Attrs.Float("alpha", 0.01)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(float64(alpha)) || math.IsInf(float64(alpha), 0) {
		return nil, fmt.Errorf("%w: LeakyRelu alpha must be finite, got %g", ErrAttr, alpha)
	}
	return &LeakyRelu{Alpha: alpha}, nil
}

// Sigmoid is Y = 1 / (1 + exp(-X)) element-wise, on float types.
type Sigmoid struct{}

// OpType returns "Sigmoid".
func (*Sigmoid) OpType() string { return "Sigmoid" }

// Infer returns X's type.
func (*Sigmoid) Infer(in []*Arg) ([]Type, error) { return ewInferUnary("Sigmoid", in, ewFloatClass) }

func decodeSigmoid(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	return &Sigmoid{}, nil
}

// HardSigmoid is Y = max(0, min(1, Alpha*X + Beta)) element-wise, on float types. Opset 1's
// legacy consumed_inputs attribute is ignored; opset 22 only added bfloat16.
type HardSigmoid struct {
	Alpha float32 // default 0.2
	Beta  float32 // default 0.5
}

// OpType returns "HardSigmoid".
func (*HardSigmoid) OpType() string { return "HardSigmoid" }

// Infer returns X's type.
func (*HardSigmoid) Infer(in []*Arg) ([]Type, error) {
	return ewInferUnary("HardSigmoid", in, ewFloatClass)
}

func decodeHardSigmoid(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	alpha, err := n.Attrs.Float("alpha", 0.2)
	if err != nil {
		return nil, err
	}
	beta, err := n.Attrs.Float("beta", 0.5)
	if err != nil {
		return nil, err
	}
	for _, v := range []struct {
		name string
		v    float32
	}{{"alpha", alpha}, {"beta", beta}} {
		if math.IsNaN(float64(v.v)) || math.IsInf(float64(v.v), 0) {
			return nil, fmt.Errorf("%w: HardSigmoid %s must be finite, got %g", ErrAttr, v.name, v.v)
		}
	}
	return &HardSigmoid{Alpha: alpha, Beta: beta}, nil
}

// HardSwish is Y = X * max(0, min(1, X/6 + 1/2)) element-wise, on float types: X times
// HardSigmoid with alpha 1/6 and beta 0.5. It has no attributes; opset 22 only added bfloat16.
// PyTorch exports nn.Hardswish as HardSwish from opset 14 and as HardSigmoid then Mul before.
type HardSwish struct{}

// OpType returns "HardSwish".
func (*HardSwish) OpType() string { return "HardSwish" }

// Infer returns X's type.
func (*HardSwish) Infer(in []*Arg) ([]Type, error) {
	return ewInferUnary("HardSwish", in, ewFloatClass)
}

func decodeHardSwish(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	return &HardSwish{}, nil
}

// Identity is Y = X, for a tensor of any type. The sequence and optional forms of opsets 14 and
// 16 are not supported: dnx values are tensors.
type Identity struct{}

// OpType returns "Identity".
func (*Identity) OpType() string { return "Identity" }

// Infer returns X's type.
func (*Identity) Infer(in []*Arg) ([]Type, error) { return ewInferUnary("Identity", in, ewAnyClass) }

func decodeIdentity(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	return &Identity{}, nil
}

// ewInferUnary checks input 0 against class and returns its type unchanged.
func ewInferUnary(op string, in []*Arg, class ewDTypeClass) ([]Type, error) {
	t, err := ewInputType(op, in, 0, class)
	if err != nil {
		return nil, err
	}
	return []Type{t}, nil
}

// Clip is Y = min(max(X, lo), hi) element-wise: bounds applied in that order, so lo > hi gives hi
// everywhere, as the spec says; NaN passes through. A missing bound does not clip.
//
// Opset 1 and 6 take the bounds as float attributes (opset 6 defaults them to -FLT_MAX and
// FLT_MAX, which Decode writes in). From opset 11 they are the optional scalar inputs 1 (min) and
// 2 (max), of X's type; BoundInputs marks that form and the kernel reads them.
type Clip struct {
	Min, Max       float32
	HasMin, HasMax bool
	BoundInputs    bool
}

// OpType returns "Clip".
func (*Clip) OpType() string { return "Clip" }

// StaticBounds returns the bounds as float32 when they are known before running: the attributes
// (opset < 11), or, for the input form, min and max, the values of inputs 1 and 2 (nil when the
// input is absent; a present input must be a constant float32 scalar, given as its tensor, else
// ok is false). An absent bound is infinite. NaN bounds are not static bounds (ok false).
func (o *Clip) StaticBounds(min, max *tensor.Tensor, minPresent, maxPresent bool) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if !o.BoundInputs {
		if o.HasMin {
			lo = o.Min
		}
		if o.HasMax {
			hi = o.Max
		}
	} else {
		for _, b := range []struct {
			t       *tensor.Tensor
			present bool
			dst     *float32
		}{{min, minPresent, &lo}, {max, maxPresent, &hi}} {
			if !b.present {
				continue
			}
			if b.t == nil || b.t.DType != tensor.Float32 || b.t.Len() != 1 {
				return 0, 0, false
			}
			*b.dst = tensor.Data[float32](b.t)[0]
		}
	}
	if math.IsNaN(float64(lo)) || math.IsNaN(float64(hi)) {
		return 0, 0, false
	}
	return lo, hi, true
}

func decodeClip(n *Node, since int) (Op, error) {
	if since >= 11 {
		if err := CheckArity(n, 1, 3, 1, 1); err != nil {
			return nil, err
		}
		return &Clip{BoundInputs: true}, nil
	}
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	o := &Clip{}
	if since >= 6 {
		o.Min, o.Max, o.HasMin, o.HasMax = -math.MaxFloat32, math.MaxFloat32, true, true
	}
	var err error
	if n.Attrs.Has("min") {
		if o.Min, err = n.Attrs.Float("min", 0); err != nil {
			return nil, err
		}
		o.HasMin = true
	}
	if n.Attrs.Has("max") {
		if o.Max, err = n.Attrs.Float("max", 0); err != nil {
			return nil, err
		}
		o.HasMax = true
	}
	return o, nil
}

// Infer checks X's type (float before opset 11, numeric after) and that the bound inputs, if
// any, are scalars of X's type, and returns X's type.
func (o *Clip) Infer(in []*Arg) ([]Type, error) {
	class := ewNumericClass
	if !o.BoundInputs {
		class = ewFloatClass // Clip-1 and Clip-6 are defined on float tensors only
	}
	x, err := ewInputType("Clip", in, 0, class)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(in); i++ {
		b, err := ewOptionalInput("Clip", in, i, ewNumericClass)
		if err != nil || b == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := ewSameDType("Clip", 0, i, x.DType, b.Type.DType); err != nil {
			return nil, err
		}
		if err := ewCheckScalar("Clip", i, b.Type); err != nil {
			return nil, err
		}
	}
	return []Type{x}, nil
}

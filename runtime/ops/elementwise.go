package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// elementwiseSchemas returns the element-wise, activation, Cast, Softmax, reduction and loss
// operators: one Schema per ONNX version that changed an operator's attributes, inputs or types.
// Versions that only widened the type list share a decoder; dnx accepts every type it can hold
// at every version, so a model that is valid at its opset always decodes.
func elementwiseSchemas() []Schema {
	var all []Schema
	reg := func(opType string, decode func(n *Node, since int) (Op, error), versions ...int) {
		for _, v := range versions {
			all = append(all, Schema{OpType: opType, Since: v, Decode: func(n *Node) (Op, error) { return decode(n, v) }})
		}
	}
	for _, k := range []ArithKind{ArithAdd, ArithSub, ArithMul, ArithDiv} {
		reg(k.String(), decodeArith(k), 1, 6, 7, 13, 14)
	}
	reg("Relu", decodeRelu, 1, 6, 13, 14)
	reg("LeakyRelu", decodeLeakyRelu, 1, 6, 16)
	reg("Sigmoid", decodeSigmoid, 1, 6, 13)
	reg("HardSigmoid", decodeHardSigmoid, 1, 6, 22)
	reg("HardSwish", decodeHardSwish, 14, 22)
	reg("Identity", decodeIdentity, 1, 13, 14, 16, 19, 21, 23, 24, 25)
	reg("Clip", decodeClip, 1, 6, 11, 12, 13)
	reg("Dropout", decodeDropout, 1, 6, 7, 10, 12, 13, 22)
	reg("Cast", decodeCast, 1, 6, 9, 13, 19, 21, 23, 24, 25)
	reg("Softmax", decodeSoftmax(false), 1, 11, 13)
	reg("LogSoftmax", decodeSoftmax(true), 1, 11, 13)
	reg("ReduceMean", decodeReduceMean, 1, 11, 13, 18)
	reg("SoftmaxCrossEntropyLoss", decodeSoftmaxCrossEntropyLoss, 12, 13)
	reg("NegativeLogLikelihoodLoss", decodeNegativeLogLikelihoodLoss, 12, 13, 22)
	return all
}

// ewNumeric reports whether d is a float or integer type dnx computes with.
func ewNumeric(d tensor.DType) bool { return d.IsFloat() || d.IsInt() }

// ewDTypeClass is a named predicate on element types, for inference's type checks.
type ewDTypeClass struct {
	name string
	ok   func(tensor.DType) bool
}

var (
	ewFloatClass   = ewDTypeClass{"a float type", tensor.DType.IsFloat}
	ewNumericClass = ewDTypeClass{"a numeric type", ewNumeric}
	ewAnyClass     = ewDTypeClass{"a type dnx holds", tensor.DType.Supported}
	ewIndexClass   = ewDTypeClass{"int32 or int64", func(d tensor.DType) bool { return d == tensor.Int32 || d == tensor.Int64 }}
	ewBoolClass    = ewDTypeClass{"bool", func(d tensor.DType) bool { return d == tensor.Bool }}
)

// ewInputType returns the type of input i of op, checking that it is present and that its element
// type is in class. An Undefined element type (not yet known) passes.
func ewInputType(op string, in []*Arg, i int, class ewDTypeClass) (Type, error) {
	if i >= len(in) || in[i] == nil {
		return Type{}, fmt.Errorf("%w: %s input %d is required", ErrArity, op, i)
	}
	t := in[i].Type
	if t.DType != tensor.Undefined && !class.ok(t.DType) {
		return Type{}, fmt.Errorf("%w: %s input %d is %s, want %s", ErrShape, op, i, t.DType, class.name)
	}
	return t, nil
}

// ewOptionalInput returns input i of op when present (nil otherwise), checking its element type
// against class.
func ewOptionalInput(op string, in []*Arg, i int, class ewDTypeClass) (*Arg, error) {
	if i >= len(in) || in[i] == nil {
		return nil, nil
	}
	if _, err := ewInputType(op, in, i, class); err != nil {
		return nil, err
	}
	return in[i], nil
}

// ewSameDType reports an ErrShape error unless two element types agree (Undefined agrees with
// anything).
func ewSameDType(op string, i, j int, a, b tensor.DType) error {
	if a != tensor.Undefined && b != tensor.Undefined && a != b {
		return fmt.Errorf("%w: %s inputs %d and %d have different types %s and %s", ErrShape, op, i, j, a, b)
	}
	return nil
}

// ewCheckScalar reports an ErrShape error unless input i has rank 0 or a single element where
// that is known. ONNX asks for scalars; exporters often write shape [1], which dnx accepts.
func ewCheckScalar(op string, i int, t Type) error {
	if t.Unranked {
		return nil
	}
	for _, d := range t.Shape {
		if d.IsKnown() && d.Value != 1 {
			return fmt.Errorf("%w: %s input %d must be a scalar, got %s", ErrShape, op, i, t)
		}
	}
	return nil
}

// elementwiseAxis maps axis in [-rank, rank+extra) to [0, rank+extra): negative axes count from
// the end. extra is 1 where an axis may equal the rank (the legacy Softmax coercion point).
func elementwiseAxis(op string, axis int64, rank, extra int) (int, error) {
	a := axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank+extra) {
		return 0, fmt.Errorf("%w: %s axis %d is out of range for rank %d", ErrAttr, op, axis, rank)
	}
	return int(a), nil
}

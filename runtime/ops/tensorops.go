package ops

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// tensorSchemas returns the data-movement, shape and matrix operators. There is one Schema per
// spec version that changes what a node means (an attribute moving to an input, negative axes
// becoming legal, a new attribute); each decoder reads n.Opset for the finer differences.
func tensorSchemas() []Schema {
	return []Schema{
		{OpType: "Concat", Since: 1, Decode: decodeConcat},
		{OpType: "Concat", Since: 4, Decode: decodeConcat},  // axis becomes required
		{OpType: "Concat", Since: 11, Decode: decodeConcat}, // negative axis
		{OpType: "Reshape", Since: 1, Decode: decodeReshape},
		{OpType: "Reshape", Since: 5, Decode: decodeReshape},  // shape moves to an input
		{OpType: "Reshape", Since: 14, Decode: decodeReshape}, // allowzero
		{OpType: "Flatten", Since: 1, Decode: decodeFlatten},
		{OpType: "Flatten", Since: 11, Decode: decodeFlatten}, // negative axis
		{OpType: "Transpose", Since: 1, Decode: decodeTranspose},
		{OpType: "Squeeze", Since: 1, Decode: decodeSqueeze},
		{OpType: "Squeeze", Since: 11, Decode: decodeSqueeze}, // negative axes
		{OpType: "Squeeze", Since: 13, Decode: decodeSqueeze}, // axes move to an input
		{OpType: "Unsqueeze", Since: 1, Decode: decodeUnsqueeze},
		{OpType: "Unsqueeze", Since: 11, Decode: decodeUnsqueeze},
		{OpType: "Unsqueeze", Since: 13, Decode: decodeUnsqueeze},
		{OpType: "Split", Since: 1, Decode: decodeSplit},  // split attribute or second input
		{OpType: "Split", Since: 2, Decode: decodeSplit},  // split attribute only
		{OpType: "Split", Since: 11, Decode: decodeSplit}, // negative axis
		{OpType: "Split", Since: 13, Decode: decodeSplit}, // split moves to an input
		{OpType: "Split", Since: 18, Decode: decodeSplit}, // num_outputs
		{OpType: "Slice", Since: 1, Decode: decodeSlice},
		{OpType: "Slice", Since: 10, Decode: decodeSlice}, // starts/ends/axes/steps inputs
		{OpType: "Gather", Since: 1, Decode: decodeGather},
		{OpType: "Gather", Since: 11, Decode: decodeGather}, // negative indices
		{OpType: "Shape", Since: 1, Decode: decodeShape},
		{OpType: "Shape", Since: 15, Decode: decodeShape}, // start, end
		{OpType: "Constant", Since: 1, Decode: decodeConstant},
		{OpType: "Constant", Since: 11, Decode: decodeConstant}, // sparse_value
		{OpType: "Constant", Since: 12, Decode: decodeConstant}, // value_float, value_ints, ...
		{OpType: "ConstantOfShape", Since: 9, Decode: decodeConstantOfShape},
		{OpType: "Gemm", Since: 1, Decode: decodeGemm},
		{OpType: "Gemm", Since: 7, Decode: decodeGemm},  // C always unidirectionally broadcast
		{OpType: "Gemm", Since: 11, Decode: decodeGemm}, // C optional
		{OpType: "MatMul", Since: 1, Decode: decodeMatMul},
	}
}

// variadic stands for "any number of inputs" in CheckArity calls of variadic operators.
const variadic = math.MaxInt32

// inputArg returns in[i], or nil when the input is absent or beyond the end of in.
func inputArg(in []*Arg, i int) *Arg {
	if i < 0 || i >= len(in) {
		return nil
	}
	return in[i]
}

// nodeHas reports whether node input position i is present.
func nodeHas(n *Node, i int) bool { return i < len(n.Inputs) && n.Inputs[i] }

// axisIn maps an axis attribute onto [0, rank): a negative axis counts from the back.
func axisIn(axis int64, rank int) (int, error) {
	a := axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, fmt.Errorf("%w: axis %d is out of range for rank %d", ErrAttr, axis, rank)
	}
	return int(a), nil
}

// axesIn resolves a list of axes against rank and rejects repeats.
func axesIn(axes []int64, rank int) ([]int, error) {
	out := make([]int, len(axes))
	seen := make([]bool, rank)
	for i, ax := range axes {
		a, err := axisIn(ax, rank)
		if err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, fmt.Errorf("%w: axis %d appears twice in %v", ErrAttr, a, axes)
		}
		seen[a] = true
		out[i] = a
	}
	return out, nil
}

// checkNonNegativeAxes rejects negative axes in opsets that predate them.
func checkNonNegativeAxes(n *Node, since int, name string, axes ...int64) error {
	if n.Opset >= since {
		return nil
	}
	for _, a := range axes {
		if a < 0 {
			return fmt.Errorf("%w: %s %d is negative; negative values are allowed from opset %d (model imports %d)",
				ErrAttr, name, a, since, n.Opset)
		}
	}
	return nil
}

// dimProduct multiplies dims for inference: the product when all are known, the one symbolic
// dim when every other dim is a known 1, and Unknown otherwise.
func dimProduct(ds []Dim) Dim {
	p := int64(1)
	var sym *Dim
	for i := range ds {
		d := ds[i]
		switch {
		case d.IsKnown():
			if d.Value == 0 {
				return Known(0)
			}
			if p > math.MaxInt64/d.Value {
				return Unknown()
			}
			p *= d.Value
		case sym == nil:
			sym = &ds[i]
		default:
			return Unknown()
		}
	}
	if sym == nil {
		return Known(p)
	}
	if p == 1 {
		return *sym
	}
	return Unknown()
}

// unknownShape returns n Unknown dims.
func unknownShape(n int) []Dim {
	d := make([]Dim, n)
	for i := range d {
		d[i] = Unknown()
	}
	return d
}

// constInt64s returns the values of a constant integer input, and false when the input is absent
// or not a constant.
func constInt64s(a *Arg) ([]int64, bool, error) {
	if a == nil || a.Const == nil {
		return nil, false, nil
	}
	v, err := IntsOf(a.Const)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// IntsOf reads an int32 or int64 tensor of rank 0 or 1 (a shape, axes or indices list) as int64s.
// The result may share memory with t: callers must not modify it.
func IntsOf(t *tensor.Tensor) ([]int64, error) {
	if t.Rank() > 1 {
		return nil, fmt.Errorf("%w: expected a 1-D integer tensor, got shape %v", ErrShape, t.Shape)
	}
	v, err := t.Int64s()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShape, err)
	}
	return v, nil
}

// commonDType reports an ErrShape error unless every present, typed argument has the same element
// type, and returns that type (Undefined when none is known).
func commonDType(op string, args ...*Arg) (tensor.DType, error) {
	dt := tensor.Undefined
	for i, a := range args {
		if a == nil || a.Type.DType == tensor.Undefined {
			continue
		}
		if dt == tensor.Undefined {
			dt = a.Type.DType
			continue
		}
		if a.Type.DType != dt {
			return dt, fmt.Errorf("%w: %s input %d is %s, want %s like the others", ErrShape, op, i, a.Type.DType, dt)
		}
	}
	return dt, nil
}

// unifyDim combines two dims that must be equal at run time: a known size wins over a symbolic
// one; two different known sizes are an error.
func unifyDim(a, b Dim) (Dim, bool) {
	switch {
	case a.IsKnown() && b.IsKnown():
		return a, a.Value == b.Value
	case a.IsKnown():
		return a, true
	case b.IsKnown():
		return b, true
	case a.Param == "":
		return b, true
	}
	return a, true
}

// boundShape validates a shape computed from input shapes (a concatenation, a matrix product, a
// gather) against tensor.CheckShape's limits before a kernel allocates it.
func boundShape(s tensor.Shape) (tensor.Shape, error) {
	dims := make([]int64, len(s))
	for i, d := range s {
		dims[i] = int64(d)
	}
	out, err := tensor.CheckShape(dims)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrShape, err)
	}
	return out, nil
}

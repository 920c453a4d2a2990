package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Constant outputs a fixed tensor given by exactly one of its attributes: value (a tensor), or
// from opset 12 value_float/value_int/value_string (scalars) or value_floats/value_ints/
// value_strings (1-D). sparse_value (opset 11) is not supported.
type Constant struct {
	// Value is the output; kernels return a copy of it.
	Value *tensor.Tensor
}

// OpType returns "Constant".
func (*Constant) OpType() string { return "Constant" }

// constantAttr is one of Constant's value attributes: its kind and the opset that added it.
type constantAttr struct {
	name  string
	kind  AttrKind
	since int
}

// constantAttrs lists Constant's value attributes (sparse_value has no kind dnx decodes).
func constantAttrs() []constantAttr {
	return []constantAttr{
		{"value", AttrTensor, 1},
		{"sparse_value", 0, 11},
		{"value_float", AttrFloat, 12},
		{"value_floats", AttrFloats, 12},
		{"value_int", AttrInt, 12},
		{"value_ints", AttrInts, 12},
		{"value_string", AttrString, 12},
		{"value_strings", AttrStrings, 12},
	}
}

func decodeConstant(n *Node) (Op, error) {
	if err := CheckArity(n, 0, 0, 1, 1); err != nil {
		return nil, err
	}
	var found []string
	for _, c := range constantAttrs() {
		if n.Attrs.Has(c.name) {
			found = append(found, c.name)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%w: Constant needs exactly one value attribute, got %d %v", ErrAttr, len(found), found)
	}
	name := found[0]
	for _, c := range constantAttrs() {
		if c.name != name {
			continue
		}
		if n.Opset < c.since {
			return nil, fmt.Errorf("%w: Constant attribute %s exists from opset %d (model imports %d)", ErrAttr, name, c.since, n.Opset)
		}
		if name == "sparse_value" {
			return nil, fmt.Errorf("%w: Constant with a sparse_value attribute (sparse tensors are not supported)", ErrUnsupportedOp)
		}
		if a := n.Attrs[name]; a.Kind != c.kind {
			return nil, fmt.Errorf("%w: attribute %q is %s, want %s", ErrAttr, name, a.Kind, c.kind)
		}
	}
	a := n.Attrs[name]
	var v *tensor.Tensor
	switch name {
	case "value":
		if a.Tensor == nil {
			return nil, fmt.Errorf("%w: Constant value attribute holds no tensor", ErrAttr)
		}
		if !a.Tensor.DType.Supported() {
			return nil, fmt.Errorf("%w: Constant value of type %s is not supported", ErrAttr, a.Tensor.DType)
		}
		v = a.Tensor
	case "value_float":
		v = tensor.Scalar(a.Float)
	case "value_floats":
		v = tensor.FromSlice(tensor.Shape{len(a.Floats)}, append([]float32{}, a.Floats...))
	case "value_int":
		v = tensor.Scalar(a.Int)
	case "value_ints":
		v = tensor.FromSlice(tensor.Shape{len(a.Ints)}, append([]int64{}, a.Ints...))
	case "value_string":
		v = tensor.Scalar(a.String)
	case "value_strings":
		v = tensor.FromSlice(tensor.Shape{len(a.Strings)}, append([]string{}, a.Strings...))
	}
	return &Constant{Value: v}, nil
}

// Infer returns the value's type.
func (c *Constant) Infer([]*Arg) ([]Type, error) { return []Type{TypeOf(c.Value)}, nil }

// ConstantOfShape outputs a tensor of the shape given by its int64 1-D input, every element equal
// to the one element of Value. An empty shape input gives a scalar.
type ConstantOfShape struct {
	// Value is a one-element tensor; its element type is the output's (default float32 0).
	Value *tensor.Tensor
}

// OpType returns "ConstantOfShape".
func (*ConstantOfShape) OpType() string { return "ConstantOfShape" }

func decodeConstantOfShape(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	v, err := n.Attrs.Tensor("value")
	if err != nil {
		return nil, err
	}
	if v == nil {
		return &ConstantOfShape{Value: tensor.FromSlice(tensor.Shape{1}, []float32{0})}, nil
	}
	if !v.DType.Supported() {
		return nil, fmt.Errorf("%w: ConstantOfShape value of type %s is not supported", ErrAttr, v.DType)
	}
	if v.Len() != 1 {
		return nil, fmt.Errorf("%w: ConstantOfShape value must have one element, has shape %v", ErrAttr, v.Shape)
	}
	return &ConstantOfShape{Value: v}, nil
}

// OutputShape validates a run-time shape input (every dim >= 0, within tensor.CheckShape's limits).
func (c *ConstantOfShape) OutputShape(dims []int64) (tensor.Shape, error) {
	s, err := tensor.CheckShape(dims)
	if err != nil {
		return nil, fmt.Errorf("%w: ConstantOfShape: %w", ErrShape, err)
	}
	return s, nil
}

// Infer uses a constant shape input; otherwise the rank comes from the shape input's length.
func (c *ConstantOfShape) Infer(in []*Arg) ([]Type, error) {
	s := inputArg(in, 0)
	if s == nil {
		return nil, fmt.Errorf("%w: ConstantOfShape needs its shape input", ErrArity)
	}
	dt := c.Value.DType
	if d := s.Type.DType; d != tensor.Undefined && d != tensor.Int64 {
		return nil, fmt.Errorf("%w: ConstantOfShape input is %s, want int64", ErrShape, d)
	}
	dims, ok, err := constInt64s(s)
	if err != nil {
		return nil, fmt.Errorf("ConstantOfShape input: %w", err)
	}
	if ok {
		sh, err := c.OutputShape(dims)
		if err != nil {
			return nil, err
		}
		return []Type{{DType: dt, Shape: DimsOf(sh)}}, nil
	}
	if s.Type.Rank() == 1 && s.Type.Shape[0].IsKnown() && s.Type.Shape[0].Value <= tensor.MaxRank {
		return []Type{{DType: dt, Shape: unknownShape(int(s.Type.Shape[0].Value))}}, nil
	}
	return []Type{{DType: dt, Unranked: true}}, nil
}

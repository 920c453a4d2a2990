package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// constantKernel returns a copy of the op's value, so callers may modify outputs freely.
func constantKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	c, err := opAs[*ops.Constant](op)
	if err != nil {
		return nil, err
	}
	if c.Value == nil {
		return nil, fmt.Errorf("ref: Constant has no value")
	}
	return mvOne(mvReshaped(c.Value, c.Value.Shape))
}

// constantOfShapeKernel returns a tensor of the shape given by input 0 (validated by
// tensor.CheckShape before anything is allocated) with every element equal to the op's value.
func constantOfShapeKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	c, err := opAs[*ops.ConstantOfShape](op)
	if err != nil {
		return nil, err
	}
	dims, err := mvInts("ConstantOfShape", in, 0)
	if err != nil {
		return nil, err
	}
	shape, err := c.OutputShape(dims)
	if err != nil {
		return nil, err
	}
	if c.Value == nil || c.Value.Len() != 1 {
		return nil, fmt.Errorf("ref: ConstantOfShape value must have one element")
	}
	out, err := mvNew(c.Value.DType, shape)
	if err != nil {
		return nil, err
	}
	// A broadcast copy: source stride 0 repeats the one value.
	n := shape.Size()
	if err := mvCopy(out, c.Value, mvBlock{shape: []int{n}, dStr: []int{1}, sStr: []int{0}}); err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

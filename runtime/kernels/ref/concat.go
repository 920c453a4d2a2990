package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// concatKernel joins its inputs along the axis. Viewing each input i as [outer, w_i] with
// w_i = dim_i(axis) * inner (inner: the product of the dims after the axis), output row r is the
// concatenation of the inputs' rows r: out[r, off_i + j] = in_i[r, j], off_i = w_0 + ... + w_(i-1).
func concatKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	c, err := opAs[*ops.Concat](op)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: Concat has no inputs", ops.ErrArity)
	}
	shapes := make([]tensor.Shape, len(in))
	for i := range in {
		x, err := mvInput("Concat", in, i)
		if err != nil {
			return nil, err
		}
		if x.DType != in[0].DType {
			return nil, fmt.Errorf("%w: Concat input %d is %s, input 0 is %s", ops.ErrShape, i, x.DType, in[0].DType)
		}
		shapes[i] = x.Shape
	}
	axis, shape, err := c.OutputShape(shapes)
	if err != nil {
		return nil, err
	}
	out, err := mvNew(in[0].DType, shape)
	if err != nil {
		return nil, err
	}
	outer, inner := shape[:axis].Size(), shape[axis+1:].Size()
	row := shape[axis] * inner
	off := 0
	for _, x := range in {
		w := x.Shape[axis] * inner
		b := mvBlock{shape: []int{outer, w}, dOff: off, dStr: []int{row, 1}, sStr: []int{w, 1}}
		if err := mvCopy(out, x, b); err != nil {
			return nil, fmt.Errorf("Concat: %w", err)
		}
		off += w
	}
	return []*tensor.Tensor{out}, nil
}

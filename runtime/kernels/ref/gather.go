package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// gatherKernel picks slices of the data along the axis: viewing data as [outer, dim, inner] and
// the output as [outer, n, inner] (n = number of indices, in row-major order),
// out[o, j, k] = data[o, idx_j, k], where idx_j = indices[j] + dim when indices[j] < 0. An index
// outside [-dim, dim) is an error.
func gatherKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	g, err := opAs[*ops.Gather](op)
	if err != nil {
		return nil, err
	}
	data, err := mvInput("Gather", in, 0)
	if err != nil {
		return nil, err
	}
	indices, err := mvInput("Gather", in, 1)
	if err != nil {
		return nil, err
	}
	if indices.DType != tensor.Int32 && indices.DType != tensor.Int64 {
		return nil, fmt.Errorf("%w: Gather indices are %s, want int32 or int64", ops.ErrShape, indices.DType)
	}
	idx, err := indices.Int64s()
	if err != nil {
		return nil, err
	}
	axis, shape, err := g.OutputShape(data.Shape, indices.Shape)
	if err != nil {
		return nil, err
	}
	out, err := mvNew(data.DType, shape)
	if err != nil {
		return nil, err
	}
	dim := data.Shape[axis]
	outer, inner := data.Shape[:axis].Size(), data.Shape[axis+1:].Size()
	n := len(idx)
	for j, v := range idx {
		if v < -int64(dim) || v >= int64(dim) {
			return nil, fmt.Errorf("%w: Gather index %d (position %d) is out of range for axis %d of size %d",
				ops.ErrShape, v, j, axis, dim)
		}
		if v < 0 {
			v += int64(dim)
		}
		b := mvBlock{
			shape: []int{outer, inner},
			dOff:  j * inner, dStr: []int{n * inner, 1},
			sOff: int(v) * inner, sStr: []int{dim * inner, 1},
		}
		if err := mvCopy(out, data, b); err != nil {
			return nil, fmt.Errorf("Gather: %w", err)
		}
	}
	return []*tensor.Tensor{out}, nil
}

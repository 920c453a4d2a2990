package ref

import (
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// shapeKernel returns the input's dims [lo, hi) (see ops.Shape.Range) as a 1-D int64 tensor.
func shapeKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	s, err := opAs[*ops.Shape](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Shape", in, 0)
	if err != nil {
		return nil, err
	}
	lo, hi := s.Range(x.Rank())
	v := make([]int64, hi-lo)
	for i := range v {
		v[i] = int64(x.Shape[lo+i])
	}
	return []*tensor.Tensor{tensor.FromSlice(tensor.Shape{len(v)}, v)}, nil
}

package ref

import (
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// sliceKernel takes the strided sub-box that ops.SliceRanges describes: with ranges (start_d,
// step_d, len_d), out[i_0, ...] = in[start_0 + i_0*step_0, ...]. It is one strided copy from the
// input offset sum(start_d*stride_d) with strides step_d*stride_d.
func sliceKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	s, err := opAs[*ops.Slice](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Slice", in, 0)
	if err != nil {
		return nil, err
	}
	starts, ends, axes := s.Starts, s.Ends, s.Axes
	var steps []int64
	if s.FromInputs {
		if starts, err = mvInts("Slice", in, 1); err != nil {
			return nil, err
		}
		if ends, err = mvInts("Slice", in, 2); err != nil {
			return nil, err
		}
		if mvOptional(in, 3) != nil {
			if axes, err = mvInts("Slice", in, 3); err != nil {
				return nil, err
			}
		}
		if mvOptional(in, 4) != nil {
			if steps, err = mvInts("Slice", in, 4); err != nil {
				return nil, err
			}
		}
	}
	ranges, err := ops.SliceRanges(x.Shape, starts, ends, axes, steps)
	if err != nil {
		return nil, err
	}
	inStr := x.Shape.Strides()
	shape := make(tensor.Shape, len(ranges))
	sStr := make([]int, len(ranges))
	sOff := 0
	for d, r := range ranges {
		shape[d] = r.Len
		sStr[d] = r.Step * inStr[d]
		sOff += r.Start * inStr[d]
	}
	out, err := mvNew(x.DType, shape)
	if err != nil {
		return nil, err
	}
	if err := mvCopy(out, x, mvBlock{shape: shape, sOff: sOff, dStr: shape.Strides(), sStr: sStr}); err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// splitKernel cuts the input along the axis into consecutive parts of sizes s_0, s_1, ...: viewing
// the input as [outer, dim, inner], output i is in[:, off_i : off_i+s_i, :] with
// off_i = s_0 + ... + s_(i-1).
func splitKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	s, err := opAs[*ops.Split](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Split", in, 0)
	if err != nil {
		return nil, err
	}
	axis, err := s.ResolveAxis(x.Shape)
	if err != nil {
		return nil, err
	}
	var split []int64
	if t := mvOptional(in, 1); s.SplitFromInput && t != nil {
		if split, err = splitSizes(t); err != nil {
			return nil, err
		}
	}
	dim := x.Shape[axis]
	sizes, err := s.Sizes(dim, split)
	if err != nil {
		return nil, err
	}
	if nOut > len(sizes) {
		return nil, fmt.Errorf("%w: Split asked for %d outputs, has %d parts", ops.ErrArity, nOut, len(sizes))
	}
	outer, inner := x.Shape[:axis].Size(), x.Shape[axis+1:].Size()
	outs := make([]*tensor.Tensor, nOut)
	off := 0
	for i := range outs {
		shape := x.Shape.Clone()
		shape[axis] = sizes[i]
		o, err := mvNew(x.DType, shape)
		if err != nil {
			return nil, err
		}
		w := sizes[i] * inner
		b := mvBlock{shape: []int{outer, w}, sOff: off * inner, dStr: []int{w, 1}, sStr: []int{dim * inner, 1}}
		if err := mvCopy(o, x, b); err != nil {
			return nil, fmt.Errorf("Split: %w", err)
		}
		outs[i] = o
		off += sizes[i]
	}
	return outs, nil
}

// splitSizes reads the split input: int64 (opset 13+), or, in opset 1 where it had the data's
// type, any integer or float tensor of whole numbers.
func splitSizes(t *tensor.Tensor) ([]int64, error) {
	if t.DType.IsInt() && t.DType != tensor.Int64 && t.DType != tensor.Int32 || t.DType.IsFloat() {
		if t.Rank() > 1 {
			return nil, fmt.Errorf("%w: Split split input has shape %v, want 1-D", ops.ErrShape, t.Shape)
		}
		f := t.Float64s()
		v := make([]int64, len(f))
		for i, x := range f {
			if x != float64(int64(x)) {
				return nil, fmt.Errorf("%w: Split size %v is not a whole number", ops.ErrShape, x)
			}
			v[i] = int64(x)
		}
		return v, nil
	}
	v, err := ops.IntsOf(t)
	if err != nil {
		return nil, fmt.Errorf("Split split input: %w", err)
	}
	return v, nil
}

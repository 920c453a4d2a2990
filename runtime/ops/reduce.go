package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ReduceMean averages X over a set of axes: Y[j] = (1/|S_j|) * sum_{i in S_j} X[i], where S_j
// is the set of input positions that agree with output position j outside the reduced axes.
// Reduced axes are kept as size 1 when KeepDims (default true) and removed otherwise. Integer
// inputs give the truncated integer mean.
//
// Until opset 17 the axes are an attribute; absent or empty means every axis. From opset 18 they
// are the optional int64 input 1; absent or empty means every axis, or no reduction at all
// (Y = X) when NoopWithEmptyAxes. Negative axes count from the end.
type ReduceMean struct {
	// Axes holds the attribute (opset < 18); nil when absent.
	Axes []int64
	// AxesInput is set from opset 18, where input 1, when present, holds the axes.
	AxesInput         bool
	KeepDims          bool
	NoopWithEmptyAxes bool
}

// OpType returns "ReduceMean".
func (*ReduceMean) OpType() string { return "ReduceMean" }

func decodeReduceMean(n *Node, since int) (Op, error) {
	maxIn := 1
	if since >= 18 {
		maxIn = 2
	}
	if err := CheckArity(n, 1, maxIn, 1, 1); err != nil {
		return nil, err
	}
	keep, err := n.Attrs.Int("keepdims", 1)
	if err != nil {
		return nil, err
	}
	o := &ReduceMean{KeepDims: keep != 0, AxesInput: since >= 18}
	if since >= 18 {
		noop, err := n.Attrs.Int("noop_with_empty_axes", 0)
		if err != nil {
			return nil, err
		}
		o.NoopWithEmptyAxes = noop != 0
		return o, nil
	}
	axes, err := n.Attrs.Ints("axes", nil)
	if err != nil {
		return nil, err
	}
	if len(axes) > tensor.MaxRank {
		return nil, fmt.Errorf("%w: ReduceMean has %d axes", ErrAttr, len(axes))
	}
	o.Axes = append([]int64(nil), axes...)
	return o, nil
}

// Reduced resolves the axes for an input of the given rank. axes is input 1's value when
// AxesInput (nil when that input is absent) and ignored otherwise. The result has one entry per
// dim, true where the dim is reduced; noop reports that Y = X (empty axes with
// NoopWithEmptyAxes). Out-of-range or repeated axes are errors wrapping ErrShape.
func (o *ReduceMean) Reduced(rank int, axes *tensor.Tensor) (reduced []bool, noop bool, err error) {
	list := o.Axes
	if o.AxesInput && axes != nil {
		if list, err = axes.Int64s(); err != nil {
			return nil, false, fmt.Errorf("%w: ReduceMean axes: %v", ErrShape, err)
		}
	}
	reduced = make([]bool, rank)
	if len(list) == 0 {
		if o.AxesInput && o.NoopWithEmptyAxes {
			return reduced, true, nil
		}
		for i := range reduced {
			reduced[i] = true
		}
		return reduced, false, nil
	}
	for _, a := range list {
		ax := a
		if ax < 0 {
			ax += int64(rank)
		}
		if ax < 0 || ax >= int64(rank) {
			return nil, false, fmt.Errorf("%w: ReduceMean axis %d is out of range for rank %d", ErrShape, a, rank)
		}
		if reduced[ax] {
			return nil, false, fmt.Errorf("%w: ReduceMean axis %d is repeated", ErrShape, a)
		}
		reduced[ax] = true
	}
	return reduced, false, nil
}

// Infer computes the output shape when the axes are known (attribute or constant input). With
// axes from a non-constant input it returns the rank only (KeepDims: unknown dims where a
// reduction may happen) or an unranked type.
func (o *ReduceMean) Infer(in []*Arg) ([]Type, error) {
	x, err := ewInputType("ReduceMean", in, 0, ewNumericClass)
	if err != nil {
		return nil, err
	}
	axesArg, err := ewOptionalInput("ReduceMean", in, 1, ewIndexClass)
	if err != nil {
		return nil, err
	}
	if x.Unranked {
		return []Type{{DType: x.DType, Unranked: true}}, nil
	}
	var axes *tensor.Tensor
	if axesArg != nil {
		if axesArg.Const == nil {
			if !o.KeepDims {
				return []Type{{DType: x.DType, Unranked: true}}, nil
			}
			out := Type{DType: x.DType, Shape: make([]Dim, len(x.Shape))}
			for i, d := range x.Shape {
				out.Shape[i] = Unknown()
				if d.IsKnown() && d.Value == 1 {
					out.Shape[i] = d
				}
			}
			return []Type{out}, nil
		}
		axes = axesArg.Const
	}
	reduced, noop, err := o.Reduced(len(x.Shape), axes)
	if err != nil {
		return nil, err
	}
	if noop {
		return []Type{x}, nil
	}
	out := Type{DType: x.DType, Shape: []Dim{}}
	for i, d := range x.Shape {
		switch {
		case !reduced[i]:
			out.Shape = append(out.Shape, d)
		case o.KeepDims:
			out.Shape = append(out.Shape, Known(1))
		}
	}
	return []Type{out}, nil
}

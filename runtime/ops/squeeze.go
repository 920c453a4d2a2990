package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Squeeze removes size-1 dims: those listed in the axes, or every size-1 dim when no axes are
// given. Listing a dim whose size is not 1 is an error.
type Squeeze struct {
	// Axes is the attribute of opsets 1-12 (nil or empty: every size-1 dim).
	Axes []int64
	// AxesFromInput is true from opset 13, where the axes are the optional input 1.
	AxesFromInput bool
}

// OpType returns "Squeeze".
func (*Squeeze) OpType() string { return "Squeeze" }

func decodeSqueeze(n *Node) (Op, error) {
	if n.Opset >= 13 {
		if err := CheckArity(n, 1, 2, 1, 1); err != nil {
			return nil, err
		}
		return &Squeeze{AxesFromInput: true}, nil
	}
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	axes, err := n.Attrs.Ints("axes", nil)
	if err != nil {
		return nil, err
	}
	if err := checkNonNegativeAxes(n, 11, "axis", axes...); err != nil {
		return nil, err
	}
	return &Squeeze{Axes: append([]int64(nil), axes...)}, nil
}

// OutputShape removes the dims listed in axes (every size-1 dim when axes is empty) from in.
func (s *Squeeze) OutputShape(in tensor.Shape, axes []int64) (tensor.Shape, error) {
	out := tensor.Shape{}
	if len(axes) == 0 {
		for _, d := range in {
			if d != 1 {
				out = append(out, d)
			}
		}
		return out, nil
	}
	ax, err := axesIn(axes, len(in))
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(in))
	for _, a := range ax {
		if in[a] != 1 {
			return nil, fmt.Errorf("%w: Squeeze axis %d of shape %v has size %d, not 1", ErrShape, a, in, in[a])
		}
		drop[a] = true
	}
	for i, d := range in {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out, nil
}

// Infer removes the listed dims; a symbolic dim may be listed (it must be 1 at run time). Without
// axes, the output rank is only known when every input dim is known.
func (s *Squeeze) Infer(in []*Arg) ([]Type, error) {
	x := inputArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Squeeze needs its data input", ErrArity)
	}
	dt := x.Type.DType
	axes := s.Axes
	if s.AxesFromInput {
		a := inputArg(in, 1)
		v, ok, err := constInt64s(a)
		if err != nil {
			return nil, fmt.Errorf("Squeeze axes input: %w", err)
		}
		if a != nil && !ok {
			if !x.Type.Unranked && a.Type.Rank() == 1 && a.Type.Shape[0].IsKnown() {
				k := int(a.Type.Shape[0].Value)
				if k > 0 && k <= x.Type.Rank() {
					return []Type{{DType: dt, Shape: unknownShape(x.Type.Rank() - k)}}, nil
				}
			}
			return []Type{{DType: dt, Unranked: true}}, nil
		}
		axes = v
	}
	if x.Type.Unranked {
		return []Type{{DType: dt, Unranked: true}}, nil
	}
	if len(axes) == 0 {
		st, ok := x.Type.Static()
		if !ok {
			return []Type{{DType: dt, Unranked: true}}, nil
		}
		o, err := s.OutputShape(st, nil)
		if err != nil {
			return nil, err
		}
		return []Type{{DType: dt, Shape: DimsOf(o)}}, nil
	}
	ax, err := axesIn(axes, x.Type.Rank())
	if err != nil {
		return nil, err
	}
	drop := make([]bool, x.Type.Rank())
	for _, a := range ax {
		if d := x.Type.Shape[a]; d.IsKnown() && d.Value != 1 {
			return nil, fmt.Errorf("%w: Squeeze axis %d of %s has size %d, not 1", ErrShape, a, x.Type, d.Value)
		}
		drop[a] = true
	}
	out := []Dim{}
	for i, d := range x.Type.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return []Type{{DType: dt, Shape: out}}, nil
}

// Unsqueeze inserts size-1 dims at the given axes, which index the output shape.
type Unsqueeze struct {
	// Axes is the required attribute of opsets 1-12.
	Axes []int64
	// AxesFromInput is true from opset 13, where the axes are the required input 1.
	AxesFromInput bool
}

// OpType returns "Unsqueeze".
func (*Unsqueeze) OpType() string { return "Unsqueeze" }

func decodeUnsqueeze(n *Node) (Op, error) {
	if n.Opset >= 13 {
		if err := CheckArity(n, 2, 2, 1, 1); err != nil {
			return nil, err
		}
		return &Unsqueeze{AxesFromInput: true}, nil
	}
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	if !n.Attrs.Has("axes") {
		return nil, fmt.Errorf("%w: Unsqueeze-%d requires the axes attribute", ErrAttr, n.Opset)
	}
	axes, err := n.Attrs.Ints("axes", nil)
	if err != nil {
		return nil, err
	}
	if err := checkNonNegativeAxes(n, 11, "axis", axes...); err != nil {
		return nil, err
	}
	return &Unsqueeze{Axes: append([]int64{}, axes...)}, nil
}

// insertOnes returns the output positions of the new dims: axes resolved against the output rank
// inRank+len(axes).
func insertOnes(inRank int, axes []int64) ([]bool, error) {
	outRank := inRank + len(axes)
	if outRank > tensor.MaxRank {
		return nil, fmt.Errorf("%w: Unsqueeze output rank %d exceeds the limit of %d", ErrShape, outRank, tensor.MaxRank)
	}
	ax, err := axesIn(axes, outRank)
	if err != nil {
		return nil, err
	}
	isNew := make([]bool, outRank)
	for _, a := range ax {
		isNew[a] = true
	}
	return isNew, nil
}

// OutputShape inserts a 1 into in at each of the axes.
func (u *Unsqueeze) OutputShape(in tensor.Shape, axes []int64) (tensor.Shape, error) {
	isNew, err := insertOnes(len(in), axes)
	if err != nil {
		return nil, err
	}
	out := make(tensor.Shape, len(isNew))
	j := 0
	for i := range out {
		if isNew[i] {
			out[i] = 1
		} else {
			out[i] = in[j]
			j++
		}
	}
	return out, nil
}

// Infer inserts known 1 dims and keeps the input dims, symbolic ones included, in order.
func (u *Unsqueeze) Infer(in []*Arg) ([]Type, error) {
	x := inputArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Unsqueeze needs its data input", ErrArity)
	}
	dt := x.Type.DType
	axes := u.Axes
	if u.AxesFromInput {
		a := inputArg(in, 1)
		v, ok, err := constInt64s(a)
		if err != nil {
			return nil, fmt.Errorf("Unsqueeze axes input: %w", err)
		}
		if !ok {
			if a != nil && !x.Type.Unranked && a.Type.Rank() == 1 && a.Type.Shape[0].IsKnown() {
				if r := x.Type.Rank() + int(a.Type.Shape[0].Value); r <= tensor.MaxRank {
					return []Type{{DType: dt, Shape: unknownShape(r)}}, nil
				}
			}
			return []Type{{DType: dt, Unranked: true}}, nil
		}
		axes = v
	}
	if x.Type.Unranked {
		return []Type{{DType: dt, Unranked: true}}, nil
	}
	isNew, err := insertOnes(x.Type.Rank(), axes)
	if err != nil {
		return nil, err
	}
	out := make([]Dim, len(isNew))
	j := 0
	for i := range out {
		if isNew[i] {
			out[i] = Known(1)
		} else {
			out[i] = x.Type.Shape[j]
			j++
		}
	}
	return []Type{{DType: dt, Shape: out}}, nil
}

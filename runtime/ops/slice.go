package ops

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Slice takes a strided sub-box of its input, like NumPy's x[start:end:step] on each listed axis.
// For an axis of size d: a negative start or end has d added; with step > 0 both are then clamped
// to [0, d], with step < 0 start is clamped to [0, d-1] and end to [-1, d-1]; the axis keeps
// max(0, ceil((end-start)/step)) elements start, start+step, ... Unlisted axes are kept whole.
type Slice struct {
	// Starts, Ends and Axes are the attributes of opsets 1-9 (Axes nil: 0..len(Starts)-1).
	Starts, Ends, Axes []int64
	// FromInputs is true from opset 10, where starts, ends, axes and steps are inputs 1 to 4 (axes
	// and steps optional).
	FromInputs bool
}

// OpType returns "Slice".
func (*Slice) OpType() string { return "Slice" }

func decodeSlice(n *Node) (Op, error) {
	if n.Opset >= 10 {
		if err := CheckArity(n, 3, 5, 1, 1); err != nil {
			return nil, err
		}
		return &Slice{FromInputs: true}, nil
	}
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	if !n.Attrs.Has("starts") || !n.Attrs.Has("ends") {
		return nil, fmt.Errorf("%w: Slice-%d requires the starts and ends attributes", ErrAttr, n.Opset)
	}
	s := &Slice{}
	for _, f := range []struct {
		name string
		dst  *[]int64
	}{{"starts", &s.Starts}, {"ends", &s.Ends}, {"axes", &s.Axes}} {
		v, err := n.Attrs.Ints(f.name, nil)
		if err != nil {
			return nil, err
		}
		if v != nil {
			*f.dst = append([]int64{}, v...)
		}
	}
	if len(s.Starts) != len(s.Ends) || (s.Axes != nil && len(s.Axes) != len(s.Starts)) {
		return nil, fmt.Errorf("%w: Slice starts %v, ends %v and axes %v differ in length", ErrAttr, s.Starts, s.Ends, s.Axes)
	}
	return s, nil
}

// SliceRange is the part of one input axis that Slice keeps: Len elements at Start, Start+Step, ...
type SliceRange struct {
	Start, Step, Len int
}

// SliceRanges resolves starts, ends, axes (nil: 0..len(starts)-1) and steps (nil: all 1) against
// the input shape in, returning one range per input axis.
func SliceRanges(in tensor.Shape, starts, ends, axes, steps []int64) ([]SliceRange, error) {
	if len(starts) != len(ends) {
		return nil, fmt.Errorf("%w: Slice starts %v and ends %v differ in length", ErrShape, starts, ends)
	}
	if axes == nil {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	if len(axes) != len(starts) {
		return nil, fmt.Errorf("%w: Slice axes %v and starts %v differ in length", ErrShape, axes, starts)
	}
	if steps != nil && len(steps) != len(starts) {
		return nil, fmt.Errorf("%w: Slice steps %v and starts %v differ in length", ErrShape, steps, starts)
	}
	ax, err := axesIn(axes, len(in))
	if err != nil {
		return nil, err
	}
	r := make([]SliceRange, len(in))
	for i, d := range in {
		r[i] = SliceRange{Start: 0, Step: 1, Len: d}
	}
	for i, a := range ax {
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return nil, fmt.Errorf("%w: Slice step for axis %d is 0", ErrShape, a)
		}
		r[a] = sliceAxis(int64(in[a]), starts[i], ends[i], step)
	}
	return r, nil
}

// sliceAxis applies the clamping rules to one axis of size d.
func sliceAxis(d, start, end, step int64) SliceRange {
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	var n int64
	if step > 0 {
		start = min(max(start, 0), d)
		end = min(max(end, 0), d)
		if end > start {
			n = (end-start-1)/step + 1
		}
	} else {
		start = min(max(start, 0), d-1)
		end = min(max(end, -1), d-1)
		if start > end {
			n = (start-end-1)/(-step) + 1
		}
	}
	if n == 0 {
		start = 0
	}
	// A step longer than the axis keeps at most one element, so its size does not matter; using
	// ±1 keeps the kernel's offset arithmetic (step * stride <= element count) from overflowing.
	st := step
	if st > d || -st > d {
		st = 1
		if step < 0 {
			st = -1
		}
	}
	return SliceRange{Start: int(start), Step: int(st), Len: int(n)}
}

// sliceParams returns the starts, ends, axes and steps that inference can see, and whether the
// starts/ends/steps and the axes are known.
func (s *Slice) sliceParams(in []*Arg) (starts, ends, axes, steps []int64, valuesKnown, axesKnown bool, err error) {
	if !s.FromInputs {
		return s.Starts, s.Ends, s.Axes, nil, true, true, nil
	}
	var ok [4]bool
	lists := [4]*[]int64{&starts, &ends, &axes, &steps}
	for i := range lists {
		a := inputArg(in, i+1)
		v, known, e := constInt64s(a)
		if e != nil {
			return nil, nil, nil, nil, false, false, fmt.Errorf("Slice input %d: %w", i+1, e)
		}
		*lists[i] = v
		ok[i] = known || (a == nil && i >= 2)
	}
	return starts, ends, axes, steps, ok[0] && ok[1] && ok[3], ok[2], nil
}

// Infer computes the sliced dims when the parameters are constant and the sliced dims known. A
// symbolic dim sliced from 0 to "the end" (an end of at least 2^31-1) with step 1 keeps its name.
func (s *Slice) Infer(in []*Arg) ([]Type, error) {
	x := inputArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Slice needs its data input", ErrArity)
	}
	dt := x.Type.DType
	if x.Type.Unranked {
		return []Type{{DType: dt, Unranked: true}}, nil
	}
	rank := x.Type.Rank()
	starts, ends, axes, steps, valuesKnown, axesKnown, err := s.sliceParams(in)
	if err != nil {
		return nil, err
	}
	if !axesKnown {
		return []Type{{DType: dt, Shape: unknownShape(rank)}}, nil
	}
	if axes == nil && starts == nil {
		// Axes default to 0..len(starts)-1, and starts are unknown: any axis may be sliced.
		return []Type{{DType: dt, Shape: unknownShape(rank)}}, nil
	}
	if axes == nil {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	ax, err := axesIn(axes, rank)
	if err != nil {
		return nil, err
	}
	out := append([]Dim(nil), x.Type.Shape...)
	if !valuesKnown {
		for _, a := range ax {
			out[a] = Unknown()
		}
		return []Type{{DType: dt, Shape: out}}, nil
	}
	if len(starts) != len(ax) || len(ends) != len(ax) || (steps != nil && len(steps) != len(ax)) {
		return nil, fmt.Errorf("%w: Slice starts %v, ends %v, axes %v and steps %v differ in length", ErrShape, starts, ends, axes, steps)
	}
	for i, a := range ax {
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return nil, fmt.Errorf("%w: Slice step for axis %d is 0", ErrShape, a)
		}
		d := x.Type.Shape[a]
		switch {
		case d.IsKnown():
			out[a] = Known(int64(sliceAxis(d.Value, starts[i], ends[i], step).Len))
		case step == 1 && starts[i] == 0 && ends[i] >= math.MaxInt32:
			// keeps the whole symbolic dim
		default:
			out[a] = Unknown()
		}
	}
	return []Type{{DType: dt, Shape: out}}, nil
}

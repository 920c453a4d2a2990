package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Split cuts its input along Axis into NumOutputs consecutive parts. Part sizes come from the split
// list (attribute or input) when given; otherwise the parts are equal, or with CeilChunks (opset 18
// num_outputs) each part has ceil(dim/NumOutputs) elements and the last one takes the remainder.
type Split struct {
	// Axis is the axis to cut; negative counts from the back (opset 11 and later).
	Axis int64
	// Split holds the part sizes of the opsets 1-12 attribute; nil when absent.
	Split []int64
	// SplitFromInput is true when the node has input 1, the part sizes (opset 1 and 13+).
	SplitFromInput bool
	// NumOutputs is the number of outputs of the node.
	NumOutputs int
	// CeilChunks is set by opset 18's num_outputs attribute: uneven input sizes are allowed, the
	// last part being smaller.
	CeilChunks bool
}

// OpType returns "Split".
func (*Split) OpType() string { return "Split" }

func decodeSplit(n *Node) (Op, error) {
	maxIn := 2
	if n.Opset >= 2 && n.Opset < 13 {
		maxIn = 1
	}
	if err := CheckArity(n, 1, maxIn, 1, variadic); err != nil {
		return nil, err
	}
	axis, err := n.Attrs.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	if err := checkNonNegativeAxes(n, 11, "axis", axis); err != nil {
		return nil, err
	}
	s := &Split{Axis: axis, NumOutputs: n.NumOutputs, SplitFromInput: nodeHas(n, 1)}
	if n.Opset < 13 && n.Attrs.Has("split") {
		v, err := n.Attrs.Ints("split", nil)
		if err != nil {
			return nil, err
		}
		if s.SplitFromInput {
			return nil, fmt.Errorf("%w: Split has both the split attribute and the split input", ErrAttr)
		}
		s.Split = append([]int64{}, v...)
		if len(v) != n.NumOutputs {
			return nil, fmt.Errorf("%w: Split split attribute %v has %d sizes for %d outputs", ErrAttr, v, len(v), n.NumOutputs)
		}
		for _, x := range v {
			if x < 0 {
				return nil, fmt.Errorf("%w: Split split attribute %v has a negative size", ErrAttr, v)
			}
		}
	}
	if n.Opset >= 18 && n.Attrs.Has("num_outputs") {
		k, err := n.Attrs.Int("num_outputs", 0)
		if err != nil {
			return nil, err
		}
		if s.SplitFromInput {
			return nil, fmt.Errorf("%w: Split has both num_outputs and the split input", ErrAttr)
		}
		if k < 1 || k != int64(n.NumOutputs) {
			return nil, fmt.Errorf("%w: Split num_outputs is %d but the node has %d outputs", ErrAttr, k, n.NumOutputs)
		}
		s.CeilChunks = true
	}
	return s, nil
}

// Sizes returns the size of each part along an axis of size dim. split is the run-time split
// input, or nil to use the attribute or the equal/ceil rule.
func (s *Split) Sizes(dim int, split []int64) ([]int, error) {
	if split == nil {
		split = s.Split
	}
	out := make([]int, s.NumOutputs)
	if split != nil {
		if len(split) != s.NumOutputs {
			return nil, fmt.Errorf("%w: Split sizes %v do not match %d outputs", ErrShape, split, s.NumOutputs)
		}
		sum := int64(0)
		for i, v := range split {
			if v < 0 || v > int64(dim) {
				return nil, fmt.Errorf("%w: Split sizes %v do not fit axis size %d", ErrShape, split, dim)
			}
			sum += v
			out[i] = int(v)
		}
		if sum != int64(dim) {
			return nil, fmt.Errorf("%w: Split sizes %v add up to %d, not the axis size %d", ErrShape, split, sum, dim)
		}
		return out, nil
	}
	n := s.NumOutputs
	if n < 1 {
		return nil, fmt.Errorf("%w: Split has no outputs", ErrArity)
	}
	if !s.CeilChunks {
		if dim%n != 0 {
			return nil, fmt.Errorf("%w: Split cannot cut an axis of size %d into %d equal parts", ErrShape, dim, n)
		}
		for i := range out {
			out[i] = dim / n
		}
		return out, nil
	}
	chunk := (dim + n - 1) / n
	last := dim - chunk*(n-1)
	if last < 0 {
		return nil, fmt.Errorf("%w: Split cannot cut an axis of size %d into %d parts of %d", ErrShape, dim, n, chunk)
	}
	for i := range out {
		out[i] = chunk
	}
	out[n-1] = last
	return out, nil
}

// Infer gives each output the input's dims with the part size on the axis, when it can be known.
func (s *Split) Infer(in []*Arg) ([]Type, error) {
	x := inputArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Split needs its input", ErrArity)
	}
	out := make([]Type, s.NumOutputs)
	if x.Type.Unranked {
		for i := range out {
			out[i] = Type{DType: x.Type.DType, Unranked: true}
		}
		return out, nil
	}
	axis, err := axisIn(s.Axis, x.Type.Rank())
	if err != nil {
		return nil, err
	}
	var split []int64
	known := true
	if s.SplitFromInput {
		v, ok, err := constInt64s(inputArg(in, 1))
		if err != nil {
			return nil, fmt.Errorf("Split split input: %w", err)
		}
		split, known = v, ok
		if ok && split == nil {
			split = []int64{} // a constant empty list is wrong, not "absent"
		}
	}
	var sizes []Dim
	if known {
		d := x.Type.Shape[axis]
		switch {
		case d.IsKnown():
			sz, err := s.Sizes(int(d.Value), split)
			if err != nil {
				return nil, err
			}
			sizes = DimsOf(sz)
		case split != nil || s.Split != nil:
			if split == nil {
				split = s.Split
			}
			if len(split) != s.NumOutputs {
				return nil, fmt.Errorf("%w: Split sizes %v do not match %d outputs", ErrShape, split, s.NumOutputs)
			}
			sizes = make([]Dim, len(split))
			for i, v := range split {
				sizes[i] = Known(v)
			}
		}
	}
	for i := range out {
		dims := append([]Dim(nil), x.Type.Shape...)
		if sizes != nil {
			dims[axis] = sizes[i]
		} else {
			dims[axis] = Unknown()
		}
		out[i] = Type{DType: x.Type.DType, Shape: dims}
	}
	return out, nil
}

// ResolveAxis returns the axis to cut for an input of shape in.
func (s *Split) ResolveAxis(in tensor.Shape) (int, error) { return axisIn(s.Axis, len(in)) }

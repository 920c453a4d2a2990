package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Concat joins its inputs along Axis. Every input has the same rank and the same dims except on
// Axis, where the output dim is the sum of the inputs' dims.
type Concat struct {
	// Axis is the axis to join on; negative counts from the back (opset 11 and later).
	Axis int64
}

// OpType returns "Concat".
func (*Concat) OpType() string { return "Concat" }

// decodeConcat reads axis: optional with default 1 in opset 1, required from opset 4.
func decodeConcat(n *Node) (Op, error) {
	if err := CheckArity(n, 1, variadic, 1, 1); err != nil {
		return nil, err
	}
	for i, present := range n.Inputs {
		if !present {
			return nil, fmt.Errorf("%w: Concat input %d is empty", ErrArity, i)
		}
	}
	if n.Opset >= 4 && !n.Attrs.Has("axis") {
		return nil, fmt.Errorf("%w: Concat requires the axis attribute from opset 4", ErrAttr)
	}
	axis, err := n.Attrs.Int("axis", 1)
	if err != nil {
		return nil, err
	}
	if err := checkNonNegativeAxes(n, 11, "axis", axis); err != nil {
		return nil, err
	}
	return &Concat{Axis: axis}, nil
}

// Infer sums the inputs' dims on the axis (Unknown if any is not known) and merges the other dims,
// keeping symbolic ones such as the batch.
func (c *Concat) Infer(in []*Arg) ([]Type, error) {
	dt, err := commonDType("Concat", in...)
	if err != nil {
		return nil, err
	}
	var first *Arg
	for _, a := range in {
		if a != nil && !a.Type.Unranked {
			first = a
			break
		}
	}
	if first == nil {
		return []Type{{DType: dt, Unranked: true}}, nil
	}
	rank := first.Type.Rank()
	axis, err := axisIn(c.Axis, rank)
	if err != nil {
		return nil, err
	}
	out := append([]Dim(nil), first.Type.Shape...)
	sum, sumKnown := int64(0), true
	for i, a := range in {
		if a == nil || a.Type.Unranked {
			sumKnown = false
			continue
		}
		if a.Type.Rank() != rank {
			return nil, fmt.Errorf("%w: Concat input %d has rank %d, input 0 has rank %d", ErrShape, i, a.Type.Rank(), rank)
		}
		for d, dim := range a.Type.Shape {
			if d == axis {
				if dim.IsKnown() {
					sum += dim.Value
				} else {
					sumKnown = false
				}
				continue
			}
			m, ok := unifyDim(out[d], dim)
			if !ok {
				return nil, fmt.Errorf("%w: Concat input %d has dim %d = %s, others have %s", ErrShape, i, d, dim, out[d])
			}
			out[d] = m
		}
	}
	if sumKnown {
		out[axis] = Known(sum)
	} else {
		out[axis] = Unknown()
	}
	return []Type{{DType: dt, Shape: out}}, nil
}

// OutputShape checks the inputs' shapes and returns the resolved axis and the output shape.
func (c *Concat) OutputShape(shapes []tensor.Shape) (int, tensor.Shape, error) {
	if len(shapes) == 0 {
		return 0, nil, fmt.Errorf("%w: Concat needs at least one input", ErrArity)
	}
	rank := len(shapes[0])
	axis, err := axisIn(c.Axis, rank)
	if err != nil {
		return 0, nil, err
	}
	out := shapes[0].Clone()
	out[axis] = 0
	for i, s := range shapes {
		if len(s) != rank {
			return 0, nil, fmt.Errorf("%w: Concat input %d has shape %v, input 0 has %v", ErrShape, i, s, shapes[0])
		}
		for d := range s {
			if d != axis && s[d] != out[d] {
				return 0, nil, fmt.Errorf("%w: Concat input %d has shape %v, input 0 has %v (dim %d differs)",
					ErrShape, i, s, shapes[0], d)
			}
		}
		out[axis] += s[axis]
	}
	out, err = boundShape(out)
	return axis, out, err
}

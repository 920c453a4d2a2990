package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Gather picks entries of its data input along Axis at the positions its integer indices input
// lists: out[i..., j..., k...] = data[i..., indices[j...], k...], where i spans the dims before
// Axis and k those after it. The output shape is data[:axis] + indices.shape + data[axis+1:]. A
// negative index counts from the end of the axis (opset 11; accepted in every version).
type Gather struct {
	// Axis is the data axis to index; negative counts from the back.
	Axis int64
}

// OpType returns "Gather".
func (*Gather) OpType() string { return "Gather" }

func decodeGather(n *Node) (Op, error) {
	if err := CheckArity(n, 2, 2, 1, 1); err != nil {
		return nil, err
	}
	axis, err := n.Attrs.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	return &Gather{Axis: axis}, nil
}

// OutputShape returns the resolved axis and the output shape for the given data and indices shapes.
func (g *Gather) OutputShape(data, indices tensor.Shape) (int, tensor.Shape, error) {
	axis, err := axisIn(g.Axis, len(data))
	if err != nil {
		return 0, nil, err
	}
	out := append(append(append(tensor.Shape{}, data[:axis]...), indices...), data[axis+1:]...)
	out, err = boundShape(out)
	return axis, out, err
}

// Infer gives data[:axis] + indices.shape + data[axis+1:], keeping symbolic dims.
func (g *Gather) Infer(in []*Arg) ([]Type, error) {
	data, idx := inputArg(in, 0), inputArg(in, 1)
	if data == nil || idx == nil {
		return nil, fmt.Errorf("%w: Gather needs data and indices", ErrArity)
	}
	if d := idx.Type.DType; d != tensor.Undefined && d != tensor.Int32 && d != tensor.Int64 {
		return nil, fmt.Errorf("%w: Gather indices are %s, want int32 or int64", ErrShape, d)
	}
	dt := data.Type.DType
	if data.Type.Unranked || idx.Type.Unranked {
		return []Type{{DType: dt, Unranked: true}}, nil
	}
	axis, err := axisIn(g.Axis, data.Type.Rank())
	if err != nil {
		return nil, err
	}
	if r := data.Type.Rank() - 1 + idx.Type.Rank(); r > tensor.MaxRank {
		return nil, fmt.Errorf("%w: Gather output rank %d exceeds the limit of %d", ErrShape, r, tensor.MaxRank)
	}
	out := append([]Dim{}, data.Type.Shape[:axis]...)
	out = append(out, idx.Type.Shape...)
	out = append(out, data.Type.Shape[axis+1:]...)
	return []Type{{DType: dt, Shape: out}}, nil
}

package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ArithKind names one of the four element-wise arithmetic operators.
type ArithKind int

// The arithmetic operators.
const (
	ArithAdd ArithKind = iota
	ArithSub
	ArithMul
	ArithDiv
)

// String returns the ONNX op type of k.
func (k ArithKind) String() string {
	switch k {
	case ArithAdd:
		return "Add"
	case ArithSub:
		return "Sub"
	case ArithMul:
		return "Mul"
	case ArithDiv:
		return "Div"
	}
	return fmt.Sprintf("ArithKind(%d)", int(k))
}

// Arith is Add, Sub, Mul or Div: C = A op B element-wise, with NumPy multidirectional
// broadcasting (opset 7 and later). Integer Div truncates toward zero.
//
// Opsets 1 to 6 broadcast only B to A, and only when the attribute broadcast=1: B's dims line up
// with A's starting at Axis (suffix alignment when Axis is unset), and a one-element B acts as a
// scalar. Legacy records that form; AlignB rewrites B's shape so that NumPy broadcasting then
// gives the old result. With broadcast=0 the old spec wants equal shapes; dnx accepts any
// NumPy-compatible pair, a superset.
type Arith struct {
	Kind ArithKind
	// Legacy is set for opset < 7 with broadcast=1.
	Legacy bool
	// Axis is where B's first dim aligns in A (Legacy only); HasAxis is false for suffix alignment.
	Axis    int
	HasAxis bool
}

// OpType returns "Add", "Sub", "Mul" or "Div".
func (o *Arith) OpType() string { return o.Kind.String() }

func decodeArith(k ArithKind) func(n *Node, since int) (Op, error) {
	return func(n *Node, since int) (Op, error) {
		if err := CheckArity(n, 2, 2, 1, 1); err != nil {
			return nil, err
		}
		o := &Arith{Kind: k}
		if since >= 7 {
			return o, nil
		}
		b, err := n.Attrs.Int("broadcast", 0)
		if err != nil {
			return nil, err
		}
		if b != 0 && b != 1 {
			return nil, fmt.Errorf("%w: %s broadcast must be 0 or 1, got %d", ErrAttr, k, b)
		}
		o.Legacy = b == 1
		if n.Attrs.Has("axis") {
			ax, err := n.Attrs.Int("axis", 0)
			if err != nil {
				return nil, err
			}
			if ax < 0 || ax > tensor.MaxRank {
				return nil, fmt.Errorf("%w: %s axis %d is out of range", ErrAttr, k, ax)
			}
			o.Axis, o.HasAxis = int(ax), true
		}
		return o, nil
	}
}

// AlignB returns B's dims rewritten for NumPy broadcasting against A. Outside Legacy mode it
// returns b unchanged. In Legacy mode a one-element B becomes a scalar, and otherwise B's dims
// are placed at [Axis, Axis+len(b)) of a rank-len(a) shape of ones.
func (o *Arith) AlignB(a, b []Dim) ([]Dim, error) {
	if !o.Legacy {
		return b, nil
	}
	one := true
	for _, d := range b {
		if !d.IsKnown() || d.Value != 1 {
			one = false
		}
	}
	if one {
		return []Dim{}, nil
	}
	if len(b) > len(a) {
		return nil, fmt.Errorf("%w: %s (legacy broadcast): B of rank %d cannot broadcast to A of rank %d",
			ErrShape, o.Kind, len(b), len(a))
	}
	axis := len(a) - len(b)
	if o.HasAxis {
		axis = o.Axis
	}
	if axis+len(b) > len(a) {
		return nil, fmt.Errorf("%w: %s (legacy broadcast): B %s at axis %d does not fit in A %s",
			ErrShape, o.Kind, dimsString(b), axis, dimsString(a))
	}
	out := make([]Dim, len(a))
	for i := range out {
		out[i] = Known(1)
	}
	copy(out[axis:], b)
	return out, nil
}

// Infer checks that A and B have the same numeric type and broadcasts their shapes.
func (o *Arith) Infer(in []*Arg) ([]Type, error) {
	op := o.OpType()
	a, err := ewInputType(op, in, 0, ewNumericClass)
	if err != nil {
		return nil, err
	}
	b, err := ewInputType(op, in, 1, ewNumericClass)
	if err != nil {
		return nil, err
	}
	if err := ewSameDType(op, 0, 1, a.DType, b.DType); err != nil {
		return nil, err
	}
	dt := a.DType
	if dt == tensor.Undefined {
		dt = b.DType
	}
	if a.Unranked || b.Unranked {
		return []Type{{DType: dt, Unranked: true}}, nil
	}
	bd, err := o.AlignB(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	out, err := BroadcastDims(a.Shape, bd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return []Type{{DType: dt, Shape: out}}, nil
}

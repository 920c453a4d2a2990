package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// PadMode is Pad's mode attribute.
type PadMode string

// The Pad modes, as numpy.pad names them: constant fills with a value, reflect mirrors around the
// edge element without repeating it, edge repeats the edge element, wrap (from opset 19) tiles the
// tensor as a torus.
const (
	PadConstant PadMode = "constant"
	PadReflect  PadMode = "reflect"
	PadEdge     PadMode = "edge"
	PadWrap     PadMode = "wrap"
)

// Pad is the ONNX Pad operator. Pads lists, for each padded axis, the number of elements added
// before the data and then, for each, the number added after ([b0, b1, ..., e0, e1, ...]). A
// negative count removes elements: dnx first crops by the negative counts, then pads the cropped
// tensor by the positive ones, so reflect, edge and wrap read the cropped values. Output dim i is
// in_i + b_i + e_i, which must not be negative.
//
// Versions: opset 1 has the attribute paddings, 2 to 10 the attribute pads, both with a float
// attribute value; from opset 11 pads is input 1 (int64) and the constant an optional scalar input 2
// of X's type; from 18 an optional input 3 lists the axes the pads refer to (others are not padded);
// from 19 mode may be wrap.
type Pad struct {
	Mode PadMode
	// StaticPads holds the pads of opsets 1 to 10 (full rank); it is nil from opset 11, where the
	// pads are input 1.
	StaticPads []int64
	// Value is the constant of opsets 1 to 10; from opset 11 it is input 2 (default zero).
	Value float32
	// HasValueInput and HasAxesInput say whether the optional inputs 2 and 3 are present.
	HasValueInput bool
	HasAxesInput  bool
}

// OpType returns "Pad".
func (*Pad) OpType() string { return "Pad" }

func decodePad(n *Node) (Op, error) {
	op := &Pad{}
	mode, err := n.Attrs.String("mode", string(PadConstant))
	if err != nil {
		return nil, err
	}
	op.Mode = PadMode(mode)
	switch op.Mode {
	case PadConstant, PadReflect, PadEdge:
	case PadWrap:
		if n.Opset < 19 {
			return nil, fmt.Errorf("%w: Pad mode \"wrap\" needs opset 19, model imports %d", ErrAttr, n.Opset)
		}
	default:
		return nil, fmt.Errorf("%w: Pad mode %q is not constant, reflect, edge or wrap", ErrAttr, mode)
	}
	if n.Opset < 11 {
		if err := CheckArity(n, 1, 1, 1, 1); err != nil {
			return nil, err
		}
		name := "pads"
		if n.Opset < 2 {
			name = "paddings"
		}
		if !n.Attrs.Has(name) {
			return nil, fmt.Errorf("%w: Pad-%d needs the %s attribute", ErrAttr, n.Opset, name)
		}
		if op.StaticPads, err = n.Attrs.Ints(name, nil); err != nil {
			return nil, err
		}
		if len(op.StaticPads)%2 != 0 {
			return nil, fmt.Errorf("%w: Pad %s has an odd number of values (%d)", ErrAttr, name, len(op.StaticPads))
		}
		for i, p := range op.StaticPads {
			if p < -tensor.MaxElements || p > tensor.MaxElements {
				return nil, fmt.Errorf("%w: Pad %s[%d] = %d is out of range", ErrAttr, name, i, p)
			}
		}
		if op.Value, err = n.Attrs.Float("value", 0); err != nil {
			return nil, err
		}
		return op, nil
	}
	maxIn := 3
	if n.Opset >= 18 {
		maxIn = 4
	}
	if err := CheckArity(n, 2, maxIn, 1, 1); err != nil {
		return nil, err
	}
	op.HasValueInput = len(n.Inputs) > 2 && n.Inputs[2]
	op.HasAxesInput = len(n.Inputs) > 3 && n.Inputs[3]
	return op, nil
}

// FullPads returns the pads for every axis of a rank-rank input, [b0..b(rank-1), e0..e(rank-1)],
// from the static attribute or from the pads input (int64 or int32) and optional axes input
// (negative axes count from the end; repeating an axis is an error).
func (p *Pad) FullPads(rank int, pads, axes *tensor.Tensor) ([]int, error) {
	var raw []int64
	if p.StaticPads != nil {
		raw = p.StaticPads
	} else {
		if pads == nil {
			return nil, fmt.Errorf("%w: Pad needs its pads input", ErrArity)
		}
		v, err := pads.Int64s()
		if err != nil {
			return nil, fmt.Errorf("%w: Pad pads: %v", ErrShape, err)
		}
		if pads.Rank() > 1 {
			return nil, fmt.Errorf("%w: Pad pads must be a 1-D tensor, got shape %v", ErrShape, pads.Shape)
		}
		raw = v
	}
	axisList := make([]int, 0, rank)
	if axes != nil && p.StaticPads == nil {
		v, err := axes.Int64s()
		if err != nil {
			return nil, fmt.Errorf("%w: Pad axes: %v", ErrShape, err)
		}
		seen := make([]bool, rank)
		for _, a := range v {
			if a < -int64(rank) || a >= int64(rank) {
				return nil, fmt.Errorf("%w: Pad axis %d is out of range for rank %d", ErrShape, a, rank)
			}
			if a < 0 {
				a += int64(rank)
			}
			if seen[a] {
				return nil, fmt.Errorf("%w: Pad axis %d is repeated", ErrShape, a)
			}
			seen[a] = true
			axisList = append(axisList, int(a))
		}
	} else {
		for i := 0; i < rank; i++ {
			axisList = append(axisList, i)
		}
	}
	if len(raw) != 2*len(axisList) {
		return nil, fmt.Errorf("%w: Pad has %d pads, want %d (2 per padded axis, %d axes)", ErrShape, len(raw), 2*len(axisList), len(axisList))
	}
	full := make([]int, 2*rank)
	k := len(axisList)
	for i, a := range axisList {
		b, e := raw[i], raw[k+i]
		if b < -tensor.MaxElements || b > tensor.MaxElements || e < -tensor.MaxElements || e > tensor.MaxElements {
			return nil, fmt.Errorf("%w: Pad pads (%d, %d) for axis %d are out of range", ErrShape, b, e, a)
		}
		full[a], full[rank+a] = int(b), int(e)
	}
	return full, nil
}

// PadShape returns the output shape for input shape in and full pads, checking that no dim
// becomes negative and that a non-constant mode has data to read from.
func (p *Pad) PadShape(in []int, full []int) (tensor.Shape, error) {
	rank := len(in)
	dims := make([]int64, rank)
	for i, d := range in {
		b, e := full[i], full[rank+i]
		dims[i] = int64(d) + int64(b) + int64(e)
		if dims[i] < 0 {
			return nil, fmt.Errorf("%w: Pad axis %d: size %d with pads (%d, %d) is negative", ErrShape, i, d, b, e)
		}
		if kept := int64(d) - int64(max(0, -b)) - int64(max(0, -e)); kept < 0 {
			return nil, fmt.Errorf("%w: Pad axis %d: pads (%d, %d) crop more than the %d elements", ErrShape, i, b, e, d)
		} else if kept == 0 && dims[i] > 0 && p.Mode != PadConstant {
			return nil, fmt.Errorf("%w: Pad axis %d: %s mode needs at least one element to read", ErrShape, i, p.Mode)
		}
	}
	s, err := tensor.CheckShape(dims)
	if err != nil {
		return nil, fmt.Errorf("%w: Pad output: %v", ErrShape, err)
	}
	return s, nil
}

// Infer implements Op. The pads are known from the attribute (opsets 1 to 10) or when the pads
// (and axes, if present) inputs are constants; an axis with zero total padding keeps its dim, even a
// symbolic one. With unknown pads only the rank is known.
func (p *Pad) Infer(in []*Arg) ([]Type, error) {
	x := nnArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Pad needs its data input", ErrArity)
	}
	if v := nnArg(in, 2); p.HasValueInput && v != nil {
		if err := nnSameDType("Pad", x, v, "data", "constant_value"); err != nil {
			return nil, err
		}
		if r := v.Type.Rank(); r > 1 || (r == 1 && v.Type.Shape[0].IsKnown() && v.Type.Shape[0].Value != 1) {
			return nil, fmt.Errorf("%w: Pad constant_value must be a scalar, got %s", ErrShape, v.Type)
		}
	}
	if x.Type.Unranked {
		return []Type{x.Type}, nil
	}
	rank := len(x.Type.Shape)
	var full []int
	if p.StaticPads != nil {
		f, err := p.FullPads(rank, nil, nil)
		if err != nil {
			return nil, err
		}
		full = f
	} else if pa := nnArg(in, 1); pa != nil && pa.Const != nil {
		ax := nnArg(in, 3)
		if !p.HasAxesInput || (ax != nil && ax.Const != nil) {
			var axes *tensor.Tensor
			if ax != nil && p.HasAxesInput {
				axes = ax.Const
			}
			f, err := p.FullPads(rank, pa.Const, axes)
			if err != nil {
				return nil, err
			}
			full = f
		}
	}
	out := make([]Dim, rank)
	for i, d := range x.Type.Shape {
		switch {
		case full == nil:
			out[i] = Unknown()
		case full[i] == 0 && full[rank+i] == 0:
			out[i] = d
		case d.IsKnown():
			n := d.Value + int64(full[i]) + int64(full[rank+i])
			if n < 0 {
				return nil, fmt.Errorf("%w: Pad axis %d: size %d with pads (%d, %d) is negative", ErrShape, i, d.Value, full[i], full[rank+i])
			}
			out[i] = Known(n)
		default:
			out[i] = Unknown()
		}
	}
	return []Type{{DType: x.Type.DType, Shape: out}}, nil
}

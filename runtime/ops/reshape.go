package ops

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Reshape gives its input a new shape with the same elements in the same (row-major) order. In the
// requested shape, -1 (at most once) stands for whatever size makes the element counts match, and
// 0 copies the input's dim at the same position, unless AllowZero is set, in which case 0 is a
// literal zero-size dim.
type Reshape struct {
	// Shape is the requested shape of opsets 1-4 (an attribute); nil when ShapeFromInput.
	Shape []int64
	// ShapeFromInput is true from opset 5, where the requested shape is input 1 (int64, 1-D).
	ShapeFromInput bool
	// AllowZero is the allowzero attribute of opset 14 and later.
	AllowZero bool
}

// OpType returns "Reshape".
func (*Reshape) OpType() string { return "Reshape" }

func decodeReshape(n *Node) (Op, error) {
	r := &Reshape{}
	if n.Opset < 5 {
		if err := CheckArity(n, 1, 1, 1, 1); err != nil {
			return nil, err
		}
		if !n.Attrs.Has("shape") {
			return nil, fmt.Errorf("%w: Reshape-%d requires the shape attribute", ErrAttr, n.Opset)
		}
		s, err := n.Attrs.Ints("shape", nil)
		if err != nil {
			return nil, err
		}
		r.Shape = append([]int64{}, s...)
		if err := checkReshapeSpec(r.Shape, false); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAttr, err)
		}
		return r, nil
	}
	if err := CheckArity(n, 2, 2, 1, 1); err != nil {
		return nil, err
	}
	r.ShapeFromInput = true
	if n.Opset >= 14 {
		az, err := n.Attrs.Int("allowzero", 0)
		if err != nil {
			return nil, err
		}
		if az != 0 && az != 1 {
			return nil, fmt.Errorf("%w: allowzero must be 0 or 1, got %d", ErrAttr, az)
		}
		r.AllowZero = az == 1
	}
	return r, nil
}

// checkReshapeSpec validates the requested shape alone: no value below -1, at most one -1, and no
// -1 together with a literal 0 (whose size could not be inferred).
func checkReshapeSpec(spec []int64, allowZero bool) error {
	if len(spec) > tensor.MaxRank {
		return fmt.Errorf("requested shape %v has rank %d, above the limit of %d", spec, len(spec), tensor.MaxRank)
	}
	infer, zero := false, false
	for _, v := range spec {
		switch {
		case v < -1:
			return fmt.Errorf("requested shape %v has an invalid dim %d", spec, v)
		case v == -1:
			if infer {
				return fmt.Errorf("requested shape %v has more than one -1", spec)
			}
			infer = true
		case v == 0:
			zero = true
		}
	}
	if infer && zero && allowZero {
		return fmt.Errorf("requested shape %v has both -1 and 0 with allowzero=1", spec)
	}
	return nil
}

// OutputShape resolves the requested shape spec against the concrete input shape.
func (r *Reshape) OutputShape(in tensor.Shape, spec []int64) (tensor.Shape, error) {
	if err := checkReshapeSpec(spec, r.AllowZero); err != nil {
		return nil, fmt.Errorf("%w: Reshape: %w", ErrShape, err)
	}
	dims := make([]int64, len(spec))
	infer := -1
	for i, v := range spec {
		switch {
		case v == -1:
			infer = i
			dims[i] = 1
		case v == 0 && !r.AllowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("%w: Reshape: requested shape %v copies dim %d of input shape %v, which has no such dim",
					ErrShape, spec, i, in)
			}
			dims[i] = int64(in[i])
		default:
			dims[i] = v
		}
	}
	// Bound the product of the given dims before using it.
	if _, err := tensor.CheckShape(dims); err != nil {
		return nil, fmt.Errorf("%w: Reshape to %v: %w", ErrShape, spec, err)
	}
	size := int64(in.Size())
	rest := int64(1)
	for _, d := range dims {
		rest *= d
	}
	if infer >= 0 {
		if rest == 0 || size%rest != 0 {
			return nil, fmt.Errorf("%w: Reshape: cannot infer the -1 in %v for input shape %v (%d elements)",
				ErrShape, spec, in, size)
		}
		dims[infer] = size / rest
		rest = size
	}
	if rest != size {
		return nil, fmt.Errorf("%w: Reshape: input shape %v (%d elements) does not fit requested shape %v (%d elements)",
			ErrShape, in, size, spec, rest)
	}
	return tensor.CheckShape(dims)
}

// Infer uses the requested shape when it is an attribute or a constant input. Dims copied by 0 keep
// their symbolic names; a -1 is computed when the known sizes (after cancelling symbolic dims that
// appear on both sides) divide, and is Unknown otherwise.
func (r *Reshape) Infer(in []*Arg) ([]Type, error) {
	data := inputArg(in, 0)
	if data == nil {
		return nil, fmt.Errorf("%w: Reshape needs its data input", ErrArity)
	}
	dt := data.Type.DType
	spec := r.Shape
	if r.ShapeFromInput {
		s := inputArg(in, 1)
		v, ok, err := constInt64s(s)
		if err != nil {
			return nil, fmt.Errorf("Reshape shape input: %w", err)
		}
		if !ok {
			if s != nil && s.Type.Rank() == 1 && s.Type.Shape[0].IsKnown() {
				n := s.Type.Shape[0].Value
				if n > tensor.MaxRank {
					return nil, fmt.Errorf("%w: Reshape shape input has %d elements, above the rank limit %d", ErrShape, n, tensor.MaxRank)
				}
				return []Type{{DType: dt, Shape: unknownShape(int(n))}}, nil
			}
			return []Type{{DType: dt, Unranked: true}}, nil
		}
		spec = v
	}
	if err := checkReshapeSpec(spec, r.AllowZero); err != nil {
		return nil, fmt.Errorf("%w: Reshape: %w", ErrShape, err)
	}
	if st, ok := data.Type.Static(); ok {
		s, err := r.OutputShape(st, spec)
		if err != nil {
			return nil, err
		}
		return []Type{{DType: dt, Shape: DimsOf(s)}}, nil
	}
	out := make([]Dim, len(spec))
	infer := -1
	for i, v := range spec {
		switch {
		case v == -1:
			infer = i
		case v == 0 && !r.AllowZero:
			switch {
			case data.Type.Unranked:
				out[i] = Unknown()
			case i >= data.Type.Rank():
				return nil, fmt.Errorf("%w: Reshape: requested shape %v copies dim %d of a rank-%d input",
					ErrShape, spec, i, data.Type.Rank())
			default:
				out[i] = data.Type.Shape[i]
			}
		default:
			out[i] = Known(v)
		}
	}
	if infer >= 0 {
		out[infer] = Unknown()
		if !data.Type.Unranked {
			others := append(append([]Dim{}, out[:infer]...), out[infer+1:]...)
			out[infer] = inferReshapeDim(data.Type.Shape, others)
		}
	}
	return []Type{{DType: dt, Shape: out}}, nil
}

// inferReshapeDim computes the -1 dim of a reshape from the input dims and the other output dims:
// symbolic dims present on both sides cancel, then the remaining known sizes must divide. When one
// symbolic input dim remains and the known sizes are equal, the -1 is that symbolic dim.
func inferReshapeDim(in, others []Dim) Dim {
	inKnown, outKnown := int64(1), int64(1)
	var inSym, outSym []Dim
	for _, d := range in {
		switch {
		case !d.IsKnown():
			inSym = append(inSym, d)
		case d.Value > 0 && inKnown > math.MaxInt64/d.Value:
			return Unknown()
		default:
			inKnown *= d.Value
		}
	}
	for _, d := range others {
		switch {
		case !d.IsKnown():
			outSym = append(outSym, d)
		case d.Value > 0 && outKnown > math.MaxInt64/d.Value:
			return Unknown()
		default:
			outKnown *= d.Value
		}
	}
	for _, o := range outSym {
		if o.Param == "" {
			return Unknown()
		}
		found := false
		for j, d := range inSym {
			if d.Param == o.Param {
				inSym = append(inSym[:j], inSym[j+1:]...)
				found = true
				break
			}
		}
		if !found {
			return Unknown()
		}
	}
	switch {
	case outKnown == 0 || inKnown%outKnown != 0:
		return Unknown()
	case len(inSym) == 0:
		return Known(inKnown / outKnown)
	case len(inSym) == 1 && inKnown == outKnown:
		return inSym[0]
	}
	return Unknown()
}

// Flatten reshapes its input to 2-D: [d0*...*d(axis-1), d(axis)*...*d(n-1)].
type Flatten struct {
	// Axis splits the dims, in [-rank, rank]; negative counts from the back (opset 11 and later).
	// Axis 0 gives [1, size].
	Axis int64
}

// OpType returns "Flatten".
func (*Flatten) OpType() string { return "Flatten" }

func decodeFlatten(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	axis, err := n.Attrs.Int("axis", 1)
	if err != nil {
		return nil, err
	}
	if err := checkNonNegativeAxes(n, 11, "axis", axis); err != nil {
		return nil, err
	}
	return &Flatten{Axis: axis}, nil
}

// splitAxis resolves Flatten's axis, which unlike most axes may equal the rank.
func (f *Flatten) splitAxis(rank int) (int, error) {
	a := f.Axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a > int64(rank) {
		return 0, fmt.Errorf("%w: Flatten axis %d is out of range for rank %d", ErrAttr, f.Axis, rank)
	}
	return int(a), nil
}

// OutputShape returns the 2-D shape of a flattened input of shape in.
func (f *Flatten) OutputShape(in tensor.Shape) (tensor.Shape, error) {
	a, err := f.splitAxis(len(in))
	if err != nil {
		return nil, err
	}
	return tensor.Shape{in[:a].Size(), in[a:].Size()}, nil
}

// Infer multiplies the dims on each side of the axis; a product involving an unknown or symbolic
// dim is Unknown, unless it is a single symbolic dim times known 1s.
func (f *Flatten) Infer(in []*Arg) ([]Type, error) {
	x := inputArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Flatten needs an input", ErrArity)
	}
	if x.Type.Unranked {
		return []Type{{DType: x.Type.DType, Shape: unknownShape(2)}}, nil
	}
	a, err := f.splitAxis(x.Type.Rank())
	if err != nil {
		return nil, err
	}
	return []Type{{DType: x.Type.DType, Shape: []Dim{dimProduct(x.Type.Shape[:a]), dimProduct(x.Type.Shape[a:])}}}, nil
}

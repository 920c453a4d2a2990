package ops

import (
	"fmt"
	"strings"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Dim is one dimension of a possibly symbolic shape: a known size (Value >= 0), a named symbolic
// size (Value < 0, Param != ""), or unknown (Value < 0, Param == "").
type Dim struct {
	Value int64
	Param string
}

// Known returns a dim of size n.
func Known(n int64) Dim { return Dim{Value: n} }

// Symbolic returns a dim named name, such as "batch".
func Symbolic(name string) Dim { return Dim{Value: -1, Param: name} }

// Unknown returns a dim of unknown size.
func Unknown() Dim { return Dim{Value: -1} }

// IsKnown reports whether d has a concrete size.
func (d Dim) IsKnown() bool { return d.Value >= 0 }

// Same reports whether two dims are provably equal: equal sizes or the same symbolic name.
func (d Dim) Same(e Dim) bool {
	if d.IsKnown() || e.IsKnown() {
		return d.Value == e.Value
	}
	return d.Param != "" && d.Param == e.Param
}

// String formats d as its size, its name or "?".
func (d Dim) String() string {
	switch {
	case d.IsKnown():
		return fmt.Sprint(d.Value)
	case d.Param != "":
		return d.Param
	}
	return "?"
}

// Type is the static type of a value: an element type and a shape whose dims may be symbolic.
// Unranked means even the rank is unknown (Shape is then nil).
type Type struct {
	DType    tensor.DType
	Shape    []Dim
	Unranked bool
}

// TypeOf returns the fully known type of a tensor.
func TypeOf(t *tensor.Tensor) Type {
	return Type{DType: t.DType, Shape: DimsOf(t.Shape)}
}

// DimsOf converts a concrete shape to dims.
func DimsOf(s tensor.Shape) []Dim {
	d := make([]Dim, len(s))
	for i, n := range s {
		d[i] = Known(int64(n))
	}
	return d
}

// Static returns the concrete shape of t when every dim is known.
func (t Type) Static() (tensor.Shape, bool) {
	if t.Unranked {
		return nil, false
	}
	s := make(tensor.Shape, len(t.Shape))
	for i, d := range t.Shape {
		if !d.IsKnown() {
			return nil, false
		}
		s[i] = int(d.Value)
	}
	return s, true
}

// Rank returns the rank, or -1 when it is unknown.
func (t Type) Rank() int {
	if t.Unranked {
		return -1
	}
	return len(t.Shape)
}

// String formats t as float32[batch,3,224,224].
func (t Type) String() string {
	if t.Unranked {
		return t.DType.String() + "[...]"
	}
	parts := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		parts[i] = d.String()
	}
	return t.DType.String() + "[" + strings.Join(parts, ",") + "]"
}

// Arg is what inference knows about one input: its type and, when the input is a constant
// (an initializer or the output of a Constant node), its value.
type Arg struct {
	Type  Type
	Const *tensor.Tensor
}

// BroadcastDims applies NumPy's multidirectional broadcasting to two shapes: right-aligned, each
// pair of dims equal or one of them 1. Symbolic dims broadcast against 1 and against the same name;
// a symbolic dim against a different unknown gives Unknown.
func BroadcastDims(a, b []Dim) ([]Dim, error) {
	n := max(len(a), len(b))
	out := make([]Dim, n)
	for i := 0; i < n; i++ {
		da, db := Known(1), Known(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da.IsKnown() && da.Value == 1:
			out[i] = db
		case db.IsKnown() && db.Value == 1:
			out[i] = da
		case da.IsKnown() && db.IsKnown():
			if da.Value != db.Value {
				return nil, fmt.Errorf("%w: cannot broadcast %v with %v (dim %d: %d vs %d)",
					ErrShape, dimsString(a), dimsString(b), i, da.Value, db.Value)
			}
			out[i] = da
		case da.IsKnown():
			out[i] = da // the other side must be da or 1 at run time; if 1 it broadcasts to da
		case db.IsKnown():
			out[i] = db
		case da.Same(db):
			out[i] = da
		default:
			out[i] = Unknown()
		}
	}
	return out, nil
}

func dimsString(d []Dim) string { return Type{Shape: d}.String()[len("undefined"):] }

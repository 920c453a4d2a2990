package ops

import (
	"errors"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// fixedOp infers a fixed type, whatever its inputs.
type fixedOp struct{ t Type }

func (fixedOp) OpType() string                 { return "Fixed" }
func (o fixedOp) Infer([]*Arg) ([]Type, error) { return []Type{o.t}, nil }

func TestInferChecked(t *testing.T) {
	dims := func(d ...int64) []Dim {
		out := make([]Dim, len(d))
		for i, v := range d {
			out[i] = Known(v)
		}
		return out
	}
	cases := []struct {
		name string
		t    Type
		ok   bool
	}{
		{"image batch", Type{DType: tensor.Float32, Shape: dims(8, 3, 224, 224)}, true},
		{"symbolic batch", Type{DType: tensor.Float32, Shape: append([]Dim{Symbolic("N")}, dims(3, 224, 224)...)}, true},
		{"unranked", Type{DType: tensor.Float32, Unranked: true}, true},
		{"2^32 elements", Type{DType: tensor.Float32, Shape: dims(65536, 65536)}, true},
		{"over 2^32 elements", Type{DType: tensor.Float32, Shape: dims(65536, 65537)}, false},
		{"product overflows int64", Type{DType: tensor.Float32, Shape: dims(1<<40, 1<<40)}, false},
		{"rank 17", Type{DType: tensor.Float32, Shape: dims(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := InferChecked(fixedOp{c.t}, nil)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrShape)) {
				t.Errorf("err = %v, want ok=%v (or ErrShape)", err, c.ok)
			}
		})
	}
}

package dnx

import (
	"errors"
	"slices"
	"testing"
)

// TestTensorBytesAndRows round-trips tensors of each numeric type through their raw bytes and
// takes rows of a batch back out.
func TestTensorBytesAndRows(t *testing.T) {
	for _, d := range []DType{Float32, Float64, Float16, BFloat16, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Bool} {
		t.Run(d.String(), func(t *testing.T) {
			raw := make([]byte, 6*d.ByteSize())
			for i := range raw {
				raw[i] = byte(i*37 + 1)
			}
			if d == Bool {
				for i := range raw {
					raw[i] &= 1
				}
			}
			x, err := TensorFromBytes(d, []int{3, 2}, raw)
			if err != nil {
				t.Fatal(err)
			}
			if x.DType() != d || !slices.Equal(x.Shape(), []int{3, 2}) {
				t.Fatalf("got %v", x)
			}
			back, err := x.AppendBytes(nil)
			if err != nil || !slices.Equal(back, raw) {
				t.Fatalf("AppendBytes: %v %v != %v", err, back, raw)
			}
			r, err := x.Rows(1, 3)
			if err != nil {
				t.Fatal(err)
			}
			rb, _ := r.AppendBytes(nil)
			if !slices.Equal(r.Shape(), []int{2, 2}) || !slices.Equal(rb, raw[2*d.ByteSize():]) {
				t.Errorf("Rows(1, 3): %v %v", r, rb)
			}
		})
	}
	if _, err := TensorFromBytes(Float32, []int{2}, make([]byte, 7)); !errors.Is(err, ErrInput) {
		t.Errorf("short data: %v", err)
	}
	if _, err := TensorFromBytes(String, []int{1}, nil); !errors.Is(err, ErrInput) {
		t.Errorf("string: %v", err)
	}
	x, _ := NewTensor([]int{2, 1}, []float32{1, 2})
	if _, err := x.Rows(1, 3); !errors.Is(err, ErrInput) {
		t.Errorf("rows out of range: %v", err)
	}
}

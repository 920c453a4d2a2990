package tensor

import (
	"fmt"
	"math"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		t    *Tensor
		ok   bool
	}{
		{"dense float32", FromSlice(Shape{2, 3}, make([]float32, 6)), true},
		{"scalar string", Scalar("x"), true},
		{"nil", nil, false},
		{"wrong slice type", &Tensor{DType: Float32, Shape: Shape{2}, Data: []int64{1, 2}}, false},
		{"short data", &Tensor{DType: Int64, Shape: Shape{3}, Data: []int64{1, 2}}, false},
		{"negative dim", &Tensor{DType: Int64, Shape: Shape{-1}, Data: []int64{}}, false},
		{"no data", &Tensor{DType: Float32, Shape: Shape{1}}, false},
	}
	for _, tc := range tests {
		if err := tc.t.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestFloat16RoundTrip(t *testing.T) {
	for _, f := range []float32{0, 1, -2.5, 65504, 6.1035156e-05, 5.9604645e-08, float32(math.Inf(-1))} {
		if got := F16From(f).Float32(); got != f {
			t.Errorf("F16 round trip of %g gave %g", f, got)
		}
		if b := BF16From(f).Float32(); f == 1 && b != 1 {
			t.Errorf("BF16 round trip of 1 gave %g", b)
		}
	}
	if !math.IsNaN(float64(F16From(float32(math.NaN())).Float32())) {
		t.Error("F16 lost NaN")
	}
}

// Rows shares t's data for any element type, with the first dim cut to the rows asked for.
func TestRows(t *testing.T) {
	f := FromSlice(Shape{3, 2}, []float32{0, 1, 2, 3, 4, 5})
	i := FromSlice(Shape{3, 2}, []int64{0, 1, 2, 3, 4, 5})
	for _, tc := range []struct {
		t      *Tensor
		lo, hi int
		want   []float64
	}{{f, 1, 3, []float64{2, 3, 4, 5}}, {i, 0, 1, []float64{0, 1}}, {f, 2, 2, []float64{}}} {
		r := tc.t.Rows(tc.lo, tc.hi)
		if got := r.Float64s(); r.DType != tc.t.DType || !r.Shape.Equal(Shape{tc.hi - tc.lo, 2}) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Rows(%d, %d) of %s: %s %v %v, want %v", tc.lo, tc.hi, tc.t.DType, r.DType, r.Shape, got, tc.want)
		}
	}
	Data[float32](f.Rows(1, 2))[0] = 9
	if Data[float32](f)[2] != 9 {
		t.Error("Rows copied the data instead of sharing it")
	}
	defer func() {
		if recover() == nil {
			t.Error("Rows past the first dim did not panic")
		}
	}()
	f.Rows(2, 4)
}

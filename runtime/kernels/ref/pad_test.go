package ref

import (
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func i64s(v ...int64) *tensor.Tensor { return tensor.FromSlice(tensor.Shape{len(v)}, v) }

func TestPadModes(t *testing.T) {
	x := f32(tensor.Shape{3}, 1, 2, 3)
	tests := []struct {
		name string
		mode string
		pads *tensor.Tensor
		want []float32
	}{
		{"constant", "constant", i64s(2, 1), []float32{9, 9, 1, 2, 3, 9}},
		{"reflect", "reflect", i64s(2, 2), []float32{3, 2, 1, 2, 3, 2, 1}},
		{"edge", "edge", i64s(2, 1), []float32{1, 1, 1, 2, 3, 3}},
		{"wrap", "wrap", i64s(2, 1), []float32{2, 3, 1, 2, 3, 1}},
		// Negative pads crop first; the other modes then read the cropped values.
		{"constant crop", "constant", i64s(-1, 1), []float32{2, 3, 9}},
		{"reflect crop", "reflect", i64s(-1, 2), []float32{2, 3, 2, 3}},
		{"edge crop", "edge", i64s(1, -2), []float32{1, 1}},
		{"wrap crop", "wrap", i64s(-2, 2), []float32{3, 3, 3}},
		{"crop both", "constant", i64s(-1, -1), []float32{2}},
		// Pads larger than the data repeat the pattern, as numpy.pad does.
		{"reflect large", "reflect", i64s(3, 0), []float32{2, 3, 2, 1, 2, 3}},
		{"wrap large", "wrap", i64s(4, 0), []float32{3, 1, 2, 3, 1, 2, 3}},
		{"crop all", "constant", i64s(-3, 0), []float32{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := nnDecode(t, "Pad", 19, nnIn(3), 1, nnA("mode", tc.mode))
			nnRun(t, op, []*tensor.Tensor{x, tc.pads, tensor.Scalar[float32](9)}, f32(tensor.Shape{len(tc.want)}, tc.want...))
		})
	}
}

func TestPadVersions(t *testing.T) {
	x := f32(tensor.Shape{2, 2}, 1, 2, 3, 4)
	// Pad-1 (paddings) and Pad-2 (pads) with a static value: one row on top, one column on the right.
	for _, tc := range []struct {
		opset int
		name  string
	}{{1, "paddings"}, {2, "pads"}, {10, "pads"}} {
		op := nnDecode(t, "Pad", tc.opset, nnIn(1), 1, nnA(tc.name, []int64{1, 0, 0, 1}, "value", 2.5))
		nnRun(t, op, []*tensor.Tensor{x}, f32(tensor.Shape{3, 3}, 2.5, 2.5, 2.5, 1, 2, 2.5, 3, 4, 2.5))
	}
	// Pad-11 without constant_value pads with zero.
	op := nnDecode(t, "Pad", 11, nnIn(2), 1, nil)
	nnRun(t, op, []*tensor.Tensor{x, i64s(0, 1, 0, 0)}, f32(tensor.Shape{2, 3}, 0, 1, 2, 0, 3, 4))
	// Pad-18 with axes [-1]: only the last axis is padded. constant_value absent (position 2 empty).
	op = nnDecode(t, "Pad", 18, []bool{true, true, false, true}, 1, nil)
	nnRun(t, op, []*tensor.Tensor{x, i64s(1, 1), nil, i64s(-1)}, f32(tensor.Shape{2, 4}, 0, 1, 2, 0, 0, 3, 4, 0))
	// int32 pads are accepted too.
	nnRun(t, op, []*tensor.Tensor{x, tensor.FromSlice(tensor.Shape{2}, []int32{1, 0}), nil, tensor.FromSlice(tensor.Shape{1}, []int32{0})},
		f32(tensor.Shape{3, 2}, 0, 0, 1, 2, 3, 4))
}

func TestPadTypes(t *testing.T) {
	op := nnDecode(t, "Pad", 25, nnIn(3), 1, nnA("mode", "constant"))
	nnRun(t, op, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{2}, []int32{7, 8}), i64s(1, 0), tensor.Scalar[int32](-1)},
		tensor.FromSlice(tensor.Shape{3}, []int32{-1, 7, 8}))
	nnRun(t, op, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1}, []string{"a"}), i64s(0, 1), tensor.Scalar("z")},
		tensor.FromSlice(tensor.Shape{2}, []string{"a", "z"}))
	nnRun(t, op, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1}, []bool{true}), i64s(1, 0), tensor.FromSlice(tensor.Shape{1}, []bool{false})},
		tensor.FromSlice(tensor.Shape{2}, []bool{false, true}))
	edge := nnDecode(t, "Pad", 25, nnIn(2), 1, nnA("mode", "edge"))
	nnRun(t, edge, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 2}, []uint8{5, 6}), i64s(1, 1, 0, 0)},
		tensor.FromSlice(tensor.Shape{2, 3}, []uint8{5, 5, 6, 5, 5, 6}))
	// A rank-0 input with no pads is copied.
	nnRun(t, edge, []*tensor.Tensor{tensor.Scalar[float64](3), tensor.FromSlice(tensor.Shape{0}, []int64{})}, tensor.Scalar[float64](3))
}

func TestPadErrors(t *testing.T) {
	x := f32(tensor.Shape{2}, 1, 2)
	constant := nnDecode(t, "Pad", 18, nnIn(3), 1, nil)
	reflect := nnDecode(t, "Pad", 18, nnIn(2), 1, nnA("mode", "reflect"))
	axes := nnDecode(t, "Pad", 18, nnIn(4), 1, nil)
	pad2 := nnDecode(t, "Pad", 2, nnIn(1), 1, nnA("pads", []int64{1, 1}, "value", 1.0))
	tests := []struct {
		name string
		op   ops.Op
		in   []*tensor.Tensor
	}{
		{"pads length", constant, []*tensor.Tensor{x, i64s(1, 1, 1, 1), tensor.Scalar[float32](0)}},
		{"pads missing", constant, []*tensor.Tensor{x}},
		{"float pads", constant, []*tensor.Tensor{x, f32(tensor.Shape{2}, 1, 1), tensor.Scalar[float32](0)}},
		{"value type", constant, []*tensor.Tensor{x, i64s(1, 1), tensor.Scalar[float64](0)}},
		{"value size", constant, []*tensor.Tensor{x, i64s(1, 1), f32(tensor.Shape{2}, 0, 0)}},
		{"over-crop", constant, []*tensor.Tensor{x, i64s(-3, 1), tensor.Scalar[float32](0)}},
		{"negative size", constant, []*tensor.Tensor{x, i64s(-1, -2), tensor.Scalar[float32](0)}},
		{"reflect nothing left", reflect, []*tensor.Tensor{x, i64s(-2, 1)}},
		{"axis out of range", axes, []*tensor.Tensor{x, i64s(1, 1), tensor.Scalar[float32](0), i64s(1)}},
		{"repeated axis", axes, []*tensor.Tensor{x, i64s(1, 1, 1, 1), tensor.Scalar[float32](0), i64s(0, -1)}},
		{"pad-2 rank", pad2, []*tensor.Tensor{f32(tensor.Shape{1, 1}, 1)}},
		{"pad-2 value on ints", pad2, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1}, []int32{1})}},
		{"huge output", constant, []*tensor.Tensor{x, i64s(1<<32, 0), tensor.Scalar[float32](0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { nnRunErr(t, tc.op, tc.in, 1) })
	}
}

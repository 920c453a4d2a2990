package ref

import (
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestAveragePool(t *testing.T) {
	x22 := f32(tensor.Shape{1, 1, 2, 2}, 1, 2, 3, 4)
	tests := []struct {
		name  string
		opset int
		attrs map[string]any
		x     *tensor.Tensor
		want  *tensor.Tensor
	}{
		{"2x2 stride 2", 11, map[string]any{"kernel_shape": []int64{2, 2}, "strides": []int64{2, 2}}, nnRamp(1, 1, 4, 4),
			f32(tensor.Shape{1, 1, 2, 2}, 3.5, 5.5, 11.5, 13.5)},
		// Every 3x3 window over the padded 2x2 input holds the 4 elements (sum 10) and 5 pads.
		{"pads exclude", 11, map[string]any{"kernel_shape": []int64{3, 3}, "pads": []int64{1, 1, 1, 1}}, x22,
			f32(tensor.Shape{1, 1, 2, 2}, 2.5, 2.5, 2.5, 2.5)},
		{"pads include", 11, map[string]any{"kernel_shape": []int64{3, 3}, "pads": []int64{1, 1, 1, 1}, "count_include_pad": 1}, x22,
			f32(tensor.Shape{1, 1, 2, 2}, 10.0/9, 10.0/9, 10.0/9, 10.0/9)},
		// ceil would give 2 windows per dim, but the second would start at 2 = end of input: dropped.
		{"ceil last window starts on pad", 22, map[string]any{"kernel_shape": []int64{3, 3}, "pads": []int64{1, 1, 1, 1},
			"strides": []int64{3, 3}, "ceil_mode": 1, "count_include_pad": 1}, x22, f32(tensor.Shape{1, 1, 1, 1}, 10.0/9)},
		// The ceil window [4, 6) reads only element 4 and, without pads, counts only it either way.
		{"ceil partial window", 10, map[string]any{"kernel_shape": []int64{2}, "strides": []int64{2}, "ceil_mode": 1}, nnRamp(1, 1, 5),
			f32(tensor.Shape{1, 1, 3}, 1.5, 3.5, 5)},
		{"ceil partial window include pad", 10, map[string]any{"kernel_shape": []int64{2}, "strides": []int64{2}, "ceil_mode": 1, "count_include_pad": 1},
			nnRamp(1, 1, 5), f32(tensor.Shape{1, 1, 3}, 1.5, 3.5, 5)},
		{"dilation", 19, map[string]any{"kernel_shape": []int64{2}, "dilations": []int64{2}}, nnRamp(1, 1, 5),
			f32(tensor.Shape{1, 1, 3}, 2, 3, 4)},
		// SAME_UPPER on 3 elements, kernel 2: pad at the end; the last window is {3} alone.
		{"same upper", 11, map[string]any{"kernel_shape": []int64{2}, "auto_pad": "SAME_UPPER"}, nnRamp(1, 1, 3),
			f32(tensor.Shape{1, 1, 3}, 1.5, 2.5, 3)},
		{"same lower include pad", 11, map[string]any{"kernel_shape": []int64{2}, "auto_pad": "SAME_LOWER", "count_include_pad": 1}, nnRamp(1, 1, 3),
			f32(tensor.Shape{1, 1, 3}, 0.5, 1.5, 2.5)},
		{"3d two channels", 11, map[string]any{"kernel_shape": []int64{2, 2, 2}}, nnRamp(1, 2, 2, 2, 2),
			f32(tensor.Shape{1, 2, 1, 1, 1}, 4.5, 12.5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := nnDecode(t, "AveragePool", tc.opset, nnIn(1), 1, nnA(flatten(tc.attrs)...))
			nnRun(t, op, []*tensor.Tensor{tc.x}, tc.want)
		})
	}
}

func TestMaxPool(t *testing.T) {
	// X (3x3) =  1 9 2 / 3 4 8 / 7 5 6, then a second channel of the same values + 100.
	v := []float32{1, 9, 2, 3, 4, 8, 7, 5, 6}
	xv := append(append([]float32(nil), v...), make([]float32, 9)...)
	for i := range v {
		xv[9+i] = v[i] + 100
	}
	x := f32(tensor.Shape{1, 2, 3, 3}, xv...)
	wantY := f32(tensor.Shape{1, 2, 2, 2}, 9, 9, 7, 8, 109, 109, 107, 108)
	// Row-major: 9 at (0,1) = 1, 7 at (2,0) = 6, 8 at (1,2) = 5; channel 1 adds the plane size 9.
	rowIdx := tensor.FromSlice(tensor.Shape{1, 2, 2, 2}, []int64{1, 1, 6, 5, 10, 10, 15, 14})
	// Column-major (h + w*3): 9 -> 3, 7 -> 2, 8 -> 7.
	colIdx := tensor.FromSlice(tensor.Shape{1, 2, 2, 2}, []int64{3, 3, 2, 7, 12, 12, 11, 16})
	op := nnDecode(t, "MaxPool", 12, nnIn(1), 2, nnA("kernel_shape", []int64{2, 2}))
	nnRun(t, op, []*tensor.Tensor{x}, wantY, rowIdx)
	op = nnDecode(t, "MaxPool", 12, nnIn(1), 2, nnA("kernel_shape", []int64{2, 2}, "storage_order", 1))
	nnRun(t, op, []*tensor.Tensor{x}, wantY, colIdx)
	op = nnDecode(t, "MaxPool", 6, nnIn(1), 1, nnA("kernel_shape", []int64{2, 2}))
	nnRun(t, op, []*tensor.Tensor{x}, wantY)

	nan := float32(math.NaN())
	tests := []struct {
		name  string
		attrs map[string]any
		x     *tensor.Tensor
		want  []*tensor.Tensor
	}{
		// Padding never wins, even against negative values.
		{"pads ignored", map[string]any{"kernel_shape": []int64{2}, "pads": []int64{1, 1}}, f32(tensor.Shape{1, 1, 2}, -3, -1),
			[]*tensor.Tensor{f32(tensor.Shape{1, 1, 3}, -3, -1, -1), tensor.FromSlice(tensor.Shape{1, 1, 3}, []int64{0, 1, 1})}},
		{"nan propagates", map[string]any{"kernel_shape": []int64{2}}, f32(tensor.Shape{1, 1, 4}, 1, nan, 3, 0),
			[]*tensor.Tensor{f32(tensor.Shape{1, 1, 3}, nan, nan, 3)}},
		{"ties pick the first", map[string]any{"kernel_shape": []int64{3}}, f32(tensor.Shape{1, 1, 3}, 2, 5, 5),
			[]*tensor.Tensor{f32(tensor.Shape{1, 1, 1}, 5), tensor.FromSlice(tensor.Shape{1, 1, 1}, []int64{1})}},
		// Windows start at 0, 2, 4 and read positions {0,2}, {2,4}, {4} (6 is past the input).
		{"dilation ceil", map[string]any{"kernel_shape": []int64{2}, "dilations": []int64{2}, "strides": []int64{2}, "ceil_mode": 1},
			nnRamp(1, 1, 6), []*tensor.Tensor{f32(tensor.Shape{1, 1, 3}, 3, 5, 5)}},
		{"uint8", map[string]any{"kernel_shape": []int64{2}, "strides": []int64{2}},
			tensor.FromSlice(tensor.Shape{1, 1, 4}, []uint8{3, 250, 0, 1}), []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 1, 2}, []uint8{250, 1})}},
		{"int8", map[string]any{"kernel_shape": []int64{2}, "pads": []int64{1, 0}},
			tensor.FromSlice(tensor.Shape{1, 1, 2}, []int8{-128, -5}), []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 1, 2}, []int8{-128, -5})}},
		{"float64 3d", map[string]any{"kernel_shape": []int64{1, 2, 2}},
			tensor.FromSlice(tensor.Shape{1, 1, 1, 2, 2}, []float64{1, 4, 3, 2}), []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 1, 1, 1, 1}, []float64{4})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := nnDecode(t, "MaxPool", 12, nnIn(1), len(tc.want), nnA(flatten(tc.attrs)...))
			nnRun(t, op, []*tensor.Tensor{tc.x}, tc.want...)
		})
	}
}

// flatten turns an attribute map into nnA's key, value list.
func flatten(m map[string]any) []any {
	var kv []any
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return kv
}

func TestGlobalPools(t *testing.T) {
	x := nnRamp(2, 2, 2, 2)
	gap := nnDecode(t, "GlobalAveragePool", 22, nnIn(1), 1, nil)
	nnRun(t, gap, []*tensor.Tensor{x}, f32(tensor.Shape{2, 2, 1, 1}, 2.5, 6.5, 10.5, 14.5))
	gmp := nnDecode(t, "GlobalMaxPool", 1, nnIn(1), 1, nil)
	nnRun(t, gmp, []*tensor.Tensor{x}, f32(tensor.Shape{2, 2, 1, 1}, 4, 8, 12, 16))
	nan := float32(math.NaN())
	nnRun(t, gmp, []*tensor.Tensor{f32(tensor.Shape{1, 1, 3}, 1, nan, 3)}, f32(tensor.Shape{1, 1, 1}, nan))
	nnRun(t, gap, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 1, 2}, []float64{1, 2})}, tensor.FromSlice(tensor.Shape{1, 1, 1}, []float64{1.5}))
	nnRunErr(t, gap, []*tensor.Tensor{f32(tensor.Shape{2, 2}, 1, 2, 3, 4)}, 1)
	nnRunErr(t, gmp, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 1, 1}, []int32{1})}, 1)
}

func TestPoolErrors(t *testing.T) {
	avg := nnDecode(t, "AveragePool", 11, nnIn(1), 1, nnA("kernel_shape", []int64{3, 3}))
	maxp := nnDecode(t, "MaxPool", 11, nnIn(1), 2, nnA("kernel_shape", []int64{3, 3}))
	for name, x := range map[string]*tensor.Tensor{
		"rank 3 for 2-D kernel": nnRamp(1, 1, 9),
		"rank 2":                nnRamp(3, 3),
		"too small":             nnRamp(1, 1, 2, 2),
		"int32":                 tensor.FromSlice(tensor.Shape{1, 1, 3, 3}, make([]int32, 9)),
	} {
		t.Run(name, func(t *testing.T) {
			nnRunErr(t, avg, []*tensor.Tensor{x}, 1)
			nnRunErr(t, maxp, []*tensor.Tensor{x}, 2)
		})
	}
	nnRunErr(t, maxp, nil, 1)
	nnRunErr(t, maxp, []*tensor.Tensor{nnRamp(1, 1, 3, 3)}, 3)
}

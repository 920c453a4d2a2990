package ref

import (
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestSoftmaxKernel(t *testing.T) {
	const rtol, atol = 1e-6, 1e-7
	ewRunCases(t, []ewCase{
		{name: "Softmax-13 last axis", kernel: softmaxKernel, op: &ops.Softmax{Axis: -1},
			in:   []*tensor.Tensor{ewF32(ewS(1, 3), 1, 2, 3)},
			want: []*tensor.Tensor{ewF32(ewS(1, 3), 0.09003057, 0.24472847, 0.66524096)}, rtol: rtol, atol: atol},
		{name: "LogSoftmax-13 last axis", kernel: softmaxKernel, op: &ops.Softmax{Log: true, Axis: -1},
			in:   []*tensor.Tensor{ewF64(ewS(3), 1, 2, 3)},
			want: []*tensor.Tensor{ewF64(ewS(3), -2.4076059644, -1.4076059644, -0.4076059644)}, rtol: 1e-9},
		{name: "Softmax-13 middle axis", kernel: softmaxKernel, op: &ops.Softmax{Axis: 1},
			in:   []*tensor.Tensor{ewF32(ewS(1, 2, 2), 0, 1, 2, 3)},
			want: []*tensor.Tensor{ewF32(ewS(1, 2, 2), 0.11920292, 0.11920292, 0.88079708, 0.88079708)}, rtol: rtol, atol: atol},
		{name: "Softmax-1 coerces to 2-D", kernel: softmaxKernel, op: &ops.Softmax{Axis: 1, Coerce2D: true},
			in:   []*tensor.Tensor{ewF32(ewS(1, 2, 2), 0, 1, 2, 3)},
			want: []*tensor.Tensor{ewF32(ewS(1, 2, 2), 0.0320586, 0.08714432, 0.23688282, 0.64391426)}, rtol: rtol, atol: atol},
		{name: "LogSoftmax-1 axis 0", kernel: softmaxKernel, op: &ops.Softmax{Log: true, Coerce2D: true},
			in:   []*tensor.Tensor{ewF64(ewS(2, 1), 0, 0)},
			want: []*tensor.Tensor{ewF64(ewS(2, 1), -math.Ln2, -math.Ln2)}, rtol: 1e-12},
		{name: "Softmax large numbers", kernel: softmaxKernel, op: &ops.Softmax{Axis: -1},
			in:   []*tensor.Tensor{ewF32(ewS(2), 1000, 1001)},
			want: []*tensor.Tensor{ewF32(ewS(2), 0.26894142, 0.73105858)}, rtol: rtol, atol: atol},
		{name: "LogSoftmax large numbers", kernel: softmaxKernel, op: &ops.Softmax{Log: true, Axis: -1},
			in:   []*tensor.Tensor{ewF32(ewS(2), -1000, 1000)},
			want: []*tensor.Tensor{ewF32(ewS(2), -2000, 0)}, rtol: rtol, atol: atol},
		{name: "Softmax float16", kernel: softmaxKernel, op: &ops.Softmax{Axis: 0},
			in:   []*tensor.Tensor{ewT16(ewS(2), 0, 0)},
			want: []*tensor.Tensor{ewT16(ewS(2), 0.5, 0.5)}},
		{name: "Softmax axis out of range", kernel: softmaxKernel, op: &ops.Softmax{Axis: 2},
			in: []*tensor.Tensor{ewF32(ewS(2), 1, 2)}, wantErr: ops.ErrAttr},
		{name: "Softmax int", kernel: softmaxKernel, op: &ops.Softmax{Axis: -1},
			in: []*tensor.Tensor{ewI32(ewS(2), 1, 2)}, wantErr: ops.ErrShape},
	})
}

func TestReduceMeanKernel(t *testing.T) {
	x := ewF32(ewS(2, 3), 1, 2, 3, 4, 5, 6)
	axes := func(v ...int64) *tensor.Tensor { return ewI64(ewS(len(v)), v...) }
	ewRunCases(t, []ewCase{
		{name: "axis 1 keepdims", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{1}, KeepDims: true},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{ewF32(ewS(2, 1), 2, 5)}},
		{name: "axis 0 dropped", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{0}},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{ewF32(ewS(3), 2.5, 3.5, 4.5)}},
		{name: "negative axis", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{-1}},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{ewF32(ewS(2), 2, 5)}},
		{name: "all axes keepdims", kernel: reduceMeanKernel, op: &ops.ReduceMean{KeepDims: true},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{ewF32(ewS(1, 1), 3.5)}},
		{name: "all axes scalar", kernel: reduceMeanKernel, op: &ops.ReduceMean{},
			in: []*tensor.Tensor{ewF64(ewS(2, 2), 1, 2, 3, 5)}, want: []*tensor.Tensor{ewF64(ewS(), 2.75)}},
		{name: "3-D outer and inner", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{0, 2}, KeepDims: true},
			in:   []*tensor.Tensor{ewF32(ewS(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8)},
			want: []*tensor.Tensor{ewF32(ewS(1, 2, 1), 3.5, 5.5)}},
		{name: "int32 truncates", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{1}},
			in: []*tensor.Tensor{ewI32(ewS(2, 2), 1, 2, -1, -2)}, want: []*tensor.Tensor{ewI32(ewS(2), 1, -1)}},
		{name: "uint8 sums wide", kernel: reduceMeanKernel, op: &ops.ReduceMean{},
			in: []*tensor.Tensor{ewU8(ewS(2), 255, 255)}, want: []*tensor.Tensor{ewU8(ewS(), 255)}},
		{name: "float16", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{0}},
			in: []*tensor.Tensor{ewT16(ewS(2), 1, 2)}, want: []*tensor.Tensor{ewT16(ewS(), 1.5)}},
		{name: "opset 18 axes input", kernel: reduceMeanKernel, op: &ops.ReduceMean{AxesInput: true, KeepDims: true},
			in: []*tensor.Tensor{x, axes(-1)}, want: []*tensor.Tensor{ewF32(ewS(2, 1), 2, 5)}},
		{name: "opset 18 no axes", kernel: reduceMeanKernel, op: &ops.ReduceMean{AxesInput: true},
			in: []*tensor.Tensor{x, nil}, want: []*tensor.Tensor{ewF32(ewS(), 3.5)}},
		{name: "opset 18 empty axes", kernel: reduceMeanKernel, op: &ops.ReduceMean{AxesInput: true, KeepDims: true},
			in: []*tensor.Tensor{x, axes()}, want: []*tensor.Tensor{ewF32(ewS(1, 1), 3.5)}},
		{name: "opset 18 noop", kernel: reduceMeanKernel, op: &ops.ReduceMean{AxesInput: true, NoopWithEmptyAxes: true},
			in: []*tensor.Tensor{x, axes()}, want: []*tensor.Tensor{x}},
		{name: "empty float reduction is NaN", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{1}},
			in: []*tensor.Tensor{ewF32(ewS(2, 0))}, want: []*tensor.Tensor{ewF32(ewS(2), float32(math.NaN()), float32(math.NaN()))}},
		{name: "empty int reduction", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{1}},
			in: []*tensor.Tensor{ewI64(ewS(2, 0))}, wantErr: ops.ErrShape},
		{name: "axis out of range", kernel: reduceMeanKernel, op: &ops.ReduceMean{Axes: []int64{2}},
			in: []*tensor.Tensor{x}, wantErr: ops.ErrShape},
		{name: "repeated axis", kernel: reduceMeanKernel, op: &ops.ReduceMean{AxesInput: true},
			in: []*tensor.Tensor{x, axes(0, -2)}, wantErr: ops.ErrShape},
		{name: "float axes", kernel: reduceMeanKernel, op: &ops.ReduceMean{AxesInput: true},
			in: []*tensor.Tensor{x, ewF32(ewS(1), 0)}, wantErr: ops.ErrShape},
		{name: "bool input", kernel: reduceMeanKernel, op: &ops.ReduceMean{},
			in: []*tensor.Tensor{ewB(ewS(1), true)}, wantErr: ops.ErrShape},
	})
}

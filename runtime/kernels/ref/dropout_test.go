package ref

import (
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestDropoutKernel(t *testing.T) {
	x := ewF32(ewS(2, 2), 1, -2, 3, -4)
	allTrue := ewB(ewS(2, 2), true, true, true, true)
	training := ewB(ewS(), true)
	ewRunCases(t, []ewCase{
		{name: "opset 22 inference", kernel: dropoutKernel, op: &ops.Dropout{Ratio: 0.5, MaskBool: true}, nOut: 2,
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{x, allTrue}},
		{name: "opset 22 inference with ratio", kernel: dropoutKernel, op: &ops.Dropout{Ratio: 0.5, MaskBool: true},
			in: []*tensor.Tensor{x, ewF32(ewS(), 0.9)}, want: []*tensor.Tensor{x}},
		{name: "opset 7 mask has X's type", kernel: dropoutKernel, op: &ops.Dropout{Ratio: 0.5}, nOut: 2,
			in: []*tensor.Tensor{ewF64(ewS(2), 1, 2)}, want: []*tensor.Tensor{ewF64(ewS(2), 1, 2), ewF64(ewS(2), 1, 1)}},
		{name: "training ratio 0", kernel: dropoutKernel, op: &ops.Dropout{Ratio: 0.5, MaskBool: true}, nOut: 2,
			in: []*tensor.Tensor{x, ewF32(ewS(), 0), training}, want: []*tensor.Tensor{x, allTrue}},
		{name: "training ratio 1", kernel: dropoutKernel, op: &ops.Dropout{Ratio: 1, Training: true, MaskBool: true}, nOut: 2,
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{ewF32(ewS(2, 2), 0, 0, 0, 0), ewB(ewS(2, 2), false, false, false, false)}},
		{name: "ratio out of range", kernel: dropoutKernel, op: &ops.Dropout{MaskBool: true},
			in: []*tensor.Tensor{x, ewF32(ewS(), 1.5), training}, wantErr: ops.ErrShape},
		{name: "ratio not scalar", kernel: dropoutKernel, op: &ops.Dropout{MaskBool: true},
			in: []*tensor.Tensor{x, ewF32(ewS(2), 0.1, 0.2)}, wantErr: ops.ErrShape},
		{name: "training_mode not bool", kernel: dropoutKernel, op: &ops.Dropout{MaskBool: true},
			in: []*tensor.Tensor{x, nil, ewF32(ewS(), 1)}, wantErr: ops.ErrShape},
		{name: "int input", kernel: dropoutKernel, op: &ops.Dropout{},
			in: []*tensor.Tensor{ewI32(ewS(1), 1)}, wantErr: ops.ErrShape},
	})
}

// TestDropoutTraining checks the training-mode contract: Y = X*mask/(1-r), a given seed always
// gives the same mask, another seed another one, and about 1-r of the elements are kept.
func TestDropoutTraining(t *testing.T) {
	const n, ratio = 10000, 0.3
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%7) - 3
	}
	x := ewF32(ewS(n), v...)
	run := func(seed int64) (y []float32, mask []bool) {
		op := &ops.Dropout{Ratio: ratio, Training: true, Seed: seed, HasSeed: true, MaskBool: true}
		out, err := dropoutKernel(op, []*tensor.Tensor{x}, 2)
		if err != nil {
			t.Fatal(err)
		}
		return tensor.Data[float32](out[0]), tensor.Data[bool](out[1])
	}
	y, mask := run(7)
	kept := 0
	for i := range y {
		want := float32(0)
		if mask[i] {
			kept++
			want = float32(float64(v[i]) / (1 - ratio))
		}
		if y[i] != want {
			t.Fatalf("y[%d] = %g with mask %v, want %g", i, y[i], mask[i], want)
		}
	}
	// The kept count is Binomial(n, 0.7): mean 7000, sd about 46; allow 6 sd.
	if frac := float64(kept) / n; math.Abs(frac-(1-ratio)) > 0.028 {
		t.Errorf("kept fraction %.4f, want about %.2f", frac, 1-ratio)
	}
	y2, mask2 := run(7)
	for i := range y {
		if y2[i] != y[i] || mask2[i] != mask[i] {
			t.Fatalf("seed 7 gave a different result at %d on the second run", i)
		}
	}
	_, mask3 := run(8)
	same := true
	for i := range mask {
		same = same && mask3[i] == mask[i]
	}
	if same {
		t.Error("seeds 7 and 8 gave the same mask")
	}
}

package refgrad

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Finite-difference tolerances: central differences with step fdStep on float64 have an error of
// order step^2 * f”' plus rounding of order 1e-16/step, both far below these.
const (
	fdStep = 1e-5
	fdAtol = 1e-7
	fdRtol = 1e-6
)

func randT(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float64, tensor.Shape(shape))
	for i := range tensor.Data[float64](t) {
		tensor.Data[float64](t)[i] = r.NormFloat64()
	}
	return t
}

// forwardFn runs an operator's forward pass on float64 inputs.
type forwardFn func(in []*tensor.Tensor) (*tensor.Tensor, error)

func refForward(opType string, op ops.Op) forwardFn {
	k := ref.Kernels()[opType]
	return func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		out, err := k(op, in, 1)
		if err != nil {
			return nil, err
		}
		return out[0], nil
	}
}

// checkFD compares analytic gradients grads[i] (nil: not checked) of L = sum(dy * f(in)) with
// central differences, element by element.
func checkFD(t *testing.T, f forwardFn, in []*tensor.Tensor, dy *tensor.Tensor, grads []*tensor.Tensor) {
	t.Helper()
	loss := func() float64 {
		y, err := f(in)
		if err != nil {
			t.Fatalf("forward: %v", err)
		}
		if !y.Shape.Equal(dy.Shape) {
			t.Fatalf("forward shape %v, dY %v", y.Shape, dy.Shape)
		}
		var s float64
		for i, v := range y.Float64s() {
			s += v * tensor.Data[float64](dy)[i]
		}
		return s
	}
	for i, g := range grads {
		if g == nil {
			continue
		}
		if !g.Shape.Equal(in[i].Shape) {
			t.Fatalf("gradient %d has shape %v, input %v", i, g.Shape, in[i].Shape)
		}
		xs := tensor.Data[float64](in[i])
		gs := tensor.Data[float64](g)
		for j := range xs {
			old := xs[j]
			xs[j] = old + fdStep
			lp := loss()
			xs[j] = old - fdStep
			lm := loss()
			xs[j] = old
			fd := (lp - lm) / (2 * fdStep)
			if math.Abs(fd-gs[j]) > fdAtol+fdRtol*math.Abs(fd) && math.Abs(fd-gs[j]) > 1e-5*math.Abs(fd) {
				t.Errorf("input %d element %d: analytic %.10g, finite difference %.10g", i, j, gs[j], fd)
				return
			}
		}
	}
}

func window(k, s, d, pads []int) ops.Window {
	return ops.Window{Kernel: k, Strides: s, Dilations: d, Pads: pads, AutoPad: ops.AutoPadNotSet}
}

func TestConvGradients(t *testing.T) {
	cases := []struct {
		name          string
		n, c, m, h, w int
		win           ops.Window
		group         int
	}{
		{"1x1", 2, 3, 4, 3, 4, window([]int{1, 1}, nil, nil, nil), 1},
		{"3x3 pad 1", 2, 3, 2, 5, 4, window([]int{3, 3}, nil, nil, []int{1, 1, 1, 1}), 1},
		{"3x3 stride 2 asym pads", 1, 2, 3, 6, 5, window([]int{3, 3}, []int{2, 2}, nil, []int{1, 0, 0, 1}), 1},
		{"dilation 2", 1, 2, 2, 6, 6, window([]int{3, 2}, nil, []int{2, 2}, []int{2, 1, 2, 1}), 1},
		{"groups 2", 2, 4, 6, 4, 4, window([]int{3, 3}, nil, nil, []int{1, 1, 1, 1}), 2},
		{"7x7 stride 2", 1, 3, 2, 9, 9, window([]int{7, 7}, []int{2, 2}, nil, []int{3, 3, 3, 3}), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			op := &ops.Conv{Window: tc.win, Group: tc.group}
			x := randT(r, tc.n, tc.c, tc.h, tc.w)
			w := randT(r, tc.m, tc.c/tc.group, tc.win.Kernel[0], tc.win.Kernel[1])
			geo, err := op.ConvShapes(x.Shape, w.Shape, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			dy := randT(r, tc.n, tc.m, geo.Out[0], geo.Out[1])
			dx, dw, db, err := Conv(op, x, w, dy)
			if err != nil {
				t.Fatal(err)
			}
			checkFD(t, refForward("Conv", op), []*tensor.Tensor{x, w}, dy, []*tensor.Tensor{dx, dw})
			bop := &ops.Conv{Window: tc.win, Group: tc.group, HasBias: true}
			b := randT(r, tc.m)
			checkFD(t, refForward("Conv", bop), []*tensor.Tensor{x, w, b}, dy, []*tensor.Tensor{nil, nil, db})
		})
	}
}

func TestBatchNormGradients(t *testing.T) {
	for _, shape := range [][]int{{3, 4, 3, 2}, {5, 3}, {2, 2, 7}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			C := shape[1]
			x, scale, bias, dy := randT(r, shape...), randT(r, C), randT(r, C), randT(r, shape...)
			for i := range tensor.Data[float64](x) {
				tensor.Data[float64](x)[i] = tensor.Data[float64](x)[i]*2 + 0.5
			}
			mean, variance := randT(r, C), randT(r, C)
			for i := range tensor.Data[float64](variance) {
				tensor.Data[float64](variance)[i] = math.Abs(tensor.Data[float64](variance)[i]) + 0.3
			}
			const eps = 1e-5
			train := &ops.BatchNormalization{Epsilon: eps, Momentum: 0.9, Training: true, NumOutputs: 1}
			dx, ds, db, err := BatchNormTrain(x, scale, eps, dy)
			if err != nil {
				t.Fatal(err)
			}
			checkFD(t, refForward("BatchNormalization", train), []*tensor.Tensor{x, scale, bias, mean, variance}, dy, []*tensor.Tensor{dx, ds, db})
			eval := &ops.BatchNormalization{Epsilon: eps, Momentum: 0.9, NumOutputs: 1}
			dx, ds, db, err = BatchNormEval(x, scale, mean, variance, eps, dy)
			if err != nil {
				t.Fatal(err)
			}
			checkFD(t, refForward("BatchNormalization", eval), []*tensor.Tensor{x, scale, bias, mean, variance}, dy, []*tensor.Tensor{dx, ds, db})
		})
	}
}

func TestPoolGradients(t *testing.T) {
	cases := []struct {
		name string
		win  ops.Window
		cip  bool
		h, w int
	}{
		{"2x2/2", window([]int{2, 2}, []int{2, 2}, nil, nil), false, 4, 6},
		{"3x3/2 pad 1", window([]int{3, 3}, []int{2, 2}, nil, []int{1, 1, 1, 1}), false, 7, 6},
		{"3x3/2 pad 1 count pad", window([]int{3, 3}, []int{2, 2}, nil, []int{1, 1, 1, 1}), true, 7, 6},
		{"3x2/1 dilated", window([]int{3, 2}, nil, []int{2, 1}, []int{0, 1, 1, 0}), false, 6, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			x := randT(r, 2, 3, tc.h, tc.w)
			avg := &ops.AveragePool{Window: tc.win, CountIncludePad: tc.cip}
			geo, err := avg.PoolShapes("AveragePool", x.Shape)
			if err != nil {
				t.Fatal(err)
			}
			dy := randT(r, 2, 3, geo.Out[0], geo.Out[1])
			dx, err := AveragePool(avg, x.Shape, dy)
			if err != nil {
				t.Fatal(err)
			}
			checkFD(t, refForward("AveragePool", avg), []*tensor.Tensor{x}, dy, []*tensor.Tensor{dx})
			mp := &ops.MaxPool{Window: tc.win, NumOutputs: 1}
			if dx, err = MaxPool(mp, x, dy); err != nil {
				t.Fatal(err)
			}
			checkFD(t, refForward("MaxPool", mp), []*tensor.Tensor{x}, dy, []*tensor.Tensor{dx})
		})
	}
	t.Run("global", func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		x, dy := randT(r, 2, 3, 4, 5), randT(r, 2, 3, 1, 1)
		dx, err := GlobalAveragePool(x.Shape, dy)
		if err != nil {
			t.Fatal(err)
		}
		checkFD(t, refForward("GlobalAveragePool", &ops.GlobalAveragePool{}), []*tensor.Tensor{x}, dy, []*tensor.Tensor{dx})
	})
}

func TestElementwiseGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	t.Run("Relu", func(t *testing.T) {
		x, dy := randT(r, 3, 4, 5), randT(r, 3, 4, 5)
		dx, err := Relu(x, dy)
		if err != nil {
			t.Fatal(err)
		}
		checkFD(t, refForward("Relu", &ops.Relu{}), []*tensor.Tensor{x}, dy, []*tensor.Tensor{dx})
	})
	for _, sh := range [][2][]int{{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {3, 1}}, {{1, 3, 1}, {2, 1, 4}}, {{4}, {2, 3, 4}}} {
		t.Run(fmt.Sprintf("Add %v %v", sh[0], sh[1]), func(t *testing.T) {
			a, b := randT(r, sh[0]...), randT(r, sh[1]...)
			dims, err := ops.BroadcastDims(ops.DimsOf(a.Shape), ops.DimsOf(b.Shape))
			if err != nil {
				t.Fatal(err)
			}
			out := make([]int, len(dims))
			for i, d := range dims {
				out[i] = int(d.Value)
			}
			dy := randT(r, out...)
			da, db, err := Add(a.Shape, b.Shape, dy)
			if err != nil {
				t.Fatal(err)
			}
			checkFD(t, refForward("Add", &ops.Arith{Kind: ops.ArithAdd}), []*tensor.Tensor{a, b}, dy, []*tensor.Tensor{da, db})
		})
	}
	t.Run("Concat", func(t *testing.T) {
		a, b, c := randT(r, 2, 1, 3), randT(r, 2, 3, 3), randT(r, 2, 2, 3)
		dy := randT(r, 2, 6, 3)
		dx, err := Concat(1, []tensor.Shape{a.Shape, b.Shape, c.Shape}, dy)
		if err != nil {
			t.Fatal(err)
		}
		checkFD(t, refForward("Concat", &ops.Concat{Axis: 1}), []*tensor.Tensor{a, b, c}, dy, dx)
	})
	t.Run("Pad", func(t *testing.T) {
		x := randT(r, 2, 2, 3, 4)
		pads := []int{0, 0, 1, -1, 0, 0, 2, 1}
		op := &ops.Pad{Mode: ops.PadConstant}
		dy := randT(r, 2, 2, 6, 4)
		dx, err := Pad(x.Shape, pads, dy)
		if err != nil {
			t.Fatal(err)
		}
		p64 := make([]int64, len(pads))
		for i, v := range pads {
			p64[i] = int64(v)
		}
		pt := tensor.FromSlice(tensor.Shape{len(pads)}, p64)
		f := func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			out, err := ref.Kernels()["Pad"](op, []*tensor.Tensor{in[0], pt}, 1)
			if err != nil {
				return nil, err
			}
			return out[0], nil
		}
		checkFD(t, f, []*tensor.Tensor{x}, dy, []*tensor.Tensor{dx})
	})
}

func TestGemmGradients(t *testing.T) {
	for _, tc := range []struct {
		transA, transB bool
		cShape         []int
		alpha, beta    float32
	}{
		{false, true, []int{4}, 1, 1},
		{true, false, []int{3, 4}, 0.5, 2},
		{true, true, []int{3, 1}, 1, 0.25},
		{false, false, nil, 2, 1},
	} {
		t.Run(fmt.Sprintf("%v %v %v", tc.transA, tc.transB, tc.cShape), func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, 12))
			const M, K, N = 3, 5, 4
			a := randT(r, M, K)
			if tc.transA {
				a = randT(r, K, M)
			}
			b := randT(r, K, N)
			if tc.transB {
				b = randT(r, N, K)
			}
			op := &ops.Gemm{TransA: tc.transA, TransB: tc.transB, Alpha: tc.alpha, Beta: tc.beta, BroadcastC: true}
			in := []*tensor.Tensor{a, b}
			var c *tensor.Tensor
			if tc.cShape != nil {
				c = randT(r, tc.cShape...)
				in = append(in, c)
			}
			dy := randT(r, M, N)
			da, db, dc, err := Gemm(op, a, b, c, dy)
			if err != nil {
				t.Fatal(err)
			}
			grads := []*tensor.Tensor{da, db}
			if c != nil {
				grads = append(grads, dc)
			}
			checkFD(t, refForward("Gemm", op), in, dy, grads)
		})
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	labels := []int64{2, 0, 4}
	for _, eps := range []float64{0, 0.1} {
		t.Run(fmt.Sprint(eps), func(t *testing.T) {
			z := randT(r, 3, 5)
			loss, dz, err := SoftmaxCrossEntropy(z, labels, eps)
			if err != nil {
				t.Fatal(err)
			}
			zs := tensor.Data[float64](z)
			for j := range zs {
				old := zs[j]
				zs[j] = old + fdStep
				lp, _, _ := SoftmaxCrossEntropy(z, labels, eps)
				zs[j] = old - fdStep
				lm, _, _ := SoftmaxCrossEntropy(z, labels, eps)
				zs[j] = old
				if fd := (lp - lm) / (2 * fdStep); math.Abs(fd-tensor.Data[float64](dz)[j]) > fdAtol {
					t.Fatalf("element %d: analytic %g, finite difference %g", j, tensor.Data[float64](dz)[j], fd)
				}
			}
			if loss <= 0 {
				t.Errorf("loss %g", loss)
			}
		})
	}
	if _, _, err := SoftmaxCrossEntropy(randT(r, 2, 3), []int64{0, 3}, 0); err == nil {
		t.Error("label 3 of 3 classes accepted")
	}
}

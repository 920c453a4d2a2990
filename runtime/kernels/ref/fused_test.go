package ref

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// fusedDecode builds a FusedConv from Conv attributes and a prologue/epilogue through the default
// registry, as a re-imported fused node would be.
func fusedDecode(t *testing.T, nIn int, conv ops.Attributes, f *ops.FusedConv) *ops.FusedConv {
	t.Helper()
	o, err := ops.Default().Decode(&ops.Node{Name: "t", OpType: "FusedConv", Domain: ops.DomainDNX, Opset: 1,
		Attrs: ops.FusedConvAttrs(conv, f), Inputs: nnIn(nIn), NumOutputs: 1})
	if err != nil {
		t.Fatalf("decode FusedConv: %v", err)
	}
	return o.(*ops.FusedConv)
}

func TestFusedConvHandComputed(t *testing.T) {
	// X channel 0 = [1, -1, 0] -> 2x+1 = [3, -1, 1] -> relu [3, 0, 1]
	// X channel 1 = [2, 0, -3] -> -x+0.5 = [-1.5, 0.5, 3.5] -> relu [0, 0.5, 3.5]
	// 1x1 conv summing both channels: [3, 0.5, 4.5]; bias -4 and a ReLU epilogue: [0, 0, 0.5].
	x := f32(tensor.Shape{1, 2, 1, 3}, 1, -1, 0, 2, 0, -3)
	w := f32(tensor.Shape{1, 2, 1, 1}, 1, 1)
	pro := &ops.FusedConv{PreScale: []float32{2, -1}, PreShift: []float32{1, 0.5}, PreRelu: true}
	nnRun(t, fusedDecode(t, 2, nil, pro), []*tensor.Tensor{x, w}, f32(tensor.Shape{1, 1, 1, 3}, 3, 0.5, 4.5))
	both := *pro
	both.Post = ops.Activation{Kind: ops.ActRelu}
	nnRun(t, fusedDecode(t, 3, nil, &both), []*tensor.Tensor{x, w, f32(tensor.Shape{1}, -4)}, f32(tensor.Shape{1, 1, 1, 3}, 0, 0, 0.5))
	// Epilogue only: the plain convolution [3, -1, -3] with bias -4 -> relu.
	post := &ops.FusedConv{Post: ops.Activation{Kind: ops.ActRelu}}
	nnRun(t, fusedDecode(t, 3, nil, post), []*tensor.Tensor{x, w, f32(tensor.Shape{1}, 4)}, f32(tensor.Shape{1, 1, 1, 3}, 7, 3, 1))
	// ReLU-only prologue.
	relu := &ops.FusedConv{PreRelu: true}
	nnRun(t, fusedDecode(t, 2, nil, relu), []*tensor.Tensor{x, w}, f32(tensor.Shape{1, 1, 1, 3}, 3, 0, 0))
}

// TestFusedConvPadsAfterPrologue: the Conv's zero padding pads the normalized input. A 1x1 input
// of 0 with PreShift 1 becomes 1; a 3x3 all-ones kernel with pad 1 then sums 1, not 9.
func TestFusedConvPadsAfterPrologue(t *testing.T) {
	conv := nnA("pads", []int64{1, 1, 1, 1})
	op := fusedDecode(t, 2, conv, &ops.FusedConv{PreScale: []float32{1}, PreShift: []float32{1}})
	ones := make([]float32, 9)
	for i := range ones {
		ones[i] = 1
	}
	nnRun(t, op, []*tensor.Tensor{f32(tensor.Shape{1, 1, 1, 1}, 0), f32(tensor.Shape{1, 1, 3, 3}, ones...)}, f32(tensor.Shape{1, 1, 1, 1}, 1))
}

// TestFusedConvMatchesComposition compares FusedConv with the unfused chain
// BatchNormalization -> Relu -> Conv -> Relu run kernel by kernel, on random data and several
// geometries and element types.
func TestFusedConvMatchesComposition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	rnd := func(lo, hi float64, shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Size())
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return tensor.FromSlice(tensor.Shape(shape), v)
	}
	cases := []struct {
		name              string
		conv              ops.Attributes
		C, M, k, group    int
		bias, pre, preRel bool
		post              bool
		dtype             tensor.DType
	}{
		{"3x3 pad 1, BN+ReLU prologue, epilogue", nnA("pads", []int64{1, 1, 1, 1}), 6, 4, 3, 1, true, true, true, true, tensor.Float32},
		{"1x1 bottleneck, prologue only", nil, 6, 8, 1, 1, false, true, true, false, tensor.Float32},
		{"strided grouped, BN without ReLU", nnA("strides", []int64{2, 2}, "group", 2, "pads", []int64{1, 0, 1, 0}), 6, 4, 3, 2, true, true, false, true, tensor.Float32},
		{"float64", nnA("pads", []int64{1, 1, 1, 1}), 3, 2, 3, 1, true, true, true, true, tensor.Float64},
		{"float16", nil, 3, 2, 1, 1, false, true, true, true, tensor.Float16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.group > 1 {
				c.conv["group"] = ops.Attribute{Kind: ops.AttrInt, Int: int64(c.group)}
			}
			x := rnd(-2, 2, 2, c.C, 7, 6)
			w := rnd(-1, 1, c.M, c.C/c.group, c.k, c.k)
			gamma, beta, mean, vr := rnd(0.5, 1.5, c.C), rnd(-0.5, 0.5, c.C), rnd(-0.5, 0.5, c.C), rnd(0.2, 2, c.C)
			in := []*tensor.Tensor{x, w}
			nIn := 2
			if c.bias {
				in, nIn = append(in, rnd(-1, 1, c.M)), 3
			}
			in = convertAll(in, c.dtype)
			const eps = 1e-5
			f := &ops.FusedConv{PreRelu: c.preRel}
			if c.post {
				f.Post = ops.Activation{Kind: ops.ActRelu}
			}
			if c.pre {
				g, b, m, v := gamma.Float64s(), beta.Float64s(), mean.Float64s(), vr.Float64s()
				for i := 0; i < c.C; i++ {
					a := g[i] / math.Sqrt(v[i]+eps)
					f.PreScale = append(f.PreScale, float32(a))
					f.PreShift = append(f.PreShift, float32(b[i]-m[i]*a))
				}
			}
			fused := fusedDecode(t, nIn, c.conv, f)
			got, err := Kernels()["FusedConv"](fused, in, 1)
			if err != nil {
				t.Fatal(err)
			}

			// The unfused chain.
			h := in[0]
			run := func(op ops.Op, args ...*tensor.Tensor) *tensor.Tensor {
				out, err := Kernels()[op.OpType()](op, args, 1)
				if err != nil {
					t.Fatalf("%s: %v", op.OpType(), err)
				}
				return out[0]
			}
			if c.pre {
				bn := nnDecode(t, "BatchNormalization", 15, nnIn(5), 1, ops.Attributes{"epsilon": {Kind: ops.AttrFloat, Float: eps}})
				h = run(bn, append([]*tensor.Tensor{h}, convertAll([]*tensor.Tensor{gamma, beta, mean, vr}, c.dtype)...)...)
			}
			if c.preRel {
				h = run(&ops.Relu{}, h)
			}
			conv := nnDecode(t, "Conv", 11, nnIn(nIn), 1, c.conv)
			want := run(conv, append([]*tensor.Tensor{h}, in[1:]...)...)
			if c.post {
				want = run(&ops.Relu{}, want)
			}
			tol := map[tensor.DType]float64{tensor.Float32: 1e-5, tensor.Float64: 1e-6, tensor.Float16: 2e-2}[c.dtype]
			if err := tensor.AllClose(got[0], want, tol, tol); err != nil {
				t.Error(err)
			}
		})
	}
}

// convertAll converts float32 tensors to dt.
func convertAll(ts []*tensor.Tensor, dt tensor.DType) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(ts))
	for i, x := range ts {
		v := tensor.Data[float32](x)
		switch dt {
		case tensor.Float64:
			d := make([]float64, len(v))
			for j, f := range v {
				d[j] = float64(f)
			}
			out[i] = tensor.FromSlice(x.Shape.Clone(), d)
		case tensor.Float16:
			d := make([]tensor.F16, len(v))
			for j, f := range v {
				d[j] = tensor.F16From(f)
			}
			out[i] = tensor.FromSlice(x.Shape.Clone(), d)
		default:
			out[i] = x
		}
	}
	return out
}

func TestFusedConvErrors(t *testing.T) {
	x := f32(tensor.Shape{1, 2, 1, 1}, 1, 2)
	w := f32(tensor.Shape{1, 2, 1, 1}, 1, 1)
	three := fusedDecode(t, 2, nil, &ops.FusedConv{PreScale: []float32{1, 1, 1}, PreShift: []float32{0, 0, 0}})
	nnRunErr(t, three, []*tensor.Tensor{x, w}, 1)
	ok := fusedDecode(t, 2, nil, &ops.FusedConv{Post: ops.Activation{Kind: ops.ActRelu}})
	nnRunErr(t, ok, []*tensor.Tensor{x, w}, 2)
	nnRunErr(t, ok, []*tensor.Tensor{x}, 1)
	nnRunErr(t, ok, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 2, 1, 1}, []int32{1, 2}), w}, 1)
	if _, err := fusedConvKernel(&ops.Relu{}, []*tensor.Tensor{x, w}, 1); err == nil {
		t.Error("FusedConv kernel accepted a Relu op")
	}
}

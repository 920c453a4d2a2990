package ref

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Tolerances for the hand-computed NN cases: exact arithmetic up to float32 rounding.
const (
	nnRtol = 1e-6
	nnAtol = 1e-6
)

// nnA is a tiny attribute builder for tests: ints for []int64, int64, float32 and string values.
func nnA(kv ...any) ops.Attributes {
	a := ops.Attributes{}
	for i := 0; i < len(kv); i += 2 {
		name := kv[i].(string)
		switch v := kv[i+1].(type) {
		case []int64:
			a[name] = ops.Attribute{Kind: ops.AttrInts, Ints: v}
		case int:
			a[name] = ops.Attribute{Kind: ops.AttrInt, Int: int64(v)}
		case float64:
			a[name] = ops.Attribute{Kind: ops.AttrFloat, Float: float32(v)}
		case string:
			a[name] = ops.Attribute{Kind: ops.AttrString, String: v}
		default:
			panic("nnA: unsupported attribute value")
		}
	}
	return a
}

// nnDecode decodes a node through the default registry, as the importer does; in lists which
// input positions are present.
func nnDecode(t *testing.T, op string, opset int, in []bool, nOut int, attrs ops.Attributes) ops.Op {
	t.Helper()
	o, err := ops.Default().Decode(&ops.Node{Name: "t", OpType: op, Opset: opset, Attrs: attrs, Inputs: in, NumOutputs: nOut})
	if err != nil {
		t.Fatalf("decode %s: %v", op, err)
	}
	return o
}

// nnIn returns n "present" flags.
func nnIn(n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = true
	}
	return b
}

func f32(shape tensor.Shape, v ...float32) *tensor.Tensor { return tensor.FromSlice(shape, v) }

// nnRamp returns a float32 tensor holding 1, 2, 3, ...
func nnRamp(shape ...int) *tensor.Tensor {
	v := make([]float32, tensor.Shape(shape).Size())
	for i := range v {
		v[i] = float32(i + 1)
	}
	return tensor.FromSlice(tensor.Shape(shape), v)
}

// nnRun runs the kernel of op and checks each output against want (shape, dtype, values).
func nnRun(t *testing.T, op ops.Op, in []*tensor.Tensor, want ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	outs, err := Kernels()[op.OpType()](op, in, len(want))
	if err != nil {
		t.Fatalf("%s: %v", op.OpType(), err)
	}
	if len(outs) != len(want) {
		t.Fatalf("%s returned %d outputs, want %d", op.OpType(), len(outs), len(want))
	}
	for i := range want {
		if err := tensor.AllClose(outs[i], want[i], nnRtol, nnAtol); err != nil {
			t.Errorf("%s output %d: %v (got %v)", op.OpType(), i, err, outs[i].Data)
		}
	}
	return outs
}

// nnRunErr runs the kernel and expects an error (and no panic).
func nnRunErr(t *testing.T, op ops.Op, in []*tensor.Tensor, nOut int) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", op.OpType(), r)
		}
	}()
	if _, err := Kernels()[op.OpType()](op, in, nOut); err == nil {
		t.Fatalf("%s: no error", op.OpType())
	}
}

func TestConvHandComputed(t *testing.T) {
	x3 := nnRamp(1, 1, 3, 3) // 1..9
	tests := []struct {
		name  string
		opset int
		attrs ops.Attributes
		in    []*tensor.Tensor
		want  *tensor.Tensor
	}{
		{"2x2 ones", 11, nil, []*tensor.Tensor{x3, f32(tensor.Shape{1, 1, 2, 2}, 1, 1, 1, 1)},
			f32(tensor.Shape{1, 1, 2, 2}, 12, 16, 24, 28)},
		// Windows at rows/cols {-1..1} and {1..3}: each keeps 4 inside elements.
		{"pads stride bias", 22, nnA("pads", []int64{1, 1, 1, 1}, "strides", []int64{2, 2}),
			[]*tensor.Tensor{x3, f32(tensor.Shape{1, 1, 3, 3}, 1, 1, 1, 1, 1, 1, 1, 1, 1), f32(tensor.Shape{1}, 1)},
			f32(tensor.Shape{1, 1, 2, 2}, 13, 17, 25, 29)},
		// Dilation 2 reads X[0,0], X[0,2], X[2,0], X[2,2] = 1, 3, 7, 9.
		{"dilation", 1, nnA("dilations", []int64{2, 2}, "kernel_shape", []int64{2, 2}),
			[]*tensor.Tensor{x3, f32(tensor.Shape{1, 1, 2, 2}, 1, 2, 3, 4)}, f32(tensor.Shape{1, 1, 1, 1}, 64)},
		{"groups", 11, nnA("group", 2),
			[]*tensor.Tensor{f32(tensor.Shape{1, 2, 1, 2}, 1, 2, 3, 4), f32(tensor.Shape{2, 1, 1, 1}, 10, 100)},
			f32(tensor.Shape{1, 2, 1, 2}, 10, 20, 300, 400)},
		// Two input channels summed, two output channels, batch 2.
		{"channels batch", 11, nil,
			[]*tensor.Tensor{f32(tensor.Shape{2, 2, 1, 1}, 1, 2, 3, 4), f32(tensor.Shape{2, 2, 1, 1}, 1, 10, 100, 1000)},
			f32(tensor.Shape{2, 2, 1, 1}, 21, 2100, 43, 4300)},
		// SAME with kernel 2, stride 1 on 4 elements: one pad, at the end (UPPER) or start (LOWER).
		{"same upper", 11, nnA("auto_pad", "SAME_UPPER"),
			[]*tensor.Tensor{f32(tensor.Shape{1, 1, 4}, 1, 2, 3, 4), f32(tensor.Shape{1, 1, 2}, 1, 10)},
			f32(tensor.Shape{1, 1, 4}, 21, 32, 43, 4)},
		{"same lower", 11, nnA("auto_pad", "SAME_LOWER"),
			[]*tensor.Tensor{f32(tensor.Shape{1, 1, 4}, 1, 2, 3, 4), f32(tensor.Shape{1, 1, 2}, 1, 10)},
			f32(tensor.Shape{1, 1, 4}, 10, 21, 32, 43)},
		{"valid stride", 11, nnA("auto_pad", "VALID", "strides", []int64{2}, "pads", []int64{3, 3}),
			[]*tensor.Tensor{f32(tensor.Shape{1, 1, 5}, 1, 2, 3, 4, 5), f32(tensor.Shape{1, 1, 2}, 1, 10)},
			f32(tensor.Shape{1, 1, 2}, 21, 43)},
		{"3d", 11, nil, []*tensor.Tensor{nnRamp(1, 1, 2, 2, 2), f32(tensor.Shape{1, 1, 2, 2, 2}, 1, 1, 1, 1, 1, 1, 1, 1)},
			f32(tensor.Shape{1, 1, 1, 1, 1}, 36)},
		// Asymmetric pads: 1 on top, none on the left; stride 2 both ways.
		{"asymmetric", 11, nnA("pads", []int64{1, 0, 0, 0}, "strides", []int64{2, 2}),
			[]*tensor.Tensor{x3, f32(tensor.Shape{1, 1, 2, 2}, 1, 1, 1, 1)},
			f32(tensor.Shape{1, 1, 2, 1}, 3, 24)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := nnDecode(t, "Conv", tc.opset, nnIn(len(tc.in)), 1, tc.attrs)
			nnRun(t, op, tc.in, tc.want)
		})
	}
}

func TestConvOtherFloatTypes(t *testing.T) {
	op := nnDecode(t, "Conv", 11, nnIn(2), 1, nil)
	x64 := tensor.FromSlice(tensor.Shape{1, 1, 3}, []float64{1, 2, 3})
	w64 := tensor.FromSlice(tensor.Shape{1, 1, 2}, []float64{0.5, 2})
	nnRun(t, op, []*tensor.Tensor{x64, w64}, tensor.FromSlice(tensor.Shape{1, 1, 2}, []float64{4.5, 7}))
	h := func(v ...float32) []tensor.F16 {
		out := make([]tensor.F16, len(v))
		for i, f := range v {
			out[i] = tensor.F16From(f)
		}
		return out
	}
	nnRun(t, op, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 1, 3}, h(1, 2, 3)), tensor.FromSlice(tensor.Shape{1, 1, 2}, h(0.5, 2))},
		tensor.FromSlice(tensor.Shape{1, 1, 2}, h(4.5, 7)))
}

// convNaive is Conv straight from the formula, with float64 sums: the oracle for the optimized
// loop order of convKernel.
func convNaive(x, w, b *tensor.Tensor, group int, g *ops.Geometry) *tensor.Tensor {
	N, C, M := x.Shape[0], x.Shape[1], w.Shape[0]
	Cg, Mg := C/group, M/group
	in, out, k := nnShape3(g.In, 1), nnShape3(g.Out, 1), nnShape3(g.Kernel, 1)
	s, d, p := nnShape3(g.Stride, 1), nnShape3(g.Dilation, 1), nnShape3(g.PadBegin, 0)
	xv, wv := tensor.Data[float32](x), tensor.Data[float32](w)
	y := tensor.New(tensor.Float32, append(tensor.Shape{N, M}, g.Out...))
	yv := tensor.Data[float32](y)
	i := 0
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			for o0 := 0; o0 < out[0]; o0++ {
				for o1 := 0; o1 < out[1]; o1++ {
					for o2 := 0; o2 < out[2]; o2++ {
						var sum float64
						if b != nil {
							sum = float64(tensor.Data[float32](b)[m])
						}
						for c := 0; c < Cg; c++ {
							ci := (m/Mg)*Cg + c
							for k0 := 0; k0 < k[0]; k0++ {
								for k1 := 0; k1 < k[1]; k1++ {
									for k2 := 0; k2 < k[2]; k2++ {
										i0, i1, i2 := o0*s[0]+k0*d[0]-p[0], o1*s[1]+k1*d[1]-p[1], o2*s[2]+k2*d[2]-p[2]
										if i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2] {
											continue
										}
										xe := xv[(((n*C+ci)*in[0]+i0)*in[1]+i1)*in[2]+i2]
										we := wv[(((m*Cg+c)*k[0]+k0)*k[1]+k1)*k[2]+k2]
										sum += float64(xe) * float64(we)
									}
								}
							}
						}
						yv[i] = float32(sum)
						i++
					}
				}
			}
		}
	}
	return y
}

// TestConvMatchesNaive compares convKernel with the formula on random inputs over 1-D, 2-D and 3-D
// convolutions with groups, strides, dilations, asymmetric pads and auto_pad, and checks that the
// inputs are not modified.
func TestConvMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randT := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Size())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensor.FromSlice(tensor.Shape(shape), v)
	}
	autoPads := []string{"NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}
	for trial := 0; trial < 150; trial++ {
		sp := 1 + trial%3
		group := 1 + rng.IntN(3)
		Cg, Mg := 1+rng.IntN(3), 1+rng.IntN(3)
		N := 1 + rng.IntN(2)
		xShape := []int{N, Cg * group}
		wShape := []int{Mg * group, Cg}
		var kernel, strides, dil, pads []int64
		pads = make([]int64, 2*sp)
		for i := 0; i < sp; i++ {
			k := 1 + rng.IntN(3)
			s, d := 1+rng.IntN(3), 1+rng.IntN(2)
			kernel, strides, dil = append(kernel, int64(k)), append(strides, int64(s)), append(dil, int64(d))
			pads[i], pads[sp+i] = int64(rng.IntN(k)), int64(rng.IntN(k))
			ek := (k-1)*d + 1
			xShape = append(xShape, ek+rng.IntN(6))
			wShape = append(wShape, k)
		}
		attrs := nnA("kernel_shape", kernel, "strides", strides, "dilations", dil, "group", group, "auto_pad", autoPads[trial%len(autoPads)])
		if autoPads[trial%len(autoPads)] == "NOTSET" {
			attrs["pads"] = ops.Attribute{Kind: ops.AttrInts, Ints: pads}
		}
		x, w, b := randT(xShape...), randT(wShape...), randT(Mg*group)
		hasBias := trial%2 == 0
		in := []*tensor.Tensor{x, w}
		if hasBias {
			in = append(in, b)
		} else {
			b = nil
		}
		op := nnDecode(t, "Conv", 11, nnIn(len(in)), 1, attrs).(*ops.Conv)
		geo, err := op.ConvShapes(x.Shape, w.Shape, []int{Mg * group}, hasBias)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		want := convNaive(x, w, b, group, geo)
		xc, wc := x.Clone(), w.Clone()
		got, err := convKernel(op, in, 1)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if err := tensor.AllClose(got[0], want, 1e-5, 1e-5); err != nil {
			t.Errorf("trial %d (x %v w %v %v): %v", trial, xShape, wShape, attrs, err)
		}
		if tensor.MaxAbsDiff(x, xc) != 0 || tensor.MaxAbsDiff(w, wc) != 0 {
			t.Fatalf("trial %d: Conv modified its inputs", trial)
		}
	}
}

func TestConvErrors(t *testing.T) {
	conv := nnDecode(t, "Conv", 11, nnIn(3), 1, nil)
	conv2 := nnDecode(t, "Conv", 11, nnIn(2), 1, nil)
	convK := nnDecode(t, "Conv", 11, nnIn(2), 1, nnA("kernel_shape", []int64{3, 3}))
	convG := nnDecode(t, "Conv", 11, nnIn(2), 1, nnA("group", 2))
	x := nnRamp(1, 2, 4, 4)
	w := nnRamp(3, 2, 2, 2)
	tests := []struct {
		name string
		op   ops.Op
		in   []*tensor.Tensor
	}{
		{"X rank 2", conv2, []*tensor.Tensor{nnRamp(2, 4), nnRamp(3, 4)}},
		{"W rank", conv2, []*tensor.Tensor{x, nnRamp(3, 2, 2)}},
		{"channels", conv2, []*tensor.Tensor{x, nnRamp(3, 3, 2, 2)}},
		{"group channels", convG, []*tensor.Tensor{nnRamp(1, 3, 4, 4), nnRamp(2, 1, 2, 2)}},
		{"group M", convG, []*tensor.Tensor{x, nnRamp(3, 1, 2, 2)}},
		{"bias shape", conv, []*tensor.Tensor{x, w, nnRamp(2)}},
		{"bias missing", conv, []*tensor.Tensor{x, w}},
		{"W missing", conv2, []*tensor.Tensor{x}},
		{"kernel_shape vs W", convK, []*tensor.Tensor{x, w}},
		{"kernel bigger than input", conv2, []*tensor.Tensor{nnRamp(1, 2, 1, 1), w}},
		{"dtype mismatch", conv2, []*tensor.Tensor{x, tensor.FromSlice(tensor.Shape{1, 2, 1, 1}, []float64{1, 2})}},
		{"int input", conv2, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 1, 1}, []int32{1}), tensor.FromSlice(tensor.Shape{1, 1, 1}, []int32{1})}},
		{"4 spatial dims", conv2, []*tensor.Tensor{nnRamp(1, 1, 1, 1, 1, 1), nnRamp(1, 1, 1, 1, 1, 1)}},
		{"wrong op", nnDecode(t, "GlobalMaxPool", 1, nnIn(1), 1, nil), []*tensor.Tensor{x}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "wrong op" {
				if _, err := convKernel(tc.op, tc.in, 1); err == nil {
					t.Fatal("no error")
				}
				return
			}
			nnRunErr(t, tc.op, tc.in, 1)
		})
	}
}

func TestBatchNormalization(t *testing.T) {
	// X [1,2,1,2]: channel 0 = {1,2}, channel 1 = {3,4}; eps 0 keeps the arithmetic exact.
	x := f32(tensor.Shape{1, 2, 1, 2}, 1, 2, 3, 4)
	scale, bias := f32(tensor.Shape{2}, 1, 2), f32(tensor.Shape{2}, 0, 1)
	mean, vr := f32(tensor.Shape{2}, 1, 3), f32(tensor.Shape{2}, 4, 1)
	// (x-1)/2*1+0 and (x-3)/1*2+1.
	wantY := f32(tensor.Shape{1, 2, 1, 2}, 0, 0.5, 1, 3)
	for _, opset := range []int{6, 7, 9, 14, 15} {
		op := nnDecode(t, "BatchNormalization", opset, nnIn(5), 1, nnA("epsilon", 0.0))
		nnRun(t, op, []*tensor.Tensor{x, scale, bias, mean, vr}, wantY)
	}
	// Epsilon is added to the variance: var 3 + eps 1 = 4.
	op := nnDecode(t, "BatchNormalization", 15, nnIn(5), 1, nnA("epsilon", 1.0))
	nnRun(t, op, []*tensor.Tensor{f32(tensor.Shape{1, 1}, 5), f32(tensor.Shape{1}, 1), f32(tensor.Shape{1}, 0), f32(tensor.Shape{1}, 1), f32(tensor.Shape{1}, 3)},
		f32(tensor.Shape{1, 1}, 2))

	// Training: X [2,1,2] = {1,2},{3,4}: batch mean 2.5, biased variance 1.25.
	xt := f32(tensor.Shape{2, 1, 2}, 1, 2, 3, 4)
	one, zero := f32(tensor.Shape{1}, 1), f32(tensor.Shape{1}, 0)
	sd := float32(math.Sqrt(1.25))
	wantYt := f32(tensor.Shape{2, 1, 2}, -1.5/sd, -0.5/sd, 0.5/sd, 1.5/sd)
	train := nnDecode(t, "BatchNormalization", 15, nnIn(5), 3, nnA("training_mode", 1, "epsilon", 0.0))
	// running_mean = 0*0.9 + 2.5*0.1; running_var = 1*0.9 + 1.25*0.1.
	nnRun(t, train, []*tensor.Tensor{xt, one, zero, zero, one}, wantYt, f32(tensor.Shape{1}, 0.25), f32(tensor.Shape{1}, 1.025))
	train9 := nnDecode(t, "BatchNormalization", 9, nnIn(5), 5, nnA("epsilon", 0.0, "momentum", 0.5))
	nnRun(t, train9, []*tensor.Tensor{xt, one, zero, zero, one}, wantYt,
		f32(tensor.Shape{1}, 1.25), f32(tensor.Shape{1}, 1.125), f32(tensor.Shape{1}, 2.5), f32(tensor.Shape{1}, 1.25))
	train6 := nnDecode(t, "BatchNormalization", 6, nnIn(5), 1, nnA("is_test", 0, "epsilon", 0.0))
	nnRun(t, train6, []*tensor.Tensor{xt, one, zero, zero, one}, wantYt)
	// float64 X with float32 statistics (opset 15 allows different types).
	x64 := tensor.FromSlice(tensor.Shape{2, 1, 2}, []float64{1, 2, 3, 4})
	out := nnRun(t, train, []*tensor.Tensor{x64, one, zero, zero, one},
		tensor.FromSlice(tensor.Shape{2, 1, 2}, []float64{-1.5 / math.Sqrt(1.25), -0.5 / math.Sqrt(1.25), 0.5 / math.Sqrt(1.25), 1.5 / math.Sqrt(1.25)}),
		f32(tensor.Shape{1}, 0.25), f32(tensor.Shape{1}, 1.025))
	if out[1].DType != tensor.Float32 {
		t.Errorf("running_mean is %s, want input_mean's float32", out[1].DType)
	}

	infer := nnDecode(t, "BatchNormalization", 15, nnIn(5), 1, nil)
	for name, in := range map[string][]*tensor.Tensor{
		"X rank 1":    {f32(tensor.Shape{2}, 1, 2), scale, bias, mean, vr},
		"scale shape": {x, f32(tensor.Shape{3}, 1, 2, 3), bias, mean, vr},
		"var rank":    {x, scale, bias, mean, f32(tensor.Shape{1, 2}, 1, 2)},
		"int X":       {tensor.FromSlice(tensor.Shape{1, 2}, []int32{1, 2}), scale, bias, mean, vr},
		"missing var": {x, scale, bias, mean},
	} {
		t.Run(name, func(t *testing.T) { nnRunErr(t, infer, in, 1) })
	}
}

func TestNNKernelsRegistered(t *testing.T) {
	k := Kernels()
	for _, op := range []string{"Conv", "BatchNormalization", "AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool", "Pad"} {
		if k[op] == nil {
			t.Errorf("no kernel for %s", op)
		}
	}
	if _, err := batchNormKernel(&ops.Conv{}, nil, 1); err == nil || errors.Is(err, ops.ErrShape) {
		t.Errorf("BatchNormalization kernel with a Conv op: %v", err)
	}
}

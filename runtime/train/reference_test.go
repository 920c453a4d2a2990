package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/passes"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/train/refgrad"
)

// referenceStep is the exact reference of one training step's gradients: the forward pass of g
// (after passes.Training) with the reference kernels of runtime/kernels/ref and the backward pass
// with runtime/train/refgrad, all in float64. It returns the loss and the gradient of every
// float32 initializer that the backward pass reaches.
func referenceStep(t *testing.T, g0 *graph.Graph, x *tensor.Tensor, labels []int64, opts Options) (float64, map[string][]float64) {
	t.Helper()
	g, err := g0.Clone(ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Training().Run(g); err != nil {
		t.Fatal(err)
	}
	f64 := func(t *tensor.Tensor) *tensor.Tensor {
		return tensor.FromSlice(t.Shape.Clone(), t.Float64s())
	}
	vals := map[*graph.Value]*tensor.Tensor{}
	for _, v := range g.Initializers {
		if v.Const.DType.IsFloat() {
			vals[v] = f64(v.Const)
		} else {
			vals[v] = v.Const
		}
	}
	vals[g.Inputs[0]] = f64(x)
	kernels := ref.Kernels()
	train := !opts.FreezeBNStats
	for _, n := range g.Nodes {
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, v := range n.Inputs {
			if v != nil {
				in[i] = vals[v]
			}
		}
		op := n.Op
		switch o := n.Op.(type) {
		case *ops.BatchNormalization:
			c := *o
			c.Training, c.NumOutputs = train, 1
			op = &c
		case *ops.Dropout:
			vals[n.Outputs[0]] = in[0]
			continue
		}
		outs, err := kernels[n.OpType](op, in, 1)
		if err != nil {
			t.Fatalf("reference forward %s: %v", n, err)
		}
		vals[n.Outputs[0]] = outs[0]
	}
	loss, dz, err := refgrad.SoftmaxCrossEntropy(vals[g.Outputs[0]], labels, opts.LabelSmoothing)
	if err != nil {
		t.Fatal(err)
	}
	grads := map[*graph.Value]*tensor.Tensor{g.Outputs[0]: dz}
	add := func(v *graph.Value, d *tensor.Tensor) {
		if v == nil || d == nil {
			return
		}
		if g := grads[v]; g != nil {
			for i, x := range tensor.Data[float64](d) {
				tensor.Data[float64](g)[i] += x
			}
			return
		}
		grads[v] = tensor.FromSlice(d.Shape.Clone(), append([]float64(nil), tensor.Data[float64](d)...))
	}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		dy := grads[n.Outputs[0]]
		if dy == nil {
			continue
		}
		in := func(i int) *tensor.Tensor {
			if i < len(n.Inputs) && n.Inputs[i] != nil {
				return vals[n.Inputs[i]]
			}
			return nil
		}
		var ds []*tensor.Tensor
		var err error
		switch o := n.Op.(type) {
		case *ops.Conv:
			var dx, dw, db *tensor.Tensor
			dx, dw, db, err = refgrad.Conv(o, in(0), in(1), dy)
			ds = []*tensor.Tensor{dx, dw, db}
		case *ops.BatchNormalization:
			var dx, dsc, db *tensor.Tensor
			if train {
				dx, dsc, db, err = refgrad.BatchNormTrain(in(0), in(1), float64(o.Epsilon), dy)
			} else {
				dx, dsc, db, err = refgrad.BatchNormEval(in(0), in(1), in(3), in(4), float64(o.Epsilon), dy)
			}
			ds = []*tensor.Tensor{dx, dsc, db}
		case *ops.Relu:
			var dx *tensor.Tensor
			dx, err = refgrad.Relu(in(0), dy)
			ds = []*tensor.Tensor{dx}
		case *ops.Concat:
			shapes := make([]tensor.Shape, len(n.Inputs))
			for i := range shapes {
				shapes[i] = in(i).Shape
			}
			ds, err = refgrad.Concat(int(o.Axis), shapes, dy)
		case *ops.AveragePool:
			var dx *tensor.Tensor
			dx, err = refgrad.AveragePool(o, in(0).Shape, dy)
			ds = []*tensor.Tensor{dx}
		case *ops.MaxPool:
			var dx *tensor.Tensor
			dx, err = refgrad.MaxPool(o, in(0), dy)
			ds = []*tensor.Tensor{dx}
		case *ops.GlobalAveragePool:
			var dx *tensor.Tensor
			dx, err = refgrad.GlobalAveragePool(in(0).Shape, dy)
			ds = []*tensor.Tensor{dx}
		case *ops.Gemm:
			var da, db, dc *tensor.Tensor
			da, db, dc, err = refgrad.Gemm(o, in(0), in(1), in(2), dy)
			ds = []*tensor.Tensor{da, db, dc}
		case *ops.Flatten, *ops.Reshape, *ops.Identity, *ops.Dropout:
			ds = []*tensor.Tensor{dy.Reshaped(in(0).Shape)}
		case *ops.Arith:
			var da, db *tensor.Tensor
			da, db, err = refgrad.Add(in(0).Shape, in(1).Shape, dy)
			ds = []*tensor.Tensor{da, db}
		case *ops.Pad:
			var full []int
			if full, err = o.FullPads(len(in(0).Shape), in(1), in(3)); err == nil {
				var dx *tensor.Tensor
				dx, err = refgrad.Pad(in(0).Shape, full, dy)
				ds = []*tensor.Tensor{dx}
			}
		default:
			t.Fatalf("reference backward: %s", n)
		}
		if err != nil {
			t.Fatalf("reference backward %s: %v", n, err)
		}
		for i, d := range ds {
			if i < len(n.Inputs) {
				add(n.Inputs[i], d)
			}
		}
	}
	out := map[string][]float64{}
	for _, v := range g.Initializers {
		if d := grads[v]; d != nil && v.Const.DType == tensor.Float32 {
			out[v.Name] = tensor.Data[float64](d)
		}
	}
	return loss, out
}

// netBuilder assembles small ONNX models for tests.
type netBuilder struct {
	t     *testing.T
	g     *onnxpb.GraphProto
	r     *rand.Rand
	nodes int
}

func newNet(t *testing.T, input string, dims ...int64) *netBuilder {
	b := &netBuilder{t: t, g: &onnxpb.GraphProto{Name: proto.String("test")}, r: rand.New(rand.NewPCG(42, 7))}
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}}}}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	b.g.Input = append(b.g.Input, &onnxpb.ValueInfoProto{Name: proto.String(input), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: shape}}}})
	return b
}

// param adds a float32 initializer of N(0, scale^2) values (plus shift).
func (b *netBuilder) param(name string, scale, shift float64, shape ...int) string {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(b.r.NormFloat64()*scale + shift)
	}
	return b.init(name, tensor.FromSlice(tensor.Shape(shape), data))
}

func (b *netBuilder) init(name string, t *tensor.Tensor) string {
	tp, err := onnx.EncodeTensor(t, name)
	if err != nil {
		b.t.Fatal(err)
	}
	b.g.Initializer = append(b.g.Initializer, tp)
	return name
}

func (b *netBuilder) node(op string, in []string, attrs ...*onnxpb.AttributeProto) string {
	b.nodes++
	out := fmt.Sprintf("%s_%d", op, b.nodes)
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{Name: proto.String(out), OpType: proto.String(op), Input: in, Output: []string{out}, Attribute: attrs})
	return out
}

func (b *netBuilder) bn(x string, c int) string {
	k := b.nodes
	return b.node("BatchNormalization", []string{x,
		b.param(fmt.Sprintf("bn%d.weight", k), 0.2, 1, c), b.param(fmt.Sprintf("bn%d.bias", k), 0.2, 0, c),
		b.param(fmt.Sprintf("bn%d.running_mean", k), 0.1, 0, c), b.param(fmt.Sprintf("bn%d.running_var", k), 0.1, 1, c)},
		attrF("epsilon", 1e-5), attrF("momentum", 0.9))
}

func (b *netBuilder) build(output string) *graph.Graph {
	b.t.Helper()
	b.g.Output = []*onnxpb.ValueInfoProto{{Name: proto.String(output)}}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: b.g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		b.t.Fatal(err)
	}
	return g
}

func attrI(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrIs(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrF(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// mixedNet uses every operator the trainer differentiates, in the less common forms: strided,
// grouped and biased convolutions, Pad, MaxPool, broadcast and residual Add, Identity, Dropout,
// AveragePool counting padding, Reshape to rank 2, BatchNormalization of rank 2, a rank-2 Concat,
// and Gemms with transposes, alpha, beta and a broadcast C.
func mixedNet(t *testing.T) *graph.Graph {
	b := newNet(t, "x", 3, 12, 12)
	h := b.node("Conv", []string{"x", b.param("ca.w", 0.3, 0, 8, 3, 3, 3), b.param("ca.b", 0.1, 0, 8)},
		attrIs("kernel_shape", 3, 3), attrIs("strides", 2, 2), attrIs("pads", 1, 1, 1, 1))
	h = b.node("Relu", []string{b.bn(h, 8)})
	h = b.node("Pad", []string{h, b.init("pads", tensor.FromSlice(tensor.Shape{8}, []int64{0, 0, 1, 2, 0, 0, 1, 0}))}, &onnxpb.AttributeProto{
		Name: proto.String("mode"), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte("constant")})
	p := b.node("MaxPool", []string{h}, attrIs("kernel_shape", 2, 2), attrIs("strides", 2, 2))
	h = b.node("Conv", []string{p, b.param("cg.w", 0.3, 0, 8, 4, 3, 3), b.param("cg.b", 0.1, 0, 8)},
		attrIs("kernel_shape", 3, 3), attrIs("pads", 1, 1, 1, 1), attrI("group", 2))
	h = b.node("Add", []string{h, b.param("shift", 0.2, 0, 1, 8, 1, 1)})
	h = b.node("Add", []string{h, p})
	h = b.node("Identity", []string{h})
	h = b.node("Dropout", []string{h})
	h = b.node("AveragePool", []string{h}, attrIs("kernel_shape", 3, 3), attrIs("strides", 2, 2), attrIs("pads", 1, 1, 1, 1), attrI("count_include_pad", 1))
	h = b.node("Relu", []string{h})
	h = b.node("Reshape", []string{h, b.init("shape", tensor.FromSlice(tensor.Shape{2}, []int64{0, -1}))})
	f := b.bn(h, 32)
	h = b.node("Gemm", []string{f, b.param("g1.w", 0.3, 0, 16, 32), b.param("g1.b", 0.1, 0, 16)}, attrI("transB", 1))
	h = b.node("Relu", []string{h})
	h = b.node("Concat", []string{h, f}, attrI("axis", 1))
	return b.build(b.node("Gemm", []string{h, b.param("g2.w", 0.3, 0, 5, 48), b.param("g2.b", 0.1, 0, 1, 5)},
		attrI("transB", 1), attrF("alpha", 0.5), attrF("beta", 2)))
}

// builtNet returns a small DenseNet from the builders, training form.
func builtNet(t testing.TB, cfg builders.Config) *graph.Graph {
	m, err := builders.Build(cfg, builders.BuildOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// bcConfig is a DenseNet-BC with three blocks on 16x16 CIFAR-style inputs.
func bcConfig() builders.Config {
	return builders.Config{Growth: 6, Blocks: []int{3, 4, 3}, InitFeatures: 12, BNSize: 4, Compression: 0.5,
		Stem: builders.StemCIFAR, Classes: 10, InputSize: 16}
}

// gradTol compares a float32 gradient with the float64 reference: float32 rounding through a few
// dozen layers moves values by about 1e-6 relative to the largest gradient of the tensor.
func gradClose(got []float32, want []float64) (worst float64, ok bool) {
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i, w := range want {
		worst = max(worst, math.Abs(float64(got[i])-w))
	}
	return worst, worst <= 1e-5+2e-4*scale
}

func TestGradientsMatchReference(t *testing.T) {
	cases := []struct {
		name    string
		g       func(t *testing.T) *graph.Graph
		chw     []int
		classes int
		opts    func(o *Options)
	}{
		{"mixed ops", mixedNet, []int{3, 12, 12}, 5, nil},
		{"mixed ops frozen BN statistics", mixedNet, []int{3, 12, 12}, 5, func(o *Options) { o.FreezeBNStats = true }},
		{"DenseNet-BC 3 blocks", func(t *testing.T) *graph.Graph { return builtNet(t, bcConfig()) }, []int{3, 16, 16}, 10, nil},
		{"DenseNet-BC label smoothing", func(t *testing.T) *graph.Graph { return builtNet(t, bcConfig()) }, []int{3, 16, 16}, 10,
			func(o *Options) { o.LabelSmoothing = 0.1 }},
		{"DenseNet-BC frozen BN statistics", func(t *testing.T) *graph.Graph { return builtNet(t, bcConfig()) }, []int{3, 16, 16}, 10,
			func(o *Options) { o.FreezeBNStats = true }},
		{"DenseNet ImageNet stem", func(t *testing.T) *graph.Graph {
			return builtNet(t, builders.Config{Growth: 4, Blocks: []int{2, 2}, InitFeatures: 8, Compression: 1, Stem: builders.StemImageNet, Classes: 6, InputSize: 32})
		}, []int{3, 32, 32}, 6, nil},
	}
	for _, tc := range cases {
		for _, memEff := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/memory-efficient=%v", tc.name, memEff), func(t *testing.T) {
				g := tc.g(t)
				opts := Options{Optim: OptimConfig{LR: 0.01}, MemoryEfficient: memEff, Threads: 3}
				if tc.opts != nil {
					tc.opts(&opts)
				}
				x, labels := randomBatch(5, 4, tc.chw, tc.classes)
				wantLoss, want := referenceStep(t, g, x, labels, opts)
				tr, err := New(g, opts)
				if err != nil {
					t.Fatal(err)
				}
				st, err := tr.Step(t.Context(), x, labels)
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(st.Loss-wantLoss) > 1e-5*max(1, wantLoss) {
					t.Errorf("loss %.8f, reference %.8f", st.Loss, wantLoss)
				}
				worst := 0.0
				for _, p := range tr.params {
					w, ok := want[p.name]
					if !ok {
						t.Errorf("the reference has no gradient for %q", p.name)
						continue
					}
					d, ok := gradClose(p.grad, w)
					worst = max(worst, d)
					if testing.Verbose() && d > 1e-6 {
						sc := 0.0
						for _, x := range w {
							sc = max(sc, math.Abs(x))
						}
						t.Logf("%s: max abs diff %.3g, max |gradient| %.3g", p.name, d, sc)
					}
					if !ok {
						t.Errorf("gradient of %q: max abs diff %g", p.name, d)
					}
				}
				if len(tr.params) != len(want) {
					t.Errorf("%d trained parameters, the reference differentiates %d", len(tr.params), len(want))
				}
				t.Logf("loss %.7f (reference %.7f), %d gradients, max abs diff %.3g", st.Loss, wantLoss, len(tr.params), worst)
			})
		}
	}
}

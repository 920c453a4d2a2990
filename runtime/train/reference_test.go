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

// reference is the exact (float64) reference of one training step, computed by referenceStep.
type reference struct {
	loss float64
	// grads holds the gradient of every float32 initializer the backward pass reaches, by name.
	grads map[string][]float64
	// preact holds, by BatchNormalization node name, the node's output before the ReLU that
	// follows it (NCHW); tieBreaker reads it.
	preact map[string]*tensor.Tensor
	// running holds the running statistics after the step (PyTorch's rule: the batch mean and
	// unbiased variance moved in with weight 1-momentum), by initializer name; empty with
	// FreezeBNStats.
	running map[string][]float64
}

// referenceStep is the exact reference of one training step: the forward pass of g (after
// passes.Training) with the reference kernels of runtime/kernels/ref and the backward pass with
// runtime/train/refgrad, all in float64.
func referenceStep(t *testing.T, g0 *graph.Graph, x *tensor.Tensor, labels []int64, opts Options) *reference {
	t.Helper()
	return referenceRun(t, g0, x, labels, opts, true)
}

// referenceForward is referenceStep without the backward pass (no gradients).
func referenceForward(t *testing.T, g0 *graph.Graph, x *tensor.Tensor, labels []int64, opts Options) *reference {
	t.Helper()
	return referenceRun(t, g0, x, labels, opts, false)
}

func referenceRun(t *testing.T, g0 *graph.Graph, x *tensor.Tensor, labels []int64, opts Options, backward bool) *reference {
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
	train := !opts.FreezeBNStats
	res := &reference{grads: map[string][]float64{}, preact: map[string]*tensor.Tensor{}, running: map[string][]float64{}}
	refForward(t, g, vals, train, nil, func(n *graph.Node, o *ops.BatchNormalization, in []*tensor.Tensor, out *tensor.Tensor) {
		res.preact[n.Name] = out
		if !train {
			return
		}
		mean, unbiased := channelMoments(in[0])
		m := float64(o.Momentum)
		for k, batch := range [][]float64{mean, unbiased} {
			old := in[3+k].Float64s()
			r := make([]float64, len(old))
			for c := range r {
				r[c] = m*old[c] + (1-m)*batch[c]
			}
			res.running[n.Inputs[3+k].Name] = r
		}
	})
	loss, dz, err := refgrad.SoftmaxCrossEntropy(vals[g.Outputs[0]], labels, opts.LabelSmoothing)
	if err != nil {
		t.Fatal(err)
	}
	res.loss = loss
	if !backward {
		return res
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
	for _, v := range g.Initializers {
		if d := grads[v]; d != nil && v.Const.DType == tensor.Float32 {
			res.grads[v.Name] = tensor.Data[float64](d)
		}
	}
	return res
}

// refForward runs g's nodes on vals (the input and every initializer, float data as float64)
// with the reference kernels, BatchNormalization in training mode when train, and stores every
// output, float ones as float64. dropout (nil: the identity) computes the Dropout nodes; bn (nil:
// nothing) sees each BatchNormalization's inputs and output.
func refForward(t testing.TB, g *graph.Graph, vals map[*graph.Value]*tensor.Tensor, train bool,
	dropout func(n *graph.Node, o *ops.Dropout, in []*tensor.Tensor) *tensor.Tensor,
	bn func(n *graph.Node, o *ops.BatchNormalization, in []*tensor.Tensor, out *tensor.Tensor)) {
	t.Helper()
	kernels := ref.Kernels()
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
			if dropout == nil {
				vals[n.Outputs[0]] = in[0]
			} else {
				vals[n.Outputs[0]] = dropout(n, o, in)
			}
			continue
		}
		outs, err := kernels[n.OpType](op, in, 1)
		if err != nil {
			t.Fatalf("reference forward %s: %v", n, err)
		}
		out := outs[0]
		if out.DType.IsFloat() && out.DType != tensor.Float64 {
			out = tensor.FromSlice(out.Shape.Clone(), out.Float64s())
		}
		vals[n.Outputs[0]] = out
		if o, ok := n.Op.(*ops.BatchNormalization); ok && bn != nil {
			bn(n, o, in, out)
		}
	}
}

// channelMoments returns the mean and the unbiased variance of every channel of x [N, C, ...].
func channelMoments(x *tensor.Tensor) (mean, unbiased []float64) {
	d := x.Float64s()
	n, c := x.Shape[0], x.Shape[1]
	s := len(d) / (n * c)
	mean, unbiased = make([]float64, c), make([]float64, c)
	for ch := 0; ch < c; ch++ {
		var sum, sq float64
		for b := 0; b < n; b++ {
			for _, v := range d[(b*c+ch)*s : (b*c+ch+1)*s] {
				sum += v
			}
		}
		mean[ch] = sum / float64(n*s)
		for b := 0; b < n; b++ {
			for _, v := range d[(b*c+ch)*s : (b*c+ch+1)*s] {
				sq += (v - mean[ch]) * (v - mean[ch])
			}
		}
		unbiased[ch] = sq / float64(n*s-1)
	}
	return mean, unbiased
}

// Ties. A ReLU's gradient mask is z > 0 for its input z. Where the exact z is within float32
// rounding of 0, the mask a float32 implementation computes depends on how the whole forward
// pass rounded (accumulation orders, FMA, thread counts), and that one element's gradient then
// moves every gradient upstream. On ../shared/models/finetune_bc28, one element of transition2's
// BN input has the exact pre-activation -7.8e-8; dnx's forward puts it at +7e-7, as does PyTorch
// 1.13 on 2 threads, whose own step-0 gradients then differ from its 1-thread reference by up to
// 4.3e-4 and whose weights after 4 steps differ by 1.7e-3 (dnx: the same 4.3e-4 and 1.7e-3).
//
// tieRel is how close to the kink, relative to the RMS of its channel's pre-activations, an
// element counts as a tie: far above float32 forward error (~1e-6 relative after a few dozen
// layers), far below what a wrong kernel would produce.
const tieRel = 1e-4

// tieBreaker returns a tieBreaker that resolves ReLU ties as the reference does: for every
// element whose reference pre-activation z is within tieRel*RMS of 0, it moves the trainer's BN
// input x so that the trainer's affine map gives z's sign, with |z| at least 1e-6*(|shift|+1),
// above the rounding of x*scale + shift; z = 0 counts as negative (ReLU'(0) = 0, as in PyTorch).
// The inputs are restored after the backward kernel, so only the masks change (and the moved
// elements enter the BN sums with an x off by at most about tieRel*RMS/scale). The number of
// moved elements is added to *moved, and the number of those on the other side of the kink in
// the trainer's forward pass (before moving) to *flipped.
func (ref *reference) tieBreaker(moved, flipped *int) tieBreaker {
	return func(u *bnUnit, c0, nch int, x []float32) func() {
		z := ref.preact[u.node.Name]
		if z == nil {
			return func() {}
		}
		zd := z.Float64s()
		n, c := z.Shape[0], z.Shape[1]
		s := len(zd) / (n * c)
		type saved struct {
			at int
			v  float32
		}
		var undo []saved
		for ch := c0; ch < c0+nch; ch++ {
			var sq float64
			for b := 0; b < n; b++ {
				for _, v := range zd[(b*c+ch)*s : (b*c+ch+1)*s] {
					sq += v * v
				}
			}
			tau := tieRel * math.Sqrt(sq/float64(n*s))
			a, sh := float64(u.scale[ch]), float64(u.shift[ch])
			if a == 0 {
				continue
			}
			floor := 1e-6 * (math.Abs(sh) + 1)
			for b := 0; b < n; b++ {
				for i := 0; i < s; i++ {
					zv := zd[(b*c+ch)*s+i]
					if math.Abs(zv) >= tau {
						continue
					}
					target := max(math.Abs(zv), floor)
					if zv <= 0 {
						target = -target
					}
					at := (ch-c0)*u.stride + b*s + i
					if own := float64(x[at])*a + sh; (own > 0) != (zv > 0) {
						*flipped++
					}
					undo = append(undo, saved{at, x[at]})
					x[at] = float32((target - sh) / a)
				}
			}
		}
		*moved += len(undo)
		return func() {
			for _, e := range undo {
				x[e.at] = e.v
			}
		}
	}
}

// netBuilder assembles small ONNX models for tests.
type netBuilder struct {
	t     testing.TB
	g     *onnxpb.GraphProto
	r     *rand.Rand
	opset int
	nodes int
}

// newNet starts an opset-13 graph with one float32 input [batch, dims...], batch symbolic.
func newNet(t testing.TB, input string, dims ...int64) *netBuilder {
	return newNetAt(t, 13, 0, rand.New(rand.NewPCG(42, 7)), input, dims...)
}

// newNetAt starts a graph of the given opset with one float32 input [batch, dims...]; batch 0 is
// the symbolic dim "batch". r draws the parameters.
func newNetAt(t testing.TB, opset int, batch int64, r *rand.Rand, input string, dims ...int64) *netBuilder {
	b := &netBuilder{t: t, g: &onnxpb.GraphProto{Name: proto.String("test")}, r: r, opset: opset}
	d0 := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}}
	if batch > 0 {
		d0 = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: batch}}
	}
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{d0}}
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
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(int64(b.opset))}}}
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
	h = b.node("Dropout", []string{h, b.init("drop_ratio", tensor.FromSlice(tensor.Shape{}, []float32{0}))})
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

// gradClose compares a float32 gradient with the float64 reference: float32 rounding through
// a few dozen layers moves values by about 1e-6 relative to the largest gradient of the tensor;
// the bound is gradAtol + gradRtol*max|reference|.
func gradClose(got []float32, want []float64) (worst float64, ok bool) {
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i, w := range want {
		worst = max(worst, math.Abs(float64(got[i])-w))
	}
	return worst, worst <= gradAtol+gradRtol*scale
}

// Tolerances of the whole-network gradient checks against the float64 reference (with ReLU
// ties resolved as the reference does, see tieBreaker): float32 rounding gives relative errors
// of about 1e-6 of a tensor's largest gradient after a few dozen layers, and a gradient that is
// 0 in exact arithmetic (a convolution's bias followed by BatchNormalization) comes out as the
// rounding of a sum of cancelling terms, a few 1e-7 (gradients here are 1e-4 to 1e-1).
const (
	gradAtol = 5e-7
	gradRtol = 2e-5
)

package passes

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Tolerances for before/after comparisons: folding reassociates float32 arithmetic, so results
// move by a few ulps of values of magnitude ~1-10.
const (
	passRtol = 1e-5
	passAtol = 1e-5
)

// modelBuilder assembles a small ONNX model for pass tests; build imports it with the default
// registry, so tests exercise the same decoding and inference as real models.
type modelBuilder struct {
	t     *testing.T
	opset int64
	g     *onnxpb.GraphProto
	nodes int
}

func newModel(t *testing.T, opset int64) *modelBuilder {
	return &modelBuilder{t: t, opset: opset, g: &onnxpb.GraphProto{Name: proto.String("test")}}
}

// input declares a float32 graph input; dims are ints or strings (symbolic).
func (b *modelBuilder) input(name string, dims ...any) *modelBuilder {
	b.g.Input = append(b.g.Input, vinfo(name, tensor.Float32, dims...))
	return b
}

// output declares a graph output with an unranked float32 type (inference fills it).
func (b *modelBuilder) output(names ...string) *modelBuilder {
	for _, n := range names {
		b.g.Output = append(b.g.Output, &onnxpb.ValueInfoProto{Name: proto.String(n), Type: &onnxpb.TypeProto{
			Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32))}}}})
	}
	return b
}

func (b *modelBuilder) init(name string, t *tensor.Tensor) *modelBuilder {
	tp, err := onnx.EncodeTensor(t, name)
	if err != nil {
		b.t.Fatal(err)
	}
	b.g.Initializer = append(b.g.Initializer, tp)
	return b
}

// node adds a node named after its op and position.
func (b *modelBuilder) node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *modelBuilder {
	b.nodes++
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{
		Name: proto.String(fmt.Sprintf("%s_%d", op, b.nodes)), OpType: proto.String(op),
		Input: in, Output: out, Attribute: attrs,
	})
	return b
}

// doc sets the doc_string of the node added last.
func (b *modelBuilder) doc(s string) *modelBuilder {
	b.g.Node[len(b.g.Node)-1].DocString = proto.String(s)
	return b
}

// model returns the ModelProto built so far, for tests that set model-level fields before import.
func (b *modelBuilder) model() *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(b.opset)}},
		Graph:       b.g,
	}
}

func (b *modelBuilder) build() *graph.Graph {
	b.t.Helper()
	g, err := graph.Import(b.model(), "", ops.Default())
	if err != nil {
		b.t.Fatalf("import: %v", err)
	}
	if err := g.Validate(); err != nil {
		b.t.Fatalf("imported graph is invalid: %v", err)
	}
	return g
}

func vinfo(name string, dt tensor.DType, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch d := d.(type) {
		case int:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
		case string:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt)), Shape: shape}}}}
}

func aInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func aInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func aStr(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

func aFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func aTensor(t *testing.T, name string, v *tensor.Tensor) *onnxpb.AttributeProto {
	tp, err := onnx.EncodeTensor(v, "")
	if err != nil {
		t.Fatal(err)
	}
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: tp}
}

// randTensor returns a float32 tensor of uniform values in [lo, hi).
func randTensor(rng *rand.Rand, lo, hi float64, shape ...int) *tensor.Tensor {
	s := tensor.Shape(shape)
	d := make([]float32, s.Size())
	for i := range d {
		d[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return tensor.FromSlice(s, d)
}

// bnParams adds the four BatchNormalization parameters prefix.{scale,B,mean,var} for c channels,
// far from the identity so that a mistake in folding shows.
func (b *modelBuilder) bnParams(rng *rand.Rand, prefix string, c int) []string {
	names := []string{prefix + ".scale", prefix + ".B", prefix + ".mean", prefix + ".var"}
	b.init(names[0], randTensor(rng, 0.5, 1.5, c))
	b.init(names[1], randTensor(rng, -0.5, 0.5, c))
	b.init(names[2], randTensor(rng, -0.5, 0.5, c))
	b.init(names[3], randTensor(rng, 0.2, 2, c))
	return names
}

// runRef runs g with the reference kernels (every domain, FusedConv included) on feeds, which
// hold one tensor per graph input, and returns the outputs by name. It is a minimal executor so
// that fused graphs can be checked before exec accepts the dnx domain.
func runRef(t *testing.T, g *graph.Graph, feeds map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	t.Helper()
	kernels := ref.Kernels()
	vals := map[*graph.Value]*tensor.Tensor{}
	for _, v := range g.Inputs {
		x, ok := feeds[v.Name]
		if !ok {
			t.Fatalf("no feed for input %q", v.Name)
		}
		vals[v] = x
	}
	for _, v := range g.Initializers {
		vals[v] = v.Const
	}
	for _, n := range g.Nodes {
		k, ok := kernels[n.OpType]
		if !ok {
			t.Fatalf("%s: no reference kernel", n)
		}
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, v := range n.Inputs {
			if v != nil {
				x, ok := vals[v]
				if !ok {
					t.Fatalf("%s: input %q not computed yet", n, v.Name)
				}
				in[i] = x
			}
		}
		out, err := k(n.Op, in, len(n.Outputs))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for i, v := range n.Outputs {
			if v != nil {
				vals[v] = out[i]
			}
		}
	}
	res := map[string]*tensor.Tensor{}
	for _, v := range g.Outputs {
		res[v.Name] = vals[v]
	}
	return res
}

// randomFeeds makes one random float32 tensor per graph input not in fixed, resolving symbolic
// dims to batch, and takes the others from fixed.
func randomFeeds(g *graph.Graph, rng *rand.Rand, batch int, fixed map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	feeds := map[string]*tensor.Tensor{}
	for _, v := range g.Inputs {
		if x, ok := fixed[v.Name]; ok {
			feeds[v.Name] = x
			continue
		}
		shape := make([]int, len(v.Type.Shape))
		for i, d := range v.Type.Shape {
			shape[i] = batch
			if d.IsKnown() {
				shape[i] = int(d.Value)
			}
		}
		feeds[v.Name] = randTensor(rng, -2, 2, shape...)
	}
	return feeds
}

func outputNames(g *graph.Graph) []string {
	names := make([]string, len(g.Outputs))
	for i, v := range g.Outputs {
		names[i] = v.Name
	}
	return names
}

// checkPass runs the four checks every pass test makes (STYLE habit 5): whether the pass fired,
// the op histogram after it, the graph output names, and the outputs on random inputs before and
// after, within passRtol/passAtol. It also checks that the graph stays valid and that a second
// run changes nothing (the pass reaches its fixed point in one run). It returns the graph.
func checkPass(t *testing.T, g *graph.Graph, p Pass, wantChanged bool, wantOps map[string]int) *graph.Graph {
	t.Helper()
	return checkPassFeeds(t, g, p, wantChanged, wantOps, nil)
}

// checkPassFeeds is checkPass with some inputs given (non-float ones must be).
func checkPassFeeds(t *testing.T, g *graph.Graph, p Pass, wantChanged bool, wantOps map[string]int, fixed map[string]*tensor.Tensor) *graph.Graph {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	feeds := randomFeeds(g, rng, 2, fixed)
	before := runRef(t, g, feeds)
	names := outputNames(g)
	changed, err := p.Run(g)
	if err != nil {
		t.Fatalf("%s: %v", p.Name(), err)
	}
	if changed != wantChanged {
		t.Errorf("%s reported changed = %v, want %v", p.Name(), changed, wantChanged)
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("%s left an invalid graph: %v", p.Name(), err)
	}
	if got := g.OpHistogram(); !maps.Equal(got, wantOps) {
		t.Errorf("ops after %s = %v, want %v", p.Name(), got, wantOps)
	}
	if got := outputNames(g); !slices.Equal(got, names) {
		t.Errorf("graph outputs after %s = %v, want %v", p.Name(), got, names)
	}
	if again, err := p.Run(g); err != nil || again {
		t.Errorf("second run of %s: changed = %v, err = %v; want false, nil", p.Name(), again, err)
	}
	after := runRef(t, g, feeds)
	for _, name := range names {
		if err := tensor.AllClose(after[name], before[name], passRtol, passAtol); err != nil {
			t.Errorf("output %q after %s: %v", name, p.Name(), err)
		}
	}
	return g
}

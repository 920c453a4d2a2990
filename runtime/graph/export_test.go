package graph_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// roundTrip exports g, serializes, parses and imports the result.
func roundTrip(t *testing.T, g *graph.Graph, reg *ops.Registry) (*graph.Graph, []byte) {
	t.Helper()
	m, err := graph.Export(g)
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.MarshalModel(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := onnx.ReadModel(data)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := graph.Import(m2, "", reg)
	if err != nil {
		t.Fatalf("re-import: %v", err)
	}
	return g2, data
}

// TestExportRoundTripModels exports the shared PyTorch models and checks that the re-imported
// graph has the same nodes, values, types and initializers, runs to bit-identical outputs, and
// exports to the same bytes again.
func TestExportRoundTripModels(t *testing.T) {
	cases := []struct{ dir, model, input string }{
		{"densenet_tiny", "model.onnx", "test_data_set_0/input_0.pb"},
		{"finetune_tiny", "model_before.onnx", "x.pb"},
	}
	for _, c := range cases {
		t.Run(c.dir+"/"+c.model, func(t *testing.T) {
			dir := testenv.Shared(t, filepath.Join("models", c.dir))
			g, err := graph.Load(filepath.Join(dir, c.model))
			if err != nil {
				t.Fatal(err)
			}
			g2, data := roundTrip(t, g, ops.Default())
			if g2.IRVersion != g.IRVersion || g2.Opsets[""] != g.Opsets[""] || g2.ProducerName != g.ProducerName || g2.Name != g.Name {
				t.Errorf("model header: IR %d opset %d producer %q name %q; want %d %d %q %q",
					g2.IRVersion, g2.Opsets[""], g2.ProducerName, g2.Name, g.IRVersion, g.Opsets[""], g.ProducerName, g.Name)
			}
			if got, want := headerOf(g2), headerOf(g); !reflect.DeepEqual(got, want) {
				t.Errorf("model description after the round trip:\n got  %+v\n want %+v", got, want)
			}
			if len(g2.Nodes) != len(g.Nodes) {
				t.Fatalf("%d nodes, want %d", len(g2.Nodes), len(g.Nodes))
			}
			for i, n := range g.Nodes {
				n2 := g2.Nodes[i]
				if n2.Name != n.Name || n2.OpType != n.OpType || len(n2.Attrs) != len(n.Attrs) {
					t.Errorf("node %d: %s with %d attrs, want %s with %d", i, n2, len(n2.Attrs), n, len(n.Attrs))
				}
			}
			for _, v := range g.Values() {
				v2 := g2.Value(v.Name)
				if v2 == nil || v2.Type.String() != v.Type.String() {
					t.Errorf("value %q: %v, want type %s", v.Name, v2, v.Type)
					continue
				}
				if v.IsConst() {
					if err := tensor.AllClose(v2.Const, v.Const, 0, 0); err != nil {
						t.Errorf("initializer %q: %v", v.Name, err)
					}
				}
			}
			if !slices.Equal(names(g2.Initializers), names(g.Initializers)) {
				t.Errorf("initializer order changed")
			}

			x, _, err := onnx.ReadTensorFile(filepath.Join(dir, c.input))
			if err != nil {
				t.Fatal(err)
			}
			y1, y2 := run(t, g, x), run(t, g2, x)
			if err := tensor.AllClose(y2, y1, 0, 0); err != nil {
				t.Errorf("re-imported model output: %v", err)
			}

			_, again := roundTrip(t, g2, ops.Default())
			if !bytes.Equal(again, data) {
				t.Error("exporting the re-imported graph gives different bytes")
			}
		})
	}
}

func names(vs []*graph.Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

func run(t *testing.T, g *graph.Graph, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	s, err := exec.New(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// anyOp accepts any inputs and attributes; output 0 has input 0's type.
type anyOp struct{}

func (anyOp) OpType() string { return "Any" }
func (anyOp) Infer(in []*ops.Arg) ([]ops.Type, error) {
	return []ops.Type{in[0].Type}, nil
}

func anyRegistry() *ops.Registry {
	return ops.NewRegistry(ops.Schema{OpType: "Any", Since: 1, Decode: func(*ops.Node) (ops.Op, error) { return anyOp{}, nil }})
}

func tensorType(dims ...any) *onnxpb.TypeProto {
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
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1), Shape: shape}}}
}

// attrModel has one node carrying an attribute of every kind dnx decodes, an unknown dim and an
// optional (empty) input.
func attrModel(ir int64) *onnxpb.ModelProto {
	w, _ := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{2}, []float32{1, 2}), "w")
	at, _ := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{2, 1}, []int64{7, 8}), "")
	attrs := []*onnxpb.AttributeProto{
		{Name: proto.String("f"), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(0.5)},
		{Name: proto.String("fs"), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: []float32{1, -2}},
		{Name: proto.String("i"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(-3)},
		{Name: proto.String("is"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{4, 5}},
		{Name: proto.String("s"), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte("hi")},
		{Name: proto.String("ss"), Type: onnxpb.AttributeProto_STRINGS.Enum(), Strings: [][]byte{[]byte("a"), []byte("b")}},
		{Name: proto.String("t"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: at},
	}
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(ir),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(7)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("attrs"),
			Input:       []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: tensorType("batch", nil, 2)}},
			Output:      []*onnxpb.ValueInfoProto{{Name: proto.String("y"), Type: tensorType("batch", nil, 2)}},
			Initializer: []*onnxpb.TensorProto{w},
			Node: []*onnxpb.NodeProto{{Name: proto.String("n"), OpType: proto.String("Any"),
				Input: []string{"x", "", "w"}, Output: []string{"y"}, Attribute: attrs}},
		},
	}
}

func TestExportAttributesAndTypes(t *testing.T) {
	for _, ir := range []int64{3, 8} {
		m := attrModel(ir)
		g, err := graph.Import(m, "", anyRegistry())
		if err != nil {
			t.Fatal(err)
		}
		out, err := graph.Export(g)
		if err != nil {
			t.Fatal(err)
		}
		np := out.GetGraph().GetNode()[0]
		if !slices.Equal(np.GetInput(), []string{"x", "", "w"}) {
			t.Errorf("IR %d: node inputs %q", ir, np.GetInput())
		}
		want := m.GetGraph().GetNode()[0].GetAttribute()
		if len(np.GetAttribute()) != len(want) {
			t.Fatalf("IR %d: %d attributes, want %d", ir, len(np.GetAttribute()), len(want))
		}
		for i, a := range np.GetAttribute() {
			if !proto.Equal(a, want[i]) {
				t.Errorf("IR %d: attribute %d = %v, want %v", ir, i, a, want[i])
			}
		}
		if !proto.Equal(out.GetGraph().GetOutput()[0].GetType(), m.GetGraph().GetOutput()[0].GetType()) {
			t.Errorf("IR %d: output type %v, want %v", ir, out.GetGraph().GetOutput()[0].GetType(), m.GetGraph().GetOutput()[0].GetType())
		}
		inputs := len(out.GetGraph().GetInput())
		if wantIn := map[int64]int{3: 2, 8: 1}[ir]; inputs != wantIn {
			t.Errorf("IR %d: %d graph inputs, want %d (IR 3 lists initializers as inputs)", ir, inputs, wantIn)
		}
		if _, err := graph.Import(out, "", anyRegistry()); err != nil {
			t.Errorf("IR %d: re-import: %v", ir, err)
		}
	}
}

func TestExportRefusesFusedOps(t *testing.T) {
	dir := testenv.Shared(t, "models/densenet_tiny")
	g, err := graph.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range g.Nodes {
		if c, ok := n.Op.(*ops.Conv); ok {
			f := &ops.FusedConv{Conv: *c, Post: ops.Activation{Kind: ops.ActRelu}}
			n.Op, n.OpType, n.Domain, n.Attrs = f, f.OpType(), ops.DomainDNX, ops.FusedConvAttrs(n.Attrs, f)
			_, err := graph.Export(g)
			if !errors.Is(err, graph.ErrNotExportable) || !strings.Contains(err.Error(), n.Name) {
				t.Errorf("Export = %v, want ErrNotExportable naming %q", err, n.Name)
			}
			return
		}
	}
	t.Fatal("no Conv in densenet_tiny")
}

package graph

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"google.golang.org/protobuf/proto"
)

// passOp is a test operator: output 0 has the type of input 0.
type passOp struct{}

func (passOp) OpType() string { return "Pass" }
func (passOp) Infer(in []*ops.Arg) ([]ops.Type, error) {
	if len(in) == 0 || in[0] == nil {
		return []ops.Type{{DType: tensor.Float32, Unranked: true}}, nil
	}
	return []ops.Type{in[0].Type}, nil
}

func testRegistry() *ops.Registry {
	return ops.NewRegistry(ops.Schema{OpType: "Pass", Since: 1, Decode: func(n *ops.Node) (ops.Op, error) {
		if err := ops.CheckArity(n, 0, 3, 1, 1); err != nil {
			return nil, err
		}
		return passOp{}, nil
	}})
}

func valueInfo(name string, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1), Shape: shape}}}}
}

func node(name, op string, in, out []string) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: out}
}

// chain returns a valid model x -> a -> b -> y.
func chain() *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("g"),
			Input:  []*onnxpb.ValueInfoProto{valueInfo("x", "batch", 3)},
			Output: []*onnxpb.ValueInfoProto{valueInfo("y", "batch", 3)},
			Node: []*onnxpb.NodeProto{
				node("n2", "Pass", []string{"a"}, []string{"y"}), // out of order on purpose
				node("n1", "Pass", []string{"x"}, []string{"a"}),
			},
		},
	}
}

func TestImportSortsAndKeepsSymbolicDims(t *testing.T) {
	g, err := Import(chain(), "", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if g.Nodes[0].Name != "n1" || g.Nodes[1].Name != "n2" {
		t.Errorf("order %s, %s; want n1, n2", g.Nodes[0].Name, g.Nodes[1].Name)
	}
	if got := g.Outputs[0].Type.String(); got != "float32[batch,3]" {
		t.Errorf("output type %s, want float32[batch,3]", got)
	}
	if err := g.SetInputShapes(map[string]tensor.Shape{"x": {4, 3}}); err != nil {
		t.Fatal(err)
	}
	if got := g.Outputs[0].Type.String(); got != "float32[4,3]" {
		t.Errorf("after SetInputShapes: %s, want float32[4,3]", got)
	}
	if err := g.SetInputShapes(map[string]tensor.Shape{"x": {4, 5}}); err == nil {
		t.Error("SetInputShapes accepted a shape that contradicts a known dim")
	}
}

func TestImportRejectsBadGraphs(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *onnxpb.ModelProto)
		want   string
	}{
		{"cycle", func(m *onnxpb.ModelProto) {
			m.Graph.Node[1].Input = []string{"y"}
		}, "cycle"},
		{"dangling input", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Input = []string{"nowhere"}
		}, `input 0 "nowhere"`},
		{"duplicate output", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Output = []string{"a"}
		}, `output "a" is already defined`},
		{"output shadows input", func(m *onnxpb.ModelProto) {
			m.Graph.Node[1].Output = []string{"x"}
		}, `already defined (as a graph input)`},
		{"missing graph output", func(m *onnxpb.ModelProto) {
			m.Graph.Output[0].Name = proto.String("zzz")
		}, `graph output "zzz"`},
		{"unknown op", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].OpType = proto.String("Frobnicate")
		}, `node "n2": unsupported operator: Frobnicate (domain "ai.onnx", opset 13)`},
		{"domain not imported", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Domain = proto.String("com.example")
		}, `domain "com.example" is not imported`},
		{"duplicate input", func(m *onnxpb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, valueInfo("x", 1))
		}, `graph input "x" is listed twice`},
		{"sequence input", func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{}}}
		}, "sequence value types are not supported"},
		{"no op type", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].OpType = nil
		}, "has no op_type"},
		{"graph attribute", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("body"),
				Type: onnxpb.AttributeProto_GRAPH.Enum(), G: &onnxpb.GraphProto{}}}
		}, `attribute "body": GRAPH attributes are not supported`},
		{"duplicate attribute", func(m *onnxpb.ModelProto) {
			a := &onnxpb.AttributeProto{Name: proto.String("k"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}
			m.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{a, a}
		}, `attribute "k" is given twice`},
		{"no graph", func(m *onnxpb.ModelProto) { m.Graph = nil }, "no graph"},
		{"huge declared rank", func(m *onnxpb.ModelProto) {
			dims := make([]any, 40)
			for i := range dims {
				dims[i] = 1
			}
			m.Graph.Input[0] = valueInfo("x", dims...)
		}, "rank 40"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := chain()
			c.mutate(m)
			_, err := Import(m, "", testRegistry())
			if err == nil {
				t.Fatalf("Import succeeded, want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestImportUnsupportedOpIsCheckable(t *testing.T) {
	m := chain()
	m.Graph.Node[0].OpType = proto.String("Frobnicate")
	_, err := Import(m, "", testRegistry())
	if !errors.Is(err, ops.ErrUnsupportedOp) {
		t.Errorf("error %v does not wrap ops.ErrUnsupportedOp", err)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	g, err := Import(chain(), "", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Clone(testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("clone is invalid: %v", err)
	}
	if err := c.RenameValue(c.Value("a"), "renamed"); err != nil {
		t.Fatal(err)
	}
	c.Nodes[0].Attrs["k"] = ops.Attribute{Kind: ops.AttrInt, Int: 1}
	if g.Value("a") == nil || g.Value("renamed") != nil || g.Nodes[0].Attrs.Has("k") || g.Nodes[0].Outputs[0] == c.Nodes[0].Outputs[0] {
		t.Error("changing the clone changed the original")
	}
	if err := g.Validate(); err != nil {
		t.Errorf("original invalid after editing the clone: %v", err)
	}
}

// TestImportOpsetRange checks that Import refuses a default-domain opset outside
// ops.MinOpset..ops.MaxOpset, under both spellings of the domain, and only for that domain.
func TestImportOpsetRange(t *testing.T) {
	tests := []struct {
		version int64
		ok      bool
	}{
		{-1, false},
		{0, false},
		{ops.MinOpset - 1, false},
		{ops.MinOpset, true},
		{13, true},
		{ops.MaxOpset, true},
		{ops.MaxOpset + 1, false},
		{30, false},
		{1<<32 + 13, false}, // 13 once truncated to 32 bits
	}
	for _, domain := range []string{"", "ai.onnx"} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%q/%d", domain, tc.version), func(t *testing.T) {
				m := chain()
				m.OpsetImport = []*onnxpb.OperatorSetIdProto{{Domain: proto.String(domain), Version: proto.Int64(tc.version)}}
				g, err := Import(m, "", testRegistry())
				if tc.ok {
					if err != nil {
						t.Fatal(err)
					}
					if got := g.Opsets[""]; got != int(tc.version) {
						t.Errorf("Opsets[\"\"] = %d, want %d", got, tc.version)
					}
					return
				}
				want := fmt.Sprintf("unsupported opset: default-domain opset %d (dnx supports %d to %d)", tc.version, ops.MinOpset, ops.MaxOpset)
				if !errors.Is(err, ErrUnsupportedOpset) || err.Error() != want {
					t.Errorf("err = %v, want %q wrapping ErrUnsupportedOpset", err, want)
				}
			})
		}
	}
	// Other domains keep their own versioning: a custom domain at version 30 is no error.
	m := chain()
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.example"), Version: proto.Int64(30)})
	if _, err := Import(m, "", testRegistry()); err != nil {
		t.Errorf("custom domain at version 30: %v", err)
	}
}

// TestLoadErrorsNameTheModel checks that the errors of Load for an opset out of range and for
// external data that is not a regular file are one line naming the model file and, for the
// latter, the initializer and the location.
func TestLoadErrorsNameTheModel(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "weights"), 0o755); err != nil {
		t.Fatal(err)
	}
	ext := &onnxpb.TensorProto{
		Name: proto.String("w"), DataType: proto.Int32(int32(tensor.Float32)), Dims: []int64{2},
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("weights")}},
	}
	tests := []struct {
		name   string
		mutate func(m *onnxpb.ModelProto)
		want   string // after "<path>: "
	}{
		{"opset 30", func(m *onnxpb.ModelProto) { m.OpsetImport[0].Version = proto.Int64(30) },
			"unsupported opset: default-domain opset 30 (dnx supports 1 to 25)"},
		{"external data in a directory", func(m *onnxpb.ModelProto) { m.Graph.Initializer = []*onnxpb.TensorProto{ext} },
			`initializer "w": tensor "w": invalid external tensor data: location "weights" is a directory, not a regular file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := chain()
			tc.mutate(m)
			path := filepath.Join(dir, "model.onnx")
			if err := onnx.WriteModelFile(path, m); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if want := path + ": " + tc.want; err == nil || err.Error() != want {
				t.Errorf("err = %v\nwant %s", err, want)
			}
		})
	}
}

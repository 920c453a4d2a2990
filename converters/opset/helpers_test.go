package opset

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// builder assembles a small ModelProto in code.
type builder struct {
	t *testing.T
	m *onnxpb.ModelProto
}

// newModel starts a model at the given default-domain opset with the IR version it needs.
func newModel(t *testing.T, opset int) *builder {
	return &builder{t: t, m: &onnxpb.ModelProto{
		IrVersion:    proto.Int64(minIRVersion(opset)),
		ProducerName: proto.String("opset_test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(int64(opset))}},
		Graph:        &onnxpb.GraphProto{Name: proto.String("g")},
	}}
}

// tensorType returns a tensor TypeProto; a negative dim is the symbolic dim "N".
func tensorType(dt tensor.DType, dims ...int64) *onnxpb.TypeProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
		if d < 0 {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
		ElemType: proto.Int32(int32(dt)), Shape: shape}}}
}

func (b *builder) input(name string, dt tensor.DType, dims ...int64) *builder {
	b.m.Graph.Input = append(b.m.Graph.Input, &onnxpb.ValueInfoProto{Name: proto.String(name), Type: tensorType(dt, dims...)})
	return b
}

// output declares graph outputs with no type (dnx infers them).
func (b *builder) output(names ...string) *builder {
	for _, n := range names {
		b.m.Graph.Output = append(b.m.Graph.Output, &onnxpb.ValueInfoProto{Name: proto.String(n)})
	}
	return b
}

func (b *builder) init(name string, t *tensor.Tensor) *builder {
	tp, err := onnx.EncodeTensor(t, name)
	if err != nil {
		b.t.Fatal(err)
	}
	b.m.Graph.Initializer = append(b.m.Graph.Initializer, tp)
	return b
}

func (b *builder) ints(name string, v ...int64) *builder {
	return b.init(name, tensor.FromSlice(tensor.Shape{len(v)}, v))
}

// node adds a default-domain node named after its first output.
func (b *builder) node(op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *builder {
	b.m.Graph.Node = append(b.m.Graph.Node, &onnxpb.NodeProto{
		Name: proto.String(op + "_" + outputs[0]), OpType: proto.String(op), Domain: proto.String(""),
		Input: inputs, Output: outputs, Attribute: attrs,
	})
	return b
}

func (b *builder) build() *onnxpb.ModelProto { return b.m }

func ins(s ...string) []string { return s }

func strAttr(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// feeds returns random inputs for every graph input that is not an initializer: floats in
// [-2, 2), integers in [0, 3), from a fixed seed.
func feeds(t *testing.T, m *onnxpb.ModelProto, seed uint64) []*tensor.Tensor {
	t.Helper()
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	var out []*tensor.Tensor
	for _, v := range g.Inputs {
		shape, ok := v.Type.Static()
		if !ok {
			// Symbolic dims get size 2.
			for _, d := range v.Type.Shape {
				n := 2
				if d.IsKnown() {
					n = int(d.Value)
				}
				shape = append(shape, n)
			}
		}
		x := tensor.New(v.Type.DType, shape)
		switch d := x.Data.(type) {
		case []float32:
			for i := range d {
				d[i] = float32(r.Float64()*4 - 2)
			}
		case []float64:
			for i := range d {
				d[i] = r.Float64()*4 - 2
			}
		case []int64:
			for i := range d {
				d[i] = int64(r.IntN(3))
			}
		case []int32:
			for i := range d {
				d[i] = int32(r.IntN(3))
			}
		case []bool:
			for i := range d {
				d[i] = r.IntN(2) == 1
			}
		default:
			t.Fatalf("feeds: no generator for %s", v.Type.DType)
		}
		out = append(out, x)
	}
	return out
}

// run imports m with dnx and runs it on inputs.
func run(t *testing.T, m *onnxpb.ModelProto, inputs []*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatalf("import (opset %d): %v", opsetOf(m), err)
	}
	s, err := exec.New(g)
	if err != nil {
		t.Fatalf("compile (opset %d): %v", opsetOf(m), err)
	}
	out, err := s.Run(context.Background(), inputs)
	if err != nil {
		t.Fatalf("run (opset %d): %v", opsetOf(m), err)
	}
	return out
}

func opsetOf(m *onnxpb.ModelProto) int {
	v, _ := defaultOpset(m)
	return v
}

// sameOutputs requires bit-identical outputs (NaN equal to NaN).
func sameOutputs(t *testing.T, what string, got, want []*tensor.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
	for i := range want {
		if err := tensor.AllClose(got[i], want[i], 0, 0); err != nil {
			t.Errorf("%s: output %d: %v", what, i, err)
		}
	}
}

// convert runs Convert and checks that it left its input alone and produced a valid header.
func convert(t *testing.T, m *onnxpb.ModelProto, target int) (*onnxpb.ModelProto, error) {
	t.Helper()
	before := proto.Clone(m)
	out, err := Convert(m, target)
	if !proto.Equal(before, m) {
		t.Fatalf("Convert modified its input model")
	}
	if err != nil {
		return nil, err
	}
	if got := opsetOf(out); got != target {
		t.Errorf("converted opset_import says %d, want %d", got, target)
	}
	if ir := out.GetIrVersion(); ir < minIRVersion(target) || ir < m.GetIrVersion() {
		t.Errorf("converted ir_version %d (was %d) is below what opset %d needs (%d)", ir, m.GetIrVersion(), target, minIRVersion(target))
	}
	return out, nil
}

// nodeOps lists the op types of the main graph in order.
func nodeOps(m *onnxpb.ModelProto) string {
	var s []string
	for _, n := range m.GetGraph().GetNode() {
		s = append(s, n.GetOpType())
	}
	return strings.Join(s, ",")
}

// findNode returns the first node of the given op type.
func findNode(t *testing.T, m *onnxpb.ModelProto, op string) *onnxpb.NodeProto {
	t.Helper()
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == op {
			return n
		}
	}
	t.Fatalf("no %s node in %s", op, nodeOps(m))
	return nil
}

func getAttr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func initNames(m *onnxpb.ModelProto) map[string]bool {
	out := map[string]bool{}
	for _, tp := range m.GetGraph().GetInitializer() {
		out[tp.GetName()] = true
	}
	return out
}

// wantRefusal checks that err is an ErrUnconvertible naming every given fragment.
func wantRefusal(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("conversion succeeded, want a refusal mentioning %q", fragments)
	}
	if !errors.Is(err, ErrUnconvertible) {
		t.Fatalf("error %q does not wrap ErrUnconvertible", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

func describe(m *onnxpb.ModelProto) string {
	var b strings.Builder
	for _, n := range m.GetGraph().GetNode() {
		fmt.Fprintf(&b, "%s(%s)->%s ", n.GetOpType(), strings.Join(n.GetInput(), ","), strings.Join(n.GetOutput(), ","))
	}
	return b.String()
}

// dump writes m, its inputs and dnx's outputs under $DNX_OPSET_DUMP/name/ (as model.onnx and
// test_data_set_0/{input,output}_K.pb), so that other runtimes and checkers can be pointed at the
// converted models. It does nothing when the variable is unset.
func dump(t *testing.T, name string, m *onnxpb.ModelProto, inputs, outputs []*tensor.Tensor) {
	t.Helper()
	root := os.Getenv("DNX_OPSET_DUMP")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(name))
	set := filepath.Join(dir, "test_data_set_0")
	if err := os.MkdirAll(set, 0o755); err != nil {
		t.Fatal(err)
	}
	// Checkers want typed graph outputs; the test builders leave them to inference.
	m = proto.Clone(m).(*onnxpb.ModelProto)
	for k, vi := range m.Graph.Output {
		if vi.Type == nil && k < len(outputs) {
			dims := make([]int64, len(outputs[k].Shape))
			for i, d := range outputs[k].Shape {
				dims[i] = int64(d)
			}
			vi.Type = tensorType(outputs[k].DType, dims...)
		}
	}
	if err := onnx.WriteModelFile(filepath.Join(dir, "model.onnx"), m); err != nil {
		t.Fatal(err)
	}
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	for k, x := range inputs {
		if err := onnx.WriteTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", k)), x, g.Inputs[k].Name); err != nil {
			t.Fatal(err)
		}
	}
	for k, y := range outputs {
		if err := onnx.WriteTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", k)), y, g.Outputs[k].Name); err != nil {
			t.Fatal(err)
		}
	}
}

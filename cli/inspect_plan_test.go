package cli

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// planJSON is the part of `dnx inspect --plan --json` the tests read.
type planJSON struct {
	InputShapes map[string][]int `json:"input_shapes"`
	Threads     int
	ISA         string
	Steps       []struct {
		Node, Op, Kernel, Why, Prologue, Epilogue, ISA string
		Fast                                           bool
		Outputs                                        []struct {
			Name        string
			Shape       []int
			ArenaOffset *int64 `json:"arena_offset"`
			Bytes       int64
			BatchStride int64 `json:"batch_stride"`
		}
	}
	ArenaBytes   *int64 `json:"arena_bytes"`
	ScratchBytes *int64 `json:"scratch_bytes"`
	NotPlanned   string `json:"not_planned"`
	Lanes        []int
}

func parsePlan(t *testing.T, out string) planJSON {
	t.Helper()
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	return p
}

// checkPlan checks what holds for every plan of a DenseNet: every step fast, every Concat free,
// every arena output inside the arena.
func checkPlan(t *testing.T, p planJSON, batch int) {
	t.Helper()
	if p.ArenaBytes == nil || *p.ArenaBytes <= 0 || len(p.Steps) == 0 || p.NotPlanned != "" {
		t.Fatalf("no plan: arena %v, %d steps, not_planned %q", p.ArenaBytes, len(p.Steps), p.NotPlanned)
	}
	for i, s := range p.Steps {
		if !s.Fast || s.Kernel == "reference" {
			t.Errorf("step %d (%s %s) is %q: %s", i, s.Op, s.Node, s.Kernel, s.Why)
		}
		if s.Op == "Concat" && s.Kernel != "concat-in-place" {
			t.Errorf("step %d (%s) is %q, want concat-in-place", i, s.Node, s.Kernel)
		}
		for _, o := range s.Outputs {
			if o.Shape[0] != batch {
				t.Errorf("step %d output %q has shape %v, want batch %d", i, o.Name, o.Shape, batch)
			}
			if o.ArenaOffset == nil {
				continue
			}
			end := *o.ArenaOffset + o.Bytes
			if o.BatchStride != 0 {
				end = *o.ArenaOffset + int64(batch-1)*o.BatchStride + o.Bytes/int64(batch)
			}
			if *o.ArenaOffset < 0 || end > *p.ArenaBytes {
				t.Errorf("step %d output %q ends at %d, past the %d-byte arena", i, o.Name, end, *p.ArenaBytes)
			}
		}
	}
}

// TestInspectPlanBuilt runs `inspect --plan` on a DenseNet built by dnx: the text table and the
// JSON at another batch.
func TestInspectPlanBuilt(t *testing.T) {
	model := builtTiny(t)
	out := mustSucceed(t, "inspect", model, "--plan", "--threads", "1")
	for _, want := range []string{
		"Plan at input [1,3,16,16]: ",
		"1 thread, CPU kernels ",
		"\n#   node ",
		"  concat-in-place  ",
		"  bn-relu",
		"\nArena: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "Operators (") {
		t.Errorf("--plan printed the model summary too:\n%s", out)
	}
	p := parsePlan(t, mustSucceed(t, "inspect", model, "--plan", "--json", "--batch", "3", "--threads", "1"))
	if !reflect.DeepEqual(p.InputShapes["input"], []int{3, 3, 16, 16}) || p.Threads != 1 || p.ISA == "" {
		t.Errorf("input_shapes %v, threads %d, isa %q; want [3 3 16 16], 1 and the level", p.InputShapes, p.Threads, p.ISA)
	}
	checkPlan(t, p, 3)

	// A batch of 4 on 2 threads runs in lanes of 2 rows: the plan shown is a lane's.
	p = parsePlan(t, mustSucceed(t, "inspect", model, "--plan", "--json", "--batch", "4", "--threads", "2"))
	if !reflect.DeepEqual(p.Lanes, []int{2, 2}) || len(p.Steps) == 0 || p.Steps[0].Outputs[0].Shape[0] != 2 {
		t.Errorf("batch 4 on 2 threads: lanes %v, first output %v; want lanes [2 2] and a plan of 2 rows", p.Lanes, p.Steps[0].Outputs[0].Shape)
	}
	checkPlan(t, p, 2)
	if out := mustSucceed(t, "inspect", model, "--plan", "--batch", "4", "--threads", "2"); !strings.Contains(out, "2 lanes of 2 rows") {
		t.Errorf("text plan of a batch in lanes does not say so:\n%s", out)
	}
}

// TestInspectPlanTiny checks the kernels chosen for the PyTorch export of densenet_tiny, and that
// the arena is the activation memory plain inspect reports for the same shapes.
func TestInspectPlanTiny(t *testing.T) {
	model := filepath.Join(tiny(t), "model.onnx")
	p := parsePlan(t, mustSucceed(t, "inspect", model, "--plan", "--json", "--threads", "1"))
	checkPlan(t, p, 1)
	byNode := map[string]int{}
	for i, s := range p.Steps {
		byNode[s.Node] = i
	}
	for _, tc := range []struct {
		node, kernel, prologue string
	}{
		{"/features/conv0/Conv", "gemm-direct", ""},                             // 3 input channels: no Winograd
		{"/features/denseblock1/denselayer1/conv1/Conv", "gemm-1x1", "bn-relu"}, // the bottleneck
		{"/features/denseblock1/denselayer1/conv2/Conv", "winograd-f2x2", ""},   // 3x3 on 16x16
		{"/features/denseblock1/denselayer2/Concat", "concat-in-place", ""},     // the dense block's buffer
		{"/features/transition1/pool/AveragePool", "avgpool-2x2", "bn-relu"},    // pool before the 1x1 conv
		{"/features/transition1/conv/Conv", "gemm-1x1", ""},                     //
		{"/Flatten", "alias", ""},                                               //
		{"/classifier/Gemm", "gemm-1x1", ""},                                    // Linear as a 1x1 conv
	} {
		i, ok := byNode[tc.node]
		if !ok {
			t.Errorf("no step for node %q", tc.node)
			continue
		}
		if s := p.Steps[i]; s.Kernel != tc.kernel || s.Prologue != tc.prologue {
			t.Errorf("%s: kernel %q prologue %q, want %q and %q", tc.node, s.Kernel, s.Prologue, tc.kernel, tc.prologue)
		}
	}
	var rep struct {
		ActivationBytes int64 `json:"activation_bytes"`
	}
	if err := json.Unmarshal([]byte(mustSucceed(t, "inspect", model, "--json", "--threads", "1")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.ActivationBytes != *p.ArenaBytes {
		t.Errorf("--plan arena %d bytes, inspect's activation_bytes %d", *p.ArenaBytes, rep.ActivationBytes)
	}
}

// reshapeModel writes x float32[2,3], s int64[2] -> Reshape(x, s) -> y: y's shape comes from
// data, so the graph cannot be planned.
func reshapeModel(t *testing.T) string {
	vi := func(name string, dt tensor.DType, dims ...int64) *onnxpb.ValueInfoProto {
		shape := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt)), Shape: shape}}}}
	}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("reshape"),
			Input:  []*onnxpb.ValueInfoProto{vi("x", tensor.Float32, 2, 3), vi("s", tensor.Int64, 2)},
			Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y")}},
			Node:   []*onnxpb.NodeProto{{Name: proto.String("reshape"), OpType: proto.String("Reshape"), Input: []string{"x", "s"}, Output: []string{"y"}}},
		},
	}
	path := filepath.Join(t.TempDir(), "reshape.onnx")
	if err := onnx.WriteModelFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInspectPlanNotPlannable: a graph that cannot be planned is reported with the reason, as a
// result (status 0: dnx run runs it on the reference path), in text and JSON.
func TestInspectPlanNotPlannable(t *testing.T) {
	model := reshapeModel(t)
	out := mustSucceed(t, "inspect", model, "--plan")
	if want := "Plan at x [2,3], s [2]: none: not planned (dnx run uses the reference kernels, one buffer per value): graph cannot be planned statically: value \"y\""; !strings.Contains(out, want) {
		t.Errorf("missing %q in\n%s", want, out)
	}
	p := parsePlan(t, mustSucceed(t, "inspect", model, "--plan", "--json"))
	if p.Steps != nil || p.ArenaBytes != nil || !strings.Contains(p.NotPlanned, "cannot be planned statically") {
		t.Errorf("steps %v arena %v not_planned %q; want null, null and the reason", p.Steps, p.ArenaBytes, p.NotPlanned)
	}
}

func TestInspectPlanUsage(t *testing.T) {
	model := builtTiny(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "--batch 0: want 1.."},
		{[]string{"--batch", "-2"}, "--batch -2: want 1.."},
		{[]string{"--threads", "-1"}, "--threads -1"},
	} {
		_, errOut, status := dnx(t, append([]string{"inspect", model, "--plan"}, tc.args...)...)
		if status != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: status %d, stderr %q; want 2 and %q", tc.args, status, errOut, tc.want)
		}
	}
}

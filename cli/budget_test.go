package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// constantOfShapeModel writes a model of one ConstantOfShape node named "big" whose output y, of
// element type dt, has the shape dims (the int64 initializer "k"): a file of a hundred bytes
// that asks for as much memory as dims say. It takes no inputs.
func constantOfShapeModel(t *testing.T, dims []int64, dt tensor.DType) string {
	t.Helper()
	k, err := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{len(dims)}, dims), "k")
	if err != nil {
		t.Fatal(err)
	}
	value := tensor.New(dt, tensor.Shape{1})
	vt, err := onnx.EncodeTensor(value, "value")
	if err != nil {
		t.Fatal(err)
	}
	node := &onnxpb.NodeProto{Name: proto.String("big"), OpType: proto.String("ConstantOfShape"), Input: []string{"k"}, Output: []string{"y"},
		Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: vt}}}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("budget"), Initializer: []*onnxpb.TensorProto{k}, Node: []*onnxpb.NodeProto{node},
			Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y")}}}}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("big_%s.onnx", dt))
	if err := onnx.WriteModelFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// The hardening issue's probe: a tiny model whose one node asks for gigabytes is refused before
// anything is allocated, with one line naming the node, the output shape, the bytes and the
// budget, under --max-memory and under the default budget; past tensor.MaxElements the import
// refuses the shape instead, also in one line.
func TestRunMemoryBudget(t *testing.T) {
	def := membudget.Default().Limit()
	tests := []struct {
		name  string
		dims  []int64
		dt    tensor.DType
		flags []string
		skip  bool     // the case would allocate on this machine
		want  []string // in the one stderr line
	}{
		{"--max-memory 64M", []int64{65536, 65536}, tensor.Float32, []string{"--max-memory", "64M"}, false,
			[]string{"over the memory budget", `"big"`, "ConstantOfShape", "65536 65536", "16 GiB", "17179869184 bytes", "64 MiB", "--max-memory"}},
		{"--max-memory 0.01%", []int64{65536, 65536}, tensor.Float32, []string{"--max-memory", "0.01%"}, false,
			[]string{"over the memory budget", `"big"`, "16 GiB"}},
		// The probe of the hardening issue (a 127-byte model asking for 16 GiB) exceeds the default
		// budget (half the physical memory) on machines below 32 GiB.
		{"default budget", []int64{65536, 65536}, tensor.Float32, nil, def >= 16<<30,
			[]string{"over the memory budget", `"big"`, "ConstantOfShape", "65536 65536", "16 GiB", "17179869184 bytes", membudget.FormatBytes(def)}},
		// One element past tensor.MaxElements: the import refuses the shape, whatever the budget.
		{"past MaxElements", []int64{65536, 65537}, tensor.Float32, nil, false, []string{`"big"`, "65537"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skipf("the default budget here is %s: the node would fit it", membudget.FormatBytes(def))
			}
			model := constantOfShapeModel(t, tc.dims, tc.dt)
			stdout, stderr, status := dnx(t, append([]string{"run", model}, tc.flags...)...)
			if status != exitError || stdout != "" {
				t.Errorf("status %d, stdout %q; want 1 and nothing", status, stdout)
			}
			checkOneLine(t, stderr, append(tc.want, model)...)
		})
	}
}

// checkOneLine fails the test unless stderr is one "dnx: " line holding every string of want and
// no Go internals (see goInternals).
func checkOneLine(t *testing.T, stderr string, want ...string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "dnx: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line starting with \"dnx: \": %q", stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q lacks %q", stderr, w)
		}
	}
	if s := goInternals(stderr); s != "" {
		t.Errorf("stderr %q shows Go internals: %q", stderr, s)
	}
}

// goInternals returns the first trace of Go's own formatting in a message meant for people: a
// file mode (d---------), a struct (&{...}, {Data:1 ...}), a type name (*onnxpb.ModelProto,
// []float32), a bad format verb (%!d(string=x)) or a Go function call (FromDepth("BC", ...)).
func goInternals(msg string) string {
	for _, s := range []string{"---------", "&{", ":{", "%!", "*onnxpb.", "*tensor.", "[]float", "[]int", "FromDepth(", "func("} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	return ""
}

// dnx inspect reports the planned activation memory at the shapes of its MAC count, in text and
// JSON; a plan over --max-memory (100K: the file fits, arena and scratch do not) is reported as unknown, with the reason, and inspect succeeds.
func TestInspectActivations(t *testing.T) {
	model := builtTiny(t)
	out := mustSucceed(t, "inspect", model)
	if !strings.Contains(out, "Activations at input [1,3,16,16]: ") || !strings.Contains(out, " planned (") || !strings.Contains(out, "kernel scratch") {
		t.Errorf("no activation line in\n%s", out)
	}
	var rep struct {
		ActivationBytes *int64 `json:"activation_bytes"`
		ScratchBytes    *int64 `json:"scratch_bytes"`
		Unknown         string `json:"activations_unknown"`
	}
	decode := func(out string) {
		t.Helper()
		rep.ActivationBytes, rep.ScratchBytes, rep.Unknown = nil, nil, ""
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
	}
	decode(mustSucceed(t, "inspect", model, "--json"))
	if rep.ActivationBytes == nil || *rep.ActivationBytes <= 0 || rep.ScratchBytes == nil || rep.Unknown != "" {
		t.Fatalf("batch 1: %+v", rep)
	}
	one := *rep.ActivationBytes
	if !strings.Contains(out, fmt.Sprintf("planned (%s bytes)", groupDigits(one))) {
		t.Errorf("the text does not show the JSON's %d bytes:\n%s", one, out)
	}
	// Batch 4 plans four times the activations (every value has the batch dim).
	decode(mustSucceed(t, "inspect", model, "--json", "--shape", "input=4,3,16,16"))
	if rep.ActivationBytes == nil || *rep.ActivationBytes != 4*one {
		t.Errorf("batch 4: activation_bytes %v, want %d", rep.ActivationBytes, 4*one)
	}
	// A model without inputs: no shapes to name.
	if out := mustSucceed(t, "inspect", constantOfShapeModel(t, []int64{4}, tensor.Float32)); !strings.Contains(out, "\nMACs: 0 (0)\nActivations: ") {
		t.Errorf("a model without inputs:\n%s", out)
	}
	decode(mustSucceed(t, "inspect", model, "--json", "--max-memory", "100K"))
	if rep.ActivationBytes != nil || !strings.Contains(rep.Unknown, "over the memory budget") {
		t.Errorf("--max-memory 100K: %+v, want unknown activations over the budget", rep)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// dnx runs the command line in-process and returns its stdout, stderr and exit status.
func dnx(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var o, e bytes.Buffer
	status = Run(context.Background(), append([]string{"dnx"}, args...), &o, &e)
	return o.String(), e.String(), status
}

// mustSucceed runs dnx and fails the test unless it exits 0 with nothing on stderr.
func mustSucceed(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, status := dnx(t, args...)
	if status != 0 || errOut != "" {
		t.Fatalf("dnx %s: status %d, stderr %q", strings.Join(args, " "), status, errOut)
	}
	return out
}

// tiny returns the shared densenet_tiny folder.
func tiny(t *testing.T) string {
	return testenv.Shared(t, "models/densenet_tiny")
}

// builtTiny writes the "tiny" preset built with seed 1 to a temporary model file. Unlike the
// PyTorch export it has no Pad before the transition pooling.
func builtTiny(t *testing.T) string {
	p, err := models.Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	m, err := builders.Build(p.Config, builders.BuildOptions{Seed: 1, Inference: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := onnx.WriteModelFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// tinyMACs is the hand count of densenet_tiny's multiply-accumulates per image (see
// runtime/graph/stats_test.go): 559104 in Conv nodes and 80 in the Gemm.
const tinyMACs = 559184

func TestInspectText(t *testing.T) {
	out := mustSucceed(t, "inspect", filepath.Join(tiny(t), "model.onnx"))
	for _, want := range []string{
		"Producer    pytorch 1.13.0\n",
		"IR version  7\n",
		"Opsets      ai.onnx 13\n",
		"Inputs      input   float32[batch,3,16,16]\n",
		"Outputs     logits  float32[batch,5]\n",
		"Parameters  3,725 (14.6 KiB)\n",
		"Operators (38 nodes)\n",
		"  Conv                10",
		"  BatchNormalization  6",
		"MACs at input [1,3,16,16]: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestInspectJSON(t *testing.T) {
	out := mustSucceed(t, "inspect", "--json", filepath.Join(tiny(t), "model.onnx"))
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"producer", "ir_version", "opsets", "inputs", "outputs", "ops", "parameters", "parameter_bytes", "macs", "mac_input_shapes"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	checks := []struct {
		key  string
		got  any
		want any
	}{
		{"producer", rep["producer"], "pytorch"},
		{"ir_version", rep["ir_version"], 7.0},
		{"opsets", rep["opsets"], map[string]any{"ai.onnx": 13.0}},
		{"inputs", rep["inputs"], []any{map[string]any{"name": "input", "dtype": "float32", "shape": []any{"batch", 3.0, 16.0, 16.0}}}},
		{"outputs", rep["outputs"], []any{map[string]any{"name": "logits", "dtype": "float32", "shape": []any{"batch", 5.0}}}},
		{"ops.Conv", rep["ops"].(map[string]any)["Conv"], 10.0},
		{"parameters", rep["parameters"], 3725.0},
		{"parameter_bytes", rep["parameter_bytes"], 14900.0},
		{"mac_input_shapes", rep["mac_input_shapes"], map[string]any{"input": []any{1.0, 3.0, 16.0, 16.0}}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
	// MACs need every value's shape; the exporter's Pad reads its pads from a Constant node, so
	// this also checks that inference sees Constant outputs.
	if rep["macs"] != float64(tinyMACs) {
		t.Errorf("macs = %v, want %d (macs_unknown: %v)", rep["macs"], tinyMACs, rep["macs_unknown"])
	}
}

func TestInspectMACs(t *testing.T) {
	model := builtTiny(t)
	out := mustSucceed(t, "inspect", model)
	if want := "MACs at input [1,3,16,16]: 559 K (559,184)\n"; !strings.Contains(out, want) {
		t.Errorf("missing %q in\n%s", want, out)
	}
	if want := "  Conv                10  559 K MACs (100.0%)\n"; !strings.Contains(out, want) {
		t.Errorf("missing %q in\n%s", want, out)
	}
	// Batch 4 quadruples the count; flags may come after the model.
	out = mustSucceed(t, "inspect", model, "--json", "--shape", "input=4,3,16,16")
	var rep struct {
		MACs           int64
		MACsByOp       map[string]int64 `json:"macs_by_op"`
		MACInputShapes map[string][]int `json:"mac_input_shapes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.MACs != 4*tinyMACs || rep.MACsByOp["Gemm"] != 4*80 || !reflect.DeepEqual(rep.MACInputShapes["input"], []int{4, 3, 16, 16}) {
		t.Errorf("got %+v, want %d MACs at [4,3,16,16]", rep, 4*tinyMACs)
	}
}

func TestInspectDot(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(tiny(t), "model.onnx")
	for _, tc := range []struct {
		args  []string
		input string
	}{
		{nil, `label="input\nfloat32[batch,3,16,16]"`},
		{[]string{"--shape", "input=2,3,16,16"}, `label="input\nfloat32[2,3,16,16]"`},
	} {
		dot := filepath.Join(dir, "g.dot")
		mustSucceed(t, append([]string{"inspect", model, "--dot", dot}, tc.args...)...)
		data, err := os.ReadFile(dot)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if !strings.HasPrefix(s, "digraph ") || !strings.HasSuffix(s, "}\n") || !strings.Contains(s, tc.input) ||
			!strings.Contains(s, `[label="batch x 8 x 16 x 16"]`) && tc.args == nil {
			t.Errorf("%v: unexpected DOT:\n%.600s", tc.args, s)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

// readPB reads a TensorProto file or fails the test.
func readPB(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	x, _, err := onnx.ReadTensorFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

type runJSON struct {
	Outputs []struct {
		Name  string
		DType string
		Shape []int
		Top   []struct {
			Row, Class  int
			Prob, Logit float64
		}
	}
	ElapsedMS *float64 `json:"elapsed_ms"`
	Written   []string
}

func parseRun(t *testing.T, out string) runJSON {
	t.Helper()
	var r runJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return r
}

// checkLogits compares the top entries (all 5 classes) of a run with the reference logits.
func checkLogits(t *testing.T, r runJSON, want *tensor.Tensor) {
	t.Helper()
	if len(r.Outputs) != 1 || r.Outputs[0].Name != "logits" || !reflect.DeepEqual(r.Outputs[0].Shape, []int{2, 5}) {
		t.Fatalf("outputs %+v", r.Outputs)
	}
	w := want.Float64s()
	if len(r.Outputs[0].Top) != 10 {
		t.Fatalf("%d top entries, want 5 per row", len(r.Outputs[0].Top))
	}
	sums := map[int]float64{}
	for i, e := range r.Outputs[0].Top {
		if d := math.Abs(e.Logit - w[e.Row*5+e.Class]); d > tensor.PyTorchAtol {
			t.Errorf("row %d class %d: logit %g, want %g", e.Row, e.Class, e.Logit, w[e.Row*5+e.Class])
		}
		if i%5 > 0 && e.Prob > r.Outputs[0].Top[i-1].Prob {
			t.Errorf("entries are not sorted by probability: %+v", r.Outputs[0].Top)
		}
		sums[e.Row] += e.Prob
	}
	for row, s := range sums {
		if math.Abs(s-1) > 1e-9 {
			t.Errorf("row %d: probabilities sum to %g", row, s)
		}
	}
	if r.ElapsedMS == nil || *r.ElapsedMS <= 0 {
		t.Errorf("elapsed_ms %v", r.ElapsedMS)
	}
}

func TestRunPBAndNPY(t *testing.T) {
	dir := tiny(t)
	model := filepath.Join(dir, "model.onnx")
	in := filepath.Join(dir, "test_data_set_0", "input_0.pb")
	want := readPB(t, filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	tmp := t.TempDir()

	t.Run("pb input, npy output", func(t *testing.T) {
		out := filepath.Join(tmp, "logits.npy")
		r := parseRun(t, mustSucceed(t, "run", model, "--input", in, "--json", "--output", out))
		checkLogits(t, r, want)
		got, err := npy.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := tensor.AllClose(got, want, 0, tensor.PyTorchAtol); err != nil {
			t.Error(err)
		}
	})
	t.Run("npy input, pb output", func(t *testing.T) {
		data, err := npy.Marshal(readPB(t, in))
		if err != nil {
			t.Fatal(err)
		}
		npyIn := filepath.Join(tmp, "input.npy")
		os.WriteFile(npyIn, data, 0o644)
		out := filepath.Join(tmp, "logits.pb")
		r := parseRun(t, mustSucceed(t, "run", "--json", "--top", "5", "-i", npyIn, "-o", out, model))
		checkLogits(t, r, want)
		got, name, err := onnx.ReadTensorFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if name != "logits" {
			t.Errorf("TensorProto name %q, want logits", name)
		}
		if err := tensor.AllClose(got, want, 0, tensor.PyTorchAtol); err != nil {
			t.Error(err)
		}
	})
	t.Run("output dir", func(t *testing.T) {
		outDir := filepath.Join(tmp, "new", "outs")
		text := mustSucceed(t, "run", model, "--input", in, "--output-dir", outDir, "--top", "2")
		got := readPB(t, filepath.Join(outDir, "output_0.pb"))
		if err := tensor.AllClose(got, want, 0, tensor.PyTorchAtol); err != nil {
			t.Error(err)
		}
		for _, s := range []string{"logits float32[2,5]\n", "row  class", "wrote " + filepath.Join(outDir, "output_0.pb"), "elapsed "} {
			if !strings.Contains(text, s) {
				t.Errorf("missing %q in\n%s", s, text)
			}
		}
		// Two rows of two classes, plus the header line.
		if n := strings.Count(text, "\n"); n != 1+1+4+2 {
			t.Errorf("%d lines:\n%s", n, text)
		}
	})
}

// writePNG writes a w x h test picture and returns its path.
func writePNG(t *testing.T, w, h int) string {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(12 * x), uint8(12 * y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pic.png")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunImage(t *testing.T) {
	model := filepath.Join(tiny(t), "model.onnx")
	r := parseRun(t, mustSucceed(t, "run", model, "--input", writePNG(t, 20, 18), "--json", "--top", "3"))
	if len(r.Outputs) != 1 || !reflect.DeepEqual(r.Outputs[0].Shape, []int{1, 5}) || len(r.Outputs[0].Top) != 3 {
		t.Fatalf("outputs %+v", r.Outputs)
	}
	for _, e := range r.Outputs[0].Top {
		if e.Row != 0 || !(e.Prob > 0 && e.Prob < 1) || math.IsNaN(e.Logit) {
			t.Errorf("entry %+v", e)
		}
	}
}

// vectorModel writes a model whose input is not an image: x float32[batch,10] -> Relu -> y.
func vectorModel(t *testing.T) string {
	vi := func(name string) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 10}},
			}}}}}}
	}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("vector"),
			Input:  []*onnxpb.ValueInfoProto{vi("x")},
			Output: []*onnxpb.ValueInfoProto{vi("y")},
			Node:   []*onnxpb.NodeProto{{Name: proto.String("relu"), OpType: proto.String("Relu"), Input: []string{"x"}, Output: []string{"y"}}},
		},
	}
	path := filepath.Join(t.TempDir(), "vector.onnx")
	if err := onnx.WriteModelFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestErrors(t *testing.T) {
	dir := tiny(t)
	model := filepath.Join(dir, "model.onnx")
	in := filepath.Join(dir, "test_data_set_0", "input_0.pb")
	tmp := t.TempDir()

	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(tmp, "half.onnx")
	os.WriteFile(truncated, data[:len(data)/2], 0o644)

	writeNPY := func(name string, x *tensor.Tensor) string {
		b, err := npy.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	small := writeNPY("small.npy", tensor.New(tensor.Float32, tensor.Shape{1, 3, 8, 8}))
	i32 := writeNPY("i32.npy", tensor.New(tensor.Int32, tensor.Shape{1, 3, 16, 16}))
	badNPY := filepath.Join(tmp, "bad.npy")
	os.WriteFile(badNPY, []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',"), 0o644)
	outTxt := filepath.Join(tmp, "out.txt")

	tests := []struct {
		name   string
		args   []string
		status int
		want   []string // substrings of the one stderr line
	}{
		{"missing model", []string{"inspect", filepath.Join(tmp, "none.onnx")}, 1, []string{"none.onnx", "no such file"}},
		{"missing model run", []string{"run", filepath.Join(tmp, "none.onnx"), "--input", in}, 1, []string{"none.onnx"}},
		{"truncated model", []string{"inspect", truncated}, 1, []string{"half.onnx", "corrupt"}},
		{"truncated model run", []string{"run", truncated, "--input", in}, 1, []string{"half.onnx"}},
		{"missing input file", []string{"run", model, "--input", filepath.Join(tmp, "none.pb")}, 1, []string{"none.pb", "no such file"}},
		{"wrong input shape", []string{"run", model, "--input", small}, 1, []string{`input "input"`, "small.npy", "float32[1,3,8,8]", "float32[batch,3,16,16]"}},
		{"wrong input dtype", []string{"run", model, "--input", i32}, 1, []string{`input "input"`, "int32[1,3,16,16]", "float32[batch,3,16,16]"}},
		{"malformed npy", []string{"run", model, "--input", badNPY}, 1, []string{"bad.npy", "invalid .npy"}},
		{"unknown output extension", []string{"run", model, "--input", in, "--output", outTxt}, 2, []string{"out.txt", `".txt"`}},
		{"unknown input extension", []string{"run", model, "--input", outTxt}, 2, []string{"out.txt", "unknown extension"}},
		{"image for a vector input", []string{"run", vectorModel(t), "--input", writePNG(t, 4, 4)}, 1, []string{"pic.png", `input "x"`, "float32[batch,10]", "not an image input"}},
		{"too many inputs", []string{"run", model, "--input", in, "--input", in}, 2, []string{"takes 1 input", "got 2"}},
		{"output and output dir", []string{"run", model, "--input", in, "-o", "a.pb", "--output-dir", tmp}, 2, []string{"exclusive"}},
		{"no model", []string{"run"}, 2, []string{"missing MODEL"}},
		{"two models", []string{"inspect", model, model}, 2, []string{"expected one MODEL"}},
		{"unknown flag", []string{"inspect", model, "--frobnicate"}, 2, []string{"frobnicate", "dnx inspect --help"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"bad shape flag", []string{"inspect", model, "--shape", "input=1,x"}, 2, []string{`"x" is not an integer`}},
		{"shape of no input", []string{"inspect", model, "--shape", "image=1,3,16,16"}, 2, []string{`no input "image"`}},
		{"shape that does not fit", []string{"inspect", model, "--shape", "input=1,3,15,16"}, 1, []string{"[1 3 15 16]", "float32[batch,3,16,16]"}},
		{"negative top", []string{"run", model, "--input", in, "--top", "-1"}, 2, []string{"--top -1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := dnx(t, tc.args...)
			if status != tc.status {
				t.Errorf("status %d, want %d (stderr %q)", status, tc.status, errOut)
			}
			if !strings.HasPrefix(errOut, "dnx: ") || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
				t.Errorf("stderr is not one line starting with \"dnx: \": %q", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not contain %q", errOut, w)
				}
			}
			if strings.Contains(out, "USAGE") || strings.Contains(out, "Incorrect Usage") {
				t.Errorf("usage dump on stdout:\n%s", out)
			}
		})
	}
	if _, err := os.Stat(outTxt); !os.IsNotExist(err) {
		t.Errorf("%s was written despite the error", outTxt)
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the training demo takes tens of seconds")
	}
	out, errOut, status := dnx(t, "demo", "--json")
	if status != 0 || errOut != "" {
		t.Fatalf("dnx demo --json: status %d, stderr %q", status, errOut)
	}
	var rep struct {
		Steps, Batch            int
		TrainImages             int     `json:"train_images"`
		ValImages               int     `json:"val_images"`
		ValAcc                  float64 `json:"val_acc"`
		TrainAcc                float64 `json:"train_acc"`
		Chance                  float64
		ActivationBytes         int64   `json:"activation_bytes"`
		ActivationBytesStandard int64   `json:"activation_bytes_standard"`
		ExportBytes             int     `json:"export_bytes"`
		TrainSeconds            float64 `json:"train_seconds"`
		Classes                 []string
		Parameters              int64
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Four balanced classes: chance is 25%; the trained and exported model must be far above it.
	if rep.ValAcc <= 0.8 || rep.Chance != 0.25 || len(rep.Classes) != 4 || rep.ValImages < 256 {
		t.Errorf("validation accuracy %.3f (chance %.2f, %d images, classes %v), want > 0.8", rep.ValAcc, rep.Chance, rep.ValImages, rep.Classes)
	}
	if rep.Steps != demoSteps || rep.Batch != demoBatch || rep.ActivationBytes <= 0 || rep.ActivationBytesStandard <= rep.ActivationBytes ||
		rep.ExportBytes <= 0 || rep.TrainSeconds <= 0 || rep.Parameters != builders.Params(demoConfig()) {
		t.Errorf("report %+v", rep)
	}
	t.Logf("demo: validation accuracy %.1f%%, %d steps in %.1f s, activations %d B (standard %d B)", 100*rep.ValAcc, rep.Steps, rep.TrainSeconds, rep.ActivationBytes, rep.ActivationBytesStandard)

	// Text output, with progress on stderr ending in a newline, and -o.
	model := filepath.Join(t.TempDir(), "demo.onnx")
	text, errOut, status := dnx(t, "demo", "--steps", "3", "-o", model)
	if status != 0 || !strings.Contains(errOut, "step 3/3") || !strings.HasSuffix(errOut, "\n") {
		t.Errorf("dnx demo --steps 3: status %d, stderr %q", status, errOut)
	}
	for _, s := range []string{"Model       DenseNet-BC k=6", "Training    3 steps of 32 images", "Memory      activations", "Accuracy    ", "chance: 25%", "written to " + model} {
		if !strings.Contains(text, s) {
			t.Errorf("missing %q in\n%s", s, text)
		}
	}
	if _, err := graph.Load(model); err != nil {
		t.Error(err)
	}
	if _, errOut, status := dnx(t, "demo", "--preset", "tiny"); status != 2 || !strings.Contains(errOut, "--inference-only") {
		t.Errorf("--preset without --inference-only: status %d, %q", status, errOut)
	}
}

func TestDemoInferenceOnly(t *testing.T) {
	out := mustSucceed(t, "demo", "--inference-only", "--json", "--runs", "2")
	var rep struct {
		Preset     string
		Parameters int64
		MACs       *int64
		InputShape []int                         `json:"input_shape"`
		LatencyMS  struct{ Min, Median float64 } `json:"latency_ms"`
		Outputs    []struct {
			Shape []int
			Top   []struct{ Class int }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Preset != "tiny" || rep.Parameters != 3725 || rep.MACs == nil || *rep.MACs != tinyMACs ||
		!reflect.DeepEqual(rep.InputShape, []int{1, 3, 16, 16}) || rep.LatencyMS.Min <= 0 || rep.LatencyMS.Median < rep.LatencyMS.Min {
		t.Errorf("report %+v", rep)
	}
	if len(rep.Outputs) != 1 || !reflect.DeepEqual(rep.Outputs[0].Shape, []int{1, 5}) || len(rep.Outputs[0].Top) != 5 {
		t.Errorf("outputs %+v", rep.Outputs)
	}
	// The demo is deterministic: the same seed gives the same classes.
	text := mustSucceed(t, "demo", "--inference-only", "--runs", "1")
	for _, s := range []string{"Model       tiny (seed 1", "3,725 parameters", "MACs        559 K at input [1,3,16,16]", "Latency ", "logits float32[1,5]"} {
		if !strings.Contains(text, s) {
			t.Errorf("missing %q in\n%s", s, text)
		}
	}
	again := mustSucceed(t, "demo", "--inference-only", "--json", "--runs", "1")
	if classes(t, again) != classes(t, out) {
		t.Errorf("two demo runs disagree")
	}
	if _, errOut, status := dnx(t, "demo", "--inference-only", "--preset", "resnet50"); status != 2 || !strings.Contains(errOut, `"resnet50"`) {
		t.Errorf("unknown preset: status %d, %q", status, errOut)
	}
	if _, errOut, status := dnx(t, "demo", "--inference-only", "--steps", "5"); status != 2 || !strings.Contains(errOut, "--steps") {
		t.Errorf("--steps with --inference-only: status %d, %q", status, errOut)
	}
}

// classes extracts the top classes of a demo JSON report as a string.
func classes(t *testing.T, out string) string {
	var rep struct {
		Outputs []struct{ Top []struct{ Class int } }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	return string(b)
}

func TestReorderArgs(t *testing.T) {
	app := NewApp(nil, nil)
	tests := []struct{ in, want []string }{
		{[]string{"dnx", "run", "m.onnx", "--input", "a.pb", "--json", "-i", "b.pb"},
			[]string{"dnx", "run", "--input", "a.pb", "--json", "-i", "b.pb", "--", "m.onnx"}},
		{[]string{"dnx", "inspect", "m.onnx", "--shape=x=1,2", "--dot", "g.dot"},
			[]string{"dnx", "inspect", "--shape=x=1,2", "--dot", "g.dot", "--", "m.onnx"}},
		{[]string{"dnx", "run", "--", "-weird.onnx"}, []string{"dnx", "run", "--", "-weird.onnx"}},
		{[]string{"dnx", "nosuch", "x", "--y"}, []string{"dnx", "nosuch", "x", "--y"}},
		{[]string{"dnx", "--help"}, []string{"dnx", "--help"}},
		{[]string{"dnx", "run", "m.onnx", "-h"}, []string{"dnx", "run", "--help"}},
	}
	for _, tc := range tests {
		if got := reorderArgs(app, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("reorderArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{siCount(80), "80"},
		{siCount(559184), "559 K"},
		{siCount(2_870_000_000), "2.87 G"},
		{siCount(28_700_000), "28.7 M"},
		{siCount(999_600), "1.00 M"},
		{byteCount(100), "100 B"},
		{byteCount(14900), "14.6 KiB"},
		{byteCount(32 << 20), "32.0 MiB"},
		{groupDigits(3725), "3,725"},
		{groupDigits(559184), "559,184"},
		{groupDigits(100), "100"},
		{groupDigits(-1234567), "-1,234,567"},
		{oneLine("a\n  b\n\nc "), "a; b; c"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestTopK(t *testing.T) {
	x := tensor.FromSlice(tensor.Shape{2, 3}, []float32{0, float32(math.Log(3)), 0, 1, 1, float32(math.NaN())})
	got := topK(x, 2)
	// Row 0: softmax(0, ln 3, 0) = (0.2, 0.6, 0.2); ties keep class order. Row 1: NaN sorts last.
	want := []struct {
		row, class int
		prob       float64
	}{{0, 1, 0.6}, {0, 0, 0.2}, {1, 0, math.NaN()}, {1, 1, math.NaN()}}
	for i, w := range want {
		g := got[i]
		if g.Row != w.row || g.Class != w.class || !(math.IsNaN(w.prob) && math.IsNaN(float64(g.Prob)) || math.Abs(float64(g.Prob)-w.prob) < 1e-6) {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	if b, err := json.Marshal(got[2]); err != nil || !strings.Contains(string(b), `"prob":null`) {
		t.Errorf("NaN probability encodes as %s, %v", b, err)
	}
}

// panicWriter panics on every write, standing in for a bug deep inside a command.
type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("boom\nsecond line") }

func TestPanicBecomesInternalError(t *testing.T) {
	var e bytes.Buffer
	status := Run(context.Background(), []string{"dnx", "inspect", builtTiny(t)}, panicWriter{}, &e)
	if status != exitInternal || !strings.HasPrefix(e.String(), "dnx: internal error: ") ||
		!strings.Contains(e.String(), "boom; second line") || strings.Count(e.String(), "\n") != 1 {
		t.Errorf("status %d, stderr %q", status, e.String())
	}
}

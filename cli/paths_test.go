package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// copyFile copies src into dir under name and returns the new path.
func copyFile(t *testing.T, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// externalModel writes, in a fresh folder, a model y = Relu(w) whose initializer w [4] lives in
// the external data file w.bin, and returns the model's path and w.bin's.
func externalModel(t *testing.T) (model, weights string) {
	t.Helper()
	dir := t.TempDir()
	w, err := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{4}, []float32{-1, 2, -3, 4}), "w")
	if err != nil {
		t.Fatal(err)
	}
	weights = filepath.Join(dir, "w.bin")
	if err := os.WriteFile(weights, w.GetRawData(), 0o644); err != nil {
		t.Fatal(err)
	}
	w.RawData = nil
	w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("w.bin")}}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("ext"), Initializer: []*onnxpb.TensorProto{w},
			Node:   []*onnxpb.NodeProto{{Name: proto.String("relu"), OpType: proto.String("Relu"), Input: []string{"w"}, Output: []string{"y"}}},
			Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y")}}}}
	model = filepath.Join(dir, "ext.onnx")
	if err := onnx.WriteModelFile(model, m); err != nil {
		t.Fatal(err)
	}
	return model, weights
}

// No command overwrites one of its inputs, whatever the spelling (the same path, a symlink, a
// hard link, ./ prefixes), nor writes into a data folder, nor writes two outputs to one file: it
// refuses before any work with one line naming both, status 1, and every input is left as it was.
func TestNoOverwriteInputs(t *testing.T) {
	dir := t.TempDir()
	shared := tiny(t)
	model := copyFile(t, filepath.Join(shared, "model.onnx"), dir, "model.onnx")
	modelPB := copyFile(t, model, dir, "model.pb") // any name loads
	pb := copyFile(t, filepath.Join(shared, "test_data_set_0", "input_0.pb"), dir, "input_0.pb")
	ckpt := copyFile(t, filepath.Join("..", "converters", "pytorch", "testdata", "densenet_ckpt.pth"), dir, "c.pth")
	x, _, err := onnx.ReadTensorFile(pb)
	if err != nil {
		t.Fatal(err)
	}
	b, err := npy.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dir, "a.npy")
	if err := os.WriteFile(a, b, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.npy")
	if err := os.Symlink("a.npy", link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.npy")
	if err := os.Link(a, hard); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	inOut := copyFile(t, pb, outDir, "output_0.pb") // an input where --output-dir writes
	train := trainableTiny(t)
	tx, ty := tensorData(t, 4, 5, 16)
	photos := imageFolder(t, 2, 2, 16, 1)
	ext, weights := externalModel(t)
	log := filepath.Join(dir, "log.jsonl")
	ft := func(args ...string) []string {
		return append([]string{"finetune", train, "--steps", "1", "--batch", "2"}, args...)
	}

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"convert -o the checkpoint", []string{"convert", ckpt, "-o", ckpt}, []string{"-o " + ckpt + " is " + ckpt}},
		{"convert -o the model", []string{"convert", model, "--opset", "17", "-o", model}, []string{"-o " + model, "refusing to overwrite an input"}},
		{"convert -o the external data", []string{"convert", ext, "--opset", "17", "-o", weights}, []string{"-o " + weights, "external data"}},
		{"inspect --dot the model", []string{"inspect", model, "--dot", model}, []string{"--dot " + model + " is " + model}},
		{"run -o the input", []string{"run", model, "--input", a, "-o", a}, []string{"-o " + a + " is --input " + a}},
		{"run -o a symlink to the input", []string{"run", model, "--input", a, "-o", link}, []string{"-o " + link, "--input " + a}},
		{"run -o a hard link to the input", []string{"run", model, "--input", a, "-o", hard}, []string{"-o " + hard, "--input " + a}},
		{"run -o the input by another path", []string{"run", model, "--input", a, "-o", filepath.Join(dir, "out", "..", "a.npy")}, []string{"is --input " + a}},
		{"run --output-dir holding the input", []string{"run", model, "--input", inOut, "--output-dir", outDir}, []string{"--output-dir " + inOut, "is --input " + inOut}},
		{"run -o the model", []string{"run", modelPB, "--input", pb, "-o", modelPB}, []string{"-o " + modelPB + " is " + modelPB}},
		{"bench --cpuprofile the model", []string{"bench", model, "--cpuprofile", model, "--iters", "1"}, []string{"--cpuprofile " + model + " is " + model}},
		{"bench --cpuprofile the input", []string{"bench", model, "--input", pb, "--cpuprofile", pb, "--iters", "1"}, []string{"--cpuprofile " + pb + " is --input " + pb}},
		{"finetune -o the model", ft("--x", tx, "--y", ty, "-o", train), []string{"-o " + train + " is " + train}},
		{"finetune --log-json the model", ft("--x", tx, "--y", ty, "--log-json", train, "-o", filepath.Join(dir, "o.onnx")), []string{"--log-json " + train, "refusing to overwrite an input"}},
		{"finetune -o the labels", ft("--x", tx, "--y", ty, "-o", ty), []string{"-o " + ty + " is --y " + ty}},
		{"finetune --log-json the images", ft("--x", tx, "--y", ty, "--log-json", tx, "-o", filepath.Join(dir, "o.onnx")), []string{"--log-json " + tx + " is --x " + tx}},
		{"finetune -o the validation images", ft("--x", tx, "--y", ty, "--val-x", tx, "--val-y", ty, "-o", tx), []string{"-o " + tx, "is --x"}},
		{"finetune -o inside the data", ft("--data", photos, "-o", filepath.Join(photos, "class0", "m.onnx")), []string{"-o " + filepath.Join(photos, "class0", "m.onnx") + " is inside --data " + photos}},
		{"finetune --checkpoint inside the data", ft("--data", photos, "--checkpoint", filepath.Join(photos, "ck"), "-o", filepath.Join(dir, "o.onnx")), []string{"--checkpoint", "is inside --data"}},
		{"finetune -o is the log", ft("--x", tx, "--y", ty, "--log-json", log, "-o", log), []string{"-o " + log + " and --log-json " + log + " name the same file"}},
	}
	snapshot := func() map[string][]byte {
		files := map[string][]byte{}
		for _, p := range []string{model, modelPB, pb, ckpt, a, inOut, train, tx, ty, ext, weights} {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[p] = b
		}
		return files
	}
	before := snapshot()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := dnx(t, tc.args...)
			if status != exitError || stdout != "" {
				t.Errorf("status %d, stdout %q; want 1 and nothing", status, stdout)
			}
			checkOneLine(t, stderr, tc.want...)
		})
	}
	for p, b := range snapshot() {
		if !bytes.Equal(b, before[p]) {
			t.Errorf("%s was changed", p)
		}
	}
	for _, p := range []string{filepath.Join(dir, "o.onnx"), log, filepath.Join(photos, "ck")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}

func TestSameFile(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	if err := os.WriteFile(a, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "self")); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, a)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		x, y string
		same bool
	}{
		{"one file", a, a, true},
		{"relative and absolute", rel, a, true},
		{"through a symlinked folder", filepath.Join(dir, "self", "a"), a, true},
		{"equal contents, two files", a, filepath.Join(dir, "b"), false},
		{"two new files, one name", filepath.Join(dir, "new"), filepath.Join(dir, "sub", "..", "new"), true},
		{"a new file through a symlinked folder", filepath.Join(dir, "self", "new"), filepath.Join(dir, "new"), true},
		{"two new files", filepath.Join(dir, "new"), filepath.Join(dir, "new2"), false},
		{"a new file and an old one", filepath.Join(dir, "new"), a, false},
	}
	for _, tc := range tests {
		if got := sameFile(tc.x, tc.y); got != tc.same {
			t.Errorf("%s: sameFile(%s, %s) = %v, want %v", tc.name, tc.x, tc.y, got, tc.same)
		}
	}
	within := []struct {
		p, dir string
		in     bool
	}{
		{filepath.Join(sub, "x"), sub, true},
		{filepath.Join(sub, "deep", "er", "x"), sub, true},
		{sub, sub, true},
		{filepath.Join(dir, "self", "sub", "x"), sub, true},
		{a, sub, false},
		{filepath.Join(dir, "subway"), sub, false},
	}
	for _, tc := range within {
		if got := isWithin(tc.p, tc.dir); got != tc.in {
			t.Errorf("isWithin(%s, %s) = %v, want %v", tc.p, tc.dir, got, tc.in)
		}
	}
	if strings.Contains(canonicalPath(filepath.Join(dir, "self", "x")), "self") {
		t.Errorf("canonicalPath keeps the symlinked folder: %s", canonicalPath(filepath.Join(dir, "self", "x")))
	}
}

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"image"
	"image/color"
	"image/png"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
	"github.com/dnx-ml/dnx/runtime/train"
)

// trainableTiny writes the "tiny" preset (16x16 inputs, 5 classes) in training form, every BN a
// node, to a temporary model file.
func trainableTiny(t *testing.T) string {
	t.Helper()
	p, err := models.Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	m, err := builders.Build(p.Config, builders.BuildOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny_train.onnx")
	if err := onnx.WriteModelFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// classColors are the colours of imageFolder's classes.
var classColors = []color.NRGBA{{220, 30, 30, 255}, {30, 200, 40, 255}, {40, 60, 220, 255}, {230, 210, 30, 255}, {200, 40, 200, 255}, {30, 200, 200, 255}}

// imageFolder writes an image folder of `classes` classes with perClass PNG files each: a
// coloured square of the class's colour on a noisy grey background, size x size pixels.
func imageFolder(t *testing.T, classes, perClass, size int, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 7))
	for c := range classes {
		cdir := filepath.Join(dir, fmt.Sprintf("class%d", c))
		if err := os.Mkdir(cdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range perClass {
			img := image.NewNRGBA(image.Rect(0, 0, size, size))
			x0, y0 := rng.IntN(size/2), rng.IntN(size/2)
			for y := range size {
				for x := range size {
					g := uint8(100 + rng.IntN(40))
					col := color.NRGBA{g, g, g, 255}
					if x >= x0 && x < x0+size/2 && y >= y0 && y < y0+size/2 {
						col = classColors[c%len(classColors)]
					}
					img.SetNRGBA(x, y, col)
				}
			}
			savePNG(t, filepath.Join(cdir, fmt.Sprintf("img%02d.png", i)), img)
		}
	}
	return dir
}

func savePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tensorData writes n random normalised 16x16 images (x.npy) and labels in [0, classes) (y.npy)
// and returns their paths.
func tensorData(t *testing.T, n, classes, size int) (xPath, yPath string) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 9))
	x := make([]float32, n*3*size*size)
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(i % classes)
		// The class shifts the mean of one channel, so that the data is learnable.
		for j := range 3 * size * size {
			v := rng.NormFloat64()
			if j/(size*size) == int(y[i])%3 {
				v += 1.5
			}
			x[i*3*size*size+j] = float32(v)
		}
	}
	xPath, yPath = filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	for _, f := range []struct {
		path string
		t    *tensor.Tensor
	}{{xPath, tensor.FromSlice(tensor.Shape{n, 3, size, size}, x)}, {yPath, tensor.FromSlice(tensor.Shape{n}, y)}} {
		b, err := npy.Marshal(f.t)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return xPath, yPath
}

// finetuneJSON is the part of the --json summary the tests read.
type finetuneJSON struct {
	Model, Output   string
	Steps, Epochs   int
	Batch           int
	BatchesPerEpoch int `json:"batches_per_epoch"`
	TrainImages     int `json:"train_images"`
	ValImages       int `json:"val_images"`
	Classes         int
	ResumedAt       int      `json:"resumed_at_step"`
	TrainLoss       *float64 `json:"train_loss"`
	TrainAcc        *float64 `json:"train_acc"`
	ValLoss         *float64 `json:"val_loss"`
	ValAcc          *float64 `json:"val_acc"`
	LR              float64
	ImagesPerS      float64 `json:"images_per_s"`
	ActivationBytes int64   `json:"activation_bytes"`
	MemoryEfficient bool    `json:"memory_efficient"`
	Normalization   string
	NormSource      string      `json:"normalization_source"`
	Mean, Std       *[3]float64 // null for tensors
	Unreadable      int         `json:"unreadable_images"`
}

// finetune runs dnx finetune ... --json and decodes the summary.
func finetune(t *testing.T, args ...string) finetuneJSON {
	t.Helper()
	out, errOut, status := dnx(t, append([]string{"finetune", "--json"}, args...)...)
	if status != 0 {
		t.Fatalf("dnx finetune %s: status %d, stderr %q", strings.Join(args, " "), status, errOut)
	}
	var rep finetuneJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	return rep
}

// initializers loads a model and returns its initializers by name.
func initializers(t *testing.T, path string) map[string]*tensor.Tensor {
	t.Helper()
	g, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*tensor.Tensor{}
	for _, v := range g.Initializers {
		out[v.Name] = v.Const
	}
	return out
}

// sameInitializers fails the test unless a and b have the same initializer names, shapes and
// bit-identical values.
func sameInitializers(t *testing.T, what string, a, b map[string]*tensor.Tensor) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d initializers", what, len(a), len(b))
	}
	diffs := 0
	for name, ta := range a {
		tb, ok := b[name]
		if !ok {
			t.Fatalf("%s: initializer %q missing", what, name)
		}
		if !tensorsIdentical(ta, tb) {
			if diffs++; diffs <= 3 {
				t.Errorf("%s: initializer %q differs (max |diff| %g)", what, name, tensor.MaxAbsDiff(ta, tb))
			}
		}
	}
	if diffs > 3 {
		t.Errorf("%s: %d initializers differ", what, diffs)
	}
}

// tensorsIdentical reports whether two tensors have the same dtype, shape and bits.
func tensorsIdentical(a, b *tensor.Tensor) bool {
	if a.DType != b.DType || !a.Shape.Equal(b.Shape) {
		return false
	}
	av, bv := a.Float64s(), b.Float64s()
	for i := range av {
		if math.Float64bits(av[i]) != math.Float64bits(bv[i]) {
			return false
		}
	}
	return true
}

// readLog parses a --log-json file into its objects.
func readLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestFinetuneImageFolder(t *testing.T) {
	model := trainableTiny(t)
	trainDir := imageFolder(t, 3, 4, 20, 1)
	valDir := imageFolder(t, 3, 2, 20, 2)
	dir := t.TempDir()
	out, logPath := filepath.Join(dir, "out.onnx"), filepath.Join(dir, "log.jsonl")
	rep := finetune(t, model, "--data", trainDir, "--val", valDir, "--epochs", "2", "--batch", "4",
		"--lr", "0.05", "--log-json", logPath, "-o", out)
	if rep.Steps != 6 || rep.Epochs != 2 || rep.BatchesPerEpoch != 3 || rep.TrainImages != 12 || rep.ValImages != 6 ||
		rep.Classes != 5 || rep.Output != out || !rep.MemoryEfficient || rep.Normalization != "preset tiny" {
		t.Errorf("summary %+v", rep)
	}
	if rep.TrainLoss == nil || !(*rep.TrainLoss > 0) || rep.ValAcc == nil || *rep.ValAcc < 0 || *rep.ValAcc > 1 || rep.ActivationBytes <= 0 {
		t.Errorf("summary numbers %+v", rep)
	}

	// The log has a line per step with step and loss, and one validation line per epoch.
	var steps, vals int
	for _, m := range readLog(t, logPath) {
		switch {
		case m["val_acc"] != nil:
			vals++
			if m["epoch"] != float64(vals) {
				t.Errorf("validation line %d: %v", vals, m)
			}
		default:
			steps++
			if m["step"] != float64(steps) || m["loss"] == nil || m["lr"] != 0.05 || m["epoch"] == nil || m["images_per_s"] == nil {
				t.Errorf("step line %d: %v", steps, m)
			}
		}
	}
	if steps != 6 || vals != 2 {
		t.Errorf("log has %d step and %d validation lines, want 6 and 2", steps, vals)
	}

	// The output keeps the input's initializer names and runs.
	before, after := initializers(t, model), initializers(t, out)
	if len(before) != len(after) {
		t.Fatalf("%d initializers before, %d after", len(before), len(after))
	}
	changed := 0
	for name, b := range before {
		a, ok := after[name]
		if !ok {
			t.Fatalf("initializer %q missing from the output", name)
		}
		if !tensorsIdentical(a, b) {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("training changed no initializer")
	}
	if _, ok := after["features.norm5.running_mean"]; !ok {
		t.Errorf("the output lost the BN running statistics")
	}
	mustSucceed(t, "bench", out, "--iters", "1", "--warmup", "0", "--batch", "2", "--json")

	// Progress goes to stderr without --json, with a final newline, then a summary.
	stdout, stderr, status := dnx(t, "finetune", model, "--data", trainDir, "--val-split", "0.25", "--steps", "2", "--batch", "4", "-o", out)
	if status != 0 || !strings.Contains(stderr, "step 2/2") || !strings.HasSuffix(stderr, "\n") ||
		!strings.Contains(stderr, "validation") || !strings.Contains(stdout, "Validation  loss") {
		t.Errorf("status %d\nstdout:\n%s\nstderr:\n%q", status, stdout, stderr)
	}
	// 9 training images (12 less a quarter) make 3 batches of up to 4.
	for _, want := range []string{"Trained     2 steps of 4 images (1 epoch of 3 batches)", "(last epoch; 9 training images, 5 classes)\n", "(3 images)\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestFinetuneOptimizersAndSchedules(t *testing.T) {
	model := trainableTiny(t)
	x, y := tensorData(t, 8, 5, 16)
	for _, opt := range []string{"sgd", "adam", "adamw"} {
		for _, sched := range [][]string{{"constant"}, {"step", "--step-size", "2", "--gamma", "0.5"}, {"cosine", "--warmup", "1"}} {
			t.Run(opt+"/"+sched[0], func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out.onnx")
				args := append([]string{model, "--x", x, "--y", y, "--steps", "3", "--batch", "4", "--optimizer", opt, "--schedule"}, sched...)
				rep := finetune(t, append(args, "-o", out, "--clip-norm", "5", "--label-smoothing", "0.1")...)
				if rep.Steps != 3 || rep.TrainLoss == nil || math.IsNaN(*rep.TrainLoss) || rep.ValAcc != nil || !(rep.LR >= 0) {
					t.Errorf("summary %+v", rep)
				}
				if rep.NormSource != "none" || rep.Mean != nil || !strings.Contains(rep.Normalization, "already normalised") {
					t.Errorf("tensors: normalization %q from %q, mean %v", rep.Normalization, rep.NormSource, rep.Mean)
				}
				// The step schedule halves the rate after 2 steps; cosine ends near 0.
				base := 0.01
				if opt != "sgd" {
					base = 0.001
				}
				want := map[string]float64{"constant": base, "step": base / 2, "cosine": base * (1 + math.Cos(math.Pi/2)) / 2}[sched[0]]
				if math.Abs(rep.LR-want) > 1e-12 {
					t.Errorf("last learning rate %g, want %g", rep.LR, want)
				}
				if _, err := graph.Load(out); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// cancelAfter is a stdout that cancels a context once it has seen n step lines of --log-json -.
type cancelAfter struct {
	mu     sync.Mutex
	n      int
	cancel func()
	buf    bytes.Buffer
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte(`"step":`)) && !bytes.Contains(p, []byte(`"val_acc"`)) {
		if w.n--; w.n == 0 {
			w.cancel()
		}
	}
	return w.buf.Write(p)
}

func TestFinetuneResume(t *testing.T) {
	model := trainableTiny(t)
	x, y := tensorData(t, 16, 5, 16)
	common := []string{model, "--x", x, "--y", y, "--batch", "6", "--val-split", "0.25", "--optimizer", "adam", "--schedule", "step", "--step-size", "2", "--gamma", "0.7"}
	run := func(ck string, extra ...string) (string, finetuneJSON) {
		out := filepath.Join(t.TempDir(), "out.onnx")
		args := append(append(append([]string{}, common...), "--checkpoint", ck, "-o", out), extra...)
		return out, finetune(t, args...)
	}

	// Reference: two epochs (2 x 2 batches of the 12 training images) in one go.
	full, fullRep := run(t.TempDir(), "--epochs", "2")
	if fullRep.Steps != 4 {
		t.Fatalf("summary %+v", fullRep)
	}

	// One epoch, then resume for the second.
	ck := t.TempDir()
	run(ck, "--epochs", "1")
	resumed, rep := run(ck, "--epochs", "2", "--resume")
	if rep.Steps != 4 || rep.ResumedAt != 2 {
		t.Errorf("resumed summary %+v", rep)
	}
	sameInitializers(t, "1 epoch + resume", initializers(t, full), initializers(t, resumed))
	if *rep.ValAcc != *fullRep.ValAcc || *rep.TrainLoss != *fullRep.TrainLoss {
		t.Errorf("resumed run reports train loss %v val acc %v, the full run %v %v", *rep.TrainLoss, *rep.ValAcc, *fullRep.TrainLoss, *fullRep.ValAcc)
	}

	// Interrupted after step 3 (mid-epoch), then resumed.
	ck = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &cancelAfter{n: 3, cancel: cancel}
	var stderr bytes.Buffer
	out := filepath.Join(t.TempDir(), "out.onnx")
	args := append(append([]string{"dnx", "finetune"}, common...), "--epochs", "2", "--checkpoint", ck, "--log-json", "-", "-o", out)
	status := Run(ctx, args, stdout, &stderr)
	if status != exitError || !strings.Contains(stderr.String(), "interrupted at step 3 of 4") || !strings.Contains(stderr.String(), "--resume") {
		t.Fatalf("interrupt: status %d, stderr %q", status, stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an interrupted run wrote its output")
	}
	meta, _, err := train.ReadCheckpoint(ck)
	if err != nil || meta.Step != 3 || meta.Epoch != 1 || meta.Batch != 1 {
		t.Fatalf("checkpoint after the interrupt: %+v, %v", meta, err)
	}
	out, rep = run(ck, "--epochs", "2", "--resume")
	if rep.ResumedAt != 3 {
		t.Errorf("resumed summary %+v", rep)
	}
	sameInitializers(t, "interrupt + resume", initializers(t, full), initializers(t, out))

	// --checkpoint-every saves mid-epoch; a run stopped by --steps resumes to the same result.
	ck = t.TempDir()
	run(ck, "--steps", "3", "--checkpoint-every", "1")
	out, _ = run(ck, "--steps", "4", "--resume")
	sameInitializers(t, "--steps 3 + resume", initializers(t, full), initializers(t, out))

	// Other settings are refused, naming the flag.
	_, errOut, status := dnx(t, append(append([]string{"finetune"}, common...), "--epochs", "2", "--checkpoint", ck, "--resume", "--gamma", "0.5", "-o", out)...)
	if status != exitUsage || !strings.Contains(errOut, "--gamma 0.7 -> 0.5") {
		t.Errorf("changed settings: status %d, %q", status, errOut)
	}
}

func TestFinetuneHeadAndFreeze(t *testing.T) {
	model := trainableTiny(t)
	trainDir := imageFolder(t, 6, 2, 16, 3)
	out := filepath.Join(t.TempDir(), "out.onnx")
	rep := finetune(t, model, "--data", trainDir, "--steps", "2", "--batch", "6", "--classes", "6",
		"--freeze", "features", "--freeze-bn", "--memory-efficient=false", "-o", out)
	if rep.Classes != 6 || rep.MemoryEfficient {
		t.Errorf("summary %+v", rep)
	}
	g, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if s := g.Outputs[0].Type.Shape; len(s) != 2 || !s[1].IsKnown() || s[1].Value != 6 {
		t.Errorf("output type %s, want [batch,6]", g.Outputs[0].Type)
	}
	before, after := initializers(t, model), initializers(t, out)
	for name, a := range after {
		b := before[name]
		frozen := strings.HasPrefix(name, "features")
		if frozen && !tensorsIdentical(a, b) {
			t.Errorf("frozen initializer %q changed", name)
		}
		if name == "classifier.weight" && (b.Shape[0] != 5 || a.Shape[0] != 6) {
			t.Errorf("classifier.weight %v -> %v, want 5 -> 6 rows", b.Shape, a.Shape)
		}
	}
	sess, err := exec.New(g)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.Run(context.Background(), []*tensor.Tensor{tensor.New(tensor.Float32, tensor.Shape{2, 3, 16, 16})})
	if err != nil || !res[0].Shape.Equal(tensor.Shape{2, 6}) {
		t.Errorf("running the output: %v %v", res, err)
	}
}

func TestFinetuneErrors(t *testing.T) {
	model := trainableTiny(t)
	x, y := tensorData(t, 4, 5, 16)
	many := imageFolder(t, 6, 1, 16, 4)
	x32, y32 := tensorData(t, 4, 2, 32)
	small := imageFolder(t, 2, 2, 16, 5)
	bare := withoutMetadata(t, model)
	badMeta := withMetadata(t, model, meanKey, "0.5,0.5", stdKey, "1,1,1")
	vx, vy := tensorData(t, 4, 5, 16)
	x7, y7 := tensorData(t, 8, 7, 16) // labels 0..6: 5 and 6 are outside the model's 5 classes
	ck := t.TempDir()
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.onnx")
	imageNet := []string{"--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"no data", []string{model, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--data DIR", "--cifar DIR", "--x FILE --y FILE"}},
		{"x without y", []string{model, "--x", x, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--x and --y"}},
		{"two sources", []string{model, "--x", x, "--y", y, "--data", many, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"one training data source"}},
		{"epochs and steps", []string{model, "--x", x, "--y", y, "--epochs", "1", "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--epochs E or --steps S"}},
		{"no length", []string{model, "--x", x, "--y", y, "--batch", "2", "-o", out}, exitUsage, []string{"--epochs E or --steps S"}},
		{"no batch", []string{model, "--x", x, "--y", y, "--steps", "1", "-o", out}, exitUsage, []string{"--batch"}},
		{"no output", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2"}, exitUsage, []string{"-o OUT.onnx"}},
		{"bad optimizer", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--optimizer", "rmsprop", "-o", out}, exitUsage, []string{`"rmsprop"`, "sgd, adam or adamw"}},
		{"bad schedule", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--schedule", "linear", "-o", out}, exitUsage, []string{`"linear"`}},
		{"step without size", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--schedule", "step", "-o", out}, exitUsage, []string{"--step-size"}},
		{"bad lr", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--lr", "-1", "-o", out}, exitUsage, []string{"--lr -1"}},
		{"bad val-split", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--val-split", "1", "-o", out}, exitUsage, []string{"--val-split 1"}},
		{"val with tensors", []string{model, "--x", x, "--y", y, "--val", many, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--val-x FILE --val-y FILE", "--val-split"}},
		{"resume without checkpoint", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--resume", "-o", out}, exitUsage, []string{"--checkpoint DIR"}},
		{"momentum with adam", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--optimizer", "adam", "--momentum", "0.5", "-o", out}, exitUsage, []string{"--momentum"}},
		{"too many classes", []string{model, "--data", many, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"has 6 classes", "predicts 5", "--classes 6"}},
		{"classes below the data's", []string{model, "--data", many, "--steps", "1", "--batch", "2", "--classes", "4", "-o", out}, exitError, []string{"6 classes", "--classes 4"}},
		{"image size", []string{model, "--x", x32, "--y", y32, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"32x32", "16x16"}},
		{"input size fixed", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--input-size", "32", "-o", out}, exitUsage, []string{"--input-size 32", "16x16"}},
		{"missing model", []string{filepath.Join(ck, "none.onnx"), "--x", x, "--y", y, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"none.onnx"}},
		{"corrupt checkpoint", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--checkpoint", ck, "--resume", "-o", out}, exitError, []string{train.CheckpointName, "checksum"}},

		// Validation tensors.
		{"val-x without val-y", []string{model, "--x", x, "--y", y, "--val-x", vx, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--val-x and --val-y go together"}},
		{"val-y without val-x", []string{model, "--x", x, "--y", y, "--val-y", vy, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--val-x and --val-y go together"}},
		{"val-x with data", []string{model, "--data", small, "--val-x", vx, "--val-y", vy, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--val-x/--val-y", "--x/--y", "--val DIR"}},
		{"val-x with val-split", []string{model, "--x", x, "--y", y, "--val-x", vx, "--val-y", vy, "--val-split", "0.5", "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"one validation source"}},
		{"val-x image size", []string{model, "--x", x, "--y", y, "--val-x", x32, "--val-y", y32, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"--val-x " + x32, "32x32", "16x16"}},

		// Normalisation.
		{"no metadata", []string{bare, "--data", small, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{bare, "--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225"}},
		{"no metadata, mean only", []string{bare, "--data", small, "--steps", "1", "--batch", "2", "--mean", "0.5,0.5,0.5", "-o", out}, exitUsage, []string{"--mean", "--std"}},
		{"mean with tensors", []string{model, "--x", x, "--y", y, "--mean", "0.5,0.5,0.5", "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--mean applies to images", "already normalised"}},
		{"mean of two channels", []string{model, "--data", small, "--mean", "0.5,0.5", "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{`--mean "0.5,0.5"`, "one per input channel"}},
		{"mean not a number", []string{model, "--data", small, "--mean", "0.5,x,0.5", "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--mean", `"x"`, "finite"}},
		{"std of 0", []string{bare, "--data", small, "--mean", "0.5,0.5,0.5", "--std", "0.2,0,0.2", "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--std", "value 2", "above 0"}},
		{"bad recorded mean", []string{badMeta, "--data", small, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{badMeta, meanKey, `"0.5,0.5"`, "--mean and --std"}},
		{"std infinite", append([]string{model, "--data", small, "--steps", "1", "--batch", "2", "-o", out}, imageNet[0], imageNet[1], "--std", "inf,1,1"), exitUsage, []string{"--std", "finite"}},

		// Outputs, checked before any work.
		{"-o in a missing folder", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "-o", filepath.Join(tmp, "nope", "out.onnx")}, exitError, []string{"-o " + filepath.Join(tmp, "nope", "out.onnx"), "does not exist"}},
		{"-o is a folder", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "-o", tmp}, exitError, []string{"-o " + tmp, "is a folder"}},
		{"--log-json in a missing folder", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--log-json", filepath.Join(tmp, "nope", "log.jsonl"), "-o", out}, exitError, []string{"--log-json " + filepath.Join(tmp, "nope", "log.jsonl"), "does not exist"}},
		{"--checkpoint under a file", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--checkpoint", filepath.Join(x, "ck"), "-o", out}, exitError, []string{"--checkpoint " + filepath.Join(x, "ck"), "cannot be created", x + " is a file"}},
		{"--checkpoint is a file", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--checkpoint", x, "-o", out}, exitError, []string{"--checkpoint " + x, "not a folder"}},
		{"-o is the log", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--log-json", out, "-o", out}, exitError, []string{"-o " + out + " and --log-json " + out + " name the same file"}},

		// Another run's checkpoint.
		{"checkpoint of another run", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--checkpoint", ck, "-o", out}, exitUsage, []string{train.CheckpointPath(ck), "--resume", "--overwrite"}},
		{"overwrite and resume", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--checkpoint", ck, "--resume", "--overwrite", "-o", out}, exitUsage, []string{"--resume", "--overwrite"}},
		{"overwrite without checkpoint", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--overwrite", "-o", out}, exitUsage, []string{"--overwrite needs --checkpoint"}},

		// Labels outside the model's classes name the label file, the example, the label and the count.
		{"label outside the classes", []string{model, "--x", x7, "--y", y7, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"--y " + y7, "label 5 of example 5", "5 classes", "--classes 7"}},
		{"label outside --classes", []string{model, "--x", x7, "--y", y7, "--classes", "6", "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"--y " + y7, "label 6 of example 6", "6 classes"}},
		{"validation label outside the classes", []string{model, "--x", x, "--y", y, "--val-x", x7, "--val-y", y7, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"--val-y " + y7, "label 5 of example 5", "5 classes"}},
		{"held-out label outside the classes", []string{model, "--x", x7, "--y", y7, "--val-split", "0.5", "--classes", "6", "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"--y " + y7, "label 6 of example 6"}},

		// A --freeze prefix that matches nothing.
		{"freeze prefix matching nothing", []string{model, "--x", x, "--y", y, "--freeze", "featurs", "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--freeze", `"featurs"`}},
	}
	if err := os.WriteFile(train.CheckpointPath(ck), []byte("DNXCKPT1 but truncated......."), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := dnx(t, append([]string{"finetune"}, tc.args...)...)
			if status != tc.status {
				t.Errorf("status %d, want %d; stderr %q", status, tc.status, stderr)
			}
			// Every error is found before training: one line, no progress.
			if lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "dnx: ") {
				t.Errorf("stderr is not one dnx: line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was written despite the errors", out)
	}
}

// withoutMetadata writes a copy of a model with no metadata_props (as PyTorch exports it) and
// returns its path.
func withoutMetadata(t *testing.T, path string) string { return withMetadata(t, path) }

// withMetadata writes a copy of a model whose metadata_props are the key, value pairs kv, and
// returns its path.
func withMetadata(t *testing.T, path string, kv ...string) string {
	t.Helper()
	m, err := onnx.ReadModelFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m.MetadataProps = nil
	for i := 0; i+1 < len(kv); i += 2 {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	out := filepath.Join(t.TempDir(), "meta.onnx")
	if err := onnx.WriteModelFile(out, m); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSettingsDiff(t *testing.T) {
	old := map[string]string{"lr": "0.1", "epochs": "1", "freeze": "", "seed": "1"}
	cur := map[string]string{"lr": "0.05", "epochs": "2", "freeze": "features", "batch": "4", "seed": "1"}
	got := settingsDiff(old, cur, resumeFree("constant"))
	want := []string{`--batch (unset) -> 4`, `--freeze "" -> features`, `--lr 0.1 -> 0.05`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("settingsDiff = %q, want %q", got, want)
	}
	if d := settingsDiff(map[string]string{"total-steps": "4"}, map[string]string{"total-steps": "8"}, resumeFree("cosine")); len(d) != 1 {
		t.Errorf("cosine schedules must keep their length: %q", d)
	}
}

func TestEtaText(t *testing.T) {
	for _, tc := range []struct {
		secs float64
		want string
	}{{0.4, "0s"}, {45, "45s"}, {187, "3m07s"}, {7500, "2h05m"}} {
		if got := etaText(time.Duration(tc.secs * float64(time.Second))); got != tc.want {
			t.Errorf("etaText(%gs) = %q, want %q", tc.secs, got, tc.want)
		}
	}
	if got := plural.Count(1, "step") + ", " + plural.Count(2, "epoch") + ", " + plural.Count(0, "class", "classes") + ", " + plural.Count(1, "batch", "batches") + ", " + plural.Count(3, "batch", "batches"); got != "1 step, 2 epochs, 0 classes, 1 batch, 3 batches" {
		t.Errorf("plural: %q", got)
	}
}

// poisoned writes a copy of a model whose classifier.weight holds a NaN, so that its first step's
// loss is not finite, and returns its path.
func poisoned(t *testing.T, path string) string {
	t.Helper()
	g, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	v := g.Value("classifier.weight")
	if v == nil || !v.IsConst() {
		t.Fatal("no classifier.weight initializer")
	}
	tensor.Data[float32](v.Const)[0] = float32(math.NaN())
	m, err := graph.Export(g)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "nan.onnx")
	if err := onnx.WriteModelFile(out, m); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFinetuneValTensors(t *testing.T) {
	model := trainableTiny(t)
	x, y := tensorData(t, 8, 5, 16)
	vx, vy := tensorData(t, 6, 5, 16)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log.jsonl")
	rep := finetune(t, model, "--x", x, "--y", y, "--val-x", vx, "--val-y", vy, "--epochs", "2", "--batch", "4",
		"--log-json", logPath, "-o", filepath.Join(dir, "out.onnx"))
	if rep.TrainImages != 8 || rep.ValImages != 6 || rep.ValAcc == nil || rep.ValLoss == nil || !(*rep.ValLoss > 0) {
		t.Errorf("summary %+v", rep)
	}
	vals := 0
	for _, m := range readLog(t, logPath) {
		if m["val_images"] != nil {
			vals++
			if m["val_images"] != float64(6) || m["val_acc"] == nil {
				t.Errorf("validation line %v", m)
			}
		}
	}
	if vals != 2 {
		t.Errorf("%d validation lines, want 2 (one per epoch)", vals)
	}
}

func TestFinetuneNormalization(t *testing.T) {
	model := trainableTiny(t)
	bare := withoutMetadata(t, model)
	folder := imageFolder(t, 3, 2, 16, 8)
	p, err := models.Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	imageNet := []string{"--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"}
	outs, dir := map[string]string{}, t.TempDir() // the outputs outlive the subtests
	for _, tc := range []struct {
		name, model      string
		flags            []string
		source, desc     string
		mean, std        [3]float32
		textLine, output string
	}{
		{name: "metadata", model: model, source: "metadata", desc: "preset tiny", mean: p.Mean, std: p.Std,
			textLine: "Normalise   mean 0.4914,0.4822,0.4465, std 0.247,0.2435,0.2616 from the model's metadata (preset tiny)\n"},
		{name: "flags override metadata", model: model, flags: []string{"--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"},
			source: "flags", desc: "--mean/--std (overriding preset tiny)", mean: [3]float32{0.5, 0.5, 0.5}, std: [3]float32{0.25, 0.25, 0.25},
			textLine: "Normalise   mean 0.5,0.5,0.5, std 0.25,0.25,0.25 from --mean/--std (overriding preset tiny)\n"},
		{name: "mean overrides metadata", model: model, flags: []string{"--mean", "0.5,0.4,0.3"},
			source: "metadata+flags", desc: "preset tiny with --mean", mean: [3]float32{0.5, 0.4, 0.3}, std: p.Std},
		{name: "no metadata", model: bare, flags: imageNet, source: "flags", desc: "--mean/--std",
			mean: [3]float32{0.485, 0.456, 0.406}, std: [3]float32{0.229, 0.224, 0.225}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".onnx")
			args := append([]string{tc.model, "--data", folder, "--steps", "2", "--batch", "3", "--no-augment", "-o", out}, tc.flags...)
			rep := finetune(t, args...)
			if rep.NormSource != tc.source || rep.Normalization != tc.desc || rep.Mean == nil || rep.Std == nil {
				t.Fatalf("normalization %q from %q, mean %v std %v; want %q from %q", rep.Normalization, rep.NormSource, rep.Mean, rep.Std, tc.desc, tc.source)
			}
			for c := range 3 {
				if float32(rep.Mean[c]) != tc.mean[c] || float32(rep.Std[c]) != tc.std[c] {
					t.Errorf("mean %v std %v, want %v %v", *rep.Mean, *rep.Std, tc.mean, tc.std)
					break
				}
			}
			// The output records what it was trained with, so that it needs no flags next time.
			m, err := onnx.ReadModelFile(out)
			if err != nil {
				t.Fatal(err)
			}
			meta := map[string]string{}
			for _, kv := range m.MetadataProps {
				meta[kv.GetKey()] = kv.GetValue()
			}
			if want := channelsText(&tc.mean); meta[meanKey] != want || meta[stdKey] != channelsText(&tc.std) {
				t.Errorf("output metadata %s=%q %s=%q, want %q, %q", meanKey, meta[meanKey], stdKey, meta[stdKey], want, channelsText(&tc.std))
			}
			if tc.textLine != "" {
				stdout, stderr, status := dnx(t, append([]string{"finetune"}, args...)...)
				if status != 0 || !strings.Contains(stdout, tc.textLine) {
					t.Errorf("status %d, stderr %q; stdout lacks %q:\n%s", status, stderr, tc.textLine, stdout)
				}
			}
			outs[tc.name] = out
		})
	}
	// The flags reach the images: the same run with other statistics trains other weights.
	if a, b := outs["metadata"], outs["flags override metadata"]; a != "" && b != "" {
		before, after := initializers(t, a), initializers(t, b)
		if !slices.ContainsFunc(slices.Collect(maps.Keys(before)), func(k string) bool { return !tensorsIdentical(before[k], after[k]) }) {
			t.Errorf("--mean/--std changed nothing")
		}
	}
	// A model that dnx finetune trained from a bare export needs no flags any more.
	if out := outs["no metadata"]; out != "" {
		rep := finetune(t, out, "--data", folder, "--steps", "1", "--batch", "3", "-o", filepath.Join(t.TempDir(), "again.onnx"))
		if rep.NormSource != "metadata" || rep.Normalization != "recorded by dnx finetune" || rep.Mean == nil || float32(rep.Mean[0]) != 0.485 {
			t.Errorf("second run: normalization %q from %q, mean %v", rep.Normalization, rep.NormSource, rep.Mean)
		}
	}
}

func TestFinetuneDivergence(t *testing.T) {
	model := trainableTiny(t)
	nan := poisoned(t, model)
	x, y := tensorData(t, 8, 5, 16)
	for _, tc := range []struct {
		name  string
		args  []string
		step  int // the step named
		saved int // the step of the checkpoint left in place; -1 for none
		want  []string
	}{
		// The first step's loss is NaN: Step refuses it.
		{"non-finite loss", []string{nan, "--steps", "4"}, 1, -1, []string{"loss NaN", "the step was not applied"}},
		// Adam at a learning rate of 1000 takes the loss from 1.6 to about 1e7, finite.
		{"exploding loss", []string{model, "--steps", "20", "--optimizer", "adam", "--lr", "1000", "--checkpoint-every", "1"}, 2, 1,
			[]string{"exceeds 100 x max(first step's loss", "ln(5 classes) = 1.609"}},
		{"exploding loss, sgd", []string{model, "--steps", "20", "--lr", "1e9", "--checkpoint-every", "1"}, 2, 1, []string{"exceeds 100 x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ck, out, logPath := filepath.Join(dir, "ck"), filepath.Join(dir, "out.onnx"), filepath.Join(dir, "log.jsonl")
			args := append([]string{"finetune", "--json", "--x", x, "--y", y, "--batch", "4", "--checkpoint", ck, "--log-json", logPath, "-o", out}, tc.args...)
			stdout, stderr, status := dnx(t, args...)
			want := fmt.Sprintf("dnx: finetune: training diverged at step %d of ", tc.step)
			if status != exitError || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Fatalf("status %d, stdout %q, stderr %q; want status 1 and one line starting %q", status, stdout, stderr, want)
			}
			for _, w := range append(tc.want, "no model written", "checkpoint left as it was") {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a diverged run wrote %s", out)
			}
			meta, _, err := train.ReadCheckpoint(ck)
			switch {
			case tc.saved < 0 && !isNotExist(err):
				t.Errorf("checkpoint after divergence at step %d: %+v, %v; want none", tc.step, meta, err)
			case tc.saved >= 0 && (err != nil || meta.Step != tc.saved):
				t.Errorf("checkpoint at step %d (%v), want the one of step %d", meta.Step, err, tc.saved)
			}
			// The log shows the steps taken, the diverged one included when it was applied.
			if steps := len(readLog(t, logPath)); steps != tc.saved+1 && !(tc.saved < 0 && steps == 0) {
				t.Errorf("the log has %d lines", steps)
			}
		})
	}
}

func TestFinetuneCheckpointFolder(t *testing.T) {
	model := trainableTiny(t)
	x, y := tensorData(t, 8, 5, 16)
	ck := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.onnx")
	args := []string{model, "--x", x, "--y", y, "--batch", "4", "--checkpoint", ck, "-o", out}
	finetune(t, append(args, "--steps", "2")...)

	// A fresh run does not take over another run's checkpoint...
	_, stderr, status := dnx(t, append(append([]string{"finetune"}, args...), "--steps", "3")...)
	if status != exitUsage || !strings.Contains(stderr, train.CheckpointPath(ck)) || !strings.Contains(stderr, "--overwrite") {
		t.Fatalf("second run: status %d, stderr %q", status, stderr)
	}
	// ...unless told to. Temporary files of saves cut short go (ours only), each named on stderr.
	stale := []string{".finetune.ckpt.tmp-123456", ".finetune.ckpt.tmp-7"}
	kept := []string{".finetune.ckpt.tmp-12ab", ".finetune.ckpt.tmp-", "finetune.ckpt.tmp-5", ".other.tmp-1", "notes.txt"}
	for _, name := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(filepath.Join(ck, name), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(ck, ".finetune.ckpt.tmp-99"), 0o755); err != nil { // not a file: kept
		t.Fatal(err)
	}
	kept = append(kept, ".finetune.ckpt.tmp-99")
	stdout, stderr, status := dnx(t, append(append([]string{"finetune", "--json"}, args...), "--steps", "3", "--overwrite")...)
	if status != 0 {
		t.Fatalf("--overwrite: status %d, stderr %q", status, stderr)
	}
	var rep finetuneJSON
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.ResumedAt != 0 || rep.Steps != 3 {
		t.Errorf("--overwrite summary %+v, %v", rep, err)
	}
	for _, name := range stale {
		path := filepath.Join(ck, name)
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("stale %s is still there", name)
		}
		if !strings.Contains(stderr, "removed "+path) {
			t.Errorf("stderr %q does not name %s", stderr, path)
		}
	}
	for _, name := range kept {
		if _, err := os.Stat(filepath.Join(ck, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if meta, _, err := train.ReadCheckpoint(ck); err != nil || meta.Step != 3 {
		t.Errorf("checkpoint after --overwrite: step %d, %v", meta.Step, err)
	}

	// --resume cleans up too, and continues.
	if err := os.WriteFile(filepath.Join(ck, stale[0]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, status = dnx(t, append(append([]string{"finetune"}, args...), "--steps", "4", "--resume")...)
	if _, err := os.Stat(filepath.Join(ck, stale[0])); status != 0 || !os.IsNotExist(err) || !strings.Contains(stderr, "removed ") {
		t.Errorf("--resume: status %d, stderr %q, stale file: %v", status, stderr, err)
	}
}

func TestFinetuneSignals(t *testing.T) {
	model := trainableTiny(t)
	x, y := tensorData(t, 16, 5, 16)
	for _, tc := range []struct {
		sig        syscall.Signal
		checkpoint bool
		status     int
		want       string
	}{
		{syscall.SIGINT, true, 130, "interrupted by SIGINT at step 3 of 4"},
		{syscall.SIGTERM, true, 143, "interrupted by SIGTERM at step 3 of 4"},
		{syscall.SIGTERM, false, 143, "nothing saved"},
	} {
		t.Run(fmt.Sprintf("%s/checkpoint=%v", signalName(tc.sig), tc.checkpoint), func(t *testing.T) {
			// The signal reaches the command as Main delivers it: a cancelled context whose
			// cause is the signal (TestNotifySignals checks that a real signal does that).
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			stdout := &cancelAfter{n: 3, cancel: func() { cancel(signalCause{tc.sig}) }}
			var stderr bytes.Buffer
			ck := filepath.Join(t.TempDir(), "ck")
			out := filepath.Join(t.TempDir(), "out.onnx")
			common := []string{model, "--x", x, "--y", y, "--batch", "8", "--epochs", "2", "-o", out}
			args := append([]string{"dnx", "finetune", "--log-json", "-"}, common...)
			if tc.checkpoint {
				args = append(args, "--checkpoint", ck)
			}
			status := Run(ctx, args, stdout, &stderr)
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; status != tc.status || !strings.HasPrefix(last, "dnx: finetune: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("status %d, want %d; stderr %q, want %q", status, tc.status, stderr.String(), tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("an interrupted run wrote its output")
			}
			meta, _, err := train.ReadCheckpoint(ck)
			switch {
			case tc.checkpoint && (err != nil || meta.Step != 3):
				t.Errorf("checkpoint: step %d, %v; want step 3", meta.Step, err)
			case !tc.checkpoint && !isNotExist(err):
				t.Errorf("a checkpoint without --checkpoint: %v", err)
			}
			if tc.checkpoint {
				rep := finetune(t, append(common, "--checkpoint", ck, "--resume")...)
				if rep.ResumedAt != 3 || rep.Steps != 4 {
					t.Errorf("resumed: %+v", rep)
				}
			}
		})
	}
}

// A real SIGTERM sent to the process cancels notifySignals' context with the signal as its
// cause, which Run turns into status 143.
func TestNotifySignals(t *testing.T) {
	ctx, stop := notifySignals(context.Background(), syscall.SIGTERM)
	defer stop()
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Skipf("cannot signal this process: %v", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
	sc, ok := contextSignal(ctx)
	if !ok || sc.status() != 143 || signalName(sc.sig) != "SIGTERM" {
		t.Errorf("cause %v (%v): status %d", context.Cause(ctx), ok, sc.status())
	}
	if status := Run(ctx, []string{"dnx", "bench"}, io.Discard, io.Discard); status != 143 {
		t.Errorf("a failed command after SIGTERM: status %d, want 143", status)
	}
}

func TestFinetuneResumeLog(t *testing.T) {
	model := trainableTiny(t)
	x, y := tensorData(t, 16, 5, 16)
	dir := t.TempDir()
	common := []string{model, "--x", x, "--y", y, "--batch", "6", "--val-split", "0.25", "-o", filepath.Join(dir, "out.onnx")}
	run := func(ck, logPath string, extra ...string) string {
		t.Helper()
		stdout, stderr, status := dnx(t, append(append(append([]string{"finetune", "--json"}, common...), "--checkpoint", ck, "--log-json", logPath), extra...)...)
		if status != 0 {
			t.Fatalf("status %d, stderr %q, stdout %q", status, stderr, stdout)
		}
		return stderr
	}
	// The reference: 4 steps (2 epochs of 2 batches) in one go.
	refLog := filepath.Join(dir, "ref.jsonl")
	run(t.TempDir(), refLog, "--steps", "4")

	// Steps 1-2 (checkpoint at step 2), then steps up to 3 (checkpoint at 3) by a run that "dies"
	// without its checkpoint: the older one is put back.
	ck, logPath := t.TempDir(), filepath.Join(dir, "log.jsonl")
	run(ck, logPath, "--steps", "2")
	saved, err := os.ReadFile(train.CheckpointPath(ck))
	if err != nil {
		t.Fatal(err)
	}
	run(ck, logPath, "--steps", "3", "--resume")
	if err := os.WriteFile(train.CheckpointPath(ck), saved, 0o644); err != nil {
		t.Fatal(err)
	}
	// Resuming from step 2 again drops the lines written after it (step 3 and its validation)
	// before writing them anew.
	stderr := run(ck, logPath, "--steps", "4", "--resume")
	if !strings.Contains(stderr, "dropped 2 lines written after the checkpoint (step 2)") {
		t.Errorf("stderr %q", stderr)
	}
	got, want := readLog(t, logPath), readLog(t, refLog)
	if len(got) != len(want) {
		t.Fatalf("%d log lines, the uninterrupted run's %d:\n%v\n%v", len(got), len(want), got, want)
	}
	for i := range got {
		for _, k := range []string{"step", "epoch", "batch", "loss", "val_loss"} {
			if got[i][k] != want[i][k] {
				t.Errorf("line %d: %s %v, the uninterrupted run's %v", i+1, k, got[i][k], want[i][k])
			}
		}
	}

	// --resume with no checkpoint yet starts afresh, and so does its log.
	if err := os.WriteFile(logPath, []byte("{\"step\":9}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t.TempDir(), logPath, "--steps", "1", "--resume")
	if lines := readLog(t, logPath); len(lines) != 2 || lines[0]["step"] != float64(1) {
		t.Errorf("a fresh start under --resume: log %v", lines)
	}
}

// truncatedPNG returns a PNG whose header is sound but whose pixel data stops halfway.
func truncatedPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[:buf.Len()/2]
}

func TestFinetuneUnreadableImages(t *testing.T) {
	model := trainableTiny(t)
	dir := imageFolder(t, 2, 3, 16, 6)
	badHeader := filepath.Join(dir, "class0", "zz_header.png")
	truncated := filepath.Join(dir, "class1", "zz_truncated.png")
	if err := os.WriteFile(badHeader, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, truncatedPNG(t), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.onnx")
	args := []string{"finetune", model, "--data", dir, "--epochs", "2", "--batch", "4", "-o", out}

	// The header check leaves out zz_header.png before training; zz_truncated.png is found when
	// decoded and left out of its batch, every epoch, with one warning for the run.
	stdout, stderr, status := dnx(t, args...)
	if status != 0 {
		t.Fatalf("status %d, stderr %q", status, stderr)
	}
	for _, f := range []string{badHeader, truncated} {
		if n := strings.Count(stderr, "warning: skipping an unreadable image: "+f); n != 1 {
			t.Errorf("stderr names %s %d times, want once:\n%s", f, n, stderr)
		}
	}
	if !strings.Contains(stdout, "Skipped     2 unreadable images (named on stderr)\n") {
		t.Errorf("summary:\n%s", stdout)
	}
	var rep finetuneJSON
	stdout, _, _ = dnx(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Unreadable != 2 || rep.TrainImages != 7 || rep.Steps != 4 {
		t.Errorf("summary %+v, %v", rep, err)
	}

	// A folder of nothing but unreadable files is refused before training.
	none := t.TempDir()
	for _, c := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(none, c), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(none, c, "x.jpg"), []byte("not a JPEG"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, status = dnx(t, "finetune", model, "--data", none, "--steps", "1", "--batch", "2", "-o", out)
	if status != exitError || !strings.Contains(stderr, "none of its 2 images can be read") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("status %d, stderr %q", status, stderr)
	}
}

// --seed reaches the trainer: it draws the Dropout masks.
func TestFinetuneSeed(t *testing.T) {
	p, err := models.Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.Config.Clone()
	cfg.DropRate = 0.5
	m, err := builders.Build(cfg, builders.BuildOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "dropout.onnx")
	if err := onnx.WriteModelFile(model, m); err != nil {
		t.Fatal(err)
	}
	x, y := tensorData(t, 8, 5, 16)
	// No shuffling and no augmentation: the seed only draws the masks.
	train := func(seed string) map[string]*tensor.Tensor {
		out := filepath.Join(t.TempDir(), "out.onnx")
		finetune(t, model, "--x", x, "--y", y, "--steps", "2", "--batch", "4", "--no-shuffle", "--no-augment", "--seed", seed, "-o", out)
		return initializers(t, out)
	}
	a, b, c := train("1"), train("1"), train("2")
	sameInitializers(t, "same seed", a, b)
	if !slices.ContainsFunc(slices.Collect(maps.Keys(a)), func(k string) bool { return !tensorsIdentical(a[k], c[k]) }) {
		t.Errorf("--seed 1 and --seed 2 trained the same weights: the seed does not reach the Dropout masks")
	}
}

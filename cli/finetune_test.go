package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
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
				if rep.Normalization != "preset tiny" {
					t.Errorf("normalization %q", rep.Normalization)
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
	cancel context.CancelFunc
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
	meta, _, err := readCheckpoint(ck)
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
	broken := imageFolder(t, 2, 2, 16, 5)
	bad := filepath.Join(broken, "class1", "broken.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	x32, y32 := tensorData(t, 4, 2, 32)
	ck := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.onnx")
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
		{"val with tensors", []string{model, "--x", x, "--y", y, "--val", many, "--steps", "1", "--batch", "2", "-o", out}, exitUsage, []string{"--val-split"}},
		{"resume without checkpoint", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--resume", "-o", out}, exitUsage, []string{"--checkpoint DIR"}},
		{"momentum with adam", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--optimizer", "adam", "--momentum", "0.5", "-o", out}, exitUsage, []string{"--momentum"}},
		{"too many classes", []string{model, "--data", many, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"has 6 classes", "predicts 5", "--classes 6"}},
		{"classes below the data's", []string{model, "--data", many, "--steps", "1", "--batch", "2", "--classes", "4", "-o", out}, exitError, []string{"6 classes", "--classes 4"}},
		{"unreadable image", []string{model, "--data", broken, "--epochs", "1", "--batch", "2", "--no-shuffle", "-o", out}, exitError, []string{"broken.png"}},
		{"image size", []string{model, "--x", x32, "--y", y32, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"32x32", "16x16"}},
		{"input size fixed", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--input-size", "32", "-o", out}, exitUsage, []string{"--input-size 32", "16x16"}},
		{"missing model", []string{filepath.Join(ck, "none.onnx"), "--x", x, "--y", y, "--steps", "1", "--batch", "2", "-o", out}, exitError, []string{"none.onnx"}},
		{"corrupt checkpoint", []string{model, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--checkpoint", ck, "--resume", "-o", out}, exitError, []string{checkpointName, "checksum"}},
	}
	if err := os.WriteFile(checkpointPath(ck), []byte("DNXCKPT1 but truncated......."), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := dnx(t, append([]string{"finetune"}, tc.args...)...)
			if status != tc.status {
				t.Errorf("status %d, want %d; stderr %q", status, tc.status, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "dnx: ") || (tc.status == exitUsage && len(lines) != 1) {
				t.Errorf("stderr does not end with one dnx: line: %q", stderr)
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

func TestCheckpointFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	meta := checkpointMeta{Settings: map[string]string{"lr": "0.1"}, Seeds: runSeeds{Data: 1, Split: 2, Head: 3}, Epoch: 2, Batch: 5, Step: 25,
		Running: epochSums{LossSum: 1.5, Correct: 3, Images: 10}, TrainSeconds: 1.25}
	state := stateBytes("trainer state \x00\x01\x02")
	if err := writeCheckpoint(dir, meta, state); err != nil {
		t.Fatal(err)
	}
	got, gotState, err := readCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(gotState) != string(state) || got.Step != 25 || got.Epoch != 2 || got.Batch != 5 || got.Seeds != meta.Seeds ||
		got.Running != meta.Running || got.Settings["lr"] != "0.1" || got.TrainSeconds != 1.25 {
		t.Errorf("read back %+v, %q", got, gotState)
	}
	// Every truncation and every flipped byte is detected.
	data, err := os.ReadFile(checkpointPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{data[:len(data)-1], data[:10], append([]byte("XNXCKPT1"), data[8:]...), flip(data, 20), flip(data, len(data)-6)} {
		if err := os.WriteFile(checkpointPath(dir), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readCheckpoint(dir); err == nil || !strings.Contains(err.Error(), checkpointName) {
			t.Errorf("corrupt checkpoint (%d bytes) read without a proper error: %v", len(bad), err)
		}
	}
	if _, _, err := readCheckpoint(t.TempDir()); !isNotExist(err) {
		t.Errorf("missing checkpoint: %v", err)
	}
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

// stateBytes is a stateSaver writing fixed bytes.
type stateBytes string

func (s stateBytes) SaveState(w io.Writer) error {
	_, err := w.Write([]byte(s))
	return err
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}

func TestScoreLogits(t *testing.T) {
	// Row 0: logits (0, ln 3) -> p(1) = 0.75, label 1: loss -ln 0.75, correct. Row 1: equal
	// logits, label 1: loss ln 2, the tie goes to class 0: wrong.
	z := tensor.FromSlice(tensor.Shape{2, 2}, []float32{0, float32(math.Log(3)), 1, 1})
	loss, correct, err := scoreLogits(z, []int64{1, 1})
	if err != nil || correct != 1 || math.Abs(loss-(-math.Log(0.75)+math.Log(2))) > 1e-6 {
		t.Errorf("scoreLogits = %g, %d, %v", loss, correct, err)
	}
	if _, _, err := scoreLogits(z, []int64{0, 2}); err == nil {
		t.Errorf("label 2 of 2 classes accepted")
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
	if got := plural(1, "step") + ", " + plural(2, "step") + ", " + plural(3, "batch"); got != "1 step, 2 steps, 3 batches" {
		t.Errorf("plural: %q", got)
	}
}

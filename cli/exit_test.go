package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// Every command follows one convention (README "Exit status"): a file, model or data set that
// refuses the command line is status 1, the command line itself status 2, and either way
// stderr is one "dnx: " line without Go internals. Each command gets a truncated file, a
// folder where a file belongs, garbage, and bad flags.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	good := builtTiny(t)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	half := write("half.onnx", data[:len(data)/2])
	garbage := write("garbage.onnx", []byte("this is not a protobuf\n"))
	folder := filepath.Join(dir, "folder.onnx")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	ckpt, err := os.ReadFile(filepath.Join("..", "converters", "pytorch", "testdata", "densenet_ckpt.pth"))
	if err != nil {
		t.Fatal(err)
	}
	halfPth := write("half.pth", ckpt[:len(ckpt)/2])
	garbagePth := write("garbage.pth", []byte("PK\x03\x04 not really a zip"))
	halfNPY := write("half.npy", []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',"))
	folderNPY := filepath.Join(dir, "folder.npy")
	if err := os.Mkdir(folderNPY, 0o755); err != nil {
		t.Fatal(err)
	}
	train := trainableTiny(t)
	x, y := tensorData(t, 4, 5, 16)
	out := filepath.Join(dir, "out.onnx")
	missingDir := filepath.Join(dir, "nope", "out.onnx")

	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		// A model that is not one: status 1, naming the file.
		{"inspect truncated", []string{"inspect", half}, 1, []string{half, "corrupt"}},
		{"inspect garbage", []string{"inspect", garbage}, 1, []string{garbage}},
		{"inspect folder", []string{"inspect", folder}, 1, []string{folder, "is a folder"}},
		{"run truncated", []string{"run", half}, 1, []string{half, "corrupt"}},
		{"run folder", []string{"run", folder}, 1, []string{folder, "is a folder"}},
		{"bench truncated", []string{"bench", half}, 1, []string{half, "corrupt"}},
		{"bench garbage", []string{"bench", garbage}, 1, []string{garbage}},
		{"convert truncated model", []string{"convert", half, "--opset", "17", "-o", out}, 1, []string{half, "corrupt"}},
		{"convert --optimize truncated model", []string{"convert", half, "--optimize", "-o", out}, 1, []string{half, "corrupt"}},
		{"convert folder model", []string{"convert", folder, "--opset", "17", "-o", out}, 1, []string{folder, "is a folder"}},
		{"convert truncated checkpoint", []string{"convert", halfPth, "-o", out}, 1, []string{halfPth, "checkpoint"}},
		{"convert garbage checkpoint", []string{"convert", garbagePth, "-o", out}, 1, []string{garbagePth}},
		{"convert missing checkpoint", []string{"convert", filepath.Join(dir, "none.pth"), "-o", out}, 1, []string{"none.pth", "no such file"}},
		{"finetune truncated model", []string{"finetune", half, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "-o", out}, 1, []string{half, "corrupt"}},
		{"finetune folder model", []string{"finetune", folder, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "-o", out}, 1, []string{folder, "is a folder"}},

		{"bench --batch over --max-memory", []string{"bench", good, "--batch", "100000", "--max-memory", "1M"}, 1, []string{`random input "input"`, "[100000 3 16 16]", "over the memory budget", "1 MiB"}},
		{"bench a model without inputs", []string{"bench", constantOfShapeModel(t, []int64{4}, tensor.Float32)}, 1, []string{"has no inputs"}},

		// Input files that are not tensors: status 1, naming the file.
		{"run truncated npy", []string{"run", good, "--input", halfNPY}, 1, []string{halfNPY}},
		{"run folder npy", []string{"run", good, "--input", folderNPY}, 1, []string{"--input " + folderNPY, "is a folder"}},
		{"bench truncated npy", []string{"bench", good, "--input", halfNPY}, 1, []string{halfNPY}},
		{"bench folder --expect", []string{"bench", good, "--expect", folderNPY}, 1, []string{"--expect " + folderNPY, "is a folder"}},
		{"finetune truncated --x", []string{"finetune", train, "--x", halfNPY, "--y", y, "--steps", "1", "--batch", "2", "-o", out}, 1, []string{halfNPY}},
		{"finetune folder --y", []string{"finetune", train, "--x", x, "--y", folderNPY, "--steps", "1", "--batch", "2", "-o", out}, 1, []string{"--y " + folderNPY, "is a folder"}},

		// Outputs that cannot be written: status 1, before any work.
		{"build -o in a missing folder", []string{"build", "--preset", "tiny", "-o", missingDir}, 1, []string{"-o " + missingDir, "does not exist"}},
		{"demo -o in a missing folder", []string{"demo", "--steps", "1", "-o", missingDir}, 1, []string{"-o " + missingDir, "does not exist"}},
		{"convert -o a folder", []string{"convert", good, "--opset", "17", "-o", folder}, 1, []string{"-o " + folder, "is a folder"}},
		{"inspect --dot in a missing folder", []string{"inspect", good, "--dot", filepath.Join(dir, "nope", "g.dot")}, 1, []string{"--dot", "does not exist"}},

		// The command line itself: status 2, whatever the files (flags are checked first).
		{"inspect bad flag", []string{"inspect", half, "--frobnicate"}, 2, []string{"unknown flag --frobnicate", "dnx inspect --help"}},
		{"inspect bad --max-memory", []string{"inspect", half, "--max-memory", "lots"}, 2, []string{"--max-memory", `"lots"`}},
		{"run bad --threads", []string{"run", half, "--threads", "-1"}, 2, []string{"--threads -1"}},
		{"run bad --max-memory", []string{"run", half, "--max-memory", "0"}, 2, []string{"--max-memory", `"0"`}},
		{"bench bad --iters", []string{"bench", half, "--iters", "0"}, 2, []string{"--iters"}},
		{"bench bad --threads", []string{"bench", half, "--threads", "100000"}, 2, []string{"--threads 100000"}},
		{"convert bad --opset on a model", []string{"convert", half, "--opset", "3", "-o", out}, 2, []string{"--opset 3"}},
		{"convert --optimize bad --opset", []string{"convert", half, "--optimize", "--opset", "3", "-o", out}, 2, []string{"--opset 3"}},
		{"convert bad --opset on a checkpoint", []string{"convert", halfPth, "--opset", "3", "-o", out}, 2, []string{"--opset 3"}},
		{"convert nothing to do", []string{"convert", half}, 2, []string{"already ONNX", "--optimize"}},
		{"convert no -o", []string{"convert", halfPth}, 2, []string{"-o OUT.onnx"}},
		{"convert bad --max-memory", []string{"convert", halfPth, "-o", out, "--max-memory", "-5G"}, 2, []string{"--max-memory"}},
		{"build bad --depth", []string{"build", "--variant", "BC", "--growth", "12", "--depth", "60004", "-o", out}, 2, []string{"--depth 60004", "10000 layers", "1024"}},
		{"build bad --max-memory", []string{"build", "--preset", "tiny", "-o", out, "--max-memory", "12Q"}, 2, []string{"--max-memory", `"12Q"`}},
		{"models extra argument", []string{"models", "x"}, 2, []string{`"x"`}},
		{"finetune bad --threads", []string{"finetune", half, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--threads", "1000000", "-o", out}, 2, []string{"--threads 1000000"}},
		{"finetune bad --max-memory", []string{"finetune", half, "--x", x, "--y", y, "--steps", "1", "--batch", "2", "--max-memory", "%", "-o", out}, 2, []string{"--max-memory"}},
		{"demo bad --threads", []string{"demo", "--threads", "-1"}, 2, []string{"--threads -1"}},
		{"demo bad --max-memory", []string{"demo", "--inference-only", "--max-memory", "none"}, 2, []string{"--max-memory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := dnx(t, tc.args...)
			if status != tc.status {
				t.Errorf("status %d, want %d (stderr %q)", status, tc.status, stderr)
			}
			checkOneLine(t, stderr, tc.want...)
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}

// --threads is checked the same way by every command that has it: 0 (one per CPU) and 1..max
// pass, anything else is a usage error saying the range.
func TestThreadsFlag(t *testing.T) {
	model := builtTiny(t)
	in := filepath.Join(tiny(t), "test_data_set_0", "input_0.pb")
	limit := fmt.Sprintf("want 1..%d, or 0 for one per CPU", maxThreads())
	for _, n := range []int{-1, maxThreads() + 1, 100000, 1000000} {
		for _, cmd := range [][]string{
			{"run", model, "--input", in},
			{"bench", model, "--iters", "1", "--warmup", "0"},
			{"demo", "--steps", "1"},
			{"finetune", model, "--x", in, "--y", in, "--steps", "1", "--batch", "1", "-o", filepath.Join(t.TempDir(), "o.onnx")},
		} {
			t.Run(fmt.Sprintf("%s/%d", cmd[0], n), func(t *testing.T) {
				_, stderr, status := dnx(t, append(cmd, "--threads", fmt.Sprint(n))...)
				if status != exitUsage {
					t.Errorf("status %d, want 2", status)
				}
				checkOneLine(t, stderr, fmt.Sprintf("%s: --threads %d: %s", cmd[0], n, limit))
			})
		}
	}
	for _, n := range []string{"0", "1", "3"} {
		out := mustSucceed(t, "run", model, "--input", in, "--threads", n, "--json")
		if len(parseRun(t, out).Outputs) != 1 {
			t.Errorf("--threads %s: %s", n, out)
		}
	}
}

// float64 tensors are converted to float32 for float32 inputs, by dnx run and dnx finetune
// alike, with one note on stderr; values float32 cannot hold are refused, naming the element.
func TestFloat64Inputs(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(tiny(t), "model.onnx")
	in := readPB(t, filepath.Join(tiny(t), "test_data_set_0", "input_0.pb"))
	want := readPB(t, filepath.Join(tiny(t), "test_data_set_0", "output_0.pb"))
	f64 := func(name string, vals []float64, shape tensor.Shape) string {
		b, err := npy.Marshal(tensor.FromSlice(shape, vals))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vals := in.Float64s()
	good := f64("x64.npy", vals, in.Shape)
	huge := append([]float64(nil), vals...)
	huge[7] = 1e300
	big := f64("big64.npy", huge, in.Shape)

	out := filepath.Join(dir, "y.npy")
	stdout, stderr, status := dnx(t, "run", model, "--input", good, "-o", out, "--json")
	if status != 0 || stderr != "run: note: --input "+good+" holds float64 values; converted to float32\n" {
		t.Fatalf("status %d, stderr %q", status, stderr)
	}
	checkLogits(t, parseRun(t, stdout), want)
	_, stderr, status = dnx(t, "run", model, "--input", big)
	if status != exitError {
		t.Errorf("value beyond float32: status %d", status)
	}
	checkOneLine(t, stderr, "--input "+big, "element 7", "1e+300", "float32")

	// dnx finetune: the same note, the same refusal.
	train := trainableTiny(t)
	_, y := tensorData(t, 4, 5, 16)
	x32, _ := tensorData(t, 4, 5, 16)
	x, err := npy.ReadFile(x32)
	if err != nil {
		t.Fatal(err)
	}
	xs := x.Float64s()
	x64 := f64("train64.npy", xs, x.Shape)
	xs[3] = -1e40
	xBig := f64("trainbig.npy", xs, x.Shape)
	o := filepath.Join(dir, "o.onnx")
	_, stderr, status = dnx(t, "finetune", train, "--x", x64, "--y", y, "--steps", "1", "--batch", "2", "--json", "-o", o)
	if status != 0 || stderr != "finetune: note: --x "+x64+" holds float64 values; converted to float32\n" {
		t.Errorf("finetune on float64: status %d, stderr %q", status, stderr)
	}
	_, stderr, status = dnx(t, "finetune", train, "--x", xBig, "--y", y, "--steps", "1", "--batch", "2", "-o", o+"2")
	if status != exitError {
		t.Errorf("finetune beyond float32: status %d", status)
	}
	checkOneLine(t, stderr, "--x "+xBig, "element 3", "-1e+40", "float32")
}

// tensorFileDType reads the element type from a file's header, for .npy and .pb alike.
func TestTensorFileDType(t *testing.T) {
	dir := t.TempDir()
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
		x := tensor.New(dt, tensor.Shape{2, 3})
		b, err := npy.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, dt.String()+".npy")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		pb := filepath.Join(dir, dt.String()+".pb")
		if err := writeTensor(pb, formatPB, x, "x"); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{p, pb} {
			if got, ok := tensorFileDType(f); !ok || got != dt {
				t.Errorf("%s: %v, %v; want %v", f, got, ok, dt)
			}
		}
	}
	bad := filepath.Join(dir, "bad.npy")
	if err := os.WriteFile(bad, []byte("not numpy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := tensorFileDType(bad); ok {
		t.Errorf("%s: a type from garbage", bad)
	}
	if strings.Contains(bad, "\n") {
		t.Fatal("unreachable")
	}
}

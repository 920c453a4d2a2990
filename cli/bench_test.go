package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestBenchJSON(t *testing.T) {
	dir := tiny(t)
	out := mustSucceed(t, "bench", filepath.Join(dir, "model.onnx"), "--json", "--iters", "3", "--warmup", "1",
		"--threads", "2", "--input", filepath.Join(dir, "test_data_set_0", "input_0.pb"),
		"--expect", filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	rep := parseBench(t, out)
	for _, key := range []string{"engine", "version", "threads", "batch", "median_ms", "min_ms", "max_ms", "iters", "p90_ms", "peak_rss_bytes", "throughput_per_s"} {
		if _, ok := rep[key]; !ok {
			t.Errorf("bench --json has no %q: %s", key, out)
		}
	}
	if d, _ := rep["max_abs_diff"].(float64); d > 1e-4 {
		t.Errorf("max_abs_diff %g, want <= 1e-4", d)
	}
	if rep["batch"].(float64) != 2 || rep["planned"] != true || rep["spin"] != true {
		t.Errorf("batch %v planned %v spin %v, want 2, true and true", rep["batch"], rep["planned"], rep["spin"])
	}
	// A batch of 2 on 2 threads runs in two lanes of one row (exec.Session.Lanes).
	if lanes, _ := rep["lanes"].([]any); len(lanes) != 2 || lanes[0] != 1.0 || lanes[1] != 1.0 {
		t.Errorf("lanes %v, want [1 1]", rep["lanes"])
	}
	// --no-spin runs the same model on blocking Workers, with the same outputs.
	out = mustSucceed(t, "bench", filepath.Join(dir, "model.onnx"), "--json", "--iters", "2", "--warmup", "0",
		"--threads", "2", "--no-spin", "--input", filepath.Join(dir, "test_data_set_0", "input_0.pb"),
		"--expect", filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	rep = parseBench(t, out)
	if d, _ := rep["max_abs_diff"].(float64); rep["spin"] != false || d > 1e-4 {
		t.Errorf("--no-spin: spin %v, max_abs_diff %v; want false and <= 1e-4", rep["spin"], rep["max_abs_diff"])
	}
}

func TestBenchRandomBatchAndErrors(t *testing.T) {
	model := filepath.Join(tiny(t), "model.onnx")
	out := mustSucceed(t, "bench", model, "--batch", "3", "--iters", "2", "--warmup", "0")
	if !strings.Contains(out, "input [3,3,16,16]") || !strings.Contains(out, "Latency") {
		t.Errorf("bench text output: %s", out)
	}
	if _, stderr, status := dnx(t, "bench", model, "--iters", "0"); status != exitUsage || !strings.Contains(stderr, "--iters") {
		t.Errorf("--iters 0: status %d, stderr %q", status, stderr)
	}
}

func parseBench(t *testing.T, out string) map[string]any {
	t.Helper()
	var rep map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rep); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	return rep
}

// --cpuprofile writes a pprof profile of the timed runs, replacing the file only once they
// succeeded: a bench that fails leaves an earlier profile as it was, and a path that cannot be
// written fails before any run, in one line.
func TestBenchCPUProfile(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(tiny(t), "model.onnx")
	prof := filepath.Join(dir, "cpu.prof")
	mustSucceed(t, "bench", model, "--iters", "3", "--warmup", "0", "--cpuprofile", prof, "--json")
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof profiles are gzipped
		t.Fatalf("profile %d bytes, %v: not a gzipped pprof profile", len(b), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left beside the profile: %v", ents)
	}

	old := []byte("an earlier profile")
	if err := os.WriteFile(prof, old, 0o644); err != nil {
		t.Fatal(err)
	}
	i32 := filepath.Join(dir, "want.pb")
	if err := onnx.WriteTensorFile(i32, tensor.New(tensor.Int32, tensor.Shape{1, 5}), "logits"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bench fails", []string{"--expect", i32, "--cpuprofile", prof}, []string{"--expect " + i32, "int32[1,5]", "float32"}},
		{"missing folder", []string{"--cpuprofile", filepath.Join(dir, "nope", "cpu.prof")}, []string{"--cpuprofile", "does not exist"}},
		{"a folder", []string{"--cpuprofile", dir}, []string{"--cpuprofile " + dir, "is a folder"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := dnx(t, append([]string{"bench", model, "--iters", "2", "--json"}, tc.args...)...)
			if status != exitError || stdout != "" {
				t.Errorf("status %d, stdout %q; want 1 and no report", status, stdout)
			}
			checkOneLine(t, stderr, tc.want...)
			if b, _ := os.ReadFile(prof); !bytes.Equal(b, old) {
				t.Errorf("the earlier profile was changed")
			}
		})
	}
}

// Counts in messages agree with their nouns (plural), in every command's summary.
func TestPlurals(t *testing.T) {
	model := builtTiny(t)
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"bench, one of each", []string{"bench", model, "--threads", "1", "--iters", "1", "--warmup", "1"},
			[]string{", 1 thread (", "(1 run after 1 warm-up run)"}, []string{"1 threads", "1 runs"}},
		{"bench, several", []string{"bench", model, "--threads", "2", "--iters", "2", "--warmup", "0"},
			[]string{", 2 threads (", "(2 runs after 0 warm-up runs)", " steps on fast kernels"}, nil},
		{"inspect", []string{"inspect", model}, []string{"Operators (", " nodes)"}, nil},
		{"convert --opset", []string{"convert", model, "--opset", "17", "-o", filepath.Join(dir, "o17.onnx")}, []string{" nodes; wrote "}, nil},
		{"convert --optimize", []string{"convert", model, "--optimize", "-o", filepath.Join(dir, "opt.onnx")}, []string{" nodes ("}, nil},
		{"convert a checkpoint", []string{"convert", filepath.Join("..", "converters", "pytorch", "testdata", "densenet_ckpt.pth"), "--input-size", "32", "-o", filepath.Join(dir, "c.onnx")},
			[]string{"67 tensors loaded", " parameters, "}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := mustSucceed(t, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("%q in\n%s", w, out)
				}
			}
		})
	}
}

// --steps times every step of the plan: the JSON report lists the slowest steps, each with its
// node, kernel and share, and the time per kernel; the text report prints both tables.
func TestBenchSteps(t *testing.T) {
	model := filepath.Join(tiny(t), "model.onnx")
	rep := parseBench(t, mustSucceed(t, "bench", model, "--iters", "3", "--warmup", "1", "--steps", "4", "--json"))
	steps, _ := rep["slow_steps"].([]any)
	kernels, _ := rep["kernel_ms"].(map[string]any)
	if len(steps) != 4 || len(kernels) == 0 {
		t.Fatalf("slow_steps %v, kernel_ms %v; want 4 steps and some kernels", rep["slow_steps"], rep["kernel_ms"])
	}
	prev := 1e9
	convs := 0
	for _, s := range steps {
		st := s.(map[string]any)
		if op, _ := st["op"].(string); strings.Contains(op, "Conv") {
			if gf, _ := st["gflops"].(float64); gf <= 0 {
				t.Errorf("convolution step %v has no GFLOP/s", st)
			}
			convs++
		}
		ms, _ := st["ms"].(float64)
		if st["node"] == nil || st["kernel"] == "" || st["kernel"] == "folded" || ms > prev {
			t.Errorf("step %v: want a named, timed, non-folded step, slowest first", st)
		}
		prev = ms
		if _, ok := kernels[st["kernel"].(string)]; !ok {
			t.Errorf("kernel %v of a slow step has no kernel_ms entry", st["kernel"])
		}
	}
	if convs == 0 {
		t.Errorf("no convolution among the slowest steps %v", steps)
	}
	out := mustSucceed(t, "bench", model, "--iters", "2", "--warmup", "0", "--steps", "3")
	for _, want := range []string{"Time per kernel", "Slowest steps", "GFLOP/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report has no %q:\n%s", want, out)
		}
	}
	// In lanes, the steps are the lanes' plan's, their times summed over the lanes.
	out = mustSucceed(t, "bench", model, "--iters", "2", "--warmup", "0", "--steps", "3", "--batch", "4", "--threads", "2")
	for _, want := range []string{"2 lanes of 2 rows", "summed over its steps and the 2 lanes", "[2,"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report of a batch in lanes has no %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{{"--steps", "-1"}, {"--steps", "2", "--reference"}} {
		if _, stderr, status := dnx(t, append([]string{"bench", model, "--iters", "1"}, args...)...); status != exitUsage || !strings.Contains(stderr, "--steps") {
			t.Errorf("%v: status %d, stderr %q; want a usage error naming --steps", args, status, stderr)
		}
	}
}

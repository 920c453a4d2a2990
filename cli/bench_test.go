package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
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
	// --no-spin runs the same model on a blocking pool, with the same outputs.
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
	if !strings.Contains(out, "input [3 3 16 16]") || !strings.Contains(out, "Latency") {
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

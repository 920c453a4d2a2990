package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/graph"
)

func TestConvertOptimize(t *testing.T) {
	dir := testenv.Shared(t, "models/finetune_tiny")
	out := filepath.Join(t.TempDir(), "opt.onnx")
	msg := mustSucceed(t, "convert", filepath.Join(dir, "model_before.onnx"), "--optimize", "-o", out)
	if !strings.Contains(msg, "removed 4 BatchNormalization") {
		t.Errorf("summary %q does not report the 4 folded BNs", msg)
	}
	g, err := graph.Load(out)
	if err != nil {
		t.Fatalf("the optimized model does not load: %v", err)
	}
	if n := g.OpHistogram()["BatchNormalization"]; n != 6 {
		t.Errorf("%d BatchNormalization nodes after --optimize, want 6", n)
	}
	res := mustSucceed(t, "bench", out, "--input", filepath.Join(dir, "x.pb"), "--expect", filepath.Join(dir, "logits_before_eval.pb"), "--iters", "1", "--warmup", "0", "--json")
	r := parseBench(t, res)
	if d := r["max_abs_diff"].(float64); d > 1e-4 {
		t.Errorf("optimized model differs from PyTorch by %g", d)
	}
	if _, stderr, status := dnx(t, "convert", filepath.Join(dir, "model_before.onnx"), "-o", out); status != exitUsage || !strings.Contains(stderr, "--optimize") {
		t.Errorf("convert of an .onnx with nothing to do: status %d, %q", status, stderr)
	}
}

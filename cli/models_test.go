package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
)

func TestModelsText(t *testing.T) {
	out := mustSucceed(t, "models")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	presets := models.Presets()
	if len(lines) != 1+len(presets) {
		t.Fatalf("%d lines, want a header and %d presets:\n%s", len(lines), len(presets), out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME VARIANT INPUT CLASSES PARAMS MACS DESCRIPTION" {
		t.Errorf("header %q", lines[0])
	}
	for i, p := range presets {
		f := strings.Fields(lines[i+1])
		if len(f) < 9 || f[0] != p.Name || f[1] != p.Config.Variant() {
			t.Errorf("line %q for preset %s", lines[i+1], p.Name)
		}
	}
	// Counts print with three significant digits and an SI suffix.
	for i, want := range map[int]string{
		0:                "densenet121 BC 224x224 1000 7.98 M 2.83 G DenseNet-121",
		len(presets) - 1: "tiny BC 16x16 5 3.65 K 559 K tiny DenseNet-BC",
	} {
		if got := strings.Join(strings.Fields(lines[i+1]), " "); !strings.HasPrefix(got, want) {
			t.Errorf("line %d is %q, want it to start with %q", i+1, got, want)
		}
	}
}

func TestModelsJSON(t *testing.T) {
	out := mustSucceed(t, "models", "--json")
	var reps []presetReport
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatalf("models --json printed %q: %v", out, err)
	}
	presets := models.Presets()
	if len(reps) != len(presets) {
		t.Fatalf("%d presets, want %d", len(reps), len(presets))
	}
	for i, p := range presets {
		r := reps[i]
		if r.Name != p.Name || r.Parameters != builders.Params(p.Config) || r.MACs != builders.MACs(p.Config) ||
			r.InputSize != p.Config.InputSize || r.Classes != p.Config.Classes || r.Description != p.Description ||
			r.Mean != p.Mean || r.Config.Growth != p.Config.Growth {
			t.Errorf("preset %d: %+v", i, r)
		}
	}
	// The published counts: torchvision densenet121 has 7,978,856 parameters.
	if reps[0].Name != "densenet121" || reps[0].Parameters != 7978856 || reps[0].Depth != 121 {
		t.Errorf("densenet121: %+v", reps[0])
	}
	if _, stderr, status := dnx(t, "models", "extra"); status != exitUsage || !strings.Contains(stderr, `"extra"`) {
		t.Errorf("models extra: status %d, stderr %q", status, stderr)
	}
}

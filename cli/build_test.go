package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
)

// buildJSON is the part of `dnx build --json` the tests read.
type buildJSON struct {
	Name       string
	Preset     string
	Variant    string
	Depth      int
	Config     configJSON
	Parameters int64
	MACs       int64
	Form       string
	BNNodes    int `json:"bn_nodes"`
	BNFolded   int `json:"bn_folded"`
	Dropouts   int `json:"dropout_nodes"`
	Opset      int
	File       string
	Bytes      int64
}

func buildReportOf(t *testing.T, args ...string) buildJSON {
	t.Helper()
	out := mustSucceed(t, append([]string{"build", "--json"}, args...)...)
	var rep buildJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("build --json printed %q: %v", out, err)
	}
	return rep
}

func TestBuildPreset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	rep := buildReportOf(t, "--preset", "tiny", "-o", path, "--seed", "7")
	// torch_params of shared/models/densenet_tiny/meta.json, and the hand count of its MACs.
	if rep.Name != "tiny" || rep.Preset != "tiny" || rep.Parameters != 3645 || rep.MACs != tinyMACs ||
		rep.Form != "training" || rep.BNNodes != 10 || rep.BNFolded != 0 || rep.Opset != builders.DefaultOpset ||
		rep.Depth != 11 || rep.File != path {
		t.Errorf("report %+v", rep)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != rep.Bytes {
		t.Fatalf("written file: %v (size %d, report says %d)", err, st.Size(), rep.Bytes)
	}
	g, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if gs := g.Stats(); gs.Ops["BatchNormalization"] != 10 {
		t.Errorf("written model has ops %v", gs.Ops)
	}

	// The text summary of the inference form.
	out := mustSucceed(t, "build", "--preset", "tiny", "--inference", "--opset", "21", "--classes", "7", "-o", path)
	for _, want := range []string{
		"Model       tiny: DenseNet-BC, depth 11, k=4, blocks 2,2, 8 stem channels (cifar stem), bn_size 4, θ=0.5\n",
		"Input       float32[batch,3,16,16] -> logits float32[batch,7]\n",
		"Parameters  3,679 (3.68 K)\n",
		"MACs        559,216 (559 K) per 16x16 image\n",
		"Form        inference: 4 BNs folded into convs, 6 BatchNormalization nodes remain\n",
		"Opset       ai.onnx 21, IR 10;",
		"Wrote       " + path,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	m, err := onnx.ReadModelFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := m.GetOpsetImport()[0].GetVersion(); v != 21 {
		t.Errorf("opset %d, want 21", v)
	}
}

func TestBuildVariant(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		want    builders.Config
		depth   int
		variant string
	}{
		{"BC from depth", []string{"--variant", "BC", "--depth", "100", "--growth", "12"},
			builders.Config{Growth: 12, Blocks: []int{16, 16, 16}, InitFeatures: 24, BNSize: 4, Compression: 0.5, Stem: builders.StemCIFAR, Classes: 10, InputSize: 32},
			100, "densenet_bc100_k12"},
		{"plain from depth", []string{"--variant", "plain", "--depth", "40", "--growth", "12"},
			builders.Config{Growth: 12, Blocks: []int{12, 12, 12}, InitFeatures: 16, Compression: 1, Stem: builders.StemCIFAR, Classes: 10, InputSize: 32},
			40, "densenet40_k12"},
		{"C with compression", []string{"--variant", "c", "--depth", "13", "--growth", "4", "--compression", "0.25"},
			builders.Config{Growth: 4, Blocks: []int{3, 3, 3}, InitFeatures: 16, Compression: 0.25, Stem: builders.StemCIFAR, Classes: 10, InputSize: 32},
			13, "densenet_c13_k4"},
		{"blocks without depth, ImageNet stem", []string{"--variant", "BC", "--blocks", "6,12,24,16", "--growth", "32", "--stem", "imagenet"},
			builders.Config{Growth: 32, Blocks: []int{6, 12, 24, 16}, InitFeatures: 64, BNSize: 4, Compression: 0.5, Stem: builders.StemImageNet, Classes: 1000, InputSize: 224},
			121, "densenet_bc121_k32_imagenet"},
		{"blocks override depth, explicit widths", []string{"--variant", "B", "--depth", "16", "--blocks", "2,3", "--growth", "4", "--bn-size", "2", "--init-features", "6", "--classes", "3", "--input-size", "20"},
			builders.Config{Growth: 4, Blocks: []int{2, 3}, InitFeatures: 6, BNSize: 2, Compression: 1, Stem: builders.StemCIFAR, Classes: 3, InputSize: 20},
			13, "densenet_b13_k4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".onnx")
			rep := buildReportOf(t, append(tc.args, "-o", path)...)
			if !reflect.DeepEqual(rep.Config, newConfigJSON(tc.want)) {
				t.Errorf("config %+v, want %+v", rep.Config, newConfigJSON(tc.want))
			}
			if rep.Parameters != builders.Params(tc.want) || rep.MACs != builders.MACs(tc.want) ||
				rep.Depth != tc.depth || rep.Name != tc.variant || rep.Preset != "" || rep.Variant != tc.want.Variant() {
				t.Errorf("report %+v", rep)
			}
			m, err := onnx.ReadModelFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := countOps(m, "BatchNormalization"); got != bnModules(tc.want) {
				t.Errorf("%d BatchNormalization nodes, want %d", got, bnModules(tc.want))
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.onnx")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"impossible depth", []string{"--variant", "BC", "--depth", "41", "--growth", "12"}, []string{"build: --depth 41: a CIFAR DenseNet-BC needs depth 6n+4", "40 or 46"}},
		{"depth too small", []string{"--variant", "plain", "--depth", "4", "--growth", "12"}, []string{"--depth 4: a CIFAR plain DenseNet needs depth 3n+4", "such as 7"}},
		{"impossible ImageNet depth", []string{"--variant", "B", "--depth", "12", "--growth", "12", "--stem", "imagenet"}, []string{"DenseNet-B with the ImageNet stem needs depth 6n+4"}},
		{"no model", nil, []string{"--preset NAME", "--variant"}},
		{"preset and variant", []string{"--preset", "tiny", "--variant", "BC"}, []string{"exclusive"}},
		{"preset and growth", []string{"--preset", "tiny", "--growth", "3"}, []string{"--preset tiny fixes the architecture; --growth"}},
		{"unknown preset", []string{"--preset", "densenet999"}, []string{`"densenet999"`, "densenet121", "dnx models"}},
		{"unknown variant", []string{"--variant", "D", "--depth", "40", "--growth", "12"}, []string{`--variant "D"`}},
		{"unknown stem", []string{"--variant", "BC", "--depth", "40", "--growth", "12", "--stem", "svhn"}, []string{`--stem "svhn"`}},
		{"no growth", []string{"--variant", "BC", "--depth", "40"}, []string{"--growth"}},
		{"zero growth", []string{"--variant", "BC", "--depth", "40", "--growth", "0"}, []string{"--growth 0"}},
		{"no depth", []string{"--variant", "BC", "--growth", "12"}, []string{"--depth L or --blocks"}},
		{"bad blocks", []string{"--variant", "BC", "--blocks", "6,0", "--growth", "12"}, []string{`--blocks "6,0"`}},
		{"compression for B", []string{"--variant", "B", "--depth", "40", "--growth", "12", "--compression", "0.5"}, []string{"DenseNet-B has no compression", "--variant BC"}},
		{"compression 1 for BC", []string{"--variant", "BC", "--depth", "40", "--growth", "12", "--compression", "1"}, []string{"θ in (0,1)", "--variant B"}},
		{"bn-size for C", []string{"--variant", "C", "--depth", "40", "--growth", "12", "--bn-size", "4"}, []string{"--bn-size applies to the bottleneck variants"}},
		{"input too small", []string{"--variant", "BC", "--depth", "40", "--growth", "12", "--input-size", "2"}, []string{"densenet_bc40_k12", "too small"}},
		{"negative classes", []string{"--preset", "tiny", "--classes", "-1"}, []string{"--classes -1"}},
		{"opset", []string{"--preset", "tiny", "--opset", "22"}, []string{"--opset 22", "11 to 21"}},
		{"positional argument", []string{"--preset", "tiny", "model.onnx"}, []string{`unexpected argument "model.onnx"`}},
		{"drop rate 1", []string{"--preset", "tiny", "--drop-rate", "1"}, []string{"--drop-rate 1: want a probability in [0, 1)"}},
		{"negative drop rate", []string{"--variant", "BC", "--depth", "40", "--growth", "12", "--drop-rate", "-0.1"}, []string{"--drop-rate -0.1: want a probability"}},
		{"NaN drop rate", []string{"--preset", "tiny", "--drop-rate", "NaN"}, []string{"--drop-rate NaN: want a probability"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"build"}, tc.args...)
			if tc.name != "positional argument" {
				args = append(args, "-o", out)
			}
			stdout, stderr, status := dnx(t, args...)
			if status != exitUsage || stdout != "" {
				t.Errorf("status %d (want %d), stdout %q", status, exitUsage, stdout)
			}
			if !strings.HasPrefix(stderr, "dnx: build: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr is not one 'dnx: build: ' line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	if _, _, status := dnx(t, "build", "--preset", "tiny"); status != exitUsage {
		t.Errorf("missing -o: status %d, want %d", status, exitUsage)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was written despite the errors", out)
	}
}

// TestBuildDropRate checks --drop-rate: the rate in the report (JSON and text) and one Dropout node
// per dense layer in the written training form, none in the inference form.
func TestBuildDropRate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		rate     float64
		dropouts int
	}{
		{"preset", []string{"--preset", "tiny", "--drop-rate", "0.2"}, 0.2, 4},
		{"variant, opset 11", []string{"--variant", "BC", "--depth", "10", "--growth", "4", "--drop-rate", "0.5", "--opset", "11"}, 0.5, 3},
		{"inference form", []string{"--preset", "tiny", "--drop-rate", "0.2", "--inference"}, 0.2, 0},
		{"zero", []string{"--preset", "tiny", "--drop-rate", "0"}, 0, 0},
		{"not given", []string{"--preset", "tiny"}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".onnx")
			rep := buildReportOf(t, append(tc.args, "-o", path)...)
			if rep.Config.DropRate != tc.rate || rep.Dropouts != tc.dropouts {
				t.Errorf("report: drop rate %g, %d Dropout nodes; want %g, %d", rep.Config.DropRate, rep.Dropouts, tc.rate, tc.dropouts)
			}
			m, err := onnx.ReadModelFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := countOps(m, "Dropout"); got != tc.dropouts {
				t.Errorf("written model has %d Dropout nodes, want %d", got, tc.dropouts)
			}
		})
	}
	out := mustSucceed(t, "build", "--preset", "tiny", "--drop-rate", "0.2", "-o", filepath.Join(dir, "text.onnx"))
	for _, want := range []string{", θ=0.5, drop rate 0.2\n", "Form        training: 10 BatchNormalization nodes, torchvision state_dict names, 4 Dropout nodes\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

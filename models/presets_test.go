package models

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// TestParams pins every preset's parameter count: torchvision's for the ImageNet models
// (sum(p.numel() for p in model.parameters())) and the paper's Table 2 models, exactly.
func TestParams(t *testing.T) {
	want := map[string]int64{
		"densenet121":        7_978_856,
		"densenet169":        14_149_480,
		"densenet201":        20_013_928,
		"densenet161":        28_681_000,
		"densenet264":        33_337_704,
		"densenet40_k12":     1_019_722,
		"densenet100_k12":    6_979_642,
		"densenet100_k24":    27_249_082,
		"densenet_bc100_k12": 769_162,
		"densenet_bc250_k24": 15_324_406,
		"densenet_bc190_k40": 25_624_430,
		"tiny":               3_645, // meta.json torch_params of shared/models/densenet_tiny
	}
	ps := Presets()
	if len(ps) != len(want) {
		t.Errorf("%d presets, want %d", len(ps), len(want))
	}
	for _, p := range ps {
		if err := p.Config.Validate(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("preset %s has no expected parameter count", p.Name)
			continue
		}
		if got := builders.Params(p.Config); got != w {
			t.Errorf("%s: Params = %d, want %d", p.Name, got, w)
		}
	}
}

// TestCIFARPresetsMatchFromDepth checks the CIFAR presets against the paper's depth formula.
func TestCIFARPresetsMatchFromDepth(t *testing.T) {
	tests := []struct {
		name, variant string
		depth, k      int
	}{
		{"densenet40_k12", "plain", 40, 12},
		{"densenet100_k12", "plain", 100, 12},
		{"densenet100_k24", "plain", 100, 24},
		{"densenet_bc100_k12", "BC", 100, 12},
		{"densenet_bc250_k24", "BC", 250, 24},
		{"densenet_bc190_k40", "BC", 190, 40},
	}
	for _, tt := range tests {
		p, err := Lookup(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := builders.FromDepth(tt.variant, tt.depth, tt.k, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p.Config, c) {
			t.Errorf("%s: preset %v, FromDepth %v", tt.name, p.Config, c)
		}
		if p.Mean != cifarMean || p.Std != cifarStd {
			t.Errorf("%s: CIFAR preset with mean %v std %v", tt.name, p.Mean, p.Std)
		}
	}
}

func TestLookup(t *testing.T) {
	p, err := Lookup("densenet161")
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.Growth != 48 || p.Config.InitFeatures != 96 || !slices.Equal(p.Config.Blocks, []int{6, 12, 36, 24}) ||
		p.Mean != imageNetMean || p.Std != imageNetStd || p.Description == "" {
		t.Errorf("densenet161 = %+v", p)
	}
	_, err = Lookup("densenet122")
	if !errors.Is(err, ErrUnknownPreset) || !strings.Contains(err.Error(), `"densenet122"`) ||
		!strings.Contains(err.Error(), "densenet121, densenet169") || !strings.Contains(err.Error(), "tiny") {
		t.Errorf("Lookup(densenet122) error = %v", err)
	}
	if names := Names(); len(names) != len(Presets()) || names[0] != "densenet121" {
		t.Errorf("Names() = %v", names)
	}
}

// TestPresetsFresh checks that a caller editing a preset does not change later results.
func TestPresetsFresh(t *testing.T) {
	a := Presets()
	a[0].Config.Blocks[0] = 99
	a[0].Name = "x"
	b, err := Lookup("densenet121")
	if err != nil {
		t.Fatal(err)
	}
	if b.Config.Blocks[0] != 6 {
		t.Error("editing a preset's Blocks changed a later Lookup")
	}
}

// TestBuildEveryPreset builds each preset in the training form and checks the initializer count
// and total size against the config arithmetic: one weight per conv, four tensors per BN, the
// classifier's two. Models are built one at a time and dropped; the large ones need -short off.
func TestBuildEveryPreset(t *testing.T) {
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			params := builders.Params(p.Config)
			if testing.Short() && params > 2_000_000 {
				t.Skipf("%d parameters; skipped with -short", params)
			}
			m, err := builders.Build(p.Config, builders.BuildOptions{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			layers, nb := 0, len(p.Config.Blocks)
			for _, n := range p.Config.Blocks {
				layers += n
			}
			perLayer := 1
			if p.Config.Bottleneck() {
				perLayer = 2
			}
			convs := 1 + perLayer*layers + nb - 1
			bns := perLayer*layers + nb - 1 + 1
			if p.Config.Stem == builders.StemImageNet {
				bns++
			}
			var n, vals int64
			for _, tp := range m.Graph.Initializer {
				n++
				if !strings.HasSuffix(tp.GetName(), ".running_mean") && !strings.HasSuffix(tp.GetName(), ".running_var") {
					vals += int64(len(tp.RawData) / 4)
				}
			}
			if want := int64(convs + 4*bns + 2); n != want {
				t.Errorf("%d initializers, want %d", n, want)
			}
			if vals != params {
				t.Errorf("initializers hold %d parameters, Params = %d", vals, params)
			}
		})
	}
}

// torchvisionKey matches every state_dict key of torchvision's DenseNet except the
// num_batches_tracked buffers, which ONNX exports do not contain.
var torchvisionKey = regexp.MustCompile(`^(features\.(conv0\.weight|` +
	`(norm0|norm5|denseblock\d+\.denselayer\d+\.norm[12]|transition\d+\.norm)\.(weight|bias|running_mean|running_var)|` +
	`denseblock\d+\.denselayer\d+\.conv[12]\.weight|transition\d+\.conv\.weight)|classifier\.(weight|bias))$`)

func TestDensenet121Names(t *testing.T) {
	p, err := Lookup("densenet121")
	if err != nil {
		t.Fatal(err)
	}
	m, err := builders.Build(p.Config, builders.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, tp := range m.Graph.Initializer {
		if !torchvisionKey.MatchString(tp.GetName()) {
			t.Errorf("initializer %q is not a torchvision DenseNet key", tp.GetName())
		}
		got[tp.GetName()] = true
	}
	// The expected key set, spelled out from torchvision's module tree.
	want := map[string]bool{"features.conv0.weight": true, "classifier.weight": true, "classifier.bias": true}
	bn := func(mod string) {
		for _, s := range []string{"weight", "bias", "running_mean", "running_var"} {
			want[mod+"."+s] = true
		}
	}
	bn("features.norm0")
	bn("features.norm5")
	for b, n := range []int{6, 12, 24, 16} {
		for l := 1; l <= n; l++ {
			pre := fmt.Sprintf("features.denseblock%d.denselayer%d.", b+1, l)
			bn(pre + "norm1")
			bn(pre + "norm2")
			want[pre+"conv1.weight"] = true
			want[pre+"conv2.weight"] = true
		}
		if b < 3 {
			bn(fmt.Sprintf("features.transition%d.norm", b+1))
			want[fmt.Sprintf("features.transition%d.conv.weight", b+1)] = true
		}
	}
	if len(got) != len(m.Graph.Initializer) || !maps.Equal(got, want) {
		t.Errorf("got %d initializers (%d distinct), want the %d torchvision keys", len(m.Graph.Initializer), len(got), len(want))
	}
}

// initShapes maps initializer names to their dims.
func initShapes(m *onnxpb.ModelProto) map[string]string {
	s := make(map[string]string, len(m.Graph.Initializer))
	for _, tp := range m.Graph.Initializer {
		s[tp.GetName()] = fmt.Sprint(tp.Dims)
	}
	return s
}

// nodeSig describes a node by name, op, wiring and attributes, for comparison across exporters.
func nodeSig(n *onnxpb.NodeProto, rename map[string]string) string {
	in := make([]string, len(n.Input))
	for i, x := range n.Input {
		if r, ok := rename[x]; ok {
			x = r
		}
		in[i] = x
	}
	attrs := make([]string, 0, len(n.Attribute))
	for _, a := range n.Attribute {
		attrs = append(attrs, fmt.Sprintf("%s:%v:%d:%g:%v", a.GetName(), a.GetType(), a.GetI(), a.GetF(), a.Ints))
	}
	slices.Sort(attrs)
	return fmt.Sprintf("%s %s in=%v out=%v attrs=%v", n.GetName(), n.GetOpType(), in, n.Output, attrs)
}

// compareWithExport checks that Build reproduces a PyTorch 1.13 export of the same architecture:
// identical initializer names and shapes, graph input and output, and the same nodes in the same
// order with the same names, wiring and attributes. The exporter's zero Pad (and the Constant
// holding its pads) before each AveragePool is the one intended difference: it is skipped and
// the AveragePool is compared as reading the Pad's input.
func compareWithExport(t *testing.T, ref string, cfg builders.Config, inference bool) {
	t.Helper()
	want, err := onnx.ReadModelFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := builders.Build(cfg, builders.BuildOptions{Seed: 7, Inference: inference})
	if err != nil {
		t.Fatal(err)
	}
	gs, ws := initShapes(got), initShapes(want)
	for _, name := range slices.Sorted(maps.Keys(ws)) {
		if shape := ws[name]; gs[name] != shape {
			t.Errorf("initializer %s: built %q, export %q", name, gs[name], shape)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(gs)) {
		if _, ok := ws[name]; !ok {
			t.Errorf("built initializer %s is not in the export", name)
		}
	}
	rename := map[string]string{}
	var wantNodes []string
	for _, n := range want.Graph.Node {
		switch n.GetOpType() {
		case "Constant":
			continue
		case "Pad":
			rename[n.Output[0]] = n.Input[0]
			continue
		}
		wantNodes = append(wantNodes, nodeSig(n, rename))
	}
	if len(got.Graph.Node) != len(wantNodes) {
		t.Errorf("%d nodes, export has %d (without Constant/Pad)", len(got.Graph.Node), len(wantNodes))
	}
	for i := 0; i < min(len(got.Graph.Node), len(wantNodes)); i++ {
		if g := nodeSig(got.Graph.Node[i], nil); g != wantNodes[i] {
			t.Fatalf("node %d:\nbuilt  %s\nexport %s", i, g, wantNodes[i])
		}
	}
	for i, vi := range [][2]*onnxpb.ValueInfoProto{{got.Graph.Input[0], want.Graph.Input[0]}, {got.Graph.Output[0], want.Graph.Output[0]}} {
		if g, w := fmt.Sprint(vi[0]), fmt.Sprint(vi[1]); g != w {
			t.Errorf("graph value %d: built %s, export %s", i, g, w)
		}
	}
}

// TestTinyMatchesTorchExport checks the tiny preset against shared/models/densenet_tiny (eval
// export, BNs folded) and finetune_tiny/model_before.onnx (every BN kept).
func TestTinyMatchesTorchExport(t *testing.T) {
	p, err := Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("inference", func(t *testing.T) {
		compareWithExport(t, testenv.Shared(t, filepath.Join("models", "densenet_tiny", "model.onnx")), p.Config, true)
	})
	t.Run("training", func(t *testing.T) {
		compareWithExport(t, testenv.Shared(t, filepath.Join("models", "finetune_tiny", "model_before.onnx")), p.Config, false)
	})
}

// TestLargerPresetsMatchTorchExport does the same for DenseNet-BC-100 (both forms) and
// torchvision's densenet121 (eval export).
func TestLargerPresetsMatchTorchExport(t *testing.T) {
	if testing.Short() {
		t.Skip("reads up to 32 MB of reference models; skipped with -short")
	}
	tests := []struct {
		preset, ref string
		inference   bool
	}{
		{"densenet_bc100_k12", "densenet_bc100_k12_cifar", true},
		{"densenet_bc100_k12", "densenet_bc100_k12_cifar_train", false},
		{"densenet121", "densenet121", true},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			p, err := Lookup(tt.preset)
			if err != nil {
				t.Fatal(err)
			}
			compareWithExport(t, testenv.Shared(t, filepath.Join("models", tt.ref, "model.onnx")), p.Config, tt.inference)
		})
	}
}

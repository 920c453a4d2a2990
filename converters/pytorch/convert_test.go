package pytorch

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// fixtureConfig is the architecture gen_fixtures.py builds: torchvision's DenseNet with
// growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=4, num_classes=5 (ImageNet
// stem), run on 32x32 inputs.
var fixtureConfig = builders.Config{Growth: 4, Blocks: []int{2, 2}, InitFeatures: 8, BNSize: 4, Compression: 0.5,
	Stem: builders.StemImageNet, Classes: 5, InputSize: 32}

// fixtures lists the checkpoints gen_fixtures.py writes; all hold the same weights.
var fixtures = []struct{ file, what string }{
	{"densenet_ckpt.pth", "zip format, checkpoint dict, strided views into shared storages"},
	{"densenet_legacy.pth", "legacy format, DataParallel module. prefix, pre-0.2 key names"},
	{"densenet.safetensors", "safetensors"},
}

func loadFixture(t *testing.T, file string) StateDict {
	t.Helper()
	sd, err := LoadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

// fixtureIO returns the fixed input (stored as float16, every value exact) as float32 and
// PyTorch's eval-mode logits for it.
func fixtureIO(t *testing.T) (in, want *tensor.Tensor) {
	t.Helper()
	x, err := npy.ReadFile(filepath.Join("testdata", "input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if x.DType != tensor.Float16 || !x.Shape.Equal(tensor.Shape{2, 3, 32, 32}) {
		t.Fatalf("input.npy is %s %s, want float16 [2 3 32 32]", x.DType, x.Shape)
	}
	h := tensor.Data[tensor.F16](x)
	f := make([]float32, len(h))
	for i, v := range h {
		f[i] = v.Float32()
	}
	want, err = npy.ReadFile(filepath.Join("testdata", "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	return tensor.FromSlice(x.Shape, f), want
}

// run executes m with the dnx reference kernels on one input.
func run(t *testing.T, m *onnxpb.ModelProto, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	// The reference kernels are the oracle: they are the runtime's specification.
	s, err := exec.New(g, exec.Options{Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// TestFixturesMatchPyTorch converts every fixture in both forms and runs it: the logits must
// match PyTorch's within tensor.PyTorchAtol (1e-4 absolute). The model also survives a
// serialization round trip.
func TestFixturesMatchPyTorch(t *testing.T) {
	x, want := fixtureIO(t)
	for _, fx := range fixtures {
		for _, inference := range []bool{false, true} {
			name := fx.file + map[bool]string{false: "/training", true: "/inference"}[inference]
			t.Run(name, func(t *testing.T) {
				sd := loadFixture(t, fx.file)
				m, err := Convert(sd, fixtureConfig, builders.BuildOptions{Inference: inference})
				if err != nil {
					t.Fatal(err)
				}
				data, err := onnx.MarshalModel(m)
				if err != nil {
					t.Fatal(err)
				}
				if m, err = onnx.ReadModel(data); err != nil {
					t.Fatal(err)
				}
				got := run(t, m, x)
				if err := tensor.AllClose(got, want, 0, tensor.PyTorchAtol); err != nil {
					t.Error(err)
				}
				t.Logf("%s (%s): max |dnx - PyTorch| = %.3g", name, fx.what, tensor.MaxAbsDiff(got, want))
			})
		}
	}
}

// TestFixturesAgree checks that the three formats decode to bit-identical tensors once the keys
// are normalized: the strided views of densenet_ckpt.pth were copied out correctly, and the
// legacy file's renamed keys map back.
func TestFixturesAgree(t *testing.T) {
	ref, err := Normalize(loadFixture(t, "densenet.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ref) != 56 { // 67 state_dict entries minus 11 num_batches_tracked
		t.Fatalf("safetensors fixture normalizes to %d tensors, want 56", len(ref))
	}
	for _, fx := range fixtures[:2] {
		sd, err := Normalize(loadFixture(t, fx.file))
		if err != nil {
			t.Fatal(err)
		}
		if len(sd) != len(ref) {
			t.Errorf("%s: %d tensors, want %d", fx.file, len(sd), len(ref))
		}
		for k, want := range ref {
			got, ok := sd[k]
			if !ok {
				t.Errorf("%s: no %q", fx.file, k)
				continue
			}
			if got.DType != want.DType {
				t.Errorf("%s: %q is %s, want %s", fx.file, k, got.DType, want.DType)
				continue
			}
			if err := tensor.AllClose(got, want, 0, 0); err != nil {
				t.Errorf("%s: %q: %v", fx.file, k, err)
			}
		}
	}
}

// TestFixtureRawKeys pins the keys as stored, before normalization.
func TestFixtureRawKeys(t *testing.T) {
	tests := []struct {
		file    string
		present []string
		absent  []string
	}{
		{"densenet_ckpt.pth", []string{"features.denseblock1.denselayer1.norm1.weight", "features.norm0.num_batches_tracked"}, nil},
		{"densenet_legacy.pth", []string{"module.features.denseblock2.denselayer2.norm.1.running_var", "module.features.denseblock1.denselayer1.conv.2.weight", "module.features.transition1.norm.weight", "module.classifier.bias"},
			[]string{"module.features.denseblock1.denselayer1.norm1.weight"}},
		{"densenet.safetensors", []string{"classifier.weight", "features.denseblock2.denselayer2.conv2.weight"}, nil},
	}
	for _, tt := range tests {
		sd := loadFixture(t, tt.file)
		if len(sd) != 67 {
			t.Errorf("%s: %d entries, want 67", tt.file, len(sd))
		}
		for _, k := range tt.present {
			if _, ok := sd[k]; !ok {
				t.Errorf("%s: no %q", tt.file, k)
			}
		}
		for _, k := range tt.absent {
			if _, ok := sd[k]; ok {
				t.Errorf("%s: unexpected %q", tt.file, k)
			}
		}
	}
	if n := loadFixture(t, "densenet_ckpt.pth")["features.norm0.num_batches_tracked"]; n.DType != tensor.Int64 || n.Rank() != 0 {
		t.Errorf("num_batches_tracked is %s %s, want a 0-dim int64", n.DType, n.Shape)
	}
}

// TestInferConfigFixture derives the fixture's architecture from its weights alone.
func TestInferConfigFixture(t *testing.T) {
	for _, fx := range fixtures {
		cfg, err := InferConfig(loadFixture(t, fx.file), 32)
		if err != nil {
			t.Fatalf("%s: %v", fx.file, err)
		}
		if cfg.String() != fixtureConfig.String() {
			t.Errorf("%s: inferred %s, want %s", fx.file, cfg, fixtureConfig)
		}
	}
	cfg, err := InferConfig(loadFixture(t, "densenet.safetensors"), 0)
	if err != nil || cfg.InputSize != 224 {
		t.Errorf("input size 0: got %d (%v), want the ImageNet default 224", cfg.InputSize, err)
	}
}

// TestInferConfigVariants infers every layer/stem/compression combination from the initializers
// of builders' own training-form models, and checks Convert reproduces them exactly.
func TestInferConfigVariants(t *testing.T) {
	var cfgs []builders.Config
	for _, stem := range []builders.Stem{builders.StemCIFAR, builders.StemImageNet} {
		for _, bn := range []int{0, 4} {
			for _, theta := range []float64{1, 0.5, 0.7} {
				c := builders.Config{Growth: 3, Blocks: []int{2, 1, 3}, InitFeatures: 5, BNSize: bn, Compression: theta,
					Stem: stem, Classes: 4, InputSize: 32}
				cfgs = append(cfgs, c)
			}
		}
	}
	one := builders.Config{Growth: 6, Blocks: []int{3}, InitFeatures: 7, BNSize: 2, Compression: 1,
		Stem: builders.StemCIFAR, Classes: 3, InputSize: 8}
	cfgs = append(cfgs, one)
	for _, cfg := range cfgs {
		t.Run(cfg.String(), func(t *testing.T) {
			m, err := builders.Build(cfg, builders.BuildOptions{Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			sd := StateDict{}
			for _, tp := range m.Graph.Initializer {
				x, err := onnx.DecodeTensor(tp, "")
				if err != nil {
					t.Fatal(err)
				}
				sd["module."+tp.GetName()] = x
			}
			got, err := InferConfig(sd, cfg.InputSize)
			if err != nil {
				t.Fatal(err)
			}
			// θ=0.7 is recovered as another θ with the same truncations; compare the shapes it gives.
			if got.Compression != cfg.Compression {
				if cfg.Compression != 0.7 {
					t.Errorf("compression %g, want %g", got.Compression, cfg.Compression)
				}
				got.Compression = cfg.Compression
			}
			if got.String() != cfg.String() {
				t.Fatalf("inferred %s, want %s", got, cfg)
			}
			conv, err := Convert(sd, cfg, builders.BuildOptions{Seed: 99})
			if err != nil {
				t.Fatal(err)
			}
			for i, tp := range conv.Graph.Initializer {
				want := m.Graph.Initializer[i]
				if tp.GetName() != want.GetName() || string(tp.RawData) != string(want.RawData) {
					t.Fatalf("initializer %d: %s differs from the source model's %s", i, tp.GetName(), want.GetName())
				}
			}
		})
	}
}

func TestInferConfigErrors(t *testing.T) {
	base := loadFixture(t, "densenet.safetensors")
	edit := func(f func(sd StateDict)) StateDict {
		sd := StateDict{}
		for k, v := range base {
			sd[k] = v
		}
		f(sd)
		return sd
	}
	tests := []struct {
		name string
		sd   StateDict
		want string
	}{
		{"no conv0", edit(func(sd StateDict) { delete(sd, "features.conv0.weight") }), `no "features.conv0.weight"`},
		{"5x5 stem", edit(func(sd StateDict) { sd["features.conv0.weight"] = tensor.New(tensor.Float32, tensor.Shape{8, 3, 5, 5}) }), "[8 3 5 5]"},
		{"no layers", StateDict{"features.conv0.weight": base["features.conv0.weight"], "features.norm0.weight": base["features.norm0.weight"]}, "denselayer1"},
		{"bad transition", edit(func(sd StateDict) {
			sd["features.transition1.conv.weight"] = tensor.New(tensor.Float32, tensor.Shape{8, 15, 1, 1})
		}), "transition1"},
		{"no classifier", edit(func(sd StateDict) { delete(sd, "classifier.weight") }), `no "classifier.weight"`},
	}
	for _, tt := range tests {
		_, err := InferConfig(tt.sd, 32)
		if !errors.Is(err, ErrStateDict) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrStateDict mentioning %s", tt.name, err, tt.want)
		}
	}
}

// TestConvertMismatch checks that every kind of mismatch is reported with its key and both
// shapes, all in one error.
func TestConvertMismatch(t *testing.T) {
	base := loadFixture(t, "densenet.safetensors")
	edit := func(f func(sd StateDict)) StateDict {
		sd := StateDict{}
		for k, v := range base {
			sd[k] = v
		}
		f(sd)
		return sd
	}
	tests := []struct {
		name string
		sd   StateDict
		cfg  builders.Config
		want []string
	}{
		{"missing key", edit(func(sd StateDict) { delete(sd, "features.denseblock2.denselayer1.norm2.running_var") }), fixtureConfig,
			[]string{`missing key "features.denseblock2.denselayer1.norm2.running_var" (model shape [16])`}},
		{"extra key", edit(func(sd StateDict) {
			sd["features.denseblock3.denselayer1.conv1.weight"] = tensor.New(tensor.Float32, tensor.Shape{16, 12, 1, 1})
		}), fixtureConfig,
			[]string{`unexpected key "features.denseblock3.denselayer1.conv1.weight" (checkpoint shape [16 12 1 1])`}},
		{"wrong shape", edit(func(sd StateDict) { sd["features.conv0.weight"] = tensor.New(tensor.Float32, tensor.Shape{8, 3, 3, 3}) }), fixtureConfig,
			[]string{`key "features.conv0.weight": checkpoint shape [8 3 3 3], model shape [8 3 7 7]`}},
		{"integer weight", edit(func(sd StateDict) { sd["classifier.bias"] = tensor.New(tensor.Int64, tensor.Shape{5}) }), fixtureConfig,
			[]string{`key "classifier.bias": element type int64`}},
		{"other classes", base, func() builders.Config { c := fixtureConfig.Clone(); c.Classes = 10; return c }(),
			[]string{`key "classifier.weight": checkpoint shape [5 16], model shape [10 16]`, `key "classifier.bias": checkpoint shape [5], model shape [10]`}},
		{"several at once", edit(func(sd StateDict) {
			delete(sd, "features.norm5.bias")
			sd["features.extra"] = tensor.New(tensor.Float32, tensor.Shape{1})
		}), fixtureConfig, []string{`missing key "features.norm5.bias"`, `unexpected key "features.extra"`, "(2 problems)"}},
		{"wrong architecture", base, builders.Config{Growth: 4, Blocks: []int{2, 2, 2}, InitFeatures: 8, BNSize: 4, Compression: 0.5,
			Stem: builders.StemImageNet, Classes: 5, InputSize: 32}, []string{`missing key "features.denseblock3.denselayer1.norm1.weight"`, "and "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Convert(tt.sd, tt.cfg, builders.BuildOptions{})
			if !errors.Is(err, ErrStateDict) {
				t.Fatalf("err = %v, want ErrStateDict", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
	_, err := Convert(base, fixtureConfig, builders.BuildOptions{Weights: base})
	if !errors.Is(err, builders.ErrOptions) {
		t.Errorf("Convert with Weights set: err = %v, want ErrOptions", err)
	}
}

// TestConvertMetadata checks the marker Convert adds and that Normalize does not alter input.
func TestConvertMetadata(t *testing.T) {
	sd := loadFixture(t, "densenet_legacy.pth")
	n := len(sd)
	m, err := Convert(sd, fixtureConfig, builders.BuildOptions{Opset: 17})
	if err != nil {
		t.Fatal(err)
	}
	if len(sd) != n || sd["module.classifier.bias"] == nil {
		t.Error("Convert modified the caller's StateDict")
	}
	meta := map[string]string{}
	for _, kv := range m.MetadataProps {
		meta[kv.GetKey()] = kv.GetValue()
	}
	if meta[MetaWeights] != "pytorch state_dict" || meta[builders.MetaPrefix+"classes"] != "5" {
		t.Errorf("metadata %v", meta)
	}
	if m.OpsetImport[0].GetVersion() != 17 {
		t.Errorf("opset %d, want 17", m.OpsetImport[0].GetVersion())
	}
}

func TestNormalizeKey(t *testing.T) {
	tests := []struct {
		in, want string
		keep     bool
	}{
		{"features.conv0.weight", "features.conv0.weight", true},
		{"module.features.conv0.weight", "features.conv0.weight", true},
		{"module.module.classifier.bias", "classifier.bias", true},
		{"features.denseblock1.denselayer1.norm.1.weight", "features.denseblock1.denselayer1.norm1.weight", true},
		{"features.denseblock4.denselayer16.norm.2.running_var", "features.denseblock4.denselayer16.norm2.running_var", true},
		{"module.features.denseblock2.denselayer3.conv.2.weight", "features.denseblock2.denselayer3.conv2.weight", true},
		{"features.denseblock1.denselayer1.norm.3.weight", "features.denseblock1.denselayer1.norm.3.weight", true}, // not a layer name
		{"features.transition1.norm.weight", "features.transition1.norm.weight", true},
		{"features.norm0.num_batches_tracked", "", false},
		{"module.features.denseblock1.denselayer1.norm1.num_batches_tracked", "", false},
		{"features.module.conv0.weight", "features.module.conv0.weight", true}, // only a prefix is stripped
	}
	for _, tt := range tests {
		got, keep := NormalizeKey(tt.in)
		if got != tt.want || keep != tt.keep {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q, %v", tt.in, got, keep, tt.want, tt.keep)
		}
	}
	x := tensor.New(tensor.Float32, tensor.Shape{1})
	_, err := Normalize(StateDict{"module.a.denselayer1.norm.1.weight": x, "a.denselayer1.norm1.weight": x})
	if !errors.Is(err, ErrStateDict) || !strings.Contains(err.Error(), `"a.denselayer1.norm1.weight"`) {
		t.Errorf("colliding keys: err = %v", err)
	}
}

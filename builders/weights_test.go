package builders

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// initializers decodes every initializer of m by name.
func initializers(t *testing.T, m *onnxpb.ModelProto) map[string]*tensor.Tensor {
	t.Helper()
	out := map[string]*tensor.Tensor{}
	for _, tp := range m.Graph.Initializer {
		x, err := onnx.DecodeTensor(tp, "")
		if err != nil {
			t.Fatal(err)
		}
		out[tp.GetName()] = x
	}
	return out
}

// imageNetTiny is the tiny architecture with the ImageNet stem, so that both folded BN kinds
// (norm0 and the bottleneck norm2) occur.
func imageNetTiny() Config {
	c := tinyConfig()
	c.Stem, c.InputSize = StemImageNet, 32
	return c
}

// TestWeightsReplaceInit supplies every state_dict tensor of a seed-1 model, with non-trivial BN
// statistics, to a seed-2 build: the training form must hold exactly the supplied values, and
// the inference form must fold the supplied statistics (checked against foldConvBN on them).
func TestWeightsReplaceInit(t *testing.T) {
	cfg := imageNetTiny()
	m1, err := Build(cfg, BuildOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	weights := initializers(t, m1)
	for name, w := range weights {
		if strings.HasSuffix(name, ".running_var") || strings.HasSuffix(name, ".running_mean") ||
			(strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight")) {
			d := tensor.Data[float32](w)
			for i := range d {
				d[i] = 0.5 + float32(i%7)*0.25
			}
		}
	}
	weights["features.norm0.num_batches_tracked"] = tensor.Scalar[int64](100) // ignored
	orig := map[string]*tensor.Tensor{}
	for k, v := range weights {
		orig[k] = v.Clone()
	}

	m2, err := Build(cfg, BuildOptions{Seed: 2, Weights: weights})
	if err != nil {
		t.Fatal(err)
	}
	got := initializers(t, m2)
	if len(got) != len(weights)-1 {
		t.Fatalf("%d initializers, want %d", len(got), len(weights)-1)
	}
	for name, g := range got {
		if err := tensor.AllClose(g, weights[name], 0, 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	mi, err := Build(cfg, BuildOptions{Seed: 2, Inference: true, Weights: weights})
	if err != nil {
		t.Fatal(err)
	}
	gi := initializers(t, mi)
	bn := func(mod string) bnParams {
		f := func(s string) []float32 { return tensor.Data[float32](weights[mod+s]) }
		return bnParams{f(".weight"), f(".bias"), f(".running_mean"), f(".running_var")}
	}
	conv0 := tensor.Data[float32](weights["features.conv0.weight"])
	wantW, wantB := foldConvBN(conv0, cfg.InitFeatures, bn("features.norm0"), bnEpsilon)
	// The stem's fold comes first: onnx::Conv_<base> and <base+1>.
	base := torchFoldBase(cfg)
	for name, want := range map[string][]float32{
		"onnx::Conv_" + strconv.Itoa(base): wantW, "onnx::Conv_" + strconv.Itoa(base+1): wantB,
	} {
		g, ok := gi[name]
		if !ok {
			t.Fatalf("inference form lacks %s", name)
		}
		if !slices.Equal(tensor.Data[float32](g), want) {
			t.Errorf("%s does not hold the fold of the supplied conv0/norm0", name)
		}
	}
	for _, name := range []string{"features.norm5.running_var", "classifier.weight"} {
		if err := tensor.AllClose(gi[name], weights[name], 0, 0); err != nil {
			t.Errorf("inference form %s: %v", name, err)
		}
	}
	for k, v := range orig {
		if err := tensor.AllClose(weights[k], v, 0, 0); err != nil {
			t.Errorf("Build modified the supplied %s: %v", k, err)
		}
	}
}

// TestWeightsConvert checks that float16, bfloat16 and float64 weights are converted and that a
// partial Weights map keeps the seeded values for the rest.
func TestWeightsConvert(t *testing.T) {
	cfg := tinyConfig()
	ref := buildInits(t, cfg, BuildOptions{Seed: 5})
	tests := []struct {
		name string
		w    *tensor.Tensor
		want []float32
	}{
		{"float16", tensor.FromSlice(tensor.Shape{5}, []tensor.F16{0x3c00, 0xc000, 0, 0x3800, 0x4200}), []float32{1, -2, 0, 0.5, 3}},
		{"bfloat16", tensor.FromSlice(tensor.Shape{5}, []tensor.BF16{0x3f80, 0xc000, 0, 0x3f00, 0x4040}), []float32{1, -2, 0, 0.5, 3}},
		{"float64", tensor.FromSlice(tensor.Shape{5}, []float64{1, -2, 0, 0.5, 3}), []float32{1, -2, 0, 0.5, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildInits(t, cfg, BuildOptions{Seed: 5, Weights: map[string]*tensor.Tensor{"classifier.bias": tt.w}})
			if g := tensor.Data[float32](got["classifier.bias"]); !slices.Equal(g, tt.want) {
				t.Errorf("classifier.bias = %v, want %v", g, tt.want)
			}
			if err := tensor.AllClose(got["classifier.weight"], ref["classifier.weight"], 0, 0); err != nil {
				t.Errorf("unsupplied classifier.weight changed: %v", err)
			}
		})
	}
}

// buildInits builds cfg and returns its decoded initializers.
func buildInits(t *testing.T, cfg Config, opts BuildOptions) map[string]*tensor.Tensor {
	t.Helper()
	m, err := Build(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return initializers(t, m)
}

func TestWeightsErrors(t *testing.T) {
	f32 := func(shape ...int) *tensor.Tensor { return tensor.New(tensor.Float32, tensor.Shape(shape)) }
	tests := []struct {
		name      string
		inference bool
		weights   map[string]*tensor.Tensor
		want      []string // substrings of the message
	}{
		{"conv shape", false, map[string]*tensor.Tensor{"features.conv0.weight": f32(8, 3, 5, 5)},
			[]string{`"features.conv0.weight"`, "[8 3 5 5]", "[8 3 3 3]"}},
		{"bn shape folded", true, map[string]*tensor.Tensor{"features.denseblock1.denselayer1.norm2.running_var": f32(15)},
			[]string{`"features.denseblock1.denselayer1.norm2.running_var"`, "[15]", "[16]"}},
		{"classifier shape", false, map[string]*tensor.Tensor{"classifier.weight": f32(16, 5)},
			[]string{`"classifier.weight"`, "[16 5]", "[5 16]"}},
		{"unknown key", false, map[string]*tensor.Tensor{"features.norm0.weight": f32(8)},
			[]string{`"features.norm0.weight"`, "name no tensor"}},
		{"integer weight", false, map[string]*tensor.Tensor{"classifier.bias": tensor.New(tensor.Int64, tensor.Shape{5})},
			[]string{`"classifier.bias"`, "int64"}},
		{"nil weight", false, map[string]*tensor.Tensor{"classifier.bias": nil}, []string{`"classifier.bias"`, "nil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tinyConfig(), BuildOptions{Inference: tt.inference, Weights: tt.weights})
			if !errors.Is(err, ErrOptions) {
				t.Fatalf("err = %v, want ErrOptions", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

package builders

import (
	"context"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// These tests run built models end to end. They live in package builders but only its tests
// import the runtime: Build itself stays independent of graph and exec.

// Tolerances. foldTol bounds |training - inference| on logits of magnitude ~1: folding changes
// the rounding of every folded conv (W*s instead of BN(conv(W))), a few float32 ulps per layer.
// torchTol bounds dnx against PyTorch's stored logits (see shared/models/README.md: ~1e-4).
const (
	foldTol  = 1e-5
	torchTol = 1e-4
)

// runModel runs g once on x, with the default (optimized, planned) session unless opts say
// otherwise.
func runModel(t *testing.T, g *graph.Graph, x *tensor.Tensor, opts ...exec.Options) *tensor.Tensor {
	t.Helper()
	sess, err := exec.New(g, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Run(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d outputs, want 1", len(out))
	}
	return out[0]
}

// importModel imports m in memory with the default registry.
func importModel(t *testing.T, m *onnxpb.ModelProto) *graph.Graph {
	t.Helper()
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// randomInput returns a [n,3,s,s] tensor of N(0,1) values from seed.
func randomInput(seed uint64, n, s int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	x := make([]float32, n*3*s*s)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return tensor.FromSlice(tensor.Shape{n, 3, s, s}, x)
}

// trainedBN returns Weights that give every BN of the training-form model m statistics far from
// torchvision's identity init, as a trained network has (γ ~ U(0.5,1.5), β ~ N(0,0.2²),
// mean ~ N(0,0.3²), var ~ U(0.5,2)); folding bugs hide behind γ=1, β=0, mean 0, var 1.
func trainedBN(t *testing.T, m *onnxpb.ModelProto, seed uint64) map[string]*tensor.Tensor {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	w := map[string]*tensor.Tensor{}
	for name, v := range initializers(t, m) {
		var gen func() float64
		switch {
		case strings.HasSuffix(name, ".running_mean"):
			gen = func() float64 { return 0.3 * r.NormFloat64() }
		case strings.HasSuffix(name, ".running_var"):
			gen = func() float64 { return 0.5 + 1.5*r.Float64() }
		case strings.Contains(name, ".norm") && strings.HasSuffix(name, ".weight"):
			gen = func() float64 { return 0.5 + r.Float64() }
		case strings.Contains(name, ".norm") && strings.HasSuffix(name, ".bias"):
			gen = func() float64 { return 0.2 * r.NormFloat64() }
		default:
			continue
		}
		d := tensor.Data[float32](v)
		for i := range d {
			d[i] = float32(gen())
		}
		w[name] = v
	}
	return w
}

// sameBits reports whether two float32 tensors hold bit-identical values.
func sameBits(a, b *tensor.Tensor) bool {
	if !a.Shape.Equal(b.Shape) || a.DType != tensor.Float32 || b.DType != tensor.Float32 {
		return false
	}
	x, y := tensor.Data[float32](a), tensor.Data[float32](b)
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return false
		}
	}
	return true
}

// TestRoundTripRun builds every variant (plain, B, C, BC) with both stems in both forms, runs it
// imported in memory and again after MarshalModel -> file -> graph.Load: the logits must be
// bit-identical, since serialization must not change a single weight. The training and the
// inference form of the same weights (with non-trivial BN statistics) must agree within foldTol.
// Each model runs twice: with the reference kernels, where the training form really evaluates
// every BatchNormalization (the default session folds BNs itself, which would hide a wrong fold
// in Build), and with the default optimized session.
func TestRoundTripRun(t *testing.T) {
	vs := variants()
	names := slices.Sorted(maps.Keys(vs))
	modes := []struct {
		name string
		opts exec.Options
	}{{"reference", exec.Options{Reference: true}}, {"optimized", exec.Options{}}}
	for _, name := range names {
		cfg := vs[name]
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			t.Parallel()
			base, err := Build(cfg, BuildOptions{Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			weights := trainedBN(t, base, 4)
			x := randomInput(5, 2, cfg.InputSize)
			logits := map[string][2]*tensor.Tensor{} // by mode: training, inference
			for i, inference := range []bool{false, true} {
				m, err := Build(cfg, BuildOptions{Seed: 3, Inference: inference, Weights: weights})
				if err != nil {
					t.Fatal(err)
				}
				data, err := onnx.MarshalModel(m)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "model.onnx")
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				loaded, err := graph.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, mode := range modes {
					mem := runModel(t, importModel(t, m), x, mode.opts)
					if want := (tensor.Shape{2, cfg.Classes}); !mem.Shape.Equal(want) {
						t.Fatalf("inference=%v %s: logits shape %v, want %v", inference, mode.name, mem.Shape, want)
					}
					file := runModel(t, loaded, x, mode.opts)
					if !sameBits(mem, file) {
						t.Errorf("inference=%v %s: logits after the file round trip differ (max |diff| %g)",
							inference, mode.name, tensor.MaxAbsDiff(mem, file))
					}
					l := logits[mode.name]
					l[i] = mem
					logits[mode.name] = l
				}
			}
			for _, mode := range modes {
				l := logits[mode.name]
				if err := tensor.AllClose(l[1], l[0], 0, foldTol); err != nil {
					t.Errorf("%s: inference form vs training form: %v", mode.name, err)
				}
				t.Logf("%s: max |inference - training| = %.3g (max |logit| %.3g)", mode.name, tensor.MaxAbsDiff(l[1], l[0]), maxAbs(l[0]))
			}
		})
	}
}

func maxAbs(t *tensor.Tensor) float64 {
	m := 0.0
	for _, v := range t.Float64s() {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// readTensor reads a TensorProto file of the shared data.
func readTensor(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	x, _, err := onnx.ReadTensorFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// tinyTorchWeights returns finetune_tiny's model_before.onnx initializers by name: a full
// torchvision state_dict of the tiny DenseNet-BC (no BN folded).
func tinyTorchWeights(t *testing.T, dir string) map[string]*tensor.Tensor {
	t.Helper()
	m, err := onnx.ReadModelFile(filepath.Join(dir, "model_before.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return initializers(t, m)
}

// TestTorchWeightsReproduceLogits loads PyTorch's weights of finetune_tiny into the tiny
// architecture (Config equal to the "tiny" preset; package models imports builders, so the
// preset is restated as tinyConfig) and checks both forms against PyTorch's eval logits, and the
// inference form's initializers against PyTorch's own folded export of the same weights.
func TestTorchWeightsReproduceLogits(t *testing.T) {
	dir := testenv.Shared(t, "models/finetune_tiny")
	weights := tinyTorchWeights(t, dir)
	x := readTensor(t, filepath.Join(dir, "x.pb"))
	want := readTensor(t, filepath.Join(dir, "logits_before_eval.pb"))
	for _, inference := range []bool{false, true} {
		m, err := Build(tinyConfig(), BuildOptions{Inference: inference, Weights: weights})
		if err != nil {
			t.Fatalf("inference=%v: %v", inference, err)
		}
		got := runModel(t, importModel(t, m), x)
		if err := tensor.AllClose(got, want, 0, torchTol); err != nil {
			t.Errorf("inference=%v: logits vs PyTorch: %v", inference, err)
		}
		t.Logf("inference=%v: max |dnx - PyTorch| = %.3g", inference, tensor.MaxAbsDiff(got, want))
		if inference {
			compareInitializers(t, m, filepath.Join(dir, "model_before_evalfold.onnx"))
		}
	}
}

// compareInitializers checks that m holds exactly the initializers of the PyTorch export at
// path, by name, equal up to float32 rounding of the fold (PyTorch folds in float32, Build in
// float64).
func compareInitializers(t *testing.T, m *onnxpb.ModelProto, path string) {
	t.Helper()
	ref, err := onnx.ReadModelFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, got := initializers(t, ref), initializers(t, m)
	if len(got) != len(want) {
		t.Errorf("%d initializers, %s has %d", len(got), filepath.Base(path), len(want))
	}
	for _, n := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[n]
		if !ok {
			t.Errorf("built model lacks %s's initializer %s", filepath.Base(path), n)
			continue
		}
		if err := tensor.AllClose(g, want[n], 1e-6, 1e-7); err != nil {
			t.Errorf("initializer %s: %v", n, err)
		}
	}
}

// stateDictFromEvalExport recovers a torchvision state_dict from a PyTorch eval export in which
// each BN that follows a conv was folded into it (conv0/norm0, and conv1/norm2 of every bottleneck
// layer). A folded conv's weight W' and bias b' become conv.weight = W' and a BN that is the
// identity on them: γ = 1, β = b', mean 0, var = 1 - eps, so that s = γ/sqrt(var+eps) = 1 and the
// fold W*s, β - mean*s gives back W', b' (up to the float32 rounding of 1 - eps, ~1e-8).
func stateDictFromEvalExport(t *testing.T, m *onnxpb.ModelProto) map[string]*tensor.Tensor {
	t.Helper()
	inits := initializers(t, m)
	sd := map[string]*tensor.Tensor{}
	for name, v := range inits {
		if !strings.HasPrefix(name, "onnx::") {
			sd[name] = v
		}
	}
	for _, n := range m.Graph.Node {
		if n.GetOpType() != "Conv" || len(n.Input) != 3 || !strings.HasPrefix(n.Input[1], "onnx::") {
			continue
		}
		// "/features/denseblock1/denselayer1/conv1/Conv" -> "features.denseblock1.denselayer1.conv1"
		conv := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(n.GetName(), "/"), "/Conv"), "/", ".")
		var norm string
		switch {
		case strings.HasSuffix(conv, ".conv0"):
			norm = strings.TrimSuffix(conv, ".conv0") + ".norm0"
		case strings.HasSuffix(conv, ".conv1"):
			norm = strings.TrimSuffix(conv, ".conv1") + ".norm2"
		default:
			t.Fatalf("folded conv %s is neither conv0 nor a bottleneck conv1", n.GetName())
		}
		w, b := inits[n.Input[1]], inits[n.Input[2]]
		c := b.Shape[0]
		ones, zeros, vars := make([]float32, c), make([]float32, c), make([]float32, c)
		for i := range ones {
			ones[i], vars[i] = 1, float32(1-bnEpsilon)
		}
		sd[conv+".weight"] = w
		sd[norm+".weight"] = tensor.FromSlice(tensor.Shape{c}, ones)
		sd[norm+".bias"] = b
		sd[norm+".running_mean"] = tensor.FromSlice(tensor.Shape{c}, zeros)
		sd[norm+".running_var"] = tensor.FromSlice(tensor.Shape{c}, vars)
	}
	return sd
}

// TestDensenetTinyStateDict rebuilds shared/models/densenet_tiny from the state_dict its eval
// export implies: both forms must reproduce PyTorch's stored test case, and the inference form
// must hold the export's own initializers, under the same names, up to float32 rounding.
//
// (finetune_tiny's model_before.onnx is not the same network: its weights differ from
// densenet_tiny's in every tensor, so it is checked against its own logits above.)
func TestDensenetTinyStateDict(t *testing.T) {
	dir := testenv.Shared(t, "models/densenet_tiny")
	ref, err := onnx.ReadModelFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	weights := stateDictFromEvalExport(t, ref)
	x := readTensor(t, filepath.Join(dir, "test_data_set_0", "input_0.pb"))
	want := readTensor(t, filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	for _, inference := range []bool{false, true} {
		m, err := Build(tinyConfig(), BuildOptions{Inference: inference, Weights: weights})
		if err != nil {
			t.Fatalf("inference=%v: %v", inference, err)
		}
		got := runModel(t, importModel(t, m), x)
		if err := tensor.AllClose(got, want, 0, torchTol); err != nil {
			t.Errorf("inference=%v: logits vs densenet_tiny's output_0.pb: %v", inference, err)
		}
		t.Logf("inference=%v: max |dnx - PyTorch| = %.3g", inference, tensor.MaxAbsDiff(got, want))
		if inference {
			compareInitializers(t, m, filepath.Join(dir, "model.onnx"))
		}
	}
}

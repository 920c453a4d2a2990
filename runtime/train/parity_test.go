package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Parity tolerances against PyTorch 1.13 (float32): absolute, or relative where the value is
// larger than 10.
const (
	parityAtol = 1e-4
	parityRtol = 1e-5
)

func parityClose(got, want float64) bool {
	d := math.Abs(got - want)
	return d <= parityAtol || d <= parityRtol*math.Abs(want)
}

// finetuneCase is ../shared/models/finetune_tiny: PyTorch's 3 SGD steps on densenet_tiny.
type finetuneCase struct {
	dir    string
	before *graph.Graph
	x      *tensor.Tensor
	labels []int64
	ref    struct {
		Losses    []float64 `json:"losses"`
		GradNorms []float64 `json:"grad_global_l2_norm_per_step"`
		Hyper     struct {
			LR          float64 `json:"lr"`
			Momentum    float64 `json:"momentum"`
			Dampening   float64 `json:"dampening"`
			WeightDecay float64 `json:"weight_decay"`
		} `json:"hyper_parameters"`
	}
}

func loadFinetune(t testing.TB) *finetuneCase {
	t.Helper()
	c := &finetuneCase{dir: testenv.Shared(t, "models/finetune_tiny")}
	var err error
	if c.before, err = graph.Load(filepath.Join(c.dir, "model_before.onnx")); err != nil {
		t.Fatal(err)
	}
	if c.x, _, err = onnx.ReadTensorFile(filepath.Join(c.dir, "x.pb")); err != nil {
		t.Fatal(err)
	}
	y, _, err := onnx.ReadTensorFile(filepath.Join(c.dir, "y.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if c.labels, err = y.Int64s(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "losses.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &c.ref); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *finetuneCase) options(memEff bool) Options {
	return Options{
		Optim: OptimConfig{Name: "sgd", LR: c.ref.Hyper.LR, Momentum: c.ref.Hyper.Momentum,
			Dampening: c.ref.Hyper.Dampening, WeightDecay: c.ref.Hyper.WeightDecay},
		MemoryEfficient: memEff,
		Threads:         2,
	}
}

// compareTensor reports the first element of got that is not parity-close to want, and returns
// the largest absolute difference.
func compareTensor(t *testing.T, what string, got []float32, want *tensor.Tensor) float64 {
	t.Helper()
	w := want.Float64s()
	if len(got) != len(w) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(w))
		return math.Inf(1)
	}
	worst, at := 0.0, -1
	for i := range w {
		if d := math.Abs(float64(got[i]) - w[i]); d > worst {
			worst, at = d, i
		}
	}
	if at >= 0 && !parityClose(float64(got[at]), w[at]) {
		t.Errorf("%s: element %d = %g, want %g (max abs diff %g)", what, at, got[at], w[at], worst)
	}
	return worst
}

func TestFinetuneParity(t *testing.T) {
	c := loadFinetune(t)
	after, err := graph.Load(filepath.Join(c.dir, "model_after.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	logitsAfter, _, err := onnx.ReadTensorFile(filepath.Join(c.dir, "logits_after_eval.pb"))
	if err != nil {
		t.Fatal(err)
	}
	for _, memEff := range []bool{false, true} {
		name := "standard"
		if memEff {
			name = "memory-efficient"
		}
		t.Run(name, func(t *testing.T) {
			tr, err := New(c.before, c.options(memEff))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for step, want := range c.ref.Losses {
				st, err := tr.Step(ctx, c.x, c.labels)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("step %d: loss %.7f (PyTorch %.7f), grad norm %.7f (PyTorch %.7f), activations %d bytes",
					step, st.Loss, want, st.GradNorm, c.ref.GradNorms[step], st.ActivationBytes)
				if !parityClose(st.Loss, want) {
					t.Errorf("step %d: loss %.7f, PyTorch %.7f", step, st.Loss, want)
				}
				if !parityClose(st.GradNorm, c.ref.GradNorms[step]) {
					t.Errorf("step %d: gradient norm %.7f, PyTorch %.7f", step, st.GradNorm, c.ref.GradNorms[step])
				}
				if step == 0 {
					worst := 0.0
					for _, p := range tr.params {
						want, _, err := onnx.ReadTensorFile(filepath.Join(c.dir, "grads_step0", p.name+".pb"))
						if err != nil {
							t.Fatal(err)
						}
						worst = max(worst, compareTensor(t, "step 0 gradient of "+p.name, p.grad, want))
					}
					t.Logf("step 0 gradients of %d parameters: max abs diff %.3g", len(tr.params), worst)
				}
			}
			if tr.StepCount() != len(c.ref.Losses) {
				t.Errorf("StepCount = %d", tr.StepCount())
			}
			g := tr.Graph()
			n, worst := 0, 0.0
			for _, v := range after.Initializers {
				got := g.Value(v.Name)
				if got == nil || !got.IsConst() {
					t.Errorf("initializer %q missing from the trained graph", v.Name)
					continue
				}
				worst = max(worst, compareTensor(t, "after 3 steps: "+v.Name, tensor.Data[float32](got.Const), v.Const))
				n++
			}
			t.Logf("weights and running statistics after 3 steps: max abs diff %.3g", worst)
			if n != 52 {
				t.Errorf("compared %d initializers, want 52", n)
			}
			logits, err := tr.Evaluate(ctx, c.x)
			if err != nil {
				t.Fatal(err)
			}
			d := compareTensor(t, "eval logits after 3 steps", tensor.Data[float32](logits), logitsAfter)
			t.Logf("eval logits after 3 steps: max abs diff %.3g", d)
		})
	}
}

package train

import (
	"context"
	"encoding/json"
	"fmt"
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

// finetuneCase is one of PyTorch's fine-tuning references in ../shared/models: finetune_tiny
// (3 SGD steps on densenet_tiny), finetune_bc28 (4 SGD steps with Nesterov momentum on a 3-block
// DenseNet-BC) and finetune_tiny_adamw (4 AdamW steps).
type finetuneCase struct {
	name   string
	dir    string
	before *graph.Graph
	x      *tensor.Tensor
	labels []int64
	ref    struct {
		Steps     int       `json:"steps"`
		Losses    []float64 `json:"losses"`
		GradNorms []float64 `json:"grad_global_l2_norm_per_step"`
		Hyper     struct {
			Optimizer   string    `json:"optimizer"`
			LR          float64   `json:"lr"`
			Momentum    *float64  `json:"momentum"`
			Dampening   float64   `json:"dampening"`
			WeightDecay float64   `json:"weight_decay"`
			Nesterov    bool      `json:"nesterov"`
			Betas       []float64 `json:"betas"`
			Eps         *float64  `json:"eps"`
		} `json:"hyper_parameters"`
		Params []struct {
			Name string `json:"name"`
		} `json:"parameters_in_sgd_order"`
		Buffers []struct {
			Name string `json:"name"`
		} `json:"bn_buffers"`
	}
}

// finetuneCases names the references.
var finetuneCases = []string{"finetune_tiny", "finetune_bc28", "finetune_tiny_adamw"}

func loadFinetune(t testing.TB) *finetuneCase { return loadFinetuneCase(t, "finetune_tiny") }

func loadFinetuneCase(t testing.TB, name string) *finetuneCase {
	t.Helper()
	c := &finetuneCase{name: name, dir: testenv.Shared(t, "models/"+name)}
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
	if len(c.ref.Losses) != c.ref.Steps || len(c.ref.GradNorms) != c.ref.Steps {
		t.Fatalf("%s: losses.json has %d losses and %d gradient norms for %d steps", name, len(c.ref.Losses), len(c.ref.GradNorms), c.ref.Steps)
	}
	return c
}

// options returns the trainer options of the reference's optimizer.
func (c *finetuneCase) options(memEff bool) Options {
	h := c.ref.Hyper
	o := OptimConfig{LR: h.LR, Dampening: h.Dampening, WeightDecay: h.WeightDecay, Nesterov: h.Nesterov}
	switch h.Optimizer {
	case "torch.optim.SGD", "":
		o.Name = "sgd"
	case "torch.optim.Adam":
		o.Name = "adam"
	case "torch.optim.AdamW":
		o.Name = "adamw"
	default:
		panic("unknown optimizer " + h.Optimizer)
	}
	if h.Momentum != nil {
		o.Momentum = *h.Momentum
	}
	if len(h.Betas) == 2 {
		o.Beta1, o.Beta2 = h.Betas[0], h.Betas[1]
	}
	if h.Eps != nil {
		o.Eps = *h.Eps
	}
	return Options{Optim: o, MemoryEfficient: memEff, Threads: 2}
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

// TestFinetuneParity replays PyTorch's fine-tuning references step by step in both memory modes
// and compares the losses and gradient norms of every step, the step-0 gradients, every
// initializer after the steps (weights and running statistics) and the eval logits, within
// parityAtol. ReLU ties are resolved as exact arithmetic resolves them (tieBreaker, from a
// float64 forward pass at the trainer's weights before each step), and the log says how far the
// run lands without that.
func TestFinetuneParity(t *testing.T) {
	for _, name := range finetuneCases {
		t.Run(name, func(t *testing.T) {
			c := loadFinetuneCase(t, name)
			for _, memEff := range []bool{false, true} {
				mode := "standard"
				if memEff {
					mode = "memory-efficient"
				}
				t.Run(mode, func(t *testing.T) { c.check(t, memEff) })
			}
		})
	}
}

// check runs the reference's steps and compares the losses, gradient norms, step-0 gradients,
// every initializer after the steps (weights and running statistics) and the eval logits.
func (c *finetuneCase) check(t *testing.T, memEff bool) {
	after, err := graph.Load(filepath.Join(c.dir, "model_after.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	logitsAfter, _, err := onnx.ReadTensorFile(filepath.Join(c.dir, "logits_after_eval.pb"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(c.before, c.options(memEff))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.params) != len(c.ref.Params) {
		t.Errorf("%d trained parameters, PyTorch trains %d", len(tr.params), len(c.ref.Params))
	}
	ctx := context.Background()
	for step, want := range c.ref.Losses {
		// Resolve ReLU ties as exact arithmetic does (see tieBreaker), from the float64 forward
		// pass at the trainer's current weights.
		moved, flipped := 0, 0
		tr.tieBreak = referenceForward(t, tr.Graph(), c.x, c.labels, c.options(memEff)).tieBreaker(&moved, &flipped)
		st, err := tr.Step(ctx, c.x, c.labels)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("step %d: loss %.7f (PyTorch %.7f), grad norm %.7f (PyTorch %.7f), activations %d bytes; ReLU ties: %d elements near the kink, %d on the other side",
			step, st.Loss, want, st.GradNorm, c.ref.GradNorms[step], st.ActivationBytes, moved, flipped)
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
	if tr.StepCount() != c.ref.Steps {
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
		worst = max(worst, compareTensor(t, fmt.Sprintf("after %d steps: %s", c.ref.Steps, v.Name), tensor.Data[float32](got.Const), v.Const))
		n++
	}
	t.Logf("weights and running statistics after %d steps: max abs diff %.3g", c.ref.Steps, worst)
	if want := len(c.ref.Params) + len(c.ref.Buffers); n != want {
		t.Errorf("compared %d initializers, want %d", n, want)
	}
	logits, err := tr.Evaluate(ctx, c.x)
	if err != nil {
		t.Fatal(err)
	}
	d := compareTensor(t, "eval logits after the steps", tensor.Data[float32](logits), logitsAfter)
	t.Logf("eval logits after %d steps: max abs diff %.3g", c.ref.Steps, d)
	c.logUnresolved(t, memEff, after, logitsAfter)
}

// logUnresolved logs how far the same steps land without resolving ReLU ties: on finetune_bc28
// one tie at step 0 moves the weights after 4 steps by ~1.7e-3, as far as PyTorch 1.13 on 2
// threads lands from its own 1-thread reference (see tieBreaker).
func (c *finetuneCase) logUnresolved(t *testing.T, memEff bool, after *graph.Graph, logitsAfter *tensor.Tensor) {
	tr, err := New(c.before, c.options(memEff))
	if err != nil {
		t.Fatal(err)
	}
	for range c.ref.Steps {
		if _, err := tr.Step(t.Context(), c.x, c.labels); err != nil {
			t.Fatal(err)
		}
	}
	g, worst := tr.Graph(), 0.0
	for _, v := range after.Initializers {
		w, got := v.Const.Float64s(), tensor.Data[float32](g.Value(v.Name).Const)
		for i := range w {
			worst = max(worst, math.Abs(float64(got[i])-w[i]))
		}
	}
	logits, err := tr.Evaluate(t.Context(), c.x)
	if err != nil {
		t.Fatal(err)
	}
	dl, w := 0.0, logitsAfter.Float64s()
	for i, v := range tensor.Data[float32](logits) {
		dl = max(dl, math.Abs(float64(v)-w[i]))
	}
	t.Logf("without resolving ReLU ties: weights and running statistics after %d steps within %.3g of PyTorch's, eval logits within %.3g", c.ref.Steps, worst, dl)
}

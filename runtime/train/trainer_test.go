package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// weights returns every initializer of g as float32 data, by name.
func weights(g *graph.Graph) map[string][]float32 {
	out := map[string][]float32{}
	for _, v := range g.Initializers {
		if v.Const.DType == tensor.Float32 {
			out[v.Name] = slices.Clone(tensor.Data[float32](v.Const))
		}
	}
	return out
}

func TestResumeIsBitIdentical(t *testing.T) {
	g := builtNet(t, bcConfig())
	x, labels := randomBatch(2, 4, []int{3, 16, 16}, 10)
	for _, optim := range []OptimConfig{
		{Name: "sgd", LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4},
		{Name: "adamw", LR: 1e-3, WeightDecay: 1e-2},
	} {
		t.Run(optim.Name, func(t *testing.T) {
			opts := Options{Optim: optim, Schedule: Schedule{Kind: "cosine", TotalSteps: 5}, MemoryEfficient: true, Threads: 2}
			a, err := New(g, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for range 2 {
				if _, err := a.Step(ctx, x, labels); err != nil {
					t.Fatal(err)
				}
			}
			var state bytes.Buffer
			if err := a.SaveState(&state); err != nil {
				t.Fatal(err)
			}
			saved := slices.Clone(state.Bytes())
			var lossA []float64
			for range 2 {
				st, err := a.Step(ctx, x, labels)
				if err != nil {
					t.Fatal(err)
				}
				lossA = append(lossA, st.Loss)
			}

			b, err := New(g, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.LoadState(bytes.NewReader(saved)); err != nil {
				t.Fatal(err)
			}
			if b.StepCount() != 2 {
				t.Fatalf("StepCount after LoadState = %d, want 2", b.StepCount())
			}
			for i := range 2 {
				st, err := b.Step(ctx, x, labels)
				if err != nil {
					t.Fatal(err)
				}
				if st.Loss != lossA[i] {
					t.Errorf("resumed step %d: loss %.9g, uninterrupted %.9g", i+2, st.Loss, lossA[i])
				}
			}
			wa, wb := weights(a.Graph()), weights(b.Graph())
			for name, va := range wa {
				for i := range va {
					if math.Float32bits(va[i]) != math.Float32bits(wb[name][i]) {
						t.Fatalf("%q element %d: %g resumed, %g uninterrupted", name, i, wb[name][i], va[i])
					}
				}
			}

			// Damaged and foreign states are refused without touching the trainer.
			before := weights(b.Graph())
			bad := slices.Clone(saved)
			bad[len(bad)/2] ^= 0x40
			other := opts
			other.Optim = OptimConfig{Name: "adam", LR: 1e-3}
			if optim.Name == "adam" {
				other.Optim.Name = "sgd"
			}
			o, err := New(g, other)
			if err != nil {
				t.Fatal(err)
			}
			for name, tc := range map[string]struct {
				tr   *Trainer
				data []byte
			}{"flipped bit": {b, bad}, "truncated": {b, saved[:len(saved)-9]}, "empty": {b, nil}, "other optimizer": {o, saved}} {
				if err := tc.tr.LoadState(bytes.NewReader(tc.data)); !errors.Is(err, ErrState) {
					t.Errorf("%s: error %v, want ErrState", name, err)
				}
			}
			if after := weights(b.Graph()); !equalWeights(before, after) || b.StepCount() != 4 {
				t.Error("a refused state changed the trainer")
			}
		})
	}
}

func equalWeights(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestTrainerAPI(t *testing.T) {
	c := loadFinetune(t)
	before := weights(c.before)
	opts := c.options(true)
	opts.Freeze = []string{"features.conv0", "features.denseblock1.denselayer1."}
	tr, err := New(c.before, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := tr.Step(ctx, c.x, c.labels); err != nil {
		t.Fatal(err)
	}
	if !equalWeights(before, weights(c.before)) {
		t.Error("New or Step changed the graph it was given")
	}
	after := weights(tr.Graph())
	for name, w := range before {
		frozen := slices.ContainsFunc(opts.Freeze, func(p string) bool { return len(name) >= len(p) && name[:len(p)] == p })
		stat := len(name) > 8 && (name[len(name)-8:] == "ning_var" || name[len(name)-9:] == "ning_mean")
		if changed := !slices.Equal(w, after[name]); changed == (frozen && !stat) {
			t.Errorf("%q: changed=%v, frozen=%v", name, changed, frozen)
		}
	}

	// Graph exports as a standard model.
	if _, err := graph.Export(tr.Graph()); err != nil {
		t.Errorf("Export(Graph()): %v", err)
	}

	// Evaluate gives [N, classes] and changes nothing.
	logits, err := tr.Evaluate(ctx, c.x)
	if err != nil {
		t.Fatal(err)
	}
	if !logits.Shape.Equal(tensor.Shape{8, 5}) {
		t.Errorf("Evaluate shape %v", logits.Shape)
	}

	// Bad inputs are errors that leave the trainer as it was.
	snapshot := weights(tr.Graph())
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	half := tensor.FromSlice(tensor.Shape{4, 3, 16, 16}, tensor.Data[float32](c.x)[:4*3*16*16])
	for name, tc := range map[string]struct {
		ctx    context.Context
		x      *tensor.Tensor
		labels []int64
		want   error
	}{
		"label out of range": {ctx, c.x, []int64{0, 1, 2, 3, 4, 5, 0, 1}, ErrInput},
		"labels count":       {ctx, c.x, c.labels[:7], ErrInput},
		"image size":         {ctx, tensor.New(tensor.Float32, tensor.Shape{8, 3, 8, 8}), c.labels, ErrInput},
		"dtype":              {ctx, tensor.New(tensor.Float64, tensor.Shape{8, 3, 16, 16}), c.labels, ErrInput},
		"cancelled":          {cancelled, half, c.labels[:4], context.Canceled},
	} {
		if _, err := tr.Step(tc.ctx, tc.x, tc.labels); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
	}
	if !equalWeights(snapshot, weights(tr.Graph())) || tr.StepCount() != 1 {
		t.Error("a failed step changed the trainer")
	}
}

func TestUnsupportedGraphs(t *testing.T) {
	b := newNet(t, "x", 3, 4, 4)
	h := b.node("Conv", []string{"x", b.param("w", 1, 0, 2, 3, 1, 1)}, attrIs("kernel_shape", 1, 1))
	h = b.node("Sigmoid", []string{h})
	h = b.node("Flatten", []string{h})
	g := b.build(h)
	if _, err := New(g, DefaultOptions()); !errors.Is(err, ops.ErrUnsupportedOp) {
		t.Errorf("Sigmoid: error %v, want ErrUnsupportedOp", err)
	}
	b = newNet(t, "x", 3, 4, 4)
	h = b.node("Conv", []string{"x", b.param("w", 1, 0, 2, 3, 1, 1)}, attrIs("kernel_shape", 1, 1))
	g = b.build(h)
	if _, err := New(g, DefaultOptions()); !errors.Is(err, ErrGraph) {
		t.Errorf("image output: error %v, want ErrGraph", err)
	}
}

func TestReplaceHead(t *testing.T) {
	c := loadFinetune(t)
	g, err := c.before.Clone(ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := ReplaceHead(g, 7, 1); err != nil {
		t.Fatal(err)
	}
	w, b := g.Value("classifier.weight").Const, g.Value("classifier.bias").Const
	if !w.Shape.Equal(tensor.Shape{7, 16}) || !b.Shape.Equal(tensor.Shape{7}) {
		t.Fatalf("new head %v, %v", w.Shape, b.Shape)
	}
	bound := 1 / math.Sqrt(16)
	for _, v := range append(slices.Clone(tensor.Data[float32](w)), tensor.Data[float32](b)...) {
		if math.Abs(float64(v)) > bound {
			t.Fatalf("initial value %g outside ±%g", v, bound)
		}
	}
	again, _ := c.before.Clone(ops.Default())
	if err := ReplaceHead(again, 7, 1); err != nil || !slices.Equal(tensor.Data[float32](again.Value("classifier.weight").Const), tensor.Data[float32](w)) {
		t.Error("the same seed gave another head")
	}
	tr, err := New(g, c.options(true))
	if err != nil {
		t.Fatal(err)
	}
	labels := []int64{6, 5, 4, 3, 2, 1, 0, 6}
	if _, err := tr.Step(context.Background(), c.x, labels); err != nil {
		t.Fatal(err)
	}
	logits, err := tr.Evaluate(context.Background(), c.x)
	if err != nil || !logits.Shape.Equal(tensor.Shape{8, 7}) {
		t.Fatalf("logits %v, %v", logits, err)
	}
	if m, err := graph.Export(tr.Graph()); err != nil {
		t.Error(err)
	} else if d := m.GetGraph().GetOutput()[0].GetType().GetTensorType().GetShape().GetDim(); len(d) != 2 || d[1].GetDimValue() != 7 {
		t.Errorf("exported output dims %v", d)
	}
	if err := ReplaceHead(g, 0, 1); !errors.Is(err, ErrOptions) {
		t.Errorf("0 classes: %v", err)
	}
}

// A learning rate far too high makes the loss overflow within a few steps: Step must refuse the
// step that is not finite and keep the last finite weights.
func TestStepRefusesDivergence(t *testing.T) {
	c := loadFinetune(t)
	opts := c.options(true)
	opts.Optim.LR = 1e9
	tr, err := New(c.before, opts)
	if err != nil {
		t.Fatal(err)
	}
	var stepErr error
	for i := 0; i < 10 && stepErr == nil; i++ {
		_, stepErr = tr.Step(t.Context(), c.x, c.labels)
	}
	if !errors.Is(stepErr, ErrDiverged) {
		t.Fatalf("10 steps at learning rate 1e9: error %v, want ErrDiverged", stepErr)
	}
	if !strings.Contains(stepErr.Error(), fmt.Sprintf("step %d", tr.StepCount()+1)) {
		t.Errorf("error %q does not name step %d", stepErr, tr.StepCount()+1)
	}
	for _, p := range tr.params {
		for _, v := range p.data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s holds %g after the refused step", p.name, v)
			}
		}
	}
	t.Logf("refused: %v", stepErr)
}

// A Freeze prefix that matches no parameter is refused, naming the prefix; one that matches only
// some parameters, or all of them, is fine.
func TestFreezePrefixMustMatch(t *testing.T) {
	g := builtNet(t, bcConfig())
	for _, tc := range []struct {
		name   string
		freeze []string
		bad    string // the prefix the error names; "" for success
	}{
		{"one matching", []string{"features.conv0"}, ""},
		{"everything", []string{"features", "classifier"}, ""},
		{"typo", []string{"features.conv0", "featurs"}, "featurs"},
		{"running statistic only", []string{"features.norm0.running_mean"}, "features.norm0.running_mean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(g, Options{Optim: OptimConfig{LR: 0.1}, Freeze: tc.freeze})
			switch {
			case tc.bad == "" && err != nil:
				t.Fatal(err)
			case tc.bad != "" && (!errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.bad))):
				t.Fatalf("Freeze %q: error %v, want ErrOptions naming %q", tc.freeze, err, tc.bad)
			}
		})
	}
}

// A batch whose training arena exceeds Options.MaxMemory is refused before the arena is
// allocated, naming the arena and the budget; the trainer still works at a batch that fits.
func TestTrainingArenaBudget(t *testing.T) {
	c := loadFinetune(t)
	opts := c.options(true)
	opts.MaxMemory = 1 << 20
	tr, err := New(c.before, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Step(t.Context(), c.x, c.labels)
	if !errors.Is(err, membudget.ErrOverBudget) || !strings.Contains(err.Error(), "training arena") {
		t.Fatalf("batch of 8 under a 1 MiB budget: err = %v, want ErrOverBudget naming the training arena", err)
	}
	t.Log(err)
	x, labels := randomBatch(1, 1, c.x.Shape[1:], 5)
	if _, err := tr.Step(t.Context(), x, labels); err != nil {
		t.Fatalf("batch of 1: %v", err)
	}
}

package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestScheduleLR(t *testing.T) {
	cases := []struct {
		s    Schedule
		step int
		want float64
	}{
		{Schedule{}, 7, 0.1},
		{Schedule{Kind: "constant"}, 0, 0.1},
		{Schedule{Kind: "step", StepSize: 3, Gamma: 0.5}, 2, 0.1},
		{Schedule{Kind: "step", StepSize: 3, Gamma: 0.5}, 3, 0.05},
		{Schedule{Kind: "step", StepSize: 3, Gamma: 0.5}, 7, 0.025},
		{Schedule{Kind: "cosine", TotalSteps: 10}, 0, 0.1},
		{Schedule{Kind: "cosine", TotalSteps: 10}, 5, 0.05},
		{Schedule{Kind: "cosine", TotalSteps: 10}, 10, 0},
		{Schedule{Kind: "cosine", TotalSteps: 10}, 12, 0},
		{Schedule{Kind: "cosine", TotalSteps: 10, WarmupSteps: 4}, 0, 0.025},
		{Schedule{Kind: "cosine", TotalSteps: 10, WarmupSteps: 4}, 3, 0.1},
		{Schedule{Kind: "cosine", TotalSteps: 10, WarmupSteps: 4}, 4, 0.1},
		{Schedule{Kind: "cosine", TotalSteps: 10, WarmupSteps: 4}, 7, 0.05},
		{Schedule{Kind: "step", StepSize: 2, Gamma: 0.1, WarmupSteps: 2}, 1, 0.1},
		{Schedule{Kind: "step", StepSize: 2, Gamma: 0.1, WarmupSteps: 2}, 4, 0.01},
	}
	for _, tc := range cases {
		if got := tc.s.LR(0.1, tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%+v.LR(0.1, %d) = %g, want %g", tc.s, tc.step, got, tc.want)
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{Optim: OptimConfig{Name: "rmsprop"}},
		{Optim: OptimConfig{LR: -1}},
		{Optim: OptimConfig{LR: math.NaN()}},
		{Optim: OptimConfig{Nesterov: true}},
		{Optim: OptimConfig{Nesterov: true, Momentum: 0.9, Dampening: 0.1}},
		{Optim: OptimConfig{Name: "adam", Beta1: 1}},
		{LabelSmoothing: 1.5},
		{Schedule: Schedule{Kind: "step"}},
		{Schedule: Schedule{Kind: "cosine", TotalSteps: 3, WarmupSteps: 3}},
		{Schedule: Schedule{Kind: "linear"}},
	} {
		if _, err := o.normalize(); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: error %v, want ErrOptions", o, err)
		}
	}
	o, err := Options{Optim: OptimConfig{Name: "AdamW"}}.normalize()
	if err != nil || o.Optim.Name != "adamw" || o.Optim.Beta1 != 0.9 || o.Optim.Beta2 != 0.999 || o.Optim.Eps != 1e-8 {
		t.Errorf("AdamW defaults: %+v, %v", o.Optim, err)
	}
}

// refOptimizer is torch.optim's update rules in float64, written from the documentation's
// pseudo-code, for one parameter tensor.
type refOptimizer struct {
	c       OptimConfig
	buf     []float64
	m, v    []float64
	started bool
}

func (o *refOptimizer) step(p, g []float64, lr float64, t int) {
	c := o.c
	if o.buf == nil {
		o.buf, o.m, o.v = make([]float64, len(p)), make([]float64, len(p)), make([]float64, len(p))
	}
	for i := range p {
		gi := g[i]
		switch c.Name {
		case "sgd":
			gi += c.WeightDecay * p[i]
			if c.Momentum != 0 {
				if !o.started {
					o.buf[i] = gi
				} else {
					o.buf[i] = c.Momentum*o.buf[i] + (1-c.Dampening)*gi
				}
				if c.Nesterov {
					gi += c.Momentum * o.buf[i]
				} else {
					gi = o.buf[i]
				}
			}
			p[i] -= lr * gi
		case "adam", "adamw":
			if c.Name == "adamw" {
				p[i] *= 1 - lr*c.WeightDecay
			} else {
				gi += c.WeightDecay * p[i]
			}
			o.m[i] = c.Beta1*o.m[i] + (1-c.Beta1)*gi
			o.v[i] = c.Beta2*o.v[i] + (1-c.Beta2)*gi*gi
			bc1, bc2 := 1-math.Pow(c.Beta1, float64(t+1)), 1-math.Pow(c.Beta2, float64(t+1))
			p[i] -= lr / bc1 * o.m[i] / (math.Sqrt(o.v[i])/math.Sqrt(bc2) + c.Eps)
		}
	}
	o.started = true
}

func TestOptimizersMatchTorchRules(t *testing.T) {
	configs := []OptimConfig{
		{Name: "sgd", LR: 0.1},
		{Name: "sgd", LR: 0.05, Momentum: 0.9, WeightDecay: 1e-4},
		{Name: "sgd", LR: 0.05, Momentum: 0.9, Dampening: 0.5, WeightDecay: 1e-2},
		{Name: "sgd", LR: 0.05, Momentum: 0.8, Nesterov: true, WeightDecay: 1e-3},
		{Name: "adam", LR: 1e-3},
		{Name: "adam", LR: 1e-2, WeightDecay: 1e-2, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6},
		{Name: "adamw", LR: 1e-2, WeightDecay: 5e-2},
	}
	for _, c := range configs {
		o, err := Options{Optim: c}.normalize()
		if err != nil {
			t.Fatal(err)
		}
		c = o.Optim
		r := rand.New(rand.NewPCG(1, 1))
		const n = 50
		p := &param{name: "w", data: make([]float32, n), grad: make([]float32, n), train: true}
		ref := &refOptimizer{c: c}
		want := make([]float64, n)
		for i := range p.data {
			p.data[i] = float32(r.NormFloat64())
			want[i] = float64(p.data[i])
		}
		for step := 0; step < 5; step++ {
			g := make([]float64, n)
			for i := range g {
				p.grad[i] = float32(r.NormFloat64() * 0.1)
				g[i] = float64(p.grad[i])
			}
			lr := Schedule{Kind: "step", StepSize: 2, Gamma: 0.5}.LR(c.LR, step)
			update(c, []*param{p}, lr, step)
			ref.step(want, g, lr, step)
		}
		for i := range want {
			if math.Abs(float64(p.data[i])-want[i]) > 2e-6*max(1, math.Abs(want[i])) {
				t.Errorf("%+v: element %d = %.8g, torch rule %.8g", c, i, p.data[i], want[i])
				break
			}
		}
	}
}

func TestClipGrads(t *testing.T) {
	ps := []*param{
		{train: true, grad: []float32{3, 0}},
		{train: true, grad: []float32{0, 4}},
		{train: false, grad: []float32{100}},
	}
	n := gradNorm(ps)
	if n != 5 {
		t.Fatalf("norm %g, want 5", n)
	}
	clipGrads(ps, n, 1)
	if got := gradNorm(ps); math.Abs(got-1) > 1e-6 {
		t.Errorf("norm after clipping to 1: %g", got)
	}
	if ps[2].grad[0] != 100 {
		t.Error("a frozen gradient was clipped")
	}
	clipGrads(ps, gradNorm(ps), 10)
	if got := gradNorm(ps); math.Abs(got-1) > 1e-6 {
		t.Errorf("clipping to a larger norm changed the gradients: %g", got)
	}
}

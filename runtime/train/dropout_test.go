package train

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/train/refgrad"
)

// dropNet builds the small graphs of the Dropout tests: a netBuilder with the layers they use.
type dropNet struct{ *netBuilder }

// newDropNet starts a graph of the given opset with one float32 input "x" [batch, dims...]; batch
// 0 is the symbolic dim "batch".
func newDropNet(t testing.TB, opset int, batch int64, dims ...int64) *dropNet {
	return &dropNet{newNetAt(t, opset, batch, rand.New(rand.NewPCG(17, 5)), "x", dims...)}
}

// dropout adds a Dropout of ratio p on x, encoded for the graph's opset: a ratio initializer from
// opset 12, the ratio attribute before.
func (b *dropNet) dropout(x string, p float32) string {
	if b.opset < 12 {
		return b.node("Dropout", []string{x}, attrF("ratio", p))
	}
	r := b.init(fmt.Sprintf("ratio_%d", b.nodes+1), tensor.FromSlice(tensor.Shape{}, []float32{p}))
	return b.node("Dropout", []string{x, r})
}

func (b *dropNet) conv(x string, cin, cout int) string {
	k := b.nodes + 1
	w := b.param(fmt.Sprintf("conv%d.weight", k), 0, math.Sqrt(2/float64(9*cin)), cout, cin, 3, 3)
	return b.node("Conv", []string{x, w}, attrIs("kernel_shape", 3, 3), attrIs("pads", 1, 1, 1, 1))
}

func (b *dropNet) bnRelu(x string, c int) string {
	k := b.nodes + 1
	ones, zeros := make([]float32, c), make([]float32, c)
	for i := range ones {
		ones[i] = 1
	}
	scale := b.init(fmt.Sprintf("bn%d.weight", k), tensor.FromSlice(tensor.Shape{c}, slices.Clone(ones)))
	bias := b.init(fmt.Sprintf("bn%d.bias", k), tensor.FromSlice(tensor.Shape{c}, slices.Clone(zeros)))
	mean := b.init(fmt.Sprintf("bn%d.running_mean", k), tensor.FromSlice(tensor.Shape{c}, zeros))
	variance := b.init(fmt.Sprintf("bn%d.running_var", k), tensor.FromSlice(tensor.Shape{c}, ones))
	h := b.node("BatchNormalization", []string{x, scale, bias, mean, variance}, attrF("epsilon", 1e-5), attrF("momentum", 0.9))
	return b.node("Relu", []string{h})
}

// head adds GlobalAveragePool, Flatten and a Gemm to classes outputs; it returns the logits.
func (b *dropNet) head(x string, c, classes int) string {
	h := b.node("Flatten", []string{b.node("GlobalAveragePool", []string{x})})
	return b.node("Gemm", []string{h, b.param("fc.weight", 0.5, 0, classes, c), b.param("fc.bias", 0.1, 0, classes)}, attrI("transB", 1))
}

// denseDropNet is one dense block's worth of a DenseNet on [3, 6, 6] images: a stem conv, a
// BN-ReLU-conv layer whose output goes through Dropout into the concatenation (where
// torchvision's drop_rate puts it; the trainer runs it in place), then BN-ReLU and the head.
func denseDropNet(t testing.TB, opset int, p float32) *graph.Graph {
	b := newDropNet(t, opset, 0, 3, 6, 6)
	h0 := b.conv("x", 3, 4)
	h1 := b.dropout(b.conv(b.bnRelu(h0, 4), 4, 3), p)
	h := b.node("Concat", []string{h0, h1}, attrI("axis", 1))
	return b.build(b.head(b.bnRelu(h, 7), 7, 5))
}

// mixedDropNet has a Dropout that cannot run in place (its input is a ReLU's output, which the
// ReLU's backward pass reads and an Add reads too) and one on a rank-2 value (row-major).
func mixedDropNet(t testing.TB, opset int, p float32) *graph.Graph {
	b := newDropNet(t, opset, 0, 3, 5, 5)
	r := b.node("Relu", []string{b.conv("x", 3, 4)})
	h := b.node("Add", []string{b.dropout(r, p), r})
	f := b.dropout(b.node("Flatten", []string{b.node("GlobalAveragePool", []string{h})}), p/2)
	return b.build(b.node("Gemm", []string{f, b.param("fc.weight", 0.5, 0, 5, 4), b.param("fc.bias", 0.1, 0, 5)}, attrI("transB", 1)))
}

// dropDenseNet is a small DenseNet-BC from the builders with drop rate p.
func dropDenseNet(t testing.TB, p float64, opset int) *graph.Graph {
	cfg := builders.Config{Growth: 4, Blocks: []int{2, 3}, InitFeatures: 8, BNSize: 2, Compression: 0.5,
		Stem: builders.StemCIFAR, Classes: 6, InputSize: 8, DropRate: p}
	m, err := builders.Build(cfg, builders.BuildOptions{Seed: 3, Opset: opset})
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// dropoutUnits returns the Dropout units of tr's most recent plan (of its last pass), by node
// name.
func dropoutUnits(t *testing.T, tr *Trainer) map[string]*dropoutUnit {
	t.Helper()
	p := tr.plans[len(tr.plans)-1]
	out := map[string]*dropoutUnit{}
	for i, u := range p.units {
		if d, ok := u.(*dropoutUnit); ok {
			if d.index != i {
				t.Fatalf("%s: index %d, at %d in the plan", d.node, d.index, i)
			}
			out[d.node.Name] = d
		}
	}
	return out
}

// dropRefLoss is the float64 loss of a training-mode forward pass of g on the values in vals
// (the input and every initializer, float data as float64): BatchNormalization normalizes with
// the batch statistics and every Dropout with a stated ratio applies the mask the trainer draws at
// step under seed, its unit index taken from units; the rest runs on the reference kernels.
func dropRefLoss(t *testing.T, g *graph.Graph, vals map[*graph.Value]*tensor.Tensor, labels []int64, seed uint64, step int, units map[string]*dropoutUnit) float64 {
	t.Helper()
	refForward(t, g, vals, true, func(n *graph.Node, o *ops.Dropout, in []*tensor.Tensor) *tensor.Tensor {
		return dropRefApply(t, n, o, in, seed, step, units)
	}, nil)
	loss, _, err := refgrad.SoftmaxCrossEntropy(vals[g.Outputs[0]], labels, 0)
	if err != nil {
		t.Fatal(err)
	}
	return loss
}

// dropRefApply is Dropout node n on in[0] (NCHW, row-major): element j is kept when
// dropoutKeep says so for its row-major index j, and scaled by 1/(1-p) in float64.
func dropRefApply(t *testing.T, n *graph.Node, o *ops.Dropout, in []*tensor.Tensor, seed uint64, step int, units map[string]*dropoutUnit) *tensor.Tensor {
	var p float64
	switch {
	case len(in) > 1 && in[1] != nil:
		p = in[1].Float64s()[0]
	case n.Opset < 12 && n.Attrs.Has("ratio"):
		p = float64(o.Ratio)
	default:
		return in[0]
	}
	u := units[n.Name]
	if u == nil {
		t.Fatalf("%s has no Dropout unit in the plan", n)
	}
	key, thresh := dropoutKey(seed, step, u.index), dropoutThreshold(p)
	x := in[0].Float64s()
	y := make([]float64, len(x))
	for j, v := range x {
		if dropoutKeep(key, j, thresh) {
			y[j] = v / (1 - p)
		}
	}
	return tensor.FromSlice(in[0].Shape.Clone(), y)
}

// TestDropoutGradients checks a training step with Dropout against float64 central differences
// of the loss of dropRefLoss (the same masks, the rest in float64): the loss, and for every
// trained parameter a few elements' gradients, within fdAtol + fdRtol * the tensor's largest
// gradient (float32 rounding; the differences themselves are good to ~1e-9). The compared step
// is the second, so the step number is part of the masks' key, and the weights are those the
// first step left.
func TestDropoutGradients(t *testing.T) {
	const (
		fdH    = 1e-6
		fdAtol = 1e-5
		fdRtol = 2e-4
	)
	cases := []struct {
		name    string
		g       func(t testing.TB) *graph.Graph
		chw     []int
		classes int
	}{
		{"dense layer, ratio input", func(t testing.TB) *graph.Graph { return denseDropNet(t, 13, 0.3) }, []int{3, 6, 6}, 5},
		{"dense layer, ratio attribute", func(t testing.TB) *graph.Graph { return denseDropNet(t, 11, 0.6) }, []int{3, 6, 6}, 5},
		{"not in place, rank 2", func(t testing.TB) *graph.Graph { return mixedDropNet(t, 13, 0.5) }, []int{3, 5, 5}, 5},
		{"DenseNet-BC drop rate 0.2", func(t testing.TB) *graph.Graph { return dropDenseNet(t, 0.2, 13) }, []int{3, 8, 8}, 6},
	}
	for _, tc := range cases {
		for _, memEff := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/memory-efficient=%v", tc.name, memEff), func(t *testing.T) {
				const seed = 0x5eed
				opts := Options{Optim: OptimConfig{LR: 0.05}, MemoryEfficient: memEff, Threads: 2, Seed: seed}
				tr, err := New(tc.g(t), opts)
				if err != nil {
					t.Fatal(err)
				}
				x, labels := randomBatch(3, 4, tc.chw, tc.classes)
				if _, err := tr.Step(t.Context(), x, labels); err != nil {
					t.Fatal(err)
				}
				g := tr.Graph()
				step := tr.StepCount()
				st, err := tr.Step(t.Context(), x, labels)
				if err != nil {
					t.Fatal(err)
				}
				units := dropoutUnits(t, tr)
				if len(units) == 0 {
					t.Fatal("the plan has no Dropout unit")
				}

				vals := map[*graph.Value]*tensor.Tensor{g.Inputs[0]: tensor.FromSlice(x.Shape.Clone(), x.Float64s())}
				for _, v := range g.Initializers {
					vals[v] = v.Const
					if v.Const.DType.IsFloat() {
						vals[v] = tensor.FromSlice(v.Const.Shape.Clone(), v.Const.Float64s())
					}
				}
				loss := dropRefLoss(t, g, vals, labels, seed, step, units)
				if math.Abs(st.Loss-loss) > 1e-5*max(1, loss) {
					t.Errorf("loss %.9f, reference %.9f", st.Loss, loss)
				}
				checked, worst := 0, 0.0
				for _, p := range tr.params {
					if !p.train {
						continue
					}
					d := tensor.Data[float64](vals[g.Value(p.name)])
					scale := 0.0
					for _, v := range p.grad {
						scale = max(scale, math.Abs(float64(v)))
					}
					n := len(d)
					for _, k := range slices.Compact([]int{0, n / 3, n / 2, 2 * n / 3, n - 1}) {
						orig := d[k]
						d[k] = orig + fdH
						up := dropRefLoss(t, g, vals, labels, seed, step, units)
						d[k] = orig - fdH
						down := dropRefLoss(t, g, vals, labels, seed, step, units)
						d[k] = orig
						fd := (up - down) / (2 * fdH)
						diff := math.Abs(float64(p.grad[k]) - fd)
						worst = max(worst, diff/max(scale, 1e-12))
						if diff > fdAtol+fdRtol*scale {
							t.Errorf("gradient of %s[%d]: %g, central difference %g (largest gradient of the tensor %g)", p.name, k, p.grad[k], fd, scale)
						}
						checked++
					}
				}
				t.Logf("loss %.7f (reference %.7f); %d gradients checked, worst difference %.2g of the tensor's largest", st.Loss, loss, checked, worst)
			})
		}
	}
}

// TestDropoutMaskStatistics checks the generator: for several ratios, the kept fraction of a
// million draws is within 5 standard deviations of 1-p, and masks of neighbouring keys are
// independent (they agree on a fraction p²+(1-p)² of the elements, within the same bounds).
func TestDropoutMaskStatistics(t *testing.T) {
	const n = 1 << 20
	for _, p := range []float64{0.05, 0.2, 0.5, 0.8, 0.97} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			thresh := dropoutThreshold(p)
			keys := []uint64{dropoutKey(1, 0, 0), dropoutKey(1, 1, 0), dropoutKey(1, 0, 1), dropoutKey(2, 0, 0)}
			masks := make([][]bool, len(keys))
			for i, key := range keys {
				masks[i] = make([]bool, n)
				kept := 0
				for j := range masks[i] {
					masks[i][j] = dropoutKeep(key, j, thresh)
					if masks[i][j] {
						kept++
					}
				}
				sd := math.Sqrt(p * (1 - p) / n)
				if f := float64(kept) / n; math.Abs(f-(1-p)) > 5*sd {
					t.Errorf("key %d: kept fraction %.5f, want %.5f ± %.5f", i, f, 1-p, 5*sd)
				}
			}
			agree := p*p + (1-p)*(1-p)
			sd := math.Sqrt(agree * (1 - agree) / n)
			for i := 1; i < len(keys); i++ {
				same := 0
				for j := range masks[0] {
					if masks[0][j] == masks[i][j] {
						same++
					}
				}
				if f := float64(same) / n; math.Abs(f-agree) > 5*sd {
					t.Errorf("keys 0 and %d agree on %.5f of the elements, independent masks %.5f ± %.5f", i, f, agree, 5*sd)
				}
			}
		})
	}
	// The edge ratios: p = 0 keeps everything, p = 1 nothing.
	for j := range 1000 {
		if !dropoutKeep(dropoutKey(3, 4, 5), j, dropoutThreshold(0)) || dropoutKeep(dropoutKey(3, 4, 5), j, dropoutThreshold(1)) {
			t.Fatalf("element %d: ratio 0 dropped it or ratio 1 kept it", j)
		}
	}
}

// TestDropoutForward runs the forward pass of a Dropout on the images (not in place: the input
// is fed) and checks every element of its output: x/(1-p) where dropoutKeep keeps the element's
// row-major index, 0 elsewhere, with the kept fraction within 5 standard deviations of 1-p.
func TestDropoutForward(t *testing.T) {
	for _, p := range []float32{0.1, 0.5, 0.75} {
		for _, memEff := range []bool{false, true} {
			t.Run(fmt.Sprintf("p=%g/memory-efficient=%v", p, memEff), func(t *testing.T) {
				b := newDropNet(t, 13, 0, 4, 12, 12)
				g := b.build(b.head(b.dropout("x", p), 4, 3))
				tr, err := New(g, Options{Optim: OptimConfig{LR: 0.01}, MemoryEfficient: memEff, Threads: 3, Seed: 99})
				if err != nil {
					t.Fatal(err)
				}
				x, _ := randomBatch(7, 6, []int{4, 12, 12}, 3)
				r, done, err := tr.start(x, true)
				if err != nil {
					t.Fatal(err)
				}
				defer done()
				if err := r.forward(t.Context()); err != nil {
					t.Fatal(err)
				}
				units := dropoutUnits(t, tr)
				var u *dropoutUnit
				for _, d := range units {
					u = d
				}
				if len(units) != 1 || u.inPlace {
					t.Fatalf("units %v", units)
				}
				yv := r.p.vals[u.y]
				y := r.data(u.y)
				xs := tensor.Data[float32](x)
				key, scale := dropoutKey(99, 0, u.index), float32(1/(1-float64(p)))
				kept := 0
				for j, xj := range xs {
					want := float32(0)
					if dropoutKeep(key, j, dropoutThreshold(float64(p))) {
						want = xj * scale
						kept++
					}
					if got := y[yv.offsetOf(j)]; got != want {
						t.Fatalf("element %d: %g, want %g (x = %g)", j, got, want, xj)
					}
				}
				n := float64(len(xs))
				sd := math.Sqrt(float64(p) * (1 - float64(p)) / n)
				if f := float64(kept) / n; math.Abs(f-(1-float64(p))) > 5*sd {
					t.Errorf("kept fraction %.4f, want %.4f ± %.4f", f, 1-p, 5*sd)
				}
			})
		}
	}
}

// TestDropoutEvaluateIsIdentity checks that Evaluate ignores Dropout (bit-identical logits to the
// same weights built without it), while Step does not (a different loss).
func TestDropoutEvaluateIsIdentity(t *testing.T) {
	cases := []struct {
		name      string
		with, off func(t testing.TB) *graph.Graph
		chw       []int
		classes   int
	}{
		{"DenseNet-BC", func(t testing.TB) *graph.Graph { return dropDenseNet(t, 0.4, 13) },
			func(t testing.TB) *graph.Graph { return dropDenseNet(t, 0, 13) }, []int{3, 8, 8}, 6},
		{"not in place, rank 2", func(t testing.TB) *graph.Graph { return mixedDropNet(t, 13, 0.5) },
			func(t testing.TB) *graph.Graph { return mixedDropNet(t, 13, 0) }, []int{3, 5, 5}, 5},
	}
	for _, tc := range cases {
		for _, memEff := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/memory-efficient=%v", tc.name, memEff), func(t *testing.T) {
				x, labels := randomBatch(4, 3, tc.chw, tc.classes)
				var logits [2]*tensor.Tensor
				var loss [2]float64
				for i, g := range []*graph.Graph{tc.with(t), tc.off(t)} {
					tr, err := New(g, Options{Optim: OptimConfig{LR: 0.01}, MemoryEfficient: memEff, Threads: 2, Seed: 5})
					if err != nil {
						t.Fatal(err)
					}
					if logits[i], err = tr.Evaluate(t.Context(), x); err != nil {
						t.Fatal(err)
					}
					st, err := tr.Step(t.Context(), x, labels)
					if err != nil {
						t.Fatal(err)
					}
					loss[i] = st.Loss
				}
				if !slices.Equal(tensor.Data[float32](logits[0]), tensor.Data[float32](logits[1])) {
					t.Errorf("Evaluate with Dropout differs from without (max |diff| %g)", tensor.MaxAbsDiff(logits[0], logits[1]))
				}
				if loss[0] == loss[1] {
					t.Errorf("Step's loss %.9g is the same with and without Dropout", loss[0])
				}
			})
		}
	}
}

// dropRun is what the reproducibility tests compare: the loss and every gradient of each step.
type dropRun struct {
	loss  []float64
	grads [][]float32
}

// runDropSteps runs steps training steps of a new trainer of g with opts.
func runDropSteps(t *testing.T, g *graph.Graph, opts Options, x *tensor.Tensor, labels []int64, steps int) dropRun {
	t.Helper()
	tr, err := New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out dropRun
	for range steps {
		st, err := tr.Step(t.Context(), x, labels)
		if err != nil {
			t.Fatal(err)
		}
		out.loss = append(out.loss, st.Loss)
		var gs []float32
		for _, p := range tr.params {
			gs = append(gs, p.grad...)
		}
		out.grads = append(out.grads, gs)
	}
	return out
}

// sameRun reports where two runs first differ in a bit, "" when they do not.
func sameRun(a, b dropRun) string {
	for s := range a.loss {
		if math.Float64bits(a.loss[s]) != math.Float64bits(b.loss[s]) {
			return fmt.Sprintf("step %d: loss %.9g vs %.9g", s, a.loss[s], b.loss[s])
		}
		for k := range a.grads[s] {
			if math.Float32bits(a.grads[s][k]) != math.Float32bits(b.grads[s][k]) {
				return fmt.Sprintf("step %d: gradient element %d: %g vs %g", s, k, a.grads[s][k], b.grads[s][k])
			}
		}
	}
	return ""
}

// TestDropoutMasksIgnoreThreadsAndMemoryMode checks that the thread count (1, 2, 3) and the
// memory mode leave the masks alone: every run's losses and gradients over three steps are
// bit-identical to the first's.
func TestDropoutMasksIgnoreThreadsAndMemoryMode(t *testing.T) {
	cases := []struct {
		name    string
		g       *graph.Graph
		chw     []int
		classes int
	}{
		{"DenseNet-BC", dropDenseNet(t, 0.3, 13), []int{3, 8, 8}, 6},
		{"not in place, rank 2", mixedDropNet(t, 13, 0.5), []int{3, 5, 5}, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, labels := randomBatch(6, 5, tc.chw, tc.classes)
			var first dropRun
			for _, memEff := range []bool{false, true} {
				for threads := 1; threads <= 3; threads++ {
					opts := Options{Optim: OptimConfig{LR: 0.05, Momentum: 0.9}, MemoryEfficient: memEff, Threads: threads, Seed: 42}
					got := runDropSteps(t, tc.g, opts, x, labels, 3)
					if first.loss == nil {
						first = got
						continue
					}
					if d := sameRun(first, got); d != "" {
						t.Errorf("memory-efficient=%v, %d threads differ from standard, 1 thread: %s", memEff, threads, d)
					}
				}
			}
		})
	}
}

// TestDropoutMasksChange checks that the masks change with the step and the seed: with a
// learning rate of 0 (the weights stay; BN's running statistics do not enter a training step)
// consecutive steps give different losses with dropout and the same loss without it, and two
// seeds give different losses.
func TestDropoutMasksChange(t *testing.T) {
	x, labels := randomBatch(8, 4, []int{3, 8, 8}, 6)
	opts := Options{Optim: OptimConfig{LR: 0}, MemoryEfficient: true, Threads: 2, Seed: 1}
	with := runDropSteps(t, dropDenseNet(t, 0.3, 13), opts, x, labels, 2)
	without := runDropSteps(t, dropDenseNet(t, 0, 13), opts, x, labels, 2)
	if with.loss[0] == with.loss[1] {
		t.Errorf("steps 0 and 1 have the same loss %.9g: the same masks", with.loss[0])
	}
	if without.loss[0] != without.loss[1] {
		t.Errorf("without dropout, steps 0 and 1 have losses %.9g and %.9g: the comparison above is not about masks", without.loss[0], without.loss[1])
	}
	opts.Seed = 2
	if other := runDropSteps(t, dropDenseNet(t, 0.3, 13), opts, x, labels, 1); other.loss[0] == with.loss[0] {
		t.Errorf("seeds 1 and 2 give the same loss %.9g", other.loss[0])
	}
}

// TestDropoutResumeIsBitIdentical checks that a trainer resumed from a saved state draws the masks
// the uninterrupted one draws: losses, gradients and weights match bit for bit.
func TestDropoutResumeIsBitIdentical(t *testing.T) {
	g := dropDenseNet(t, 0.3, 13)
	x, labels := randomBatch(9, 4, []int{3, 8, 8}, 6)
	opts := Options{Optim: OptimConfig{Name: "sgd", LR: 0.05, Momentum: 0.9}, MemoryEfficient: true, Threads: 2, Seed: 7}
	a, err := New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := a.Step(t.Context(), x, labels); err != nil {
			t.Fatal(err)
		}
	}
	var state bytes.Buffer
	if err := a.SaveState(&state); err != nil {
		t.Fatal(err)
	}
	b, err := New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.LoadState(&state); err != nil {
		t.Fatal(err)
	}
	for s := 2; s < 4; s++ {
		sa, err := a.Step(t.Context(), x, labels)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.Step(t.Context(), x, labels)
		if err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(sa.Loss) != math.Float64bits(sb.Loss) {
			t.Errorf("step %d: resumed loss %.9g, uninterrupted %.9g", s, sb.Loss, sa.Loss)
		}
		for i, p := range a.params {
			if !slices.Equal(p.grad, b.params[i].grad) {
				t.Errorf("step %d: the gradient of %q differs after resuming", s, p.name)
			}
		}
	}
	wa, wb := a.Graph(), b.Graph()
	for _, v := range wa.Initializers {
		if !slices.Equal(tensor.Data[float32](v.Const), tensor.Data[float32](wb.Value(v.Name).Const)) {
			t.Errorf("%q differs after 4 steps", v.Name)
		}
	}
}

// TestDropoutPlan checks which Dropouts become units, and which run in place: only those whose
// input nothing else needs.
func TestDropoutPlan(t *testing.T) {
	withMode := func(opset int, p float32, mode bool) func(t testing.TB) *graph.Graph {
		return func(t testing.TB) *graph.Graph {
			b := newDropNet(t, opset, 0, 3, 4, 4)
			r := b.init("ratio", tensor.FromSlice(tensor.Shape{}, []float32{p}))
			m := b.init("mode", tensor.FromSlice(tensor.Shape{}, []bool{mode}))
			d := b.node("Dropout", []string{b.conv("x", 3, 2), r, m})
			return b.build(b.head(d, 2, 3))
		}
	}
	bare := func(opset int) func(t testing.TB) *graph.Graph {
		return func(t testing.TB) *graph.Graph {
			b := newDropNet(t, opset, 0, 3, 4, 4)
			return b.build(b.head(b.node("Dropout", []string{b.conv("x", 3, 2)}), 2, 3))
		}
	}
	type want struct {
		ratio   float64 // 0: an alias
		inPlace bool
	}
	cases := []struct {
		name string
		g    func(t testing.TB) *graph.Graph
		want []want // in plan order
	}{
		{"after a dense layer's conv", func(t testing.TB) *graph.Graph { return denseDropNet(t, 13, 0.25) }, []want{{0.25, true}}},
		{"ratio attribute, opset 11", func(t testing.TB) *graph.Graph { return denseDropNet(t, 11, 0.25) }, []want{{float64(float32(0.25)), true}}},
		{"after a ReLU read twice; rank 2 after Flatten", func(t testing.TB) *graph.Graph { return mixedDropNet(t, 13, 0.5) },
			[]want{{0.5, false}, {0.25, true}}},
		{"ratio 0", func(t testing.TB) *graph.Graph { return denseDropNet(t, 13, 0) }, []want{{0, false}}},
		{"training_mode false is ignored", withMode(13, 0.5, false), []want{{0.5, true}}},
		{"training_mode true", withMode(13, 0.5, true), []want{{0.5, true}}},
		{"no ratio input, opset 13: ONNX's default 0.5", bare(13), []want{{0.5, true}}},
		{"no ratio attribute, opset 11: ONNX's default 0.5", bare(11), []want{{0.5, true}}},
		{"on the fed input", func(t testing.TB) *graph.Graph {
			b := newDropNet(t, 13, 0, 3, 4, 4)
			return b.build(b.head(b.dropout("x", 0.5), 3, 3))
		}, []want{{0.5, false}}},
	}
	for _, tc := range cases {
		for _, memEff := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/memory-efficient=%v", tc.name, memEff), func(t *testing.T) {
				g := tc.g(t)
				tr, err := New(g, Options{Optim: OptimConfig{LR: 0.01}, MemoryEfficient: memEff, Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				shape := tensor.Shape{2}
				for _, d := range g.Inputs[0].Type.Shape[1:] {
					shape = append(shape, int(d.Value))
				}
				p, err := tr.planFor(shape, 1)
				if err != nil {
					t.Fatal(err)
				}
				var got []want
				for _, u := range p.units {
					if u.base().node.OpType != "Dropout" {
						continue
					}
					switch d := u.(type) {
					case *dropoutUnit:
						got = append(got, want{d.ratio, d.inPlace})
						x, y := p.vals[d.x], p.vals[d.y]
						if d.inPlace != (x.buf == y.buf && x.off == y.off) {
							t.Errorf("%s: in place %v, but x at %d+%d and y at %d+%d", d.node, d.inPlace, x.buf, x.off, y.buf, y.off)
						}
					case *aliasUnit:
						got = append(got, want{})
					default:
						t.Fatalf("%s is a %T", u.base().node, u)
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("Dropout units %v, want %v", got, tc.want)
				}
			})
		}
	}
}

// TestDropoutInBlockBuffer checks the memory-efficient layout with dropout: every dense layer's
// Dropout runs in place, its output (and input) sits inside the block's buffer, and every
// concatenation is still a view. The peak activation memory is the same as without dropout.
func TestDropoutInBlockBuffer(t *testing.T) {
	tr, err := New(dropDenseNet(t, 0.2, 13), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	p, err := tr.planFor(tensor.Shape{4, 3, 8, 8}, 2)
	if err != nil {
		t.Fatal(err)
	}
	drops := 0
	for _, u := range p.units {
		switch u := u.(type) {
		case *dropoutUnit:
			drops++
			y := p.vals[u.y]
			if !u.inPlace {
				t.Errorf("%s does not run in place", u.node)
			}
			for _, r := range y.readers {
				c, ok := p.units[r].(*concatUnit)
				if !ok {
					t.Errorf("%s is read by %s, want the block's concatenations", u.node, p.units[r].base().node)
					continue
				}
				if out := p.vals[c.y]; out.buf != y.buf {
					t.Errorf("%s is not in the buffer of %s", u.node, c.node)
				}
			}
		case *concatUnit:
			if !u.view {
				t.Errorf("%s copies", u.node)
			}
		}
	}
	if drops != 5 {
		t.Errorf("%d Dropout units, want 5", drops)
	}
}

// TestDropoutActivationMemory measures the plan's peak activation memory with and without
// dropout after every dense layer: in place, dropout adds none, in either mode.
func TestDropoutActivationMemory(t *testing.T) {
	cases := []struct {
		name  string
		cfg   builders.Config
		batch int
		long  bool
	}{
		{"DenseNet-BC L=40 k=12", builders.Config{Growth: 12, Blocks: []int{6, 6, 6}, InitFeatures: 24, BNSize: 4, Compression: 0.5,
			Stem: builders.StemCIFAR, Classes: 10, InputSize: 32}, 16, false},
		{"DenseNet-BC L=100 k=12", builders.Config{Growth: 12, Blocks: []int{16, 16, 16}, InitFeatures: 24, BNSize: 4, Compression: 0.5,
			Stem: builders.StemCIFAR, Classes: 10, InputSize: 32}, 64, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("plans a large model")
			}
			for _, memEff := range []bool{false, true} {
				var act, total [2]int64
				for i, rate := range []float64{0, 0.2} {
					cfg := tc.cfg
					cfg.DropRate = rate
					m, err := builders.Build(cfg, builders.BuildOptions{Seed: 1})
					if err != nil {
						t.Fatal(err)
					}
					g, err := graph.Import(m, "", ops.Default())
					if err != nil {
						t.Fatal(err)
					}
					opts := DefaultOptions()
					opts.MemoryEfficient, opts.Threads = memEff, 2
					tr, err := New(g, opts)
					if err != nil {
						t.Fatal(err)
					}
					p, err := tr.planFor(tensor.Shape{tc.batch, 3, cfg.InputSize, cfg.InputSize}, 2)
					if err != nil {
						t.Fatal(err)
					}
					act[i], total[i] = p.actBytes, p.totalBytes
				}
				t.Logf("memory-efficient=%v, batch %d: activations %.2f MiB without dropout, %.2f MiB with; arena %.2f / %.2f MiB",
					memEff, tc.batch, mib(act[0]), mib(act[1]), mib(total[0]), mib(total[1]))
				if act[1] != act[0] {
					t.Errorf("memory-efficient=%v: dropout changes the peak activation memory from %d to %d bytes", memEff, act[0], act[1])
				}
			}
		})
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// TestDropoutErrors checks the Dropouts the trainer refuses, by the node's name.
func TestDropoutErrors(t *testing.T) {
	cases := []struct {
		name string
		g    func(t testing.TB) *graph.Graph
		is   error
		want string
	}{
		{"computed ratio", func(t testing.TB) *graph.Graph {
			// The ratio is the batch's mean over a [1, 1, 2, 2] image: an activation.
			b := newDropNet(t, 13, 1, 1, 2, 2)
			r := b.node("GlobalAveragePool", []string{"x"})
			d := b.node("Dropout", []string{b.conv("x", 1, 2), r})
			return b.build(b.head(d, 2, 3))
		}, ops.ErrUnsupportedOp, `node "Dropout_3" (Dropout): unsupported operator: Dropout ratio "GlobalAveragePool_1" is not a constant`},
		{"ratio above 1", func(t testing.TB) *graph.Graph {
			b := newDropNet(t, 13, 0, 1, 2, 2)
			return b.build(b.head(b.dropout(b.conv("x", 1, 2), 1.5), 2, 3))
		}, ErrGraph, `node "Dropout_2" (Dropout): graph cannot be trained: Dropout ratio 1.5 is outside [0, 1]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.g(t), DefaultOptions())
			if !errors.Is(err, tc.is) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("error %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
}

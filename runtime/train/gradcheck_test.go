package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// gradCase is one network of the whole-network gradient checks.
type gradCase struct {
	name    string
	g       func(t *testing.T) *graph.Graph
	chw     []int
	batch   int
	classes int
	opts    func(o *Options)
}

// denseCase is a small DenseNet from the builders, with BatchNormalization parameters and running
// statistics far from the identity (as in the shared PyTorch references), so that a kernel that
// mixes up scale and shift, or batch and running statistics, shows.
func denseCase(name string, cfg builders.Config, batch int) gradCase {
	chw := []int{3, cfg.InputSize, cfg.InputSize}
	return gradCase{name: name, chw: chw, batch: batch, classes: cfg.Classes, g: func(t *testing.T) *graph.Graph {
		g := builtNet(t, cfg)
		randomizeBN(g, 11)
		return g
	}}
}

// randomizeBN sets every BatchNormalization's scale to U(0.5, 1.5), bias to N(0, 0.2²), running
// mean to N(0, 0.1²) and running variance to U(0.5, 1.5), as the shared references do.
func randomizeBN(g *graph.Graph, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 3))
	for _, n := range g.Nodes {
		if n.OpType != "BatchNormalization" {
			continue
		}
		gen := []func() float64{
			func() float64 { return 0.5 + r.Float64() },
			func() float64 { return 0.2 * r.NormFloat64() },
			func() float64 { return 0.1 * r.NormFloat64() },
			func() float64 { return 0.5 + r.Float64() },
		}
		for k, f := range gen {
			if v := n.Inputs[1+k]; v != nil && v.IsConst() && v.Const.DType == tensor.Float32 {
				d := tensor.Data[float32](v.Const)
				for i := range d {
					d[i] = float32(f())
				}
			}
		}
	}
}

// gradCases are the networks of TestGradientsMatchReference: every DenseNet variant (plain, B, C,
// BC) with 2, 3 and 4 blocks, growth rates and channel counts that are not multiples of the SIMD
// width, odd spatial sizes feeding transitions (15x15, 9x9, 17x17, the ImageNet stem's 33x33),
// batches of 1 to 4, and a network of every other operator the trainer differentiates.
func gradCases() []gradCase {
	cifar := func(blocks []int, k, init, bn int, theta float64, size int) builders.Config {
		return builders.Config{Growth: k, Blocks: blocks, InitFeatures: init, BNSize: bn, Compression: theta,
			Stem: builders.StemCIFAR, Classes: 7, InputSize: size}
	}
	return []gradCase{
		denseCase("plain 2 blocks k=5 15x15 batch 3", cifar([]int{2, 3}, 5, 7, 0, 1, 15), 3),
		denseCase("plain 3 blocks k=7 9x9 batch 1", cifar([]int{2, 2, 2}, 7, 9, 0, 1, 9), 1),
		denseCase("B 2 blocks k=7 9x9 batch 2", cifar([]int{3, 2}, 7, 14, 4, 1, 9), 2),
		denseCase("B 4 blocks k=5 17x17 batch 2", cifar([]int{2, 2, 2, 2}, 5, 10, 3, 1, 17), 2),
		denseCase("C 3 blocks k=5 15x15 batch 4", cifar([]int{2, 3, 2}, 5, 11, 0, 0.5, 15), 4),
		denseCase("C 4 blocks k=7 17x17 batch 1 theta=0.6", cifar([]int{2, 2, 2, 2}, 7, 13, 0, 0.6, 17), 1),
		denseCase("BC 2 blocks k=5 15x15 batch 1", cifar([]int{3, 3}, 5, 10, 4, 0.5, 15), 1),
		denseCase("BC 3 blocks k=7 15x15 batch 3", cifar([]int{3, 3, 3}, 7, 14, 4, 0.5, 15), 3),
		denseCase("BC 4 blocks k=5 17x17 batch 2", cifar([]int{2, 2, 3, 2}, 5, 10, 4, 0.5, 17), 2),
		denseCase("BC ImageNet stem 3 blocks k=5 33x33 batch 2", builders.Config{Growth: 5, Blocks: []int{2, 2, 2}, InitFeatures: 10,
			BNSize: 4, Compression: 0.5, Stem: builders.StemImageNet, Classes: 6, InputSize: 33}, 2),
		{name: "BC label smoothing", chw: []int{3, 16, 16}, batch: 4, classes: 10, opts: func(o *Options) { o.LabelSmoothing = 0.1 },
			g: func(t *testing.T) *graph.Graph { g := builtNet(t, bcConfig()); randomizeBN(g, 5); return g }},
		{name: "BC frozen BN statistics", chw: []int{3, 16, 16}, batch: 4, classes: 10, opts: func(o *Options) { o.FreezeBNStats = true },
			g: func(t *testing.T) *graph.Graph { g := builtNet(t, bcConfig()); randomizeBN(g, 5); return g }},
		{name: "mixed ops", g: mixedNet, chw: []int{3, 12, 12}, batch: 4, classes: 5},
		{name: "mixed ops frozen BN statistics", g: mixedNet, chw: []int{3, 12, 12}, batch: 4, classes: 5,
			opts: func(o *Options) { o.FreezeBNStats = true }},
	}
}

// TestGradientsMatchReference checks one training step of whole networks against the float64
// reference (runtime/kernels/ref forward, runtime/train/refgrad backward): the loss, the
// gradient of every parameter (gradAtol + gradRtol * the tensor's largest gradient) and the BN
// running statistics after the step (statAtol + statRtol * |value|), in both memory modes and on 1, 2 and 3
// threads. ReLU ties (pre-activations within tieRel of the kink) are resolved as the reference
// resolves them; the log says how many elements that moved.
func TestGradientsMatchReference(t *testing.T) {
	for _, tc := range gradCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := tc.g(t)
			base := Options{Optim: OptimConfig{LR: 0.01}}
			if tc.opts != nil {
				tc.opts(&base)
			}
			x, labels := randomBatch(5, tc.batch, tc.chw, tc.classes)
			ref := referenceStep(t, g, x, labels, base)
			for _, memEff := range []bool{false, true} {
				for threads := 1; threads <= 3; threads++ {
					opts := base
					opts.MemoryEfficient, opts.Threads = memEff, threads
					checkStep(t, fmt.Sprintf("memory-efficient=%v threads=%d", memEff, threads), g, x, labels, opts, ref)
				}
			}
		})
	}
}

// Tolerances of the running statistics after a step: float32 forward error (~1e-6 relative)
// averaged into batch means that are often near 0, and moved in with weight 1-momentum.
const (
	statAtol = 1e-7
	statRtol = 1e-5
)

// checkStep runs one step of a new trainer of g and compares it with ref.
func checkStep(t *testing.T, what string, g *graph.Graph, x *tensor.Tensor, labels []int64, opts Options, ref *reference) {
	t.Helper()
	tr, err := New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	moved, flipped := 0, 0
	tr.tieBreak = ref.tieBreaker(&moved, &flipped)
	st, err := tr.Step(t.Context(), x, labels)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(st.Loss-ref.loss) > 1e-6*max(1, ref.loss) {
		t.Errorf("%s: loss %.8f, reference %.8f", what, st.Loss, ref.loss)
	}
	worstRel := 0.0
	for _, p := range tr.params {
		w, ok := ref.grads[p.name]
		if !ok {
			t.Errorf("%s: the reference has no gradient for %q", what, p.name)
			continue
		}
		d, ok := gradClose(p.grad, w)
		scale := 0.0
		for _, v := range w {
			scale = max(scale, math.Abs(v))
		}
		if scale > 0 {
			worstRel = max(worstRel, d/scale)
		}
		if !ok {
			t.Errorf("%s: gradient of %q: max abs diff %.3g, largest gradient %.3g", what, p.name, d, scale)
		}
	}
	if len(tr.params) != len(ref.grads) {
		t.Errorf("%s: %d trained parameters, the reference differentiates %d", what, len(tr.params), len(ref.grads))
	}
	worstStat := 0.0
	for _, s := range tr.stats {
		if opts.FreezeBNStats {
			before := tensor.Data[float32](g.Value(s.name).Const)
			for i := range s.data {
				if s.data[i] != before[i] {
					t.Errorf("%s: frozen running statistic %s[%d] moved to %g from %g", what, s.name, i, s.data[i], before[i])
					break
				}
			}
			continue
		}
		want, ok := ref.running[s.name]
		if !ok {
			t.Errorf("%s: the reference has no running statistic %q", what, s.name)
			continue
		}
		for i, v := range want {
			d := math.Abs(float64(s.data[i]) - v)
			worstStat = max(worstStat, d/(statAtol+statRtol*math.Abs(v)))
			if d > statAtol+statRtol*math.Abs(v) {
				t.Errorf("%s: running statistic %s[%d] = %g, reference %g", what, s.name, i, s.data[i], v)
				break
			}
		}
	}
	if testing.Verbose() || strings.Contains(what, "threads=1") {
		t.Logf("%s: loss %.7f (reference %.7f); %d gradients, max diff %.2g of the largest; %d running statistics, max diff %.2g of the tolerance; ReLU ties: %d elements near the kink, %d on the other side",
			what, st.Loss, ref.loss, len(tr.params), worstRel, len(tr.stats), worstStat, moved, flipped)
	}
}

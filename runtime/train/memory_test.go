package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// modesTol bounds the difference between the memory-efficient and the standard mode. They run
// the same kernels on the same numbers (a BN-ReLU output read through a convolution's prologue
// is computed exactly as the stored one), so in practice they agree bit for bit.
const modesTol = 1e-6

// closeRel reports |a-b| <= modesTol*max(1, |b|).
func closeRel(a, b float64) bool { return math.Abs(a-b) <= modesTol*max(1, math.Abs(b)) }

func TestModesAgree(t *testing.T) {
	c := loadFinetune(t)
	cases := []struct {
		name    string
		g       *graph.Graph
		x       *tensor.Tensor
		labels  []int64
		opts    Options
		steps   int
		classes int
	}{
		{name: "finetune_tiny", g: c.before, x: c.x, labels: c.labels, opts: c.options(false), steps: 3},
	}
	x, labels := randomBatch(9, 6, []int{3, 16, 16}, 10)
	opts := DefaultOptions()
	opts.Threads = 2
	cases = append(cases, struct {
		name    string
		g       *graph.Graph
		x       *tensor.Tensor
		labels  []int64
		opts    Options
		steps   int
		classes int
	}{name: "DenseNet-BC 3 blocks", g: builtNet(t, bcConfig()), x: x, labels: labels, opts: opts, steps: 3})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr [2]*Trainer
			for i, memEff := range []bool{false, true} {
				o := tc.opts
				o.MemoryEfficient = memEff
				var err error
				if tr[i], err = New(tc.g, o); err != nil {
					t.Fatal(err)
				}
			}
			worst := 0.0
			var act [2]int64
			for step := 0; step < tc.steps; step++ {
				var st [2]StepStats
				for i := range tr {
					var err error
					if st[i], err = tr[i].Step(context.Background(), tc.x, tc.labels); err != nil {
						t.Fatal(err)
					}
					act[i] = st[i].ActivationBytes
				}
				if !closeRel(st[1].Loss, st[0].Loss) {
					t.Errorf("step %d: loss %.9f memory-efficient, %.9f standard", step, st[1].Loss, st[0].Loss)
				}
				for j, p := range tr[0].params {
					q := tr[1].params[j]
					for k := range p.grad {
						d := math.Abs(float64(p.grad[k]) - float64(q.grad[k]))
						worst = max(worst, d)
						if !closeRel(float64(q.grad[k]), float64(p.grad[k])) {
							t.Fatalf("step %d: gradient of %q element %d: %g memory-efficient, %g standard", step, p.name, k, q.grad[k], p.grad[k])
						}
					}
				}
			}
			g0, g1 := tr[0].Graph(), tr[1].Graph()
			for _, v := range g0.Initializers {
				a, b := tensor.Data[float32](v.Const), tensor.Data[float32](g1.Value(v.Name).Const)
				for k := range a {
					if !closeRel(float64(b[k]), float64(a[k])) {
						t.Fatalf("%q after %d steps: element %d is %g memory-efficient, %g standard", v.Name, tc.steps, k, b[k], a[k])
					}
				}
			}
			t.Logf("max gradient difference %.3g; activations %d bytes standard, %d memory-efficient", worst, act[0], act[1])
			if act[1] >= act[0] {
				t.Errorf("the memory-efficient mode keeps %d bytes, the standard one %d", act[1], act[0])
			}
		})
	}
}

// planBytes returns the peak activation bytes of one training step of the model at batch n,
// from the plan alone (nothing runs).
func planBytes(t *testing.T, g *graph.Graph, memEff bool, n int) int64 {
	t.Helper()
	opts := DefaultOptions()
	opts.MemoryEfficient = memEff
	opts.Threads = 2
	tr, err := New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	shape := tensor.Shape{n, 3, 32, 32}
	p, err := tr.planFor(shape, 2)
	if err != nil {
		t.Fatal(err)
	}
	return p.actBytes
}

// TestActivationMemoryGrowsLinearly checks the point of the memory-efficient mode on the CIFAR
// DenseNet-BC: from depth 100 to 190 (48 to 93 dense layers) the activations kept for the
// backward pass at most double, while the standard mode's grow quadratically.
func TestActivationMemoryGrowsLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("plans two large models")
	}
	const batch = 64
	var bytes [2][2]int64 // [model][memEff]
	for i, name := range []string{"densenet_bc100_k12_cifar_train", "densenet_bc190_k12_cifar_train"} {
		g, err := graph.Load(filepath.Join(testenv.Shared(t, "models/"+name), "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		for j, memEff := range []bool{false, true} {
			bytes[i][j] = planBytes(t, g, memEff, batch)
		}
		t.Logf("%s, batch %d: %.1f MiB standard, %.1f MiB memory-efficient", name, batch,
			float64(bytes[i][0])/(1<<20), float64(bytes[i][1])/(1<<20))
	}
	ratioME := float64(bytes[1][1]) / float64(bytes[0][1])
	ratioStd := float64(bytes[1][0]) / float64(bytes[0][0])
	t.Logf("L=100 -> L=190: memory-efficient x%.2f, standard x%.2f", ratioME, ratioStd)
	if ratioME > 2.0 {
		t.Errorf("memory-efficient activations grow x%.2f from L=100 to L=190, want at most x2.0", ratioME)
	}
	if ratioStd <= ratioME {
		t.Errorf("standard mode grows x%.2f, not faster than the memory-efficient x%.2f", ratioStd, ratioME)
	}
}

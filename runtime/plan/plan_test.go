package plan

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/device/cpudev"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestDenseNetConcatsAreFree checks on real DenseNet exports that every channel concatenation is
// resolved at compile time (inputs written in place), that liveness sharing keeps the arena far
// below one-buffer-per-value, and that the planned run matches a plain reference run.
func TestDenseNetConcatsAreFree(t *testing.T) {
	dev := cpudev.New(cpudev.Config{Threads: 2})
	defer dev.Close()
	for _, name := range []string{"densenet_tiny", "densenet_bc100_k12_cifar"} {
		t.Run(name, func(t *testing.T) {
			dir := testenv.Shared(t, filepath.Join("models", name))
			g, err := graph.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			in := g.Inputs[0].Type
			for _, batch := range []int{1, 3} {
				shape := tensor.Shape{batch, int(in.Shape[1].Value), int(in.Shape[2].Value), int(in.Shape[3].Value)}
				p, err := Compile(g, []tensor.Shape{shape}, dev, membudget.Budget{})
				if err != nil {
					t.Fatal(err)
				}
				copies := 0
				for _, s := range p.steps {
					if s.describe().kernel == KernelConcatCopy {
						copies++
					}
				}
				if copies != 0 {
					t.Errorf("batch %d: %d concatenations copy data, want 0", batch, copies)
				}
				st := p.Stats()
				if st.ArenaBytes*4 > st.UnplannedBytes {
					t.Errorf("batch %d: arena %d bytes is more than a quarter of the %d unplanned", batch, st.ArenaBytes, st.UnplannedBytes)
				}
				t.Logf("batch %d: arena %.2f MiB vs %.2f MiB unplanned, %d buffers, %d steps", batch,
					float64(st.ArenaBytes)/(1<<20), float64(st.UnplannedBytes)/(1<<20), st.Buffers, st.Steps)
			}
		})
	}
}

// TestRunRejectsWrongShapes: a plan only runs the shapes it was compiled for.
func TestRunRejectsWrongShapes(t *testing.T) {
	dir := testenv.Shared(t, "models/densenet_tiny")
	g, err := graph.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dev := cpudev.New(cpudev.Config{Threads: 1})
	defer dev.Close()
	p, err := Compile(g, []tensor.Shape{{1, 3, 16, 16}}, dev, membudget.Budget{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background(), []*tensor.Tensor{tensor.New(tensor.Float32, tensor.Shape{2, 3, 16, 16})}); err == nil {
		t.Error("plan for batch 1 ran a batch-2 input")
	}
}

package exec

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestSteadyStateRunDoesNotAllocate: once a DenseNet is planned, running it into preallocated
// outputs allocates nothing: every step is a fast kernel working in the arena.
func TestSteadyStateRunDoesNotAllocate(t *testing.T) {
	for _, name := range []string{"densenet_tiny", "densenet_bc100_k12_cifar"} {
		t.Run(name, func(t *testing.T) {
			dir := testenv.Shared(t, filepath.Join("models", name))
			g, err := graph.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(g, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in := g.Inputs[0].Type
			shape := tensor.Shape{2, int(in.Shape[1].Value), int(in.Shape[2].Value), int(in.Shape[3].Value)}
			p, err := s.Plan([]tensor.Shape{shape})
			if err != nil {
				t.Fatal(err)
			}
			if st := p.Stats(); st.FastSteps != st.Steps {
				t.Errorf("%d of %d steps use fast kernels, want all", st.FastSteps, st.Steps)
			}
			x := []*tensor.Tensor{tensor.New(tensor.Float32, shape)}
			outs := []*tensor.Tensor{tensor.New(tensor.Float32, tensor.Shape{2, int(g.Outputs[0].Type.Shape[1].Value)})}
			ctx := context.Background()
			if err := p.RunInto(ctx, x, outs); err != nil {
				t.Fatal(err)
			}
			if a := testing.AllocsPerRun(5, func() {
				if err := p.RunInto(ctx, x, outs); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("a steady-state run allocates %.1f times", a)
			}
		})
	}
}

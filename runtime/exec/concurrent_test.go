package exec

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestConcurrentRuns runs one Session from many goroutines at once, with two batch sizes (two
// plans), and checks every result equals the sequential one. Run it under -race (.ci/run does).
func TestConcurrentRuns(t *testing.T) {
	dir := testenv.Shared(t, "models/densenet_tiny")
	g, err := graph.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(g, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var inputs, want []*tensor.Tensor
	for i := 0; i < 4; i++ {
		batch := 1 + i%2
		x := make([]float32, batch*3*16*16)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		in := tensor.FromSlice(tensor.Shape{batch, 3, 16, 16}, x)
		out, err := s.Run(context.Background(), []*tensor.Tensor{in})
		if err != nil {
			t.Fatal(err)
		}
		inputs, want = append(inputs, in), append(want, out[0])
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < 10; r++ {
				i := (w + r) % len(inputs)
				out, err := s.Run(context.Background(), []*tensor.Tensor{inputs[i]})
				if err != nil {
					t.Error(err)
					return
				}
				if err := tensor.AllClose(out[0], want[i], 0, 0); err != nil {
					t.Errorf("goroutine %d run %d: %v", w, r, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}

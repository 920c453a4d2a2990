package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx"
	"github.com/dnx-ml/dnx/internal/testenv"
)

// TestBatchInvariance runs images alone, then inside batches of 2, 3, 4, 5 and 8 stacked and
// padded as the batcher does (stack, paddedRows, split), on one thread and on two, and asserts
// that every image's logits are bit-identical to its run alone: dynamic batching must not change
// a request's result. densenet_tiny always; DenseNet-121 unless -short.
func TestBatchInvariance(t *testing.T) {
	models := []struct {
		rel  string
		dims []int
	}{{"models/densenet_tiny/model.onnx", []int{3, 16, 16}}}
	if !testing.Short() {
		models = append(models, struct {
			rel  string
			dims []int
		}{"models/densenet121/model.onnx", []int{3, 224, 224}})
	}
	for _, tc := range models {
		path := testenv.Shared(t, tc.rel)
		m, err := dnx.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		per := 1
		for _, d := range tc.dims {
			per *= d
		}
		const items = 8
		r := rand.New(rand.NewPCG(1, 2))
		reqs := make([]*pending, items)
		for i := range reqs {
			data := make([]float32, per)
			for j := range data {
				data[j] = float32(r.NormFloat64())
			}
			x, err := dnx.NewTensor(append([]int{1}, tc.dims...), data)
			if err != nil {
				t.Fatal(err)
			}
			reqs[i] = &pending{inputs: map[string]*dnx.Tensor{"input": x}, rows: 1}
		}
		for _, threads := range []int{1, 2} {
			s, err := dnx.NewSession(m, dnx.Options{Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			logits := func(out map[string]*dnx.Tensor) []float32 {
				f, err := out["logits"].Float32s()
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			alone := make([][]float32, items)
			for i, p := range reqs {
				out, err := s.Run(context.Background(), p.inputs)
				if err != nil {
					t.Fatal(err)
				}
				alone[i] = logits(out)
			}
			for _, size := range []int{2, 3, 4, 5, 8} {
				batch := reqs[:size]
				total := paddedRows(size, 8)
				in, err := stack(batch, size, total)
				if err != nil {
					t.Fatal(err)
				}
				out, err := s.Run(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				parts, err := split(out, batch, total)
				if err != nil {
					t.Fatal(err)
				}
				for i := range batch {
					name := fmt.Sprintf("%s, %d threads, image %d of a batch of %d (run at %d)", tc.rel, threads, i, size, total)
					if d := maxAbsDiff(logits(parts[i]), alone[i]); d != 0 {
						t.Errorf("%s: max abs diff %g against its run alone, want 0", name, d)
					}
				}
			}
			s.Close()
		}
	}
}

package exec

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestLanesRule(t *testing.T) {
	g := sharedGraph(t, "models/densenet_tiny")
	cases := []struct {
		threads int
		whole   bool
		n       int
		rows    []int
		why     string
	}{
		{2, false, 1, nil, ""},
		{2, false, 2, []int{1, 1}, ""},
		{2, false, 3, nil, ""}, // 2+1: each image on both threads is as fast
		{2, false, 4, []int{2, 2}, ""},
		{2, false, 7, []int{4, 3}, ""},
		{3, false, 8, nil, ""},
		{3, false, 9, []int{3, 3, 3}, ""},
		{3, false, 10, []int{4, 3, 3}, ""},
		{1, false, 8, nil, "one thread"},
		{2, true, 8, nil, "WholeBatches"},
	}
	for _, tc := range cases {
		s, err := New(g, Options{Threads: tc.threads, WholeBatches: tc.whole})
		if err != nil {
			t.Fatal(err)
		}
		rows, why := s.Lanes(tc.n)
		s.Close()
		if !slices.Equal(rows, tc.rows) || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("threads %d, whole %v, batch %d: Lanes = %v, %q; want %v, %q", tc.threads, tc.whole, tc.n, rows, why, tc.rows, tc.why)
		}
	}
}

// TestLanesBitIdentical runs batches of 2 to 9 images in lanes on 2 and 3 threads and checks
// that every image's outputs are bit for bit those of the same batch run whole and of the image
// run alone: lanes change no result. densenet_tiny always; DenseNet-121 unless -short.
func TestLanesBitIdentical(t *testing.T) {
	models := []struct {
		dir string
		hw  int
	}{{"models/densenet_tiny", 16}}
	if !testing.Short() {
		models = append(models, struct {
			dir string
			hw  int
		}{"models/densenet121", 224})
	}
	for _, m := range models {
		g := sharedGraph(t, m.dir)
		per := 3 * m.hw * m.hw
		rng := rand.New(rand.NewPCG(5, 6))
		x := make([]float32, 9*per)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for _, threads := range []int{2, 3} {
			lanes, err := New(g, Options{Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			whole, err := New(g, Options{Threads: threads, WholeBatches: true})
			if err != nil {
				t.Fatal(err)
			}
			alone := make([]*tensor.Tensor, 9)
			for i := range alone {
				out, err := whole.Run(context.Background(), []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 3, m.hw, m.hw}, x[i*per:(i+1)*per])})
				if err != nil {
					t.Fatal(err)
				}
				alone[i] = out[0]
			}
			sizes := []int{2, 4, 6, 7, 9}
			if threads == 3 {
				sizes = []int{3, 6, 9}
			}
			for _, n := range sizes {
				if rows, _ := lanes.Lanes(n); rows == nil {
					t.Fatalf("%s, %d threads: a batch of %d runs whole", m.dir, threads, n)
				}
				in := []*tensor.Tensor{tensor.FromSlice(tensor.Shape{n, 3, m.hw, m.hw}, x[:n*per])}
				got, err := lanes.Run(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				want, err := whole.Run(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				if err := tensor.AllClose(got[0], want[0], 0, 0); err != nil {
					t.Errorf("%s, %d threads, batch %d: lanes against whole: %v", m.dir, threads, n, err)
				}
				classes := got[0].Shape[1]
				for i := range n {
					row := tensor.FromSlice(tensor.Shape{1, classes}, tensor.Data[float32](got[0])[i*classes:(i+1)*classes])
					if err := tensor.AllClose(row, alone[i], 0, 0); err != nil {
						t.Errorf("%s, %d threads, batch %d, image %d: lanes against alone: %v", m.dir, threads, n, i, err)
					}
				}
			}
			lanes.Close()
			whole.Close()
		}
	}
}

// TestLanesStepTimesAndCancel checks that a batch in lanes records each step's time once per
// run (the lanes' sum: no lost or doubled run under -race) and stops on a cancelled context.
func TestLanesStepTimesAndCancel(t *testing.T) {
	g := sharedGraph(t, "models/densenet_tiny")
	s, err := New(g, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := []*tensor.Tensor{tensor.New(tensor.Float32, tensor.Shape{4, 3, 16, 16})}
	var times plan.StepTimes
	ctx := plan.WithStepTimes(context.Background(), &times)
	for range 3 {
		if _, err := s.Run(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	p, rows, err := s.PlanFor([]tensor.Shape{in[0].Shape})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, []int{2, 2}) || p.Stats().Steps != len(times.Total) || times.Runs != 3 {
		t.Fatalf("lanes %v, %d steps timed over %d runs; want lanes [2 2], %d steps over 3 runs", rows, len(times.Total), times.Runs, p.Stats().Steps)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(cancelled, in); !errors.Is(err, context.Canceled) {
		t.Fatalf("run with a cancelled context: %v, want context.Canceled", err)
	}
}

func sharedGraph(t *testing.T, dir string) *graph.Graph {
	t.Helper()
	g, err := graph.Load(filepath.Join(testenv.Shared(t, dir), "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

package passes

import (
	"errors"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
)

// fakePass is a Pass whose Run is a closure.
type fakePass struct {
	name string
	run  func(g *graph.Graph) (bool, error)
}

func (p fakePass) Name() string                     { return p.name }
func (p fakePass) Run(g *graph.Graph) (bool, error) { return p.run(g) }

func tinyGraph(t *testing.T) *graph.Graph {
	return newModel(t, 13).input("x", "batch", 3).output("y").
		node("Relu", []string{"x"}, []string{"a"}).
		node("Identity", []string{"a"}, []string{"b"}).
		node("Sigmoid", []string{"b"}, []string{"y"}).build()
}

func TestPipeline(t *testing.T) {
	t.Run("stops at the fixed point", func(t *testing.T) {
		calls := 0
		counter := fakePass{"Counter", func(*graph.Graph) (bool, error) { calls++; return false, nil }}
		p := &Pipeline{Label: "test", Passes: []Pass{EliminateIdentity{}, counter}}
		changed, err := p.Run(tinyGraph(t))
		if err != nil || !changed {
			t.Fatalf("Run = %v, %v; want true, nil", changed, err)
		}
		if calls != 2 {
			t.Errorf("passes ran for %d rounds, want 2 (one change, one quiet)", calls)
		}
	})
	t.Run("no change", func(t *testing.T) {
		g := tinyGraph(t)
		if _, err := (EliminateIdentity{}).Run(g); err != nil {
			t.Fatal(err)
		}
		changed, err := Inference().Run(g)
		if err != nil || changed {
			t.Errorf("Run on an optimized graph = %v, %v; want false, nil", changed, err)
		}
	})
	t.Run("cap", func(t *testing.T) {
		always := fakePass{"Always", func(*graph.Graph) (bool, error) { return true, nil }}
		_, err := (&Pipeline{Label: "test", Passes: []Pass{always}, MaxRounds: 3}).Run(tinyGraph(t))
		if !errors.Is(err, ErrNoFixedPoint) {
			t.Errorf("err = %v, want ErrNoFixedPoint", err)
		}
	})
	t.Run("errors name the pass", func(t *testing.T) {
		boom := errors.New("boom")
		failing := fakePass{"Failing", func(*graph.Graph) (bool, error) { return false, boom }}
		_, err := (&Pipeline{Label: "test", Passes: []Pass{failing}}).Run(tinyGraph(t))
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "Failing") {
			t.Errorf("err = %v, want boom naming the pass", err)
		}
	})
	t.Run("a corrupting pass is caught", func(t *testing.T) {
		corrupt := fakePass{"Corrupt", func(g *graph.Graph) (bool, error) {
			g.Nodes[0], g.Nodes[1] = g.Nodes[1], g.Nodes[0] // breaks the topological order
			return true, nil
		}}
		_, err := (&Pipeline{Label: "test", Passes: []Pass{corrupt}}).Run(tinyGraph(t))
		if !errors.Is(err, graph.ErrInvalidGraph) || !strings.Contains(err.Error(), "Corrupt") {
			t.Errorf("err = %v, want ErrInvalidGraph naming the pass", err)
		}
	})
}

func TestTrainingKeepsBNAndDropout(t *testing.T) {
	g := bnReluConv(t, true, func(b *modelBuilder) *modelBuilder {
		return b.node("Dropout", []string{"y"}, []string{"d"}).
			node("Identity", []string{"d"}, []string{"z"}).output("z")
	})
	checkPass(t, g, Training(), true, map[string]int{"Concat": 1, "BatchNormalization": 1, "Relu": 1, "Conv": 1, "Dropout": 1})
}

package passes

import (
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

func TestFuseSiLU(t *testing.T) {
	base := func(t *testing.T) *modelBuilder {
		return newModel(t, 13).input("x", "batch", 3, 4, 4).
			node("Relu", []string{"x"}, []string{"r"}).
			node("Sigmoid", []string{"r"}, []string{"s"})
	}
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
	}{
		{"Mul(x, sigmoid(x)) as graph output", func(t *testing.T) *graph.Graph {
			return base(t).node("Mul", []string{"r", "s"}, []string{"y"}).output("y").build()
		}, true, map[string]int{"Relu": 1, "SiLU": 1}},
		{"Mul(sigmoid(x), x), then read on", func(t *testing.T) *graph.Graph {
			return base(t).node("Mul", []string{"s", "r"}, []string{"m"}).
				node("Add", []string{"m", "r"}, []string{"y"}).output("y").build()
		}, true, map[string]int{"Relu": 1, "SiLU": 1, "Add": 1}},
		{"NOT: Sigmoid read by two nodes", func(t *testing.T) *graph.Graph {
			return base(t).node("Mul", []string{"r", "s"}, []string{"m"}).
				node("Add", []string{"m", "s"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Relu": 1, "Sigmoid": 1, "Mul": 1, "Add": 1}},
		{"NOT: Sigmoid output is a graph output", func(t *testing.T) *graph.Graph {
			return base(t).node("Mul", []string{"r", "s"}, []string{"y"}).output("y", "s").build()
		}, false, map[string]int{"Relu": 1, "Sigmoid": 1, "Mul": 1}},
		{"NOT: Mul by another value", func(t *testing.T) *graph.Graph {
			return base(t).node("Mul", []string{"x", "s"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Relu": 1, "Sigmoid": 1, "Mul": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := c.build(t)
			var sigName string
			for _, n := range g.Nodes {
				if n.OpType == "Sigmoid" {
					sigName = n.Name
				}
			}
			g = checkPass(t, g, FuseSiLU{}, c.changed, c.ops)
			if !c.changed {
				return
			}
			var silu *graph.Node
			for _, n := range g.Nodes {
				if n.OpType == "SiLU" {
					silu = n
				}
			}
			if _, ok := silu.Op.(*ops.SiLU); !ok || silu.Domain != ops.DomainDNX {
				t.Fatalf("SiLU node %s: op %T domain %q", silu, silu.Op, silu.Domain)
			}
			if silu.Name != sigName {
				t.Errorf("SiLU node is named %q, want the Sigmoid's %q", silu.Name, sigName)
			}
			if want := map[bool]string{true: "y", false: "m"}[len(c.ops) == 2]; silu.Outputs[0].Name != want {
				t.Errorf("SiLU output is %q, want the Mul's %q", silu.Outputs[0].Name, want)
			}
			if _, err := graph.Export(g); err == nil {
				t.Error("graph.Export accepted a graph with a dnx-domain SiLU")
			}
		})
	}
}

// TestPortableKeepsSigmoidMul: the portable pipeline leaves Sigmoid -> Mul alone (SiLU is dnx's).
func TestPortableKeepsSigmoidMul(t *testing.T) {
	g := newModel(t, 13).input("x", "batch", 3, 4, 4).
		node("Sigmoid", []string{"x"}, []string{"s"}).
		node("Mul", []string{"x", "s"}, []string{"y"}).output("y").build()
	if _, err := Portable().Run(g); err != nil {
		t.Fatal(err)
	}
	if h := g.OpHistogram(); h["Sigmoid"] != 1 || h["Mul"] != 1 || h["SiLU"] != 0 {
		t.Errorf("ops after Portable = %v", h)
	}
	if _, err := Inference().Run(g); err != nil {
		t.Fatal(err)
	}
	if h := g.OpHistogram(); h["SiLU"] != 1 || len(h) != 1 {
		t.Errorf("ops after Inference = %v, want one SiLU", h)
	}
}

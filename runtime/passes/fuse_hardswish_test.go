package passes

import (
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

func TestFuseHardSwish(t *testing.T) {
	sixth := aFloat("alpha", float32(1.0/6))
	base := func(t *testing.T) *modelBuilder {
		return newModel(t, 13).input("x", "batch", 3, 4, 4).
			node("Relu", []string{"x"}, []string{"r"})
	}
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
	}{
		{"Mul(x, hardsigmoid(x))", func(t *testing.T) *graph.Graph {
			return base(t).node("HardSigmoid", []string{"r"}, []string{"h"}, sixth).
				node("Mul", []string{"r", "h"}, []string{"y"}).output("y").build()
		}, true, map[string]int{"Relu": 1, "HardSwish": 1}},
		{"Mul(hardsigmoid(x), x), then read on", func(t *testing.T) *graph.Graph {
			return base(t).node("HardSigmoid", []string{"r"}, []string{"h"}, sixth).
				node("Mul", []string{"h", "r"}, []string{"m"}).
				node("Add", []string{"m", "r"}, []string{"y"}).output("y").build()
		}, true, map[string]int{"Relu": 1, "HardSwish": 1, "Add": 1}},
		{"NOT: default alpha 0.2", func(t *testing.T) *graph.Graph {
			return base(t).node("HardSigmoid", []string{"r"}, []string{"h"}).
				node("Mul", []string{"r", "h"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Relu": 1, "HardSigmoid": 1, "Mul": 1}},
		{"NOT: squeeze-excitation gate (Mul by another value)", func(t *testing.T) *graph.Graph {
			return base(t).node("HardSigmoid", []string{"r"}, []string{"h"}, sixth).
				node("Mul", []string{"x", "h"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Relu": 1, "HardSigmoid": 1, "Mul": 1}},
		{"NOT: gate read twice", func(t *testing.T) *graph.Graph {
			return base(t).node("HardSigmoid", []string{"r"}, []string{"h"}, sixth).
				node("Mul", []string{"r", "h"}, []string{"m"}).
				node("Add", []string{"m", "h"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Relu": 1, "HardSigmoid": 1, "Mul": 1, "Add": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := c.build(t)
			var hsName string
			for _, n := range g.Nodes {
				if n.OpType == "HardSigmoid" {
					hsName = n.Name
				}
			}
			g = checkPass(t, g, FuseHardSwish{}, c.changed, c.ops)
			if !c.changed {
				return
			}
			for _, n := range g.Nodes {
				if n.OpType != "HardSwish" {
					continue
				}
				if _, ok := n.Op.(*ops.HardSwish); !ok || n.Domain != "" || n.Name != hsName {
					t.Errorf("HardSwish node %s: op %T domain %q, want ONNX's HardSwish named %q", n, n.Op, n.Domain, hsName)
				}
			}
		})
	}
}

package passes

import (
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// fusedOf returns the FusedConv op of the node producing name, failing the test otherwise.
func fusedOf(t *testing.T, g *graph.Graph, name string) *ops.FusedConv {
	t.Helper()
	v := g.Value(name)
	if v == nil || v.Producer == nil {
		t.Fatalf("no node produces %q", name)
	}
	f, ok := v.Producer.Op.(*ops.FusedConv)
	if !ok || v.Producer.Domain != ops.DomainDNX || v.Producer.OpType != "FusedConv" {
		t.Fatalf("%q is produced by %s (%T), want a FusedConv in domain dnx", name, v.Producer, v.Producer.Op)
	}
	return f
}

func TestFuseConvActivation(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 21))
	w := randTensor(rng, -1, 1, 4, 3, 3, 3)
	base := func(t *testing.T) *modelBuilder {
		return newModel(t, 13).input("x", "batch", 3, 6, 6).init("w", w).init("b", randTensor(rng, -1, 1, 4)).
			node("Conv", []string{"x", "w", "b"}, []string{"c"}, aInts("pads", 1, 1, 1, 1))
	}
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
	}{
		{"Conv -> Relu as graph output", func(t *testing.T) *graph.Graph {
			return base(t).node("Relu", []string{"c"}, []string{"y"}).output("y").build()
		}, true, map[string]int{"FusedConv": 1}},
		{"Conv -> Relu -> Relu fuses once", func(t *testing.T) *graph.Graph {
			return base(t).node("Relu", []string{"c"}, []string{"r"}).
				node("Relu", []string{"r"}, []string{"y"}).output("y").build()
		}, true, map[string]int{"FusedConv": 1, "Relu": 1}},
		{"NOT: Conv output read twice", func(t *testing.T) *graph.Graph {
			return base(t).node("Relu", []string{"c"}, []string{"r"}).
				node("Add", []string{"r", "c"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Conv": 1, "Relu": 1, "Add": 1}},
		{"NOT: Conv output is a graph output", func(t *testing.T) *graph.Graph {
			return base(t).node("Relu", []string{"c"}, []string{"y"}).output("y", "c").build()
		}, false, map[string]int{"Conv": 1, "Relu": 1}},
		{"NOT: Sigmoid is not fused", func(t *testing.T) *graph.Graph {
			return base(t).node("Sigmoid", []string{"c"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Conv": 1, "Sigmoid": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := checkPass(t, c.build(t), FuseConvActivation{}, c.changed, c.ops)
			if c.changed {
				f := fusedOf(t, g, g.Nodes[0].Outputs[0].Name)
				if !f.PostRelu || f.HasPrologue() || !f.Conv.HasBias {
					t.Errorf("fused op = %+v, want PostRelu with the Conv's bias and no prologue", f)
				}
				if g.Nodes[0].Name != "Conv_1" {
					t.Errorf("fused node is named %q, want the Conv's name", g.Nodes[0].Name)
				}
			}
		})
	}
}

// bnReluConv builds the DenseNet pattern Concat(x1, x2) -> BN -> Relu -> Conv(3x3, pad 1) -> y;
// tail adds nodes and outputs.
func bnReluConv(t *testing.T, relu bool, tail func(b *modelBuilder) *modelBuilder) *graph.Graph {
	rng := rand.New(rand.NewPCG(30, 31))
	b := newModel(t, 13).input("x1", "batch", 2, 5, 5).input("x2", "batch", 3, 5, 5).
		init("w", randTensor(rng, -1, 1, 4, 5, 3, 3)).init("w2", randTensor(rng, -1, 1, 2, 5, 1, 1))
	bn := b.bnParams(rng, "bn", 5)
	b.node("Concat", []string{"x1", "x2"}, []string{"cat"}, aInt("axis", 1)).
		node("BatchNormalization", append([]string{"cat"}, bn...), []string{"n"})
	act := "n"
	if relu {
		b.node("Relu", []string{"n"}, []string{"r"})
		act = "r"
	}
	b.node("Conv", []string{act, "w"}, []string{"y"}, aInts("pads", 1, 1, 1, 1))
	if tail == nil {
		return b.output("y").build()
	}
	return tail(b).build()
}

func TestFuseBNReluConv(t *testing.T) {
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
		preRelu bool
	}{
		{"Concat -> BN -> Relu -> Conv", func(t *testing.T) *graph.Graph { return bnReluConv(t, true, nil) },
			true, map[string]int{"Concat": 1, "FusedConv": 1}, true},
		{"BN -> Conv without Relu", func(t *testing.T) *graph.Graph { return bnReluConv(t, false, nil) },
			true, map[string]int{"Concat": 1, "FusedConv": 1}, false},
		{"Relu read by two Convs", func(t *testing.T) *graph.Graph {
			return bnReluConv(t, true, func(b *modelBuilder) *modelBuilder {
				return b.node("Conv", []string{"r", "w2"}, []string{"z"}).output("y", "z")
			})
		}, true, map[string]int{"Concat": 1, "FusedConv": 2}, true},
		{"into a FusedConv with PostRelu", func(t *testing.T) *graph.Graph {
			g := bnReluConv(t, true, func(b *modelBuilder) *modelBuilder {
				return b.node("Relu", []string{"y"}, []string{"z"}).output("z")
			})
			if _, err := (FuseConvActivation{}).Run(g); err != nil {
				t.Fatal(err)
			}
			return g
		}, true, map[string]int{"Concat": 1, "FusedConv": 1}, true},
		{"NOT: Relu also read by a pool", func(t *testing.T) *graph.Graph {
			return bnReluConv(t, true, func(b *modelBuilder) *modelBuilder {
				return b.node("GlobalAveragePool", []string{"r"}, []string{"z"}).output("y", "z")
			})
		}, false, map[string]int{"Concat": 1, "BatchNormalization": 1, "Relu": 1, "Conv": 1, "GlobalAveragePool": 1}, false},
		{"NOT: BN output is a graph output", func(t *testing.T) *graph.Graph {
			return bnReluConv(t, true, func(b *modelBuilder) *modelBuilder { return b.output("y", "n") })
		}, false, map[string]int{"Concat": 1, "BatchNormalization": 1, "Relu": 1, "Conv": 1}, false},
		{"NOT: Relu output is a graph output", func(t *testing.T) *graph.Graph {
			return bnReluConv(t, true, func(b *modelBuilder) *modelBuilder { return b.output("y", "r") })
		}, false, map[string]int{"Concat": 1, "BatchNormalization": 1, "Relu": 1, "Conv": 1}, false},
		{"NOT: BN read by the Relu and by another node", func(t *testing.T) *graph.Graph {
			return bnReluConv(t, true, func(b *modelBuilder) *modelBuilder {
				return b.node("Sigmoid", []string{"n"}, []string{"z"}).output("y", "z")
			})
		}, false, map[string]int{"Concat": 1, "BatchNormalization": 1, "Relu": 1, "Conv": 1, "Sigmoid": 1}, false},
		{"NOT: Conv reads the activation as its weights too", func(t *testing.T) *graph.Graph {
			rng := rand.New(rand.NewPCG(32, 33))
			b := newModel(t, 13).input("x", "batch", 1, 3, 3)
			bn := b.bnParams(rng, "bn", 1)
			return b.node("BatchNormalization", append([]string{"x"}, bn...), []string{"n"}).
				node("Relu", []string{"n"}, []string{"r"}).
				node("Conv", []string{"r", "r"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"BatchNormalization": 1, "Relu": 1, "Conv": 1}, false},
		{"NOT: Conv weights fed at run time", func(t *testing.T) *graph.Graph {
			rng := rand.New(rand.NewPCG(34, 35))
			b := newModel(t, 13).input("x", "batch", 3, 5, 5).input("w", 2, 3, 1, 1)
			bn := b.bnParams(rng, "bn", 3)
			return b.node("BatchNormalization", append([]string{"x"}, bn...), []string{"n"}).
				node("Relu", []string{"n"}, []string{"r"}).
				node("Conv", []string{"r", "w"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"BatchNormalization": 1, "Relu": 1, "Conv": 1}, false},
		{"NOT: 3-D BatchNormalization", func(t *testing.T) *graph.Graph {
			rng := rand.New(rand.NewPCG(36, 37))
			b := newModel(t, 13).input("x", "batch", 3, 7).init("w", randTensor(rng, -1, 1, 2, 3, 3))
			bn := b.bnParams(rng, "bn", 3)
			return b.node("BatchNormalization", append([]string{"x"}, bn...), []string{"n"}).
				node("Relu", []string{"n"}, []string{"r"}).
				node("Conv", []string{"r", "w"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"BatchNormalization": 1, "Relu": 1, "Conv": 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := checkPass(t, c.build(t), FuseBNReluConv{}, c.changed, c.ops)
			if !c.changed {
				return
			}
			for _, n := range g.Nodes {
				f, ok := n.Op.(*ops.FusedConv)
				if !ok {
					continue
				}
				if f.PreRelu != c.preRelu || len(f.PreScale) != 5 || len(f.PreShift) != 5 {
					t.Errorf("%s: PreRelu %v, %d scales, %d shifts; want PreRelu %v and 5 of each", n, f.PreRelu, len(f.PreScale), len(f.PreShift), c.preRelu)
				}
				if n.Inputs[0].Name != "cat" {
					t.Errorf("%s reads %q, want the BN's input cat", n, n.Inputs[0].Name)
				}
				if a := n.Attrs["pre_relu"]; a.Kind != ops.AttrInt || (a.Int == 1) != f.PreRelu {
					t.Errorf("%s: pre_relu attribute %+v does not match the op", n, a)
				}
			}
		})
	}
}

// TestFusedConvAttrsDecode checks that a fused node's attributes decode back to the same op, so
// its Attrs describe it completely.
func TestFusedConvAttrsDecode(t *testing.T) {
	g := bnReluConv(t, true, func(b *modelBuilder) *modelBuilder {
		return b.node("Relu", []string{"y"}, []string{"z"}).output("z")
	})
	if _, err := Inference().Run(g); err != nil {
		t.Fatal(err)
	}
	for _, n := range g.Nodes {
		want, ok := n.Op.(*ops.FusedConv)
		if !ok {
			continue
		}
		present := make([]bool, len(n.Inputs))
		for i, v := range n.Inputs {
			present[i] = v != nil
		}
		got, err := ops.Default().Decode(&ops.Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Opset: n.Opset,
			Attrs: n.Attrs, Inputs: present, NumOutputs: len(n.Outputs)})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		f := got.(*ops.FusedConv)
		if f.PreRelu != want.PreRelu || f.PostRelu != want.PostRelu || !tensorEq(f.PreScale, want.PreScale) ||
			!tensorEq(f.PreShift, want.PreShift) || f.Conv.HasBias != want.Conv.HasBias {
			t.Errorf("%s: decoded %+v, want %+v", n, f, want)
		}
	}
}

func tensorEq(a, b []float32) bool {
	return tensor.AllClose(tensor.FromSlice(tensor.Shape{len(a)}, a), tensor.FromSlice(tensor.Shape{len(b)}, b), 0, 0) == nil
}

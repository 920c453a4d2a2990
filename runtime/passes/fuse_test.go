package passes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/onnx/onnxpb"

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
		{"NOT: Relu after a Conv that already has an activation", func(t *testing.T) *graph.Graph {
			g := base(t).node("Sigmoid", []string{"c"}, []string{"s"}).node("Relu", []string{"s"}, []string{"y"}).output("y").build()
			if _, err := (FuseConvActivation{}).Run(g); err != nil {
				t.Fatal(err)
			}
			return g
		}, false, map[string]int{"FusedConv": 1, "Relu": 1}},
		{"NOT: Clip with a bound computed at run time", func(t *testing.T) *graph.Graph {
			return base(t).input("hi", 1).node("Clip", []string{"c", "", "hi"}, []string{"y"}).output("y").build()
		}, false, map[string]int{"Conv": 1, "Clip": 1}},
	}
	for _, a := range []struct {
		op    string
		in    []string
		attrs []*onnxpb.AttributeProto
		opset int64
		want  ops.Activation
	}{
		{"Relu", nil, nil, 13, ops.Activation{Kind: ops.ActRelu}},
		{"Clip", []string{"lo", "hi"}, nil, 13, ops.Activation{Kind: ops.ActClip, Alpha: 0, Beta: 6}},
		{"Clip", []string{"", "hi"}, nil, 13, ops.Activation{Kind: ops.ActClip, Alpha: float32(math.Inf(-1)), Beta: 6}},
		{"Clip", nil, []*onnxpb.AttributeProto{aFloat("min", -1), aFloat("max", 1)}, 6, ops.Activation{Kind: ops.ActClip, Alpha: -1, Beta: 1}},
		{"LeakyRelu", nil, []*onnxpb.AttributeProto{aFloat("alpha", 0.1)}, 13, ops.Activation{Kind: ops.ActLeakyRelu, Alpha: 0.1}},
		{"HardSigmoid", nil, []*onnxpb.AttributeProto{aFloat("alpha", 0.25), aFloat("beta", 0.4)}, 13, ops.Activation{Kind: ops.ActHardSigmoid, Alpha: 0.25, Beta: 0.4}},
		{"HardSwish", nil, nil, 14, ops.Activation{Kind: ops.ActHardSwish}},
		{"Sigmoid", nil, nil, 13, ops.Activation{Kind: ops.ActSigmoid}},
	} {
		name := fmt.Sprintf("Conv -> %s %v", a.op, a.in)
		t.Run(name, func(t *testing.T) {
			b := newModel(t, a.opset).input("x", "batch", 3, 6, 6).init("w", w).init("b", randTensor(rng, -1, 1, 4)).
				init("lo", tensor.FromSlice(tensor.Shape{}, []float32{0})).init("hi", tensor.FromSlice(tensor.Shape{}, []float32{6})).
				node("Conv", []string{"x", "w", "b"}, []string{"c"}, aInts("pads", 1, 1, 1, 1)).
				node(a.op, append([]string{"c"}, a.in...), []string{"y"}, a.attrs...).output("y")
			g := checkPass(t, b.build(), FuseConvActivation{}, true, map[string]int{"FusedConv": 1})
			if f := fusedOf(t, g, "y"); f.Post != a.want || f.Residual {
				t.Errorf("fused %+v, want epilogue %+v", f, a.want)
			}
			checkDecodes(t, g)
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := checkPass(t, c.build(t), FuseConvActivation{}, c.changed, c.ops)
			if c.changed {
				f := fusedOf(t, g, g.Nodes[0].Outputs[0].Name)
				if f.Post.Kind != ops.ActRelu || f.HasPrologue() || !f.Conv.HasBias {
					t.Errorf("fused op = %+v, want a ReLU epilogue with the Conv's bias and no prologue", f)
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
		{"into a FusedConv with a ReLU epilogue", func(t *testing.T) *graph.Graph {
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
	checkDecodes(t, g)
}

// checkDecodes decodes every FusedConv node of g again from its attributes and inputs and checks
// that it gives the same op.
func checkDecodes(t *testing.T, g *graph.Graph) {
	t.Helper()
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
		if f.PreRelu != want.PreRelu || f.Post != want.Post || f.Residual != want.Residual || !tensorEq(f.PreScale, want.PreScale) ||
			!tensorEq(f.PreShift, want.PreShift) || f.Conv.HasBias != want.Conv.HasBias {
			t.Errorf("%s: decoded %+v, want %+v", n, f, want)
		}
	}
}

func tensorEq(a, b []float32) bool {
	return tensor.AllClose(tensor.FromSlice(tensor.Shape{len(a)}, a), tensor.FromSlice(tensor.Shape{len(b)}, b), 0, 0) == nil
}

func TestFuseConvAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(40, 41))
	w := randTensor(rng, -1, 1, 4, 4, 3, 3)
	w2 := randTensor(rng, -1, 1, 4, 4, 1, 1)
	base := func(t *testing.T) *modelBuilder {
		return newModel(t, 13).input("x", "batch", 4, 6, 6).init("w", w).init("w2", w2).init("b", randTensor(rng, -1, 1, 4)).
			node("Conv", []string{"x", "w", "b"}, []string{"c"}, aInts("pads", 1, 1, 1, 1))
	}
	cases := []struct {
		name     string
		build    func(t *testing.T) *graph.Graph
		pass     Pass
		changed  bool
		ops      map[string]int
		residual string // the fused node's residual input
		post     ops.ActivationKind
	}{
		{"Add(conv, x) -> Relu (ResNet)", func(t *testing.T) *graph.Graph {
			return base(t).node("Add", []string{"c", "x"}, []string{"s"}).node("Relu", []string{"s"}, []string{"y"}).output("y").build()
		}, Inference(), true, map[string]int{"FusedConv": 1}, "x", ops.ActRelu},
		{"Add(x, conv) without bias", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 4, 6, 6).init("w", w).
				node("Conv", []string{"x", "w"}, []string{"c"}, aInts("pads", 1, 1, 1, 1)).
				node("Add", []string{"x", "c"}, []string{"y"}).output("y").build()
		}, FuseConvAdd{}, true, map[string]int{"FusedConv": 1}, "x", ops.ActNone},
		{"two convolutions: the later one takes the other", func(t *testing.T) *graph.Graph {
			return base(t).node("Conv", []string{"x", "w2"}, []string{"d"}).
				node("Add", []string{"c", "d"}, []string{"y"}).output("y").build()
		}, FuseConvAdd{}, true, map[string]int{"FusedConv": 1, "Conv": 1}, "c", ops.ActNone},
		{"residual produced after the conv in node order", func(t *testing.T) *graph.Graph {
			return base(t).node("Relu", []string{"x"}, []string{"r"}).
				node("Add", []string{"c", "r"}, []string{"y"}).output("y").build()
		}, FuseConvAdd{}, true, map[string]int{"FusedConv": 1, "Relu": 1}, "r", ops.ActNone},
		{"NOT: broadcast residual", func(t *testing.T) *graph.Graph {
			return base(t).init("z", randTensor(rng, -1, 1, 4, 1, 1)).
				node("Add", []string{"c", "z"}, []string{"y"}).output("y").build()
		}, FuseConvAdd{}, false, map[string]int{"Conv": 1, "Add": 1}, "", 0},
		{"NOT: conv output read twice", func(t *testing.T) *graph.Graph {
			return base(t).node("Add", []string{"c", "x"}, []string{"y"}).output("y", "c").build()
		}, FuseConvAdd{}, false, map[string]int{"Conv": 1, "Add": 1}, "", 0},
		{"NOT: conv with an activation already", func(t *testing.T) *graph.Graph {
			g := base(t).node("Relu", []string{"c"}, []string{"r"}).node("Add", []string{"r", "x"}, []string{"y"}).output("y").build()
			if _, err := (FuseConvActivation{}).Run(g); err != nil {
				t.Fatal(err)
			}
			return g
		}, FuseConvAdd{}, false, map[string]int{"FusedConv": 1, "Add": 1}, "", 0},
		{"NOT: Add(conv, conv) of one conv", func(t *testing.T) *graph.Graph {
			return base(t).node("Add", []string{"c", "c"}, []string{"y"}).output("y").build()
		}, FuseConvAdd{}, false, map[string]int{"Conv": 1, "Add": 1}, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := checkPass(t, c.build(t), c.pass, c.changed, c.ops)
			if !c.changed {
				return
			}
			f := fusedOf(t, g, "y")
			n := g.Value("y").Producer
			if !f.Residual || len(n.Inputs) != 4 || n.Inputs[3] != g.Value(c.residual) || f.Post.Kind != c.post {
				t.Errorf("fused %+v reading %v, want residual %q and %v", f, n.Inputs, c.residual, c.post)
			}
			if err := g.Validate(); err != nil {
				t.Error(err)
			}
			checkDecodes(t, g)
		})
	}
}

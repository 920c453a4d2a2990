package passes

import (
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestFoldConstants(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
	}{
		{"Constant node becomes an initializer", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				node("Constant", nil, []string{"c"}, aTensor(t, "value", randTensor(rng, -1, 1, 3))).
				node("Add", []string{"x", "c"}, []string{"y"}).build()
		}, true, map[string]int{"Add": 1}},
		{"chain of constant arithmetic", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				init("a", randTensor(rng, -1, 1, 2, 3)).init("b", randTensor(rng, -1, 1, 3)).
				node("Constant", nil, []string{"k"}, aTensor(t, "value", tensor.Scalar(float32(2)))).
				node("Add", []string{"a", "b"}, []string{"s"}).
				node("Mul", []string{"s", "k"}, []string{"s2"}).
				node("ReduceMean", []string{"s2"}, []string{"r"}, aInts("axes", 0), aInt("keepdims", 0)).
				node("Mul", []string{"x", "r"}, []string{"y"}).build()
		}, true, map[string]int{"Mul": 1}},
		{"shape arithmetic", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 12).output("y").
				init("w", randTensor(rng, -1, 1, 3, 4)).
				init("minus1", tensor.FromSlice(tensor.Shape{1}, []int64{-1})).
				node("Shape", []string{"w"}, []string{"ws"}).
				node("Concat", []string{"minus1", "ws"}, []string{"shape"}, aInt("axis", 0)).
				node("Reshape", []string{"x", "shape"}, []string{"y"}).build()
		}, true, map[string]int{"Reshape": 1}},
		{"NOT: result larger than MaxFoldElements", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				init("shape", tensor.FromSlice(tensor.Shape{2}, []int64{1100, 1000})).
				node("ConstantOfShape", []string{"shape"}, []string{"big"}).
				node("ReduceMean", []string{"big"}, []string{"r"}).
				node("Add", []string{"x", "r"}, []string{"y"}).build()
		}, false, map[string]int{"ConstantOfShape": 1, "ReduceMean": 1, "Add": 1}},
		{"NOT: constant node that is a graph output", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y", "c").
				init("a", randTensor(rng, -1, 1, 3)).
				node("Relu", []string{"a"}, []string{"c"}).
				node("Add", []string{"x", "c"}, []string{"y"}).build()
		}, false, map[string]int{"Relu": 1, "Add": 1}},
		{"NOT: Dropout on a constant", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				init("a", randTensor(rng, -1, 1, 3)).
				node("Dropout", []string{"a"}, []string{"d"}).
				node("Add", []string{"x", "d"}, []string{"y"}).build()
		}, false, map[string]int{"Dropout": 1, "Add": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := c.build(t)
			n := len(g.Initializers)
			checkPass(t, g, FoldConstants{}, c.changed, c.ops)
			if !c.changed && len(g.Initializers) != n {
				t.Errorf("initializers changed from %d to %d", n, len(g.Initializers))
			}
		})
	}
}

// convBN builds x -> Conv(W[, B]) -> c -> BatchNormalization -> y with random parameters;
// extra adds nodes and outputs for the negative cases.
func convBN(t *testing.T, opset int64, bias bool, extra func(b *modelBuilder) *modelBuilder) *graph.Graph {
	rng := rand.New(rand.NewPCG(7, 8))
	b := newModel(t, opset).input("x", "batch", 3, 6, 6).
		init("conv.weight", randTensor(rng, -1, 1, 4, 3, 3, 3))
	convIn := []string{"x", "conv.weight"}
	if bias {
		b.init("conv.bias", randTensor(rng, -1, 1, 4))
		convIn = append(convIn, "conv.bias")
	}
	bn := b.bnParams(rng, "bn", 4)
	b.node("Conv", convIn, []string{"c"}, aInts("pads", 1, 1, 1, 1), aInts("kernel_shape", 3, 3)).
		node("BatchNormalization", append([]string{"c"}, bn...), []string{"y"}, aFloat("epsilon", 1e-3))
	if extra == nil {
		return b.output("y").build()
	}
	return extra(b).build()
}

func TestFoldConvBN(t *testing.T) {
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
	}{
		{"Conv without bias", func(t *testing.T) *graph.Graph { return convBN(t, 13, false, nil) },
			true, map[string]int{"Conv": 1}},
		{"Conv with bias", func(t *testing.T) *graph.Graph { return convBN(t, 13, true, nil) },
			true, map[string]int{"Conv": 1}},
		{"BN output read further", func(t *testing.T) *graph.Graph {
			return convBN(t, 13, true, func(b *modelBuilder) *modelBuilder {
				return b.node("Relu", []string{"y"}, []string{"r"}).output("y", "r")
			})
		}, true, map[string]int{"Conv": 1, "Relu": 1}},
		{"NOT: Conv output read twice", func(t *testing.T) *graph.Graph {
			return convBN(t, 13, true, func(b *modelBuilder) *modelBuilder {
				return b.node("Relu", []string{"c"}, []string{"r"}).output("y", "r")
			})
		}, false, map[string]int{"Conv": 1, "BatchNormalization": 1, "Relu": 1}},
		{"NOT: Conv output is a graph output", func(t *testing.T) *graph.Graph {
			return convBN(t, 13, false, func(b *modelBuilder) *modelBuilder { return b.output("y", "c") })
		}, false, map[string]int{"Conv": 1, "BatchNormalization": 1}},
		{"NOT: BN in training mode", func(t *testing.T) *graph.Graph {
			g := convBN(t, 15, false, nil)
			for _, n := range g.Nodes {
				if bn, ok := n.Op.(*ops.BatchNormalization); ok {
					bn.Training = true
				}
			}
			return g
		}, false, map[string]int{"Conv": 1, "BatchNormalization": 1}},
		{"NOT: BN statistics fed at run time", func(t *testing.T) *graph.Graph {
			rng := rand.New(rand.NewPCG(9, 9))
			b := newModel(t, 13).input("x", "batch", 3, 6, 6).input("mean", 4).
				init("w", randTensor(rng, -1, 1, 4, 3, 1, 1))
			bn := b.bnParams(rng, "bn", 4)
			return b.node("Conv", []string{"x", "w"}, []string{"c"}).
				node("BatchNormalization", []string{"c", bn[0], bn[1], "mean", bn[3]}, []string{"y"}).
				output("y").build()
		}, false, map[string]int{"Conv": 1, "BatchNormalization": 1}},
		{"NOT: Conv weights fed at run time", func(t *testing.T) *graph.Graph {
			rng := rand.New(rand.NewPCG(9, 9))
			b := newModel(t, 13).input("x", "batch", 3, 6, 6).input("w", 4, 3, 1, 1)
			bn := b.bnParams(rng, "bn", 4)
			return b.node("Conv", []string{"x", "w"}, []string{"c"}).
				node("BatchNormalization", append([]string{"c"}, bn...), []string{"y"}).
				output("y").build()
		}, false, map[string]int{"Conv": 1, "BatchNormalization": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := checkPass(t, c.build(t), FoldConvBN{}, c.changed, c.ops)
			if !c.changed {
				return
			}
			conv := g.Nodes[0]
			if op := conv.Op.(*ops.Conv); !op.HasBias || len(conv.Inputs) != 3 || !conv.Inputs[2].IsConst() {
				t.Errorf("folded Conv has no constant bias: HasBias %v, inputs %d", op.HasBias, len(conv.Inputs))
			}
			if conv.Outputs[0].Name != "y" {
				t.Errorf("folded Conv output is %q, want the BN's name y", conv.Outputs[0].Name)
			}
			if conv.Inputs[1].Name != "conv.weight" || conv.Inputs[2].Name != "conv.bias" {
				t.Errorf("folded Conv reads %q and %q, want the weights updated in place", conv.Inputs[1].Name, conv.Inputs[2].Name)
			}
		})
	}
}

// TestFoldConvBN_SharedWeights folds two BNs into two Convs that share one weight tensor: each
// must get its own weights, and the shared tensor must not be scaled twice.
func TestFoldConvBN_SharedWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	b := newModel(t, 13).input("x", "batch", 3, 5, 5).init("w", randTensor(rng, -1, 1, 4, 3, 3, 3))
	bn1, bn2 := b.bnParams(rng, "bn1", 4), b.bnParams(rng, "bn2", 4)
	g := b.node("Conv", []string{"x", "w"}, []string{"c1"}).
		node("Conv", []string{"x", "w"}, []string{"c2"}, aInts("pads", 1, 1, 1, 1)).
		node("BatchNormalization", append([]string{"c1"}, bn1...), []string{"y1"}).
		node("BatchNormalization", append([]string{"c2"}, bn2...), []string{"y2"}).
		output("y1", "y2").build()
	orig := g.Value("w").Const
	snapshot := orig.Clone()
	checkPass(t, g, FoldConvBN{}, true, map[string]int{"Conv": 2})
	w1, w2 := g.Nodes[0].Inputs[1], g.Nodes[1].Inputs[1]
	if w1 == w2 {
		t.Fatalf("both Convs read %q after folding", w1.Name)
	}
	if err := tensor.AllClose(orig, snapshot, 0, 0); err != nil {
		t.Errorf("the shared weight tensor was modified in place: %v", err)
	}
}

func TestDropoutStaysAwayFromFolding(t *testing.T) {
	// A Dropout in training mode on constant data must stay: folding would freeze one random mask.
	rng := rand.New(rand.NewPCG(12, 13))
	g := newModel(t, 13).input("x", "batch", 3).output("y").
		init("a", randTensor(rng, -1, 1, 3)).init("mode", tensor.FromSlice(tensor.Shape{}, []bool{true})).
		node("Dropout", []string{"a", "", "mode"}, []string{"d"}).
		node("Add", []string{"x", "d"}, []string{"y"}).build()
	checkPass(t, g, Portable(), false, map[string]int{"Dropout": 1, "Add": 1})
}

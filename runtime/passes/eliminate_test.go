package passes

import (
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestEliminateIdentity(t *testing.T) {
	boolInit := func(b *modelBuilder, v bool) *modelBuilder {
		return b.init("mode", tensor.FromSlice(tensor.Shape{}, []bool{v}))
	}
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		pass    Pass
		changed bool
		ops     map[string]int
		feeds   map[string]*tensor.Tensor // non-float inputs
	}{
		{"Identity between nodes", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Identity", []string{"a"}, []string{"b"}).
				node("Sigmoid", []string{"b"}, []string{"y"}).build()
		}, EliminateIdentity{}, true, map[string]int{"Relu": 1, "Sigmoid": 1}, nil},
		{"Identity producing the graph output keeps its name", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Sigmoid", []string{"a"}, []string{"s"}).
				node("Identity", []string{"a"}, []string{"y"}).build()
		}, EliminateIdentity{}, true, map[string]int{"Relu": 1, "Sigmoid": 1}, nil},
		{"NOT: Identity from graph input to graph output", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				node("Identity", []string{"x"}, []string{"y"}).build()
		}, EliminateIdentity{}, false, map[string]int{"Identity": 1}, nil},
		{"NOT: Identity between two graph outputs", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("a", "y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Identity", []string{"a"}, []string{"y"}).build()
		}, EliminateIdentity{}, false, map[string]int{"Relu": 1, "Identity": 1}, nil},
		{"single-input Concat", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Concat", []string{"a"}, []string{"c"}, aInt("axis", 1)).
				node("Concat", []string{"c", "a"}, []string{"y"}, aInt("axis", 1)).build()
		}, EliminateIdentity{}, true, map[string]int{"Relu": 1, "Concat": 1}, nil},
		{"Dropout-13 without training_mode", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a"}, []string{"y"}).build()
		}, EliminateIdentity{}, true, map[string]int{"Relu": 1}, nil},
		{"Dropout-13 with an unread mask and constant training_mode false", func(t *testing.T) *graph.Graph {
			b := newModel(t, 13).input("x", "batch", 3).output("y")
			b.init("ratio", tensor.Scalar(float32(0.3)))
			return boolInit(b, false).
				node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a", "ratio", "mode"}, []string{"d", "mask"}).
				node("Sigmoid", []string{"d"}, []string{"y"}).build()
		}, EliminateIdentity{}, true, map[string]int{"Relu": 1, "Sigmoid": 1}, nil},
		{"Dropout-10 (inference by definition)", func(t *testing.T) *graph.Graph {
			return newModel(t, 10).input("x", "batch", 3).output("y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a"}, []string{"y"}, aFloat("ratio", 0.2)).build()
		}, EliminateIdentity{}, true, map[string]int{"Relu": 1}, nil},
		{"NOT: Dropout-13 in training mode", func(t *testing.T) *graph.Graph {
			return boolInit(newModel(t, 13).input("x", "batch", 3).output("y"), true).
				node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a", "", "mode"}, []string{"y"}).build()
		}, EliminateIdentity{}, false, map[string]int{"Relu": 1, "Dropout": 1}, nil},
		{"NOT: Dropout-13 whose training_mode is fed", func(t *testing.T) *graph.Graph {
			b := newModel(t, 13).input("x", "batch", 3).output("y")
			b.g.Input = append(b.g.Input, vinfo("mode", tensor.Bool))
			return b.node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a", "", "mode"}, []string{"y"}).build()
		}, EliminateIdentity{}, false, map[string]int{"Relu": 1, "Dropout": 1},
			map[string]*tensor.Tensor{"mode": tensor.FromSlice(tensor.Shape{}, []bool{false})}},
		{"NOT: Dropout-6 with default is_test=0 (training)", func(t *testing.T) *graph.Graph {
			return newModel(t, 6).input("x", "batch", 3).output("y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a"}, []string{"y"}).build()
		}, EliminateIdentity{}, false, map[string]int{"Relu": 1, "Dropout": 1}, nil},
		{"NOT: Dropout whose mask is read", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y", "m").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a"}, []string{"y", "m"}).build()
		}, EliminateIdentity{}, false, map[string]int{"Relu": 1, "Dropout": 1}, nil},
		{"NOT: Dropout with KeepDropout", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 3).output("y").
				node("Relu", []string{"x"}, []string{"a"}).
				node("Dropout", []string{"a"}, []string{"y"}).build()
		}, EliminateIdentity{KeepDropout: true}, false, map[string]int{"Relu": 1, "Dropout": 1}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkPassFeeds(t, c.build(t), c.pass, c.changed, c.ops, c.feeds)
		})
	}
}

func TestEliminateZeroPad(t *testing.T) {
	zeros := tensor.FromSlice(tensor.Shape{8}, make([]int64, 8))
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
	}{
		{"PyTorch transition: Constant(zeros) -> Pad -> AveragePool", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 2, 4, 4).output("y").
				node("Constant", nil, []string{"pads"}, aTensor(t, "value", zeros)).
				node("Pad", []string{"x", "pads"}, []string{"p"}, aStr("mode", "constant")).
				node("AveragePool", []string{"p"}, []string{"y"}, aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)).build()
		}, true, map[string]int{"Constant": 1, "AveragePool": 1}},
		{"initializer pads and a constant value", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 2, 4, 4).output("y").
				init("pads", zeros).init("value", tensor.Scalar(float32(3))).
				node("Relu", []string{"x"}, []string{"r"}).
				node("Pad", []string{"r", "pads", "value"}, []string{"y"}).build()
		}, true, map[string]int{"Relu": 1}},
		{"Pad-2 attribute, reflect mode", func(t *testing.T) *graph.Graph {
			return newModel(t, 2).input("x", "batch", 2, 4, 4).output("y").
				node("Relu", []string{"x"}, []string{"r"}).
				node("Pad", []string{"r"}, []string{"p"}, aInts("pads", 0, 0, 0, 0, 0, 0, 0, 0), aStr("mode", "reflect")).
				node("Sigmoid", []string{"p"}, []string{"y"}).build()
		}, true, map[string]int{"Relu": 1, "Sigmoid": 1}},
		{"Pad-18 with axes", func(t *testing.T) *graph.Graph {
			return newModel(t, 18).input("x", "batch", 2, 4, 4).output("y").
				init("pads", tensor.FromSlice(tensor.Shape{4}, []int64{0, 0, 0, 0})).
				init("axes", tensor.FromSlice(tensor.Shape{2}, []int64{2, -1})).
				node("Relu", []string{"x"}, []string{"r"}).
				node("Pad", []string{"r", "pads", "", "axes"}, []string{"y"}).build()
		}, true, map[string]int{"Relu": 1}},
		{"NOT: non-zero pads", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 2, 4, 4).output("y").
				init("pads", tensor.FromSlice(tensor.Shape{8}, []int64{0, 0, 1, 0, 0, 0, 0, 0})).
				node("Relu", []string{"x"}, []string{"r"}).
				node("Pad", []string{"r", "pads"}, []string{"y"}).build()
		}, false, map[string]int{"Relu": 1, "Pad": 1}},
		{"NOT: negative pads (cropping)", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 2, 4, 4).output("y").
				init("pads", tensor.FromSlice(tensor.Shape{8}, []int64{0, 0, 0, 0, 0, 0, -1, 0})).
				node("Relu", []string{"x"}, []string{"r"}).
				node("Pad", []string{"r", "pads"}, []string{"y"}).build()
		}, false, map[string]int{"Relu": 1, "Pad": 1}},
		{"NOT: pads fed at run time", func(t *testing.T) *graph.Graph {
			b := newModel(t, 13).input("x", "batch", 2, 4, 4).output("y")
			b.g.Input = append(b.g.Input, vinfo("pads", tensor.Int64, 8))
			return b.node("Relu", []string{"x"}, []string{"r"}).
				node("Pad", []string{"r", "pads"}, []string{"y"}).build()
		}, false, map[string]int{"Relu": 1, "Pad": 1}},
		{"NOT: zero pads straight from graph input to output", func(t *testing.T) *graph.Graph {
			return newModel(t, 13).input("x", "batch", 2, 4, 4).output("y").init("pads", zeros).
				node("Pad", []string{"x", "pads"}, []string{"y"}).build()
		}, false, map[string]int{"Pad": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := c.build(t)
			if c.name == "NOT: pads fed at run time" {
				checkPassFeeds(t, g, EliminateZeroPad{}, c.changed, c.ops, map[string]*tensor.Tensor{
					"pads": tensor.FromSlice(tensor.Shape{8}, []int64{0, 0, 1, 1, 0, 0, 0, 1}),
				})
				return
			}
			checkPass(t, g, EliminateZeroPad{}, c.changed, c.ops)
		})
	}
}

func TestDeadCodeElimination(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	build := func(t *testing.T) *graph.Graph {
		return newModel(t, 13).input("x", "batch", 3).output("y").
			init("w", randTensor(rng, -1, 1, 3)).init("unused", randTensor(rng, -1, 1, 5)).
			node("Mul", []string{"x", "w"}, []string{"m"}).
			node("Relu", []string{"m"}, []string{"y"}).
			node("Sigmoid", []string{"m"}, []string{"dead1"}).
			node("Add", []string{"dead1", "w"}, []string{"dead2"}).
			node("Dropout", []string{"x"}, []string{"d", "mask"}).build()
	}
	g := checkPass(t, build(t), DeadCodeElimination{}, true, map[string]int{"Mul": 1, "Relu": 1})
	if len(g.Initializers) != 1 || g.Initializers[0].Name != "w" {
		t.Errorf("initializers after DCE = %v, want [w]", g.Initializers)
	}
	if g.Value("unused") != nil || g.Value("dead2") != nil {
		t.Error("removed values are still registered")
	}

	t.Run("NOT: everything live", func(t *testing.T) {
		g := newModel(t, 13).input("x", "batch", 3).output("y", "z").init("w", randTensor(rng, -1, 1, 3)).
			node("Mul", []string{"x", "w"}, []string{"y"}).
			node("Relu", []string{"y"}, []string{"z"}).build()
		checkPass(t, g, DeadCodeElimination{}, false, map[string]int{"Mul": 1, "Relu": 1})
	})
}

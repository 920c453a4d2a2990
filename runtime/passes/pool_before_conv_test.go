package passes

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// transition builds DenseNet's transition BN -> Relu -> Conv (1x1 by default, 6 -> 4 channels,
// with bias) -> AveragePool (2x2 stride 2 by default) on a 7x7 image, with the given attributes;
// tail adds nodes and outputs (default: output "y").
func transition(t *testing.T, convKernel int, convAttrs, poolAttrs []*onnxpb.AttributeProto, pool string, tail func(b *modelBuilder) *modelBuilder) *graph.Graph {
	rng := rand.New(rand.NewPCG(40, 41))
	b := newModel(t, 13).input("x", "batch", 6, 7, 7).
		init("w", randTensor(rng, -1, 1, 4, 6, convKernel, convKernel)).init("b", randTensor(rng, -1, 1, 4))
	bn := b.bnParams(rng, "bn", 6)
	b.node("BatchNormalization", append([]string{"x"}, bn...), []string{"n"}).
		node("Relu", []string{"n"}, []string{"r"}).
		node("Conv", []string{"r", "w", "b"}, []string{"c"}, convAttrs...)
	if poolAttrs == nil {
		poolAttrs = []*onnxpb.AttributeProto{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)}
	}
	b.node(pool, []string{"c"}, []string{"y"}, poolAttrs...)
	if tail == nil {
		return b.output("y").build()
	}
	return tail(b).build()
}

func TestPoolBeforePointwiseConv(t *testing.T) {
	k22s2 := []*onnxpb.AttributeProto{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)}
	unchanged := map[string]int{"BatchNormalization": 1, "Relu": 1, "Conv": 1, "AveragePool": 1}
	cases := []struct {
		name    string
		build   func(t *testing.T) *graph.Graph
		changed bool
		ops     map[string]int
	}{
		{"1x1 Conv -> AveragePool 2x2/2", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, nil, "AveragePool", nil)
		}, true, unchanged},
		{"ceil_mode partial windows", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, append(k22s2, aInt("ceil_mode", 1)), "AveragePool", nil)
		}, true, unchanged},
		{"3x3 pool stride 2, count_include_pad without pads", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, []*onnxpb.AttributeProto{aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInt("count_include_pad", 1)}, "AveragePool", nil)
		}, true, unchanged},
		{"grouped 1x1 Conv", func(t *testing.T) *graph.Graph {
			rng := rand.New(rand.NewPCG(42, 43))
			b := newModel(t, 13).input("x", "batch", 6, 6, 6).init("w", randTensor(rng, -1, 1, 4, 3, 1, 1))
			return b.node("Conv", []string{"x", "w"}, []string{"c"}, aInt("group", 2)).
				node("AveragePool", []string{"c"}, []string{"y"}, aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)).
				output("y").build()
		}, true, map[string]int{"Conv": 1, "AveragePool": 1}},
		{"NOT: 3x3 Conv", func(t *testing.T) *graph.Graph {
			return transition(t, 3, []*onnxpb.AttributeProto{aInts("pads", 1, 1, 1, 1)}, nil, "AveragePool", nil)
		}, false, unchanged},
		{"NOT: strided Conv", func(t *testing.T) *graph.Graph {
			return transition(t, 1, []*onnxpb.AttributeProto{aInts("strides", 2, 2)}, nil, "AveragePool", nil)
		}, false, unchanged},
		{"NOT: padded pool", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, append(k22s2, aInts("pads", 1, 1, 0, 0)), "AveragePool", nil)
		}, false, unchanged},
		{"NOT: SAME_UPPER pool", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, []*onnxpb.AttributeProto{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2), aStr("auto_pad", "SAME_UPPER")}, "AveragePool", nil)
		}, false, unchanged},
		{"NOT: pool of stride 1", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, []*onnxpb.AttributeProto{aInts("kernel_shape", 2, 2)}, "AveragePool", nil)
		}, false, unchanged},
		{"NOT: MaxPool", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, nil, "MaxPool", nil)
		}, false, map[string]int{"BatchNormalization": 1, "Relu": 1, "Conv": 1, "MaxPool": 1}},
		{"NOT: Conv output also read elsewhere", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, nil, "AveragePool", func(b *modelBuilder) *modelBuilder {
				return b.node("Sigmoid", []string{"c"}, []string{"z"}).output("y", "z")
			})
		}, false, map[string]int{"BatchNormalization": 1, "Relu": 1, "Conv": 1, "AveragePool": 1, "Sigmoid": 1}},
		{"NOT: Conv output is a graph output", func(t *testing.T) *graph.Graph {
			return transition(t, 1, nil, nil, "AveragePool", func(b *modelBuilder) *modelBuilder { return b.output("y", "c") })
		}, false, unchanged},
		{"NOT: FusedConv with a ReLU epilogue", func(t *testing.T) *graph.Graph {
			rng := rand.New(rand.NewPCG(44, 45))
			b := newModel(t, 13).input("x", "batch", 6, 6, 6).init("w", randTensor(rng, -1, 1, 4, 6, 1, 1))
			g := b.node("Conv", []string{"x", "w"}, []string{"c"}).node("Relu", []string{"c"}, []string{"r"}).
				node("AveragePool", []string{"r"}, []string{"y"}, aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)).
				output("y").build()
			if _, err := (FuseConvActivation{}).Run(g); err != nil {
				t.Fatal(err)
			}
			return g
		}, false, map[string]int{"FusedConv": 1, "AveragePool": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := checkPass(t, c.build(t), PoolBeforePointwiseConv{}, c.changed, c.ops)
			if !c.changed {
				return
			}
			y := g.Value("y")
			if y.Producer == nil || y.Producer.OpType != "Conv" || y.Producer.Inputs[0].Producer == nil ||
				y.Producer.Inputs[0].Producer.OpType != "AveragePool" {
				t.Errorf("y is produced by %s, want a Conv reading an AveragePool", y.Producer)
			}
		})
	}
}

// TestTransitionFusesIntoPool runs the Inference pipeline on a transition: the pool moves before
// the convolution and takes the BN-ReLU as its prologue, and the same happens when the prologue
// was fused into the convolution first.
func TestTransitionFusesIntoPool(t *testing.T) {
	want := map[string]int{"FusedAveragePool": 1, "Conv": 1}
	t.Run("pipeline", func(t *testing.T) {
		g := transition(t, 1, nil, nil, "AveragePool", nil)
		checkPass(t, g, Inference(), true, want)
		checkTransition(t, g, "Conv")
	})
	t.Run("FusedConv prologue moves to the pool", func(t *testing.T) {
		g := transition(t, 1, nil, nil, "AveragePool", nil)
		if _, err := (FuseBNReluConv{}).Run(g); err != nil {
			t.Fatal(err)
		}
		checkPass(t, g, PoolBeforePointwiseConv{}, true, map[string]int{"FusedAveragePool": 1, "FusedConv": 1})
		checkTransition(t, g, "FusedConv")
		if f := g.Value("y").Producer.Op.(*ops.FusedConv); f.HasPrologue() || f.Post.Kind != ops.ActNone {
			t.Errorf("convolution after the pool = %+v, want no prologue and no epilogue", f)
		}
	})
	t.Run("Portable keeps standard ops", func(t *testing.T) {
		g := transition(t, 1, nil, nil, "AveragePool", nil)
		checkPass(t, g, Portable(), true, map[string]int{"BatchNormalization": 1, "Relu": 1, "AveragePool": 1, "Conv": 1})
		if _, err := graph.Export(g); err != nil {
			t.Errorf("export: %v", err)
		}
	})
}

func checkTransition(t *testing.T, g *graph.Graph, convOp string) {
	t.Helper()
	conv := g.Value("y").Producer
	if conv.OpType != convOp {
		t.Fatalf("y is produced by %s, want a %s", conv, convOp)
	}
	pool := conv.Inputs[0].Producer
	f, ok := pool.Op.(*ops.FusedAveragePool)
	if !ok || pool.Domain != ops.DomainDNX || pool.Inputs[0] != g.Inputs[0] {
		t.Fatalf("the convolution reads %s, want a FusedAveragePool of the graph input", pool)
	}
	if !f.PreRelu || len(f.PreScale) != 6 {
		t.Errorf("pool prologue = %+v, want the BN's 6 channels and a ReLU", f)
	}
	// The fused node's attributes decode back to the same operator.
	present := make([]bool, len(pool.Inputs))
	for i, v := range pool.Inputs {
		present[i] = v != nil
	}
	got, err := ops.Default().Decode(&ops.Node{Name: pool.Name, OpType: pool.OpType, Domain: pool.Domain, Opset: pool.Opset,
		Attrs: pool.Attrs, Inputs: present, NumOutputs: len(pool.Outputs)})
	if err != nil {
		t.Fatalf("decode %s: %v", pool, err)
	}
	d := got.(*ops.FusedAveragePool)
	if d.PreRelu != f.PreRelu || !tensorEq(d.PreScale, f.PreScale) || !tensorEq(d.PreShift, f.PreShift) ||
		!slices.Equal(d.Pool.Kernel, f.Pool.Kernel) || !slices.Equal(d.Pool.Strides, f.Pool.Strides) {
		t.Errorf("decoded %+v, want %+v", d, f)
	}
}

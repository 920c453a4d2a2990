package graph

import (
	"errors"
	"testing"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"google.golang.org/protobuf/proto"
)

// diamond returns x -> a -> {b, c} -> y (y reads b and c), with an initializer w read by a.
func diamond(t *testing.T) *Graph {
	t.Helper()
	w := tensor.FromSlice(tensor.Shape{3}, []float32{1, 2, 3})
	tp := &onnxpb.TensorProto{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{3}, FloatData: tensor.Data[float32](w)}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("d"),
			Input:       []*onnxpb.ValueInfoProto{valueInfo("x", "batch", 3)},
			Output:      []*onnxpb.ValueInfoProto{valueInfo("y", "batch", 3)},
			Initializer: []*onnxpb.TensorProto{tp},
			Node: []*onnxpb.NodeProto{
				node("na", "Pass", []string{"x", "w"}, []string{"a"}),
				node("nb", "Pass", []string{"a"}, []string{"b"}),
				node("nc", "Pass", []string{"a"}, []string{"c"}),
				node("ny", "Pass", []string{"b", "c"}, []string{"y"}),
			},
		},
	}
	g, err := Import(m, "", testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("imported graph: %v", err)
	}
	return g
}

func nodeNamed(g *Graph, name string) *Node {
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func mustValid(t *testing.T, g *Graph) {
	t.Helper()
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMutationsKeepInvariants(t *testing.T) {
	t.Run("bypass a node", func(t *testing.T) {
		g := diamond(t)
		nb := nodeNamed(g, "nb")
		g.ReplaceValue(g.Value("b"), g.Value("a"))
		if err := g.RemoveNode(nb); err != nil {
			t.Fatal(err)
		}
		mustValid(t, g)
		if n := len(g.Value("a").Consumers); n != 2 {
			t.Errorf("a has %d consumers, want 2 (nc, ny)", n)
		}
		if g.Value("b") != nil {
			t.Error("b is still registered")
		}
	})
	t.Run("replace a value read twice by one node", func(t *testing.T) {
		g := diamond(t)
		ny := nodeNamed(g, "ny")
		g.ReplaceValue(g.Value("c"), g.Value("b"))
		if err := g.RemoveNode(nodeNamed(g, "nc")); err != nil {
			t.Fatal(err)
		}
		mustValid(t, g)
		if ny.Inputs[0] != ny.Inputs[1] || len(g.Value("b").Consumers) != 2 {
			t.Errorf("ny reads %v, b has consumers %v", ny.Inputs, g.Value("b").Consumers)
		}
	})
	t.Run("graph output moves and is renamed back", func(t *testing.T) {
		g := diamond(t)
		b := g.Value("b")
		g.ReplaceValue(g.Value("y"), b)
		if err := g.RemoveNode(nodeNamed(g, "ny")); err != nil {
			t.Fatal(err)
		}
		if err := g.RenameValue(b, "y"); err != nil {
			t.Fatal(err)
		}
		// nc is dead now; remove it too.
		if err := g.RemoveNode(nodeNamed(g, "nc")); err != nil {
			t.Fatal(err)
		}
		mustValid(t, g)
		if g.Outputs[0] != b || b.Name != "y" || g.Value("y") != b || g.Value("b") != nil {
			t.Errorf("outputs %v, y = %v, b = %v", g.Outputs, g.Value("y"), g.Value("b"))
		}
	})
	t.Run("add a node and sort", func(t *testing.T) {
		g := diamond(t)
		n := &Node{Name: "extra", OpType: "Pass", Op: passOp{}, Inputs: []*Value{g.Value("c")},
			Outputs: []*Value{{Name: g.UniqueName("c"), Type: g.Value("c").Type}}}
		if n.Outputs[0].Name != "c_1" {
			t.Errorf("UniqueName(c) = %q, want c_1", n.Outputs[0].Name)
		}
		if err := g.AddNode(n, nodeNamed(g, "na")); err != nil { // wrong place on purpose
			t.Fatal(err)
		}
		if err := g.Validate(); !errors.Is(err, ErrInvalidGraph) {
			t.Fatalf("Validate of an unsorted graph = %v, want ErrInvalidGraph", err)
		}
		if err := g.SortNodes(); err != nil {
			t.Fatal(err)
		}
		mustValid(t, g)
		if err := g.SetInput(nodeNamed(g, "ny"), 1, n.Outputs[0]); err != nil {
			t.Fatal(err)
		}
		if err := g.SortNodes(); err != nil {
			t.Fatal(err)
		}
		mustValid(t, g)
		if err := g.InferTypes(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("constants", func(t *testing.T) {
		g := diamond(t)
		v, err := g.AddInitializer("k", tensor.FromSlice(tensor.Shape{3}, []float32{4, 5, 6}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.AddInitializer("k", tensor.Scalar(float32(1))); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("duplicate initializer: err = %v", err)
		}
		if err := g.SetInput(nodeNamed(g, "na"), 1, v); err != nil {
			t.Fatal(err)
		}
		if err := g.RemoveInitializer(v); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("removing a used initializer: err = %v", err)
		}
		if err := g.RemoveInitializer(g.Value("w")); err != nil {
			t.Fatal(err)
		}
		mustValid(t, g)
		// c becomes a constant: nc goes, ny reads an initializer.
		c := g.Value("c")
		if err := g.ReplaceWithConstants(nodeNamed(g, "nc"), []*tensor.Tensor{tensor.FromSlice(tensor.Shape{2, 3}, make([]float32, 6))}); err != nil {
			t.Fatal(err)
		}
		mustValid(t, g)
		if !c.IsConst() || g.Value("c") != c || len(c.Consumers) != 1 || len(g.Nodes) != 3 {
			t.Errorf("c = %+v, %d nodes", c, len(g.Nodes))
		}
	})
	t.Run("refusals", func(t *testing.T) {
		g := diamond(t)
		if err := g.RemoveNode(nodeNamed(g, "na")); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("removing a node whose output is read: err = %v", err)
		}
		if err := g.RemoveNode(nodeNamed(g, "ny")); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("removing the producer of a graph output: err = %v", err)
		}
		if err := g.RenameValue(g.Value("a"), "b"); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("renaming onto a used name: err = %v", err)
		}
		dup := &Node{Name: "dup", OpType: "Pass", Op: passOp{}, Inputs: []*Value{g.Value("x")}, Outputs: []*Value{{Name: "a"}}}
		if err := g.AddNode(dup, nil); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("adding a node with a taken output name: err = %v", err)
		}
		stray := &Node{Name: "stray", OpType: "Pass", Op: passOp{}, Inputs: []*Value{{Name: "nowhere"}}, Outputs: []*Value{{Name: "s"}}}
		if err := g.AddNode(stray, nil); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("adding a node reading a foreign value: err = %v", err)
		}
		mustValid(t, g)
	})
}

// TestValidateCatchesCorruption breaks one invariant at a time behind the helpers' backs.
func TestValidateCatchesCorruption(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(g *Graph)
	}{
		{"missing consumer entry", func(g *Graph) { g.Value("a").Consumers = g.Value("a").Consumers[:1] }},
		{"extra consumer entry", func(g *Graph) {
			a := g.Value("a")
			a.Consumers = append(a.Consumers, nodeNamed(g, "ny"))
		}},
		{"unsorted nodes", func(g *Graph) { g.Nodes[0], g.Nodes[3] = g.Nodes[3], g.Nodes[0] }},
		{"unregistered input", func(g *Graph) { nodeNamed(g, "nb").Inputs[0] = &Value{Name: "a"} }},
		{"renamed behind the map's back", func(g *Graph) { g.Value("b").Name = "bb" }},
		{"orphan value", func(g *Graph) { g.values["orphan"] = &Value{Name: "orphan"} }},
		{"node removed from the list only", func(g *Graph) { g.Nodes = g.Nodes[1:] }},
		{"output not registered", func(g *Graph) { g.Outputs[0] = &Value{Name: "zz"} }},
		{"no outputs", func(g *Graph) { g.Outputs = nil }},
		{"node listed twice", func(g *Graph) { g.Nodes = append(g.Nodes, g.Nodes[3]) }},
		{"wrong producer", func(g *Graph) { g.Value("b").Producer = nodeNamed(g, "nc") }},
		{"initializer with a producer", func(g *Graph) { g.Value("w").Producer = nodeNamed(g, "na") }},
		{"no op", func(g *Graph) { nodeNamed(g, "nb").Op = nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := diamond(t)
			c.corrupt(g)
			if err := g.Validate(); !errors.Is(err, ErrInvalidGraph) {
				t.Errorf("Validate = %v, want ErrInvalidGraph", err)
			}
		})
	}
}

func TestUniqueNames(t *testing.T) {
	g := diamond(t)
	if got := g.UniqueName("fresh"); got != "fresh" {
		t.Errorf("UniqueName(fresh) = %q", got)
	}
	if _, err := g.AddInitializer("a_1", tensor.Scalar(float32(0))); err != nil {
		t.Fatal(err)
	}
	if got := g.UniqueName("a"); got != "a_2" {
		t.Errorf("UniqueName(a) = %q, want a_2", got)
	}
	if got := g.UniqueNodeName("nb"); got != "nb_1" {
		t.Errorf("UniqueNodeName(nb) = %q, want nb_1", got)
	}
}

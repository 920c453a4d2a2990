package exec

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// budgetModel is a graph of one node op named "big" reading input x [1,1,2,2] (when withInput)
// and the int64 initializer "k"; its output y is the graph output.
func budgetModel(t *testing.T, op string, k []int64, withInput bool) *graph.Graph {
	t.Helper()
	g, err := graph.Import(budgetProto(t, op, k, withInput), "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// budgetProto is budgetModel's model before import.
func budgetProto(t *testing.T, op string, k []int64, withInput bool) *onnxpb.ModelProto {
	t.Helper()
	kt, err := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{len(k)}, k), "k")
	if err != nil {
		t.Fatal(err)
	}
	g := &onnxpb.GraphProto{Name: proto.String("budget"), Initializer: []*onnxpb.TensorProto{kt},
		Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y")}}}
	in := []string{"k"}
	if withInput {
		in = []string{"x", "k"}
		dims := []*onnxpb.TensorShapeProto_Dimension{}
		for range 4 {
			dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 2}})
		}
		dims[0].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1}
		dims[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1}
		g.Input = []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}}
	}
	g.Node = []*onnxpb.NodeProto{{Name: proto.String("big"), OpType: proto.String(op), Input: in, Output: []string{"y"}}}
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
}

// The probes of the hardening issue: tiny models whose one node asks for gigabytes (a 127-byte
// ConstantOfShape of [65536, 65536]: 16 GiB; a Pad to [1, 1, 2097154, 2097154]: 16 TiB) are
// refused before anything is allocated, naming the node, on the planned
// and on the reference path; the same nodes at a sane size run.
func TestMemoryBudget(t *testing.T) {
	const budget = 64 << 20
	cases := []struct {
		name      string
		op        string
		big, ok   []int64
		withInput bool
	}{
		{"ConstantOfShape", "ConstantOfShape", []int64{65536, 65536}, []int64{4, 4}, false},
		{"Pad", "Pad", []int64{0, 0, 16384, 16384, 0, 0, 16384, 16384}, []int64{0, 0, 1, 1, 0, 0, 1, 1}, true},
	}
	for _, c := range cases {
		for _, reference := range []bool{false, true} {
			name := c.name + "/planned"
			if reference {
				name = c.name + "/reference"
			}
			t.Run(name, func(t *testing.T) {
				var inputs []*tensor.Tensor
				if c.withInput {
					inputs = []*tensor.Tensor{tensor.New(tensor.Float32, tensor.Shape{1, 1, 2, 2})}
				}
				s, err := New(budgetModel(t, c.op, c.big, c.withInput), Options{MaxMemory: budget, Reference: reference})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				_, err = s.Run(t.Context(), inputs)
				if !errors.Is(err, membudget.ErrOverBudget) || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "64 MiB") {
					t.Fatalf("err = %v, want ErrOverBudget naming node \"big\" and the 64 MiB budget", err)
				}
				t.Logf("%v", err)
				s2, err := New(budgetModel(t, c.op, c.ok, c.withInput), Options{MaxMemory: budget, Reference: reference})
				if err != nil {
					t.Fatal(err)
				}
				defer s2.Close()
				if _, err := s2.Run(t.Context(), inputs); err != nil {
					t.Fatalf("sane size: %v", err)
				}
			})
		}
	}
}

// Past tensor.MaxElements a shape is refused when the model is loaded, whatever the budget: the
// shape inference of every node goes through ops.InferChecked.
func TestImportRefusesHugeShapes(t *testing.T) {
	m := budgetProto(t, "Pad", []int64{0, 0, 1048576, 1048576, 0, 0, 1048576, 1048576}, true)
	_, err := graph.Import(m, "", ops.Default())
	if !errors.Is(err, ops.ErrShape) || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "2097154") {
		t.Fatalf("err = %v, want ErrShape naming node \"big\" and its output shape", err)
	}
	t.Log(err)
}

// A network whose every value fits the budget but whose planned activation arena does not is
// refused when the plan is compiled, before the arena is allocated.
func TestMemoryBudgetArena(t *testing.T) {
	g := builtGraph(t, builders.Config{Growth: 4, Blocks: []int{2, 2}, InitFeatures: 8, BNSize: 2, Compression: 0.5,
		Stem: builders.StemCIFAR, Classes: 3, InputSize: 16})
	// Batch 64: the largest value is 64*16*16*16 floats (1 MiB); the arena holds several.
	x := tensor.New(tensor.Float32, tensor.Shape{64, 3, 16, 16})
	for _, c := range []struct {
		budget int64
		ok     bool
	}{{1100 << 10, false}, {64 << 20, true}} {
		s, err := New(g, Options{MaxMemory: c.budget})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(t.Context(), []*tensor.Tensor{x})
		s.Close()
		if c.ok != (err == nil) || (err != nil && (!errors.Is(err, membudget.ErrOverBudget) || !strings.Contains(err.Error(), "arena"))) {
			t.Errorf("budget %d: err = %v, want ok=%v (or an arena over the budget)", c.budget, err, c.ok)
		}
		if err != nil {
			t.Log(err)
		}
	}
}

// An empty batch (a symbolic dim fed as 0) is refused with one clear error, on both paths.
func TestEmptyBatchRefused(t *testing.T) {
	g := builtGraph(t, builders.Config{Growth: 2, Blocks: []int{1, 1}, InitFeatures: 4, BNSize: 2, Compression: 0.5,
		Stem: builders.StemCIFAR, Classes: 3, InputSize: 8})
	for _, reference := range []bool{false, true} {
		s, err := New(g, Options{Reference: reference})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(t.Context(), []*tensor.Tensor{tensor.New(tensor.Float32, tensor.Shape{0, 3, 8, 8})})
		s.Close()
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "is 0") {
			t.Errorf("reference=%v: err = %v, want ErrInput saying the batch is 0", reference, err)
		}
	}
}

// builtGraph returns the training form of a DenseNet from the builders.
func builtGraph(t *testing.T, cfg builders.Config) *graph.Graph {
	t.Helper()
	m, err := builders.Build(cfg, builders.BuildOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

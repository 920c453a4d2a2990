package exec

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestLanesRule(t *testing.T) {
	g := sharedGraph(t, "models/densenet_tiny")
	cases := []struct {
		threads int
		whole   bool
		n       int
		rows    []int
		why     string
	}{
		{2, false, 1, nil, ""},
		{2, false, 2, []int{1, 1}, ""},
		{2, false, 3, []int{2, 1}, ""},
		{2, false, 4, []int{2, 2}, ""},
		{2, false, 7, []int{4, 3}, ""},
		{3, false, 2, nil, ""},
		{3, false, 8, []int{3, 3, 2}, ""},
		{3, false, 9, []int{3, 3, 3}, ""},
		{3, false, 10, []int{4, 3, 3}, ""},
		{1, false, 8, nil, "one thread"},
		{2, true, 8, nil, "NoLanes"},
	}
	for _, tc := range cases {
		s, err := New(g, Options{Threads: tc.threads, NoLanes: tc.whole})
		if err != nil {
			t.Fatal(err)
		}
		rows, why := s.Lanes([]tensor.Shape{{tc.n, 3, 16, 16}})
		s.Close()
		if !slices.Equal(rows, tc.rows) || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("threads %d, whole %v, batch %d: Lanes = %v, %q; want %v, %q", tc.threads, tc.whole, tc.n, rows, why, tc.rows, tc.why)
		}
	}
}

// TestLanesBitIdentical runs batches of 2 to 9 images in lanes on 2 and 3 threads and checks
// that every image's outputs are bit for bit those of the same batch run whole and of the image
// run alone: lanes change no result. densenet_tiny always; DenseNet-121 unless -short.
func TestLanesBitIdentical(t *testing.T) {
	models := []struct {
		dir string
		hw  int
	}{{"models/densenet_tiny", 16}}
	if !testing.Short() {
		models = append(models, struct {
			dir string
			hw  int
		}{"models/densenet121", 224})
	}
	for _, m := range models {
		g := sharedGraph(t, m.dir)
		per := 3 * m.hw * m.hw
		rng := rand.New(rand.NewPCG(5, 6))
		x := make([]float32, 9*per)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for _, threads := range []int{2, 3} {
			lanes, err := New(g, Options{Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			whole, err := New(g, Options{Threads: threads, NoLanes: true})
			if err != nil {
				t.Fatal(err)
			}
			alone := make([]*tensor.Tensor, 9)
			for i := range alone {
				out, err := whole.Run(context.Background(), []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, 3, m.hw, m.hw}, x[i*per:(i+1)*per])})
				if err != nil {
					t.Fatal(err)
				}
				alone[i] = out[0]
			}
			sizes := []int{2, 3, 4, 5, 7, 9}
			if threads == 3 {
				sizes = []int{3, 4, 8, 9}
			}
			for _, n := range sizes {
				if rows, _ := lanes.Lanes([]tensor.Shape{{n, 3, m.hw, m.hw}}); rows == nil {
					t.Fatalf("%s, %d threads: a batch of %d runs whole", m.dir, threads, n)
				}
				in := []*tensor.Tensor{tensor.FromSlice(tensor.Shape{n, 3, m.hw, m.hw}, x[:n*per])}
				got, err := lanes.Run(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				want, err := whole.Run(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				if err := tensor.AllClose(got[0], want[0], 0, 0); err != nil {
					t.Errorf("%s, %d threads, batch %d: lanes against whole: %v", m.dir, threads, n, err)
				}
				classes := got[0].Shape[1]
				for i := range n {
					row := tensor.FromSlice(tensor.Shape{1, classes}, tensor.Data[float32](got[0])[i*classes:(i+1)*classes])
					if err := tensor.AllClose(row, alone[i], 0, 0); err != nil {
						t.Errorf("%s, %d threads, batch %d, image %d: lanes against alone: %v", m.dir, threads, n, i, err)
					}
				}
			}
			lanes.Close()
			whole.Close()
		}
	}
}

// TestLanesStepTimesAndCancel checks that a batch in lanes records each step's time once per
// run (the lanes' sum: no lost or doubled run under -race) and stops on a cancelled context.
func TestLanesStepTimesAndCancel(t *testing.T) {
	g := sharedGraph(t, "models/densenet_tiny")
	s, err := New(g, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := []*tensor.Tensor{tensor.New(tensor.Float32, tensor.Shape{4, 3, 16, 16})}
	var times plan.StepTimes
	ctx := plan.WithStepTimes(context.Background(), &times)
	for range 3 {
		if _, err := s.Run(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	p, rows, _, err := s.PlanFor([]tensor.Shape{in[0].Shape})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, []int{2, 2}) || p.Stats().Steps != len(times.Total) || times.Runs != 3 {
		t.Fatalf("lanes %v, %d steps timed over %d runs; want lanes [2 2], %d steps over 3 runs", rows, len(times.Total), times.Runs, p.Stats().Steps)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(cancelled, in); !errors.Is(err, context.Canceled) {
		t.Fatalf("run with a cancelled context: %v, want context.Canceled", err)
	}
}

func sharedGraph(t *testing.T, dir string) *graph.Graph {
	t.Helper()
	g, err := graph.Load(filepath.Join(testenv.Shared(t, dir), "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// viewModel is x [N,3,8,8] -> Conv -> x.view(x.size(0), -1) as PyTorch exports it (Shape,
// Gather, Unsqueeze, Concat, Reshape) -> x.view(x.size(0), 4, 64) -> Flatten -> Gemm: after the
// first Reshape the symbolic types no longer know the row size, so whether the second keeps the
// rows is only seen at concrete shapes.
func viewModel(t *testing.T) *graph.Graph {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 8))
	f32 := func(name string, shape tensor.Shape) *onnxpb.TensorProto {
		v := make([]float32, shape.Size())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		tp, err := onnx.EncodeTensor(tensor.FromSlice(shape, v), name)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	i64 := func(name string, shape tensor.Shape, v ...int64) *onnxpb.TensorProto {
		tp, err := onnx.EncodeTensor(tensor.FromSlice(shape, v), name)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	node := func(op string, in []string, out string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: proto.String(out), OpType: proto.String(op), Input: in, Output: []string{out}, Attribute: attrs}
	}
	dim := func(d int64) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
	}
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
	g := &onnxpb.GraphProto{Name: proto.String("view"),
		Initializer: []*onnxpb.TensorProto{f32("w", tensor.Shape{4, 3, 3, 3}), f32("fc", tensor.Shape{256, 5}),
			i64("i0", tensor.Shape{}, 0), i64("ax0", tensor.Shape{1}, 0), i64("m1", tensor.Shape{1}, -1), i64("r4x64", tensor.Shape{2}, 4, 64)},
		Input: []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)),
				Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{batch, dim(3), dim(8), dim(8)}}}}}}},
		Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y")}},
		Node: []*onnxpb.NodeProto{
			node("Conv", []string{"x", "w"}, "c", &onnxpb.AttributeProto{Name: proto.String("pads"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{1, 1, 1, 1}}),
			node("Shape", []string{"c"}, "s"),
			node("Gather", []string{"s", "i0"}, "n"),
			node("Unsqueeze", []string{"n", "ax0"}, "u"),
			node("Concat", []string{"u", "m1"}, "sh", &onnxpb.AttributeProto{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(0)}),
			node("Reshape", []string{"c", "sh"}, "f"),
			// A second view, x.view(x.size(0), 4, 64): the symbolic types lost f's row size.
			node("Concat", []string{"u", "r4x64"}, "sh2", &onnxpb.AttributeProto{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(0)}),
			node("Reshape", []string{"f", "sh2"}, "f2"),
			node("Flatten", []string{"f2"}, "f3"),
			node("Gemm", []string{"f3", "fc"}, "y"),
		}}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
	gr, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return gr
}

// TestLanesAtConcreteShapes runs viewModel in lanes: its symbolic types do not show it
// row-independent, its types at the batch's shapes do, and every row is bit-identical to its
// run alone.
func TestLanesAtConcreteShapes(t *testing.T) {
	g := viewModel(t)
	if ok, _ := plan.RowIndependent(g, nil); ok {
		t.Fatal("viewModel is row-independent by its symbolic types alone: the test no longer covers the concrete check")
	}
	s, err := New(g, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n, per = 6, 3 * 8 * 8
	x := make([]float32, n*per)
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	in := tensor.FromSlice(tensor.Shape{n, 3, 8, 8}, x)
	if rows, why := s.Lanes([]tensor.Shape{in.Shape}); !slices.Equal(rows, []int{3, 3}) {
		t.Fatalf("Lanes = %v, %q; want [3 3]", rows, why)
	}
	got, err := s.Run(context.Background(), []*tensor.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		alone, err := s.Run(context.Background(), []*tensor.Tensor{in.Rows(i, i+1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := tensor.AllClose(got[0].Rows(i, i+1), alone[0], 0, 0); err != nil {
			t.Errorf("row %d: lanes against alone: %v", i, err)
		}
	}
}

// TestLanesMemoryBudget: lanes hold their memories at once, so a budget that each lane's plan
// fits but their sum does not refuses the run, naming the lanes.
func TestLanesMemoryBudget(t *testing.T) {
	g := sharedGraph(t, "models/densenet_tiny")
	x := tensor.New(tensor.Float32, tensor.Shape{64, 3, 16, 16})
	probe, err := New(g, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	lane, err := probe.LanePlan([]tensor.Shape{x.Shape}, 32)
	probe.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := lane.Stats()
	one := st.ArenaBytes + st.ScratchBytes + 4*32*5 // a lane's arena, scratch and outputs
	for _, c := range []struct {
		budget int64
		ok     bool
	}{{one + one/2, false}, {3 * one, true}} {
		s, err := New(g, Options{Threads: 2, MaxMemory: c.budget})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(context.Background(), []*tensor.Tensor{x})
		s.Close()
		if c.ok != (err == nil) || (err != nil && (!errors.Is(err, membudget.ErrOverBudget) || !strings.Contains(err.Error(), "2 lanes"))) {
			t.Errorf("budget %d (a lane needs %d): err = %v, want ok=%v (or the lanes over the budget)", c.budget, one, err, c.ok)
		}
	}
}

// TestRunAlongside: a run that starts while another is running runs in a lane of its own (the
// session's lane plan for its shapes appears), with the outputs of a run alone, bit for bit.
func TestRunAlongside(t *testing.T) {
	for _, dir := range []string{"models/densenet_tiny", "models/densenet121"} {
		if testing.Short() && dir == "models/densenet121" {
			continue
		}
		g := sharedGraph(t, dir)
		s, err := New(g, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		hw := int(g.Inputs[0].Type.Shape[2].Value)
		x := tensor.New(tensor.Float32, tensor.Shape{1, 3, hw, hw})
		rng := rand.New(rand.NewPCG(11, 12))
		for i := range tensor.Data[float32](x) {
			tensor.Data[float32](x)[i] = float32(rng.NormFloat64())
		}
		in := []*tensor.Tensor{x}
		alone, err := s.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		key := "lane " + fmt.Sprint([]tensor.Shape{x.Shape})
		if _, ok := s.plans[key]; ok {
			t.Fatalf("%s: a run alone used a lane", dir)
		}
		s.running.Add(1) // another run in progress
		got, err := s.Run(context.Background(), in)
		s.running.Add(-1)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.plans[key]; !ok {
			t.Errorf("%s: a run beside another did not run in a lane", dir)
		}
		if err := tensor.AllClose(got[0], alone[0], 0, 0); err != nil {
			t.Errorf("%s: a run in a lane beside another against one alone: %v", dir, err)
		}
		s.Close()
	}
}

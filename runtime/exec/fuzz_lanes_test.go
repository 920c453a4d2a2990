package exec

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// lanesGraph builds a model on input x [N,4,6,6] (N symbolic) of up to four nodes from the
// bytes, drawn from operators that keep batch rows apart and operators that mix them (softmax
// and reductions over the batch, transposes and reshapes that move it, concatenation along it,
// shapes read from it).
func lanesGraph(fb *fuzzBytes) *onnxpb.ModelProto {
	dim := func(d int64) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
	}
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
	g := &onnxpb.GraphProto{Name: proto.String("lanes"), Input: []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{batch, dim(4), dim(6), dim(6)}}}}}}}}
	r := rand.New(rand.NewPCG(uint64(fb.byte()), 1))
	konst := func(name string, shape tensor.Shape, v []int64) string {
		tp, _ := onnx.EncodeTensor(tensor.FromSlice(shape, v), name)
		g.Initializer = append(g.Initializer, tp)
		return name
	}
	fdata := func(name string, shape ...int) string {
		t := tensor.New(tensor.Float32, tensor.Shape(shape))
		for i := range tensor.Data[float32](t) {
			tensor.Data[float32](t)[i] = float32(r.NormFloat64())
		}
		tp, _ := onnx.EncodeTensor(t, name)
		g.Initializer = append(g.Initializer, tp)
		return name
	}
	attrInt := func(name string, v int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
	}
	attrInts := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
	}
	cur, rank := "x", 4 // rank of cur; its dims are [N, 4, 6, 6] at rank 4 and [N, 144] at rank 2
	node := func(k int, op string, in []string, attrs ...*onnxpb.AttributeProto) {
		out := fmt.Sprintf("v%d", k)
		g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String(out), OpType: proto.String(op), Input: in, Output: []string{out}, Attribute: attrs})
		cur = out
	}
	for k := range 1 + fb.intn(4) {
		switch c := fb.intn(14); {
		case c == 0 && rank == 4:
			node(k, "Conv", []string{cur, fdata(fmt.Sprintf("w%d", k), 4, 4, 3, 3)}, attrInts("pads", 1, 1, 1, 1))
		case c == 1:
			node(k, "Relu", []string{cur})
		case c == 2:
			node(k, "Softmax", []string{cur}, attrInt("axis", int64(fb.intn(rank)))) // axis 0 mixes rows
		case c == 3 && rank == 4:
			if fb.intn(2) == 0 {
				node(k, "Transpose", []string{cur}, attrInts("perm", 0, 1, 3, 2))
				break
			}
			// The batch moved to dim 1, a softmax over it, and back.
			node(k, "Transpose", []string{cur}, attrInts("perm", 1, 0, 2, 3))
			node(k+100, "Softmax", []string{cur}, attrInt("axis", 1))
			node(k+200, "Transpose", []string{cur}, attrInts("perm", 1, 0, 2, 3))
		case c == 4 && rank == 4:
			node(k, "Flatten", []string{cur}, attrInt("axis", 1))
			rank = 2
		case c == 5 && rank == 2:
			node(k, "Gemm", []string{cur, fdata(fmt.Sprintf("b%d", k), 144, 144)})
		case c == 6:
			// Axis 0 doubles the batch; others change the dims the cases assume: end here.
			node(k, "Concat", []string{cur, cur}, attrInt("axis", int64(fb.intn(rank))))
			return finish(g, cur)
		case c == 7 && rank == 4:
			switch fb.intn(3) {
			case 0:
				node(k, "Reshape", []string{cur, konst(fmt.Sprintf("r%d", k), tensor.Shape{2}, []int64{0, -1})})
			case 1:
				node(k, "Reshape", []string{cur, konst(fmt.Sprintf("r%d", k), tensor.Shape{2}, []int64{-1, 144})})
			default:
				// Rows of two items each, a softmax over both, then rows of one item again.
				node(k, "Reshape", []string{cur, konst(fmt.Sprintf("r%d", k), tensor.Shape{2}, []int64{-1, 288})})
				node(k+100, "Softmax", []string{cur}, attrInt("axis", 1))
				node(k+200, "Reshape", []string{cur, konst(fmt.Sprintf("r%d", k+200), tensor.Shape{2}, []int64{-1, 144})})
			}
			rank = 2
		case c == 8:
			m := fmt.Sprintf("m%d", k)
			axes := []int64{int64(fb.intn(rank))} // 0: the batch mean
			g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String(m), OpType: proto.String("ReduceMean"), Input: []string{cur},
				Output: []string{m}, Attribute: []*onnxpb.AttributeProto{attrInts("axes", axes...)}})
			node(k, "Sub", []string{cur, m})
		case c == 9 && rank == 4:
			// x.view(x.size(0), -1), or the batch's size as a slice bound along the channels.
			s, n, u := fmt.Sprintf("s%d", k), fmt.Sprintf("n%d", k), fmt.Sprintf("u%d", k)
			g.Node = append(g.Node,
				&onnxpb.NodeProto{Name: proto.String(s), OpType: proto.String("Shape"), Input: []string{cur}, Output: []string{s}},
				&onnxpb.NodeProto{Name: proto.String(n), OpType: proto.String("Gather"), Input: []string{s, konst(fmt.Sprintf("i%d", k), tensor.Shape{}, []int64{0})}, Output: []string{n}},
				&onnxpb.NodeProto{Name: proto.String(u), OpType: proto.String("Unsqueeze"), Input: []string{n, konst(fmt.Sprintf("a%d", k), tensor.Shape{1}, []int64{0})}, Output: []string{u}})
			if fb.intn(2) == 0 {
				sh := fmt.Sprintf("sh%d", k)
				g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String(sh), OpType: proto.String("Concat"),
					Input: []string{u, konst(fmt.Sprintf("m1%d", k), tensor.Shape{1}, []int64{-1})}, Output: []string{sh}, Attribute: []*onnxpb.AttributeProto{attrInt("axis", 0)}})
				node(k, "Reshape", []string{cur, sh})
				rank = 2
			} else {
				node(k, "Slice", []string{cur, konst(fmt.Sprintf("z%d", k), tensor.Shape{1}, []int64{0}), u, konst(fmt.Sprintf("ax%d", k), tensor.Shape{1}, []int64{1})})
				return finish(g, cur) // the channels now depend on the batch
			}
		case c == 10 && rank == 4:
			node(k, "GlobalAveragePool", []string{cur})
			return finish(g, cur)
		case c == 11:
			node(k, "Add", []string{cur, fdata(fmt.Sprintf("c%d", k), 1)})
		case c == 12 && rank == 4:
			node(k, "MaxPool", []string{cur}, attrInts("kernel_shape", 2, 2), attrInts("pads", 0, 0, 1, 1))
			return finish(g, cur)
		default:
			node(k, "Sigmoid", []string{cur})
		}
	}
	return finish(g, cur)
}

func finish(g *onnxpb.GraphProto, out string) *onnxpb.ModelProto {
	g.Output = []*onnxpb.ValueInfoProto{{Name: proto.String(out)}}
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
}

// FuzzLanes builds small graphs that keep batch rows apart or mix them, and runs batches of 2, 4
// and 6 on 2 threads in lanes (when plan.RowIndependent lets them) and whole: the outputs must
// agree, so a graph the analysis wrongly takes as row-independent fails.
func FuzzLanes(f *testing.F) {
	for _, seed := range [][]byte{{0}, {1, 2, 0, 3, 4}, {2, 3, 0, 4, 9, 1}, {3, 3, 1, 7, 1, 5, 2}, {4, 2, 9, 0, 6, 1}, {5, 2, 8, 0, 3}, {6, 1, 2, 0}, {7, 3, 7, 2}} {
		f.Add(seed)
	}
	reg := ops.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		m := lanesGraph(&fuzzBytes{b: data})
		g, err := graph.Import(m, "", reg)
		if err != nil {
			return
		}
		lanes, err := New(g, Options{Threads: 2, MaxMemory: 64 << 20})
		if err != nil {
			return
		}
		defer lanes.Close()
		whole, err := New(g, Options{Threads: 2, MaxMemory: 64 << 20, NoLanes: true})
		if err != nil {
			t.Fatalf("a session with lanes was made, one without failed: %v", err)
		}
		defer whole.Close()
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range []int{2, 4, 6} {
			x := tensor.New(tensor.Float32, tensor.Shape{n, 4, 6, 6})
			for i := range tensor.Data[float32](x) {
				tensor.Data[float32](x)[i] = float32(r.NormFloat64())
			}
			in := []*tensor.Tensor{x}
			want, errW := whole.Run(context.Background(), in)
			got, errL := lanes.Run(context.Background(), in)
			if rows, _ := lanes.Lanes([]tensor.Shape{x.Shape}); rows == nil {
				continue
			}
			if (errW == nil) != (errL == nil) {
				t.Fatalf("batch %d: whole err %v, lanes err %v", n, errW, errL)
			}
			if errW != nil {
				continue
			}
			for i := range want {
				if err := tensor.AllClose(got[i], want[i], 1e-4, 1e-5); err != nil {
					t.Fatalf("batch %d, output %d: lanes against whole: %v (graph %v)", n, i, err, nodeTypes(g))
				}
			}
		}
	})
}

func nodeTypes(g *graph.Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.OpType)
	}
	return out
}

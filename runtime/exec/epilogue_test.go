package exec

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// blockModel builds a model on input x [2,8,10,10] from nodes given as "Op in,in -> out" lines;
// weights w3 (8x8x3x3), w1 (8x8x1x1), wd (8x1x3x3, depthwise) and b (8), and the Clip bounds
// lo = 0, hi = 6, are initializers. The last node's output is y.
func blockModel(t *testing.T, opset int64, lines ...string) *graph.Graph {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	init := func(name string, shape tensor.Shape) *onnxpb.TensorProto {
		v := make([]float32, shape.Size())
		for i := range v {
			v[i] = float32(r.NormFloat64()) * 0.3
		}
		tp, err := onnx.EncodeTensor(tensor.FromSlice(shape, v), name)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	scalar := func(name string, v float32) *onnxpb.TensorProto {
		tp, err := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{}, []float32{v}), name)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	g := &onnxpb.GraphProto{Name: proto.String("block"),
		Initializer: []*onnxpb.TensorProto{init("w3", tensor.Shape{8, 8, 3, 3}), init("w1", tensor.Shape{8, 8, 1, 1}),
			init("wd", tensor.Shape{8, 1, 3, 3}), init("b", tensor.Shape{8}), scalar("lo", 0), scalar("hi", 6)},
		Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y")}}}
	var dims []*onnxpb.TensorShapeProto_Dimension
	for _, d := range []int64{2, 8, 10, 10} {
		dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	g.Input = []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}}
	ints := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
	}
	for i, line := range lines {
		op, rest, _ := strings.Cut(line, " ")
		ins, out, _ := strings.Cut(rest, " -> ")
		n := &onnxpb.NodeProto{Name: proto.String(op + string(rune('a'+i))), OpType: proto.String(op), Input: strings.Split(ins, ","), Output: []string{out}}
		if op == "Conv" {
			n.Attribute = []*onnxpb.AttributeProto{ints("pads", 1, 1, 1, 1)}
			switch n.Input[1] {
			case "w1":
				n.Attribute = nil
			case "wd":
				n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: proto.String("group"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(8)})
			}
		}
		if op == "ReduceMean" {
			n.Attribute = []*onnxpb.AttributeProto{ints("axes", 2, 3)}
		}
		g.Node = append(g.Node, n)
	}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}}}
	gr, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return gr
}

// TestFusedEpilogues runs the residual and activation patterns of ResNet, MobileNetV2/V3 and
// EfficientNet on the planned path (where the passes fuse them into FusedConv epilogues) and on
// the reference path, and checks that they agree and that the fusions happened.
func TestFusedEpilogues(t *testing.T) {
	cases := []struct {
		name   string
		opset  int64
		lines  []string
		fused  int    // FusedConv nodes after the passes
		kernel string // a step kernel the plan must have
	}{
		{"ResNet basic block", 13, []string{"Conv x,w3,b -> c1", "Relu c1 -> r1", "Conv r1,w3 -> c2", "Add c2,x -> s", "Relu s -> y"}, 2, ""},
		{"residual first operand, 1x1", 13, []string{"Conv x,w1,b -> c", "Add x,c -> y"}, 1, ""},
		{"MobileNetV2 ReLU6 depthwise + project + residual", 13, []string{"Conv x,w1,b -> e", "Clip e,lo,hi -> e6", "Conv e6,wd,b -> d", "Clip d,lo,hi -> d6", "Conv d6,w1 -> p", "Add p,x -> y"}, 3, "depthwise"},
		{"HardSwish and HardSigmoid", 14, []string{"Conv x,w3,b -> c", "HardSwish c -> h", "Conv h,wd,b -> d", "HardSigmoid d -> y"}, 2, ""},
		{"SiLU and a squeeze-excitation gate", 13, []string{"Conv x,w1,b -> c", "Sigmoid c -> s", "Mul c,s -> a", "ReduceMean a -> m", "Conv m,w1,b -> g", "Sigmoid g -> gs", "Mul a,gs -> y"}, 2, "global-avgpool"},
	}
	x := make([]float32, 2*8*10*10)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	in := []*tensor.Tensor{tensor.FromSlice(tensor.Shape{2, 8, 10, 10}, x)}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := blockModel(t, c.opset, c.lines...)
			ref, err := New(g, Options{Reference: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			want, err := ref.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(g, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Graph().OpHistogram()["FusedConv"]; got != c.fused {
				t.Errorf("%d FusedConv nodes after the passes, want %d (%v)", got, c.fused, s.Graph().OpHistogram())
			}
			p, err := s.Plan([]tensor.Shape{{2, 8, 10, 10}})
			if err != nil {
				t.Fatal(err)
			}
			found := c.kernel == ""
			for _, st := range p.Steps() {
				if st.Kernel == plan.KernelReference {
					t.Errorf("step %s (%s) runs on the reference path: %s", st.Node, st.Op, st.Why)
				}
				found = found || st.Kernel == c.kernel
			}
			if !found {
				t.Errorf("no step runs %q", c.kernel)
			}
			got, err := s.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if err := tensor.AllClose(got[0], want[0], 1e-4, 1e-5); err != nil {
				t.Error(err)
			}
		})
	}
}

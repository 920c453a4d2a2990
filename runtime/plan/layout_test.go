package plan

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/device/cpudev"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestLayoutKernels runs Transpose and Slice on the CPU device's strided-copy kernel and checks
// the outputs equal the reference kernels' exactly, for the shapes CNN exports use (ShuffleNet's
// channel shuffle and split) and for awkward ones (negative steps, every dim permuted, size-1
// dims, ends past the end).
func TestLayoutKernels(t *testing.T) {
	i64 := func(v ...int64) *tensor.Tensor { return tensor.FromSlice(tensor.Shape{len(v)}, v) }
	cases := []struct {
		name   string
		op     string
		x      tensor.Shape
		consts []*tensor.Tensor // Slice: starts, ends, axes, steps
		attrs  []*onnxpb.AttributeProto
		kernel string
	}{
		{"channel shuffle", "Transpose", tensor.Shape{1, 2, 58, 7, 7}, nil, []*onnxpb.AttributeProto{ints("perm", 0, 2, 1, 3, 4)}, "transpose"},
		{"every dim", "Transpose", tensor.Shape{2, 3, 4, 5}, nil, []*onnxpb.AttributeProto{ints("perm", 3, 1, 0, 2)}, "transpose"},
		{"reverse", "Transpose", tensor.Shape{3, 1, 4}, nil, nil, "transpose"},
		{"channel split", "Slice", tensor.Shape{2, 116, 7, 7}, []*tensor.Tensor{i64(58), i64(116), i64(1), i64(1)}, nil, "slice"},
		{"end past the end", "Slice", tensor.Shape{1, 10, 4, 4}, []*tensor.Tensor{i64(0), i64(1 << 40), i64(1), i64(1)}, nil, "slice"},
		{"steps", "Slice", tensor.Shape{2, 9, 8}, []*tensor.Tensor{i64(1, 7), i64(8, 0), i64(1, 2), i64(3, -2)}, nil, "slice"},
		{"two axes", "Slice", tensor.Shape{3, 6, 5, 5}, []*tensor.Tensor{i64(1, 1), i64(3, 4), i64(0, 2), i64(1, 1)}, nil, "slice"},
	}
	dev := cpudev.New(cpudev.Config{Threads: 1})
	defer dev.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := layoutGraph(t, tc.op, tc.x, tc.consts, tc.attrs)
			p, err := Compile(g, []tensor.Shape{tc.x}, dev, membudget.Budget{})
			if err != nil {
				t.Fatal(err)
			}
			if s := p.Steps()[0]; s.Kernel != tc.kernel {
				t.Fatalf("kernel %q (%s), want %q", s.Kernel, s.Why, tc.kernel)
			}
			x := tensor.New(tensor.Float32, tc.x)
			for i := range tensor.Data[float32](x) {
				tensor.Data[float32](x)[i] = float32(i)
			}
			got, err := p.Run(context.Background(), []*tensor.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			n := g.Nodes[0]
			in := []*tensor.Tensor{x}
			for _, v := range n.Inputs[1:] {
				in = append(in, v.Const)
			}
			want, err := ref.Kernels()[tc.op](n.Op, in, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !got[0].Shape.Equal(want[0].Shape) {
				t.Fatalf("shape %v, reference %v", got[0].Shape, want[0].Shape)
			}
			a, b := tensor.Data[float32](got[0]), tensor.Data[float32](want[0])
			for i := range b {
				if a[i] != b[i] {
					t.Fatalf("element %d = %g, reference %g", i, a[i], b[i])
				}
			}
		})
	}
}

// layoutGraph builds a one-node graph of op on a float32 input x, with consts as initializer
// inputs after x.
func layoutGraph(t *testing.T, op string, xs tensor.Shape, consts []*tensor.Tensor, attrs []*onnxpb.AttributeProto) *graph.Graph {
	t.Helper()
	g := &onnxpb.GraphProto{Name: proto.String(op), Input: []*onnxpb.ValueInfoProto{floatInfo("x", xs)}}
	in := []string{"x"}
	for i, c := range consts {
		name := string(rune('a' + i))
		tp, err := onnx.EncodeTensor(c, name)
		if err != nil {
			t.Fatal(err)
		}
		g.Initializer = append(g.Initializer, tp)
		in = append(in, name)
	}
	return importNode(t, g, op, in, attrs)
}

package exec

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// fuzzBytes hands out the fuzzer's bytes as small decisions; past the end it gives zeros.
type fuzzBytes struct {
	b []byte
	i int
}

func (f *fuzzBytes) byte() byte {
	if f.i >= len(f.b) {
		return 0
	}
	f.i++
	return f.b[f.i-1]
}

// intn returns a value in [0, n).
func (f *fuzzBytes) intn(n int) int { return int(f.byte()) % n }

// dim returns a size: mostly small, sometimes 0, sometimes huge (up to 2^40), sometimes negative.
func (f *fuzzBytes) dim() int64 {
	switch f.intn(16) {
	case 0:
		return 0
	case 1:
		return int64(1) << (20 + f.intn(21))
	case 2:
		return -int64(f.intn(3))
	default:
		return int64(1 + f.intn(9))
	}
}

// fuzzGraph builds a model of up to three nodes on input x from the bytes: ops of the CNN set
// with shapes and attributes that are mostly sane and sometimes absurd.
func fuzzGraph(fb *fuzzBytes) *onnxpb.ModelProto {
	rank := 1 + fb.intn(4)
	dims := []*onnxpb.TensorShapeProto_Dimension{}
	for range rank {
		d := int64(1 + fb.intn(12))
		dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	g := &onnxpb.GraphProto{Name: proto.String("fuzz"), Input: []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}}}
	ints := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
	}
	konst := func(name string, v []int64) string {
		tp, _ := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{len(v)}, v), name)
		g.Initializer = append(g.Initializer, tp)
		return name
	}
	fdata := func(name string, shape ...int) string {
		t := tensor.New(tensor.Float32, tensor.Shape(shape))
		for i := range tensor.Data[float32](t) {
			tensor.Data[float32](t)[i] = float32(fb.intn(7)) - 3
		}
		tp, _ := onnx.EncodeTensor(t, name)
		g.Initializer = append(g.Initializer, tp)
		return name
	}
	many := func(n int) []int64 {
		v := make([]int64, n)
		for i := range v {
			v[i] = fb.dim()
		}
		return v
	}
	cur := "x"
	for k := range 1 + fb.intn(3) {
		out := fmt.Sprintf("v%d", k)
		n := &onnxpb.NodeProto{Name: proto.String(fmt.Sprintf("n%d", k)), Output: []string{out}}
		switch fb.intn(10) {
		case 0:
			n.OpType, n.Input = proto.String("ConstantOfShape"), []string{konst(fmt.Sprintf("s%d", k), many(1+fb.intn(3)))}
		case 1:
			n.OpType, n.Input = proto.String("Pad"), []string{cur, konst(fmt.Sprintf("p%d", k), many(2*rank))}
		case 2:
			n.OpType, n.Input = proto.String("Reshape"), []string{cur, konst(fmt.Sprintf("r%d", k), many(1+fb.intn(4)))}
		case 3:
			kh := 1 + fb.intn(3)
			n.OpType, n.Input = proto.String("Conv"), []string{cur, fdata(fmt.Sprintf("w%d", k), 1+fb.intn(3), 1+fb.intn(3), kh, kh)}
			n.Attribute = []*onnxpb.AttributeProto{ints("pads", many(4)...), ints("strides", 1+int64(fb.intn(3)), fb.dim())}
		case 4:
			n.OpType, n.Input = proto.String("MaxPool"), []string{cur}
			n.Attribute = []*onnxpb.AttributeProto{ints("kernel_shape", fb.dim(), fb.dim()), ints("pads", many(4)...)}
		case 5:
			n.OpType, n.Input = proto.String("AveragePool"), []string{cur}
			n.Attribute = []*onnxpb.AttributeProto{ints("kernel_shape", fb.dim(), fb.dim()), ints("strides", fb.dim(), fb.dim())}
		case 6:
			n.OpType, n.Input = proto.String("Concat"), []string{cur, cur, cur}
			n.Attribute = []*onnxpb.AttributeProto{{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(fb.intn(9)) - 4)}}
		case 7:
			n.OpType, n.Input = proto.String("Slice"), []string{cur, konst(fmt.Sprintf("st%d", k), many(1)), konst(fmt.Sprintf("en%d", k), many(1))}
		case 8:
			n.OpType, n.Input = proto.String("Transpose"), []string{cur}
			n.Attribute = []*onnxpb.AttributeProto{ints("perm", many(rank)...)}
		default:
			n.OpType, n.Input = proto.String("Gemm"), []string{cur, fdata(fmt.Sprintf("b%d", k), 1+fb.intn(12), 1+fb.intn(4))}
		}
		g.Node = append(g.Node, n)
		cur = out
	}
	g.Output = []*onnxpb.ValueInfoProto{{Name: proto.String(cur)}}
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
}

// FuzzGraphBudget builds small graphs of random CNN operators with random, sometimes absurd,
// shapes and attributes (pads and dims up to 2^40, negative sizes, zero sizes), and runs each on
// the planned and the reference path under a 4 MiB budget (small, so that every input runs in
// milliseconds and the fuzzer never waits on one): every outcome must be outputs or an
// error, never a panic, and no run may allocate much more than the budget.
func FuzzGraphBudget(f *testing.F) {
	for _, seed := range [][]byte{{0}, {1, 2, 3, 4, 5, 6}, {3, 0, 1, 1, 16, 2}, {0, 1, 0, 1, 20}, {9, 9, 9, 9, 9, 9, 9}} {
		f.Add(seed)
	}
	const budget = 4 << 20
	reg := ops.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := &fuzzBytes{b: data}
		m := fuzzGraph(fb)
		g, err := graph.Import(m, "", reg)
		if err != nil {
			return
		}
		shape, ok := g.Inputs[0].Type.Static()
		if !ok {
			return
		}
		x := tensor.New(tensor.Float32, shape)
		for _, reference := range []bool{false, true} {
			s, err := New(g, Options{MaxMemory: budget, Reference: reference, Threads: 1})
			if err != nil {
				continue
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _ = s.Run(context.Background(), []*tensor.Tensor{x})
			runtime.ReadMemStats(&after)
			s.Close()
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8*budget {
				t.Fatalf("reference=%v: a run allocated %d MiB under a %d MiB budget", reference, grew>>20, budget>>20)
			}
		}
	})
}

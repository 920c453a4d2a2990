package graph

import (
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"google.golang.org/protobuf/proto"
)

// statsInput declares a float32 value with int (known) or string (symbolic) dims.
func statsInput(name string, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch d := d.(type) {
		case int:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
		case string:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: shape}}}}
}

func statsInit(t *testing.T, name string, x *tensor.Tensor) *onnxpb.TensorProto {
	tp, err := onnx.EncodeTensor(x, name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func statsNode(name, op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func intsAttr(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// statsModel is x[batch,3,8,8] -> Conv 3x3 pad 1 (4 ch) -> depthwise Conv 3x3 pad 1 (group 4)
// -> Reshape [0,-1] -> Gemm (transB, 10 out) -> MatMul [10,5] -> y[batch,5].
func statsModel(t *testing.T) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("stats"),
			Input:  []*onnxpb.ValueInfoProto{statsInput("x", "batch", 3, 8, 8)},
			Output: []*onnxpb.ValueInfoProto{statsInput("y", "batch", 5)},
			Initializer: []*onnxpb.TensorProto{
				statsInit(t, "conv1.weight", tensor.New(tensor.Float32, tensor.Shape{4, 3, 3, 3})),
				statsInit(t, "conv2.weight", tensor.New(tensor.Float32, tensor.Shape{4, 1, 3, 3})),
				statsInit(t, "shape", tensor.FromSlice(tensor.Shape{2}, []int64{0, -1})),
				statsInit(t, "fc.weight", tensor.New(tensor.Float32, tensor.Shape{10, 256})),
				statsInit(t, "proj", tensor.New(tensor.Float32, tensor.Shape{10, 5})),
			},
			Node: []*onnxpb.NodeProto{
				statsNode("conv1", "Conv", []string{"x", "conv1.weight"}, []string{"a"}, intsAttr("pads", 1, 1, 1, 1)),
				statsNode("conv2", "Conv", []string{"a", "conv2.weight"}, []string{"b"}, intsAttr("pads", 1, 1, 1, 1), intAttr("group", 4)),
				statsNode("flat", "Reshape", []string{"b", "shape"}, []string{"c"}),
				statsNode("fc", "Gemm", []string{"c", "fc.weight"}, []string{"d"}, intAttr("transB", 1)),
				statsNode("proj", "MatMul", []string{"d", "proj"}, []string{"y"}),
			},
		},
	}
}

func TestStatsHandBuilt(t *testing.T) {
	g, err := Import(statsModel(t), "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	s := g.Stats()
	// Parameters: 108 + 36 + 2560 + 50 float elements; bytes add the two int64s of "shape".
	if s.Parameters != 2754 || s.ParameterBytes != 2754*4+16 {
		t.Errorf("parameters %d (%d bytes), want 2754 (11032 bytes)", s.Parameters, s.ParameterBytes)
	}
	if s.Nodes != 5 || s.Ops["Conv"] != 2 || s.Ops["Gemm"] != 1 {
		t.Errorf("nodes %d, ops %v", s.Nodes, s.Ops)
	}
	// The batch dim is symbolic: no MAC count, and the reason names the first Conv.
	if s.MACsKnown || !strings.Contains(s.MACsUnknown, `"conv1"`) || !strings.Contains(s.MACsUnknown, "batch") {
		t.Errorf("symbolic batch: MACsKnown %v, reason %q", s.MACsKnown, s.MACsUnknown)
	}

	for _, batch := range []int{1, 3} {
		// SetInputShapes replaces the declared type, so each batch size needs a fresh import.
		if g, err = Import(statsModel(t), "", ops.Default()); err != nil {
			t.Fatal(err)
		}
		if err := g.SetInputShapes(map[string]tensor.Shape{"x": {batch, 3, 8, 8}}); err != nil {
			t.Fatal(err)
		}
		s = g.Stats()
		// conv1: 4*8*8 outputs * 3*3*3 = 6912; conv2 (depthwise): 256 * 1*3*3 = 2304;
		// Gemm: M*N*K = 1*10*256 = 2560; MatMul: 1*5 outputs * K=10 = 50. All scale with batch.
		want := map[string]int64{"Conv": 9216, "Gemm": 2560, "MatMul": 50}
		if !s.MACsKnown || s.MACs != int64(batch)*11826 {
			t.Errorf("batch %d: MACs %d (known %v, %s), want %d", batch, s.MACs, s.MACsKnown, s.MACsUnknown, batch*11826)
		}
		for op, m := range want {
			if s.MACsByOp[op] != int64(batch)*m {
				t.Errorf("batch %d: %s MACs %d, want %d", batch, op, s.MACsByOp[op], int64(batch)*m)
			}
		}
	}
}

func TestStatsOverflowHelpers(t *testing.T) {
	if _, ok := mul(1<<40, 1<<30); ok {
		t.Error("mul(2^40, 2^30) fits int64")
	}
	if p, ok := mul(1<<31, 1<<31); !ok || p != 1<<62 {
		t.Errorf("mul(2^31, 2^31) = %d, %v", p, ok)
	}
	if _, ok := add(1<<62, 1<<62); ok {
		t.Error("add(2^62, 2^62) fits int64")
	}
}

// TestStatsDenseNetTiny checks the shared tiny DenseNet-BC (2 blocks x 2 layers, k=4, stem 8,
// 16x16 input) against a hand count. Conv MACs = out_channels*H*W * in_channels*kh*kw:
//
//	stem 3x3 3->8 @16x16:            8*256*27  =  55296
//	block 1 @16x16, layer 1 (in 8):  1x1 8->16 =  32768, 3x3 16->4 = 147456
//	                layer 2 (in 12): 1x1 12->16 = 49152, 3x3 16->4 = 147456
//	transition 1x1 16->8 @16x16:     8*256*16  =  32768
//	block 2 @8x8,   layer 1 (in 8):  1x1 8->16 =   8192, 3x3 16->4 =  36864
//	                layer 2 (in 12): 1x1 12->16 = 12288, 3x3 16->4 =  36864
//	classifier Gemm 16->5:                                               80
//
// for a total of 559104 Conv + 80 Gemm = 559184 MACs per image. meta.json gives 3725 float
// initializer elements and no integer initializers.
func TestStatsDenseNetTiny(t *testing.T) {
	g, err := Load(testenv.Shared(t, "models/densenet_tiny/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetInputShapes(map[string]tensor.Shape{"input": {1, 3, 16, 16}}); err != nil {
		t.Fatal(err)
	}
	s := g.Stats()
	if s.Parameters != 3725 || s.ParameterBytes != 3725*4 {
		t.Errorf("parameters %d (%d bytes), want 3725 (14900 bytes)", s.Parameters, s.ParameterBytes)
	}
	if !s.MACsKnown || s.MACs != 559184 || s.MACsByOp["Conv"] != 559104 || s.MACsByOp["Gemm"] != 80 {
		t.Errorf("MACs %d %v (known %v: %s), want 559184 (Conv 559104, Gemm 80)", s.MACs, s.MACsByOp, s.MACsKnown, s.MACsUnknown)
	}
	if s.Nodes != 38 || s.Ops["Conv"] != 10 || s.Ops["BatchNormalization"] != 6 {
		t.Errorf("nodes %d, ops %v", s.Nodes, s.Ops)
	}
}

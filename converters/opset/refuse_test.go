package opset

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestRefusals checks that conversions with no exact equivalent fail with an ErrUnconvertible
// error naming the node, the operator and the reason.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name     string
		from, to int
		build    func(t *testing.T, opset int) *onnxpb.ModelProto
		want     []string // fragments of the message
	}{
		{"Squeeze/runtime-axes", 13, 12,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 1).input("axes", tensor.Int64, 1).output("y").
					node("Squeeze", ins("x", "axes"), ins("y")).build()
			},
			[]string{`node "Squeeze_y" (Squeeze)`, `axes input "axes" is computed at run time`, "opset 13 to 12"}},
		{"Unsqueeze/overridable-initializer", 13, 11,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				// An initializer also listed as a graph input is a default the caller may replace.
				b := newModel(t, opset).input("x", tensor.Float32, 2).ints("axes", 0).output("y").
					node("Unsqueeze", ins("x", "axes"), ins("y"))
				b.m.Graph.Input = append(b.m.Graph.Input, &onnxpb.ValueInfoProto{Name: proto.String("axes"), Type: tensorType(tensor.Int64, 1)})
				return b.build()
			},
			[]string{"(Unsqueeze)", "computed at run time"}},
		{"ReduceMean/runtime-axes", 18, 17,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).input("axes", tensor.Int64, 1).output("y").
					node("ReduceMean", ins("x", "axes"), ins("y")).build()
			},
			[]string{"(ReduceMean)", `axes input "axes"`}},
		{"Split/runtime-sizes", 13, 11,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 4).input("s", tensor.Int64, 2).output("a", "b").
					node("Split", ins("x", "s"), ins("a", "b")).build()
			},
			[]string{"(Split)", `split input "s"`}},
		{"Softmax/unknown-rank", 13, 11,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				b := newModel(t, opset).output("y").node("Softmax", ins("x"), ins("y"), intAttr("axis", 1))
				b.m.Graph.Input = append(b.m.Graph.Input, &onnxpb.ValueInfoProto{Name: proto.String("x"),
					Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1)}}}})
				return b.build()
			},
			[]string{"(Softmax)", "rank is unknown"}},
		{"Dropout/training", 12, 11,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2).init("train", tensor.Scalar(true)).output("y").
					node("Dropout", ins("x", "", "train"), ins("y")).build()
			},
			[]string{"(Dropout)", "training_mode is true"}},
		{"Dropout/runtime-training-mode", 13, 11,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2).input("train", tensor.Bool).output("y").
					node("Dropout", ins("x", "", "train"), ins("y")).build()
			},
			[]string{"(Dropout)", `training_mode input "train" is computed at run time`}},
		{"BatchNormalization/saved-mean-used", 13, 14,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				m := bnModel(4, false)(t, opset)
				m.Graph.Output = append(m.Graph.Output, &onnxpb.ValueInfoProto{Name: proto.String("saved_mean")})
				return m
			},
			[]string{"(BatchNormalization)", `output "saved_mean"`}},
		{"BatchNormalization/mixed-types", 15, 14,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float16, 1, 2, 2).output("y").
					init("s", tensor.FromSlice(tensor.Shape{2}, []float32{1, 1})).
					init("b", tensor.FromSlice(tensor.Shape{2}, []float32{0, 0})).
					init("m", tensor.FromSlice(tensor.Shape{2}, []float32{0, 0})).
					init("v", tensor.FromSlice(tensor.Shape{2}, []float32{1, 1})).
					node("BatchNormalization", ins("x", "s", "b", "m", "v"), ins("y")).build()
			},
			[]string{"(BatchNormalization)", `input 1 "s" is float32 while X is float16`}},
		{"Reshape/allowzero-with-zero", 14, 13,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 0, 3).ints("s", 3, 0).output("y").
					node("Reshape", ins("x", "s"), ins("y"), intAttr("allowzero", 1)).build()
			},
			[]string{"(Reshape)", "allowzero=1 and shape [3 0] holds a 0"}},
		{"Reshape/allowzero-runtime-shape", 21, 12,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 6).input("s", tensor.Int64, 2).output("y").
					node("Reshape", ins("x", "s"), ins("y"), intAttr("allowzero", 1)).build()
			},
			[]string{"(Reshape)", `shape input "s" computed at run time`}},
		{"Pad/wrap", 19, 18,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 3).ints("p", 1, 1).output("y").
					node("Pad", ins("x", "p"), ins("y"), strAttr("mode", "wrap")).build()
			},
			[]string{"(Pad)", `mode "wrap" exists only from opset 19`}},
		{"Pad/runtime-axes", 18, 13,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 3).input("a", tensor.Int64, 1).ints("p", 1, 1).output("y").
					node("Pad", ins("x", "p", "", "a"), ins("y")).build()
			},
			[]string{"(Pad)", `axes input "a" is computed at run time`}},
		{"Pad/runtime-pads-with-axes", 18, 13,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 3).input("p", tensor.Int64, 2).ints("a", 0).output("y").
					node("Pad", ins("x", "p", "", "a"), ins("y")).build()
			},
			[]string{"(Pad)", `pads input "p" is computed at run time`}},
		{"AveragePool/dilations", 19, 18,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 1, 1, 5, 5).output("y").
					node("AveragePool", ins("x"), ins("y"), intsAttr("kernel_shape", []int64{2, 2}), intsAttr("dilations", []int64{2, 1})).build()
			},
			[]string{"(AveragePool)", "dilations [2 1]"}},
		{"Loss/before-12", 13, 11,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 3, 5).input("l", tensor.Int64, 3).output("y").
					node("NegativeLogLikelihoodLoss", ins("x", "l"), ins("y")).build()
			},
			[]string{"(NegativeLogLikelihoodLoss)", "does not exist before opset 12"}},

		{"Identity/sequence", 16, 13,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				seq := &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{ElemType: tensorType(tensor.Float32, 2)}}}
				b := newModel(t, opset).output("y").node("Identity", ins("x"), ins("y"))
				b.m.Graph.Input = append(b.m.Graph.Input, &onnxpb.ValueInfoProto{Name: proto.String("x"), Type: seq})
				return b.build()
			},
			[]string{"(Identity)", `input 0 "x" is a sequence, which Identity takes only from opset 14`}},

		// Types the target version does not accept.
		{"Relu/int32", 14, 13, typedModel("Relu", tensor.Int32),
			[]string{"(Relu)", `input 0 "x" is int32, which Relu accepts only from opset 14`}},
		{"Add/int8", 14, 13, typedModel("Add", tensor.Int8),
			[]string{"(Add)", "int8, which Add accepts only from opset 14"}},
		{"Add/bfloat16", 13, 12, typedModel("Add", tensor.BFloat16),
			[]string{"(Add)", "bfloat16, which Add accepts only from opset 13"}},
		{"HardSwish/bfloat16", 22, 13, typedModel("HardSwish", tensor.BFloat16),
			[]string{"(HardSwish)", "bfloat16, which HardSwish accepts only from opset 22"}},
		{"HardSigmoid/bfloat16", 22, 21, typedModel("HardSigmoid", tensor.BFloat16),
			[]string{"(HardSigmoid)", "bfloat16, which HardSigmoid accepts only from opset 22"}},
		{"Clip/int32", 12, 11, typedModel("Clip", tensor.Int32),
			[]string{"(Clip)", "accepts only from opset 12"}},
		{"MaxPool/uint8", 12, 11,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Uint8, 1, 1, 4, 4).output("y").
					node("MaxPool", ins("x"), ins("y"), intsAttr("kernel_shape", []int64{2, 2})).build()
			},
			[]string{"(MaxPool)", "uint8, which MaxPool accepts only from opset 12"}},
		{"Conv/bfloat16", 22, 21,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.BFloat16, 1, 1, 3, 3).input("w", tensor.BFloat16, 1, 1, 2, 2).output("y").
					node("Conv", ins("x", "w"), ins("y")).build()
			},
			[]string{"(Conv)", "bfloat16, which Conv accepts only from opset 22"}},
		{"Cast/to-bfloat16", 13, 12,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2).output("y").
					node("Cast", ins("x"), ins("y"), intAttr("to", int64(tensor.BFloat16))).build()
			},
			[]string{"(Cast)", "the target type (to) is bfloat16"}},
		{"ConstantOfShape/bfloat16", 20, 19,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				v := &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.BFloat16)), Dims: []int64{1}, RawData: []byte{0x80, 0x3f}}
				return newModel(t, opset).ints("shape", 2).output("y").
					node("ConstantOfShape", ins("shape"), ins("y"), tensorAttr("value", v)).build()
			},
			[]string{"(ConstantOfShape)", "the value is bfloat16, which ConstantOfShape accepts only from opset 20"}},
		{"Constant/bfloat16", 13, 12,
			func(t *testing.T, opset int) *onnxpb.ModelProto {
				v := &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.BFloat16)), Dims: []int64{1}, RawData: []byte{0x80, 0x3f}}
				return newModel(t, opset).output("y").node("Constant", nil, ins("y"), tensorAttr("value", v)).build()
			},
			[]string{"(Constant)", "bfloat16"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convert(t, tc.build(t, tc.from), tc.to)
			wantRefusal(t, err, tc.want...)
		})
	}
}

// typedModel builds op on inputs of type dt (Add takes two, Clip and Relu one).
func typedModel(op string, dt tensor.DType) func(*testing.T, int) *onnxpb.ModelProto {
	return func(t *testing.T, opset int) *onnxpb.ModelProto {
		b := newModel(t, opset).input("x", dt, 2, 3).output("y")
		if op == "Add" {
			return b.input("z", dt, 3).node(op, ins("x", "z"), ins("y")).build()
		}
		return b.node(op, ins("x"), ins("y")).build()
	}
}

func TestUnsupportedOperator(t *testing.T) {
	m := newModel(t, 13).input("x", tensor.Float32, 2).output("y").node("Tanh", ins("x"), ins("y")).build()
	_, err := Convert(m, 11)
	if !errors.Is(err, ops.ErrUnsupportedOp) || !strings.Contains(err.Error(), `node "Tanh_y" (Tanh)`) {
		t.Fatalf("got %v, want ErrUnsupportedOp naming the node", err)
	}
}

func TestUnnamedNodeInMessage(t *testing.T) {
	m := newModel(t, 13).input("x", tensor.Float32, 2, 1).input("a", tensor.Int64, 1).output("y").
		node("Squeeze", ins("x", "a"), ins("y")).build()
	m.Graph.Node[0].Name = nil
	_, err := Convert(m, 11)
	wantRefusal(t, err, `node #0 (Squeeze, output "y")`)
}

func TestOpsetBounds(t *testing.T) {
	m := newModel(t, 13).input("x", tensor.Float32, 2).output("y").node("Relu", ins("x"), ins("y")).build()
	for _, target := range []int{10, 22} {
		_, err := Convert(m, target)
		wantRefusal(t, err, "outside 11..21")
	}
	old := newModel(t, 10).input("x", tensor.Float32, 2).output("y").node("Relu", ins("x"), ins("y")).build()
	_, err := Convert(old, 13)
	wantRefusal(t, err, "default-domain opset 10 is outside 11..25")
	if _, err := Convert(nil, 13); !errors.Is(err, ErrUnconvertible) {
		t.Errorf("nil model: %v", err)
	}
}

// TestHeader checks opset_import and ir_version: raised when the target needs it, never lowered,
// other domains kept, and the "ai.onnx" spelling accepted.
func TestHeader(t *testing.T) {
	m := newModel(t, 13).input("x", tensor.Float32, 2).output("y").node("Relu", ins("x"), ins("y")).build()
	m.OpsetImport[0].Domain = proto.String("ai.onnx")
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.example"), Version: proto.Int64(3)})
	for _, tc := range []struct {
		target int
		ir     int64
	}{{11, 7}, {13, 7}, {14, 7}, {15, 8}, {18, 8}, {19, 9}, {20, 9}, {21, 10}} {
		out, err := convert(t, m, tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if out.GetIrVersion() != tc.ir {
			t.Errorf("opset %d: ir_version %d, want %d", tc.target, out.GetIrVersion(), tc.ir)
		}
		if len(out.OpsetImport) != 2 || out.OpsetImport[1].GetVersion() != 3 {
			t.Errorf("opset %d: opset_import %v, want the other domain kept", tc.target, out.OpsetImport)
		}
	}
}

// TestOtherDomains checks that nodes of other domains are left as they are, and that values they
// produce do not stop the rules that need types elsewhere.
func TestOtherDomains(t *testing.T) {
	m := newModel(t, 13).input("x", tensor.Float32, 2, 3, 4).output("y").
		node("Softmax", ins("x"), ins("s"), intAttr("axis", 1)).build()
	m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{Name: proto.String("custom"), OpType: proto.String("Frobnicate"),
		Domain: proto.String("com.example"), Input: ins("s"), Output: ins("y"),
		Attribute: []*onnxpb.AttributeProto{intAttr("k", 1)}})
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.example"), Version: proto.Int64(1)})
	out, err := convert(t, m, 11)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeOps(out); got != "Transpose,Softmax,Transpose,Frobnicate" {
		t.Errorf("ops %s", got)
	}
	custom := out.Graph.Node[3]
	if !proto.Equal(custom, m.Graph.Node[1]) {
		t.Errorf("the com.example node changed: %v", custom)
	}
}

// TestFreshNames checks that created values never reuse a name the model has.
func TestFreshNames(t *testing.T) {
	m := newModel(t, 11).input("x", tensor.Float32, 2, 1).output("y", "Squeeze_y_axes_1").
		node("Squeeze", ins("x"), ins("y"), intsAttr("axes", []int64{1})).
		node("Identity", ins("x"), ins("Squeeze_y_axes_1")).build()
	out, err := convert(t, m, 13)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, tp := range out.Graph.Initializer {
		seen[tp.GetName()] = "initializer"
	}
	for _, n := range out.Graph.Node {
		for _, o := range n.Output {
			if prev, dup := seen[o]; dup {
				t.Errorf("name %q is used by a node output and an %s", o, prev)
			}
			seen[o] = "output"
		}
	}
	in := feeds(t, m, 2)
	sameOutputs(t, "converted", run(t, out, in), run(t, m, in))
}

// TestSameOpset checks that converting to the model's own opset changes nothing but a too-low
// ir_version.
func TestSameOpset(t *testing.T) {
	m := newModel(t, 13).input("x", tensor.Float32, 2).output("y").node("Tanh", ins("x"), ins("y")).build()
	out, err := convert(t, m, 13)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out, m) {
		t.Errorf("same-opset conversion changed the model")
	}
}

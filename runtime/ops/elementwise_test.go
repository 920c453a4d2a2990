package ops

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ewNode builds a node of the default domain with nIn present inputs.
func ewNode(op string, opset int, attrs Attributes, nIn, nOut int) *Node {
	in := make([]bool, nIn)
	for i := range in {
		in[i] = true
	}
	return &Node{Name: "n", OpType: op, Opset: opset, Attrs: attrs, Inputs: in, NumOutputs: nOut}
}

func ewInt(v int64) Attribute       { return Attribute{Kind: AttrInt, Int: v} }
func ewFloat(v float32) Attribute   { return Attribute{Kind: AttrFloat, Float: v} }
func ewString(v string) Attribute   { return Attribute{Kind: AttrString, String: v} }
func ewInts(v ...int64) Attribute   { return Attribute{Kind: AttrInts, Ints: v} }
func ewArg(t Type) *Arg             { return &Arg{Type: t} }
func ewConst(t *tensor.Tensor) *Arg { return &Arg{Type: TypeOf(t), Const: t} }

// ewT builds a type from a dtype and dims: ints are known sizes, strings symbolic names, "?"
// unknown.
func ewT(d tensor.DType, dims ...any) Type {
	t := Type{DType: d, Shape: []Dim{}}
	for _, x := range dims {
		switch v := x.(type) {
		case int:
			t.Shape = append(t.Shape, Known(int64(v)))
		case string:
			if v == "?" {
				t.Shape = append(t.Shape, Unknown())
			} else {
				t.Shape = append(t.Shape, Symbolic(v))
			}
		}
	}
	return t
}

func TestElementwiseDecode(t *testing.T) {
	reg := NewRegistry(elementwiseSchemas()...)
	cases := []struct {
		name    string
		node    *Node
		want    Op
		wantErr error
		errText string
	}{
		{"Add-14", ewNode("Add", 14, nil, 2, 1), &Arith{Kind: ArithAdd}, nil, ""},
		{"Sub-7 ignores legacy attrs", ewNode("Sub", 7, Attributes{"broadcast": ewInt(1)}, 2, 1), &Arith{Kind: ArithSub}, nil, ""},
		{"Add-6 legacy axis", ewNode("Add", 6, Attributes{"broadcast": ewInt(1), "axis": ewInt(1)}, 2, 1),
			&Arith{Kind: ArithAdd, Legacy: true, Axis: 1, HasAxis: true}, nil, ""},
		{"Mul-1 no broadcast", ewNode("Mul", 1, nil, 2, 1), &Arith{Kind: ArithMul}, nil, ""},
		{"Div-6 bad broadcast", ewNode("Div", 6, Attributes{"broadcast": ewInt(2)}, 2, 1), nil, ErrAttr, ""},
		{"Div-6 bad axis", ewNode("Div", 6, Attributes{"broadcast": ewInt(1), "axis": ewInt(-1)}, 2, 1), nil, ErrAttr, ""},
		{"Div-14 three inputs", ewNode("Div", 14, nil, 3, 1), nil, ErrArity, ""},
		{"Relu-14", ewNode("Relu", 14, nil, 1, 1), &Relu{}, nil, ""},
		{"LeakyRelu default", ewNode("LeakyRelu", 16, nil, 1, 1), &LeakyRelu{Alpha: 0.01}, nil, ""},
		{"LeakyRelu alpha", ewNode("LeakyRelu", 6, Attributes{"alpha": ewFloat(0.2)}, 1, 1), &LeakyRelu{Alpha: 0.2}, nil, ""},
		{"LeakyRelu alpha kind", ewNode("LeakyRelu", 6, Attributes{"alpha": ewInt(1)}, 1, 1), nil, ErrAttr, ""},
		{"Sigmoid-13", ewNode("Sigmoid", 13, nil, 1, 1), &Sigmoid{}, nil, ""},
		{"Identity-25", ewNode("Identity", 25, nil, 1, 1), &Identity{}, nil, ""},
		{"HardSigmoid-6 defaults", ewNode("HardSigmoid", 6, nil, 1, 1), &HardSigmoid{Alpha: 0.2, Beta: 0.5}, nil, ""},
		{"HardSigmoid-1 legacy attrs", ewNode("HardSigmoid", 1,
			Attributes{"alpha": ewFloat(0.25), "beta": ewFloat(0.4), "consumed_inputs": ewInts(0)}, 1, 1),
			&HardSigmoid{Alpha: 0.25, Beta: 0.4}, nil, ""},
		{"HardSigmoid-22 NaN alpha", ewNode("HardSigmoid", 22, Attributes{"alpha": ewFloat(float32(math.NaN()))}, 1, 1),
			nil, ErrAttr, ""},
		{"HardSwish-14", ewNode("HardSwish", 14, nil, 1, 1), &HardSwish{}, nil, ""},
		{"HardSwish-14 two inputs", ewNode("HardSwish", 14, nil, 2, 1), nil, ErrArity, ""},
		{"Clip-1 min only", ewNode("Clip", 1, Attributes{"min": ewFloat(-1)}, 1, 1), &Clip{Min: -1, HasMin: true}, nil, ""},
		{"Clip-6 defaults", ewNode("Clip", 6, nil, 1, 1),
			&Clip{Min: -math.MaxFloat32, Max: math.MaxFloat32, HasMin: true, HasMax: true}, nil, ""},
		{"Clip-6 attrs", ewNode("Clip", 6, Attributes{"min": ewFloat(-0.5), "max": ewFloat(0.5)}, 1, 1),
			&Clip{Min: -0.5, Max: 0.5, HasMin: true, HasMax: true}, nil, ""},
		{"Clip-6 bound input", ewNode("Clip", 6, nil, 2, 1), nil, ErrArity, ""},
		{"Clip-13 inputs", ewNode("Clip", 13, nil, 3, 1), &Clip{BoundInputs: true}, nil, ""},
		{"Dropout-6 training", ewNode("Dropout", 6, nil, 1, 2), &Dropout{Ratio: 0.5, Training: true}, nil, ""},
		{"Dropout-6 is_test", ewNode("Dropout", 6, Attributes{"is_test": ewInt(1), "ratio": ewFloat(0.2)}, 1, 1),
			&Dropout{Ratio: 0.2}, nil, ""},
		{"Dropout-7 ratio", ewNode("Dropout", 7, Attributes{"ratio": ewFloat(0.3)}, 1, 2), &Dropout{Ratio: 0.3}, nil, ""},
		{"Dropout-10 bool mask", ewNode("Dropout", 10, nil, 1, 2), &Dropout{Ratio: 0.5, MaskBool: true}, nil, ""},
		{"Dropout-12 seed", ewNode("Dropout", 12, Attributes{"seed": ewInt(3)}, 3, 2),
			&Dropout{Ratio: 0.5, Seed: 3, HasSeed: true, MaskBool: true}, nil, ""},
		{"Dropout-7 ratio range", ewNode("Dropout", 7, Attributes{"ratio": ewFloat(1.5)}, 1, 1), nil, ErrAttr, ""},
		{"Dropout-11 ratio input", ewNode("Dropout", 11, nil, 2, 1), nil, ErrArity, ""},
		{"Cast-6", ewNode("Cast", 6, Attributes{"to": ewInt(int64(tensor.Int64))}, 1, 1), &Cast{To: tensor.Int64, Saturate: true}, nil, ""},
		{"Cast-1 name", ewNode("Cast", 1, Attributes{"to": ewString("float16")}, 1, 1), &Cast{To: tensor.Float16, Saturate: true}, nil, ""},
		{"Cast-19 saturate", ewNode("Cast", 19, Attributes{"to": ewInt(1), "saturate": ewInt(0)}, 1, 1), &Cast{To: tensor.Float32}, nil, ""},
		{"Cast float8", ewNode("Cast", 19, Attributes{"to": ewInt(int64(tensor.Float8E4M3FN))}, 1, 1), nil, ErrUnsupportedOp,
			"Cast to float8e4m3fn is not supported"},
		{"Cast int4 name", ewNode("Cast", 1, Attributes{"to": ewString("INT4")}, 1, 1), nil, ErrUnsupportedOp, "Cast to int4 is not supported"},
		{"Cast undefined", ewNode("Cast", 13, Attributes{"to": ewInt(0)}, 1, 1), nil, ErrAttr, ""},
		{"Cast unknown code", ewNode("Cast", 13, Attributes{"to": ewInt(99)}, 1, 1), nil, ErrAttr, ""},
		{"Cast unknown name", ewNode("Cast", 1, Attributes{"to": ewString("REAL")}, 1, 1), nil, ErrAttr, ""},
		{"Cast missing to", ewNode("Cast", 13, nil, 1, 1), nil, ErrAttr, ""},
		{"Softmax-1 default", ewNode("Softmax", 1, nil, 1, 1), &Softmax{Axis: 1, Coerce2D: true}, nil, ""},
		{"Softmax-12 uses 11", ewNode("Softmax", 12, Attributes{"axis": ewInt(-1)}, 1, 1), &Softmax{Axis: -1, Coerce2D: true}, nil, ""},
		{"Softmax-13 default", ewNode("Softmax", 13, nil, 1, 1), &Softmax{Axis: -1}, nil, ""},
		{"LogSoftmax-13", ewNode("LogSoftmax", 13, Attributes{"axis": ewInt(0)}, 1, 1), &Softmax{Log: true}, nil, ""},
		{"Softmax huge axis", ewNode("Softmax", 13, Attributes{"axis": ewInt(1 << 40)}, 1, 1), nil, ErrAttr, ""},
		{"ReduceMean-13", ewNode("ReduceMean", 13, Attributes{"axes": ewInts(1, -1), "keepdims": ewInt(0)}, 1, 1),
			&ReduceMean{Axes: []int64{1, -1}}, nil, ""},
		{"ReduceMean-1 default", ewNode("ReduceMean", 1, nil, 1, 1), &ReduceMean{KeepDims: true}, nil, ""},
		{"ReduceMean-13 axes input", ewNode("ReduceMean", 13, nil, 2, 1), nil, ErrArity, ""},
		{"ReduceMean-18", ewNode("ReduceMean", 18, Attributes{"noop_with_empty_axes": ewInt(1)}, 2, 1),
			&ReduceMean{AxesInput: true, KeepDims: true, NoopWithEmptyAxes: true}, nil, ""},
		{"SCE-13", ewNode("SoftmaxCrossEntropyLoss", 13, Attributes{"reduction": ewString("sum"), "ignore_index": ewInt(-1)}, 3, 2),
			&SoftmaxCrossEntropyLoss{Reduction: ReductionSum, IgnoreIndex: -1, HasIgnoreIndex: true}, nil, ""},
		{"SCE bad reduction", ewNode("SoftmaxCrossEntropyLoss", 12, Attributes{"reduction": ewString("avg")}, 2, 1), nil, ErrAttr, ""},
		{"NLL-22 default", ewNode("NegativeLogLikelihoodLoss", 22, nil, 2, 1), &NegativeLogLikelihoodLoss{Reduction: ReductionMean}, nil, ""},
		{"NLL two outputs", ewNode("NegativeLogLikelihoodLoss", 13, nil, 2, 2), nil, ErrArity, ""},
		{"NLL before 12", ewNode("NegativeLogLikelihoodLoss", 11, nil, 2, 1), nil, ErrUnsupportedOp, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := reg.Decode(c.node)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				if c.errText != "" && !strings.Contains(err.Error(), c.errText) {
					t.Fatalf("error %q does not say %q", err, c.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
			if got.OpType() != c.node.OpType {
				t.Fatalf("OpType %q, want %q", got.OpType(), c.node.OpType)
			}
		})
	}
}

// TestElementwiseVersions checks that every operator resolves at every opset from its first
// version to 25.
func TestElementwiseVersions(t *testing.T) {
	reg := NewRegistry(elementwiseSchemas()...)
	first := map[string]int{
		"Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Relu": 1, "LeakyRelu": 1, "Sigmoid": 1, "Identity": 1,
		"Clip": 1, "Dropout": 1, "Cast": 1, "Softmax": 1, "LogSoftmax": 1, "ReduceMean": 1,
		"SoftmaxCrossEntropyLoss": 12, "NegativeLogLikelihoodLoss": 12,
		"HardSigmoid": 1, "HardSwish": 14,
	}
	for op, v0 := range first {
		for v := v0; v <= 25; v++ {
			if _, err := reg.Lookup("ai.onnx", op, v); err != nil {
				t.Errorf("%s at opset %d: %v", op, v, err)
			}
		}
	}
}

func TestElementwiseInfer(t *testing.T) {
	f32, i64 := tensor.Float32, tensor.Int64
	cases := []struct {
		name    string
		op      Op
		in      []*Arg
		want    []Type
		wantErr error
	}{
		{"Add broadcast symbolic", &Arith{Kind: ArithAdd},
			[]*Arg{ewArg(ewT(f32, "batch", 3, 1)), ewArg(ewT(f32, 4))}, []Type{ewT(f32, "batch", 3, 4)}, nil},
		{"Mul symbolic vs 1", &Arith{Kind: ArithMul},
			[]*Arg{ewArg(ewT(f32, "n", 1)), ewArg(ewT(f32, 1, "m"))}, []Type{ewT(f32, "n", "m")}, nil},
		{"Add mismatch", &Arith{Kind: ArithAdd},
			[]*Arg{ewArg(ewT(f32, 2, 3)), ewArg(ewT(f32, 4))}, nil, ErrShape},
		{"Add dtype mismatch", &Arith{Kind: ArithAdd},
			[]*Arg{ewArg(ewT(f32, 2)), ewArg(ewT(i64, 2))}, nil, ErrShape},
		{"Add string", &Arith{Kind: ArithAdd},
			[]*Arg{ewArg(ewT(tensor.String, 2)), ewArg(ewT(tensor.String, 2))}, nil, ErrShape},
		{"Add missing input", &Arith{Kind: ArithAdd}, []*Arg{ewArg(ewT(f32, 2)), nil}, nil, ErrArity},
		{"Sub unranked", &Arith{Kind: ArithSub},
			[]*Arg{ewArg(Type{DType: f32, Unranked: true}), ewArg(ewT(f32, 2))}, []Type{{DType: f32, Unranked: true}}, nil},
		{"Add legacy axis", &Arith{Kind: ArithAdd, Legacy: true, Axis: 1, HasAxis: true},
			[]*Arg{ewArg(ewT(f32, 2, 3, 4, 5)), ewArg(ewT(f32, 3, 4))}, []Type{ewT(f32, 2, 3, 4, 5)}, nil},
		{"Add legacy suffix", &Arith{Kind: ArithAdd, Legacy: true},
			[]*Arg{ewArg(ewT(f32, 2, 3)), ewArg(ewT(f32, 3))}, []Type{ewT(f32, 2, 3)}, nil},
		{"Add legacy axis 0", &Arith{Kind: ArithAdd, Legacy: true, HasAxis: true},
			[]*Arg{ewArg(ewT(f32, 2, 3)), ewArg(ewT(f32, 2))}, []Type{ewT(f32, 2, 3)}, nil},
		{"Add legacy one element", &Arith{Kind: ArithAdd, Legacy: true, Axis: 1, HasAxis: true},
			[]*Arg{ewArg(ewT(f32, 2, 3)), ewArg(ewT(f32, 1, 1))}, []Type{ewT(f32, 2, 3)}, nil},
		{"Add legacy does not fit", &Arith{Kind: ArithAdd, Legacy: true, Axis: 2, HasAxis: true},
			[]*Arg{ewArg(ewT(f32, 2, 3, 4)), ewArg(ewT(f32, 4, 5))}, nil, ErrShape},
		{"Add legacy rank", &Arith{Kind: ArithAdd, Legacy: true},
			[]*Arg{ewArg(ewT(f32, 3)), ewArg(ewT(f32, 2, 3))}, nil, ErrShape},
		{"Relu int8", &Relu{}, []*Arg{ewArg(ewT(tensor.Int8, "n"))}, []Type{ewT(tensor.Int8, "n")}, nil},
		{"Relu bool", &Relu{}, []*Arg{ewArg(ewT(tensor.Bool, 1))}, nil, ErrShape},
		{"Sigmoid int", &Sigmoid{}, []*Arg{ewArg(ewT(tensor.Int32, 1))}, nil, ErrShape},
		{"HardSigmoid symbolic", &HardSigmoid{Alpha: 0.2, Beta: 0.5}, []*Arg{ewArg(ewT(f32, "n", 3))}, []Type{ewT(f32, "n", 3)}, nil},
		{"HardSwish int", &HardSwish{}, []*Arg{ewArg(ewT(tensor.Int64, 1))}, nil, ErrShape},
		{"LeakyRelu f16", &LeakyRelu{Alpha: 0.1}, []*Arg{ewArg(ewT(tensor.Float16, 2))}, []Type{ewT(tensor.Float16, 2)}, nil},
		{"Identity string", &Identity{}, []*Arg{ewArg(ewT(tensor.String, 2))}, []Type{ewT(tensor.String, 2)}, nil},
		{"Clip bounds", &Clip{BoundInputs: true},
			[]*Arg{ewArg(ewT(tensor.Int8, 3)), ewArg(ewT(tensor.Int8)), nil}, []Type{ewT(tensor.Int8, 3)}, nil},
		{"Clip bound type", &Clip{BoundInputs: true},
			[]*Arg{ewArg(ewT(f32, 3)), nil, ewArg(ewT(tensor.Float64))}, nil, ErrShape},
		{"Clip bound shape", &Clip{BoundInputs: true},
			[]*Arg{ewArg(ewT(f32, 3)), ewArg(ewT(f32, 2))}, nil, ErrShape},
		{"Clip-6 int", &Clip{HasMin: true}, []*Arg{ewArg(ewT(tensor.Int32, 3))}, nil, ErrShape},
		{"Clip bound [1]", &Clip{BoundInputs: true},
			[]*Arg{ewArg(ewT(f32, 3)), ewArg(ewT(f32, 1))}, []Type{ewT(f32, 3)}, nil},
		{"Dropout-7 mask", &Dropout{Ratio: 0.5}, []*Arg{ewArg(ewT(f32, "n", 2))},
			[]Type{ewT(f32, "n", 2), ewT(f32, "n", 2)}, nil},
		{"Dropout-12 mask", &Dropout{Ratio: 0.5, MaskBool: true},
			[]*Arg{ewArg(ewT(f32, 2)), ewArg(ewT(f32)), ewArg(ewT(tensor.Bool))},
			[]Type{ewT(f32, 2), ewT(tensor.Bool, 2)}, nil},
		{"Dropout training type", &Dropout{MaskBool: true},
			[]*Arg{ewArg(ewT(f32, 2)), nil, ewArg(ewT(f32))}, nil, ErrShape},
		{"Cast", &Cast{To: tensor.Int64}, []*Arg{ewArg(ewT(f32, "n", 3))}, []Type{ewT(i64, "n", 3)}, nil},
		{"Softmax-13 axis", &Softmax{Axis: 2}, []*Arg{ewArg(ewT(f32, 2, 3, 4))}, []Type{ewT(f32, 2, 3, 4)}, nil},
		{"Softmax-13 axis range", &Softmax{Axis: 3}, []*Arg{ewArg(ewT(f32, 2, 3, 4))}, nil, ErrAttr},
		{"Softmax-1 axis rank", &Softmax{Axis: 3, Coerce2D: true}, []*Arg{ewArg(ewT(f32, 2, 3, 4))}, []Type{ewT(f32, 2, 3, 4)}, nil},
		{"LogSoftmax negative", &Softmax{Log: true, Axis: -4}, []*Arg{ewArg(ewT(f32, 2, 3, 4))}, nil, ErrAttr},
		{"ReduceMean attr keep", &ReduceMean{Axes: []int64{1}, KeepDims: true},
			[]*Arg{ewArg(ewT(f32, "n", 3, 4))}, []Type{ewT(f32, "n", 1, 4)}, nil},
		{"ReduceMean attr drop", &ReduceMean{Axes: []int64{-1, 0}},
			[]*Arg{ewArg(ewT(f32, "n", 3, 4))}, []Type{ewT(f32, 3)}, nil},
		{"ReduceMean all", &ReduceMean{}, []*Arg{ewArg(ewT(f32, 2, 3))}, []Type{ewT(f32)}, nil},
		{"ReduceMean repeated", &ReduceMean{Axes: []int64{1, -1}}, []*Arg{ewArg(ewT(f32, 2, 3))}, nil, ErrShape},
		{"ReduceMean range", &ReduceMean{Axes: []int64{2}}, []*Arg{ewArg(ewT(f32, 2, 3))}, nil, ErrShape},
		{"ReduceMean const axes", &ReduceMean{AxesInput: true, KeepDims: true},
			[]*Arg{ewArg(ewT(f32, 2, 3, 4)), ewConst(tensor.FromSlice(tensor.Shape{2}, []int64{0, 2}))},
			[]Type{ewT(f32, 1, 3, 1)}, nil},
		{"ReduceMean empty axes", &ReduceMean{AxesInput: true},
			[]*Arg{ewArg(ewT(f32, 2, 3)), ewConst(tensor.FromSlice(tensor.Shape{0}, []int64{}))},
			[]Type{ewT(f32)}, nil},
		{"ReduceMean noop", &ReduceMean{AxesInput: true, NoopWithEmptyAxes: true},
			[]*Arg{ewArg(ewT(f32, 2, 3)), nil}, []Type{ewT(f32, 2, 3)}, nil},
		{"ReduceMean runtime axes keep", &ReduceMean{AxesInput: true, KeepDims: true},
			[]*Arg{ewArg(ewT(f32, 2, 1)), ewArg(ewT(i64, 1))}, []Type{ewT(f32, "?", 1)}, nil},
		{"ReduceMean runtime axes drop", &ReduceMean{AxesInput: true},
			[]*Arg{ewArg(ewT(f32, 2, 1)), ewArg(ewT(i64, 1))}, []Type{{DType: f32, Unranked: true}}, nil},
		{"ReduceMean string", &ReduceMean{}, []*Arg{ewArg(ewT(tensor.String, 2))}, nil, ErrShape},
		{"NLL none", &NegativeLogLikelihoodLoss{Reduction: ReductionNone},
			[]*Arg{ewArg(ewT(f32, "n", 5, 6)), ewArg(ewT(i64, "?", 6))}, []Type{ewT(f32, "n", 6)}, nil},
		{"NLL mean weights", &NegativeLogLikelihoodLoss{Reduction: ReductionMean},
			[]*Arg{ewArg(ewT(f32, 3, 5)), ewArg(ewT(i64, 3)), ewArg(ewT(f32, 5))}, []Type{ewT(f32)}, nil},
		{"NLL weight size", &NegativeLogLikelihoodLoss{Reduction: ReductionMean},
			[]*Arg{ewArg(ewT(f32, 3, 5)), ewArg(ewT(i64, 3)), ewArg(ewT(f32, 4))}, nil, ErrShape},
		{"NLL target rank", &NegativeLogLikelihoodLoss{Reduction: ReductionNone},
			[]*Arg{ewArg(ewT(f32, 3, 5, 2)), ewArg(ewT(i64, 3))}, nil, ErrShape},
		{"NLL target dims", &NegativeLogLikelihoodLoss{Reduction: ReductionNone},
			[]*Arg{ewArg(ewT(f32, 3, 5, 2)), ewArg(ewT(i64, 3, 4))}, nil, ErrShape},
		{"NLL float target", &NegativeLogLikelihoodLoss{Reduction: ReductionSum},
			[]*Arg{ewArg(ewT(f32, 3, 5)), ewArg(ewT(f32, 3))}, nil, ErrShape},
		{"NLL rank 1", &NegativeLogLikelihoodLoss{Reduction: ReductionSum},
			[]*Arg{ewArg(ewT(f32, 5)), ewArg(ewT(i64))}, nil, ErrShape},
		{"SCE log_prob", &SoftmaxCrossEntropyLoss{Reduction: ReductionNone},
			[]*Arg{ewArg(ewT(tensor.Float64, 2, 3, 4)), ewArg(ewT(tensor.Int32, 2, 4))},
			[]Type{ewT(tensor.Float64, 2, 4), ewT(tensor.Float64, 2, 3, 4)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.op.Infer(c.in)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d types %v, want %v", len(got), got, c.want)
			}
			for i := range got {
				if got[i].String() != c.want[i].String() {
					t.Errorf("output %d: got %s, want %s", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestSoftmaxGroups(t *testing.T) {
	cases := []struct {
		op              Softmax
		shape           tensor.Shape
		outer, n, inner int
		wantErr         bool
	}{
		{Softmax{Axis: -1}, tensor.Shape{2, 3, 4}, 6, 4, 1, false},
		{Softmax{Axis: 1}, tensor.Shape{2, 3, 4}, 2, 3, 4, false},
		{Softmax{Axis: 0}, tensor.Shape{2, 3, 4}, 1, 2, 12, false},
		{Softmax{Axis: 1, Coerce2D: true}, tensor.Shape{2, 3, 4}, 2, 12, 1, false},
		{Softmax{Axis: 0, Coerce2D: true}, tensor.Shape{2, 3, 4}, 1, 24, 1, false},
		{Softmax{Axis: 3, Coerce2D: true}, tensor.Shape{2, 3, 4}, 24, 1, 1, false},
		{Softmax{Axis: -1, Coerce2D: true}, tensor.Shape{2, 3, 4}, 6, 4, 1, false},
		{Softmax{Axis: 3}, tensor.Shape{2, 3, 4}, 0, 0, 0, true},
		{Softmax{Axis: -1}, tensor.Shape{}, 0, 0, 0, true},
	}
	for _, c := range cases {
		o, n, i, err := c.op.Groups(c.shape)
		if c.wantErr {
			if err == nil {
				t.Errorf("%+v on %v: no error", c.op, c.shape)
			}
			continue
		}
		if err != nil || o != c.outer || n != c.n || i != c.inner {
			t.Errorf("%+v on %v: got (%d, %d, %d, %v), want (%d, %d, %d)", c.op, c.shape, o, n, i, err, c.outer, c.n, c.inner)
		}
	}
}

package ops

import (
	"errors"
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Attribute builders keep the tables short.
func toInt(v int64) Attribute         { return Attribute{Kind: AttrInt, Int: v} }
func toInts(v ...int64) Attribute     { return Attribute{Kind: AttrInts, Ints: v} }
func toFloat(v float32) Attribute     { return Attribute{Kind: AttrFloat, Float: v} }
func toFloats(v ...float32) Attribute { return Attribute{Kind: AttrFloats, Floats: v} }
func toTensor(t *tensor.Tensor) Attribute {
	return Attribute{Kind: AttrTensor, Tensor: t}
}

// decodeTensorOp decodes one node with the tensor schemas only, so these tests do not depend on
// the other operator families.
func decodeTensorOp(opType string, opset int, attrs Attributes, nIn, nOut int) (Op, error) {
	in := make([]bool, nIn)
	for i := range in {
		in[i] = true
	}
	return decodeTensorNode(&Node{Name: "n", OpType: opType, Opset: opset, Attrs: attrs, Inputs: in, NumOutputs: nOut})
}

func decodeTensorNode(n *Node) (Op, error) {
	return NewRegistry(tensorSchemas()...).Decode(n)
}

func TestTensorDecodeErrors(t *testing.T) {
	big := tensor.FromSlice(tensor.Shape{2}, []float32{1, 2})
	tests := []struct {
		name    string
		op      string
		opset   int
		attrs   Attributes
		nIn     int
		nOut    int
		wantErr error // nil: decoding succeeds
	}{
		{"concat1 default axis", "Concat", 1, nil, 2, 1, nil},
		{"concat4 needs axis", "Concat", 4, nil, 2, 1, ErrAttr},
		{"concat4 negative axis", "Concat", 4, Attributes{"axis": toInt(-1)}, 2, 1, ErrAttr},
		{"concat11 negative axis", "Concat", 11, Attributes{"axis": toInt(-1)}, 2, 1, nil},
		{"concat axis wrong kind", "Concat", 13, Attributes{"axis": toFloat(1)}, 2, 1, ErrAttr},
		{"concat no inputs", "Concat", 13, Attributes{"axis": toInt(0)}, 0, 1, ErrArity},
		{"reshape1 needs shape", "Reshape", 1, nil, 1, 1, ErrAttr},
		{"reshape1 bad dim", "Reshape", 1, Attributes{"shape": toInts(-2, 3)}, 1, 1, ErrAttr},
		{"reshape1 two -1", "Reshape", 1, Attributes{"shape": toInts(-1, -1)}, 1, 1, ErrAttr},
		{"reshape5 one input", "Reshape", 5, nil, 1, 1, ErrArity},
		{"reshape14 allowzero 2", "Reshape", 14, Attributes{"allowzero": toInt(2)}, 2, 1, ErrAttr},
		{"flatten9 negative", "Flatten", 9, Attributes{"axis": toInt(-1)}, 1, 1, ErrAttr},
		{"flatten11 negative", "Flatten", 11, Attributes{"axis": toInt(-1)}, 1, 1, nil},
		{"transpose repeat", "Transpose", 13, Attributes{"perm": toInts(0, 0)}, 1, 1, ErrAttr},
		{"transpose out of range", "Transpose", 13, Attributes{"perm": toInts(0, 2)}, 1, 1, ErrAttr},
		{"squeeze1 negative", "Squeeze", 1, Attributes{"axes": toInts(-1)}, 1, 1, ErrAttr},
		{"squeeze11 negative", "Squeeze", 11, Attributes{"axes": toInts(-1)}, 1, 1, nil},
		{"squeeze13 axes input optional", "Squeeze", 13, nil, 1, 1, nil},
		{"unsqueeze1 needs axes", "Unsqueeze", 1, nil, 1, 1, ErrAttr},
		{"unsqueeze13 needs axes input", "Unsqueeze", 13, nil, 1, 1, ErrArity},
		{"split2 no second input", "Split", 2, nil, 2, 2, ErrArity},
		{"split2 sizes vs outputs", "Split", 2, Attributes{"split": toInts(1, 2, 3)}, 1, 2, ErrAttr},
		{"split18 num_outputs vs outputs", "Split", 18, Attributes{"num_outputs": toInt(3)}, 1, 2, ErrAttr},
		{"split18 num_outputs and input", "Split", 18, Attributes{"num_outputs": toInt(2)}, 2, 2, ErrAttr},
		{"slice1 needs ends", "Slice", 1, Attributes{"starts": toInts(0)}, 1, 1, ErrAttr},
		{"slice1 lengths", "Slice", 1, Attributes{"starts": toInts(0), "ends": toInts(1, 2)}, 1, 1, ErrAttr},
		{"slice10 needs ends", "Slice", 10, nil, 2, 1, ErrArity},
		{"constant none", "Constant", 13, nil, 0, 1, ErrAttr},
		{"constant two", "Constant", 13, Attributes{"value_int": toInt(1), "value_float": toFloat(1)}, 0, 1, ErrAttr},
		{"constant sparse", "Constant", 13, Attributes{"sparse_value": {Kind: AttrTensor}}, 0, 1, ErrUnsupportedOp},
		{"constant value_float before 12", "Constant", 11, Attributes{"value_float": toFloat(1)}, 0, 1, ErrAttr},
		{"constant wrong kind", "Constant", 13, Attributes{"value_ints": toInt(1)}, 0, 1, ErrAttr},
		{"constant with input", "Constant", 13, Attributes{"value_int": toInt(1)}, 1, 1, ErrArity},
		{"constantofshape two elements", "ConstantOfShape", 9, Attributes{"value": toTensor(big)}, 1, 1, ErrAttr},
		{"constantofshape before 9", "ConstantOfShape", 8, nil, 1, 1, ErrUnsupportedOp},
		{"gemm6 needs C", "Gemm", 6, nil, 2, 1, ErrArity},
		{"gemm11 C optional", "Gemm", 11, nil, 2, 1, nil},
		{"gemm alpha kind", "Gemm", 13, Attributes{"alpha": toInt(1)}, 2, 1, ErrAttr},
		{"matmul one input", "MatMul", 13, nil, 1, 1, ErrArity},
		{"gather three inputs", "Gather", 13, nil, 3, 1, ErrArity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeTensorOp(tc.op, tc.opset, tc.attrs, tc.nIn, tc.nOut)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want one wrapping %v", err, tc.wantErr)
			}
		})
	}
}

func TestTensorDecodeValues(t *testing.T) {
	op, err := decodeTensorOp("Constant", 13, Attributes{"value_floats": toFloats(1, 2, 3)}, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := op.(*Constant)
	if c.Value.DType != tensor.Float32 || !c.Value.Shape.Equal(tensor.Shape{3}) {
		t.Errorf("value_floats gave %s %v", c.Value.DType, c.Value.Shape)
	}
	for _, tc := range []struct {
		attrs Attributes
		want  string
	}{
		{Attributes{"value_int": toInt(7)}, "int64[]"},
		{Attributes{"value_ints": toInts(1, 2)}, "int64[2]"},
		{Attributes{"value_float": toFloat(7)}, "float32[]"},
		{Attributes{"value_string": {Kind: AttrString, String: "a"}}, "string[]"},
		{Attributes{"value_strings": {Kind: AttrStrings, Strings: []string{"a", "b"}}}, "string[2]"},
		{Attributes{"value": toTensor(tensor.FromSlice(tensor.Shape{2, 1}, []bool{true, false}))}, "bool[2,1]"},
	} {
		op, err := decodeTensorOp("Constant", 13, tc.attrs, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		types, err := op.Infer(nil)
		if err != nil || types[0].String() != tc.want {
			t.Errorf("Constant %v: type %v (err %v), want %s", tc.attrs, types, err, tc.want)
		}
	}

	op, err = decodeTensorOp("Gemm", 6, Attributes{"transB": toInt(1), "alpha": toFloat(0.5)}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g := op.(*Gemm); !g.TransB || g.TransA || g.Alpha != 0.5 || g.Beta != 1 || g.BroadcastC {
		t.Errorf("Gemm-6 decoded as %+v", g)
	}
	op, _ = decodeTensorOp("Gemm", 7, nil, 3, 1)
	if !op.(*Gemm).BroadcastC {
		t.Errorf("Gemm-7 must broadcast C")
	}
	op, _ = decodeTensorOp("Shape", 13, Attributes{"start": toInt(1)}, 1, 1)
	if s := op.(*Shape); s.Start != 0 || s.End != math.MaxInt64 {
		t.Errorf("Shape-13 must ignore start: %+v", s)
	}
	op, _ = decodeTensorOp("Split", 18, Attributes{"num_outputs": toInt(3)}, 1, 3)
	if s := op.(*Split); !s.CeilChunks || s.NumOutputs != 3 {
		t.Errorf("Split-18 decoded as %+v", s)
	}
	op, _ = decodeTensorOp("ConstantOfShape", 9, nil, 1, 1)
	if v := op.(*ConstantOfShape).Value; v.DType != tensor.Float32 || v.Len() != 1 {
		t.Errorf("ConstantOfShape default value %v", v)
	}
}

// Shorthands for inference inputs.
func toF32(dims ...Dim) *Arg { return &Arg{Type: Type{DType: tensor.Float32, Shape: dims}} }
func toConst(v ...int64) *Arg {
	t := tensor.FromSlice(tensor.Shape{len(v)}, append([]int64{}, v...))
	return &Arg{Type: TypeOf(t), Const: t}
}
func toI64(dims ...Dim) *Arg { return &Arg{Type: Type{DType: tensor.Int64, Shape: dims}} }

var (
	k       = Known
	toBatch = Symbolic("batch")
	toUnk   = Unknown()
)

func TestTensorInfer(t *testing.T) {
	unranked := &Arg{Type: Type{DType: tensor.Float32, Unranked: true}}
	tests := []struct {
		name    string
		op      string
		opset   int
		attrs   Attributes
		in      []*Arg
		nOut    int
		want    []string // Type.String() of each output
		wantErr error
	}{
		{"concat batch", "Concat", 13, Attributes{"axis": toInt(1)},
			[]*Arg{toF32(toBatch, Known(3), Known(4)), toF32(toBatch, Known(5), Known(4))}, 1, []string{"float32[batch,8,4]"}, nil},
		{"concat negative axis", "Concat", 13, Attributes{"axis": toInt(-1)},
			[]*Arg{toF32(Known(2), Known(3)), toF32(Known(2), Known(1))}, 1, []string{"float32[2,4]"}, nil},
		{"concat symbolic on axis", "Concat", 13, Attributes{"axis": toInt(0)},
			[]*Arg{toF32(toBatch, Known(3)), toF32(Known(2), Known(3))}, 1, []string{"float32[?,3]"}, nil},
		{"concat merges known", "Concat", 13, Attributes{"axis": toInt(1)},
			[]*Arg{toF32(toBatch, Known(3)), toF32(Known(2), Known(3))}, 1, []string{"float32[2,6]"}, nil},
		{"concat unranked input", "Concat", 13, Attributes{"axis": toInt(1)},
			[]*Arg{unranked, toF32(toBatch, Known(3))}, 1, []string{"float32[batch,?]"}, nil},
		{"concat dim conflict", "Concat", 13, Attributes{"axis": toInt(1)},
			[]*Arg{toF32(Known(2), Known(3)), toF32(Known(4), Known(3))}, 1, nil, ErrShape},
		{"concat dtype conflict", "Concat", 13, Attributes{"axis": toInt(1)},
			[]*Arg{toF32(Known(2), Known(3)), toI64(Known(2), Known(3))}, 1, nil, ErrShape},
		{"concat axis range", "Concat", 13, Attributes{"axis": toInt(2)},
			[]*Arg{toF32(Known(2), Known(3))}, 1, nil, ErrAttr},

		{"reshape keep batch", "Reshape", 13, nil, []*Arg{toF32(toBatch, Known(3), Known(4)), toConst(0, -1)}, 1,
			[]string{"float32[batch,12]"}, nil},
		{"reshape -1 is batch", "Reshape", 13, nil, []*Arg{toF32(toBatch, Known(3), Known(4)), toConst(-1, 12)}, 1,
			[]string{"float32[batch,12]"}, nil},
		{"reshape -1 unknown", "Reshape", 13, nil, []*Arg{toF32(toBatch, Known(3), Known(4)), toConst(-1, 4)}, 1,
			[]string{"float32[?,4]"}, nil},
		{"reshape static", "Reshape", 13, nil, []*Arg{toF32(Known(2), Known(3), Known(4)), toConst(4, -1)}, 1,
			[]string{"float32[4,6]"}, nil},
		{"reshape static mismatch", "Reshape", 13, nil, []*Arg{toF32(Known(2), Known(3), Known(4)), toConst(5, -1)}, 1, nil, ErrShape},
		{"reshape attribute", "Reshape", 4, Attributes{"shape": toInts(3, 0)}, []*Arg{toF32(Known(2), Known(3))}, 1,
			nil, ErrShape},
		{"reshape attribute ok", "Reshape", 4, Attributes{"shape": toInts(0, 3, 1)}, []*Arg{toF32(Known(2), Known(3))}, 1,
			[]string{"float32[2,3,1]"}, nil},
		{"reshape allowzero", "Reshape", 14, Attributes{"allowzero": toInt(1)}, []*Arg{toF32(Known(0), Known(3)), toConst(3, 0)}, 1,
			[]string{"float32[3,0]"}, nil},
		{"reshape shape not constant", "Reshape", 13, nil, []*Arg{toF32(toBatch, Known(3)), toI64(Known(3))}, 1,
			[]string{"float32[?,?,?]"}, nil},
		{"reshape shape unknown", "Reshape", 13, nil, []*Arg{toF32(toBatch, Known(3)), toI64(toUnk)}, 1,
			[]string{"float32[...]"}, nil},
		{"reshape unranked data", "Reshape", 13, nil, []*Arg{unranked, toConst(0, 5)}, 1,
			[]string{"float32[?,5]"}, nil},

		{"flatten keeps batch", "Flatten", 13, nil, []*Arg{toF32(toBatch, Known(1024), Known(1), Known(1))}, 1,
			[]string{"float32[batch,1024]"}, nil},
		{"flatten axis 0", "Flatten", 13, Attributes{"axis": toInt(0)}, []*Arg{toF32(toBatch, Known(3))}, 1,
			[]string{"float32[1,?]"}, nil},
		{"flatten axis rank", "Flatten", 13, Attributes{"axis": toInt(2)}, []*Arg{toF32(Known(2), Known(3))}, 1,
			[]string{"float32[6,1]"}, nil},
		{"flatten negative", "Flatten", 13, Attributes{"axis": toInt(-1)}, []*Arg{toF32(Known(2), Known(3), Known(4))}, 1,
			[]string{"float32[6,4]"}, nil},
		{"flatten out of range", "Flatten", 13, Attributes{"axis": toInt(3)}, []*Arg{toF32(Known(2), Known(3))}, 1, nil, ErrAttr},
		{"flatten unranked", "Flatten", 13, nil, []*Arg{unranked}, 1, []string{"float32[?,?]"}, nil},

		{"transpose default", "Transpose", 13, nil, []*Arg{toF32(toBatch, Known(3), Known(4))}, 1, []string{"float32[4,3,batch]"}, nil},
		{"transpose perm", "Transpose", 13, Attributes{"perm": toInts(0, 2, 1)}, []*Arg{toF32(toBatch, Known(3), Known(4))}, 1,
			[]string{"float32[batch,4,3]"}, nil},
		{"transpose perm rank", "Transpose", 13, Attributes{"perm": toInts(1, 0)}, []*Arg{toF32(toBatch, Known(3), Known(4))}, 1, nil, ErrShape},

		{"squeeze axes attr", "Squeeze", 11, Attributes{"axes": toInts(-2)}, []*Arg{toF32(toBatch, Known(1), Known(4))}, 1,
			[]string{"float32[batch,4]"}, nil},
		{"squeeze not one", "Squeeze", 11, Attributes{"axes": toInts(2)}, []*Arg{toF32(toBatch, Known(1), Known(4))}, 1, nil, ErrShape},
		{"squeeze all static", "Squeeze", 13, nil, []*Arg{toF32(Known(1), Known(3), Known(1))}, 1, []string{"float32[3]"}, nil},
		{"squeeze all symbolic", "Squeeze", 13, nil, []*Arg{toF32(toBatch, Known(3), Known(1))}, 1, []string{"float32[...]"}, nil},
		{"squeeze axes input", "Squeeze", 13, nil, []*Arg{toF32(toBatch, Known(1), Known(4)), toConst(1)}, 1,
			[]string{"float32[batch,4]"}, nil},
		{"squeeze axes variable", "Squeeze", 13, nil, []*Arg{toF32(toBatch, Known(1), Known(4)), toI64(Known(1))}, 1,
			[]string{"float32[?,?]"}, nil},
		{"unsqueeze attr", "Unsqueeze", 11, Attributes{"axes": toInts(0, -1)}, []*Arg{toF32(toBatch, Known(3))}, 1,
			[]string{"float32[1,batch,3,1]"}, nil},
		{"unsqueeze input", "Unsqueeze", 13, nil, []*Arg{toF32(toBatch, Known(3)), toConst(1)}, 1,
			[]string{"float32[batch,1,3]"}, nil},
		{"unsqueeze repeat", "Unsqueeze", 13, nil, []*Arg{toF32(toBatch, Known(3)), toConst(1, -3)}, 1, nil, ErrAttr},

		{"split attr", "Split", 11, Attributes{"axis": toInt(1), "split": toInts(3, 7)}, []*Arg{toF32(toBatch, Known(10))}, 2,
			[]string{"float32[batch,3]", "float32[batch,7]"}, nil},
		{"split equal", "Split", 13, nil, []*Arg{toF32(Known(10), toBatch)}, 2,
			[]string{"float32[5,batch]", "float32[5,batch]"}, nil},
		{"split uneven", "Split", 13, nil, []*Arg{toF32(Known(10))}, 3, nil, ErrShape},
		{"split num_outputs", "Split", 18, Attributes{"num_outputs": toInt(3)}, []*Arg{toF32(Known(10))}, 3,
			[]string{"float32[4]", "float32[4]", "float32[2]"}, nil},
		{"split input", "Split", 13, nil, []*Arg{toF32(toBatch, Known(10)), toConst(3, 7)}, 2,
			[]string{"float32[3,10]", "float32[7,10]"}, nil},
		{"split input mismatch", "Split", 13, nil, []*Arg{toF32(Known(9), Known(10)), toConst(3, 7)}, 2, nil, ErrShape},
		{"split input axis", "Split", 13, Attributes{"axis": toInt(-1)}, []*Arg{toF32(toBatch, Known(10)), toConst(3, 7)}, 2,
			[]string{"float32[batch,3]", "float32[batch,7]"}, nil},
		{"split symbolic axis", "Split", 13, nil, []*Arg{toF32(toBatch, Known(10))}, 2,
			[]string{"float32[?,10]", "float32[?,10]"}, nil},

		{"slice inputs", "Slice", 13, nil, []*Arg{toF32(toBatch, Known(10)), toConst(2), toConst(-1), toConst(1)}, 1,
			[]string{"float32[batch,7]"}, nil},
		{"slice negative step", "Slice", 13, nil,
			[]*Arg{toF32(toBatch, Known(10)), toConst(-1), toConst(math.MinInt64), toConst(1), toConst(-3)}, 1,
			[]string{"float32[batch,4]"}, nil},
		{"slice whole symbolic", "Slice", 13, nil, []*Arg{toF32(toBatch, Known(10)), toConst(0), toConst(math.MaxInt64)}, 1,
			[]string{"float32[batch,10]"}, nil},
		{"slice part symbolic", "Slice", 13, nil, []*Arg{toF32(toBatch, Known(10)), toConst(1), toConst(math.MaxInt64)}, 1,
			[]string{"float32[?,10]"}, nil},
		{"slice variable starts", "Slice", 13, nil,
			[]*Arg{toF32(toBatch, Known(10)), toI64(Known(1)), toConst(5), toConst(1)}, 1, []string{"float32[batch,?]"}, nil},
		{"slice zero step", "Slice", 13, nil,
			[]*Arg{toF32(Known(10)), toConst(0), toConst(5), toConst(0), toConst(0)}, 1, nil, ErrShape},
		{"slice attrs", "Slice", 1, Attributes{"starts": toInts(1, 0), "ends": toInts(2, 3)}, []*Arg{toF32(Known(2), Known(4))}, 1,
			[]string{"float32[1,3]"}, nil},

		{"gather axis 0", "Gather", 13, nil, []*Arg{toF32(Known(5), Known(4)), toI64(Known(2), Known(3))}, 1, []string{"float32[2,3,4]"}, nil},
		{"gather axis 1", "Gather", 13, Attributes{"axis": toInt(-1)}, []*Arg{toF32(toBatch, Known(4)), toI64(Known(2))}, 1,
			[]string{"float32[batch,2]"}, nil},
		{"gather scalar index", "Gather", 13, nil, []*Arg{toF32(Known(5), Known(4)), toI64()}, 1, []string{"float32[4]"}, nil},
		{"gather float indices", "Gather", 13, nil, []*Arg{toF32(Known(5)), toF32(Known(2))}, 1, nil, ErrShape},

		{"shape all", "Shape", 13, nil, []*Arg{toF32(toBatch, Known(3), Known(4), Known(5))}, 1, []string{"int64[4]"}, nil},
		{"shape start", "Shape", 15, Attributes{"start": toInt(1)}, []*Arg{toF32(toBatch, Known(3), Known(4), Known(5))}, 1, []string{"int64[3]"}, nil},
		{"shape negative", "Shape", 15, Attributes{"start": toInt(-1)}, []*Arg{toF32(toBatch, Known(3), Known(4), Known(5))}, 1, []string{"int64[1]"}, nil},
		{"shape clamped", "Shape", 15, Attributes{"start": toInt(-10), "end": toInt(10)}, []*Arg{toF32(toBatch, Known(3))}, 1, []string{"int64[2]"}, nil},
		{"shape empty", "Shape", 15, Attributes{"start": toInt(2), "end": toInt(1)}, []*Arg{toF32(toBatch, Known(3), Known(4))}, 1, []string{"int64[0]"}, nil},
		{"shape unranked", "Shape", 15, nil, []*Arg{unranked}, 1, []string{"int64[?]"}, nil},

		{"constantofshape const", "ConstantOfShape", 9, nil, []*Arg{toConst(2, 3)}, 1, []string{"float32[2,3]"}, nil},
		{"constantofshape scalar", "ConstantOfShape", 9, nil, []*Arg{toConst()}, 1, []string{"float32[]"}, nil},
		{"constantofshape huge", "ConstantOfShape", 9, nil, []*Arg{toConst(1<<20, 1<<20)}, 1, nil, ErrShape},
		{"constantofshape negative", "ConstantOfShape", 9, nil, []*Arg{toConst(-1)}, 1, nil, ErrShape},
		{"constantofshape variable", "ConstantOfShape", 9, nil, []*Arg{toI64(Known(3))}, 1, []string{"float32[?,?,?]"}, nil},

		{"gemm linear", "Gemm", 13, Attributes{"transB": toInt(1)},
			[]*Arg{toF32(toBatch, Known(1024)), toF32(Known(1000), Known(1024)), toF32(Known(1000))}, 1, []string{"float32[batch,1000]"}, nil},
		{"gemm transA", "Gemm", 13, Attributes{"transA": toInt(1)}, []*Arg{toF32(Known(3), Known(5)), toF32(Known(3), Known(4))}, 1,
			[]string{"float32[5,4]"}, nil},
		{"gemm inner mismatch", "Gemm", 13, nil, []*Arg{toF32(Known(3), Known(5)), toF32(Known(3), Known(4))}, 1, nil, ErrShape},
		{"gemm bad C", "Gemm", 13, nil, []*Arg{toF32(Known(3), Known(5)), toF32(Known(5), Known(4)), toF32(Known(3))}, 1, nil, ErrShape},
		{"gemm6 C must be exact", "Gemm", 6, nil, []*Arg{toF32(Known(3), Known(5)), toF32(Known(5), Known(4)), toF32(Known(4))}, 1, nil, ErrShape},
		{"gemm rank", "Gemm", 13, nil, []*Arg{toF32(Known(3)), toF32(Known(3), Known(4))}, 1, nil, ErrShape},
		{"gemm strings", "Gemm", 13, nil, []*Arg{{Type: Type{DType: tensor.String, Shape: []Dim{Known(1), Known(1)}}},
			{Type: Type{DType: tensor.String, Shape: []Dim{Known(1), Known(1)}}}}, 1, nil, ErrShape},

		{"matmul batch", "MatMul", 13, nil, []*Arg{toF32(toBatch, Known(3), Known(4)), toF32(Known(4), Known(5))}, 1, []string{"float32[batch,3,5]"}, nil},
		{"matmul vectors", "MatMul", 13, nil, []*Arg{toF32(Known(4)), toF32(Known(4))}, 1, []string{"float32[]"}, nil},
		{"matmul broadcast", "MatMul", 13, nil, []*Arg{toF32(Known(2), Known(1), Known(3), Known(4)), toF32(Known(5), Known(4), Known(6))}, 1,
			[]string{"float32[2,5,3,6]"}, nil},
		{"matmul vector left", "MatMul", 13, nil, []*Arg{toF32(Known(3)), toF32(Known(2), Known(3), Known(4))}, 1, []string{"float32[2,4]"}, nil},
		{"matmul vector right", "MatMul", 13, nil, []*Arg{toF32(Known(2), Known(3), Known(4)), toF32(Known(4))}, 1, []string{"float32[2,3]"}, nil},
		{"matmul inner mismatch", "MatMul", 13, nil, []*Arg{toF32(Known(3), Known(4)), toF32(Known(5), Known(4))}, 1, nil, ErrShape},
		{"matmul batch mismatch", "MatMul", 13, nil, []*Arg{toF32(Known(2), Known(3), Known(4)), toF32(Known(3), Known(4), Known(4))}, 1, nil, ErrShape},
		{"matmul unranked", "MatMul", 13, nil, []*Arg{unranked, toF32(Known(4), Known(4))}, 1, []string{"float32[...]"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op, err := decodeTensorOp(tc.op, tc.opset, tc.attrs, len(tc.in), tc.nOut)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			got, err := op.Infer(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v (types %v), want one wrapping %v", err, got, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("infer: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d types %v, want %v", len(got), got, tc.want)
			}
			for i := range got {
				if got[i].String() != tc.want[i] {
					t.Errorf("output %d: %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSliceRanges(t *testing.T) {
	const maxI, minI = math.MaxInt64, math.MinInt64
	tests := []struct {
		name                      string
		dim                       int
		start, end, step          int64
		wantStart, wantStep, wLen int
	}{
		{"plain", 10, 2, 5, 1, 2, 1, 3},
		{"negative start/end", 10, -3, -1, 1, 7, 1, 2},
		{"end clamped", 10, 8, maxI, 1, 8, 1, 2},
		{"start clamped", 10, -100, 3, 1, 0, 1, 3},
		{"step 3", 10, 0, 10, 3, 0, 3, 4},
		{"empty", 10, 5, 2, 1, 0, 1, 0},
		{"reverse all", 10, -1, minI, -1, 9, -1, 10},
		{"reverse step 3", 10, maxI, minI, -3, 9, -3, 4},
		{"reverse part", 10, 7, 2, -2, 7, -2, 3},
		{"reverse empty", 10, 2, 7, -1, 0, -1, 0},
		{"reverse zero dim", 0, -1, minI, -1, 0, -1, 0},
		{"huge step", 10, 3, maxI, maxI, 3, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := SliceRanges(tensor.Shape{tc.dim}, []int64{tc.start}, []int64{tc.end}, nil, []int64{tc.step})
			if err != nil {
				t.Fatal(err)
			}
			want := SliceRange{Start: tc.wantStart, Step: tc.wantStep, Len: tc.wLen}
			if r[0] != want {
				t.Errorf("got %+v, want %+v", r[0], want)
			}
		})
	}
	if _, err := SliceRanges(tensor.Shape{3, 4}, []int64{0, 0}, []int64{1, 1}, []int64{1, -1}, nil); !errors.Is(err, ErrAttr) {
		t.Errorf("repeated axis: error %v", err)
	}
}

func TestReshapeOutputShape(t *testing.T) {
	tests := []struct {
		name      string
		in        tensor.Shape
		spec      []int64
		allowZero bool
		want      tensor.Shape // nil: error
	}{
		{"copy and infer", tensor.Shape{2, 3, 4}, []int64{0, -1}, false, tensor.Shape{2, 12}},
		{"scalar", tensor.Shape{1}, []int64{}, false, tensor.Shape{}},
		{"to vector", tensor.Shape{}, []int64{-1}, false, tensor.Shape{1}},
		{"allowzero literal", tensor.Shape{0, 3}, []int64{3, 0}, true, tensor.Shape{3, 0}},
		{"zero copies", tensor.Shape{0, 3}, []int64{3, 0}, false, nil},
		{"zero beyond rank", tensor.Shape{6}, []int64{2, 0}, false, nil},
		{"allowzero and -1", tensor.Shape{0, 3}, []int64{0, -1}, true, nil},
		{"indivisible", tensor.Shape{2, 3}, []int64{4, -1}, false, nil},
		{"infer with zero size", tensor.Shape{0, 3}, []int64{-1, 3}, false, tensor.Shape{0, 3}},
		{"wrong size", tensor.Shape{2, 3}, []int64{7}, false, nil},
		{"overflowing spec", tensor.Shape{2, 3}, []int64{1 << 40, 1 << 40}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reshape{ShapeFromInput: true, AllowZero: tc.allowZero}
			got, err := r.OutputShape(tc.in, tc.spec)
			if tc.want == nil {
				if !errors.Is(err, ErrShape) {
					t.Fatalf("got %v, %v; want an ErrShape error", got, err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

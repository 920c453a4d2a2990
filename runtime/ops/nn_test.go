package ops

import (
	"errors"
	"reflect"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// nnNode builds a node of the default domain with all inputs present.
func nnNode(op string, opset, nIn, nOut int, attrs Attributes) *Node {
	in := make([]bool, nIn)
	for i := range in {
		in[i] = true
	}
	if attrs == nil {
		attrs = Attributes{}
	}
	return &Node{Name: "n", OpType: op, Opset: opset, Attrs: attrs, Inputs: in, NumOutputs: nOut}
}

func nnIntsA(v ...int64) Attribute { return Attribute{Kind: AttrInts, Ints: v} }
func nnIntA(v int64) Attribute     { return Attribute{Kind: AttrInt, Int: v} }
func nnStrA(v string) Attribute    { return Attribute{Kind: AttrString, String: v} }
func nnFloatA(v float32) Attribute { return Attribute{Kind: AttrFloat, Float: v} }

func TestNNSchemasCoverEveryOpset(t *testing.T) {
	r := Default()
	for _, op := range []string{"Conv", "BatchNormalization", "AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool", "Pad"} {
		for opset := 1; opset <= 25; opset++ {
			if _, err := r.Lookup("", op, opset); err != nil {
				t.Errorf("%s at opset %d: %v", op, opset, err)
			}
		}
	}
	s, err := r.Lookup("ai.onnx", "Pad", 17)
	if err != nil || s.Since != 13 {
		t.Errorf("Pad at opset 17: since %d, %v; want 13", s.Since, err)
	}
}

func TestNNDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		node *Node
		want error // nil: decodes
	}{
		{"conv ok", nnNode("Conv", 22, 3, 1, Attributes{"kernel_shape": nnIntsA(3, 3), "pads": nnIntsA(1, 1, 1, 1)}), nil},
		{"conv no attrs", nnNode("Conv", 11, 2, 1, nil), nil},
		{"conv missing W", nnNode("Conv", 11, 1, 1, nil), ErrArity},
		{"conv kernel vs strides rank", nnNode("Conv", 11, 2, 1, Attributes{"kernel_shape": nnIntsA(3, 3), "strides": nnIntsA(1)}), ErrAttr},
		{"conv pads length", nnNode("Conv", 11, 2, 1, Attributes{"kernel_shape": nnIntsA(3, 3), "pads": nnIntsA(1, 1)}), ErrAttr},
		{"conv odd pads", nnNode("Conv", 11, 2, 1, Attributes{"pads": nnIntsA(1, 1, 1)}), ErrAttr},
		{"conv zero stride", nnNode("Conv", 11, 2, 1, Attributes{"strides": nnIntsA(0, 1)}), ErrAttr},
		{"conv negative pad", nnNode("Conv", 11, 2, 1, Attributes{"pads": nnIntsA(-1, 0, 0, 0)}), ErrAttr},
		{"conv zero dilation", nnNode("Conv", 11, 2, 1, Attributes{"dilations": nnIntsA(0)}), ErrAttr},
		{"conv group 0", nnNode("Conv", 11, 2, 1, Attributes{"group": nnIntA(0)}), ErrAttr},
		{"conv bad auto_pad", nnNode("Conv", 11, 2, 1, Attributes{"auto_pad": nnStrA("SAME")}), ErrAttr},
		{"conv auto_pad wrong kind", nnNode("Conv", 11, 2, 1, Attributes{"auto_pad": nnIntA(1)}), ErrAttr},
		{"conv empty kernel_shape", nnNode("Conv", 11, 2, 1, Attributes{"kernel_shape": nnIntsA()}), ErrAttr},
		{"avgpool no kernel", nnNode("AveragePool", 11, 1, 1, nil), ErrAttr},
		{"avgpool dilations before 19", nnNode("AveragePool", 18, 1, 1, Attributes{"kernel_shape": nnIntsA(2), "dilations": nnIntsA(2)}), ErrAttr},
		{"avgpool dilations at 19", nnNode("AveragePool", 19, 1, 1, Attributes{"kernel_shape": nnIntsA(2), "dilations": nnIntsA(2)}), nil},
		{"avgpool count_include_pad at 6", nnNode("AveragePool", 6, 1, 1, Attributes{"kernel_shape": nnIntsA(2), "count_include_pad": nnIntA(1)}), ErrAttr},
		{"avgpool ceil_mode at 9", nnNode("AveragePool", 9, 1, 1, Attributes{"kernel_shape": nnIntsA(2), "ceil_mode": nnIntA(1)}), ErrAttr},
		{"avgpool ceil_mode 2", nnNode("AveragePool", 10, 1, 1, Attributes{"kernel_shape": nnIntsA(2), "ceil_mode": nnIntA(2)}), ErrAttr},
		{"maxpool indices at 7", nnNode("MaxPool", 7, 1, 2, Attributes{"kernel_shape": nnIntsA(2)}), ErrArity},
		{"maxpool indices at 8", nnNode("MaxPool", 8, 1, 2, Attributes{"kernel_shape": nnIntsA(2)}), nil},
		{"maxpool storage_order 2", nnNode("MaxPool", 12, 1, 1, Attributes{"kernel_shape": nnIntsA(2), "storage_order": nnIntA(2)}), ErrAttr},
		{"maxpool dilations at 10", nnNode("MaxPool", 10, 1, 1, Attributes{"kernel_shape": nnIntsA(2), "dilations": nnIntsA(2)}), nil},
		{"global 2 inputs", nnNode("GlobalMaxPool", 1, 2, 1, nil), ErrArity},
		{"bn 4 inputs", nnNode("BatchNormalization", 15, 4, 1, nil), ErrArity},
		{"bn spatial 0", nnNode("BatchNormalization", 7, 5, 1, Attributes{"spatial": nnIntA(0)}), ErrAttr},
		{"bn 5 outputs at 14", nnNode("BatchNormalization", 14, 5, 5, Attributes{"training_mode": nnIntA(1)}), ErrArity},
		{"bn 3 outputs without training_mode", nnNode("BatchNormalization", 15, 5, 3, nil), ErrArity},
		{"bn is_test=1 with 5 outputs", nnNode("BatchNormalization", 6, 5, 5, Attributes{"is_test": nnIntA(1)}), ErrArity},
		{"bn is_test=2", nnNode("BatchNormalization", 6, 5, 1, Attributes{"is_test": nnIntA(2)}), ErrAttr},
		{"pad wrap at 18", nnNode("Pad", 18, 2, 1, Attributes{"mode": nnStrA("wrap")}), ErrAttr},
		{"pad wrap at 19", nnNode("Pad", 19, 2, 1, Attributes{"mode": nnStrA("wrap")}), nil},
		{"pad bad mode", nnNode("Pad", 13, 2, 1, Attributes{"mode": nnStrA("mirror")}), ErrAttr},
		{"pad-2 without pads", nnNode("Pad", 2, 1, 1, nil), ErrAttr},
		{"pad-1 uses paddings", nnNode("Pad", 1, 1, 1, Attributes{"pads": nnIntsA(0, 0)}), ErrAttr},
		{"pad-2 odd pads", nnNode("Pad", 2, 1, 1, Attributes{"pads": nnIntsA(0, 0, 1)}), ErrAttr},
		{"pad-11 without pads input", nnNode("Pad", 11, 1, 1, nil), ErrArity},
		{"pad-11 with axes", nnNode("Pad", 11, 4, 1, nil), ErrArity},
		{"pad-18 with axes", nnNode("Pad", 18, 4, 1, nil), nil},
	}
	r := Default()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Decode(tc.node)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNNDecodeFields(t *testing.T) {
	r := Default()
	op, err := r.Decode(nnNode("Conv", 22, 3, 1, Attributes{"kernel_shape": nnIntsA(3, 3), "strides": nnIntsA(2, 2),
		"pads": nnIntsA(1, 0, 1, 0), "group": nnIntA(2), "auto_pad": nnStrA("")}))
	if err != nil {
		t.Fatal(err)
	}
	want := &Conv{Window: Window{Kernel: []int{3, 3}, Strides: []int{2, 2}, Pads: []int{1, 0, 1, 0}, AutoPad: AutoPadNotSet}, Group: 2, HasBias: true}
	if !reflect.DeepEqual(op, want) {
		t.Errorf("Conv = %+v, want %+v", op, want)
	}
	bnCases := []struct {
		opset, nOut int
		attrs       Attributes
		training    bool
	}{
		{6, 1, nil, false},
		{6, 1, Attributes{"is_test": nnIntA(1)}, false},
		{6, 5, Attributes{"is_test": nnIntA(0)}, true},
		{1, 1, Attributes{"consumed_inputs": nnIntsA(0, 0, 0, 1, 1)}, false},
		{9, 1, nil, false},
		{9, 5, nil, true},
		{15, 1, Attributes{"training_mode": nnIntA(1)}, true},
		{15, 3, Attributes{"training_mode": nnIntA(1), "momentum": nnFloatA(0.8)}, true},
	}
	for _, c := range bnCases {
		op, err := r.Decode(nnNode("BatchNormalization", c.opset, 5, c.nOut, c.attrs))
		if err != nil {
			t.Fatalf("opset %d %v: %v", c.opset, c.attrs, err)
		}
		bn := op.(*BatchNormalization)
		if bn.Training != c.training || bn.Epsilon != 1e-5 || bn.NumOutputs != c.nOut {
			t.Errorf("opset %d %v: %+v, want training %v", c.opset, c.attrs, bn, c.training)
		}
	}
	op, err = r.Decode(nnNode("Pad", 2, 1, 1, Attributes{"pads": nnIntsA(0, 1, 0, -1), "value": nnFloatA(2.5), "mode": nnStrA("edge")}))
	if err != nil {
		t.Fatal(err)
	}
	if p := op.(*Pad); !reflect.DeepEqual(p.StaticPads, []int64{0, 1, 0, -1}) || p.Value != 2.5 || p.Mode != PadEdge {
		t.Errorf("Pad-2 = %+v", p)
	}
	n := nnNode("Pad", 18, 4, 1, nil)
	n.Inputs[2] = false
	op, err = r.Decode(n)
	if err != nil {
		t.Fatal(err)
	}
	if p := op.(*Pad); p.HasValueInput || !p.HasAxesInput || p.Mode != PadConstant || p.StaticPads != nil {
		t.Errorf("Pad-18 = %+v", p)
	}
}

func TestWindowResolve(t *testing.T) {
	tests := []struct {
		name        string
		w           Window
		in, kernel  []int
		out, pb, pe []int
		wantErr     bool
	}{
		{"valid default", Window{AutoPad: AutoPadNotSet}, []int{5}, []int{3}, []int{3}, []int{0}, []int{0}, false},
		{"pads stride", Window{Strides: []int{2}, Pads: []int{1, 1}, AutoPad: AutoPadNotSet}, []int{5}, []int{3}, []int{3}, []int{1}, []int{1}, false},
		{"asymmetric pads", Window{Strides: []int{2, 2}, Pads: []int{1, 0, 1, 0}, AutoPad: AutoPadNotSet}, []int{7, 5}, []int{3, 3}, []int{4, 2}, []int{1, 0}, []int{1, 0}, false},
		{"dilation", Window{Dilations: []int{2}, AutoPad: AutoPadNotSet}, []int{7}, []int{3}, []int{3}, []int{0}, []int{0}, false},
		// SAME: out = ceil(5/2) = 3, total pad = 2*2 + 2 - 5 = 1 goes to the end (UPPER) or the start (LOWER).
		{"same upper", Window{Strides: []int{2}, AutoPad: AutoPadSameUpper}, []int{5}, []int{2}, []int{3}, []int{0}, []int{1}, false},
		{"same lower", Window{Strides: []int{2}, AutoPad: AutoPadSameLower}, []int{5}, []int{2}, []int{3}, []int{1}, []int{0}, false},
		{"same ignores pads", Window{Pads: []int{5, 5}, AutoPad: AutoPadSameUpper}, []int{4}, []int{3}, []int{4}, []int{1}, []int{1}, false},
		{"valid ignores pads", Window{Pads: []int{5, 5}, Strides: []int{2}, AutoPad: AutoPadValid}, []int{6}, []int{3}, []int{2}, []int{0}, []int{0}, false},
		// ceil: (6-3)/2 = 1.5 -> 2 windows + 1 = 3.
		{"ceil", Window{Strides: []int{2}, CeilMode: true, AutoPad: AutoPadNotSet}, []int{6}, []int{3}, []int{3}, []int{0}, []int{0}, false},
		// ceil with pads 1, stride 3, in 2: ceil((2+2-3)/3)+1 = 2, but window 2 would start at 3-1 = 2 = in: dropped.
		{"ceil last window starts on pad", Window{Strides: []int{3}, Pads: []int{1, 1}, CeilMode: true, AutoPad: AutoPadNotSet}, []int{2}, []int{3}, []int{1}, []int{1}, []int{1}, false},
		{"kernel too big", Window{AutoPad: AutoPadNotSet}, []int{2}, []int{3}, nil, nil, nil, true},
		{"valid kernel too big", Window{AutoPad: AutoPadValid}, []int{2}, []int{3}, nil, nil, nil, true},
		{"rank mismatch", Window{Strides: []int{1, 1}, AutoPad: AutoPadNotSet}, []int{4}, []int{3}, nil, nil, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := tc.w.Resolve(tc.in, tc.kernel)
			if tc.wantErr {
				if !errors.Is(err, ErrShape) {
					t.Fatalf("error %v, want ErrShape", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.Out, tc.out) || !reflect.DeepEqual(g.PadBegin, tc.pb) || !reflect.DeepEqual(g.PadEnd, tc.pe) {
				t.Errorf("out %v pads %v %v, want %v %v %v", g.Out, g.PadBegin, g.PadEnd, tc.out, tc.pb, tc.pe)
			}
		})
	}
}

// nnT builds a float32 Type from dims: ints are known sizes, strings symbolic names, nil unknown.
func nnT(dt tensor.DType, dims ...any) Type {
	s := make([]Dim, len(dims))
	for i, d := range dims {
		switch v := d.(type) {
		case int:
			s[i] = Known(int64(v))
		case string:
			s[i] = Symbolic(v)
		default:
			s[i] = Unknown()
		}
	}
	return Type{DType: dt, Shape: s}
}

func nnArgs(ts ...Type) []*Arg {
	out := make([]*Arg, len(ts))
	for i, t := range ts {
		out[i] = &Arg{Type: t}
	}
	return out
}

func TestNNInfer(t *testing.T) {
	f32, i64 := tensor.Float32, tensor.Int64
	unranked := Type{DType: f32, Unranked: true}
	decode := func(op string, opset, nIn, nOut int, attrs Attributes) Op {
		o, err := Default().Decode(nnNode(op, opset, nIn, nOut, attrs))
		if err != nil {
			t.Fatalf("decode %s: %v", op, err)
		}
		return o
	}
	conv7 := decode("Conv", 11, 2, 1, Attributes{"kernel_shape": nnIntsA(7, 7), "strides": nnIntsA(2, 2), "pads": nnIntsA(3, 3, 3, 3)})
	convNoK := decode("Conv", 11, 3, 1, Attributes{"group": nnIntA(2)})
	convSame := decode("Conv", 11, 2, 1, Attributes{"auto_pad": nnStrA("SAME_UPPER")})
	conv1x1 := decode("Conv", 11, 2, 1, nil)
	maxpool2 := decode("MaxPool", 22, 1, 2, Attributes{"kernel_shape": nnIntsA(3, 3), "strides": nnIntsA(2, 2), "pads": nnIntsA(1, 1, 1, 1), "ceil_mode": nnIntA(1)})
	avgpool := decode("AveragePool", 22, 1, 1, Attributes{"kernel_shape": nnIntsA(2, 2), "strides": nnIntsA(2, 2)})
	gap := decode("GlobalAveragePool", 22, 1, 1, nil)
	bnTrain := decode("BatchNormalization", 15, 5, 3, Attributes{"training_mode": nnIntA(1)})
	bn := decode("BatchNormalization", 15, 5, 1, nil)
	pad2 := decode("Pad", 2, 1, 1, Attributes{"pads": nnIntsA(0, 0, 1, 2, 0, 0, 1, -1)})
	pad18 := decode("Pad", 18, 4, 1, nil)
	pad11 := decode("Pad", 11, 2, 1, nil)
	vec := func(n any) Type { return nnT(f32, n) }
	constArg := func(v ...int64) *Arg {
		c := tensor.FromSlice(tensor.Shape{len(v)}, v)
		return &Arg{Type: TypeOf(c), Const: c}
	}

	tests := []struct {
		name    string
		op      Op
		in      []*Arg
		want    []Type
		wantErr error
	}{
		{"conv batch", conv7, nnArgs(nnT(f32, "batch", 3, 224, 224), nnT(f32, 64, 3, 7, 7)), []Type{nnT(f32, "batch", 64, 112, 112)}, nil},
		{"conv unknown spatial", conv7, nnArgs(nnT(f32, "batch", 3, "h", nil), nnT(f32, 64, 3, 7, 7)), []Type{nnT(f32, "batch", 64, nil, nil)}, nil},
		{"conv same keeps symbolic", convSame, nnArgs(nnT(f32, "n", 8, "h", 10), nnT(f32, 4, 8, 3, 3)), []Type{nnT(f32, "n", 4, "h", 10)}, nil},
		{"conv 1x1 keeps symbolic", conv1x1, nnArgs(nnT(f32, "n", 8, "h", "w"), nnT(f32, 4, 8, 1, 1)), []Type{nnT(f32, "n", 4, "h", "w")}, nil},
		{"conv kernel from W unknown", convNoK, nnArgs(nnT(f32, 1, 4, 5, 5), nnT(f32, 6, 2, nil, 3), vec(6)), []Type{nnT(f32, 1, 6, nil, 3)}, nil},
		{"conv unranked X", conv7, nnArgs(unranked, nnT(f32, 64, 3, 7, 7)), []Type{nnT(f32, nil, 64, nil, nil)}, nil},
		{"conv unranked both", convNoK, nnArgs(unranked, unranked), []Type{unranked}, nil},
		{"conv group mismatch", convNoK, nnArgs(nnT(f32, 1, 5, 5, 5), nnT(f32, 6, 2, 3, 3)), nil, ErrShape},
		{"conv M not divisible", convNoK, nnArgs(nnT(f32, 1, 4, 5, 5), nnT(f32, 5, 2, 3, 3)), nil, ErrShape},
		{"conv bias length", convNoK, nnArgs(nnT(f32, 1, 4, 5, 5), nnT(f32, 6, 2, 3, 3), vec(5)), nil, ErrShape},
		{"conv W rank", conv7, nnArgs(nnT(f32, 1, 3, 9, 9), nnT(f32, 64, 3, 7)), nil, ErrShape},
		{"conv kernel_shape vs W", conv7, nnArgs(nnT(f32, 1, 3, 9, 9), nnT(f32, 64, 3, 5, 5)), nil, ErrShape},
		{"conv rank 2", conv1x1, nnArgs(nnT(f32, 1, 3), nnT(f32, 4, 3)), nil, ErrShape},
		{"conv too small", conv1x1, nnArgs(nnT(f32, 1, 3, 2, 2), nnT(f32, 64, 3, 5, 5)), nil, ErrShape},
		{"conv dtype mismatch", conv1x1, nnArgs(nnT(f32, 1, 3, 4), nnT(tensor.Float64, 4, 3, 1)), nil, ErrShape},
		{"maxpool indices", maxpool2, nnArgs(nnT(f32, "batch", 3, 6, 7)), []Type{nnT(f32, "batch", 3, 4, 4), nnT(i64, "batch", 3, 4, 4)}, nil},
		{"maxpool wrong rank", maxpool2, nnArgs(nnT(f32, 1, 3, 6)), nil, ErrShape},
		{"avgpool unranked", avgpool, nnArgs(unranked), []Type{nnT(f32, nil, nil, nil, nil)}, nil},
		{"avgpool symbolic spatial", avgpool, nnArgs(nnT(f32, "b", 3, "h", 8)), []Type{nnT(f32, "b", 3, nil, 4)}, nil},
		{"global", gap, nnArgs(nnT(f32, "batch", 1024, 7, 7)), []Type{nnT(f32, "batch", 1024, 1, 1)}, nil},
		{"global 3d", gap, nnArgs(nnT(f32, 2, 3, nil, 4, 5)), []Type{nnT(f32, 2, 3, 1, 1, 1)}, nil},
		{"global rank 2", gap, nnArgs(nnT(f32, 2, 3)), nil, ErrShape},
		{"bn", bn, nnArgs(nnT(f32, "batch", 3, 4, 4), vec(3), vec(3), vec(3), vec(3)), []Type{nnT(f32, "batch", 3, 4, 4)}, nil},
		{"bn training", bnTrain, nnArgs(nnT(f32, "batch", "c", 4), vec(3), vec(3), vec(3), vec(3)), []Type{nnT(f32, "batch", "c", 4), vec(3), vec(3)}, nil},
		{"bn param length", bn, nnArgs(nnT(f32, 2, 3, 4), vec(3), vec(4), vec(3), vec(3)), nil, ErrShape},
		{"bn param rank", bn, nnArgs(nnT(f32, 2, 3, 4), nnT(f32, 3, 1), vec(3), vec(3), vec(3)), nil, ErrShape},
		{"bn rank 1", bn, nnArgs(nnT(f32, 3), vec(3), vec(3), vec(3), vec(3)), nil, ErrShape},
		{"pad-2 static", pad2, nnArgs(nnT(f32, "batch", 3, 4, 5)), []Type{nnT(f32, "batch", 3, 6, 6)}, nil},
		{"pad-2 symbolic padded", pad2, nnArgs(nnT(f32, "batch", 3, "h", 5)), []Type{nnT(f32, "batch", 3, nil, 6)}, nil},
		{"pad-2 rank mismatch", pad2, nnArgs(nnT(f32, 3, 4, 5)), nil, ErrShape},
		{"pad-11 non-constant pads", pad11, nnArgs(nnT(f32, "b", 3), nnT(i64, 4)), []Type{nnT(f32, nil, nil)}, nil},
		{"pad-11 constant pads", pad11, []*Arg{{Type: nnT(f32, "b", 3)}, constArg(0, 1, 0, 2)}, []Type{nnT(f32, "b", 6)}, nil},
		{"pad-11 crop too much", pad11, []*Arg{{Type: nnT(f32, "b", 3)}, constArg(0, -2, 0, -2)}, nil, ErrShape},
		{"pad-18 axes", pad18, []*Arg{{Type: nnT(f32, "b", 3, 4)}, constArg(1, -1), {Type: nnT(f32)}, constArg(-1)}, []Type{nnT(f32, "b", 3, 4)}, nil},
		{"pad-18 axes non-constant", pad18, []*Arg{{Type: nnT(f32, "b", 3, 4)}, constArg(1, -1), {Type: nnT(f32)}, {Type: nnT(i64, 1)}}, []Type{nnT(f32, nil, nil, nil)}, nil},
		{"pad-18 value type", pad18, []*Arg{{Type: nnT(f32, "b", 3, 4)}, constArg(1, 1), {Type: nnT(i64)}, constArg(0)}, nil, ErrShape},
		{"pad-18 repeated axis", pad18, []*Arg{{Type: nnT(f32, "b", 3, 4)}, constArg(1, 1, 1, 1), {Type: nnT(f32)}, constArg(1, -2)}, nil, ErrShape},
		{"pad unranked", pad2, nnArgs(unranked), []Type{unranked}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.op.Infer(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPadFullPads(t *testing.T) {
	p := &Pad{Mode: PadConstant}
	pads := tensor.FromSlice(tensor.Shape{4}, []int64{1, 2, 3, 4})
	axes := tensor.FromSlice(tensor.Shape{2}, []int32{-1, 0})
	got, err := p.FullPads(3, pads, axes)
	if err != nil {
		t.Fatal(err)
	}
	// axes (2, 0): begins 1 -> axis 2, 2 -> axis 0; ends 3 -> axis 2, 4 -> axis 0.
	if want := []int{2, 0, 1, 4, 0, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("FullPads = %v, want %v", got, want)
	}
	if _, err := p.FullPads(3, pads, nil); !errors.Is(err, ErrShape) {
		t.Errorf("4 pads for rank 3: %v, want ErrShape", err)
	}
	if _, err := p.FullPads(2, tensor.FromSlice(tensor.Shape{4}, []float32{0, 0, 0, 0}), nil); !errors.Is(err, ErrShape) {
		t.Errorf("float pads: %v, want ErrShape", err)
	}
	if _, err := p.FullPads(2, nil, nil); !errors.Is(err, ErrArity) {
		t.Errorf("no pads: %v, want ErrArity", err)
	}
	edge := &Pad{Mode: PadEdge}
	if _, err := edge.PadShape([]int{2}, []int{-1, 1}); err != nil {
		t.Errorf("edge crop 1 of 2 then pad: %v", err)
	}
	if _, err := edge.PadShape([]int{2}, []int{-2, 1}); !errors.Is(err, ErrShape) {
		t.Errorf("edge mode with everything cropped: %v, want ErrShape", err)
	}
}

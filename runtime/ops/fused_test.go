package ops

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

func fusedNode(attrs Attributes, nIn int) *Node {
	in := make([]bool, nIn)
	for i := range in {
		in[i] = true
	}
	return &Node{Name: "f", OpType: "FusedConv", Domain: DomainDNX, Opset: 1, Attrs: attrs, Inputs: in, NumOutputs: 1}
}

func TestFusedConvDecodeRoundTrip(t *testing.T) {
	conv := Attributes{"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}, "group": {Kind: AttrInt, Int: 1}}
	convCopy := Attributes{"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}, "group": {Kind: AttrInt, Int: 1}}
	cases := []*FusedConv{
		{PreScale: []float32{1, 2}, PreShift: []float32{-1, 0.5}, PreRelu: true, Post: Activation{Kind: ActRelu}},
		{PreScale: []float32{3}, PreShift: []float32{4}},
		{Post: Activation{Kind: ActRelu}},
		{Post: Activation{Kind: ActClip, Alpha: 0, Beta: 6}},
		{Post: Activation{Kind: ActClip, Alpha: float32(math.Inf(-1)), Beta: 1}},
		{Post: Activation{Kind: ActHardSigmoid, Alpha: 0.2, Beta: 0.5}},
		{Post: Activation{Kind: ActLeakyRelu, Alpha: 0.01}},
		{Post: Activation{Kind: ActHardSwish}},
		{Post: Activation{Kind: ActSigmoid}},
		{Post: Activation{Kind: ActSiLU}},
	}
	for _, want := range cases {
		attrs := FusedConvAttrs(conv, want)
		if !reflect.DeepEqual(conv, convCopy) {
			t.Fatalf("FusedConvAttrs modified the Conv attributes: %v", conv)
		}
		op, err := Default().Decode(fusedNode(attrs, 3))
		if err != nil {
			t.Fatal(err)
		}
		got := op.(*FusedConv)
		if !reflect.DeepEqual(got.PreScale, want.PreScale) || !reflect.DeepEqual(got.PreShift, want.PreShift) ||
			got.PreRelu != want.PreRelu || got.Post != want.Post || got.Residual {
			t.Errorf("decoded %+v, want %+v", got, want)
		}
		if !got.Conv.HasBias || !reflect.DeepEqual(got.Conv.Pads, []int{1, 1, 1, 1}) {
			t.Errorf("decoded Conv %+v, want pads 1 and a bias", got.Conv)
		}
		if got.HasPrologue() != (want.PreScale != nil || want.PreRelu) {
			t.Errorf("HasPrologue = %v for %+v", got.HasPrologue(), want)
		}
	}
}

func TestFusedConvDecodeErrors(t *testing.T) {
	f := func(v ...float32) Attribute { return Attribute{Kind: AttrFloats, Floats: v} }
	cases := []struct {
		name  string
		attrs Attributes
	}{
		{"scale without shift", Attributes{"pre_scale": f(1)}},
		{"lengths differ", Attributes{"pre_scale": f(1, 2), "pre_shift": f(1)}},
		{"empty prologue", Attributes{"pre_scale": f(), "pre_shift": f()}},
		{"NaN scale", Attributes{"pre_scale": f(float32(math.NaN())), "pre_shift": f(0)}},
		{"infinite shift", Attributes{"pre_scale": f(1), "pre_shift": f(float32(math.Inf(1)))}},
		{"pre_relu 2", Attributes{"pre_relu": {Kind: AttrInt, Int: 2}}},
		{"post_relu float", Attributes{"post_relu": {Kind: AttrFloat, Float: 1}}},
		{"unknown activation", Attributes{"activation": {Kind: AttrString, String: "Tanh"}}},
		{"Clip without bounds", Attributes{"activation": {Kind: AttrString, String: "Clip"}}},
		{"Relu with params", Attributes{"activation": {Kind: AttrString, String: "Relu"}, "activation_params": f(1)}},
		{"params alone", Attributes{"activation_params": f(1)}},
		{"NaN param", Attributes{"activation": {Kind: AttrString, String: "LeakyRelu"}, "activation_params": f(float32(math.NaN()))}},
		{"post_relu and Clip", Attributes{"post_relu": {Kind: AttrInt, Int: 1}, "activation": {Kind: AttrString, String: "Clip"}, "activation_params": f(0, 6)}},
		{"bad Conv attribute", Attributes{"group": {Kind: AttrInt, Int: 0}}},
	}
	for _, c := range cases {
		if _, err := Default().Decode(fusedNode(c.attrs, 2)); !errors.Is(err, ErrAttr) {
			t.Errorf("%s: err = %v, want ErrAttr", c.name, err)
		}
	}
	// The default domain has no FusedConv.
	n := fusedNode(nil, 2)
	n.Domain, n.Opset = "", 13
	if _, err := Default().Decode(n); !errors.Is(err, ErrUnsupportedOp) {
		t.Errorf("FusedConv in the ONNX domain: err = %v, want ErrUnsupportedOp", err)
	}
}

func TestFusedConvInfer(t *testing.T) {
	x := &Arg{Type: Type{DType: tensor.Float32, Shape: []Dim{Symbolic("N"), Known(4), Known(8), Known(8)}}}
	w := &Arg{Type: Type{DType: tensor.Float32, Shape: []Dim{Known(2), Known(4), Known(3), Known(3)}}}
	conv := Conv{Window: Window{Pads: []int{1, 1, 1, 1}, AutoPad: AutoPadNotSet}, Group: 1}
	four := []float32{1, 1, 1, 1}
	got, err := (&FusedConv{Conv: conv, PreScale: four, PreShift: four, PreRelu: true}).Infer([]*Arg{x, w})
	if err != nil {
		t.Fatal(err)
	}
	if s := got[0].String(); s != "float32[N,2,8,8]" {
		t.Errorf("type %s, want float32[N,2,8,8]", s)
	}
	if _, err := (&FusedConv{Conv: conv, PreScale: four[:3], PreShift: four[:3]}).Infer([]*Arg{x, w}); !errors.Is(err, ErrShape) {
		t.Errorf("3-channel prologue on 4 channels: err = %v, want ErrShape", err)
	}
	if _, err := (&FusedConv{Conv: conv, PreScale: four, PreShift: four[:2]}).Infer([]*Arg{x, w}); !errors.Is(err, ErrAttr) {
		t.Errorf("mismatched prologue: err = %v, want ErrAttr", err)
	}
	// A residual must have Y's type.
	z := func(dt tensor.DType, dims ...Dim) *Arg { return &Arg{Type: Type{DType: dt, Shape: dims}} }
	res := &FusedConv{Conv: conv, Residual: true}
	if _, err := res.Infer([]*Arg{x, w, nil, z(tensor.Float32, Symbolic("N"), Known(2), Known(8), Known(8))}); err != nil {
		t.Errorf("matching residual: %v", err)
	}
	for _, c := range []struct {
		name string
		z    *Arg
		want error
	}{
		{"absent", nil, ErrArity},
		{"channels", z(tensor.Float32, Symbolic("N"), Known(3), Known(8), Known(8)), ErrShape},
		{"rank", z(tensor.Float32, Known(2), Known(8), Known(8)), ErrShape},
		{"dtype", z(tensor.Float64, Symbolic("N"), Known(2), Known(8), Known(8)), ErrShape},
	} {
		if _, err := res.Infer([]*Arg{x, w, nil, c.z}); !errors.Is(err, c.want) {
			t.Errorf("residual %s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestFusedConvDecodeResidual(t *testing.T) {
	n := fusedNode(FusedConvAttrs(nil, &FusedConv{Post: Activation{Kind: ActRelu}}), 4)
	n.Inputs[2] = false
	op, err := Default().Decode(n)
	if err != nil {
		t.Fatal(err)
	}
	if f := op.(*FusedConv); !f.Residual || f.Conv.HasBias || f.Post.Kind != ActRelu {
		t.Errorf("decoded %+v, want a residual, no bias, ReLU", f)
	}
	// post_relu = 1, the older form, is ReLU.
	op, err = Default().Decode(fusedNode(Attributes{"post_relu": {Kind: AttrInt, Int: 1}}, 3))
	if err != nil {
		t.Fatal(err)
	}
	if f := op.(*FusedConv); f.Post != (Activation{Kind: ActRelu}) || f.Residual {
		t.Errorf("post_relu=1 decoded as %+v", f)
	}
}

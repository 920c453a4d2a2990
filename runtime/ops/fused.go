package ops

import (
	"fmt"
	"maps"
	"math"
)

// DomainDNX is the operator domain of dnx's internal fused operators. Optimization passes create
// them inside a graph; they are not standard ONNX, so a graph holding one cannot be exported as a
// portable model.
const DomainDNX = "dnx"

// FusedConv is a Conv with an optional per-channel prologue on its input and an optional
// epilogue on its output: a residual added and an activation. Inputs are those of Conv, X
// [N,C,D1..Dn], W [M,C/Group,k1..kn] and an optional bias B [M], then an optional residual Z of
// Y's shape (input 3; the bias position may be absent). With C input channels,
//
//	X'[n,c,...] = PreScale[c] * X[n,c,...] + PreShift[c]   (skipped when PreScale is nil)
//	X''         = max(X', 0)                               (when PreRelu)
//	Y           = Conv(X'', W, B)                          (zero padding pads X'', not X)
//	Y           = Post(Y + Z)                              (Z when present; Post: see Activation)
//
// The prologue is an inference BatchNormalization (PreScale = gamma/sqrt(var+eps), PreShift =
// beta - mean*PreScale) followed by a ReLU: the DenseNet pattern Concat -> BN -> ReLU -> Conv,
// where the BN cannot be folded into the weights because the padding must see the normalized
// values. A kernel that applies the prologue while it packs its input panel avoids writing the
// normalized tensor at all. The epilogue is the activation after a Conv (with a folded BN): ReLU,
// ReLU6 (Clip), HardSwish, SiLU...; with a residual, ResNet's and MobileNetV2's Conv -> Add
// (-> ReLU), so that the sum is made while the convolution's output is still in cache.
type FusedConv struct {
	Conv Conv
	// PreScale and PreShift have one entry per input channel, or are both nil.
	PreScale, PreShift []float32
	PreRelu            bool
	// Residual is set when input 3, Z, is present.
	Residual bool
	Post     Activation
}

// ActivationKind names an element-wise function an epilogue applies.
type ActivationKind uint8

// The activations a FusedConv epilogue applies, each as its ONNX operator defines it.
const (
	ActNone        ActivationKind = iota
	ActRelu                       // max(x, 0)
	ActClip                       // min(max(x, Alpha), Beta)
	ActLeakyRelu                  // x >= 0 ? x : Alpha*x
	ActHardSigmoid                // max(0, min(1, Alpha*x + Beta))
	ActHardSwish                  // x * max(0, min(1, x/6 + 1/2))
	ActSigmoid                    // 1 / (1 + exp(-x))
	ActSiLU                       // x * sigmoid(x)
)

// activationNames are the values of a FusedConv's "activation" attribute, by kind: ONNX's
// operator names (and dnx's SiLU), as ONNX Runtime's com.microsoft FusedConv spells them.
var activationNames = [...]string{"", "Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "SiLU"}

// String returns the operator name of k ("" for ActNone).
func (k ActivationKind) String() string {
	if int(k) < len(activationNames) {
		return activationNames[k]
	}
	return fmt.Sprintf("ActivationKind(%d)", int(k))
}

// Activation is an element-wise function with its parameters: Clip's bounds (Alpha = min, Beta =
// max), LeakyRelu's Alpha, HardSigmoid's Alpha and Beta. The zero value is the identity.
type Activation struct {
	Kind        ActivationKind
	Alpha, Beta float32
}

// params returns the parameters the kind reads, for the activation_params attribute.
func (a Activation) params() []float32 {
	switch a.Kind {
	case ActClip, ActHardSigmoid:
		return []float32{a.Alpha, a.Beta}
	case ActLeakyRelu:
		return []float32{a.Alpha}
	}
	return nil
}

// OpType returns "FusedConv".
func (*FusedConv) OpType() string { return "FusedConv" }

// HasPrologue reports whether anything is applied to X before the convolution.
func (f *FusedConv) HasPrologue() bool { return f.PreScale != nil || f.PreRelu }

// Infer implements Op: the prologue keeps X's type, so Y's type is Conv's. It also checks that the
// prologue has one entry per input channel when the channel count is known, and that a residual
// has Y's type.
func (f *FusedConv) Infer(in []*Arg) ([]Type, error) {
	if err := checkPrologue("FusedConv", f.PreScale, f.PreShift, in); err != nil {
		return nil, err
	}
	out, err := f.Conv.Infer(in[:min(len(in), 3)])
	if err != nil || !f.Residual {
		return out, err
	}
	z := nnArg(in, 3)
	if z == nil {
		return nil, fmt.Errorf("%w: FusedConv has a residual but input 3 is absent", ErrArity)
	}
	if z.Type.DType != out[0].DType {
		return nil, fmt.Errorf("%w: FusedConv residual is %v, Y is %v", ErrShape, z.Type.DType, out[0].DType)
	}
	if !z.Type.Unranked && !out[0].Unranked {
		zs, ys := z.Type.Shape, out[0].Shape
		if len(zs) != len(ys) {
			return nil, fmt.Errorf("%w: FusedConv residual has rank %d, Y has rank %d", ErrShape, len(zs), len(ys))
		}
		for i := range zs {
			if zs[i].IsKnown() && ys[i].IsKnown() && zs[i].Value != ys[i].Value {
				return nil, fmt.Errorf("%w: FusedConv residual dim %d is %d, Y's is %d", ErrShape, i, zs[i].Value, ys[i].Value)
			}
		}
	}
	return out, nil
}

// FusedAveragePool is an AveragePool with FusedConv's per-channel prologue on its input:
//
//	X'  = PreScale[c] * X[n,c,...] + PreShift[c]   (skipped when PreScale is nil)
//	X'' = max(X', 0)                               (when PreRelu)
//	Y   = AveragePool(X'')
//
// It is DenseNet's transition, BN -> ReLU -> Conv 1x1 -> AveragePool, once the pooling has been
// moved before the 1x1 convolution (passes.PoolBeforePointwiseConv: the average of a pointwise
// affine map is the map of the average), which leaves BN -> ReLU -> AveragePool -> Conv and a
// convolution over a quarter of the pixels. The pooling kernel applies the prologue to each tap
// it reads, so the normalized tensor is never written.
type FusedAveragePool struct {
	Pool AveragePool
	// PreScale and PreShift have one entry per input channel, or are both nil.
	PreScale, PreShift []float32
	PreRelu            bool
}

// OpType returns "FusedAveragePool".
func (*FusedAveragePool) OpType() string { return "FusedAveragePool" }

// HasPrologue reports whether anything is applied to X before the pooling.
func (f *FusedAveragePool) HasPrologue() bool { return f.PreScale != nil || f.PreRelu }

// Infer implements Op: Y's type is AveragePool's; the prologue must have one entry per input
// channel when the channel count is known.
func (f *FusedAveragePool) Infer(in []*Arg) ([]Type, error) {
	if err := checkPrologue("FusedAveragePool", f.PreScale, f.PreShift, in); err != nil {
		return nil, err
	}
	return f.Pool.Infer(in)
}

// checkPrologue checks a prologue's sizes against X (in[0]).
func checkPrologue(op string, scale, shift []float32, in []*Arg) error {
	if len(scale) != len(shift) {
		return fmt.Errorf("%w: %s has %d PreScale and %d PreShift values", ErrAttr, op, len(scale), len(shift))
	}
	if x := nnArg(in, 0); x != nil && scale != nil && !x.Type.Unranked && len(x.Type.Shape) >= 2 {
		if c := x.Type.Shape[1]; c.IsKnown() && c.Value != int64(len(scale)) {
			return fmt.Errorf("%w: %s X has %d channels, the prologue has %d", ErrShape, op, c.Value, len(scale))
		}
	}
	return nil
}

// The attribute names a FusedConv node carries besides Conv's own, so that its Attrs describe it
// completely and decodeFusedConv can rebuild it.
const (
	attrPreScale = "pre_scale"
	attrPreShift = "pre_shift"
	attrPreRelu  = "pre_relu"
	// attrPostRelu is the old form of activation "Relu", still decoded.
	attrPostRelu   = "post_relu"
	attrActivation = "activation"
	attrActParams  = "activation_params"
)

// FusedConvAttrs returns the attributes of a FusedConv node: a copy of the Conv node's attributes
// plus pre_scale and pre_shift (floats, only with a prologue), pre_relu (int 0/1), and with an
// epilogue activation its name (string "Relu", "Clip", ...) and activation_params (floats, for
// the kinds that have parameters). conv is not modified.
func FusedConvAttrs(conv Attributes, f *FusedConv) Attributes {
	a := prologueAttrs(conv, f.PreScale, f.PreShift, f.PreRelu)
	delete(a, attrPostRelu)
	delete(a, attrActivation)
	delete(a, attrActParams)
	if f.Post.Kind != ActNone {
		a[attrActivation] = Attribute{Kind: AttrString, String: f.Post.Kind.String()}
		if p := f.Post.params(); p != nil {
			a[attrActParams] = Attribute{Kind: AttrFloats, Floats: p}
		}
	}
	return a
}

// FusedAveragePoolAttrs returns the attributes of a FusedAveragePool node: a copy of the
// AveragePool node's attributes plus the prologue's (see FusedConvAttrs). pool is not modified.
func FusedAveragePoolAttrs(pool Attributes, f *FusedAveragePool) Attributes {
	return prologueAttrs(pool, f.PreScale, f.PreShift, f.PreRelu)
}

// prologueAttrs returns a copy of base with the prologue attributes set.
func prologueAttrs(base Attributes, scale, shift []float32, relu bool) Attributes {
	a := maps.Clone(base)
	if a == nil {
		a = Attributes{}
	}
	delete(a, attrPreScale)
	delete(a, attrPreShift)
	if scale != nil {
		a[attrPreScale] = Attribute{Kind: AttrFloats, Floats: append([]float32(nil), scale...)}
		a[attrPreShift] = Attribute{Kind: AttrFloats, Floats: append([]float32(nil), shift...)}
	}
	a[attrPreRelu] = boolAttr(relu)
	return a
}

func boolAttr(v bool) Attribute {
	if v {
		return Attribute{Kind: AttrInt, Int: 1}
	}
	return Attribute{Kind: AttrInt, Int: 0}
}

// fusedSchemas lists the dnx-domain operators. Passes build FusedConv nodes directly; the schema
// lets a graph whose nodes carry FusedConvAttrs be decoded again (for example after a rewrite
// that re-decodes every node).
func fusedSchemas() []Schema {
	return []Schema{
		{Domain: DomainDNX, OpType: "FusedConv", Since: 1, Decode: decodeFusedConv},
		{Domain: DomainDNX, OpType: "FusedAveragePool", Since: 1, Decode: decodeFusedAveragePool},
		{Domain: DomainDNX, OpType: "SiLU", Since: 1, Decode: decodeSiLU},
	}
}

// decodeFusedConv reads Conv's attributes and the fused ones: pre_scale and pre_shift (floats of
// equal length, both or neither, finite), pre_relu (0 or 1, default 0), activation and
// activation_params (or the older post_relu, 0 or 1). Input 3, when present, is the residual.
func decodeFusedConv(n *Node) (Op, error) {
	if err := CheckArity(n, 2, 4, 1, 1); err != nil {
		return nil, err
	}
	conv := *n
	conv.Inputs = n.Inputs[:min(len(n.Inputs), 3)]
	op, err := decodeConv(&conv)
	if err != nil {
		return nil, err
	}
	f := &FusedConv{Conv: *op.(*Conv), Residual: len(n.Inputs) == 4 && n.Inputs[3]}
	if f.PreScale, f.PreShift, f.PreRelu, err = decodePrologue("FusedConv", n); err != nil {
		return nil, err
	}
	if f.Post, err = decodeActivation("FusedConv", n); err != nil {
		return nil, err
	}
	return f, nil
}

// decodeActivation reads an epilogue: activation (an operator name, see ActivationKind) with
// activation_params (as many floats as the kind has parameters, finite), or post_relu = 1.
func decodeActivation(op string, n *Node) (Activation, error) {
	relu, err := decodeFlag(op, n, attrPostRelu)
	if err != nil {
		return Activation{}, err
	}
	name, err := n.Attrs.String(attrActivation, "")
	if err != nil {
		return Activation{}, err
	}
	if name == "" {
		if n.Attrs.Has(attrActParams) {
			return Activation{}, fmt.Errorf("%w: %s has %s without %s", ErrAttr, op, attrActParams, attrActivation)
		}
		if relu {
			return Activation{Kind: ActRelu}, nil
		}
		return Activation{}, nil
	}
	var a Activation
	for k, s := range activationNames {
		if s == name && k != int(ActNone) {
			a.Kind = ActivationKind(k)
		}
	}
	if a.Kind == ActNone {
		return Activation{}, fmt.Errorf("%w: %s %s %q is not one of %v", ErrAttr, op, attrActivation, name, activationNames[1:])
	}
	if relu && a.Kind != ActRelu {
		return Activation{}, fmt.Errorf("%w: %s has %s = 1 and %s %q", ErrAttr, op, attrPostRelu, attrActivation, name)
	}
	p, err := n.Attrs.Floats(attrActParams, nil)
	if err != nil {
		return Activation{}, err
	}
	if want := len(a.params()); len(p) != want {
		return Activation{}, fmt.Errorf("%w: %s %s %s takes %d %s, got %d", ErrAttr, op, attrActivation, name, want, attrActParams, len(p))
	}
	for i, v := range p {
		if math.IsNaN(float64(v)) || (math.IsInf(float64(v), 0) && a.Kind != ActClip) {
			return Activation{}, fmt.Errorf("%w: %s %s[%d] = %g", ErrAttr, op, attrActParams, i, v)
		}
	}
	switch len(p) {
	case 2:
		a.Alpha, a.Beta = p[0], p[1]
	case 1:
		a.Alpha = p[0]
	}
	return a, nil
}

// decodeFusedAveragePool reads AveragePool's attributes (as the newest AveragePool version knows
// them: the node's own opset is the dnx domain's) and the prologue's.
func decodeFusedAveragePool(n *Node) (Op, error) {
	m := *n
	m.Opset = latestAveragePool
	op, err := decodeAveragePool(&m)
	if err != nil {
		return nil, err
	}
	f := &FusedAveragePool{Pool: *op.(*AveragePool)}
	if f.PreScale, f.PreShift, f.PreRelu, err = decodePrologue("FusedAveragePool", n); err != nil {
		return nil, err
	}
	return f, nil
}

// latestAveragePool is the newest AveragePool version dnx decodes.
const latestAveragePool = 22

// decodePrologue reads pre_scale and pre_shift (floats of equal positive length, both or
// neither, finite) and pre_relu (0 or 1, default 0).
func decodePrologue(op string, n *Node) (scale, shift []float32, relu bool, err error) {
	if n.Attrs.Has(attrPreScale) != n.Attrs.Has(attrPreShift) {
		return nil, nil, false, fmt.Errorf("%w: %s needs both %s and %s, or neither", ErrAttr, op, attrPreScale, attrPreShift)
	}
	if n.Attrs.Has(attrPreScale) {
		if scale, err = n.Attrs.Floats(attrPreScale, nil); err != nil {
			return nil, nil, false, err
		}
		if shift, err = n.Attrs.Floats(attrPreShift, nil); err != nil {
			return nil, nil, false, err
		}
		if len(scale) != len(shift) || len(scale) == 0 {
			return nil, nil, false, fmt.Errorf("%w: %s %s has %d values and %s %d, want the same positive count",
				ErrAttr, op, attrPreScale, len(scale), attrPreShift, len(shift))
		}
		for i := range scale {
			s, t := float64(scale[i]), float64(shift[i])
			if math.IsNaN(s) || math.IsInf(s, 0) || math.IsNaN(t) || math.IsInf(t, 0) {
				return nil, nil, false, fmt.Errorf("%w: %s prologue channel %d is not finite (%g, %g)", ErrAttr, op, i, s, t)
			}
		}
	}
	relu, err = decodeFlag(op, n, attrPreRelu)
	return scale, shift, relu, err
}

// decodeFlag reads a 0/1 attribute (default 0).
func decodeFlag(op string, n *Node, name string) (bool, error) {
	v, err := n.Attrs.Int(name, 0)
	if err != nil {
		return false, err
	}
	if v != 0 && v != 1 {
		return false, fmt.Errorf("%w: %s %s = %d, want 0 or 1", ErrAttr, op, name, v)
	}
	return v == 1, nil
}

// SiLU is Y = X * sigmoid(X) element-wise, on float types: dnx's fusion (passes.FuseSiLU) of
// ONNX's Sigmoid followed by Mul(X, Sigmoid(X)), which PyTorch exports for nn.SiLU (EfficientNet's
// activation). It has no attributes.
type SiLU struct{}

// OpType returns "SiLU".
func (*SiLU) OpType() string { return "SiLU" }

// Infer returns X's type.
func (*SiLU) Infer(in []*Arg) ([]Type, error) { return ewInferUnary("SiLU", in, ewFloatClass) }

func decodeSiLU(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	return &SiLU{}, nil
}

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

// FusedConv is a Conv with an optional per-channel prologue on its input and an optional ReLU
// epilogue on its output. Inputs are those of Conv: X [N,C,D1..Dn], W [M,C/Group,k1..kn] and an
// optional bias B [M]. With C input channels,
//
//	X'[n,c,...] = PreScale[c] * X[n,c,...] + PreShift[c]   (skipped when PreScale is nil)
//	X''         = max(X', 0)                               (when PreRelu)
//	Y           = Conv(X'', W, B)                          (zero padding pads X'', not X)
//	Y           = max(Y, 0)                                (when PostRelu)
//
// The prologue is an inference BatchNormalization (PreScale = gamma/sqrt(var+eps), PreShift =
// beta - mean*PreScale) followed by a ReLU: the DenseNet pattern Concat -> BN -> ReLU -> Conv,
// where the BN cannot be folded into the weights because the padding must see the normalized
// values. A kernel that applies the prologue while it packs its input panel avoids writing the
// normalized tensor at all. The epilogue is the ReLU after a Conv (with a folded BN).
type FusedConv struct {
	Conv Conv
	// PreScale and PreShift have one entry per input channel, or are both nil.
	PreScale, PreShift []float32
	PreRelu            bool
	PostRelu           bool
}

// OpType returns "FusedConv".
func (*FusedConv) OpType() string { return "FusedConv" }

// HasPrologue reports whether anything is applied to X before the convolution.
func (f *FusedConv) HasPrologue() bool { return f.PreScale != nil || f.PreRelu }

// Infer implements Op: the prologue keeps X's type, so Y's type is Conv's. It also checks that the
// prologue has one entry per input channel when the channel count is known.
func (f *FusedConv) Infer(in []*Arg) ([]Type, error) {
	if err := checkPrologue("FusedConv", f.PreScale, f.PreShift, in); err != nil {
		return nil, err
	}
	return f.Conv.Infer(in)
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
	attrPostRelu = "post_relu"
)

// FusedConvAttrs returns the attributes of a FusedConv node: a copy of the Conv node's attributes
// plus pre_scale and pre_shift (floats, only with a prologue), pre_relu and post_relu (ints 0/1).
// conv is not modified.
func FusedConvAttrs(conv Attributes, f *FusedConv) Attributes {
	a := prologueAttrs(conv, f.PreScale, f.PreShift, f.PreRelu)
	a[attrPostRelu] = boolAttr(f.PostRelu)
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
// equal length, both or neither, finite), pre_relu and post_relu (0 or 1, default 0).
func decodeFusedConv(n *Node) (Op, error) {
	op, err := decodeConv(n)
	if err != nil {
		return nil, err
	}
	f := &FusedConv{Conv: *op.(*Conv)}
	if f.PreScale, f.PreShift, f.PreRelu, err = decodePrologue("FusedConv", n); err != nil {
		return nil, err
	}
	if f.PostRelu, err = decodeFlag("FusedConv", n, attrPostRelu); err != nil {
		return nil, err
	}
	return f, nil
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

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
	if len(f.PreScale) != len(f.PreShift) {
		return nil, fmt.Errorf("%w: FusedConv has %d PreScale and %d PreShift values", ErrAttr, len(f.PreScale), len(f.PreShift))
	}
	if x := nnArg(in, 0); x != nil && f.PreScale != nil && !x.Type.Unranked && len(x.Type.Shape) >= 2 {
		if c := x.Type.Shape[1]; c.IsKnown() && c.Value != int64(len(f.PreScale)) {
			return nil, fmt.Errorf("%w: FusedConv X has %d channels, the prologue has %d", ErrShape, c.Value, len(f.PreScale))
		}
	}
	return f.Conv.Infer(in)
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
	a := maps.Clone(conv)
	if a == nil {
		a = Attributes{}
	}
	delete(a, attrPreScale)
	delete(a, attrPreShift)
	if f.PreScale != nil {
		a[attrPreScale] = Attribute{Kind: AttrFloats, Floats: append([]float32(nil), f.PreScale...)}
		a[attrPreShift] = Attribute{Kind: AttrFloats, Floats: append([]float32(nil), f.PreShift...)}
	}
	b := func(v bool) Attribute {
		if v {
			return Attribute{Kind: AttrInt, Int: 1}
		}
		return Attribute{Kind: AttrInt, Int: 0}
	}
	a[attrPreRelu] = b(f.PreRelu)
	a[attrPostRelu] = b(f.PostRelu)
	return a
}

// fusedSchemas lists the dnx-domain operators. Passes build FusedConv nodes directly; the schema
// lets a graph whose nodes carry FusedConvAttrs be decoded again (for example after a rewrite
// that re-decodes every node).
func fusedSchemas() []Schema {
	return []Schema{{Domain: DomainDNX, OpType: "FusedConv", Since: 1, Decode: decodeFusedConv}}
}

// decodeFusedConv reads Conv's attributes and the fused ones: pre_scale and pre_shift (floats of
// equal length, both or neither, finite), pre_relu and post_relu (0 or 1, default 0).
func decodeFusedConv(n *Node) (Op, error) {
	op, err := decodeConv(n)
	if err != nil {
		return nil, err
	}
	f := &FusedConv{Conv: *op.(*Conv)}
	if n.Attrs.Has(attrPreScale) != n.Attrs.Has(attrPreShift) {
		return nil, fmt.Errorf("%w: FusedConv needs both %s and %s, or neither", ErrAttr, attrPreScale, attrPreShift)
	}
	if n.Attrs.Has(attrPreScale) {
		if f.PreScale, err = n.Attrs.Floats(attrPreScale, nil); err != nil {
			return nil, err
		}
		if f.PreShift, err = n.Attrs.Floats(attrPreShift, nil); err != nil {
			return nil, err
		}
		if len(f.PreScale) != len(f.PreShift) || len(f.PreScale) == 0 {
			return nil, fmt.Errorf("%w: FusedConv %s has %d values and %s %d, want the same positive count",
				ErrAttr, attrPreScale, len(f.PreScale), attrPreShift, len(f.PreShift))
		}
		for i := range f.PreScale {
			s, t := float64(f.PreScale[i]), float64(f.PreShift[i])
			if math.IsNaN(s) || math.IsInf(s, 0) || math.IsNaN(t) || math.IsInf(t, 0) {
				return nil, fmt.Errorf("%w: FusedConv prologue channel %d is not finite (%g, %g)", ErrAttr, i, s, t)
			}
		}
	}
	for _, flag := range []struct {
		name string
		dst  *bool
	}{{attrPreRelu, &f.PreRelu}, {attrPostRelu, &f.PostRelu}} {
		v, err := n.Attrs.Int(flag.name, 0)
		if err != nil {
			return nil, err
		}
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("%w: FusedConv %s = %d, want 0 or 1", ErrAttr, flag.name, v)
		}
		*flag.dst = v == 1
	}
	return f, nil
}

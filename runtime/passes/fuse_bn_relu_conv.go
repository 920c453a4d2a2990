package passes

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// FuseBNReluConv turns BatchNormalization -> Relu -> Conv into a FusedConv whose prologue applies
// the BN's affine map and the ReLU to the Conv's input (and BatchNormalization -> Relu ->
// AveragePool into a FusedAveragePool, the same prologue on the pool's taps: DenseNet's
// transition once PoolBeforePointwiseConv has moved its pool before the convolution),
//
//	PreScale = gamma / sqrt(var + eps),  PreShift = beta - mean * PreScale,  PreRelu = true
//
// and reads the BN's input directly. This is DenseNet's pre-activation layer,
// Concat -> BN -> ReLU -> Conv, where the BN cannot be folded into the weights because the
// Conv's zero padding must see normalized values: fused, the normalized tensor is never
// written. A BN read directly by Convs (no Relu) fuses the same way with PreRelu false.
//
// It applies when the BN is inference-mode, 4-D, float32 or float64, with one output and constant
// parameters; the BN's output has the Relu as its only reader (or only Convs read it); every reader
// of the Relu's output is a Conv (or a FusedConv without a prologue) that reads it as X only and
// has constant weights, or a standard AveragePool; and neither intermediate value is a graph
// output. When several Convs
// share the activation, each gets the prologue, and the pass declines unless all of them can:
// fusing only some would keep the BN and ReLU running for the others and add the prologue's work
// on top. The BN and Relu nodes are removed.
type FuseBNReluConv struct{}

// Name returns "FuseBNReluConv".
func (FuseBNReluConv) Name() string { return "FuseBNReluConv" }

// Run implements Pass.
func (FuseBNReluConv) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(bn *graph.Node) (bool, error) {
		if _, ok := bn.Op.(*ops.BatchNormalization); !ok || ops.NormalizeDomain(bn.Domain) != "" {
			return false, nil
		}
		x, y := bn.Inputs[0], onlyOutput(bn)
		if y == nil || x.Type.Rank() != 4 || !isFloat32or64(x.Type.DType) || !x.Type.Shape[1].IsKnown() || g.IsOutput(y) {
			return false, nil
		}
		var relu *graph.Node
		act := y // the value the Convs read
		if len(y.Consumers) == 1 {
			if _, ok := y.Consumers[0].Op.(*ops.Relu); ok && ops.NormalizeDomain(y.Consumers[0].Domain) == "" {
				relu = y.Consumers[0]
				act = relu.Outputs[0]
				if g.IsOutput(act) {
					return false, nil
				}
			}
		}
		if len(act.Consumers) == 0 {
			return false, nil
		}
		for _, c := range act.Consumers {
			if !prologueFree(c, act) {
				return false, nil
			}
		}
		a, b, ok := bnAffine(bn, int(x.Type.Shape[1].Value))
		if !ok {
			return false, nil
		}
		scale, shift := toFloat32s(a), toFloat32s(b)
		for _, c := range append([]*graph.Node(nil), act.Consumers...) {
			if ap, ok := avgPool(c); ok {
				if err := g.SetInput(c, 0, x); err != nil {
					return false, err
				}
				setFusedPool(c, &ops.FusedAveragePool{Pool: *ap, PreScale: scale, PreShift: shift, PreRelu: relu != nil})
				continue
			}
			conv, fused := convLike(c)
			f := &ops.FusedConv{Conv: *conv, PreScale: scale, PreShift: shift, PreRelu: relu != nil}
			if fused != nil {
				f.Residual, f.Post = fused.Residual, fused.Post
			}
			if err := g.SetInput(c, 0, x); err != nil {
				return false, err
			}
			setFused(c, f)
		}
		if relu != nil {
			if err := g.RemoveNode(relu); err != nil {
				return false, err
			}
		}
		return true, g.RemoveNode(bn)
	})
}

// prologueFree reports whether c is a Conv, or a FusedConv without a prologue, that reads v as
// its X input only and has constant weights, or a standard AveragePool, so a prologue can be
// added to it.
func prologueFree(c *graph.Node, v *graph.Value) bool {
	if _, ok := avgPool(c); ok {
		return c.Inputs[0] == v
	}
	conv, fused := convLike(c)
	if conv == nil || (fused != nil && fused.HasPrologue()) {
		return false
	}
	if c.Inputs[0] != v || countReads(c, v) != 1 {
		return false
	}
	w := input(c, 1)
	return w != nil && w.IsConst()
}

func countReads(n *graph.Node, v *graph.Value) int {
	k := 0
	for _, w := range n.Inputs {
		if w == v {
			k++
		}
	}
	return k
}

// avgPool returns n's op when n is a standard AveragePool.
func avgPool(n *graph.Node) (*ops.AveragePool, bool) {
	ap, ok := n.Op.(*ops.AveragePool)
	return ap, ok && ops.NormalizeDomain(n.Domain) == ""
}

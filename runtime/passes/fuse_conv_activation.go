package passes

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// FuseConvActivation turns Conv -> activation into one FusedConv whose epilogue applies it, so
// the activation is computed while the convolution's output is still in registers or cache
// instead of in a second pass over memory. The activations are Relu, Clip with constant bounds
// (ReLU6), LeakyRelu, HardSigmoid, HardSwish, Sigmoid and dnx's SiLU (see ops.Activation). It
// applies when the Conv (or a FusedConv without an activation) has the activation as the only
// reader of its output, which is not a graph output. The FusedConv keeps the Conv's node name
// and takes the activation's output name.
type FuseConvActivation struct{}

// Name returns "FuseConvActivation".
func (FuseConvActivation) Name() string { return "FuseConvActivation" }

// Run implements Pass.
func (FuseConvActivation) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(act *graph.Node) (bool, error) {
		a, ok := activationOf(act)
		if !ok {
			return false, nil
		}
		y := act.Inputs[0]
		conv := y.Producer
		if conv == nil || !soleReader(g, y, act) || conv.Outputs[0] != y || !y.Type.DType.IsFloat() {
			return false, nil
		}
		c, fused := convLike(conv)
		if c == nil {
			return false, nil
		}
		f := &ops.FusedConv{Conv: *c}
		if fused != nil {
			if fused.Post.Kind != ops.ActNone {
				return false, nil
			}
			*f = *fused
		}
		f.Post = a
		setFused(conv, f)
		return true, absorb(g, y, act)
	})
}

// activationOf returns the activation node n computes, when it is one an epilogue applies: a
// one-input, one-output element-wise node of the standard domain (SiLU: dnx's), with Clip's
// bounds constant float32 scalars.
func activationOf(n *graph.Node) (ops.Activation, bool) {
	if len(n.Inputs) == 0 || n.Inputs[0] == nil || onlyOutput(n) == nil {
		return ops.Activation{}, false
	}
	dom := ops.NormalizeDomain(n.Domain)
	if op, ok := n.Op.(*ops.SiLU); ok && op != nil && dom == ops.DomainDNX {
		return ops.Activation{Kind: ops.ActSiLU}, true
	}
	if dom != "" {
		return ops.Activation{}, false
	}
	switch op := n.Op.(type) {
	case *ops.Relu:
		return ops.Activation{Kind: ops.ActRelu}, true
	case *ops.LeakyRelu:
		return ops.Activation{Kind: ops.ActLeakyRelu, Alpha: op.Alpha}, true
	case *ops.HardSigmoid:
		return ops.Activation{Kind: ops.ActHardSigmoid, Alpha: op.Alpha, Beta: op.Beta}, true
	case *ops.HardSwish:
		return ops.Activation{Kind: ops.ActHardSwish}, true
	case *ops.Sigmoid:
		return ops.Activation{Kind: ops.ActSigmoid}, true
	case *ops.Clip:
		lo, hi, ok := clipBounds(n, op)
		if !ok {
			return ops.Activation{}, false
		}
		return ops.Activation{Kind: ops.ActClip, Alpha: lo, Beta: hi}, true
	}
	return ops.Activation{}, false
}

// clipBounds returns Clip's bounds when they are static (see ops.Clip.StaticBounds); a bound
// input may be an initializer or a Constant node's output.
func clipBounds(n *graph.Node, op *ops.Clip) (lo, hi float32, ok bool) {
	min, max := input(n, 1), input(n, 2)
	return op.StaticBounds(constValue(min), constValue(max), min != nil, max != nil)
}

package passes

import (
	"slices"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// FuseConvAdd turns Add(Conv(...), Z) into one FusedConv with the residual Z (input 3), so the
// sum of a residual block (ResNet's, MobileNetV2's inverted residual) is made while the
// convolution's output is still in cache, not in a second pass; a ReLU after the Add then fuses
// too (FuseConvActivation). It applies when the Conv (or a FusedConv without residual or
// activation: an activation must come after the sum) has the Add as the only reader of its
// output, which is not a graph output, and Z has exactly the convolution output's static shape
// and type (no broadcasting; a symbolic dim matches only the same symbol). When both operands qualify, the convolution that comes later in
// the node order takes the other as its residual, which is then already computed; the nodes are
// re-sorted either way, since the fused node now reads Z.
type FuseConvAdd struct{}

// Name returns "FuseConvAdd".
func (FuseConvAdd) Name() string { return "FuseConvAdd" }

// Run implements Pass.
func (FuseConvAdd) Run(g *graph.Graph) (bool, error) {
	changed, err := forEachNode(g, func(add *graph.Node) (bool, error) {
		a, ok := add.Op.(*ops.Arith)
		if !ok || a.Kind != ops.ArithAdd || a.Legacy || ops.NormalizeDomain(add.Domain) != "" ||
			len(add.Inputs) != 2 || onlyOutput(add) == nil {
			return false, nil
		}
		best, bestPos := -1, -1
		for i := range 2 {
			if !residualTarget(g, add, add.Inputs[i], add.Inputs[1-i]) {
				continue
			}
			if pos := slices.Index(g.Nodes, add.Inputs[i].Producer); pos > bestPos {
				best, bestPos = i, pos
			}
		}
		if best < 0 {
			return false, nil
		}
		y, z := add.Inputs[best], add.Inputs[1-best]
		conv := y.Producer
		c, fused := convLike(conv)
		f := &ops.FusedConv{Conv: *c}
		if fused != nil {
			*f = *fused
		}
		f.Residual = true
		if len(conv.Inputs) == 2 {
			if err := g.SetInput(conv, 2, nil); err != nil {
				return false, err
			}
		}
		if err := g.SetInput(conv, 3, z); err != nil {
			return false, err
		}
		setFused(conv, f)
		return true, absorb(g, y, add)
	})
	if err != nil || !changed {
		return changed, err
	}
	return true, g.SortNodes()
}

// residualTarget reports whether y, an operand of add, is a convolution output that can take the
// other operand z as its residual.
func residualTarget(g *graph.Graph, add *graph.Node, y, z *graph.Value) bool {
	if y == nil || z == nil || y == z || y.Producer == nil || !soleReader(g, y, add) || y.Producer.Outputs[0] != y {
		return false
	}
	c, fused := convLike(y.Producer)
	if c == nil || len(y.Producer.Inputs) > 3 || (fused != nil && (fused.Residual || fused.Post.Kind != ops.ActNone)) {
		return false
	}
	out := add.Outputs[0]
	return y.Type.DType.IsFloat() && sameShape(y.Type, z.Type) && sameShape(y.Type, out.Type)
}

// sameShape reports whether a and b are the same dtype and certainly the same shape: each dim
// known and equal, or the same named symbol (a batch dim "N").
func sameShape(a, b ops.Type) bool {
	if a.DType != b.DType || a.Unranked || b.Unranked || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i, d := range a.Shape {
		e := b.Shape[i]
		switch {
		case d.IsKnown() && e.IsKnown() && d.Value == e.Value:
		case !d.IsKnown() && !e.IsKnown() && d.Param != "" && d.Param == e.Param:
		default:
			return false
		}
	}
	return true
}

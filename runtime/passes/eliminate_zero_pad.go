package passes

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// EliminateZeroPad removes a Pad that pads nothing: every pad is zero, from the attribute (opsets
// before 11) or from a constant pads input (an initializer or a Constant node; the axes input likewise constant
// or absent). Its output is
// then its input, whatever the mode and constant value. The PyTorch exporter puts such a
// Constant(zeros) -> Pad before the AveragePool of every DenseNet transition; removing it saves a
// full copy of the transition's output.
type EliminateZeroPad struct{}

// Name returns "EliminateZeroPad".
func (EliminateZeroPad) Name() string { return "EliminateZeroPad" }

// Run implements Pass.
func (EliminateZeroPad) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(n *graph.Node) (bool, error) {
		op, ok := n.Op.(*ops.Pad)
		if !ok || ops.NormalizeDomain(n.Domain) != "" || len(n.Outputs) != 1 || n.Outputs[0] == nil {
			return false, nil
		}
		x := n.Inputs[0]
		rank := x.Type.Rank()
		if rank < 0 || !padsAreZero(n, op, rank) {
			return false, nil
		}
		return bypass(g, n, x, n.Outputs[0])
	})
}

// padsAreZero reports whether n's pads are known, valid for rank and all zero.
func padsAreZero(n *graph.Node, op *ops.Pad, rank int) bool {
	var full []int
	var err error
	if op.StaticPads != nil {
		full, err = op.FullPads(rank, nil, nil)
	} else {
		pads, axes := constValue(input(n, 1)), constValue(input(n, 3))
		if pads == nil || (op.HasAxesInput && axes == nil) {
			return false
		}
		if !op.HasAxesInput {
			axes = nil
		}
		full, err = op.FullPads(rank, pads, axes)
	}
	if err != nil {
		return false
	}
	for _, p := range full {
		if p != 0 {
			return false
		}
	}
	return true
}

package passes

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// EliminateIdentity removes nodes whose output is their input: Identity, Dropout in inference
// mode whose mask output nobody reads, and Concat of a single input (the PyTorch exporter emits
// one at the start of every DenseNet block). Readers of the removed output read the input
// instead, which saves a copy per node; a graph output keeps its name (see bypass).
//
// A Dropout counts as inference mode when its mode is fixed to inference: before opset 12 the
// decoded op says so; from opset 12 the training_mode input must be absent or a constant false.
// With KeepDropout set, Dropout is never removed, for graphs about to be trained.
type EliminateIdentity struct {
	KeepDropout bool
}

// Name returns "EliminateIdentity".
func (EliminateIdentity) Name() string { return "EliminateIdentity" }

// Run implements Pass.
func (p EliminateIdentity) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(n *graph.Node) (bool, error) {
		if ops.NormalizeDomain(n.Domain) != "" || len(n.Inputs) == 0 || n.Inputs[0] == nil || len(n.Outputs) == 0 || n.Outputs[0] == nil {
			return false, nil
		}
		switch op := n.Op.(type) {
		case *ops.Identity:
			return bypass(g, n, n.Inputs[0], n.Outputs[0])
		case *ops.Concat:
			if len(n.Inputs) != 1 {
				return false, nil
			}
			return bypass(g, n, n.Inputs[0], n.Outputs[0])
		case *ops.Dropout:
			if p.KeepDropout || !dropoutIsInference(g, n, op) {
				return false, nil
			}
			return bypass(g, n, n.Inputs[0], n.Outputs[0])
		}
		return false, nil
	})
}

// dropoutIsInference reports whether n's mode is fixed to inference and its mask is unused.
func dropoutIsInference(g *graph.Graph, n *graph.Node, op *ops.Dropout) bool {
	if op.Training {
		return false
	}
	if len(n.Outputs) > 1 {
		if m := n.Outputs[1]; m != nil && (len(m.Consumers) > 0 || g.IsOutput(m)) {
			return false
		}
	}
	if input(n, 2) == nil {
		return true
	}
	mode := constValue(input(n, 2))
	if mode == nil || mode.DType != tensor.Bool || mode.Len() != 1 {
		return false
	}
	return !tensor.Data[bool](mode)[0]
}

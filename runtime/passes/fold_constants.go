package passes

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// MaxFoldElements caps the total number of output elements FoldConstants computes for one node,
// so that folding never turns a small model into a large one (an Expand or ConstantOfShape of a
// constant shape, say).
const MaxFoldElements = 1 << 20

// FoldConstants evaluates, once, what does not depend on the graph inputs. Constant nodes become
// initializers. A standard-ONNX node whose inputs are all initializers (at least one), whose
// outputs have static shapes with at most MaxFoldElements elements in all and are not graph
// outputs, is run with its reference kernel and replaced by initializers holding the results.
// Nodes whose result is not a function of their inputs (Dropout, which is random in training and
// removed by EliminateIdentity otherwise) are left alone, and so is a node whose kernel fails: the
// runtime will report that error where it belongs.
type FoldConstants struct{}

// Name returns "FoldConstants".
func (FoldConstants) Name() string { return "FoldConstants" }

// Run implements Pass.
func (FoldConstants) Run(g *graph.Graph) (bool, error) {
	kernels := ref.Kernels()
	return forEachNode(g, func(n *graph.Node) (bool, error) {
		if ops.NormalizeDomain(n.Domain) != "" {
			return false, nil
		}
		for _, v := range n.Outputs {
			if v != nil && g.IsOutput(v) {
				return false, nil
			}
		}
		if c, ok := n.Op.(*ops.Constant); ok {
			if c.Value == nil || len(n.Outputs) != 1 {
				return false, nil
			}
			return true, g.ReplaceWithConstants(n, []*tensor.Tensor{c.Value})
		}
		if _, random := n.Op.(*ops.Dropout); random {
			return false, nil
		}
		in := make([]*tensor.Tensor, len(n.Inputs))
		present := 0
		for i, v := range n.Inputs {
			if v == nil {
				continue
			}
			if !v.IsConst() {
				return false, nil
			}
			in[i] = v.Const
			present++
		}
		if present == 0 {
			return false, nil
		}
		total := 0
		for _, v := range n.Outputs {
			if v == nil {
				continue
			}
			s, ok := v.Type.Static()
			if !ok {
				return false, nil
			}
			total += s.Size()
			if total > MaxFoldElements {
				return false, nil
			}
		}
		k, ok := kernels[n.OpType]
		if !ok {
			return false, nil
		}
		outs, err := k(n.Op, in, len(n.Outputs))
		if err != nil || len(outs) < len(n.Outputs) {
			return false, nil
		}
		for i, v := range n.Outputs {
			if v == nil {
				outs[i] = nil
			} else if outs[i] == nil || outs[i].DType != v.Type.DType || !sameStatic(v.Type, outs[i].Shape) {
				return false, nil // the kernel contradicts inference; leave it to the runtime
			}
		}
		return true, g.ReplaceWithConstants(n, outs[:len(n.Outputs)])
	})
}

// sameStatic reports whether a static type has exactly shape s.
func sameStatic(t ops.Type, s tensor.Shape) bool {
	st, ok := t.Static()
	return ok && st.Equal(s)
}

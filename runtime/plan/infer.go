package plan

import (
	"errors"
	"fmt"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Types is what planning knows of a graph's values for concrete input shapes, before anything
// is placed: every value's type, the values known at compile time, and the nodes computed while
// compiling. It is the first stage of both planners: the inference plan (Compile) and the
// trainer's (runtime/train), so shapes and constant folding are decided one way for both.
type Types struct {
	// Type is every value's inferred type: initializers, inputs and node outputs.
	Type map[*graph.Value]ops.Type
	// Known holds the values known at compile time: constant initializers, and the outputs of
	// folded nodes.
	Known map[*graph.Value]*tensor.Tensor
	// Folded are the nodes whose outputs were computed at compile time (all inputs known, or a
	// Shape of a value of static shape): they cost nothing at run time.
	Folded map[*graph.Node]bool
}

// InferOptions adjust Infer.
type InferOptions struct {
	// Variable reports the initializers that change between runs (trained parameters, running
	// statistics): their type is known but not their value, so nothing that reads them is
	// folded. Nil: every initializer is a constant.
	Variable func(v *graph.Value) bool
}

// maxFoldElements caps the size of a value computed at compile time (a constant subgraph).
const maxFoldElements = 1 << 24

// Infer gives every value of g its type for inputs of the given shapes (one per g.Inputs entry)
// and computes at compile time, with the reference kernels, what can be known then:
// initializers, Constant nodes, the Shape of a value of static shape, and any node of the
// default domain whose inputs are all known and whose outputs are small (maxFoldElements). The
// graph itself is not changed. Folding checks budget (errors wrap membudget.ErrOverBudget and
// name the node); a node that fails to fold for any other reason stays a run-time node.
func Infer(g *graph.Graph, shapes []tensor.Shape, budget membudget.Budget, opts InferOptions) (*Types, error) {
	if len(shapes) != len(g.Inputs) {
		return nil, fmt.Errorf("plan: %d input shapes for %d inputs", len(shapes), len(g.Inputs))
	}
	kernels := ref.Kernels()
	ts := &Types{Type: map[*graph.Value]ops.Type{}, Known: map[*graph.Value]*tensor.Tensor{}, Folded: map[*graph.Node]bool{}}
	for i, v := range g.Inputs {
		ts.Type[v] = ops.Type{DType: v.Type.DType, Shape: ops.DimsOf(shapes[i])}
	}
	for _, v := range g.Initializers {
		ts.Type[v] = ops.TypeOf(v.Const)
		if opts.Variable == nil || !opts.Variable(v) {
			ts.Known[v] = v.Const
		}
	}
	for _, n := range g.Nodes {
		args := make([]*ops.Arg, len(n.Inputs))
		allKnown := ops.NormalizeDomain(n.Domain) == ""
		for k, v := range n.Inputs {
			if v == nil {
				continue
			}
			t, ok := ts.Type[v]
			if !ok {
				return nil, fmt.Errorf("plan: %s reads %q before it is produced", n, v.Name)
			}
			args[k] = &ops.Arg{Type: t, Const: ts.Known[v]}
			if ts.Known[v] == nil {
				allKnown = false
			}
		}
		out, err := ops.InferChecked(n.Op, args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if len(out) < len(n.Outputs) {
			return nil, fmt.Errorf("%s: inference gave %d types for %d outputs", n, len(out), len(n.Outputs))
		}
		if shp, isShape := n.Op.(*ops.Shape); isShape && args[0] != nil {
			if s, ok := args[0].Type.Static(); ok { // the shape of a static value is a constant
				lo, hi := shp.Range(len(s))
				dims := make([]int64, 0, hi-lo)
				for _, d := range s[lo:hi] {
					dims = append(dims, int64(d))
				}
				ts.Known[n.Outputs[0]] = tensor.FromSlice(tensor.Shape{len(dims)}, dims)
				ts.Folded[n] = true
			}
		} else if k := kernels[n.OpType]; allKnown && k != nil && foldable(out) {
			in := make([]*tensor.Tensor, len(n.Inputs))
			for i, v := range n.Inputs {
				if v != nil {
					in[i] = ts.Known[v]
				}
			}
			res, err := ref.Checked(budget, k, n.Op, in, len(n.Outputs), n.OutputNames())
			if errors.Is(err, membudget.ErrOverBudget) {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			if err == nil && len(res) >= len(n.Outputs) {
				for i, v := range n.Outputs {
					if v != nil {
						ts.Known[v] = res[i]
					}
				}
				ts.Folded[n] = true
			}
		}
		for k, v := range n.Outputs {
			if v == nil {
				continue
			}
			t := out[k]
			if c := ts.Known[v]; c != nil {
				t = ops.TypeOf(c)
			}
			ts.Type[v] = t
		}
	}
	return ts, nil
}

// foldable reports whether outputs of these types are small enough to compute at compile time.
func foldable(types []ops.Type) bool {
	for _, t := range types {
		s, ok := t.Static()
		if !ok || s.Size() > maxFoldElements {
			return false
		}
	}
	return true
}

package passes

import "github.com/dnx-ml/dnx/runtime/graph"

// DeadCodeElimination removes nodes none of whose outputs is read or is a graph output, and then
// initializers nothing reads. It walks the nodes backwards, so a whole dead chain goes in one
// run. Graph inputs stay even when unread: they are the model's interface.
type DeadCodeElimination struct{}

// Name returns "DeadCodeElimination".
func (DeadCodeElimination) Name() string { return "DeadCodeElimination" }

// Run implements Pass.
func (DeadCodeElimination) Run(g *graph.Graph) (bool, error) {
	changed := false
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if !dead(g, n) {
			continue
		}
		if err := g.RemoveNode(n); err != nil {
			return changed, err
		}
		changed = true
	}
	var unused []*graph.Value
	for _, v := range g.Initializers {
		if len(v.Consumers) == 0 && !g.IsOutput(v) {
			unused = append(unused, v)
		}
	}
	for _, v := range unused {
		if err := g.RemoveInitializer(v); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// dead reports whether nothing observes n's outputs.
func dead(g *graph.Graph, n *graph.Node) bool {
	for _, v := range n.Outputs {
		if v != nil && (len(v.Consumers) > 0 || g.IsOutput(v)) {
			return false
		}
	}
	return true
}

package graph

import (
	"fmt"
	"slices"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// This file holds the mutation helpers optimization passes build on. Each keeps the graph's
// invariants (the ones Validate checks) locally true, except node order: AddNode inserts where it
// is told, and a pass that cannot guarantee the order calls SortNodes. Types are not recomputed;
// a pass that changes shapes calls InferTypes.

// IsOutput reports whether v is one of the graph's outputs.
func (g *Graph) IsOutput(v *Value) bool { return slices.Contains(g.Outputs, v) }

// IsInput reports whether v is one of the graph's fed inputs.
func (g *Graph) IsInput(v *Value) bool { return slices.Contains(g.Inputs, v) }

// UniqueName returns base if no value is named so, otherwise the first of base_1, base_2, ...
// that is free. It scans instead of counting so that the graph needs no hidden state and names
// stay deterministic.
func (g *Graph) UniqueName(base string) string {
	if g.values[base] == nil {
		return base
	}
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s_%d", base, i)
		if g.values[name] == nil {
			return name
		}
	}
}

// UniqueNodeName returns base if no node is named so, otherwise the first free base_1, base_2, ...
func (g *Graph) UniqueNodeName(base string) string {
	used := make(map[string]bool, len(g.Nodes))
	for _, n := range g.Nodes {
		used[n.Name] = true
	}
	if !used[base] {
		return base
	}
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s_%d", base, i)
		if !used[name] {
			return name
		}
	}
}

// AddInitializer adds a constant named name holding t (which the graph then owns) and returns its
// value. The name must be free.
func (g *Graph) AddInitializer(name string, t *tensor.Tensor) (*Value, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: initializer %q has no tensor", ErrInvalidGraph, name)
	}
	if err := g.claim(name); err != nil {
		return nil, err
	}
	v := &Value{Name: name, Type: ops.TypeOf(t), Const: t}
	g.values[name] = v
	g.Initializers = append(g.Initializers, v)
	return v, nil
}

// RemoveInitializer deletes an initializer that nothing reads and that is not a graph output.
func (g *Graph) RemoveInitializer(v *Value) error {
	if !v.IsConst() || g.values[v.Name] != v {
		return fmt.Errorf("%w: %q is not an initializer of this graph", ErrInvalidGraph, v.Name)
	}
	if len(v.Consumers) > 0 || g.IsOutput(v) {
		return fmt.Errorf("%w: initializer %q is still used", ErrInvalidGraph, v.Name)
	}
	delete(g.values, v.Name)
	g.Initializers = slices.DeleteFunc(g.Initializers, func(w *Value) bool { return w == v })
	return nil
}

// claim checks that name can be given to a new value.
func (g *Graph) claim(name string) error {
	if name == "" {
		return fmt.Errorf("%w: a value needs a name", ErrInvalidGraph)
	}
	if g.values == nil {
		g.values = map[string]*Value{}
	}
	if prev := g.values[name]; prev != nil {
		return fmt.Errorf("%w: value %q is already defined (%s)", ErrInvalidGraph, name, describe(prev))
	}
	return nil
}

// AddNode inserts n into the node list just before before (at the end when before is nil),
// records n as a consumer of each of its inputs and registers its outputs, which must be new
// values (no producer, names free). The inputs must already belong to the graph. Nothing else
// moves, so the caller keeps the order topological or calls SortNodes.
func (g *Graph) AddNode(n *Node, before *Node) error {
	if n == nil || n.Op == nil {
		return fmt.Errorf("%w: node to add has no decoded op", ErrInvalidGraph)
	}
	if slices.Contains(g.Nodes, n) {
		return fmt.Errorf("%w: %s is already in the graph", ErrInvalidGraph, n)
	}
	for i, v := range n.Inputs {
		if v != nil && g.values[v.Name] != v {
			return fmt.Errorf("%w: %s input %d %q is not a value of this graph", ErrInvalidGraph, n, i, v.Name)
		}
	}
	seen := map[string]bool{}
	for i, v := range n.Outputs {
		if v == nil {
			continue
		}
		if v.Producer != nil && v.Producer != n {
			return fmt.Errorf("%w: %s output %d %q is already produced by %s", ErrInvalidGraph, n, i, v.Name, v.Producer)
		}
		if seen[v.Name] {
			return fmt.Errorf("%w: %s lists output %q twice", ErrInvalidGraph, n, v.Name)
		}
		seen[v.Name] = true
		if err := g.claim(v.Name); err != nil {
			return fmt.Errorf("%s output %d: %w", n, i, err)
		}
	}
	pos := len(g.Nodes)
	if before != nil {
		if pos = slices.Index(g.Nodes, before); pos < 0 {
			return fmt.Errorf("%w: %s is not in the graph", ErrInvalidGraph, before)
		}
	}
	for _, v := range n.Outputs {
		if v != nil {
			v.Producer = n
			g.values[v.Name] = v
		}
	}
	for _, v := range n.Inputs {
		if v != nil {
			v.Consumers = append(v.Consumers, n)
		}
	}
	g.Nodes = slices.Insert(g.Nodes, pos, n)
	return nil
}

// RemoveNode deletes n: it stops consuming its inputs, and its output values are deleted, so
// none of them may still be read or be a graph output (move their uses first with ReplaceValue).
func (g *Graph) RemoveNode(n *Node) error {
	pos := slices.Index(g.Nodes, n)
	if pos < 0 {
		return fmt.Errorf("%w: %s is not in the graph", ErrInvalidGraph, n)
	}
	for _, v := range n.Outputs {
		if v == nil {
			continue
		}
		if len(v.Consumers) > 0 {
			return fmt.Errorf("%w: cannot remove %s: output %q is read by %s", ErrInvalidGraph, n, v.Name, v.Consumers[0])
		}
		if g.IsOutput(v) {
			return fmt.Errorf("%w: cannot remove %s: output %q is a graph output", ErrInvalidGraph, n, v.Name)
		}
	}
	for _, v := range n.Inputs {
		if v != nil {
			v.Consumers = removeOne(v.Consumers, n)
		}
	}
	for _, v := range n.Outputs {
		if v != nil && g.values[v.Name] == v {
			delete(g.values, v.Name)
		}
	}
	g.Nodes = slices.Delete(g.Nodes, pos, pos+1)
	return nil
}

// removeOne deletes the first occurrence of n (a node reading a value at several positions is
// listed once per position, and each removal accounts for one position).
func removeOne(list []*Node, n *Node) []*Node {
	if i := slices.Index(list, n); i >= 0 {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// SetInput makes input position i of n read v (nil for an absent optional input), keeping both
// values' consumer lists right. i may be len(n.Inputs), which appends an input.
func (g *Graph) SetInput(n *Node, i int, v *Value) error {
	if i < 0 || i > len(n.Inputs) {
		return fmt.Errorf("%w: %s has no input position %d", ErrInvalidGraph, n, i)
	}
	if v != nil && g.values[v.Name] != v {
		return fmt.Errorf("%w: %q is not a value of this graph", ErrInvalidGraph, v.Name)
	}
	if i == len(n.Inputs) {
		n.Inputs = append(n.Inputs, nil)
	}
	if old := n.Inputs[i]; old != nil {
		old.Consumers = removeOne(old.Consumers, n)
	}
	n.Inputs[i] = v
	if v != nil {
		v.Consumers = append(v.Consumers, n)
	}
	return nil
}

// ReplaceValue makes every reader of old read new instead, and every graph output that is old
// become new (so the graph's output names change unless the caller renames new afterwards, see
// RenameValue). old itself stays, unread.
func (g *Graph) ReplaceValue(old, new *Value) {
	if old == new {
		return
	}
	for _, n := range old.Consumers {
		for i, v := range n.Inputs {
			if v == old {
				n.Inputs[i] = new
			}
		}
	}
	// Each consumer entry stands for one input position that now reads new.
	new.Consumers = append(new.Consumers, old.Consumers...)
	old.Consumers = nil
	for i, v := range g.Outputs {
		if v == old {
			g.Outputs[i] = new
		}
	}
}

func countInputs(n *Node, v *Value) int {
	c := 0
	for _, w := range n.Inputs {
		if w == v {
			c++
		}
	}
	return c
}

func countEntries(list []*Node, n *Node) int {
	c := 0
	for _, m := range list {
		if m == n {
			c++
		}
	}
	return c
}

// RenameValue gives v a new, unused name.
func (g *Graph) RenameValue(v *Value, name string) error {
	if g.values[v.Name] != v {
		return fmt.Errorf("%w: %q is not a value of this graph", ErrInvalidGraph, v.Name)
	}
	if name == v.Name {
		return nil
	}
	if err := g.claim(name); err != nil {
		return err
	}
	delete(g.values, v.Name)
	v.Name = name
	g.values[name] = v
	return nil
}

// ReplaceWithConstants turns node n into initializers: each present output value becomes an
// initializer holding the matching tensor of outs (its name, consumers and place in the graph's
// outputs stay), and n is removed. Outputs with a nil tensor must be unread.
func (g *Graph) ReplaceWithConstants(n *Node, outs []*tensor.Tensor) error {
	if !slices.Contains(g.Nodes, n) {
		return fmt.Errorf("%w: %s is not in the graph", ErrInvalidGraph, n)
	}
	if len(outs) < len(n.Outputs) {
		return fmt.Errorf("%w: %s has %d outputs, got %d tensors", ErrInvalidGraph, n, len(n.Outputs), len(outs))
	}
	for i, v := range n.Outputs {
		if v != nil && outs[i] == nil && (len(v.Consumers) > 0 || g.IsOutput(v)) {
			return fmt.Errorf("%w: %s output %q is used but has no constant", ErrInvalidGraph, n, v.Name)
		}
	}
	// Detach the outputs that become constants, then remove the node with the rest.
	var made []*Value
	for i, v := range n.Outputs {
		if v == nil || outs[i] == nil {
			continue
		}
		v.Producer = nil
		v.Const = outs[i]
		v.Type = ops.TypeOf(outs[i])
		n.Outputs[i] = nil
		made = append(made, v)
	}
	if err := g.RemoveNode(n); err != nil {
		return err
	}
	g.Initializers = append(g.Initializers, made...)
	return nil
}

// SortNodes re-sorts the nodes topologically, keeping the current order wherever it is already
// valid. It fails on a cycle.
func (g *Graph) SortNodes() error {
	sorted, err := topoSort(g.Nodes)
	if err != nil {
		return err
	}
	g.Nodes = sorted
	return nil
}

// InferTypes recomputes every node output's type from the inputs' types, in node order. Passes
// that change shapes or dtypes call it; the nodes must be sorted.
func (g *Graph) InferTypes() error { return g.inferTypes() }

// Validate checks the graph's structural invariants and returns an error wrapping
// ErrInvalidGraph that names the first violation:
//   - every value is registered under its own name, and is exactly one of a graph input, an
//     initializer, or the output of a node in the graph;
//   - every node has a decoded op, appears once, and reads only registered values, each produced
//     by an earlier node (the order is topological) or being an input or initializer;
//   - each value's Consumers lists each reader once per input position that reads it, and only
//     nodes in the graph;
//   - graph outputs and inputs are registered values; inputs are neither constant nor produced.
func (g *Graph) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidGraph, fmt.Sprintf(format, args...))
	}
	for name, v := range g.values {
		if v == nil || v.Name != name {
			return bad("value map entry %q holds a value of another name", name)
		}
	}
	inputs := map[*Value]bool{}
	for i, v := range g.Inputs {
		switch {
		case v == nil:
			return bad("graph input %d is nil", i)
		case g.values[v.Name] != v:
			return bad("graph input %q is not registered", v.Name)
		case v.Producer != nil || v.Const != nil:
			return bad("graph input %q is produced by a node or constant", v.Name)
		case inputs[v]:
			return bad("graph input %q is listed twice", v.Name)
		}
		inputs[v] = true
	}
	inits := map[*Value]bool{}
	for _, v := range g.Initializers {
		switch {
		case v == nil:
			return bad("nil initializer")
		case g.values[v.Name] != v:
			return bad("initializer %q is not registered", v.Name)
		case !v.IsConst():
			return bad("initializer %q has no constant or has a producer", v.Name)
		case inits[v]:
			return bad("initializer %q is listed twice", v.Name)
		}
		inits[v] = true
	}
	pos := make(map[*Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if n == nil {
			return bad("node %d is nil", i)
		}
		if _, dup := pos[n]; dup {
			return bad("%s appears twice in the node list", n)
		}
		if n.Op == nil {
			return bad("%s has no decoded op", n)
		}
		pos[n] = i
	}
	for i, n := range g.Nodes {
		for k, v := range n.Inputs {
			if v == nil {
				continue
			}
			if g.values[v.Name] != v {
				return bad("%s input %d %q is not a registered value", n, k, v.Name)
			}
			if v.Producer != nil {
				p, ok := pos[v.Producer]
				if !ok {
					return bad("%s input %d %q comes from %s, which is not in the graph", n, k, v.Name, v.Producer)
				}
				if p >= i {
					return bad("%s reads %q before %s produces it (nodes are not in topological order)", n, v.Name, v.Producer)
				}
			} else if !inputs[v] && !inits[v] {
				return bad("%s input %d %q is neither a graph input, an initializer nor a node output", n, k, v.Name)
			}
			if countEntries(v.Consumers, n) != countInputs(n, v) {
				return bad("value %q lists %s %d times as a consumer, but it reads it at %d positions",
					v.Name, n, countEntries(v.Consumers, n), countInputs(n, v))
			}
		}
		for k, v := range n.Outputs {
			if v == nil {
				continue
			}
			if v.Producer != n {
				return bad("%s output %d %q names another producer", n, k, v.Name)
			}
			if g.values[v.Name] != v {
				return bad("%s output %d %q is not registered", n, k, v.Name)
			}
			if v.Const != nil {
				return bad("%s output %q also holds a constant", n, v.Name)
			}
		}
	}
	for name, v := range g.values {
		switch {
		case v.Producer != nil:
			if _, ok := pos[v.Producer]; !ok {
				return bad("value %q is produced by %s, which is not in the graph", name, v.Producer)
			}
		case !inputs[v] && !inits[v]:
			return bad("value %q is neither a graph input, an initializer nor a node output", name)
		}
		for _, c := range v.Consumers {
			if _, ok := pos[c]; !ok {
				return bad("value %q lists %s as a consumer, which is not in the graph", name, c)
			}
			if countInputs(c, v) == 0 {
				return bad("value %q lists %s as a consumer, but that node does not read it", name, c)
			}
		}
	}
	if len(g.Outputs) == 0 {
		return bad("graph has no outputs")
	}
	for i, v := range g.Outputs {
		if v == nil {
			return bad("graph output %d is nil", i)
		}
		if g.values[v.Name] != v {
			return bad("graph output %q is not a registered value", v.Name)
		}
	}
	return nil
}

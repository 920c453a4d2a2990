package graph

import (
	"fmt"
	"maps"
	"slices"

	"github.com/dnx-ml/dnx/runtime/ops"
)

// Clone returns a copy of g that passes can rewrite without touching g. Values, nodes, attribute
// maps and the model-level fields (producer, doc strings, metadata) are copied; constant tensors
// are shared (passes never modify a tensor in place, they add new ones); each node's Op is
// decoded afresh from its attributes with reg, so no op value is shared either.
func (g *Graph) Clone(reg *ops.Registry) (*Graph, error) {
	c := &Graph{
		Name: g.Name, IRVersion: g.IRVersion, ProducerName: g.ProducerName, ProducerVersion: g.ProducerVersion,
		Domain: g.Domain, ModelVersion: g.ModelVersion, DocString: g.DocString, GraphDocString: g.GraphDocString,
		Opsets: maps.Clone(g.Opsets), values: make(map[string]*Value, len(g.values)),
		declared: g.declared, inputTypes: map[*Value]ops.Type{},
		// Copied, not shared: SetMetadata on the clone (finetune recording its steps) must not
		// show through in the original.
		metadata: slices.Clone(g.metadata),
	}
	vmap := make(map[*Value]*Value, len(g.values))
	val := func(v *Value) *Value {
		if v == nil {
			return nil
		}
		if nv, ok := vmap[v]; ok {
			return nv
		}
		nv := &Value{Name: v.Name, Type: v.Type, Const: v.Const}
		vmap[v] = nv
		c.values[nv.Name] = nv
		return nv
	}
	for _, v := range g.Inputs {
		nv := val(v)
		c.Inputs = append(c.Inputs, nv)
		if t, ok := g.inputTypes[v]; ok {
			c.inputTypes[nv] = t
		}
	}
	for _, v := range g.Initializers {
		c.Initializers = append(c.Initializers, val(v))
	}
	for _, n := range g.Nodes {
		nn := &Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Opset: n.Opset, Attrs: maps.Clone(n.Attrs), DocString: n.DocString}
		present := make([]bool, len(n.Inputs))
		for i, v := range n.Inputs {
			nv := val(v)
			nn.Inputs = append(nn.Inputs, nv)
			if nv != nil {
				nv.Consumers = append(nv.Consumers, nn)
				present[i] = true
			}
		}
		for _, v := range n.Outputs {
			nv := val(v)
			if nv != nil {
				nv.Producer = nn
			}
			nn.Outputs = append(nn.Outputs, nv)
		}
		op, err := reg.Decode(&ops.Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Opset: n.Opset,
			Attrs: nn.Attrs, Inputs: present, NumOutputs: len(n.Outputs)})
		if err != nil {
			return nil, fmt.Errorf("clone: %w", err)
		}
		nn.Op = op
		c.Nodes = append(c.Nodes, nn)
	}
	for _, v := range g.Outputs {
		c.Outputs = append(c.Outputs, val(v))
	}
	return c, nil
}

package plan

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// aliasOps are the ops whose float32 output is the input's data under another shape; their
// output shares the input's storage when the input is dense.
var aliasOps = map[string]bool{
	"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Identity": true,
}

// isAlias reports whether node n can be resolved as a storage alias of its first input.
func (p *Plan) isAlias(n *graph.Node) bool {
	if ops.NormalizeDomain(n.Domain) != "" || len(n.Outputs) == 0 || n.Outputs[0] == nil || len(n.Inputs) == 0 || n.Inputs[0] == nil {
		return false
	}
	if !aliasOps[n.OpType] {
		if d, ok := n.Op.(*ops.Dropout); !ok || d.Training || len(n.Outputs) > 1 {
			return false
		}
	}
	in, out := &p.values[p.mustID(n.Inputs[0])], &p.values[p.mustID(n.Outputs[0])]
	return in.kind == inArena && out.kind == inArena && in.size == out.size
}

// channelConcat returns the concat axis when n is a Concat along axis 1 of float32 arena values
// of rank >= 2 that can be laid out as one buffer; ok is false otherwise.
func (p *Plan) channelConcat(n *graph.Node) bool {
	c, isConcat := n.Op.(*ops.Concat)
	if !isConcat || ops.NormalizeDomain(n.Domain) != "" || n.Outputs[0] == nil {
		return false
	}
	out := &p.values[p.mustID(n.Outputs[0])]
	if out.kind != inArena || len(out.shape) < 2 {
		return false
	}
	axis := int(c.Axis)
	if axis < 0 {
		axis += len(out.shape)
	}
	if axis != 1 {
		return false
	}
	for _, v := range n.Inputs {
		if v == nil || p.values[p.mustID(v)].kind != inArena {
			return false
		}
	}
	return true
}

// placeConcats lays out channel concatenations without copies. Concats are visited from the
// last to the first, so a dense block's final concat (all features) gets the buffer first; each
// input produced by an ordinary node is placed at its channel offset inside that buffer (its
// producer then writes there directly), and each earlier concat whose inputs already sit
// contiguously in a buffer becomes a view of it. Whatever cannot be placed is copied at run time.
func (p *Plan) placeConcats() {
	nodes := p.g.Nodes
	inner := func(id int) int { // floats per channel of one batch item
		s := p.values[id].shape
		n := 1
		for _, d := range s[2:] {
			n *= d
		}
		return n
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !p.channelConcat(n) {
			continue
		}
		outID := p.mustID(n.Outputs[0])
		out := &p.values[outID]
		// A concat whose inputs already lie in one buffer, contiguous and in order, is a view.
		if v0 := &p.values[p.mustID(n.Inputs[0])]; v0.buf >= 0 && out.buf < 0 {
			contiguous := true
			off := v0.off
			for _, v := range n.Inputs {
				val := &p.values[p.mustID(v)]
				if val.buf != v0.buf || val.off != off || val.bstride != v0.bstride {
					contiguous = false
					break
				}
				off += val.shape[1] * inner(p.mustID(v))
			}
			if contiguous && (v0.bstride != 0 || v0.shape[0] <= 1) {
				out.buf, out.off, out.bstride = v0.buf, v0.off, v0.bstride
				out.aliasOf = p.mustID(n.Inputs[0])
				continue
			}
		}
		if out.buf < 0 {
			p.newBuffer(outID)
		}
		bstride := out.bstride
		if bstride == 0 {
			bstride = out.size / max(1, out.shape[0])
		}
		off := out.off
		for _, v := range n.Inputs {
			id := p.mustID(v)
			val := &p.values[id]
			if val.buf < 0 && p.placeable(id) {
				val.buf, val.off, val.bstride = out.buf, off, bstride
			}
			off += val.shape[1] * inner(id)
		}
	}
}

// placeable reports whether value id may live inside another value's buffer: it is produced by a
// node that writes it (not an alias, not an input or constant) and it is not a graph output.
func (p *Plan) placeable(id int) bool {
	val := &p.values[id]
	if val.kind != inArena || val.v.Producer == nil || p.isGraphOutput(id) {
		return false
	}
	prod := val.v.Producer
	if p.isAlias(prod) || p.channelConcat(prod) {
		return false
	}
	for _, v := range prod.Outputs[1:] {
		if v != nil && p.values[p.mustID(v)].kind == inArena && p.values[p.mustID(v)].buf >= 0 {
			return false
		}
	}
	return true
}

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

// concats returns the graph's channel concatenations that can be laid out as one buffer, in
// graph order.
func (p *Plan) concats() []Concat {
	var cs []Concat
	for _, n := range p.g.Nodes {
		if p.channelConcat(n) {
			cs = append(cs, Concat{Out: p.mustID(n.Outputs[0]), Ins: p.idList(n.Inputs)})
		}
	}
	return cs
}

// placeConcats lays out channel concatenations without copies (PlaceConcats): each dense block
// becomes one buffer that its layers write their features into.
func (p *Plan) placeConcats() { PlaceConcats(p.concats(), layout{p}) }

// layout is the inference plan's storage as PlaceConcats sees it: NCHW values, a channel slice
// of a concatenation's buffer strided by the buffer's batch stride.
type layout struct{ p *Plan }

func (l layout) Where(id int) (buf, off, key int) {
	v := &l.p.values[id]
	if v.shape[0] > 1 {
		key = v.batchStride()
	}
	return v.buf, v.off, key
}

func (l layout) Extent(id int) int {
	v := &l.p.values[id]
	return v.shape[1] * innerOf(v)
}

func (l layout) Placeable(id int) bool { return l.p.placeable(id) }

func (l layout) Own(id int) { l.p.newBuffer(id) }

func (l layout) PlaceIn(id, out, off int) {
	o := &l.p.values[out]
	bstride := o.bstride
	if bstride == 0 {
		bstride = o.size / max(1, o.shape[0])
	}
	v := &l.p.values[id]
	v.buf, v.off, v.bstride = o.buf, off, bstride
}

func (l layout) View(out, first int) bool {
	v0, o := &l.p.values[first], &l.p.values[out]
	if v0.bstride == 0 && v0.shape[0] > 1 { // dense values side by side are not channel slices
		return false
	}
	o.buf, o.off, o.bstride, o.aliasOf = v0.buf, v0.off, v0.bstride, first
	return true
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

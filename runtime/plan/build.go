package plan

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// placeValues gives every arena value a buffer: its own, an alias of its input's (Reshape-like
// nodes), or a place inside a concatenation's buffer (placeConcats, which runs first).
func (p *Plan) placeValues() {
	for _, id := range p.inputs {
		if v := &p.values[id]; v.kind == inArena && v.buf < 0 {
			p.newBuffer(id)
		}
	}
	for _, n := range p.g.Nodes {
		if !p.types.Folded[n] && p.isAlias(n) && p.values[p.mustID(n.Inputs[0])].dense() {
			in, out := &p.values[p.mustID(n.Inputs[0])], &p.values[p.mustID(n.Outputs[0])]
			out.buf, out.off, out.bstride, out.aliasOf = in.buf, in.off, 0, p.mustID(n.Inputs[0])
		}
		for _, v := range n.Outputs {
			if v == nil {
				continue
			}
			if val := &p.values[p.mustID(v)]; val.kind == inArena && val.buf < 0 {
				p.newBuffer(p.mustID(v))
			}
		}
	}
}

// lower gives every node a step: nothing for what was resolved at compile time (folded nodes,
// aliases, concatenations written in place), the device's kernel where it has one, the
// reference kernel otherwise.
func (p *Plan) lower() error {
	kernels := ref.Kernels()
	for _, n := range p.g.Nodes {
		var s step
		var why string // why n has no device kernel
		switch {
		case p.types.Folded[n]:
			s = nopStep{kernel: KernelFolded}
		case p.isAlias(n) && p.values[p.mustID(n.Outputs[0])].aliasOf >= 0:
			s = nopStep{kernel: KernelAlias}
		case p.isAlias(n):
			why = "its input is a strided channel slice of a concatenation, which a view cannot alias"
		case p.channelConcat(n):
			c := Concat{Out: p.mustID(n.Outputs[0]), Ins: p.idList(n.Inputs)}
			copies := ConcatCopies(c, layout{p})
			if len(copies) == 0 {
				s = nopStep{kernel: KernelConcatInPlace}
				break
			}
			k, reason := p.dev.Lower(n, p.operands(n.Inputs), p.operands(n.Outputs))
			if k == nil {
				why = reason
				break
			}
			s = kernelStep{k: k, why: fmt.Sprintf("%d input(s) could not be written in place (graph inputs, constants, aliases or values also used elsewhere)", len(copies))}
		default:
			k, reason := p.dev.Lower(n, p.operands(n.Inputs), p.operands(n.Outputs))
			if k != nil {
				p.scratchSize = max(p.scratchSize, k.Scratch())
				s = kernelStep{k: k}
			}
			why = reason
		}
		if s == nil {
			k, ok := kernels[n.OpType]
			if d := ops.NormalizeDomain(n.Domain); !ok || (d != "" && d != ops.DomainDNX) {
				return fmt.Errorf("%s: %w: no kernel for %s in domain %q", n, ops.ErrUnsupportedOp, n.OpType, n.Domain)
			}
			s = &refStep{node: n, kernel: k, in: p.idList(n.Inputs), out: p.idList(n.Outputs), why: why}
		}
		p.steps = append(p.steps, s)
		p.nodes = append(p.nodes, n)
	}
	return nil
}

// operands returns where each of vs lives.
func (p *Plan) operands(vs []*graph.Value) []device.Operand {
	out := make([]device.Operand, len(vs))
	for i, v := range vs {
		id := -1
		if v != nil {
			id = p.mustID(v)
		}
		out[i] = p.operand(id)
	}
	return out
}

func (p *Plan) idList(vs []*graph.Value) []int {
	ids := make([]int, len(vs))
	for i, v := range vs {
		ids[i] = -1
		if v != nil {
			ids[i] = p.mustID(v)
		}
	}
	return ids
}

func innerOf(v *value) int {
	n := 1
	for _, d := range v.shape[2:] {
		n *= d
	}
	return n
}

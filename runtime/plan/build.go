package plan

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// buildSteps gives every node a step and every arena value a buffer (its own, or an alias).
func (p *Plan) buildSteps() error {
	kernels := ref.Kernels()
	for _, id := range p.inputs {
		if v := &p.values[id]; v.kind == inArena && v.buf < 0 {
			p.newBuffer(id)
		}
	}
	for _, n := range p.g.Nodes {
		var s step
		var why string // why n has no fast step
		switch {
		case p.folded[n]:
			s = nopStep{kernel: KernelFolded}
		case p.isAlias(n) && p.values[p.mustID(n.Inputs[0])].dense():
			in, out := &p.values[p.mustID(n.Inputs[0])], &p.values[p.mustID(n.Outputs[0])]
			out.buf, out.off, out.bstride, out.aliasOf = in.buf, in.off, 0, p.mustID(n.Inputs[0])
			s = nopStep{kernel: KernelAlias}
		case p.isAlias(n):
			why = "its input is a strided channel slice of a concatenation, which a view cannot alias"
		case p.channelConcat(n):
			s = p.concatStep(n)
		default:
			s, why = p.fastStep(n)
		}
		if s == nil {
			k, ok := kernels[n.OpType]
			if d := ops.NormalizeDomain(n.Domain); !ok || (d != "" && d != ops.DomainDNX) {
				return fmt.Errorf("%s: %w: no kernel for %s in domain %q", n, ops.ErrUnsupportedOp, n.OpType, n.Domain)
			}
			s = &refStep{p: p, node: n, kernel: k, in: p.idList(n.Inputs), out: p.idList(n.Outputs), why: why}
		}
		for _, v := range n.Outputs {
			if v == nil {
				continue
			}
			if val := &p.values[p.mustID(v)]; val.kind == inArena && val.buf < 0 {
				p.newBuffer(p.mustID(v))
			}
		}
		p.steps = append(p.steps, s)
		p.nodes = append(p.nodes, n)
	}
	return nil
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

// concatStep copies the inputs that placeConcats could not put in place; when all are in place
// the concat costs nothing.
func (p *Plan) concatStep(n *graph.Node) step {
	outID := p.mustID(n.Outputs[0])
	s := &concatCopy{p: p, out: outID}
	off := 0
	for _, v := range n.Inputs {
		id := p.mustID(v)
		val := &p.values[id]
		out := &p.values[outID]
		inPlace := val.buf == out.buf && val.off == out.off+off*innerOf(val) &&
			(out.shape[0] <= 1 || val.batchStride() == out.batchStride())
		if !inPlace {
			s.copies = append(s.copies, concatPart{in: id, c0: off})
		}
		off += val.shape[1]
	}
	if len(s.copies) == 0 {
		return nopStep{kernel: KernelConcatInPlace}
	}
	return s
}

func innerOf(v *value) int {
	n := 1
	for _, d := range v.shape[2:] {
		n *= d
	}
	return n
}

type concatPart struct{ in, c0 int }

// concatCopy copies inputs into their channel slices of the concat's buffer.
type concatCopy struct {
	p      *Plan
	out    int
	copies []concatPart
}

func (s *concatCopy) describe() stepDesc {
	return stepDesc{kernel: KernelConcatCopy, code: isa.Generic.String(),
		why: fmt.Sprintf("%d input(s) could not be written in place (graph inputs, constants, aliases or values also used elsewhere)", len(s.copies))}
}

func (s *concatCopy) run(st *runState) error {
	dst := s.p.image(st, s.out)
	for _, c := range s.copies {
		src := s.p.image(st, c.in)
		d := dst.Channels(c.c0, src.C)
		per := src.C * src.H * src.W
		for n := 0; n < src.N; n++ {
			copy(d.Item(n)[:per], src.Item(n))
		}
	}
	return nil
}

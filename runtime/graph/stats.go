package graph

import (
	"fmt"
	"math/bits"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Stats summarises a graph's size and compute cost.
type Stats struct {
	// Nodes is the number of nodes; Ops counts them per op type.
	Nodes int
	Ops   map[string]int
	// Parameters is the number of elements of floating-point initializers (weights, biases, BN
	// statistics); integer initializers (shapes, indices) are not parameters.
	Parameters int64
	// ParameterBytes is the in-memory size of all initializers, integer ones included (strings
	// count their bytes).
	ParameterBytes int64
	// MACs is the number of multiply-accumulates of the Conv, ConvTranspose, Gemm and MatMul
	// nodes at the graph's current value types (see Graph.SetInputShapes); MACsByOp splits it
	// per op type. Both are meaningful only when MACsKnown.
	MACs      int64
	MACsByOp  map[string]int64
	MACsKnown bool
	// MACsUnknown says why MACsKnown is false: the first node whose shapes are not all static,
	// or an overflow.
	MACsUnknown string
}

// Stats counts g's nodes, parameters and multiply-accumulates. MACs come from the inferred static
// shapes alone, not from attributes:
//
//	Conv           numel(Y) * C/group * prod(kernel)   with W = [M, C/group, k1, k2, ...]
//	ConvTranspose  numel(X) * M/group * prod(kernel)   with W = [C, M/group, k1, k2, ...]
//	Gemm           M * N * K = numel(Y) * numel(A)/M   with Y = [M, N] (A is [M,K] or [K,M])
//	MatMul         numel(Y) * K                        with K = A's last dim
//
// Any dim that is not known makes the total unknown rather than guessed; a graph with
// symbolic inputs needs SetInputShapes first.
func (g *Graph) Stats() Stats {
	s := Stats{Nodes: len(g.Nodes), Ops: g.OpHistogram(), MACsByOp: map[string]int64{}, MACsKnown: true}
	for _, v := range g.Initializers {
		t := v.Const
		if t == nil {
			continue
		}
		n := int64(t.Len())
		if t.DType.IsFloat() {
			s.Parameters += n
		}
		if t.DType == tensor.String {
			for _, str := range tensor.Data[string](t) {
				s.ParameterBytes += int64(len(str))
			}
		} else {
			s.ParameterBytes += n * int64(t.DType.ByteSize())
		}
	}
	for _, n := range g.Nodes {
		if ops.NormalizeDomain(n.Domain) != "" {
			continue
		}
		macs, err := nodeMACs(n)
		if err != nil {
			if s.MACsKnown {
				s.MACsKnown, s.MACsUnknown = false, err.Error()
			}
			continue
		}
		if macs == 0 {
			continue
		}
		total, ok := add(s.MACs, macs)
		if !ok {
			if s.MACsKnown {
				s.MACsKnown, s.MACsUnknown = false, "the MAC count overflows int64"
			}
			continue
		}
		s.MACs = total
		s.MACsByOp[n.OpType] += macs
	}
	if !s.MACsKnown {
		s.MACs, s.MACsByOp = 0, map[string]int64{}
	}
	return s
}

// nodeMACs returns the multiply-accumulates of one node, 0 for ops that are not counted.
func nodeMACs(n *Node) (int64, error) {
	var a, b int64 // the two factors: an element count and a reduction length
	switch n.OpType {
	case "Conv", "ConvTranspose":
		if len(n.Inputs) < 2 || len(n.Outputs) < 1 {
			return 0, nil
		}
		side := n.Outputs[0] // Conv: each output element reduces over C/group * kernel
		if n.OpType == "ConvTranspose" {
			side = n.Inputs[0] // ConvTranspose: each input element scatters to M/group * kernel
		}
		elems, err := numel(n, side)
		if err != nil {
			return 0, err
		}
		w, err := static(n, n.Inputs[1])
		if err != nil {
			return 0, err
		}
		if len(w) < 2 {
			return 0, fmt.Errorf("%s: weight %q has rank %d", n, n.Inputs[1].Name, len(w))
		}
		a, b = elems, int64(tensor.Shape(w[1:]).Size())
	case "Gemm", "MatMul":
		if len(n.Inputs) < 2 || len(n.Outputs) < 1 {
			return 0, nil
		}
		y, err := static(n, n.Outputs[0])
		if err != nil {
			return 0, err
		}
		x, err := static(n, n.Inputs[0])
		if err != nil {
			return 0, err
		}
		a = int64(y.Size())
		switch {
		case n.OpType == "MatMul" && len(x) > 0:
			b = int64(x[len(x)-1])
		case n.OpType == "Gemm" && len(y) == 2 && y[0] > 0:
			b = int64(x.Size()) / int64(y[0]) // A is [M,K] or, with transA, [K,M]
		}
	default:
		return 0, nil
	}
	p, ok := mul(a, b)
	if !ok {
		return 0, fmt.Errorf("%s: the MAC count overflows int64", n)
	}
	return p, nil
}

// static returns v's concrete shape or an error naming the node and the value.
func static(n *Node, v *Value) (tensor.Shape, error) {
	if v == nil {
		return nil, fmt.Errorf("%s: a required input is absent", n)
	}
	s, ok := v.Type.Static()
	if !ok {
		return nil, fmt.Errorf("%s: %q has shape %s, which is not static", n, v.Name, v.Type)
	}
	return s, nil
}

func numel(n *Node, v *Value) (int64, error) {
	s, err := static(n, v)
	if err != nil {
		return 0, err
	}
	return int64(s.Size()), nil
}

// mul returns a*b for non-negative a and b, and whether it fits an int64.
func mul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return int64(lo), hi == 0 && lo <= 1<<63-1
}

// add returns a+b for non-negative a and b, and whether it fits an int64.
func add(a, b int64) (int64, bool) {
	s := a + b
	return s, s >= a
}

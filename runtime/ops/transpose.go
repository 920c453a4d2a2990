package ops

import (
	"fmt"
)

// Transpose permutes the dims of its input: output dim i is input dim Perm[i], and
// out[i0, ..., in-1] = in[j] where j[Perm[k]] = ik.
type Transpose struct {
	// Perm is a permutation of 0..rank-1; nil means reverse the dims.
	Perm []int
}

// OpType returns "Transpose".
func (*Transpose) OpType() string { return "Transpose" }

func decodeTranspose(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	if !n.Attrs.Has("perm") {
		return &Transpose{}, nil
	}
	p, err := n.Attrs.Ints("perm", nil)
	if err != nil {
		return nil, err
	}
	perm := make([]int, len(p))
	seen := make([]bool, len(p))
	for i, v := range p {
		if v < 0 || v >= int64(len(p)) || seen[v] {
			return nil, fmt.Errorf("%w: Transpose perm %v is not a permutation of 0..%d", ErrAttr, p, len(p)-1)
		}
		seen[v] = true
		perm[i] = int(v)
	}
	return &Transpose{Perm: perm}, nil
}

// Resolve returns the permutation for an input of the given rank: Perm, or the reversal when Perm
// is nil.
func (t *Transpose) Resolve(rank int) ([]int, error) {
	if t.Perm == nil {
		p := make([]int, rank)
		for i := range p {
			p[i] = rank - 1 - i
		}
		return p, nil
	}
	if len(t.Perm) != rank {
		return nil, fmt.Errorf("%w: Transpose perm %v has %d entries for a rank-%d input", ErrShape, t.Perm, len(t.Perm), rank)
	}
	return t.Perm, nil
}

// Infer permutes the input dims, symbolic ones included.
func (t *Transpose) Infer(in []*Arg) ([]Type, error) {
	x := inputArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Transpose needs an input", ErrArity)
	}
	if x.Type.Unranked {
		if t.Perm != nil {
			return []Type{{DType: x.Type.DType, Shape: unknownShape(len(t.Perm))}}, nil
		}
		return []Type{{DType: x.Type.DType, Unranked: true}}, nil
	}
	p, err := t.Resolve(x.Type.Rank())
	if err != nil {
		return nil, err
	}
	out := make([]Dim, len(p))
	for i, j := range p {
		out[i] = x.Type.Shape[j]
	}
	return []Type{{DType: x.Type.DType, Shape: out}}, nil
}

package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Gemm is the general matrix product Y = Alpha * A' * B' + Beta * C, where A' is A [M,K] (or A^T
// when TransA, A being [K,M]), B' is B [K,N] (or B^T when TransB), and C, optional from opset 11,
// is unidirectionally broadcast to [M,N].
type Gemm struct {
	TransA, TransB bool
	Alpha, Beta    float32
	// BroadcastC allows C to be any shape that broadcasts to [M,N]. It is always true from opset 7;
	// before, it is the broadcast attribute, and without it C must be exactly [M,N].
	BroadcastC bool
}

// OpType returns "Gemm".
func (*Gemm) OpType() string { return "Gemm" }

func decodeGemm(n *Node) (Op, error) {
	minIn := 3
	if n.Opset >= 11 {
		minIn = 2
	}
	if err := CheckArity(n, minIn, 3, 1, 1); err != nil {
		return nil, err
	}
	g := &Gemm{BroadcastC: true}
	var err error
	var ta, tb int64
	if ta, err = n.Attrs.Int("transA", 0); err != nil {
		return nil, err
	}
	if tb, err = n.Attrs.Int("transB", 0); err != nil {
		return nil, err
	}
	g.TransA, g.TransB = ta != 0, tb != 0
	if g.Alpha, err = n.Attrs.Float("alpha", 1); err != nil {
		return nil, err
	}
	if g.Beta, err = n.Attrs.Float("beta", 1); err != nil {
		return nil, err
	}
	if n.Opset < 7 {
		bc, err := n.Attrs.Int("broadcast", 0)
		if err != nil {
			return nil, err
		}
		g.BroadcastC = bc != 0
	}
	return g, nil
}

// Dims returns M, K and N for concrete A and B shapes, checking that both are matrices and that
// their inner dims agree.
func (g *Gemm) Dims(a, b tensor.Shape) (m, k, n int, err error) {
	if len(a) != 2 || len(b) != 2 {
		return 0, 0, 0, fmt.Errorf("%w: Gemm needs 2-D A and B, got %v and %v", ErrShape, a, b)
	}
	m, k = a[0], a[1]
	if g.TransA {
		m, k = k, m
	}
	kb, n := b[0], b[1]
	if g.TransB {
		kb, n = n, kb
	}
	if k != kb {
		return 0, 0, 0, fmt.Errorf("%w: Gemm inner dims differ: A %v (transA=%v), B %v (transB=%v)",
			ErrShape, a, g.TransA, b, g.TransB)
	}
	if _, err := boundShape(tensor.Shape{m, n}); err != nil {
		return 0, 0, 0, err
	}
	return m, k, n, nil
}

// CheckC reports an error unless C's shape broadcasts to [m, n] (equals it, when !BroadcastC).
func (g *Gemm) CheckC(c tensor.Shape, m, n int) error {
	if !g.BroadcastC {
		if !c.Equal(tensor.Shape{m, n}) {
			return fmt.Errorf("%w: Gemm C has shape %v; without broadcast=1 it must be [%d %d]", ErrShape, c, m, n)
		}
		return nil
	}
	if len(c) > 2 {
		return fmt.Errorf("%w: Gemm C has shape %v, which does not broadcast to [%d %d]", ErrShape, c, m, n)
	}
	want := []int{m, n}[2-len(c):]
	for i, d := range c {
		if d != 1 && d != want[i] {
			return fmt.Errorf("%w: Gemm C has shape %v, which does not broadcast to [%d %d]", ErrShape, c, m, n)
		}
	}
	return nil
}

// Infer gives [M,N] from A and B, keeping symbolic dims, and checks C when its rank is known.
func (g *Gemm) Infer(in []*Arg) ([]Type, error) {
	a, b, c := inputArg(in, 0), inputArg(in, 1), inputArg(in, 2)
	if a == nil || b == nil {
		return nil, fmt.Errorf("%w: Gemm needs A and B", ErrArity)
	}
	dt, err := commonDType("Gemm", a, b, c)
	if err != nil {
		return nil, err
	}
	if dt != tensor.Undefined && !dt.IsFloat() && !dt.IsInt() {
		return nil, fmt.Errorf("%w: Gemm does not compute on %s", ErrShape, dt)
	}
	m, n := Unknown(), Unknown()
	k := [2]Dim{Unknown(), Unknown()}
	for i, x := range []*Arg{a, b} {
		if x.Type.Unranked {
			continue
		}
		if x.Type.Rank() != 2 {
			return nil, fmt.Errorf("%w: Gemm input %d is %s, want a matrix", ErrShape, i, x.Type)
		}
		d0, d1 := x.Type.Shape[0], x.Type.Shape[1]
		if (i == 0 && g.TransA) || (i == 1 && g.TransB) {
			d0, d1 = d1, d0
		}
		if i == 0 {
			m, k[0] = d0, d1
		} else {
			k[1], n = d0, d1
		}
	}
	if _, ok := unifyDim(k[0], k[1]); !ok {
		return nil, fmt.Errorf("%w: Gemm inner dims differ: %s vs %s", ErrShape, k[0], k[1])
	}
	if c != nil && !c.Type.Unranked {
		want := []Dim{m, n}
		if c.Type.Rank() > 2 || (!g.BroadcastC && c.Type.Rank() != 2) {
			return nil, fmt.Errorf("%w: Gemm C is %s, which does not broadcast to [%s,%s]", ErrShape, c.Type, m, n)
		}
		want = want[2-c.Type.Rank():]
		for i, d := range c.Type.Shape {
			if d.IsKnown() && want[i].IsKnown() && d.Value != want[i].Value && (d.Value != 1 || !g.BroadcastC) {
				return nil, fmt.Errorf("%w: Gemm C is %s, which does not broadcast to [%s,%s]", ErrShape, c.Type, m, n)
			}
		}
	}
	return []Type{{DType: dt, Shape: []Dim{m, n}}}, nil
}

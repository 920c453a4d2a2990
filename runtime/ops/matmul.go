package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// MatMul is NumPy's matmul: matrix products over the last two dims, batched over the leading dims
// with multidirectional broadcasting. A 1-D A is treated as [1,K] and a 1-D B as [K,1], and the
// added dim is removed from the output.
type MatMul struct{}

// OpType returns "MatMul".
func (*MatMul) OpType() string { return "MatMul" }

func decodeMatMul(n *Node) (Op, error) {
	if err := CheckArity(n, 2, 2, 1, 1); err != nil {
		return nil, err
	}
	return &MatMul{}, nil
}

// MatMulDims describes one MatMul for concrete shapes: Batch is the broadcast batch shape, each
// product is [M,K] x [K,N], and Out is the output shape (with the 1-D promotions removed).
type MatMulDims struct {
	Batch   tensor.Shape
	M, K, N int
	Out     tensor.Shape
}

// Dims checks the shapes of A and B and returns the product's dims.
func (*MatMul) Dims(a, b tensor.Shape) (MatMulDims, error) {
	if len(a) == 0 || len(b) == 0 {
		return MatMulDims{}, fmt.Errorf("%w: MatMul inputs must have rank >= 1, got %v and %v", ErrShape, a, b)
	}
	a2, b2 := a, b
	if len(a) == 1 {
		a2 = tensor.Shape{1, a[0]}
	}
	if len(b) == 1 {
		b2 = tensor.Shape{b[0], 1}
	}
	var d MatMulDims
	d.M, d.K = a2[len(a2)-2], a2[len(a2)-1]
	kb := b2[len(b2)-2]
	d.N = b2[len(b2)-1]
	if d.K != kb {
		return d, fmt.Errorf("%w: MatMul inner dims differ: %v x %v", ErrShape, a, b)
	}
	ab, bb := a2[:len(a2)-2], b2[:len(b2)-2]
	nb := max(len(ab), len(bb))
	d.Batch = make(tensor.Shape, nb)
	for i := 0; i < nb; i++ {
		x, y := 1, 1
		if j := len(ab) - nb + i; j >= 0 {
			x = ab[j]
		}
		if j := len(bb) - nb + i; j >= 0 {
			y = bb[j]
		}
		switch {
		case x == y || y == 1:
			d.Batch[i] = x
		case x == 1:
			d.Batch[i] = y
		default:
			return d, fmt.Errorf("%w: MatMul batch dims of %v and %v do not broadcast", ErrShape, a, b)
		}
	}
	out := d.Batch.Clone()
	if len(a) > 1 {
		out = append(out, d.M)
	}
	if len(b) > 1 {
		out = append(out, d.N)
	}
	out, err := boundShape(out)
	if err != nil {
		return d, err
	}
	d.Out = out
	return d, nil
}

// Infer applies the same rules to dims: batch dims broadcast (symbolic ones kept), M from A and N
// from B.
func (*MatMul) Infer(in []*Arg) ([]Type, error) {
	a, b := inputArg(in, 0), inputArg(in, 1)
	if a == nil || b == nil {
		return nil, fmt.Errorf("%w: MatMul needs A and B", ErrArity)
	}
	dt, err := commonDType("MatMul", a, b)
	if err != nil {
		return nil, err
	}
	if dt != tensor.Undefined && !dt.IsFloat() && !dt.IsInt() {
		return nil, fmt.Errorf("%w: MatMul does not compute on %s", ErrShape, dt)
	}
	if a.Type.Unranked || b.Type.Unranked {
		return []Type{{DType: dt, Unranked: true}}, nil
	}
	as, bs := a.Type.Shape, b.Type.Shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("%w: MatMul inputs must have rank >= 1, got %s and %s", ErrShape, a.Type, b.Type)
	}
	if len(as) == 1 {
		as = []Dim{Known(1), as[0]}
	}
	if len(bs) == 1 {
		bs = []Dim{bs[0], Known(1)}
	}
	if _, ok := unifyDim(as[len(as)-1], bs[len(bs)-2]); !ok {
		return nil, fmt.Errorf("%w: MatMul inner dims differ: %s x %s", ErrShape, a.Type, b.Type)
	}
	out, err := BroadcastDims(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, fmt.Errorf("MatMul batch dims: %w", err)
	}
	if a.Type.Rank() > 1 {
		out = append(out, as[len(as)-2])
	}
	if b.Type.Rank() > 1 {
		out = append(out, bs[len(bs)-1])
	}
	return []Type{{DType: dt, Shape: out}}, nil
}

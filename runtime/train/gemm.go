package train

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
)

// gemmUnit is Gemm, Y = alpha*A'*B' + beta*C with A' = A or A^T ([M,K]), B' = B or B^T ([K,N])
// and C broadcast to [M,N]; any operand may be an activation or a parameter. The products are
// the obvious loops with float64 sums: in a CNN this is the classifier, a few thousand
// multiply-adds per sample.
//
//	dA' = alpha * dY * B'^T,  dB' = alpha * A'^T * dY,  dC = beta * dY summed over C's broadcast dims
type gemmUnit struct {
	unitBase
	op         *ops.Gemm
	a, b, c, y int
	m, k, n    int
}

func (p *plan) newGemm(base unitBase, op *ops.Gemm) (unit, error) {
	u := &gemmUnit{unitBase: base, op: op, a: base.in[0], b: base.in[1], c: -1, y: base.out[0]}
	if len(base.in) > 2 {
		u.c = base.in[2]
	}
	for _, i := range []int{u.a, u.b, u.c} {
		if i >= 0 && p.vals[i].kind == vConst && p.vals[i].cdata == nil {
			return nil, fmt.Errorf("%w: Gemm of a non-float constant", ops.ErrUnsupportedOp)
		}
	}
	var err error
	if u.m, u.k, u.n, err = op.Dims(p.vals[u.a].shape, p.vals[u.b].shape); err != nil {
		return nil, err
	}
	if u.c >= 0 {
		if err := op.CheckC(p.vals[u.c].shape, u.m, u.n); err != nil {
			return nil, err
		}
	}
	u.reads = []int{u.a, u.b}
	return u, nil
}

// at returns the index of A'[i,p] in A and of B'[p,j] in B.
func (u *gemmUnit) aAt(i, p int) int {
	if u.op.TransA {
		return p*u.m + i
	}
	return i*u.k + p
}

func (u *gemmUnit) bAt(p, j int) int {
	if u.op.TransB {
		return j*u.k + p
	}
	return p*u.n + j
}

// cAt returns the index in C of Y[i,j] under broadcasting.
func (u *gemmUnit) cAt(shape []int, i, j int) int {
	switch len(shape) {
	case 0:
		return 0
	case 1:
		if shape[0] == 1 {
			return 0
		}
		return j
	}
	ii, jj := i, j
	if shape[0] == 1 {
		ii = 0
	}
	if shape[1] == 1 {
		jj = 0
	}
	return ii*shape[1] + jj
}

func (u *gemmUnit) forward(r *run) error {
	a, b, y := r.data(u.a), r.data(u.b), r.data(u.y)
	var c []float32
	var cs []int
	if u.c >= 0 {
		c, cs = r.data(u.c), r.p.vals[u.c].shape
	}
	alpha, beta := float64(u.op.Alpha), float64(u.op.Beta)
	r.k.Parallel(u.m, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := 0; j < u.n; j++ {
				var s float64
				for p := 0; p < u.k; p++ {
					s += float64(a[u.aAt(i, p)]) * float64(b[u.bAt(p, j)])
				}
				s *= alpha
				if c != nil {
					s += beta * float64(c[u.cAt(cs, i, j)])
				}
				y[i*u.n+j] = float32(s)
			}
		}
	})
	return nil
}

func (u *gemmUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil {
		return nil
	}
	a, b := r.data(u.a), r.data(u.b)
	alpha := float64(u.op.Alpha)
	if r.p.vals[u.a].needGrad {
		da, acc := r.gradIn(u.a)
		r.k.Parallel(u.m, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				for p := 0; p < u.k; p++ {
					var s float64
					for j := 0; j < u.n; j++ {
						s += float64(dy[i*u.n+j]) * float64(b[u.bAt(p, j)])
					}
					v := float32(alpha * s)
					if acc {
						v += da[u.aAt(i, p)]
					}
					da[u.aAt(i, p)] = v
				}
			}
		})
	}
	if r.p.vals[u.b].needGrad {
		db, acc := r.gradIn(u.b)
		r.k.Parallel(u.k, 1, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				for j := 0; j < u.n; j++ {
					var s float64
					for i := 0; i < u.m; i++ {
						s += float64(a[u.aAt(i, p)]) * float64(dy[i*u.n+j])
					}
					v := float32(alpha * s)
					if acc {
						v += db[u.bAt(p, j)]
					}
					db[u.bAt(p, j)] = v
				}
			}
		})
	}
	if u.c >= 0 && r.p.vals[u.c].needGrad {
		dc, acc := r.gradIn(u.c)
		cs := r.p.vals[u.c].shape
		sums := make([]float64, len(dc))
		for i := 0; i < u.m; i++ {
			for j := 0; j < u.n; j++ {
				sums[u.cAt(cs, i, j)] += float64(dy[i*u.n+j])
			}
		}
		beta := float64(u.op.Beta)
		for i, s := range sums {
			v := float32(beta * s)
			if acc {
				v += dc[i]
			}
			dc[i] = v
		}
	}
	return nil
}

package kasm

import "math"

// cmpps runs "VCMPPS $p, b, a, k": bit i of opmask k is the predicate p (its low 3 bits: EQ,
// LT, LE, UNORD, NEQ, NLT, NLE, ORD; the signalling and quiet variants give the same bits) of
// a[i] and b[i]. Under an opmask the unselected bits are 0, and a memory b is read only in the
// selected lanes, as AVX-512 does. Bits above the vector's lanes are 0.
func (m *Machine) cmpps(in Inst) error {
	a := in.Args
	if len(a) != 4 || in.Zeroing {
		return errForm
	}
	p, ok1 := a[0].(Imm)
	s1, ok2 := a[2].(Reg)
	k, ok3 := a[3].(Reg)
	if !ok1 || !ok2 || !ok3 || s1.Lanes() == 0 || k.Kind != K || p < 0 || p > 31 {
		return errForm
	}
	s2, err := m.vecSrc(in, a[1], s1.Lanes())
	if err != nil {
		return err
	}
	var bits uint64
	for i := 0; i < s1.Lanes(); i++ {
		if !m.selected(in, i) {
			continue
		}
		x, y := math.Float32frombits(m.V[s1.N][i]), math.Float32frombits(s2[i])
		unord := x != x || y != y
		var r bool
		switch p & 7 {
		case 0:
			r = x == y
		case 1:
			r = x < y
		case 2:
			r = x <= y
		case 3:
			r = unord
		case 4:
			r = !(x == y)
		case 5:
			r = !(x < y)
		case 6:
			r = !(x <= y)
		case 7:
			r = !unord
		}
		if r {
			bits |= 1 << i
		}
	}
	m.K[k.N] = bits
	return nil
}

package kasm

import (
	"encoding/binary"
	"fmt"
	"math"
)

// vector runs the vector instructions. Lanes are float32 bit patterns; the number of lanes is
// that of the destination register (of the source, for a store).
func (m *Machine) vector(in Inst) (Label, error) {
	a := in.Args
	dst := a[len(a)-1]
	switch in.Op {
	case VMOVUPS, VMOVDQU:
		if len(a) != 2 {
			return "", errForm
		}
		if st, ok := dst.(Mem); ok { // store: only the lanes the mask selects are written
			src, ok := a[0].(Reg)
			if !ok || src.Lanes() == 0 {
				return "", errForm
			}
			return "", m.storeVec(in, src, st)
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		v, err := m.vecSrc(in, a[0], d.Lanes())
		if err != nil {
			return "", err
		}
		m.writeVec(in, d, v)
		return "", nil
	case VBROADCASTSS:
		if len(a) != 2 {
			return "", errForm
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		var x uint32
		switch s := a[0].(type) {
		case Mem:
			b, err := m.load(s, 4)
			if err != nil {
				return "", err
			}
			x = binary.LittleEndian.Uint32(b)
		case Reg:
			if s.Kind != X {
				return "", errForm
			}
			x = m.V[s.N][0]
		default:
			return "", errForm
		}
		v := make([]uint32, d.Lanes())
		for i := range v {
			v[i] = x
		}
		m.writeVec(in, d, v)
		return "", nil
	case VMASKMOVPS:
		return "", m.maskmov(a)
	case VPTESTMD:
		// "VPTESTMD b, a, k": bit i of k is set when lane i of a AND b is not zero. Under a
		// mask (not used here) the unselected bits would be 0.
		if len(a) != 3 || in.Mask.Kind != NoKind {
			return "", errForm
		}
		k, ok := dst.(Reg)
		if !ok || k.Kind != K {
			return "", errForm
		}
		s1, ok := a[1].(Reg)
		if !ok || s1.Lanes() == 0 {
			return "", errForm
		}
		s2, err := m.vecSrc(Inst{}, a[0], s1.Lanes())
		if err != nil {
			return "", err
		}
		var bits uint64
		for i := 0; i < s1.Lanes(); i++ {
			if m.V[s1.N][i]&s2[i] != 0 {
				bits |= 1 << i
			}
		}
		m.K[k.N] = bits
		return "", nil
	case VCMPPS:
		return "", m.cmpps(in)
	case VPERMPS:
		// "VPERMPS data, idx, d". The data operand is read whole even under a mask: any lane
		// may select any element, so the hardware does not suppress faults on it.
		if len(a) != 3 {
			return "", errForm
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		idx, ok := a[1].(Reg)
		if !ok || idx.Lanes() != d.Lanes() {
			return "", errForm
		}
		data, err := m.vecSrc(Inst{}, a[0], d.Lanes())
		if err != nil {
			return "", err
		}
		v := make([]uint32, d.Lanes())
		for i := range v {
			v[i] = data[m.V[idx.N][i]%uint32(d.Lanes())]
		}
		m.writeVec(in, d, v)
		return "", nil
	case VCOMPRESSPS:
		// "VCOMPRESSPS a, k, d": the mask is not a write mask but the selection; the lanes
		// past the packed ones merge or zero as under a write mask. Register forms only (the
		// store form is slow on AMD and no kernel uses it).
		if len(a) != 2 || in.Mask.Kind != K {
			return "", errForm
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		s, ok := a[0].(Reg)
		if !ok || s.Lanes() != d.Lanes() {
			return "", errForm
		}
		r := &m.V[d.N]
		src := m.V[s.N] // a copy: s may be d
		n := 0
		for i := 0; i < d.Lanes(); i++ {
			if in.Mask.N == 0 || m.K[in.Mask.N]>>i&1 != 0 {
				r[n] = src[i]
				n++
			}
		}
		for i := n; i < d.Lanes(); i++ {
			if in.Zeroing {
				r[i] = 0
			}
		}
		clear(r[d.Lanes():])
		return "", nil
	case VEXTRACTF64X4:
		// "VEXTRACTF64X4 $n, z, y": lanes 8n..8n+7 of z into y (unmasked, register forms only).
		if len(a) != 3 || in.Mask.Kind != NoKind {
			return "", errForm
		}
		n, ok1 := a[0].(Imm)
		z, ok2 := a[1].(Reg)
		y, ok3 := dst.(Reg)
		if !ok1 || !ok2 || !ok3 || z.Kind != Z || y.Kind != Y {
			return "", errForm
		}
		h := int(n&1) * 8
		v := append([]uint32(nil), m.V[z.N][h:h+8]...)
		m.writeVec(Inst{}, y, v)
		return "", nil
	case VUNPCKLPS, VUNPCKHPS, VSHUFPS, VSHUFF32X4:
		return "", m.shuffle(in)
	case VCVTTPS2DQ, VCVTDQ2PS:
		// "op a, d": a may be memory (or a broadcast element).
		if len(a) != 2 {
			return "", errForm
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		s, err := m.vecSrc(in, a[0], d.Lanes())
		if err != nil {
			return "", err
		}
		v := make([]uint32, d.Lanes())
		for i, x := range s {
			if in.Op == VCVTDQ2PS {
				v[i] = math.Float32bits(float32(int32(x)))
			} else {
				v[i] = cvttps2dq(x)
			}
		}
		m.writeVec(in, d, v)
		return "", nil
	case VPSLLD, VPSRLD, VPSRAD:
		// "op $n, a, d" (register a).
		if len(a) != 3 {
			return "", errForm
		}
		n, ok := a[0].(Imm)
		if !ok {
			return "", errForm
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		s, err := m.vecSrc(Inst{}, a[1], d.Lanes())
		if err != nil {
			return "", err
		}
		c := uint64(n) & 0xFF
		v := make([]uint32, d.Lanes())
		for i, x := range s {
			switch {
			case in.Op == VPSRAD:
				v[i] = uint32(int32(x) >> min(c, 31))
			case c > 31:
				v[i] = 0
			case in.Op == VPSLLD:
				v[i] = x << c
			default:
				v[i] = x >> c
			}
		}
		m.writeVec(in, d, v)
		return "", nil
	case VXORPS, VPXORD, VANDPS, VORPS, VADDPS, VSUBPS, VMULPS, VMAXPS, VMINPS, VDIVPS, VPADDD, VPSUBD, VSCALEFPS:
		// Go order "op src2, src1, dst"; src2 may be memory (or a broadcast element).
		if len(a) != 3 {
			return "", errForm
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		s2, err := m.vecSrc(in, a[0], d.Lanes())
		if err != nil {
			return "", err
		}
		s1, err := m.vecSrc(Inst{}, a[1], d.Lanes())
		if err != nil {
			return "", err
		}
		v := make([]uint32, d.Lanes())
		for i := range v {
			v[i] = binop(in.Op, s1[i], s2[i])
		}
		m.writeVec(in, d, v)
		return "", nil
	case VFMADD231PS, VFMADD213PS:
		// Go order "op src3, src2, dst"; 231: dst = src2*src3 + dst, 213: dst = src2*dst + src3.
		if len(a) != 3 {
			return "", errForm
		}
		d, err := m.vecDst(dst)
		if err != nil {
			return "", err
		}
		s3, err := m.vecSrc(in, a[0], d.Lanes())
		if err != nil {
			return "", err
		}
		s2, err := m.vecSrc(Inst{}, a[1], d.Lanes())
		if err != nil {
			return "", err
		}
		s1 := m.V[d.N][:d.Lanes()]
		v := make([]uint32, d.Lanes())
		for i := range v {
			if in.Op == VFMADD231PS {
				v[i] = fmaBits(s1[i], s2[i], s3[i], s2[i], s3[i], s1[i])
			} else {
				v[i] = fmaBits(s1[i], s2[i], s3[i], s2[i], s1[i], s3[i])
			}
		}
		m.writeVec(in, d, v)
		return "", nil
	}
	return "", fmt.Errorf("the interpreter does not run %s", in.Op)
}

// shuffle runs the lane shuffles: "op b, a, d", with an immediate first for VSHUFPS and
// VSHUFF32X4 ("op $i, b, a, d"). b may be memory (or a broadcast element, as for the arithmetic).
func (m *Machine) shuffle(in Inst) error {
	a := in.Args
	var imm uint64
	if in.Op == VSHUFPS || in.Op == VSHUFF32X4 {
		i, ok := a[0].(Imm)
		if !ok || len(a) != 4 {
			return errForm
		}
		imm, a = uint64(i)&0xFF, a[1:]
	}
	if len(a) != 3 {
		return errForm
	}
	d, err := m.vecDst(a[2])
	if err != nil {
		return err
	}
	if in.Op == VSHUFF32X4 && d.Kind != Z {
		return errForm // the ymm form takes 1-bit lane numbers; no kernel uses it
	}
	b, err := m.vecSrc(in, a[0], d.Lanes())
	if err != nil {
		return err
	}
	x, err := m.vecSrc(Inst{}, a[1], d.Lanes())
	if err != nil {
		return err
	}
	v := make([]uint32, d.Lanes())
	for l := 0; l < d.Lanes(); l += 4 { // one 128-bit lane: elements l..l+3
		switch in.Op {
		case VUNPCKLPS:
			v[l], v[l+1], v[l+2], v[l+3] = x[l], b[l], x[l+1], b[l+1]
		case VUNPCKHPS:
			v[l], v[l+1], v[l+2], v[l+3] = x[l+2], b[l+2], x[l+3], b[l+3]
		case VSHUFPS:
			v[l], v[l+1] = x[l+int(imm&3)], x[l+int(imm>>2&3)]
			v[l+2], v[l+3] = b[l+int(imm>>4&3)], b[l+int(imm>>6&3)]
		case VSHUFF32X4:
			src, sel := x, int(imm>>(l/2)&3) // lanes 0, 1 from a, 2, 3 from b
			if l >= 8 {
				src = b
			}
			copy(v[l:l+4], src[4*sel:4*sel+4])
		}
	}
	m.writeVec(in, d, v)
	return nil
}

func (m *Machine) vecDst(op Operand) (Reg, error) {
	r, ok := op.(Reg)
	if !ok || r.Lanes() == 0 {
		return Reg{}, errForm
	}
	return r, nil
}

// vecSrc reads n lanes from a register or memory. A memory source under a mask reads only the
// selected lanes (AVX-512 suppresses faults on the others); with in.Bcst it reads one float32.
func (m *Machine) vecSrc(in Inst, op Operand, n int) ([]uint32, error) {
	v := make([]uint32, n)
	switch x := op.(type) {
	case Reg:
		if x.Lanes() == 0 {
			return nil, errForm
		}
		copy(v, m.V[x.N][:n])
		return v, nil
	case Mem:
		if in.Bcst {
			b, err := m.load(x, 4)
			if err != nil {
				return nil, err
			}
			for i := range v {
				v[i] = binary.LittleEndian.Uint32(b)
			}
			return v, nil
		}
		for i := range v {
			if !m.selected(in, i) {
				continue
			}
			b, err := m.Mem.span(m.addr(x)+uint64(4*i), 4)
			if err != nil {
				return nil, err
			}
			v[i] = binary.LittleEndian.Uint32(b)
		}
		return v, nil
	}
	return nil, errForm
}

// selected reports whether lane i is written under in's opmask (always, with none; K0 in the
// mask slot means no mask too, as in the encoding).
func (m *Machine) selected(in Inst, i int) bool {
	if in.Mask.Kind != K || in.Mask.N == 0 {
		return true
	}
	return m.K[in.Mask.N]>>i&1 != 0
}

// writeVec writes v to d under in's mask (merging, or zeroing with in.Zeroing) and clears the
// lanes above d, as VEX and EVEX instructions do.
func (m *Machine) writeVec(in Inst, d Reg, v []uint32) {
	r := &m.V[d.N]
	for i, x := range v {
		switch {
		case m.selected(in, i):
			r[i] = x
		case in.Zeroing:
			r[i] = 0
		}
	}
	clear(r[len(v):])
}

func (m *Machine) storeVec(in Inst, src Reg, st Mem) error {
	for i := 0; i < src.Lanes(); i++ {
		if !m.selected(in, i) {
			continue
		}
		b, err := m.Mem.span(m.addr(st)+uint64(4*i), 4)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(b, m.V[src.N][i])
	}
	return nil
}

// maskmov runs VMASKMOVPS: a load "mem, mask, dst" or a store "src, mask, mem" of the lanes
// whose mask lane has its sign bit set. The other lanes are never accessed, so they may lie
// outside the mapped memory; loaded, they are 0.
func (m *Machine) maskmov(a []Operand) error {
	if len(a) != 3 {
		return errForm
	}
	mask, ok := a[1].(Reg)
	if !ok || mask.Lanes() == 0 {
		return errForm
	}
	sel := func(i int) bool { return m.V[mask.N][i]>>31 != 0 }
	if st, ok := a[2].(Mem); ok {
		src, ok := a[0].(Reg)
		if !ok || src.Lanes() != mask.Lanes() {
			return errForm
		}
		for i := 0; i < src.Lanes(); i++ {
			if sel(i) {
				b, err := m.Mem.span(m.addr(st)+uint64(4*i), 4)
				if err != nil {
					return err
				}
				binary.LittleEndian.PutUint32(b, m.V[src.N][i])
			}
		}
		return nil
	}
	ld, ok1 := a[0].(Mem)
	d, ok2 := a[2].(Reg)
	if !ok1 || !ok2 || d.Lanes() != mask.Lanes() {
		return errForm
	}
	v := make([]uint32, d.Lanes())
	for i := range v {
		if sel(i) {
			b, err := m.Mem.span(m.addr(ld)+uint64(4*i), 4)
			if err != nil {
				return err
			}
			v[i] = binary.LittleEndian.Uint32(b)
		}
	}
	m.writeVec(Inst{}, d, v)
	return nil
}

// defaultNaN is the "real indefinite" x86 returns for an invalid operation (0*inf, inf-inf).
const defaultNaN = 0xFFC00000

func isNaN(x uint32) bool { return x&0x7FFFFFFF > 0x7F800000 }

// quiet returns the NaN x made quiet, as x86 returns an input NaN.
func quiet(x uint32) uint32 { return x | 0x00400000 }

// binop computes one lane of op with Intel's operands src1, src2. A NaN result is src1's NaN,
// else src2's (quieted), else the default NaN; VMAXPS and VMINPS return src2 when either is NaN,
// or when they are equal (max(+0, -0) is -0), exactly as the instructions do. VPADDD and VPSUBD
// are int32 lane arithmetic, wrapping.
func binop(op Op, s1, s2 uint32) uint32 {
	switch op {
	case VXORPS, VPXORD:
		return s1 ^ s2
	case VANDPS:
		return s1 & s2
	case VORPS:
		return s1 | s2
	case VMAXPS:
		if math.Float32frombits(s1) > math.Float32frombits(s2) {
			return s1
		}
		return s2
	case VMINPS:
		if math.Float32frombits(s1) < math.Float32frombits(s2) {
			return s1
		}
		return s2
	case VPADDD:
		return s1 + s2
	case VPSUBD:
		return s1 - s2
	}
	if isNaN(s1) {
		return quiet(s1)
	}
	if isNaN(s2) {
		return quiet(s2)
	}
	x, y := math.Float32frombits(s1), math.Float32frombits(s2)
	if op == VSCALEFPS {
		return scalef(x, y)
	}
	var r float32
	switch op {
	case VADDPS:
		r = x + y
	case VSUBPS:
		r = x - y
	case VDIVPS:
		r = x / y
	default:
		r = x * y
	}
	if r != r {
		return defaultNaN
	}
	return math.Float32bits(r)
}

// cvttps2dq converts one lane as VCVTTPS2DQ does: toward zero, and the "integer indefinite"
// 0x80000000 for NaN and for values outside the int32 range.
func cvttps2dq(x uint32) uint32 {
	f := float64(math.Float32frombits(x))
	if f != f || f >= 1<<31 || f < -(1<<31) {
		return 0x80000000
	}
	return uint32(int32(f))
}

// fmaBits returns a*b + c rounded once. o1, o2, o3 are the Intel operands 1..3 of the
// instruction, in the order the first NaN among them is returned.
func fmaBits(o1, o2, o3, a, b, c uint32) uint32 {
	for _, x := range [3]uint32{o1, o2, o3} {
		if isNaN(x) {
			return quiet(x)
		}
	}
	r := FMA32(math.Float32frombits(a), math.Float32frombits(b), math.Float32frombits(c))
	if r != r {
		return defaultNaN
	}
	return math.Float32bits(r)
}

// FMA32 returns a*b + c with one rounding to float32, as VFMADD*PS computes it.
//
// math.FMA rounds the exact value to float64, and rounding that to float32 again can be wrong
// by one unit when the first rounding lands on a float32 midpoint (1 + 2^-24 + 2^-80 becomes
// 1 + 2^-24, then 1; the right answer is 1 + 2^-23). The float64 sum is therefore rounded to
// odd instead: if it is inexact and its last bit is even, it moves one unit towards the exact
// value. A round-to-odd result with 53 >= 24+2 bits then rounds to float32 exactly as the exact
// value would (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums", 2008).
func FMA32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact: 24+24 bits fit in 53
	s := math.FMA(float64(a), float64(b), float64(c))
	if math.IsInf(s, 0) || math.IsNaN(s) || math.IsInf(p, 0) {
		return float32(s)
	}
	// TwoSum: s + e == p + c exactly (p and c are float64 and s = fl(p + c)).
	cc := float64(c)
	bv := s - p
	e := (p - (s - bv)) + (cc - bv)
	if e != 0 && math.Float64bits(s)&1 == 0 {
		s = math.Nextafter(s, math.Copysign(math.Inf(1), e))
	}
	return float32(s)
}

// scalef is VSCALEFPS for operands that are not NaN: x * 2**floor(y), rounded once to float32
// (math.Ldexp is exact in float64 for every float32 x and the exponents that matter; beyond
// +-400 the result has over- or underflowed whatever x is).
func scalef(x, y float32) uint32 {
	switch {
	case math.IsInf(float64(y), 1):
		if x == 0 {
			return 0xFFC00000 // the default NaN (real indefinite)
		}
		return math.Float32bits(float32(math.Copysign(math.Inf(1), float64(x))))
	case math.IsInf(float64(y), -1):
		if math.IsInf(float64(x), 0) {
			return 0xFFC00000 // the default NaN (real indefinite)
		}
		return math.Float32bits(float32(math.Copysign(0, float64(x))))
	}
	n := math.Floor(float64(y))
	n = max(-400, min(400, n))
	return math.Float32bits(float32(math.Ldexp(float64(x), int(n))))
}

package kasm

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// fmaExact is a*b + c rounded once to float32, computed with big.Float (exact product and sum).
func fmaExact(a, b, c float32) float32 {
	p := new(big.Float).SetPrec(200).Mul(big.NewFloat(float64(a)), big.NewFloat(float64(b)))
	x := new(big.Float).SetPrec(400).Add(p, big.NewFloat(float64(c)))
	f, _ := x.Float32()
	if f == 0 && x.Sign() == 0 {
		return float32(math.FMA(float64(a), float64(b), float64(c))) // the sign of an exact zero
	}
	return f
}

// TestFMA32 checks the one-rounding FMA on random operands and on the double-rounding trap
// that float32(math.FMA(...)) falls into.
func TestFMA32(t *testing.T) {
	// a*b = 1 + 2^-24 (a float32 midpoint), c = 2^-80: the exact sum lies just above the midpoint.
	a, b := float32(1+1.0/(1<<12)), float32(1+1.0/(1<<12))
	// (1+2^-12)^2 = 1 + 2^-11 + 2^-24.
	c := float32(math.Ldexp(1, -80))
	if got, naive, want := FMA32(a, b, c), float32(math.FMA(float64(a), float64(b), float64(c))), fmaExact(a, b, c); got != want || naive == want {
		t.Errorf("midpoint case: FMA32 = %x, float32(math.FMA) = %x, exact %x (the case must tell them apart)",
			math.Float32bits(got), math.Float32bits(naive), math.Float32bits(want))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		a := math.Float32frombits(r.Uint32())
		b := math.Float32frombits(r.Uint32())
		c := math.Float32frombits(r.Uint32())
		if i%2 == 0 { // operands of similar size, where cancellation happens
			a, b, c = float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		if a != a || b != b || c != c || math.IsInf(float64(a*b), 0) || math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) || math.IsInf(float64(c), 0) {
			continue
		}
		if got, want := FMA32(a, b, c), fmaExact(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("FMA32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
}

// TestPrint: operands print in Go's syntax, AVX-512 decorations included.
func TestPrint(t *testing.T) {
	tests := []struct {
		in   Inst
		want string
	}{
		{Inst{Op: VMOVUPS, Args: []Operand{At(0, BX).Idx(R9, 4), YReg(12)}}, "VMOVUPS 0(BX)(R9*4), Y12"},
		{Inst{Op: LEAQ, Args: []Operand{Ptr(SI).Idx(R9, 4), SI}}, "LEAQ (SI)(R9*4), SI"},
		{Inst{Op: MOVQ, Args: []Operand{Param{"ldc", 32}, SI}}, "MOVQ ldc+32(FP), SI"},
		{Inst{Op: VFMADD231PS, Args: []Operand{At(4, AX), ZReg(1), ZReg(0)}, Bcst: true}, "VFMADD231PS.BCST 4(AX), Z1, Z0"},
		{Inst{Op: VMOVUPS, Args: []Operand{Ptr(AX), ZReg(2)}, Mask: KReg(1), Zeroing: true}, "VMOVUPS.Z (AX), K1, Z2"},
		{Inst{Op: VMOVUPS, Args: []Operand{ZReg(2), At(-64, DI)}, Mask: KReg(3)}, "VMOVUPS Z2, K3, -64(DI)"},
		{Inst{Def: "loop"}, "loop:"},
	}
	for _, tc := range tests {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestBranches: CMPQ follows Go's operand order, and each condition reads the right flags.
func TestBranches(t *testing.T) {
	tests := []struct {
		op   Op
		x, y int64 // CMPQ x, y
		want bool
	}{
		{JLT, 1, 2, true}, {JLT, 2, 1, false}, {JLT, -5, 3, true}, {JGE, 3, 3, true}, {JGT, 3, 3, false},
		{JLE, 3, 3, true}, {JEQ, 7, 7, true}, {JNE, 7, 7, false}, {JCS, 1, 2, true}, {JCC, -1, 2, true},
	}
	for _, tc := range tests {
		m := &Machine{}
		f := NewFunc("f", "")
		f.I(MOVQ, Imm(tc.x), AX)
		f.I(MOVQ, Imm(0), BX)
		f.I(CMPQ, AX, Imm(tc.y))
		f.I(tc.op, Label("yes"))
		f.I(RET)
		f.Label("yes")
		f.I(MOVQ, Imm(1), BX)
		f.I(RET)
		if err := m.Run(f); err != nil {
			t.Fatal(err)
		}
		if got := m.GP[BX.N] == 1; got != tc.want {
			t.Errorf("CMPQ %d, %d; %s: taken %v, want %v", tc.x, tc.y, tc.op, got, tc.want)
		}
	}
}

// TestErrors: what a broken kernel does is reported, not run on.
func TestErrors(t *testing.T) {
	var mem Memory
	base := mem.Map("s", make([]byte, 16))
	tests := []struct {
		name string
		body func(f *Func)
		want string
	}{
		{"read past a slice", func(f *Func) {
			f.I(MOVQ, f.Param("x"), AX)
			f.I(VMOVUPS, Ptr(AX), YReg(0))
			f.I(RET)
		}, "outside its 16 bytes"},
		{"branch on undefined flag", func(f *Func) {
			f.I(MOVQ, Imm(5), DX)
			f.I(BTRQ, Imm(0), DX)
			f.I(JLT, Label("x"))
			f.Label("x")
			f.I(RET)
		}, "undefined"},
		{"unknown instruction", func(f *Func) { f.I("VPERMILPS", YReg(0), YReg(1), YReg(2)); f.I(RET) }, "does not run VPERMILPS"},
		{"no RET", func(f *Func) { f.I(MOVQ, Imm(1), AX) }, "ran past"},
		{"endless loop", func(f *Func) { f.Label("l"); f.I(JMP, Label("l")) }, "more than"},
		{"wrong argument name", func(f *Func) { f.I(MOVQ, Param{"y", 0}, AX); f.I(RET) }, "not an argument"},
	}
	for _, tc := range tests {
		f := NewFunc("f", "", "x")
		tc.body(f)
		m := &Machine{Mem: &mem, MaxSteps: 1000}
		err := m.Run(f, base)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestAVX512Forms: a masked load touches only the selected lanes (the others may lie outside
// memory), zeroing clears the rest, merging keeps them, and an embedded broadcast reads one
// float32.
func TestAVX512Forms(t *testing.T) {
	var mem Memory
	src := []float32{1, 2, 3}
	dst := make([]float32, 16)
	sA, dA := mem.Map("src", Bytes(src)), mem.Map("dst", Bytes(dst))
	f := NewFunc("f", "", "src", "dst")
	f.I(MOVQ, f.Param("src"), AX)
	f.I(MOVQ, f.Param("dst"), DI)
	f.I(MOVQ, Imm(0b111), CX)
	f.I(KMOVW, CX, KReg(1))
	f.Masked(VMOVUPS, KReg(1), true, Ptr(AX), ZReg(0)) // lanes 0..2 = src, rest 0
	f.Add(Inst{Op: VBROADCASTSS, Args: []Operand{At(4, AX), ZReg(1)}})
	f.Add(Inst{Op: VADDPS, Args: []Operand{At(8, AX), ZReg(1), ZReg(1)}, Bcst: true}) // 2+3 everywhere
	f.Masked(VADDPS, KReg(1), false, ZReg(1), ZReg(0), ZReg(0))                       // lanes 0..2 += 5
	f.I(VMOVUPS, ZReg(0), Ptr(DI))
	f.I(RET)
	m := &Machine{Mem: &mem}
	for i := range m.V[0] {
		m.V[0][i] = math.Float32bits(-1)
	}
	if err := m.Run(f, sA, dA); err != nil {
		t.Fatal(err)
	}
	want := []float32{6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("dst = %v, want %v", dst, want)
		}
	}
}

// TestAVX512Logic runs the AVX-512 F forms the zmm packer uses: VPTESTMD turns the int32 lane
// masks into an opmask, KORW/KXORW combine and clear opmasks, VPXORD zeroes a zmm.
func TestAVX512Logic(t *testing.T) {
	var m Machine
	for i := range 16 {
		m.V[1][i] = 0
		if i%3 == 0 {
			m.V[1][i] = 0xFFFFFFFF
		}
		m.V[2][i] = 0x3F800000
	}
	f := NewFunc("t", "")
	f.I(VPTESTMD, ZReg(1), ZReg(1), KReg(1))
	f.I(KXORW, KReg(2), KReg(2), KReg(2))
	f.I(KORW, KReg(1), KReg(2), KReg(2))
	f.I(VPXORD, ZReg(2), ZReg(2), ZReg(2))
	f.I(RET)
	m.K[2] = 0x8000
	if err := m.Run(f); err != nil {
		t.Fatal(err)
	}
	if m.K[1] != 0x9249 || m.K[2] != 0x9249 {
		t.Errorf("K1 = %#x, K2 = %#x, want 0x9249 both", m.K[1], m.K[2])
	}
	for i := range 16 {
		if m.V[2][i] != 0 {
			t.Fatalf("VPXORD left lane %d = %#x", i, m.V[2][i])
		}
	}
}

// TestLaneMoves runs the matrix-vector kernel's lane moves: VPERMPS picks data lanes by the low
// bits of each index (under a mask, merging), and VEXTRACTF64X4 takes either half of a zmm and
// clears the register above the ymm it writes.
func TestLaneMoves(t *testing.T) {
	var m Machine
	for i := range 16 {
		m.V[1][i] = uint32(100 + i)     // data
		m.V[2][i] = uint32(15 - i + 32) // indices, reversed, with bits above the lane number
		m.V[3][i] = 7                   // merge target
		m.V[4][i] = 0xFFFFFFFF          // extract target: the lanes above 8 must be cleared
	}
	f := NewFunc("t", "")
	f.I(VPERMPS, ZReg(1), ZReg(2), ZReg(5))
	f.I(MOVQ, Imm(0x00F0), CX)
	f.I(KMOVW, CX, KReg(1))
	f.Masked(VPERMPS, KReg(1), false, ZReg(1), ZReg(2), ZReg(3))
	f.I(VEXTRACTF64X4, Imm(1), ZReg(1), YReg(4))
	f.I(VEXTRACTF64X4, Imm(0), ZReg(1), YReg(6))
	f.I(VPERMPS, YReg(1), YReg(2), YReg(7)) // ymm: indices mod 8
	f.I(RET)
	if err := m.Run(f); err != nil {
		t.Fatal(err)
	}
	for i := range 16 {
		if got, want := m.V[5][i], uint32(100+15-i); got != want {
			t.Errorf("VPERMPS lane %d = %d, want %d", i, got, want)
		}
		want := uint32(7)
		if i >= 4 && i < 8 {
			want = uint32(100 + 15 - i)
		}
		if m.V[3][i] != want {
			t.Errorf("masked VPERMPS lane %d = %d, want %d", i, m.V[3][i], want)
		}
		hi, lo, y := uint32(0), uint32(0), uint32(0)
		if i < 8 {
			hi, lo, y = uint32(108+i), uint32(100+i), uint32(100+7-i)
		}
		if m.V[4][i] != hi || m.V[6][i] != lo || m.V[7][i] != y {
			t.Errorf("lane %d: extract high %d, low %d, ymm VPERMPS %d; want %d, %d, %d", i, m.V[4][i], m.V[6][i], m.V[7][i], hi, lo, y)
		}
	}
}

// TestShuffles runs the Winograd output transform's subtraction and transposes on zmm and ymm
// operands with lane numbers as data (a = 100+i, b = 200+i), so that every result names the
// element it came from: the in-lane shuffles repeat per 128-bit lane, VSHUFF32X4 moves whole
// lanes, a mask merges, and a ymm result clears the register above it.
func TestShuffles(t *testing.T) {
	// lane returns, per 128-bit lane l of a result with n elements, the 4 elements f(l) gives.
	perLane := func(n int, f func(l int) [4]uint32) []uint32 {
		var v []uint32
		for l := 0; l < n; l += 4 {
			e := f(l)
			v = append(v, e[:]...)
		}
		return v
	}
	a := func(i int) uint32 { return uint32(100 + i) }
	b := func(i int) uint32 { return uint32(200 + i) }
	tests := []struct {
		name string
		in   Inst
		want []uint32
	}{
		{"VUNPCKLPS zmm", Inst{Op: VUNPCKLPS, Args: []Operand{ZReg(2), ZReg(1), ZReg(3)}},
			perLane(16, func(l int) [4]uint32 { return [4]uint32{a(l), b(l), a(l + 1), b(l + 1)} })},
		{"VUNPCKHPS ymm", Inst{Op: VUNPCKHPS, Args: []Operand{YReg(2), YReg(1), YReg(3)}},
			perLane(8, func(l int) [4]uint32 { return [4]uint32{a(l + 2), b(l + 2), a(l + 3), b(l + 3)} })},
		{"VSHUFPS $0x4e zmm", Inst{Op: VSHUFPS, Args: []Operand{Imm(0x4e), ZReg(2), ZReg(1), ZReg(3)}}, // 2 3 0 1
			perLane(16, func(l int) [4]uint32 { return [4]uint32{a(l + 2), a(l + 3), b(l), b(l + 1)} })},
		{"VSHUFPS $0x1b ymm", Inst{Op: VSHUFPS, Args: []Operand{Imm(0x1b), YReg(2), YReg(1), YReg(3)}}, // 3 2 1 0
			perLane(8, func(l int) [4]uint32 { return [4]uint32{a(l + 3), a(l + 2), b(l + 1), b(l)} })},
		{"VSHUFF32X4 $0xd8", Inst{Op: VSHUFF32X4, Args: []Operand{Imm(0xd8), ZReg(2), ZReg(1), ZReg(3)}}, // lanes a0 a2 b1 b3
			perLane(16, func(l int) [4]uint32 {
				src := map[int]int{0: 0, 4: 8, 8: 4, 12: 12}[l]
				f := a
				if l >= 8 {
					f = b
				}
				return [4]uint32{f(src), f(src + 1), f(src + 2), f(src + 3)}
			})},
		{"masked VSHUFF32X4", Inst{Op: VSHUFF32X4, Args: []Operand{Imm(0x00), ZReg(2), ZReg(1), ZReg(3)}, Mask: KReg(1)},
			// K1 = 0x0FF0: lanes 4..11 written (a0 a0 | b0 b0 → elements 4..7 from a0, 8..11 from b0)
			[]uint32{7, 7, 7, 7, a(0), a(1), a(2), a(3), b(0), b(1), b(2), b(3), 7, 7, 7, 7}},
	}
	for _, tc := range tests {
		var m Machine
		for i := range 16 {
			m.V[1][i], m.V[2][i], m.V[3][i] = a(i), b(i), 7
		}
		m.K[1] = 0x0FF0
		f := NewFunc("t", "")
		f.Add(tc.in)
		f.I(RET)
		if err := m.Run(f); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i := range 16 {
			want := uint32(0) // a ymm result clears lanes 8..15
			if i < len(tc.want) {
				want = tc.want[i]
			}
			if m.V[3][i] != want {
				t.Errorf("%s: element %d = %d, want %d (all: %v)", tc.name, i, m.V[3][i], want, m.V[3])
				break
			}
		}
	}
}

// TestSub: VSUBPS computes src1 - src2 in Go's operand order ("VSUBPS b, a, d" is d = a - b),
// with a memory or broadcast subtrahend, and returns src1's NaN before src2's.
func TestSub(t *testing.T) {
	var mem Memory
	src := []float32{0.5}
	sA := mem.Map("src", Bytes(src))
	nanA, nanB := uint32(0x7F800001), uint32(0x7F800002)
	tests := []struct {
		name string
		in   Inst
		a, b uint32 // Z1 and Z2 in every lane
		want uint32
	}{
		{"registers", Inst{Op: VSUBPS, Args: []Operand{ZReg(2), ZReg(1), ZReg(3)}}, math.Float32bits(3), math.Float32bits(1), math.Float32bits(2)},
		{"broadcast", Inst{Op: VSUBPS, Args: []Operand{Ptr(AX), ZReg(1), ZReg(3)}, Bcst: true}, math.Float32bits(3), 0, math.Float32bits(2.5)},
		{"NaN order", Inst{Op: VSUBPS, Args: []Operand{ZReg(2), ZReg(1), ZReg(3)}}, nanA, nanB, quiet(nanA)},
		{"inf - inf", Inst{Op: VSUBPS, Args: []Operand{ZReg(2), ZReg(1), ZReg(3)}}, 0x7F800000, 0x7F800000, defaultNaN},
	}
	for _, tc := range tests {
		m := Machine{Mem: &mem}
		for i := range 16 {
			m.V[1][i], m.V[2][i] = tc.a, tc.b
		}
		f := NewFunc("t", "", "src")
		f.I(MOVQ, f.Param("src"), AX)
		f.Add(tc.in)
		f.I(RET)
		if err := m.Run(f, sA); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if m.V[3][15] != tc.want || m.V[3][0] != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, m.V[3][0], tc.want)
		}
	}
}

// TestElementwiseOps runs the instructions of the vector sigmoid on ymm and zmm registers, and
// under an opmask (merging and zeroing) on zmm: each lane of Z3 must be want(a, b) for the lanes
// a of Z1 and b of Z2 (b is the memory operand in the "memory" cases).
func TestElementwiseOps(t *testing.T) {
	f32 := math.Float32bits
	nan := uint32(0x7F800001)
	// Lane pairs (Z1, Z2) covering signs, zeros, NaNs, infinities and the int32 range.
	pairs := [][2]uint32{
		{f32(1.5), f32(-2.25)}, {f32(-7.75), f32(3)}, {f32(0), f32(float32(math.Copysign(0, -1)))},
		{nan, f32(1)}, {f32(1), nan}, {f32(float32(math.Inf(1))), f32(2)}, {f32(6), f32(0)},
		{f32(2147483648), f32(-2147483648)}, {f32(-2147483904), f32(1e10)}, {f32(384.5), f32(130.5)},
		{0x80000000, 0x7FFFFFFF}, {0xFFFFFFFF, 1}, {0x00000181, 0x00000082}, {f32(-0.5), f32(-3.99)},
		{0x40000000, 0xC0000000}, {f32(1e-40), f32(3)},
	}
	neg := func(x uint32) bool { return x>>31 != 0 }
	tests := []struct {
		name string
		op   Op
		imm  int64 // shifts: the count
		want func(a, b uint32) uint32
	}{
		{"min", VMINPS, 0, func(a, b uint32) uint32 {
			if math.Float32frombits(a) < math.Float32frombits(b) {
				return a
			}
			return b
		}},
		{"div", VDIVPS, 0, func(a, b uint32) uint32 {
			switch {
			case isNaN(a):
				return quiet(a)
			case isNaN(b):
				return quiet(b)
			}
			r := math.Float32frombits(a) / math.Float32frombits(b)
			if r != r {
				return defaultNaN
			}
			return f32(r)
		}},
		{"cvtt", VCVTTPS2DQ, 0, func(a, _ uint32) uint32 {
			x := float64(math.Float32frombits(a))
			if x != x || x >= 1<<31 || x < -(1<<31) {
				return 0x80000000
			}
			return uint32(int32(math.Trunc(x)))
		}},
		{"cvtdq", VCVTDQ2PS, 0, func(a, _ uint32) uint32 { return f32(float32(float64(int32(a)))) }},
		{"paddd", VPADDD, 0, func(a, b uint32) uint32 { return a + b }},
		{"psubd", VPSUBD, 0, func(a, b uint32) uint32 { return a - b }},
		{"pslld 23", VPSLLD, 23, func(a, _ uint32) uint32 { return a << 23 }},
		{"pslld 32", VPSLLD, 32, func(a, _ uint32) uint32 { return 0 }},
		{"psrld 1", VPSRLD, 1, func(a, _ uint32) uint32 { return a >> 1 }},
		{"psrad 1", VPSRAD, 1, func(a, _ uint32) uint32 {
			if neg(a) {
				return a>>1 | 0x80000000
			}
			return a >> 1
		}},
		{"psrad 40", VPSRAD, 40, func(a, _ uint32) uint32 {
			if neg(a) {
				return 0xFFFFFFFF
			}
			return 0
		}},
	}
	var mem Memory
	memB := make([]uint32, 16)
	for i := range memB {
		memB[i] = pairs[i][1]
	}
	bA := mem.Map("b", Bytes(memB))
	for _, tc := range tests {
		for _, form := range []string{"ymm", "zmm", "zmm memory", "zmm merge", "zmm zero"} {
			reg := ZReg
			lanes := 16
			if form == "ymm" {
				reg, lanes = YReg, 8
			}
			in := Inst{Op: tc.op}
			switch tc.op {
			case VCVTTPS2DQ, VCVTDQ2PS:
				in.Args = []Operand{reg(1), reg(3)}
			case VPSLLD, VPSRLD, VPSRAD:
				in.Args = []Operand{Imm(tc.imm), reg(1), reg(3)}
			default:
				in.Args = []Operand{reg(2), reg(1), reg(3)}
				if form == "zmm memory" {
					in.Args[0] = Ptr(AX)
				}
			}
			if form == "zmm merge" || form == "zmm zero" {
				in.Mask, in.Zeroing = KReg(1), form == "zmm zero"
			}
			m := Machine{Mem: &mem}
			for i := range 16 {
				m.V[1][i], m.V[2][i], m.V[3][i] = pairs[i][0], pairs[i][1], 0x12345678
			}
			m.K[1] = 0b1010_0110_1100_0101
			f := NewFunc("t", "", "b")
			f.I(MOVQ, f.Param("b"), AX)
			f.Add(in)
			f.I(RET)
			if err := m.Run(f, bA); err != nil {
				t.Fatalf("%s %s: %v", tc.name, form, err)
			}
			for i := range 16 {
				want := tc.want(pairs[i][0], pairs[i][1])
				switch {
				case i >= lanes:
					want = 0 // VEX clears the register above the ymm
				case in.Mask.Kind == K && m.K[1]>>i&1 == 0 && in.Zeroing:
					want = 0
				case in.Mask.Kind == K && m.K[1]>>i&1 == 0:
					want = 0x12345678
				}
				if m.V[3][i] != want {
					t.Errorf("%s %s: lane %d (a %#x, b %#x) = %#x, want %#x", tc.name, form, i, pairs[i][0], pairs[i][1], m.V[3][i], want)
				}
			}
		}
	}
	// The printed forms.
	for _, c := range []struct {
		in   Inst
		want string
	}{
		{Inst{Op: VPSLLD, Args: []Operand{Imm(23), YReg(1), YReg(2)}}, "VPSLLD $23, Y1, Y2"},
		{Inst{Op: VDIVPS, Args: []Operand{ZReg(1), ZReg(2), ZReg(3)}, Mask: KReg(1)}, "VDIVPS Z1, Z2, K1, Z3"},
		{Inst{Op: VCVTTPS2DQ, Args: []Operand{YReg(4), YReg(5)}}, "VCVTTPS2DQ Y4, Y5"},
	} {
		if got := c.in.String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

// TestCompress runs VCOMPRESSPS: the selected lanes packed in order into the low lanes, the
// others merged (kept) or zeroed, the source read before the destination is written.
func TestCompress(t *testing.T) {
	var m Machine
	for i := range 16 {
		m.V[1][i] = uint32(100 + i)
		m.V[2][i] = 7
	}
	f := NewFunc("t", "")
	f.I(MOVQ, Imm(0b1010_0000_0110_0001), CX)
	f.I(KMOVW, CX, KReg(2))
	f.Masked(VCOMPRESSPS, KReg(2), false, ZReg(1), ZReg(2))
	f.Masked(VCOMPRESSPS, KReg(2), true, ZReg(1), ZReg(3))
	f.Masked(VCOMPRESSPS, KReg(2), false, ZReg(1), ZReg(1)) // in place
	f.I(RET)
	if err := m.Run(f); err != nil {
		t.Fatal(err)
	}
	picked := []uint32{100, 105, 106, 113, 115}
	for i := range 16 {
		merge, zero, self := uint32(7), uint32(0), uint32(100+i)
		if i < len(picked) {
			merge, zero, self = picked[i], picked[i], picked[i]
		}
		if m.V[2][i] != merge || m.V[3][i] != zero || m.V[1][i] != self {
			t.Errorf("lane %d: merge %d, zeroing %d, in place %d; want %d, %d, %d", i, m.V[2][i], m.V[3][i], m.V[1][i], merge, zero, self)
		}
	}
	if got := (Inst{Op: VCOMPRESSPS, Args: []Operand{ZReg(1), ZReg(2)}, Mask: KReg(2)}).String(); got != "VCOMPRESSPS Z1, K2, Z2" {
		t.Errorf("printed %q", got)
	}
}

// TestVCMPPS runs the AVX-512 compare into an opmask for each predicate the interpreter knows,
// with NaN on either side, unmasked and under a mask (whose unselected bits come out 0).
func TestVCMPPS(t *testing.T) {
	nan := float32(math.NaN())
	a := []float32{1, 2, 3, nan, 5, nan, -1, 0}
	b := []float32{1, 3, 2, 4, nan, nan, -1, -0.0}
	cases := []struct {
		p    int64
		want uint64 // bit i: a[i] p b[i]
	}{
		{0, 0b10000001 | 1<<6}, // EQ (0 == -0)
		{1, 0b00000010},        // LT
		{2, 0b11000011},        // LE
		{3, 0b00111000},        // UNORD
		{4, 0b00111110},        // NEQ
		{5, 0b11111101},        // NLT
		{6, 0b00111100},        // NLE
		{7, 0b11000111},        // ORD
	}
	for _, c := range cases {
		for _, mask := range []uint64{0, 0b01010101} {
			var m Machine
			for i := range a {
				m.V[1][i] = math.Float32bits(a[i])
				m.V[2][i] = math.Float32bits(b[i])
			}
			m.K[3] = mask
			f := NewFunc("t", "")
			if mask == 0 {
				f.I(VCMPPS, Imm(c.p), YReg(2), YReg(1), KReg(1))
			} else {
				f.Masked(VCMPPS, KReg(3), false, Imm(c.p), YReg(2), YReg(1), KReg(1))
			}
			f.I(RET)
			if err := m.Run(f); err != nil {
				t.Fatal(err)
			}
			want := c.want
			if mask != 0 {
				want &= mask
			}
			if m.K[1] != want {
				t.Errorf("predicate %d mask %#b: K1 = %#b, want %#b", c.p, mask, m.K[1], want)
			}
		}
	}
}

// TestScalef runs VSCALEFPS: a * 2**floor(b) rounded once (into the subnormals and to infinity
// too), NaN operands (a's first), and infinite exponents.
func TestScalef(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct{ a, b, want float32 }{
		{1.5, 3, 12},
		{1.5, 3.7, 12},     // floor
		{1.5, -1.5, 0.375}, // floor(-1.5) = -2
		{-1.25, 0, -1.25},
		{1.75, -127, 1.75 * float32(math.Ldexp(1, -127))}, // subnormal, exact
		{1.75, -149, float32(math.Ldexp(1, -149)) * 2},    // 1.75 * 2**-149 rounds to 2 * 2**-149
		{1.5, 128, inf},
		{-1.5, 200, -inf},
		{3, -400, 0},
		{2, inf, inf},
		{0, inf, nan},
		{inf, float32(math.Inf(-1)), nan},
		{-2, float32(math.Inf(-1)), float32(math.Copysign(0, -1))},
	}
	for _, c := range cases {
		var m Machine
		for i := 0; i < 16; i++ {
			m.V[1][i] = math.Float32bits(c.a)
			m.V[2][i] = math.Float32bits(c.b)
		}
		f := NewFunc("t", "")
		f.I(VSCALEFPS, ZReg(2), ZReg(1), ZReg(3))
		f.I(RET)
		if err := m.Run(f); err != nil {
			t.Fatal(err)
		}
		got := m.V[3][0]
		want := math.Float32bits(c.want)
		if c.want != c.want {
			want = 0xFFC00000
		}
		if got != want {
			t.Errorf("scalef(%g, %g) = %#x (%g), want %#x (%g)", c.a, c.b, got, math.Float32frombits(got), want, c.want)
		}
	}
	var m Machine
	m.V[1][0], m.V[2][0] = 0x7FA00001, math.Float32bits(1) // a signalling NaN comes back quiet
	m.V[4][0], m.V[5][0] = math.Float32bits(1), 0xFFA00002
	f := NewFunc("t", "")
	f.I(VSCALEFPS, ZReg(2), ZReg(1), ZReg(3))
	f.I(VSCALEFPS, ZReg(5), ZReg(4), ZReg(6))
	f.I(RET)
	if err := m.Run(f); err != nil {
		t.Fatal(err)
	}
	if m.V[3][0] != 0x7FE00001 || m.V[6][0] != 0xFFE00002 {
		t.Errorf("NaN operands gave %#x and %#x, want 0x7fe00001 and 0xffe00002", m.V[3][0], m.V[6][0])
	}
}

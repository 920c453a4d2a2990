package winoasm

import (
	"fmt"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// Byte offsets in the argument block of the input transforms (In), a struct of 8-byte integers
// and a few float32s that the Go wrapper fills (cpu.winoIn512; the tests check its layout). The
// kernel also writes its running channel offsets there (InXOff, InSOff, InVOff).
const (
	InLdt      = 0   // T row stride, bytes
	InXStep    = 8   // channel plane stride of the input rows, bytes
	InNU       = 16  // input columns from column ulo of the T rows, >= 1
	InCin      = 24  // channels, >= 1
	InTiles    = 32  // tiles, >= 1
	InPS       = 40  // V position stride, bytes
	InLdv      = 48  // V channel stride, bytes
	InSStep    = 56  // scale/shift stride per channel, bytes: 4, or 0 for one value for all
	InPro      = 64  // non-zero: apply the prologue max(x*scale + shift, floor)
	InPrefetch = 72  // non-zero: prefetch the next channel's input rows
	InColK     = 80  // the first nu lanes when nu < 16, else all 16: the lanes of the row masks
	InTileK    = 88  // the store mask of a last group of 1..7 tiles (see In)
	InRowK     = 96  // 6 words, one per input row: the mask of its lanes (0 for padding; see In)
	InXOff     = 144 // the kernel's channel offset of the input rows, bytes
	InSOff     = 152 // its offset of scale and shift, bytes
	InVOff     = 160 // its offset of V, bytes
	InXKeep    = 168 // 6 words, one per input row: -1, or 0 for a row of padding (which stays put)
	InFloor    = 216 // float32: the ReLU floor, 0 or -Inf (max(x, -Inf) = x, NaN included)
	InFour     = 220 // float32: 4
	InMFour    = 224 // float32: -4
	InOne      = 228 // float32: 1 (the scale without one per channel)
	InZero     = 232 // float32: 0 (the shift without one)
	InPerm     = 236 // 16 int32: the lane permutation of the row pass (InPermFor)
	// InSize is the size of the block in bytes.
	InSize = 300
)

// InArgs are the arguments of the input transforms, in frame order: tc is the first column
// (ulo) of T row 0, t T row 0, x0..x5 the input rows of channel 0 (for a row of padding, a row
// of nu zeros and at least 16 floats, which every channel reads), scale and shift the
// prologue's values of channel 0, v V of channel 0 and b the argument block.
var InArgs = []string{"tc", "t", "x0", "x1", "x2", "x3", "x4", "x5", "scale", "shift", "v", "b"}

func inSig(m int) string {
	return fmt.Sprintf("func winoIn%dAVX512(tc, t, x0, x1, x2, x3, x4, x5, scale, shift, v *float32, b *winoIn512)", m)
}

// InPermFor returns the permutation (VPERMPS indices) that takes the row pass's vectors from
// the order its shuffles leave the tiles in to tile order: lane j of the result is lane
// perm[j] of the shuffled vector. For F(4x4) the in-lane 4x4 transpose of four vectors of 4
// tiles each leaves tile 4e+l at lane 4l+e; for F(2x2) VSHUFPS leaves tiles (2l, 2l+1, 8+2l,
// 9+2l) in 128-bit lane l.
func InPermFor(m int) [16]int32 {
	var p [16]int32
	for j := 0; j < 16; j++ {
		if m == 4 {
			p[j] = int32(4*(j%4) + j/4)
		} else {
			h := j / 8 // 0: tiles 0..7, 1: tiles 8..15
			jj := j % 8
			p[j] = int32(4*(jj/2) + 2*h + jj%2)
		}
	}
	return p
}

// Registers of In. Z12..Z16 and Z31 hold constants through the call.
var (
	inScale = ZReg(12)
	inShift = ZReg(13)
	inFour  = ZReg(14)
	inFloor = ZReg(15)
	inMFour = ZReg(16)
	inPerm  = ZReg(31)
	inTailK = KReg(7) // the row pass's stores of a last group of 1..7 tiles
)

// inRowK returns the load mask of input row r.
func inRowK(r int) Reg { return KReg(r + 1) }

// In returns winoIn4AVX512 (m = 4) or winoIn2AVX512 (m = 2): winoInputGo's transform of cin
// channels of one row segment, the AVX-512 counterpart of winoInput4AVX2 and winoInput2AVX2,
// with the same arithmetic in the same order (the prologue's x*scale + shift as one FMA, 4 d2
// subtracted by an FMA with -4, which rounds as VFNMADD does), so that the levels give the same
// bits.
//
// Per channel c (offsets InXOff, InSOff, InVOff advance by InXStep, InSStep, InLdv; a row of
// padding, InXKeep 0, stays on its row of zeros):
//
// The column pass reads the alpha = m+2 input rows x_r + c*xstep, nu columns, 16 at a time,
// applies the prologue (when InPro) and writes the alpha T rows from tc, T_i[u] = sum_r
// B^T[i][r] d_r[u]. The loads are whole zmm (masked loads measured slow and erratic on Zen 5);
// row r's mask K(r+1), InRowK[r], is 0 for a row of padding, else all 16 lanes, or the first nu
// when nu < 16; the prologue's FMA runs under it with zeroing (so that padding is 0, not
// max(shift, floor)), and without the prologue a masked move clears the lanes past nu. Under 16
// columns the group's stores write +0 past nu, over T's zeros. With nu >= 16 the columns past
// the last multiple of 16 are done by one more group ending at column nu, which recomputes some
// (each column depends on that column only).
//
// The row pass reads each T row from t, tile j's columns m*j .. m*j+alpha-1, and writes V[i*alpha
// + k][c] from v + c*ldv, 16 tiles per zmm: four loads of 16 floats (4 tiles for F(4x4), 8 for
// F(2x2)) and four more shifted by one tile (F(4x4): columns 4, 5 of tile j are columns 0, 1 of
// tile j+1) or by two floats (F(2x2)) go through in-lane shuffles (VUNPCKLPS/HPS, VSHUFPS) to
// one vector per tile column, in an order of the tiles that one VPERMPS per result (InPerm)
// puts right. Groups of 16 run while 8 or more tiles are left, writing up to 8 past the tiles
// (V's rows have room for that, as for the AVX2 kernels' 7); a last group of 1..7 stores under
// InTileK. The loads read up to a group of T past the tiles (the wrapper checks that it lies in
// the rows). With 8 tiles or fewer (pair mode) one zmm holds T rows i and i+1, 8 tiles each: the
// loads of the second half come from the next T row, lanes 0..7 go to V[i*alpha + k] and lanes
// 8..15 (VEXTRACTF64X4) to V[(i+1)*alpha + k], 8 tiles each. Rows of DenseNet-121's and
// ResNet's images have 2, 4, 7 and 14 tiles.
func In(m int) *Func {
	alpha := m + 2
	f := NewFunc(fmt.Sprintf("winoIn%dAVX512", m), inSig(m), InArgs...)
	p := fmt.Sprintf("i%d", m)
	L := func(s string) Label { return Label(p + s) }
	f.I(MOVQ, f.Param("b"), DX)
	f.I(VBROADCASTSS, At(InFloor, DX), inFloor)
	f.I(VBROADCASTSS, At(InFour, DX), inFour)
	f.I(VBROADCASTSS, At(InMFour, DX), inMFour)
	f.I(VMOVUPS, At(InPerm, DX), inPerm)
	for r := 0; r < alpha; r++ {
		f.I(MOVQ, At(InRowK+8*r, DX), AX)
		f.I(KMOVW, AX, inRowK(r))
	}
	f.I(MOVQ, Imm(0), At(InXOff, DX))
	f.I(MOVQ, Imm(0), At(InSOff, DX))
	f.I(MOVQ, Imm(0), At(InVOff, DX))
	f.I(MOVQ, At(InCin, DX), R15)

	f.Label(L("chan"))
	f.I(MOVQ, At(InXOff, DX), AX)
	xr := []Reg{R9, R10, R11, R12, R13, R14}[:alpha]
	for r, x := range xr {
		f.I(MOVQ, AX, BX)
		f.I(ANDQ, At(InXKeep+8*r, DX), BX)
		f.I(MOVQ, f.Param(fmt.Sprintf("x%d", r)), x)
		f.I(ADDQ, BX, x)
	}
	// The channel's prologue.
	f.I(MOVQ, f.Param("scale"), SI)
	f.I(ADDQ, At(InSOff, DX), SI)
	f.I(VBROADCASTSS, Ptr(SI), inScale)
	f.I(MOVQ, f.Param("shift"), SI)
	f.I(ADDQ, At(InSOff, DX), SI)
	f.I(VBROADCASTSS, Ptr(SI), inShift)

	// Prefetch the next channel's input rows when the planes are too far apart for the hardware
	// prefetchers to follow (as winoInput4AVX2 does).
	f.I(MOVQ, At(InPrefetch, DX), AX)
	f.I(TESTQ, AX, AX)
	f.I(JZ, L("cols"))
	for r, x := range xr {
		f.I(MOVQ, x, AX)
		f.I(ADDQ, At(InXStep, DX), AX)
		f.I(MOVQ, At(InNU, DX), CX)
		f.I(SHLQ, Imm(2), CX)
		f.I(ADDQ, Imm(64), CX)
		f.Label(L(fmt.Sprintf("pf%d", r)))
		f.I(PREFETCHT0, Ptr(AX))
		f.I(ADDQ, Imm(64), AX)
		f.I(SUBQ, Imm(64), CX)
		f.I(JGT, L(fmt.Sprintf("pf%d", r)))
	}

	// Column pass.
	f.Label(L("cols"))
	f.I(MOVQ, f.Param("tc"), DI)
	f.I(MOVQ, At(InLdt, DX), R8)
	f.I(LEAQ, Ptr(R8).Idx(R8, 2), BX)
	f.I(LEAQ, Ptr(R8).Idx(R8, 4), AX)
	f.I(MOVQ, At(InPro, DX), CX)
	f.I(TESTQ, CX, CX)
	f.I(JZ, L("np"))
	inColumns(f, m, xr, true, L("p"), L("rows"))
	f.Label(L("np"))
	inColumns(f, m, xr, false, L("n"), L("rows"))

	// Row pass.
	f.Label(L("rows"))
	f.I(MOVQ, f.Param("t"), SI)
	f.I(MOVQ, f.Param("v"), DI)
	f.I(ADDQ, At(InVOff, DX), DI)
	f.I(MOVQ, At(InPS, DX), R9)
	f.I(LEAQ, Ptr(R9).Idx(R9, 2), R10) // 3 ps
	f.I(LEAQ, Ptr(R9).Idx(R9, 4), R11) // 5 ps
	if m == 4 {
		f.I(LEAQ, Ptr(R10).Idx(R10, 1), R12) // 6 ps: from V[i*6] to V[(i+1)*6]
	} else {
		f.I(LEAQ, Ptr(R9).Idx(R9, 1), R12)
		f.I(ADDQ, R12, R12) // 4 ps
	}
	f.I(MOVQ, At(InLdt, DX), R8)
	f.I(MOVQ, At(InTileK, DX), CX)
	f.I(KMOVW, CX, inTailK)
	f.I(MOVQ, At(InTiles, DX), CX)
	f.I(CMPQ, CX, Imm(8))
	f.I(JLE, L("pair"))
	f.I(MOVQ, Imm(int64(alpha)), R13)
	f.Label(L("row"))
	f.I(MOVQ, SI, AX)
	f.I(MOVQ, DI, BX)
	f.I(MOVQ, At(InTiles, DX), R14)
	// Groups of 16 tiles while 8 or more are left (up to 8 past the tiles: the room V has for
	// the AVX2 kernels' overrun of 7, and the 8 past a row that its stride adds), the last 1..7
	// under InTileK.
	f.Label(L("grp"))
	f.I(CMPQ, R14, Imm(8))
	f.I(JLT, L("tail"))
	inRowGroup(f, m, false, false)
	f.I(ADDQ, Imm(int64(64*m)), AX)
	f.I(ADDQ, Imm(64), BX)
	f.I(SUBQ, Imm(16), R14)
	f.I(JGT, L("grp"))
	f.I(JMP, L("next"))
	f.Label(L("tail"))
	inRowGroup(f, m, false, true)
	f.Label(L("next"))
	f.I(ADDQ, R8, SI)
	f.I(ADDQ, R12, DI)
	f.I(DECQ, R13)
	f.I(JNZ, L("row"))
	f.I(JMP, L("nextc"))

	// Pair mode: T rows (0, 1), (2, 3), (4, 5).
	f.Label(L("pair"))
	for i := 0; i < alpha; i += 2 {
		f.I(MOVQ, SI, AX)
		f.I(MOVQ, DI, BX)
		f.I(LEAQ, Ptr(DI).Idx(R12, 1), CX) // V[(i+1)*alpha]
		inRowGroup(f, m, true, true)
		if i+2 < alpha {
			f.I(LEAQ, Ptr(SI).Idx(R8, 2), SI)
			f.I(LEAQ, Ptr(DI).Idx(R12, 2), DI)
		}
	}

	// Next channel.
	f.Label(L("nextc"))
	f.I(MOVQ, At(InXStep, DX), AX)
	f.I(ADDQ, AX, At(InXOff, DX))
	f.I(MOVQ, At(InSStep, DX), AX)
	f.I(ADDQ, AX, At(InSOff, DX))
	f.I(MOVQ, At(InLdv, DX), AX)
	f.I(ADDQ, AX, At(InVOff, DX))
	f.I(DECQ, R15)
	f.I(JNZ, L("chan"))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

// inColumns emits the column pass of one channel (see In), with the prologue or without, and
// jumps to done. The input rows are at xr, T row 0 at DI, R8 = ldt, BX = 3 ldt, AX = 5 ldt.
func inColumns(f *Func, m int, xr []Reg, pro bool, p, done Label) {
	L := func(s string) Label { return Label(string(p) + s) }
	f.I(MOVQ, At(InNU, DX), CX)
	f.I(CMPQ, CX, Imm(16))
	f.I(JGE, L("wide"))
	inColGroup(f, m, xr, pro, true)
	f.I(JMP, done)
	f.Label(L("wide"))
	f.I(SUBQ, Imm(16), CX)
	f.Label(L("loop"))
	inColGroup(f, m, xr, pro, false)
	f.I(ADDQ, Imm(64), DI)
	for _, x := range xr {
		f.I(ADDQ, Imm(64), x)
	}
	f.I(SUBQ, Imm(16), CX)
	f.I(JGE, L("loop"))
	// CX = (columns left) - 16 in [-16, -1]: back up by -CX columns for a last group.
	f.I(CMPQ, CX, Imm(-16))
	f.I(JEQ, done)
	f.I(SHLQ, Imm(2), CX)
	f.I(ADDQ, CX, DI)
	for _, x := range xr {
		f.I(ADDQ, CX, x)
	}
	inColGroup(f, m, xr, pro, false)
	f.I(JMP, done)
}

// inColGroup emits the column pass of 16 columns. The loads are whole vectors (masked loads
// measured slow and erratic on Zen 5): a row of padding reads the row of zeros it points to, which
// the prologue's FMA, masked by the row's mask, keeps at 0; with small (nu < 16) the lanes past
// nu hold what follows the input row (the wrapper checks that it lies in the input), which the
// row masks, of the first nu lanes, set to +0 (in the FMA, or a masked move without the
// prologue). The stores write those +0 over T's zeros past the input columns (the wrapper checks
// that ulo + 16 columns fit in a T row).
func inColGroup(f *Func, m int, xr []Reg, pro, small bool) {
	alpha := m + 2
	d := make([]Reg, alpha)
	for r := range d {
		d[r] = ZReg(r)
		f.I(VMOVUPS, Ptr(xr[r]), d[r])
		switch {
		case pro:
			f.Masked(VFMADD213PS, inRowK(r), true, inShift, inScale, d[r])
			f.I(VMAXPS, d[r], inFloor, d[r])
		case small:
			f.Masked(VMOVUPS, inRowK(r), true, d[r], d[r])
		}
	}
	var out []Reg
	if m == 4 {
		out = bt4(f, [6]Reg(d), [7]Reg{ZReg(6), ZReg(7), ZReg(8), ZReg(9), ZReg(10), ZReg(11), ZReg(17)})
	} else {
		out = bt2(f, [4]Reg(d), [4]Reg{ZReg(6), ZReg(7), ZReg(8), ZReg(9)})
	}
	at := []Mem{Ptr(DI), Ptr(DI).Idx(R8, 1), Ptr(DI).Idx(R8, 2), Ptr(DI).Idx(BX, 1), Ptr(DI).Idx(R8, 4), Ptr(DI).Idx(AX, 1)}
	for i, x := range out {
		f.I(VMOVUPS, x, at[i])
	}
}

// bt4 emits B^T d for F(4x4) with the operations of winoInput4AVX2's BODY4 and ROWS4, in their
// order, into the temporaries t, and returns the registers of (B^T d)_0..5:
//
//	t0 = 4 (d0 - d2) + (d4 - d2),  t1, t2 = (d4 - 4 d2) -/+ (4 d1 - d3),
//	t3, t4 = (d4 - d2) -/+ 2 (d1 - d3),  t5 = 4 (d1 - d3) + (d5 - d3).
func bt4(f *Func, d [6]Reg, t [7]Reg) []Reg {
	f.I(VSUBPS, d[2], d[4], t[0])         // a = d4 - d2
	f.I(VSUBPS, d[3], d[1], t[1])         // b = d1 - d3
	f.I(VSUBPS, d[2], d[0], t[2])         // d0 - d2
	f.I(VFMADD213PS, t[0], inFour, t[2])  // t0 = 4 (d0 - d2) + a
	f.I(VSUBPS, d[3], d[5], t[3])         // d5 - d3
	f.I(VFMADD231PS, inFour, t[1], t[3])  // t5 = 4 b + (d5 - d3)
	f.I(VADDPS, t[1], t[1], t[1])         // 2 b
	f.I(VSUBPS, t[1], t[0], t[4])         // t3 = a - 2b
	f.I(VADDPS, t[1], t[0], t[5])         // t4 = a + 2b
	f.I(VMOVUPS, d[4], t[0])              //
	f.I(VFMADD231PS, inMFour, d[2], t[0]) // c = d4 - 4 d2
	f.I(VMULPS, inFour, d[1], t[1])       //
	f.I(VSUBPS, d[3], t[1], t[1])         // e = 4 d1 - d3
	f.I(VSUBPS, t[1], t[0], t[6])         // t1 = c - e
	f.I(VADDPS, t[1], t[0], t[0])         // t2 = c + e
	return []Reg{t[2], t[6], t[0], t[4], t[5], t[3]}
}

// bt2 emits B^T d for F(2x2) into t and returns t: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1,
// t3 = d1 - d3.
func bt2(f *Func, d [4]Reg, t [4]Reg) []Reg {
	f.I(VSUBPS, d[2], d[0], t[0])
	f.I(VADDPS, d[2], d[1], t[1])
	f.I(VSUBPS, d[1], d[2], t[2])
	f.I(VSUBPS, d[3], d[1], t[3])
	return t[:]
}

// inRowGroup emits the row pass of one group of 16 tiles of T at AX into V at BX (see In):
// stores under InTileK when tail; in pair mode the second half of the tiles is T's next row (AX
// + R8) and goes to V at CX. R9 = ps, R10 = 3 ps, R11 = 5 ps.
func inRowGroup(f *Func, m int, pair, tail bool) {
	alpha := m + 2
	// half returns the address of float off of the group's second half.
	half := func(off int) Mem {
		if pair {
			return At(4*off, AX).Idx(R8, 1)
		}
		return At(4*(off+8*m), AX)
	}
	first := func(off int) Mem { return At(4*off, AX) }
	var pv []Reg
	if m == 4 {
		// L_e: tiles 4e..4e+3 (e = 2, 3: the second half); S_e the same one tile on.
		ld := []Mem{first(0), first(16), half(0), half(16)}
		sh := []Mem{first(4), first(20), half(4), half(20)}
		l := [4]Reg{ZReg(0), ZReg(1), ZReg(2), ZReg(3)}
		s := [4]Reg{ZReg(4), ZReg(5), ZReg(6), ZReg(7)}
		for i := range l {
			f.I(VMOVUPS, ld[i], l[i])
			f.I(VMOVUPS, sh[i], s[i])
		}
		u := [4]Reg{ZReg(8), ZReg(9), ZReg(10), ZReg(11)}
		f.I(VUNPCKLPS, l[1], l[0], u[0])
		f.I(VUNPCKHPS, l[1], l[0], u[1])
		f.I(VUNPCKLPS, l[3], l[2], u[2])
		f.I(VUNPCKHPS, l[3], l[2], u[3])
		w := [2]Reg{ZReg(17), ZReg(18)}
		f.I(VUNPCKLPS, s[1], s[0], w[0])
		f.I(VUNPCKLPS, s[3], s[2], w[1])
		pv = []Reg{ZReg(19), ZReg(20), ZReg(21), ZReg(22), ZReg(23), ZReg(24)}
		f.I(VSHUFPS, Imm(0x44), u[2], u[0], pv[0])
		f.I(VSHUFPS, Imm(0xee), u[2], u[0], pv[1])
		f.I(VSHUFPS, Imm(0x44), u[3], u[1], pv[2])
		f.I(VSHUFPS, Imm(0xee), u[3], u[1], pv[3])
		f.I(VSHUFPS, Imm(0x44), w[1], w[0], pv[4])
		f.I(VSHUFPS, Imm(0xee), w[1], w[0], pv[5])
	} else {
		// A, B: tiles 0..7 and 8..15 (columns 0, 1); A2, B2 the same two floats on (columns 2, 3).
		a, b, a2, b2 := ZReg(0), ZReg(1), ZReg(2), ZReg(3)
		f.I(VMOVUPS, first(0), a)
		f.I(VMOVUPS, half(0), b)
		f.I(VMOVUPS, first(2), a2)
		f.I(VMOVUPS, half(2), b2)
		pv = []Reg{ZReg(19), ZReg(20), ZReg(21), ZReg(22)}
		f.I(VSHUFPS, Imm(0x88), b, a, pv[0])
		f.I(VSHUFPS, Imm(0xdd), b, a, pv[1])
		f.I(VSHUFPS, Imm(0x88), b2, a2, pv[2])
		f.I(VSHUFPS, Imm(0xdd), b2, a2, pv[3])
	}
	var out []Reg
	if m == 4 {
		out = bt4(f, [6]Reg(pv), [7]Reg{ZReg(25), ZReg(26), ZReg(27), ZReg(28), ZReg(29), ZReg(30), ZReg(8)})
	} else {
		out = bt2(f, [4]Reg(pv), [4]Reg{ZReg(25), ZReg(26), ZReg(27), ZReg(28)})
	}
	at := func(base Reg, k, disp int) Mem {
		switch k {
		case 0:
			return At(disp, base)
		case 1:
			return At(disp, base).Idx(R9, 1)
		case 2:
			return At(disp, base).Idx(R9, 2)
		case 3:
			return At(disp, base).Idx(R10, 1)
		case 4:
			return At(disp, base).Idx(R9, 4)
		}
		return At(disp, base).Idx(R11, 1)
	}
	for k, x := range out[:alpha] {
		f.I(VPERMPS, x, inPerm, x)
		switch {
		case pair:
			// Lanes 0..7 to the first row's V, 8..15 to the second's, whole: up to 7 tiles past
			// the n, as the AVX2 kernels.
			f.I(VMOVUPS, YReg(int(x.N)), at(BX, k, 0))
			f.I(VEXTRACTF64X4, Imm(1), x, YReg(int(x.N)))
			f.I(VMOVUPS, YReg(int(x.N)), at(CX, k, 0))
		case tail:
			f.Masked(VMOVUPS, inTailK, false, x, at(BX, k, 0))
		default:
			f.I(VMOVUPS, x, at(BX, k, 0))
		}
	}
}

// Package winoasm describes the AVX-512 Winograd transforms of package cpu in the kasm IR. The
// generator (cpu/winogen.go) prints them as conv_winograd_avx512_amd64.s; the tests of package
// cpu run the same descriptions in the kasm interpreter against the Go transforms
// (conv_winograd_xform.go), on every machine, and against the assembly where the CPU has
// AVX-512. Production code never imports this package.
package winoasm

import (
	"bytes"
	"fmt"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// Offsets in the constants block of Out4 (float32 each), which the Go wrapper fills from the
// call's arguments: the kernel broadcasts them from memory (embedded broadcast), so that they
// cost no register.
const (
	Out4Bias  = 0  // the channel's bias
	Out4Two   = 4  // 2
	Out4Four  = 8  // 4
	Out4Eight = 12 // 8
	Out4Floor = 16 // the ReLU floor: 0, or -Inf without ReLU (max(x, -Inf) = x, NaN included)
	// Out4Consts is the size of the block in floats.
	Out4Consts = 5
)

// Out4Args are the arguments of the output transform, in frame order.
var Out4Args = []string{"mm", "ps", "n", "y", "ldy", "c", "tmask", "fmask"}

const out4Sig = "func winoOut4AVX512(mm *float32, ps, n int, y *float32, ldy int, c *float32, tmask, fmask int)"

// Out4 returns winoOut4AVX512, the F(4x4, 3x3) output transform (winoOutGo with m = 4) of n >= 1
// tiles of one channel, 16 tiles per zmm:
//
//	M_p[j] = mm[p*ps + j] (p < 36),  Y[r][q] of tile j at y[r*ldy + 4*j + q] (r, q < 4)
//
// with the bias and ReLU floor in the constants block c (the Out4* offsets). The last group of
// 1..16 tiles runs under opmasks: tmask has a bit per tile of that group (lanes of the loads;
// the others load as 0 and no memory past tile n-1 is read), fmask a bit per float of its
// output rows (4 per tile, 64 bits). Nothing outside the n tiles is read or written.
//
// Per group: stage 1 computes S[r][k] = sum_i A^T[r][i] M[i*6+k] for the 6 columns k into 24
// zmm registers (Z0..Z23, S[r][k] in Z(6r+k)), so that nothing goes through memory, with Z24..Z26
// as temporaries; stage 2 computes output row r, Y[r][q] = sum_k A^T[q][k] S[r][k], adds the
// bias, applies the floor (Z27) and transposes the 4 vectors of 16 tiles (one per q) to
// tile-major order: an in-lane 4x4 transpose (VUNPCKLPS/HPS, VSHUFPS) leaves tiles (0, 4, 8,
// 12), (1, 5, 9, 13), ... in the four registers, and two rounds of VSHUFF32X4 put the 128-bit
// lanes in order. A call of n <= 8 tiles is one group: its tiles lie in the low two 128-bit
// lanes, or in the lowest when n <= 4, and half or none of the lane moves are needed (rows of
// DenseNet-121's images have 2, 4, 7 and 14 tiles). The arithmetic is that of winoOut4AVX2, operation for operation (the factored
// A^T of winoAT4Apply, with FMAs for the multiples), so the two levels give the same bits.
func Out4() *Func {
	f := NewFunc("winoOut4AVX512", out4Sig, Out4Args...)
	// Byte strides: R9 = ps, R10 = 6 ps, R11 = 18 ps, R12 = 30 ps; M[i*6 + k] is at
	// SI + k*ps + {0, R10, 2 R10, R11, 4 R10, R12} for i = 0..5.
	f.I(MOVQ, f.Param("mm"), SI)
	f.I(MOVQ, f.Param("ps"), R9)
	f.I(SHLQ, Imm(2), R9)
	f.I(LEAQ, Ptr(R9).Idx(R9, 2), R10)
	f.I(ADDQ, R10, R10)
	f.I(LEAQ, Ptr(R10).Idx(R10, 2), R11)
	f.I(LEAQ, Ptr(R10).Idx(R10, 4), R12)
	f.I(MOVQ, f.Param("n"), CX)
	f.I(MOVQ, f.Param("y"), DI)
	f.I(MOVQ, f.Param("ldy"), R8)
	f.I(SHLQ, Imm(2), R8)
	f.I(MOVQ, f.Param("c"), DX)
	f.I(VBROADCASTSS, At(Out4Floor, DX), out4Floor)
	f.I(MOVQ, f.Param("tmask"), BX)
	f.I(KMOVW, BX, out4TM)
	// Rows of DenseNet's images have 2, 4, 7 and 14 tiles (7x7 to 56x56): up to 8 tiles, one
	// group whose tiles all lie in the low 128-bit lanes needs fewer lane moves (w4, w8).
	f.I(CMPQ, CX, Imm(4))
	f.I(JLE, Label("o4w4"))
	f.I(CMPQ, CX, Imm(8))
	f.I(JLE, Label("o4w8"))
	// Full groups run with every lane selected.
	f.I(MOVQ, Imm(0xFFFF), BX)
	f.I(KMOVW, BX, out4TM)
	for _, k := range out4K {
		f.I(KMOVW, BX, k)
	}
	f.Label("o4grp")
	f.I(CMPQ, CX, Imm(16))
	f.I(JGE, Label("o4full"))
	// The last group, of 1..15 tiles.
	f.I(MOVQ, f.Param("tmask"), BX)
	f.I(KMOVW, BX, out4TM)
	out4StoreMasks(f, 16)
	f.Label("o4full")
	out4Group(f, 16)
	f.I(ADDQ, Imm(64), SI)
	f.I(ADDQ, Imm(256), DI)
	f.I(SUBQ, Imm(16), CX)
	f.I(JGT, Label("o4grp"))
	f.I(VZEROUPPER)
	f.I(RET)
	for _, w := range []int{4, 8} {
		f.Label(Label(fmt.Sprintf("o4w%d", w)))
		out4StoreMasks(f, w)
		out4Group(f, w)
		f.I(VZEROUPPER)
		f.I(RET)
	}
	return f
}

// The registers of Out4 besides S (Z0..Z23): the tile mask of the loads, the store masks of the
// 4 output vectors of a row, three temporaries and the ReLU floor.
var (
	out4TM    = KReg(1)
	out4K     = [4]Reg{KReg(2), KReg(3), KReg(4), KReg(5)}
	out4Tmp   = [3]Reg{ZReg(24), ZReg(25), ZReg(26)}
	out4Floor = ZReg(27)
)

// out4StoreMasks sets the store masks of a last group of w tiles from fmask: with w = 16 or 8,
// the vectors store 4 tiles each (16 bits of fmask apiece); with w = 4, vector i stores tile i
// alone (4 bits).
func out4StoreMasks(f *Func, w int) {
	f.I(MOVQ, f.Param("fmask"), BX)
	switch w {
	case 4:
		for i, k := range out4K {
			if i > 0 {
				f.I(SHRQ, Imm(4), BX)
			}
			f.I(MOVQ, BX, AX)
			f.I(ANDQ, Imm(15), AX)
			f.I(KMOVW, AX, k)
		}
	default:
		for i, k := range out4K[:w/4] {
			if i > 0 {
				f.I(SHRQ, Imm(16), BX)
			}
			f.I(KMOVW, BX, k)
		}
	}
}

// out4Group emits one group of up to w = 4, 8 or 16 tiles from SI into DI (see Out4).
func out4Group(f *Func, w int) {
	tm, tmp := out4TM, out4Tmp
	bcst := func(op Op, off int, args ...Operand) {
		args[0] = At(off, DX)
		f.Add(Inst{Op: op, Args: args, Bcst: true})
	}
	// Stage 1: column k of the 6x6 tiles into S[0..3][k].
	f.I(MOVQ, SI, AX)
	at := []Mem{Ptr(AX), Ptr(AX).Idx(R10, 1), Ptr(AX).Idx(R10, 2), Ptr(AX).Idx(R11, 1), Ptr(AX).Idx(R10, 4), Ptr(AX).Idx(R12, 1)}
	load := func(i int, dst Reg) { f.Masked(VMOVUPS, tm, true, at[i], dst) }
	for k := 0; k < 6; k++ {
		d0, d1, d2, d3 := ZReg(k), ZReg(6+k), ZReg(12+k), ZReg(18+k)
		load(1, d1)
		load(2, d2)
		f.I(VADDPS, d2, d1, tmp[0]) // a = m1 + m2
		f.I(VSUBPS, d2, d1, d1)     // b = m1 - m2
		load(3, d2)
		load(4, tmp[1])
		f.I(VADDPS, tmp[1], d2, tmp[2]) // c = m3 + m4
		f.I(VSUBPS, tmp[1], d2, d2)     // d = m3 - m4
		load(0, d0)
		f.I(VADDPS, tmp[0], d0, d0)
		f.I(VADDPS, tmp[2], d0, d0) // S0 = m0 + a + c
		f.I(VMOVUPS, d1, d3)
		bcst(VFMADD231PS, Out4Eight, nil, d2, d3) // b + 8 d
		load(5, tmp[1])
		f.I(VADDPS, tmp[1], d3, d3)             // S3 = b + 8 d + m5
		bcst(VFMADD231PS, Out4Two, nil, d2, d1) // S1 = b + 2 d
		f.I(VMOVUPS, tmp[0], d2)
		bcst(VFMADD231PS, Out4Four, nil, tmp[2], d2) // S2 = a + 4 c
		if k < 5 {
			f.I(ADDQ, R9, AX)
		}
	}

	// Stage 2: output row r from S[r][0..5].
	f.I(MOVQ, DI, AX)
	for r := 0; r < 4; r++ {
		s := func(k int) Reg { return ZReg(6*r + k) }
		f.I(VADDPS, s(2), s(1), tmp[0]) // a
		f.I(VSUBPS, s(2), s(1), s(1))   // b
		f.I(VADDPS, s(4), s(3), tmp[1]) // c
		f.I(VSUBPS, s(4), s(3), s(3))   // d
		f.I(VADDPS, tmp[0], s(0), s(0))
		f.I(VADDPS, tmp[1], s(0), s(0)) // q0 = s0 + a + c
		f.I(VMOVUPS, s(1), tmp[2])
		bcst(VFMADD231PS, Out4Two, nil, s(3), tmp[2])    // q1 = b + 2 d
		bcst(VFMADD231PS, Out4Four, nil, tmp[1], tmp[0]) // q2 = a + 4 c
		bcst(VFMADD231PS, Out4Eight, nil, s(3), s(1))
		f.I(VADDPS, s(5), s(1), s(1)) // q3 = b + 8 d + s5
		q := [4]Reg{s(0), tmp[2], tmp[0], s(1)}
		for _, x := range q {
			bcst(VADDPS, Out4Bias, nil, x, x)
		}
		for _, x := range q {
			f.I(VMAXPS, x, out4Floor, x)
		}
		// In-lane 4x4 transpose: u0..u3 are free registers of this row.
		u := [4]Reg{s(2), s(3), s(4), s(5)}
		f.I(VUNPCKLPS, q[1], q[0], u[0])
		f.I(VUNPCKHPS, q[1], q[0], u[1])
		f.I(VUNPCKLPS, q[3], q[2], u[2])
		f.I(VUNPCKHPS, q[3], q[2], u[3])
		t := q                                    // t[i]: tiles i, i+4, i+8, i+12
		f.I(VSHUFPS, Imm(0x44), u[2], u[0], t[0]) // tiles 0 | 4 | 8 | 12
		f.I(VSHUFPS, Imm(0xee), u[2], u[0], t[1]) // tiles 1 | 5 | 9 | 13
		f.I(VSHUFPS, Imm(0x44), u[3], u[1], t[2]) // tiles 2 | 6 | 10 | 14
		f.I(VSHUFPS, Imm(0xee), u[3], u[1], t[3]) // tiles 3 | 7 | 11 | 15
		switch w {
		case 4: // tile i is the low 128 bits of t[i]
			for i, x := range t {
				f.Masked(VMOVUPS, out4K[i], false, x, At(16*i, AX))
			}
		case 8: // 128-bit lanes (0 4 1 5), (2 6 3 7), then (0 1 2 3), (4 5 6 7)
			f.I(VSHUFF32X4, Imm(0x44), t[1], t[0], u[0])
			f.I(VSHUFF32X4, Imm(0x44), t[3], t[2], u[1])
			f.I(VSHUFF32X4, Imm(0x88), u[1], u[0], t[0])
			f.I(VSHUFF32X4, Imm(0xdd), u[1], u[0], t[1])
			for i, x := range t[:2] {
				f.Masked(VMOVUPS, out4K[i], false, x, At(64*i, AX))
			}
		default: // lanes (0 4 1 5), (2 6 3 7), (8 12 9 13), (10 14 11 15), then in order
			f.I(VSHUFF32X4, Imm(0x44), t[1], t[0], u[0])
			f.I(VSHUFF32X4, Imm(0x44), t[3], t[2], u[1])
			f.I(VSHUFF32X4, Imm(0xee), t[1], t[0], u[2])
			f.I(VSHUFF32X4, Imm(0xee), t[3], t[2], u[3])
			f.I(VSHUFF32X4, Imm(0x88), u[1], u[0], t[0]) // tiles 0..3
			f.I(VSHUFF32X4, Imm(0xdd), u[1], u[0], t[1]) // tiles 4..7
			f.I(VSHUFF32X4, Imm(0x88), u[3], u[2], t[2]) // tiles 8..11
			f.I(VSHUFF32X4, Imm(0xdd), u[3], u[2], t[3]) // tiles 12..15
			for i, x := range t {
				f.Masked(VMOVUPS, out4K[i], false, x, At(64*i, AX))
			}
		}
		if r < 3 {
			f.I(ADDQ, R8, AX)
		}
	}
}

// AVX512File returns the assembly file of the AVX-512 Winograd transforms.
func AVX512File() *File {
	return &File{
		Header: AsmHeader("winogen.go"),
		Funcs:  []*Func{Out4(), In(4), In(2)},
	}
}

// AVX512Decl returns the Go declarations of AVX512File's functions.
func AVX512Decl() []byte {
	var b bytes.Buffer
	b.WriteString(DeclHeader("winogen.go", "cpu") + "\n")
	b.WriteString("// winoOut4AVX512 is winoOutGo for F(4x4) in AVX-512 F assembly, described in package\n")
	b.WriteString("// internal/winoasm (Out4), which documents its arguments.\n//\n//go:noescape\n")
	b.WriteString(out4Sig + "\n")
	for _, m := range []int{4, 2} {
		fmt.Fprintf(&b, "\n// winoIn%dAVX512 is winoInputGo for F(%dx%d) in AVX-512 F assembly, described in package\n", m, m, m)
		b.WriteString("// internal/winoasm (In), which documents its arguments.\n//\n//go:noescape\n")
		b.WriteString(inSig(m) + "\n")
	}
	return b.Bytes()
}

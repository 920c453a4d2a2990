// Package dwasm describes the depthwise-convolution row kernels of package cpu in the kasm IR,
// for AVX2 (ymm) and AVX-512 F (zmm), the AVX-512 stride-2 column split, and the AVX-512 channel
// kernels (chans.go), which compute whole channels, padded copy included. One row kernel serves
// every kernel size and stride: it loops over a table of taps (an input offset and a weight
// each), so a 3x3, 5x5 or 7x7 depthwise convolution, at any stride over a phase-split plane, is
// the same code with a longer table; the channel kernels loop over the same table. The generator
// (cpu/dwgen.go) prints the descriptions as conv_depthwise_amd64.s; the tests of package cpu run
// the same descriptions in the kasm interpreter against a Go reference of the same operation
// order (dwRowsRef, dwChanRef), on every machine, and against the assembly where the CPU has the
// ISA. Production code never imports this package.
package dwasm

import (
	"bytes"
	"fmt"
	"strings"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// The coefficient block c the kernels read, one float32 each: the bias, the floor (0 for ReLU,
// -Inf without: max(floor, v) is then v, -0 and NaN included) and the ceiling (6 for ReLU6, +Inf
// without: min(v, ceil) is then v, NaN included).
const (
	CoefBias  = 0
	CoefFloor = 1
	CoefCeil  = 2
	Coefs     = 3
)

// Args are the arguments of both kernels, in frame order:
//
//	x     the input: tap k of output row r, column i reads x[off[k] + r*(n+skip/4) + i]
//	y     the output rows, n floats each, contiguous
//	n     the output row length (>= 1)
//	rows  the number of output rows (>= 1)
//	skip  the bytes from the end of an input row's n floats to the next row's start: 4*(wq-n)
//	off   the taps' offsets in floats (int64 each, >= 0), taps of them
//	w     the taps' weights, taps float32s, in the order of off
//	taps  the number of taps (>= 1)
//	c     the coefficient block (Coef*)
//	mask  the tail mask table: 16 lanes of all ones then 16 of zeros
var Args = []string{"x", "y", "n", "rows", "skip", "off", "w", "taps", "c", "mask"}

// Sig returns the Go signature of the kernel called name.
func Sig(name string) string {
	return "func " + name + "(x, y *float32, n, rows, skip int, off *int, w *float32, taps int, c *float32, mask *uint32)"
}

// Unroll is the vectors per iteration of the main loop of each width.
const (
	UnrollAVX2   = 4
	UnrollAVX512 = 4
)

// AVX2 returns dwRowsAVX2, and AVX512 dwRowsAVX512: for each output row r < rows and column
// i < n, in this order (dwRowsGo of package cpu computes the same, so the results are
// bit-identical to its):
//
//	v = b; v += w[0]*x0[i]; v += w[1]*x1[i]; ...; v += w[taps-1]*x_{taps-1}[i]
//	                                     (separate VMULPS and VADDPS, taps in table order)
//	v = max(floor, v)                    (VMAXPS v, floor: v when v is -0 or NaN)
//	y[i] = min(v, ceil)                  (VMINPS v, ceil: v when v is NaN)
//
// A block of vectors starts from the bias (b + p and p + b are the same float) and then runs a
// loop over the taps: load the tap's offset, broadcast its weight, and for each vector of the
// block multiply the input at that offset and add. The main loop runs Unroll vectors a block,
// then one vector at a time. Nothing outside the rows read and written is accessed: the last
// 1..7 columns of a row go through masked loads and stores (VMASKMOVPS with a mask vector from
// the table, or, in the AVX-512 kernel, an opmask made from it by VPTESTMD, with masked
// multiplies reading memory). The AVX-512 kernel runs its last 8..15 columns as one ymm and the
// masked tail in ymm too (EVEX with an opmask, AVX-512 VL), as the 3x3 kernel it replaces did:
// on a CPU that splits zmm accesses (Zen 4) a 16-lane masked tail was slower than AVX2.
func AVX2() *Func { return build("dwRowsAVX2", Y, 8, UnrollAVX2) }

// AVX512 returns dwRowsAVX512 (see AVX2).
func AVX512() *Func { return build("dwRowsAVX512", Z, 16, UnrollAVX512) }

func build(name string, kind Kind, lanes, unroll int) *Func {
	f := NewFunc(name, Sig(name), Args...)
	reg := func(n int) Reg {
		if kind == Y {
			return YReg(n)
		}
		return ZReg(n)
	}
	// GPRs: SI the input cursor, DI the output cursor, CX the columns left in the row, DX the
	// rows left, R8 the offset table, R9 the weights, R10 the tap count, R11 the tap index, BX
	// the tap's offset, AX scratch. Tap k reads 4*off[k](SI) + disp: (SI)(BX*4).
	tapMem := func(disp int) Mem { return Mem{Base: SI, Index: BX, Scale: 4, Disp: int64(disp), ZeroDisp: true} }
	// Vector registers: the tap's weight 0, bias 1, floor 2, the tail's mask 3, ceiling 4,
	// products from 5, accumulators from 5+unroll. (Functions of reg, which the AVX-512 tail
	// switches to the ymm views.)
	W := func() Reg { return reg(0) }
	bias := func() Reg { return reg(1) }
	floor := func() Reg { return reg(2) }
	mask := func() Reg { return reg(3) }
	ceil := func() Reg { return reg(4) }
	tmp := func(j int) Reg { return reg(5 + j) }
	acc := func(j int) Reg { return reg(5 + unroll + j) }

	f.I(MOVQ, f.Param("x"), SI)
	f.I(MOVQ, f.Param("y"), DI)
	f.I(MOVQ, f.Param("rows"), DX)
	f.I(MOVQ, f.Param("off"), R8)
	f.I(MOVQ, f.Param("w"), R9)
	f.I(MOVQ, f.Param("taps"), R10)
	f.I(MOVQ, f.Param("c"), AX)
	f.I(VBROADCASTSS, At(4*CoefBias, AX), bias())
	f.I(VBROADCASTSS, At(4*CoefFloor, AX), floor())
	f.I(VBROADCASTSS, At(4*CoefCeil, AX), ceil())

	p := fmt.Sprintf("d%d", lanes)
	loops := 0
	// body emits u vectors at byte offset 0, vb, ...; mul emits tmp(j) = w_k * x_k of vector j
	// (x_k at the memory operand it is given) and store the store of vector j.
	body := func(u int, mul func(j int, x Mem), store func(j int, s Reg)) {
		for j := 0; j < u; j++ {
			f.I(VMOVUPS, bias(), acc(j))
		}
		f.I(MOVQ, Imm(0), R11)
		loop := Label(fmt.Sprintf("%stap%d", p, loops))
		loops++
		f.Label(loop)
		f.I(MOVQ, Mem{Base: R8, Index: R11, Scale: 8}, BX)
		f.I(VBROADCASTSS, Mem{Base: R9, Index: R11, Scale: 4}, W())
		vb := 4 * tmp(0).Lanes()
		for j := 0; j < u; j++ {
			mul(j, tapMem(j*vb))
			f.I(VADDPS, tmp(j), acc(j), acc(j)) // acc + w_k*x_k
		}
		f.I(INCQ, R11)
		f.I(CMPQ, R11, R10)
		f.I(JLT, loop)
		for j := 0; j < u; j++ {
			f.I(VMAXPS, acc(j), floor(), acc(j)) // floor > v ? floor : v
			f.I(VMINPS, acc(j), ceil(), acc(j))  // ceil < v ? ceil : v (NaN stays)
			store(j, acc(j))
		}
	}
	vb := 4 * lanes // bytes per vector
	full := func(u int) {
		body(u, func(j int, x Mem) { f.I(VMULPS, x, W(), tmp(j)) },
			func(j int, s Reg) { f.I(VMOVUPS, s, At(j*vb, DI)) })
		f.I(ADDQ, Imm(int64(u*vb)), SI)
		f.I(ADDQ, Imm(int64(u*vb)), DI)
		f.I(SUBQ, Imm(int64(u*lanes)), CX)
	}
	f.Label(Label(p + "row"))
	f.I(MOVQ, f.Param("n"), CX)
	f.I(CMPQ, CX, Imm(int64(unroll*lanes)))
	f.I(JLT, Label(p+"one"))
	f.Label(Label(p + "loop"))
	full(unroll)
	f.I(CMPQ, CX, Imm(int64(unroll*lanes)))
	f.I(JGE, Label(p+"loop"))
	f.Label(Label(p + "one"))
	if kind == Z {
		// The last 1..15 columns run in ymm (the low halves of the same registers): one full
		// ymm when 8 or more are left, then an opmask tail of 1..7 lanes.
		f.I(CMPQ, CX, Imm(16))
		f.I(JLT, Label(p+"half"))
		full(1)
		f.I(JMP, Label(p+"one"))
		f.Label(Label(p + "half"))
		reg = YReg
		lanes, vb = 8, 32
	}
	f.I(CMPQ, CX, Imm(int64(lanes)))
	f.I(JLT, Label(p+"tail"))
	full(1)
	if kind == Y {
		f.I(JMP, Label(p+"one"))
	}
	f.Label(Label(p + "tail"))
	f.I(TESTQ, CX, CX)
	f.I(JZ, Label(p+"next"))
	// The mask of the first CX lanes: the table's lanes from 16 - CX.
	f.I(MOVQ, Imm(16), AX)
	f.I(SUBQ, CX, AX)
	f.I(SHLQ, Imm(2), AX)
	f.I(ADDQ, f.Param("mask"), AX)
	f.I(VMOVUPS, Ptr(AX), mask())
	if kind == Y {
		body(1, func(j int, x Mem) {
			f.I(VMASKMOVPS, x, mask(), tmp(j))
			f.I(VMULPS, tmp(j), W(), tmp(j))
		}, func(_ int, s Reg) { f.I(VMASKMOVPS, s, mask(), Ptr(DI)) })
	} else {
		km := KReg(1)
		f.I(VPTESTMD, mask(), mask(), km)
		body(1, func(j int, x Mem) { f.Masked(VMULPS, km, true, x, W(), tmp(j)) },
			func(_ int, s Reg) { f.Masked(VMOVUPS, km, false, s, Ptr(DI)) })
	}
	f.I(LEAQ, Mem{Base: SI, Index: CX, Scale: 4}, SI)
	f.I(LEAQ, Mem{Base: DI, Index: CX, Scale: 4}, DI)
	f.Label(Label(p + "next"))
	f.I(ADDQ, f.Param("skip"), SI)
	f.I(DECQ, DX)
	f.I(JNZ, Label(p+"row"))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

// SplitArgs are the arguments of SplitAVX512's kernel, in frame order:
//
//	x     the input: 32*n + (the tail's floats) floats
//	e, o  the outputs: e[j] = x[2j], o[j] = x[2j+1]; 16*n each, then the tail's
//	n     the number of whole 16-pair blocks (>= 0)
//	idx   the permutation 0, 2, ..., 14, 1, 3, ..., 15 (16 uint32s)
//	k     four lane masks (uint64 each, the low 16 bits used) of the tail, a last block of
//	      fewer than 16 pairs: the floats of x read by its two loads (x[32n:][:16] and
//	      x[32n+16:][:16]), then the lanes of e and of o it writes; all 0 without a tail
var SplitArgs = []string{"x", "e", "o", "n", "idx", "k"}

// SplitSig returns the Go signature of the split kernel called name.
func SplitSig(name string) string {
	return "func " + name + "(x, e, o *float32, n int, idx *uint32, k *uint64)"
}

// SplitAVX512 returns dwSplitAVX512, the stride-2 column split of the padded copy of a depthwise
// channel (depthwiseTask.fill2, dwSplitGo): 32 input floats a block, two loads, each permuted
// so that its even elements fill its low half and its odd ones its high half (VPERMPS), the
// halves of the two recombined into 16 evens and 16 odds (VSHUFF32X4), two stores. The tail
// (a row's last 1..15 pairs, and an even element without its odd one) runs the same block under
// opmasks: masked loads (which read nothing outside their lanes) and masked stores. It moves
// floats without arithmetic, so it gives the same bits as the Go loop.
func SplitAVX512() *Func {
	name := "dwSplitAVX512"
	f := NewFunc(name, SplitSig(name), SplitArgs...)
	f.I(MOVQ, f.Param("x"), SI)
	f.I(MOVQ, f.Param("e"), DI)
	f.I(MOVQ, f.Param("o"), DX)
	f.I(MOVQ, f.Param("n"), CX)
	f.I(MOVQ, f.Param("idx"), AX)
	f.I(VMOVUPS, Ptr(AX), ZReg(0))
	block := func(load func(disp int, r Reg), store func(r Reg, m Mem, odd bool)) {
		load(0, ZReg(1))
		load(64, ZReg(2))
		f.I(VPERMPS, ZReg(1), ZReg(0), ZReg(1))               // evens of x[0:16] low, odds high
		f.I(VPERMPS, ZReg(2), ZReg(0), ZReg(2))               // the same of x[16:32]
		f.I(VSHUFF32X4, Imm(0x44), ZReg(2), ZReg(1), ZReg(3)) // low halves: the 16 evens
		f.I(VSHUFF32X4, Imm(0xEE), ZReg(2), ZReg(1), ZReg(4)) // high halves: the 16 odds
		store(ZReg(3), At(0, DI), false)
		store(ZReg(4), At(0, DX), true)
	}
	f.I(TESTQ, CX, CX)
	f.I(JZ, Label("splittail"))
	f.Label("split")
	block(func(disp int, r Reg) { f.I(VMOVUPS, At(disp, SI), r) },
		func(r Reg, m Mem, _ bool) { f.I(VMOVUPS, r, m) })
	f.I(ADDQ, Imm(128), SI)
	f.I(ADDQ, Imm(64), DI)
	f.I(ADDQ, Imm(64), DX)
	f.I(DECQ, CX)
	f.I(JNZ, Label("split"))
	f.Label("splittail")
	f.I(MOVQ, f.Param("k"), AX)
	f.I(MOVQ, At(16, AX), BX) // the lanes of e: none, no tail
	f.I(TESTQ, BX, BX)
	f.I(JZ, Label("splitdone"))
	f.I(KMOVW, BX, KReg(3))
	f.I(MOVQ, At(24, AX), BX)
	f.I(KMOVW, BX, KReg(4))
	f.I(MOVQ, At(0, AX), BX)
	f.I(KMOVW, BX, KReg(1))
	f.I(MOVQ, At(8, AX), BX)
	f.I(KMOVW, BX, KReg(2))
	block(func(disp int, r Reg) { f.Masked(VMOVUPS, KReg(1+disp/64), true, At(disp, SI), r) },
		func(r Reg, m Mem, odd bool) {
			k := KReg(3)
			if odd {
				k = KReg(4)
			}
			f.Masked(VMOVUPS, k, false, r, m)
		})
	f.Label("splitdone")
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

// AsmFile returns the assembly file of the depthwise kernels.
func AsmFile() *File {
	return &File{
		Header: AsmHeader("dwgen.go"),
		Funcs:  append([]*Func{AVX2(), AVX512(), SplitAVX512()}, ChansAll()...),
	}
}

// Decl returns the Go declarations of AsmFile's functions.
func Decl() []byte {
	var b bytes.Buffer
	b.WriteString(DeclHeader("dwgen.go", "cpu"))
	for _, f := range AsmFile().Funcs {
		ref, sig := "dwRowsGo", Sig(f.Name)
		switch {
		case f.Name == "dwSplitAVX512":
			ref, sig = "dwSplitGo", SplitSig(f.Name)
		case strings.HasPrefix(f.Name, "dwChans"):
			ref, sig = "dwChansGo", ChansSig(f.Name)
		}
		b.WriteString("\n// " + f.Name + " is " + ref + " in assembly, described in package internal/dwasm, which\n")
		b.WriteString("// documents its arguments.\n//\n//go:noescape\n")
		b.WriteString(sig + "\n")
	}
	return b.Bytes()
}

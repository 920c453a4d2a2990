// Package dwasm describes the 3x3 depthwise-convolution row kernels of package cpu in the kasm
// IR, for AVX2 (ymm) and AVX-512 F (zmm). The generator (cpu/dwgen.go) prints the descriptions
// as conv_depthwise_amd64.s; the tests of package cpu run the same descriptions in the kasm
// interpreter against a Go reference of the same operation order (dw3x3Ref), on every machine,
// and against the assembly where the CPU has the ISA. Production code never imports this
// package.
package dwasm

import (
	"bytes"
	"fmt"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// The coefficient block c the kernels read: nine weights, the bias and the floor (0 for ReLU,
// -Inf without: max(floor, v) is then v, -0 and NaN included), one float32 each.
const (
	CoefBias  = 9
	CoefFloor = 10
	Coefs     = 11
)

// Args are the arguments of both kernels, in frame order:
//
//	x     the input: tap k of output row r, column i reads x[off[k]/4 + r*(n+skip/4) + i]
//	y     the output rows, n floats each, contiguous
//	n     the output row length (>= 1)
//	rows  the number of output rows (>= 1)
//	skip  the bytes from the end of an input row's n floats to the next row's start: 4*(wq-n)
//	off   nine byte offsets of the taps (off[0] must be 0; the others may be negative)
//	c     the coefficient block (Coef*)
//	mask  the tail mask table: 16 lanes of all ones then 16 of zeros
var Args = []string{"x", "y", "n", "rows", "skip", "off", "c", "mask"}

// Sig returns the Go signature of the kernel called name.
func Sig(name string) string {
	return "func " + name + "(x, y *float32, n, rows, skip int, off *int, c *float32, mask *uint32)"
}

// Unroll is the vectors per iteration of the main loop of each width.
const (
	UnrollAVX2   = 4
	UnrollAVX512 = 4
)

// AVX2 returns dw3x3AVX2, and AVX512 dw3x3AVX512: for each output row r < rows and column
// i < n, in this order (rows3x3 of package cpu computes the same, so the results are
// bit-identical to its):
//
//	v = b + w0*x0[i]; v += w1*x1[i]; ...; v += w8*x8[i]   (separate VMULPS and VADDPS)
//	y[i] = max(floor, v)                                 (VMAXPS v, floor: v when v is -0 or NaN)
//
// The main loop runs Unroll vectors, then one vector at a time. Nothing outside the rows read
// and written is accessed: the last 1..7 columns of a row go through masked loads and stores
// (VMASKMOVPS with a mask vector from the table, or, in the AVX-512 kernel, an opmask made from
// it by VPTESTMD, with masked multiplies reading memory). The AVX-512 kernel runs its last 8..15
// columns as one ymm and the masked tail in ymm too (EVEX with an opmask, AVX-512 VL): on a CPU
// that splits zmm accesses (Zen 4) a 16-lane masked tail made it slower than AVX2 on MobileNet's
// row lengths (56, 28, 7).
func AVX2() *Func { return build("dw3x3AVX2", Y, 8, UnrollAVX2) }

// AVX512 returns dw3x3AVX512 (see AVX2).
func AVX512() *Func { return build("dw3x3AVX512", Z, 16, UnrollAVX512) }

func build(name string, kind Kind, lanes, unroll int) *Func {
	f := NewFunc(name, Sig(name), Args...)
	reg := func(n int) Reg {
		if kind == Y {
			return YReg(n)
		}
		return ZReg(n)
	}
	// GPRs: SI the input cursor (tap 0), DI the output cursor, CX the columns left in the row,
	// DX the rows left, AX scratch; tap k >= 1 reads off[k](offReg[k-1])(SI*1).
	offRegs := []Reg{BX, R8, R9, R10, R11, R12, R13, R14}
	tap := func(k, disp int) Mem {
		if k == 0 {
			return At(disp, SI)
		}
		return Mem{Base: offRegs[k-1], Index: SI, Scale: 1, Disp: int64(disp), ZeroDisp: true}
	}
	// Vector registers: weights 0..8, bias 9, floor 10, product 11, accumulators from 12 (the
	// tail's mask in the last one, which the one-vector tail leaves free).
	W := func(k int) Reg { return reg(k) }
	// (Functions of reg, which the AVX-512 tail switches to the ymm views.)
	bias := func() Reg { return reg(9) }
	floor := func() Reg { return reg(10) }
	tmp := func() Reg { return reg(11) }
	acc := func(j int) Reg { return reg(12 + j) }
	mask := func() Reg { return reg(15) }

	f.I(MOVQ, f.Param("x"), SI)
	f.I(MOVQ, f.Param("y"), DI)
	f.I(MOVQ, f.Param("rows"), DX)
	f.I(MOVQ, f.Param("off"), AX)
	for k := 1; k < 9; k++ {
		f.I(MOVQ, At(8*k, AX), offRegs[k-1])
	}
	f.I(MOVQ, f.Param("c"), AX)
	for k := 0; k < 9; k++ {
		f.I(VBROADCASTSS, At(4*k, AX), W(k))
	}
	f.I(VBROADCASTSS, At(4*CoefBias, AX), bias())
	f.I(VBROADCASTSS, At(4*CoefFloor, AX), floor())

	// body emits u vectors at byte offset 0, vb, ...; mul emits tmp = w_k * x_k of vector j and
	// store the store of vector j.
	body := func(u int, mul func(j, k int), store func(j int, s Reg)) {
		for k := 0; k < 9; k++ {
			for j := 0; j < u; j++ {
				mul(j, k)
				if k == 0 {
					f.I(VADDPS, tmp(), bias(), acc(j)) // b + w0*x0
				} else {
					f.I(VADDPS, tmp(), acc(j), acc(j))
				}
			}
		}
		for j := 0; j < u; j++ {
			f.I(VMAXPS, acc(j), floor(), acc(j)) // floor > v ? floor : v
			store(j, acc(j))
		}
	}
	vb := 4 * lanes // bytes per vector
	full := func(u int) {
		body(u, func(j, k int) { f.I(VMULPS, tap(k, j*vb), W(k), tmp()) },
			func(j int, s Reg) { f.I(VMOVUPS, s, At(j*vb, DI)) })
		f.I(ADDQ, Imm(int64(u*vb)), SI)
		f.I(ADDQ, Imm(int64(u*vb)), DI)
		f.I(SUBQ, Imm(int64(u*lanes)), CX)
	}
	p := fmt.Sprintf("d%d", lanes)
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
		// ymm when 8 or more are left, then an opmask tail of 1..7 lanes, so that a masked
		// access covers at most 7 columns (as AVX2's), and 7-column rows (MobileNet's last
		// stage) read 32 bytes per tap, not 64.
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
		body(1, func(_, k int) {
			f.I(VMASKMOVPS, tap(k, 0), mask(), tmp())
			f.I(VMULPS, tmp(), W(k), tmp())
		}, func(_ int, s Reg) { f.I(VMASKMOVPS, s, mask(), Ptr(DI)) })
	} else {
		km := KReg(1)
		f.I(VPTESTMD, mask(), mask(), km)
		body(1, func(_, k int) { f.Masked(VMULPS, km, true, tap(k, 0), W(k), tmp()) },
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

// AsmFile returns the assembly file of the depthwise kernels.
func AsmFile() *File {
	return &File{
		Header: AsmHeader("dwgen.go"),
		Funcs:  []*Func{AVX2(), AVX512()},
	}
}

// Decl returns the Go declarations of AsmFile's functions.
func Decl() []byte {
	var b bytes.Buffer
	b.WriteString(DeclHeader("dwgen.go", "cpu"))
	for _, f := range AsmFile().Funcs {
		b.WriteString("\n// " + f.Name + " is dw3x3Go in assembly, described in package internal/dwasm, which\n")
		b.WriteString("// documents its arguments.\n//\n//go:noescape\n")
		b.WriteString(Sig(f.Name) + "\n")
	}
	return b.Bytes()
}

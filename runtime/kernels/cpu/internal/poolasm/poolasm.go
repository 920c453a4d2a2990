// Package poolasm describes the AVX-512 pooling plane kernels of package cpu in the kasm IR: max
// pooling (MaxTaps, MaxTaps2) and the 2x2 stride-2 average pool with a BatchNormalization-ReLU
// prologue (Avg2x2, DenseNet's transitions). Each call covers a whole channel plane: on
// GoogLeNet's 14x14 and 7x7 planes and DenseNet's 7-wide transition rows a call per row cost as
// much as the work, and a row of up to 16 outputs is one masked zmm.
//
// The generator (cpu/poolgen.go) prints the descriptions as pool2d_avx512_amd64.s; the tests of
// package cpu run the same descriptions in the kasm interpreter against the portable kernels on
// every machine, and against the assembly where the CPU has AVX-512. Production code never
// imports this package.
//
// # Max pooling
//
// A max pool is two passes over a channel plane (see maxPlane in package cpu): a vertical one,
// which folds the KH rows of each window into padded row buffers, and a horizontal one, which
// folds the KW columns. Both are "for each of rows output rows, for each of n columns, the max
// over taps equally spaced inputs", so one kernel (MaxTaps) runs the vertical pass and the
// stride-1 horizontal pass, and a second (MaxTaps2) the stride-2 horizontal pass.
package poolasm

import (
	"bytes"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// Args are the arguments of both kernels, in frame order (counts and strides in floats):
//
//	dst    the output: row r, column k is dst[r*dp + k]
//	src    the input
//	n      the columns of each output row (>= 1)
//	rows   the output rows (>= 1)
//	taps   the inputs each output folds (>= 1)
//	step   the distance between two taps
//	sadv   the distance between the inputs of two consecutive output rows
//	dp     the distance between two output rows
//	tab    the table: 16 lanes of all ones, 16 of zeros, then MaxTaps2's 16 permutation indices
var Args = []string{"dst", "src", "n", "rows", "taps", "step", "sadv", "dp", "tab"}

// Sig returns the Go signature of the kernel called name.
func Sig(name string) string {
	return "func " + name + "(dst, src *float32, n, rows, taps, step, sadv, dp int, tab *uint32)"
}

// Perm is the table's permutation (at float 32): VSHUFPS $0x88 of the even lanes of two vectors
// leaves outputs 0,1,8,9 in the first 128-bit lane, 2,3,10,11 in the second, and so on; lane i
// of the result takes element Perm[i] of that.
var Perm = [16]uint32{0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15}

// Table returns the table the kernels read (argument tab).
func Table() []uint32 {
	t := make([]uint32, 48)
	for i := range 16 {
		t[i] = 0xFFFFFFFF
	}
	copy(t[32:], Perm[:])
	return t
}

// nanMax folds the memory operand x into acc under opmask k (lanes outside k are neither read
// nor changed): acc = max(acc, x), NaN when either is NaN. VMAXPS returns its memory operand
// when either is NaN, which covers a NaN x; the compare drops the lanes whose acc is NaN
// already from the mask, so that they keep it. t is a scratch opmask.
//
// The compare puts two instructions in the chain through the taps. A version without it in the
// chain (each tap compared with itself, the NaN lanes ORed over the taps into an opmask and set
// at the end) measured no faster at GoogLeNet's shapes (0.6x to 1.5x by shape on one Zen 5 core,
// BenchmarkMaxPool, within this VM's noise), and returned a constant NaN rather than the
// input's, so this one stays.
func nanMax(f *Func, k, t Reg, x Mem, acc Reg) {
	f.Masked(VCMPPS, k, false, Imm(7), acc, acc, t) // t = k & (acc is ordered)
	f.Masked(VMAXPS, t, false, x, acc, acc)
}

// maskOf loads into k the opmask of the first GPR-count lanes (0..16): the table's lanes from
// 16 - count. R12 is clobbered; z is a scratch vector.
func maskOf(f *Func, count Reg, k Reg, z Reg) {
	f.I(MOVQ, Imm(16), R12)
	f.I(SUBQ, count, R12)
	f.I(VMOVUPS, Mem{Base: R11, Index: R12, Scale: 4}, z)
	f.I(VPTESTMD, z, z, k)
}

// MaxTaps returns maxTapsAVX512:
//
//	dst[r*dp + x] = max over t < taps of src[r*sadv + t*step + x]   for r < rows, x < n
//
// Each row goes 16 columns at a time, the last 1..16 under an opmask (K1); the taps are folded
// in order with nanMax.
func MaxTaps() *Func {
	f := NewFunc("maxTapsAVX512", Sig("maxTapsAVX512"), Args...)
	frame(f)
	splitRow(f)
	maskOf(f, AX, KReg(1), ZReg(31))
	f.I(MOVQ, Imm(16), AX)
	maskOf(f, AX, KReg(5), ZReg(31)) // all lanes: the full vectors use the same code
	acc := ZReg(0)
	vec := func(k Reg) {
		f.Masked(VMOVUPS, k, true, Ptr(R14), acc)
		f.I(MOVQ, R14, R12)
		f.I(MOVQ, DX, BX)
		f.I(DECQ, BX)
		f.I(JZ, Label("store"+k.String()))
		f.Label(Label("tap" + k.String()))
		f.I(ADDQ, R8, R12)
		nanMax(f, k, KReg(2), Ptr(R12), acc)
		f.I(DECQ, BX)
		f.I(JNZ, Label("tap"+k.String()))
		f.Label(Label("store" + k.String()))
		f.Masked(VMOVUPS, k, false, acc, Ptr(R15))
	}
	f.Label("row")
	f.I(MOVQ, SI, R14)
	f.I(MOVQ, DI, R15)
	f.I(MOVQ, R13, AX)
	f.Label("full")
	f.I(TESTQ, AX, AX)
	f.I(JZ, Label("last"))
	vec(KReg(5))
	f.I(ADDQ, Imm(64), R14)
	f.I(ADDQ, Imm(64), R15)
	f.I(DECQ, AX)
	f.I(JMP, Label("full"))
	f.Label("last")
	vec(KReg(1))
	f.I(ADDQ, R9, SI)
	f.I(ADDQ, R10, DI)
	f.I(DECQ, CX)
	f.I(JNZ, Label("row"))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

// MaxTaps2 returns maxTaps2AVX512, the stride-2 horizontal pass:
//
//	dst[r*dp + k] = max over t < taps of src[r*sadv + 2k + t*step]   for r < rows, k < n
//
// Sixteen outputs at a time, it folds the taps over the 32 inputs from 2k (two zmm, every
// column rather than every other one), then keeps the even lanes (VSHUFPS, VPERMPS): one
// shuffle per output vector instead of one per tap. The last 1..16 outputs fold 2*count inputs
// under opmasks (K1, K3), so the kernel reads src up to 2n-1 + (taps-1)*step in each row, one
// float past the last tap.
func MaxTaps2() *Func {
	f := NewFunc("maxTaps2AVX512", Sig("maxTaps2AVX512"), Args...)
	frame(f)
	splitRow(f)
	f.I(ADDQ, AX, AX) // the last vector's inputs: 2..32
	f.I(MOVQ, AX, BX)
	f.I(CMPQ, AX, Imm(16))
	f.I(JLE, Label("lo"))
	f.I(MOVQ, Imm(16), AX)
	f.Label("lo")
	f.I(SUBQ, AX, BX) // BX: the inputs in the second vector, 0..16
	maskOf(f, AX, KReg(1), ZReg(31))
	maskOf(f, BX, KReg(3), ZReg(31))
	f.I(MOVQ, Imm(16), AX)
	maskOf(f, AX, KReg(5), ZReg(31))
	f.I(VMOVUPS, At(128, R11), ZReg(30)) // the permutation
	a, b, t := ZReg(0), ZReg(1), ZReg(2)
	vec := func(ka, kb Reg, name string) {
		f.Masked(VMOVUPS, ka, true, Ptr(R14), a)
		f.Masked(VMOVUPS, kb, true, At(64, R14), b)
		f.I(MOVQ, R14, R12)
		f.I(MOVQ, DX, BX)
		f.I(DECQ, BX)
		f.I(JZ, Label("store"+name))
		f.Label(Label("tap" + name))
		f.I(ADDQ, R8, R12)
		nanMax(f, ka, KReg(2), Ptr(R12), a)
		nanMax(f, kb, KReg(4), At(64, R12), b)
		f.I(DECQ, BX)
		f.I(JNZ, Label("tap"+name))
		f.Label(Label("store" + name))
		f.I(VSHUFPS, Imm(0x88), b, a, t)
		f.I(VPERMPS, t, ZReg(30), t)
		f.Masked(VMOVUPS, KReg(6), false, t, Ptr(R15))
	}
	f.Label("row")
	f.I(MOVQ, SI, R14)
	f.I(MOVQ, DI, R15)
	f.I(MOVQ, R13, AX)
	// K6: the outputs stored, all 16 for the full vectors.
	f.I(KORW, KReg(5), KReg(5), KReg(6))
	f.Label("full")
	f.I(TESTQ, AX, AX)
	f.I(JZ, Label("last"))
	vec(KReg(5), KReg(5), "full")
	f.I(ADDQ, Imm(128), R14)
	f.I(ADDQ, Imm(64), R15)
	f.I(DECQ, AX)
	f.I(JMP, Label("full"))
	f.Label("last")
	f.I(MOVQ, f.Param("n"), AX)
	f.I(DECQ, AX)
	f.I(ANDQ, Imm(15), AX)
	f.I(INCQ, AX)
	maskOf(f, AX, KReg(6), ZReg(31))
	vec(KReg(1), KReg(3), "last")
	f.I(ADDQ, R9, SI)
	f.I(ADDQ, R10, DI)
	f.I(DECQ, CX)
	f.I(JNZ, Label("row"))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

// splitRow cuts a row of n outputs (BX) into 16-lane vectors: R13 = (n-1)/16 full vectors
// before the last one, AX = the last one's lanes, 1..16.
func splitRow(f *Func) {
	f.I(MOVQ, BX, AX)
	f.I(DECQ, AX)
	f.I(MOVQ, AX, R13)
	f.I(SHRQ, Imm(4), R13)
	f.I(ANDQ, Imm(15), AX)
	f.I(INCQ, AX)
}

// frame loads the arguments: DI dst, SI src, BX n, CX rows, DX taps, and in bytes R8 step,
// R9 sadv, R10 dp; R11 the table.
func frame(f *Func) {
	f.I(MOVQ, f.Param("dst"), DI)
	f.I(MOVQ, f.Param("src"), SI)
	f.I(MOVQ, f.Param("n"), BX)
	f.I(MOVQ, f.Param("rows"), CX)
	f.I(MOVQ, f.Param("taps"), DX)
	f.I(MOVQ, f.Param("step"), R8)
	f.I(SHLQ, Imm(2), R8)
	f.I(MOVQ, f.Param("sadv"), R9)
	f.I(SHLQ, Imm(2), R9)
	f.I(MOVQ, f.Param("dp"), R10)
	f.I(SHLQ, Imm(2), R10)
	f.I(MOVQ, f.Param("tab"), R11)
}

// AvgArgs are the arguments of Avg2x2, in frame order (counts and strides in floats):
//
//	dst    the output: row r, column k is dst[r*dp + k]
//	src    the input plane, rows wd floats apart
//	n      the outputs of each row (>= 1; 2n <= wd)
//	rows   the output rows (>= 1)
//	wd     the input row pitch
//	dp     the output row pitch
//	c      the coefficients, four float32: scale, shift, floor, inv (CoefScale...)
//	tab    the table (see Args)
var AvgArgs = []string{"dst", "src", "n", "rows", "wd", "dp", "c", "tab"}

// The coefficients Avg2x2 reads from c, one float32 each.
const (
	CoefScale = 0
	CoefShift = 1
	CoefFloor = 2 // 0 for a ReLU prologue, -Inf without
	CoefInv   = 3 // 1/4
	Coefs     = 4
)

// AvgSig returns the Go signature of Avg2x2 called name.
func AvgSig(name string) string {
	return "func " + name + "(dst, src *float32, n, rows, wd, dp int, c *float32, tab *uint32)"
}

// Avg2x2 returns avg2x2PlaneAVX512, the 2x2 stride-2 average pool of a plane with the
// BatchNormalization-ReLU prologue f(v) = max(v*scale + shift, floor) applied to every tap
// (DenseNet's transitions):
//
//	dst[r*dp + k] = ((f(a[2k]) + f(b[2k])) + (f(a[2k+1]) + f(b[2k+1]))) * inv
//
// where a and b are input rows 2r and 2r+1, v*scale + shift is one FMA and the sums are in this
// order: the order of the AVX2 kernel (avg2x2PreAVX2), so that both levels give the same bits.
// VMAXPS takes the input as its second source, which it returns when either is NaN: NaN
// propagates. Sixteen outputs at a time, from two zmm of each row: the rows are added, then the
// even and odd lanes (VSHUFPS $0x88, $0xDD), and VPERMPS puts the sums in order. The last 1..16
// outputs read exactly their 2*count inputs of each row, under opmasks.
func Avg2x2() *Func {
	f := NewFunc("avg2x2PlaneAVX512", AvgSig("avg2x2PlaneAVX512"), AvgArgs...)
	f.I(MOVQ, f.Param("dst"), DI)
	f.I(MOVQ, f.Param("src"), SI)
	f.I(MOVQ, f.Param("n"), BX)
	f.I(MOVQ, f.Param("rows"), CX)
	f.I(MOVQ, f.Param("wd"), DX)
	f.I(SHLQ, Imm(2), DX) // the input row pitch in bytes
	f.I(MOVQ, f.Param("dp"), R10)
	f.I(SHLQ, Imm(2), R10)
	f.I(MOVQ, f.Param("c"), R8)
	f.I(MOVQ, f.Param("tab"), R11)
	scale, shift, floor, inv, perm := ZReg(24), ZReg(25), ZReg(26), ZReg(27), ZReg(30)
	f.I(VBROADCASTSS, At(4*CoefScale, R8), scale)
	f.I(VBROADCASTSS, At(4*CoefShift, R8), shift)
	f.I(VBROADCASTSS, At(4*CoefFloor, R8), floor)
	f.I(VBROADCASTSS, At(4*CoefInv, R8), inv)
	f.I(VMOVUPS, At(128, R11), perm)
	splitRow(f)
	maskOf(f, AX, KReg(6), ZReg(31)) // the last vector's outputs
	f.I(ADDQ, AX, AX)                // its inputs in each row: 2..32
	f.I(MOVQ, AX, BX)
	f.I(CMPQ, AX, Imm(16))
	f.I(JLE, Label("lo"))
	f.I(MOVQ, Imm(16), AX)
	f.Label("lo")
	f.I(SUBQ, AX, BX)
	maskOf(f, AX, KReg(1), ZReg(31))
	maskOf(f, BX, KReg(3), ZReg(31))
	f.I(MOVQ, Imm(16), AX)
	maskOf(f, AX, KReg(5), ZReg(31))
	vec := func(ka, kb, ks Reg) {
		// Z0, Z1: row a's 32 inputs; Z2, Z3: row b's.
		f.Masked(VMOVUPS, ka, true, Ptr(R14), ZReg(0))
		f.Masked(VMOVUPS, kb, true, At(64, R14), ZReg(1))
		f.Masked(VMOVUPS, ka, true, Ptr(R14).Idx(DX, 1), ZReg(2))
		f.Masked(VMOVUPS, kb, true, At(64, R14).Idx(DX, 1), ZReg(3))
		for i := range 4 {
			f.I(VFMADD213PS, shift, scale, ZReg(i))
		}
		for i := range 4 {
			f.I(VMAXPS, ZReg(i), floor, ZReg(i))
		}
		f.I(VADDPS, ZReg(2), ZReg(0), ZReg(0))
		f.I(VADDPS, ZReg(3), ZReg(1), ZReg(1))
		f.I(VSHUFPS, Imm(0x88), ZReg(1), ZReg(0), ZReg(2)) // the even columns' sums
		f.I(VSHUFPS, Imm(0xDD), ZReg(1), ZReg(0), ZReg(3)) // the odd ones'
		f.I(VADDPS, ZReg(2), ZReg(3), ZReg(2))             // odd + even, as VHADDPS adds them
		f.I(VPERMPS, ZReg(2), perm, ZReg(2))
		f.I(VMULPS, inv, ZReg(2), ZReg(2))
		f.Masked(VMOVUPS, ks, false, ZReg(2), Ptr(R15))
	}
	f.Label("row")
	f.I(MOVQ, SI, R14)
	f.I(MOVQ, DI, R15)
	f.I(MOVQ, R13, AX)
	f.Label("full")
	f.I(TESTQ, AX, AX)
	f.I(JZ, Label("last"))
	vec(KReg(5), KReg(5), KReg(5))
	f.I(ADDQ, Imm(128), R14)
	f.I(ADDQ, Imm(64), R15)
	f.I(DECQ, AX)
	f.I(JMP, Label("full"))
	f.Label("last")
	vec(KReg(1), KReg(3), KReg(6))
	f.I(ADDQ, DX, SI) // two input rows down
	f.I(ADDQ, DX, SI)
	f.I(ADDQ, R10, DI)
	f.I(DECQ, CX)
	f.I(JNZ, Label("row"))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

// Funcs returns the kernels in file order.
func Funcs() []*Func { return []*Func{MaxTaps(), MaxTaps2(), Avg2x2()} }

// AsmFile returns pool2d_avx512_amd64.s.
func AsmFile() *File {
	return &File{Header: AsmHeader("poolgen.go") + "// AVX-512 pooling plane kernels, described in package internal/poolasm.\n\n", Funcs: Funcs()}
}

// Decl returns pool2d_avx512_decl_amd64.go, the Go declarations of the kernels.
func Decl() []byte {
	var b bytes.Buffer
	b.WriteString(DeclHeader("poolgen.go", "cpu"))
	for _, f := range Funcs() {
		b.WriteString("\n// " + f.Name + " is described by package internal/poolasm.\n//\n//go:noescape\n")
		if f.Name == "avg2x2PlaneAVX512" {
			b.WriteString(AvgSig(f.Name) + "\n")
		} else {
			b.WriteString(Sig(f.Name) + "\n")
		}
	}
	return b.Bytes()
}

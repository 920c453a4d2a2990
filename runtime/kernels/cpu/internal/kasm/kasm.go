// Package kasm is a small instruction IR for the amd64 kernels of packages gemm and cpu: a
// kernel is described once as a Func, which Print writes as Go assembly and Run executes on
// simulated registers and memory. The interpreter is what lets a machine without AVX-512 (or without AVX2)
// test a kernel's logic, its register blocking, loop tails, masks and prologue, against the
// portable Go kernels: only the mechanical printing is left for the CPU to check.
//
// The package is used by the generators (gemm/asmgen.go through package gemmasm, cpu/winogen.go
// through package winoasm) and by tests; production code never imports it.
//
// # Operands
//
// Instructions keep Go's operand order, sources first and destination last, so that a builder
// reads like the assembly it prints ("VFMADD231PS Y12, Y15, Y0" is Y0 += Y15*Y12). The interpreter
// maps that order to the Intel semantics. Operands are registers (Reg: GPRs, X/Y/Z vector
// registers, K opmasks), memory (Mem: base + index*scale + disp), immediates (Imm), arguments in
// the ABI0 frame (Param, "name+off(FP)") and branch targets (Label).
//
// # AVX-512
//
// An Inst may carry an opmask (Mask, printed as the operand before the destination, as the Go
// assembler wants it), zeroing-masking (Zeroing, the ".Z" suffix) and embedded broadcast (Bcst,
// ".BCST": the memory operand is one float32 repeated in every lane). The interpreter applies
// them to every vector instruction it runs, so AVX-512 kernels need only their new opcodes.
package kasm

import (
	"fmt"
	"strings"
)

// Kind is the class of a register.
type Kind uint8

// Register kinds. X, Y and Z are the 128-, 256- and 512-bit views of the same 32 vector registers.
const (
	NoKind Kind = iota
	GP          // 64-bit general-purpose
	X           // xmm: 4 float32 lanes
	Y           // ymm: 8 lanes
	Z           // zmm: 16 lanes
	K           // AVX-512 opmask
)

// Reg is a register. The zero Reg is "no register" (an absent index or mask).
type Reg struct {
	Kind Kind
	N    uint8 // hardware number: AX=0, CX=1, DX=2, BX=3, SP=4, BP=5, SI=6, DI=7, R8..R15
}

// The general-purpose registers, numbered as the hardware numbers them.
var (
	AX  = Reg{GP, 0}
	CX  = Reg{GP, 1}
	DX  = Reg{GP, 2}
	BX  = Reg{GP, 3}
	SP  = Reg{GP, 4}
	BP  = Reg{GP, 5}
	SI  = Reg{GP, 6}
	DI  = Reg{GP, 7}
	R8  = Reg{GP, 8}
	R9  = Reg{GP, 9}
	R10 = Reg{GP, 10}
	R11 = Reg{GP, 11}
	R12 = Reg{GP, 12}
	R13 = Reg{GP, 13}
	R14 = Reg{GP, 14}
	R15 = Reg{GP, 15}
)

var gpNames = [16]string{"AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}

// XReg returns Xn, YReg Yn, ZReg Zn and KReg Kn. They panic on a number the hardware lacks
// (AVX2 has 16 vector registers, AVX-512 32 and 8 opmasks): a builder asking for one is wrong.
func XReg(n int) Reg { return vreg(X, n, 32) }

// YReg returns the ymm register n.
func YReg(n int) Reg { return vreg(Y, n, 32) }

// ZReg returns the zmm register n.
func ZReg(n int) Reg { return vreg(Z, n, 32) }

// KReg returns the opmask register n.
func KReg(n int) Reg { return vreg(K, n, 8) }

func vreg(k Kind, n, limit int) Reg {
	if n < 0 || n >= limit {
		panic(fmt.Sprintf("kasm: register %d of kind %d does not exist", n, k))
	}
	return Reg{k, uint8(n)}
}

// Lanes returns the number of float32 lanes of a vector register (0 for others).
func (r Reg) Lanes() int {
	switch r.Kind {
	case X:
		return 4
	case Y:
		return 8
	case Z:
		return 16
	}
	return 0
}

func (r Reg) String() string {
	switch r.Kind {
	case GP:
		return gpNames[r.N]
	case X, Y, Z, K:
		return fmt.Sprintf("%c%d", "XYZK"[r.Kind-X], r.N)
	}
	return "<noreg>"
}

// Mem is the memory operand Disp(Base)(Index*Scale).
type Mem struct {
	Base  Reg
	Index Reg // zero Reg: no index
	Scale int // 1, 2, 4 or 8 when Index is set
	Disp  int64
	// ZeroDisp prints a zero displacement ("0(BX)" rather than "(BX)"). It changes nothing but
	// the text: the generator printed both spellings before the IR existed, and gemm_amd64.s is
	// kept byte-identical.
	ZeroDisp bool
}

// At returns disp(base), printing the displacement even when it is 0.
func At(disp int, base Reg) Mem { return Mem{Base: base, Disp: int64(disp), ZeroDisp: true} }

// Ptr returns (base).
func Ptr(base Reg) Mem { return Mem{Base: base} }

// Idx returns m with the index register idx*scale.
func (m Mem) Idx(idx Reg, scale int) Mem {
	m.Index, m.Scale = idx, scale
	return m
}

func (m Mem) String() string {
	var b strings.Builder
	if m.Disp != 0 || m.ZeroDisp {
		fmt.Fprintf(&b, "%d", m.Disp)
	}
	fmt.Fprintf(&b, "(%s)", m.Base)
	if m.Index.Kind != NoKind {
		fmt.Fprintf(&b, "(%s*%d)", m.Index, m.Scale)
	}
	return b.String()
}

// Imm is an immediate, "$n".
type Imm int64

func (i Imm) String() string { return fmt.Sprintf("$%d", int64(i)) }

// Param is an argument slot of the ABI0 frame, "name+off(FP)". Func.Param makes one from the
// declared arguments, so that offsets are never counted by hand.
type Param struct {
	Name string
	Off  int
}

func (p Param) String() string { return fmt.Sprintf("%s+%d(FP)", p.Name, p.Off) }

// Label is a branch target.
type Label string

func (l Label) String() string { return string(l) }

// Operand is one of Reg, Mem, Imm, Param and Label.
type Operand interface{ String() string }

// Op is a mnemonic as the Go assembler spells it.
type Op string

// The instructions the interpreter runs. Others can be printed, but Run refuses them, so that a
// kernel never passes its test by skipping an instruction.
const (
	MOVQ    Op = "MOVQ"    // 64-bit move: register, memory, frame argument or immediate
	MOVLQSX Op = "MOVLQSX" // load int32, sign-extend to 64 bits
	LEAQ    Op = "LEAQ"
	ADDQ    Op = "ADDQ"
	SUBQ    Op = "SUBQ"
	ANDQ    Op = "ANDQ"
	SHLQ    Op = "SHLQ"
	SHRQ    Op = "SHRQ"
	DECQ    Op = "DECQ"
	INCQ    Op = "INCQ"
	TESTQ   Op = "TESTQ"
	CMPQ    Op = "CMPQ" // CMPQ a, b sets the flags of a - b (Go's order: JLT jumps when a < b)
	BTRQ    Op = "BTRQ" // CF = bit, then clear it
	JMP     Op = "JMP"
	JZ      Op = "JZ"
	JNZ     Op = "JNZ"
	JEQ     Op = "JEQ"
	JNE     Op = "JNE"
	JCC     Op = "JCC" // carry clear
	JCS     Op = "JCS" // carry set
	JLT     Op = "JLT"
	JGE     Op = "JGE"
	JLE     Op = "JLE"
	JGT     Op = "JGT"
	RET     Op = "RET"

	PREFETCHT0   Op = "PREFETCHT0" // a hint: never faults, so the interpreter skips it
	VZEROUPPER   Op = "VZEROUPPER"
	VMOVUPS      Op = "VMOVUPS" // load, store or register move (maskable)
	VMOVDQU      Op = "VMOVDQU" // 256-bit integer load (the packer's lane masks)
	VMASKMOVPS   Op = "VMASKMOVPS"
	VBROADCASTSS Op = "VBROADCASTSS"
	VXORPS       Op = "VXORPS"
	VANDPS       Op = "VANDPS"
	VORPS        Op = "VORPS"
	VADDPS       Op = "VADDPS"
	VSUBPS       Op = "VSUBPS" // VSUBPS b, a, d: d = a - b
	VMULPS       Op = "VMULPS"
	VMAXPS       Op = "VMAXPS"
	VFMADD231PS  Op = "VFMADD231PS" // VFMADD231PS b, a, d: d = a*b + d, one rounding
	VFMADD213PS  Op = "VFMADD213PS" // VFMADD213PS c, a, d: d = a*d + c, one rounding
	KMOVW        Op = "KMOVW"       // opmask from/to a GPR (the low 16 bits)

	// AVX-512 F forms the zmm kernels need where the VEX ones above have no 512-bit AVX-512 F
	// encoding (VXORPS, VANDPS and VORPS on zmm are AVX-512 DQ, which the avx512 level does not
	// require).
	VPXORD   Op = "VPXORD"   // bitwise xor of 32-bit lanes (zeroes a zmm)
	VPTESTMD Op = "VPTESTMD" // VPTESTMD b, a, k: bit i of k = (a[i] & b[i]) != 0
	KORW     Op = "KORW"     // KORW b, a, k: k = a | b (16-bit opmasks)
	KXORW    Op = "KXORW"    // KXORW b, a, k: k = a ^ b (KXORW k, k, k clears k)

	// The lane moves of the matrix-vector kernel, which spreads a vector of x over the rows of
	// a packed panel and folds the two halves of a zmm together.
	VPERMPS       Op = "VPERMPS"       // VPERMPS data, idx, d: d[i] = data[idx[i] mod lanes] (maskable)
	VEXTRACTF64X4 Op = "VEXTRACTF64X4" // VEXTRACTF64X4 $n, z, y: y = the 256-bit half n of z

	// VCOMPRESSPS a, k, d (register forms, AVX-512 F): the lanes of a that k selects, packed in
	// order into the low lanes of d; d's other lanes keep their values (merge-masking) or are
	// zeroed (Zeroing). The depthwise kernels drop a flat row's padding columns with it.
	VCOMPRESSPS Op = "VCOMPRESSPS"

	// The transposes of the Winograd output transform (package cpu), which turn one vector per
	// tile column into tile-major rows. VUNPCKLPS, VUNPCKHPS and VSHUFPS work within each 128-bit
	// lane, VSHUFF32X4 moves whole 128-bit lanes; all are maskable.
	VUNPCKLPS  Op = "VUNPCKLPS"  // VUNPCKLPS b, a, d: per 128-bit lane d = a0 b0 a1 b1
	VUNPCKHPS  Op = "VUNPCKHPS"  // VUNPCKHPS b, a, d: per 128-bit lane d = a2 b2 a3 b3
	VSHUFPS    Op = "VSHUFPS"    // VSHUFPS $i, b, a, d: per 128-bit lane d = a[i0] a[i1] b[i2] b[i3] (2 bits each)
	VSHUFF32X4 Op = "VSHUFF32X4" // VSHUFF32X4 $i, b, a, d (zmm): 128-bit lanes d = a[i0] a[i1] b[i2] b[i3]

	// The element-wise functions (the vector sigmoid): a minimum, a correctly rounded division,
	// the float/int32 conversions and the 32-bit integer lane arithmetic that builds powers of two
	// in the exponent bits. All are VEX (ymm) and AVX-512 F (zmm) instructions, and maskable.
	VMINPS     Op = "VMINPS"     // VMINPS b, a, d: d = a < b ? a : b (b when either is NaN, or both are 0)
	VDIVPS     Op = "VDIVPS"     // VDIVPS b, a, d: d = a / b, correctly rounded
	VCVTTPS2DQ Op = "VCVTTPS2DQ" // VCVTTPS2DQ a, d: int32 lanes, truncated; NaN and out of range give 0x80000000
	VCVTDQ2PS  Op = "VCVTDQ2PS"  // VCVTDQ2PS a, d: float32 of int32 lanes, rounded to nearest even
	VPADDD     Op = "VPADDD"     // VPADDD b, a, d: d = a + b in int32 lanes (wrapping)
	VPSUBD     Op = "VPSUBD"     // VPSUBD b, a, d: d = a - b in int32 lanes (wrapping)
	VPSLLD     Op = "VPSLLD"     // VPSLLD $n, a, d: d = a << n (0 when n > 31)
	VPSRLD     Op = "VPSRLD"     // VPSRLD $n, a, d: d = a >> n, logical (0 when n > 31)
	VPSRAD     Op = "VPSRAD"     // VPSRAD $n, a, d: d = a >> n, arithmetic (n > 31 counts as 31)
	// VSCALEFPS b, a, d (AVX-512 F): d = a * 2**floor(b), rounded once; NaN operands give a
	// quiet NaN (a's first), and b = +-Inf gives +-Inf or 0 (NaN for 0*Inf and Inf*0).
	VSCALEFPS Op = "VSCALEFPS"

	// The NaN-propagating max of the pooling kernels: an AVX-512 compare into an opmask, which
	// then lets a merge-masked VMAXPS skip the lanes whose accumulator is already NaN.
	VCMPPS Op = "VCMPPS" // VCMPPS $p, b, a, k (zmm or ymm, opmask k): bit i = a[i] p b[i], under a mask 0 where unselected
)

// Inst is one instruction, or a label definition when Def is set.
type Inst struct {
	Op   Op
	Args []Operand // Go order: sources first, destination last
	Def  Label     // label defined here (Op and Args empty)

	// AVX-512 decorations. Mask is an opmask (K1..K7) printed before the destination operand;
	// lanes it does not select keep their value, or become 0 with Zeroing. Bcst makes the memory
	// operand one float32 broadcast to every lane.
	Mask    Reg
	Zeroing bool
	Bcst    bool
}

// Func is one assembly function: TEXT ·Name(SB), NOSPLIT, $0-ArgSize.
type Func struct {
	Name string
	Doc  string   // the comment line printed above TEXT (the Go signature)
	Args []string // argument names, 8 bytes each, in frame order
	Body []Inst
}

// NewFunc returns an empty function whose ABI0 frame holds args, 8 bytes each (ints and
// pointers: all the kernels take).
func NewFunc(name, doc string, args ...string) *Func {
	return &Func{Name: name, Doc: doc, Args: args}
}

// ArgSize is the size of the argument frame.
func (f *Func) ArgSize() int { return 8 * len(f.Args) }

// Param returns the frame slot of the argument called name. It panics if there is none: the
// builder named an argument its function does not have.
func (f *Func) Param(name string) Param {
	for i, a := range f.Args {
		if a == name {
			return Param{name, 8 * i}
		}
	}
	panic("kasm: " + f.Name + " has no argument " + name)
}

// I appends the instruction op args.
func (f *Func) I(op Op, args ...Operand) {
	f.Body = append(f.Body, Inst{Op: op, Args: args})
}

// Masked appends op args under opmask k (zeroing the unselected lanes when zero): the AVX-512
// form "op args[:n-1], k, args[n-1]".
func (f *Func) Masked(op Op, k Reg, zero bool, args ...Operand) {
	f.Body = append(f.Body, Inst{Op: op, Args: args, Mask: k, Zeroing: zero})
}

// Label defines l at the current position.
func (f *Func) Label(l Label) { f.Body = append(f.Body, Inst{Def: l}) }

// Add appends in as it is (for the decorated AVX-512 forms, such as Bcst).
func (f *Func) Add(in Inst) { f.Body = append(f.Body, in) }

// Stream emits the loop skeleton of a streaming element-wise kernel over CX elements of lanes
// per vector: full(unroll) while at least unroll vectors remain, then full(1) while a vector
// remains; full emits the work on u vectors and advances the pointers and CX. The code then
// falls through at prefix+"tail" with 0 <= CX < lanes; when CX is 0 it jumps to prefix+"done",
// which the caller places after its tail. Before the tail it loads the mask of the first CX
// lanes into mask, from a table of 16 all-ones lanes followed by 16 zero lanes at mem (the
// table's lanes from 16 - CX; AX is clobbered).
func (f *Func) Stream(prefix string, lanes, unroll int, full func(u int), mask Reg, mem Mem) {
	f.I(CMPQ, CX, Imm(int64(unroll*lanes)))
	f.I(JLT, Label(prefix+"one"))
	f.Label(Label(prefix + "loop"))
	full(unroll)
	f.I(CMPQ, CX, Imm(int64(unroll*lanes)))
	f.I(JGE, Label(prefix+"loop"))
	f.Label(Label(prefix + "one"))
	f.I(CMPQ, CX, Imm(int64(lanes)))
	f.I(JLT, Label(prefix+"tail"))
	full(1)
	f.I(JMP, Label(prefix+"one"))
	f.Label(Label(prefix + "tail"))
	f.I(TESTQ, CX, CX)
	f.I(JZ, Label(prefix+"done"))
	// The mask of the first CX lanes: the table's lanes from 16 - CX.
	f.I(MOVQ, Imm(16), AX)
	f.I(SUBQ, CX, AX)
	f.I(VMOVUPS, mem.Idx(AX, 4), mask)
}

// buildAmd64 is the build constraint of the generated assembly and its Go declarations: the
// purego build has neither.
const buildAmd64 = "//go:build amd64 && !purego\n\n"

// AsmHeader returns the first lines of an assembly file that generator writes: the
// generated-code notice, the build constraint and textflag.h.
func AsmHeader(generator string) string {
	return "// Code generated by " + generator + "; DO NOT EDIT.\n\n" + buildAmd64 + "#include \"textflag.h\"\n\n"
}

// DeclHeader returns the first lines of the Go file of pkg that declares the functions of an
// assembly file generator writes: the notice, the build constraint and the package clause.
func DeclHeader(generator, pkg string) string {
	return "// Code generated by " + generator + "; DO NOT EDIT.\n\n" + buildAmd64 + "package " + pkg + "\n"
}

// Package ewasm describes the vector element-wise kernels of package cpu other than the sigmoid
// (package sigasm) in the kasm IR, for AVX2 (ymm) and AVX-512 F (zmm): Clip, HardSigmoid and
// HardSwish (Unary), and Add, Sub, Mul and Div of two same-size operands or of an operand and one
// broadcast value, in both operand orders (Binary). The generator (cpu/ewgen.go) prints them as
// elementwise_ew_amd64.s; the tests of package cpu run the same descriptions in the kasm
// interpreter against Go references of the same operation order, on every machine, and against
// the assembly where the CPU has the ISA. Production code never imports this package.
//
// Every kernel reads nothing outside its operands' first n elements and writes nothing outside
// y[:n]: the last 1..lanes-1 elements go through masked loads and stores (VMASKMOVPS with a mask
// vector from the table, or an opmask made from it by VPTESTMD), as in package sigasm.
package ewasm

import (
	"bytes"
	"fmt"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// The unary kernels' block (c): the scalars at float offsets Par*, then, from float MaskOff, the
// tail mask table (16 lanes of all ones, then 16 of zeros). The binary kernels take the mask
// table itself as c.
const (
	ParA    = 0  // Clip: lo; HardSigmoid: alpha
	ParB    = 1  // Clip: hi; HardSigmoid: beta
	ParOne  = 2  // 1.0
	ParSix  = 3  // 6.0
	ParHalf = 4  // 0.5
	MaskOff = 16 // the mask table
	// UnaryFloats is the size of the unary block, MaskFloats the mask table's.
	UnaryFloats = MaskOff + 32
	MaskFloats  = 32
)

// UnaryArgs and BinaryArgs are the kernels' arguments, in frame order.
var (
	UnaryArgs  = []string{"x", "y", "n", "c"}
	BinaryArgs = []string{"a", "b", "y", "n", "c"}
)

// UnarySig and BinarySig return the Go signature of the kernel called name.
func UnarySig(name string) string { return "func " + name + "(x, y *float32, n int, c *float32)" }
func BinarySig(name string) string {
	return "func " + name + "(a, b, y *float32, n int, c *float32)"
}

// Unroll is the vectors per iteration of the main loops.
const Unroll = 4

// The unary operations.
const (
	Clip        = "clip"        // y = min(max(x, lo), hi): VMAXPS then VMINPS, x when NaN
	HardSigmoid = "hardSigmoid" // y = max(0, min(1, x*alpha + beta)): VMULPS, VADDPS (two roundings), VMINPS, VMAXPS
	HardSwish   = "hardSwish"   // y = x * max(0, min(1, x/6 + 0.5)): VDIVPS, VADDPS, VMINPS, VMAXPS, VMULPS
)

// UnaryOps and BinaryOps list the operations, in the order the files hold them.
var (
	UnaryOps = []string{Clip, HardSigmoid, HardSwish}
	// BinaryOps: "add", "sub", "mul", "div"; "rsub" and "rdiv" are b - a and b / a.
	BinaryOps = []string{"add", "sub", "rsub", "mul", "div", "rdiv"}
)

// suffix returns the level suffix of a kernel name.
func suffix(kind Kind) string {
	if kind == Y {
		return "AVX2"
	}
	return "AVX512"
}

// UnaryName returns the kernel name of op at kind (Y or Z): clipAVX2, hardSwishAVX512, ...
func UnaryName(op string, kind Kind) string { return op + suffix(kind) }

// BinaryName returns the kernel name of op at kind, vv for two vectors, or the vector a and one
// value *b (broadcast): addVVAVX2, rdivVSAVX512, ...
func BinaryName(op string, vs bool, kind Kind) string {
	s := "VV"
	if vs {
		s = "VS"
	}
	return op + s + suffix(kind)
}

type gen struct {
	f     *Func
	kind  Kind
	lanes int
}

func (g *gen) reg(n int) Reg {
	if g.kind == Y {
		return YReg(n)
	}
	return ZReg(n)
}

// loop emits the main loop (Unroll vectors), the one-vector loop and the masked tail around
// body, which computes u vectors from the loads of each pointer in ptrs (advanced by every
// iteration) and stores to DI; CX counts the elements left and DX points at the mask table
// (mask bytes from it).
func (g *gen) loop(ptrs []Reg, mask int, body func(u int, load func(j int, p Reg, d Reg), store func(j int, s Reg))) {
	f, lanes := g.f, g.lanes
	vb := 4 * lanes
	p := fmt.Sprintf("e%d", lanes)
	full := func(u int) {
		body(u, func(j int, ptr Reg, d Reg) { f.I(VMOVUPS, At(j*vb, ptr), d) }, func(j int, s Reg) { f.I(VMOVUPS, s, At(j*vb, DI)) })
		for _, ptr := range append(append([]Reg(nil), ptrs...), DI) {
			f.I(ADDQ, Imm(int64(u*vb)), ptr)
		}
		f.I(SUBQ, Imm(int64(u*lanes)), CX)
	}
	m := g.reg(15)
	f.Stream(p, lanes, Unroll, full, m, At(mask, DX))
	if g.kind == Y {
		body(1, func(_ int, ptr Reg, d Reg) { f.I(VMASKMOVPS, Ptr(ptr), m, d) }, func(_ int, s Reg) { f.I(VMASKMOVPS, s, m, Ptr(DI)) })
	} else {
		k := KReg(1)
		f.I(VPTESTMD, m, m, k)
		body(1, func(_ int, ptr Reg, d Reg) { f.Masked(VMOVUPS, k, true, Ptr(ptr), d) }, func(_ int, s Reg) { f.Masked(VMOVUPS, k, false, s, Ptr(DI)) })
	}
	f.Label(Label(p + "done"))
	f.I(VZEROUPPER)
	f.I(RET)
}

func newGen(name, sig string, kind Kind, args []string) *gen {
	g := &gen{f: NewFunc(name, sig, args...), kind: kind, lanes: 8}
	if kind == Z {
		g.lanes = 16
	}
	return g
}

// UnaryFunc returns the kernel of op (one of UnaryOps) at kind Y (AVX2) or Z (AVX-512): y[i] =
// op(x[i]) for i < n (n >= 0), with the block c (the Par* scalars and the mask table).
func UnaryFunc(op string, kind Kind) *Func {
	name := UnaryName(op, kind)
	g := newGen(name, UnarySig(name), kind, UnaryArgs)
	f := g.f
	f.I(MOVQ, f.Param("x"), SI)
	f.I(MOVQ, f.Param("y"), DI)
	f.I(MOVQ, f.Param("n"), CX)
	f.I(MOVQ, f.Param("c"), DX)
	// Constants: 0 a, 1 b, 2 zero, 3 one, 4 six, 5 half; vectors: V(j) = 6+2j, T(j) = 7+2j.
	pa, pb, zero, one, six, half := g.reg(0), g.reg(1), g.reg(2), g.reg(3), g.reg(4), g.reg(5)
	par := func(i int) Mem { return At(4*i, DX) }
	switch op {
	case Clip, HardSigmoid:
		f.I(VBROADCASTSS, par(ParA), pa)
		f.I(VBROADCASTSS, par(ParB), pb)
	}
	switch op {
	case HardSigmoid, HardSwish:
		if kind == Y {
			f.I(VXORPS, zero, zero, zero)
		} else {
			f.I(VPXORD, zero, zero, zero)
		}
		f.I(VBROADCASTSS, par(ParOne), one)
	}
	if op == HardSwish {
		f.I(VBROADCASTSS, par(ParSix), six)
		f.I(VBROADCASTSS, par(ParHalf), half)
	}
	V := func(j int) Reg { return g.reg(6 + 2*j) }
	T := func(j int) Reg { return g.reg(7 + 2*j) }
	g.loop([]Reg{SI}, 4*MaskOff, func(u int, load func(int, Reg, Reg), store func(int, Reg)) {
		each := func(emit func(j int)) {
			for j := 0; j < u; j++ {
				emit(j)
			}
		}
		each(func(j int) { load(j, SI, V(j)) })
		switch op {
		case Clip:
			each(func(j int) { f.I(VMAXPS, V(j), pa, V(j)) }) // max(lo, x): x when NaN
			each(func(j int) { f.I(VMINPS, V(j), pb, V(j)) })
			each(func(j int) { store(j, V(j)) })
		case HardSigmoid:
			each(func(j int) { f.I(VMULPS, pa, V(j), V(j)) })
			each(func(j int) { f.I(VADDPS, pb, V(j), V(j)) })
			each(func(j int) { f.I(VMINPS, V(j), one, V(j)) })
			each(func(j int) { f.I(VMAXPS, V(j), zero, V(j)) })
			each(func(j int) { store(j, V(j)) })
		case HardSwish:
			each(func(j int) { f.I(VDIVPS, six, V(j), T(j)) })
			each(func(j int) { f.I(VADDPS, half, T(j), T(j)) })
			each(func(j int) { f.I(VMINPS, T(j), one, T(j)) })
			each(func(j int) { f.I(VMAXPS, T(j), zero, T(j)) })
			each(func(j int) { f.I(VMULPS, T(j), V(j), V(j)) })
			each(func(j int) { store(j, V(j)) })
		default:
			panic("ewasm: no unary op " + op)
		}
	})
	return f
}

// arith returns the instruction of op and whether its operands are swapped (b op a).
func arith(op string) (Op, bool) {
	switch op {
	case "add":
		return VADDPS, false
	case "sub":
		return VSUBPS, false
	case "rsub":
		return VSUBPS, true
	case "mul":
		return VMULPS, false
	case "div":
		return VDIVPS, false
	case "rdiv":
		return VDIVPS, true
	}
	panic("ewasm: no binary op " + op)
}

// BinaryFunc returns the kernel of op (one of BinaryOps) at kind: y[i] = a[i] op b[i] for i < n,
// or a[i] op *b when vs, with c the mask table.
func BinaryFunc(op string, vs bool, kind Kind) *Func {
	name := BinaryName(op, vs, kind)
	g := newGen(name, BinarySig(name), kind, BinaryArgs)
	f := g.f
	ins, swap := arith(op)
	f.I(MOVQ, f.Param("a"), SI)
	f.I(MOVQ, f.Param("b"), BX)
	f.I(MOVQ, f.Param("y"), DI)
	f.I(MOVQ, f.Param("n"), CX)
	f.I(MOVQ, f.Param("c"), DX)
	s := g.reg(0)
	ptrs := []Reg{SI, BX}
	if vs {
		f.I(VBROADCASTSS, Ptr(BX), s)
		ptrs = []Reg{SI}
	}
	A := func(j int) Reg { return g.reg(1 + 2*j) }
	B := func(j int) Reg {
		if vs {
			return s
		}
		return g.reg(2 + 2*j)
	}
	g.loop(ptrs, 0, func(u int, load func(int, Reg, Reg), store func(int, Reg)) {
		for j := 0; j < u; j++ {
			load(j, SI, A(j))
			if !vs {
				load(j, BX, B(j))
			}
		}
		for j := 0; j < u; j++ {
			if swap {
				f.I(ins, A(j), B(j), A(j)) // A = B op A
			} else {
				f.I(ins, B(j), A(j), A(j)) // A = A op B
			}
		}
		for j := 0; j < u; j++ {
			store(j, A(j))
		}
	})
	return f
}

// Funcs returns every kernel, in file order.
func Funcs() []*Func {
	var fs []*Func
	for _, kind := range []Kind{Y, Z} {
		for _, op := range UnaryOps {
			fs = append(fs, UnaryFunc(op, kind))
		}
		for _, op := range BinaryOps {
			fs = append(fs, BinaryFunc(op, false, kind), BinaryFunc(op, true, kind))
		}
	}
	return fs
}

// AsmFile returns the assembly file of the kernels.
func AsmFile() *File {
	return &File{
		Header: AsmHeader("ewgen.go"),
		Funcs:  Funcs(),
	}
}

// Decl returns the Go declarations of AsmFile's functions.
func Decl() []byte {
	var b bytes.Buffer
	b.WriteString(DeclHeader("ewgen.go", "cpu"))
	for _, f := range AsmFile().Funcs {
		b.WriteString("\n// " + f.Name + " is described in package internal/ewasm, which documents its arguments.\n//\n//go:noescape\n")
		b.WriteString(f.Doc + "\n")
	}
	return b.Bytes()
}

// Package sigasm describes the vector sigmoid of package cpu in the kasm IR, for AVX2 (ymm) and
// AVX-512 F (zmm). The generator (cpu/siggen.go) prints the descriptions as
// elementwise_sigmoid_amd64.s; the tests of package cpu run the same descriptions in the kasm
// interpreter against a Go reference of the same operation order (sigmoidRef), on every
// machine, and against the assembly where the CPU has the ISA. Production code never imports
// this package.
package sigasm

import (
	"bytes"
	"fmt"
	"math"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// The constants block the kernels read (c): each constant is a row of 16 equal float32 lanes
// (64 bytes), so that both the ymm and the zmm kernels take it as a full-vector memory operand,
// followed by the tail mask table. Row numbers:
const (
	RowSign   = iota // -0 (the sign bit): x = -v
	RowLo            // -87.33654: the clamp
	RowHi            // 88.72283
	RowLog2e         // log2(e)
	RowBias          // 256.5: t = x*log2e + 256.5 is positive, and truncating it rounds
	RowN0            // 256: n = float(trunc(t)) - 256
	RowNLn2Hi        // -0.693359375: r = x + n*(-ln2Hi) + n*(-ln2Lo)
	RowNLn2Lo        // 2.12194440e-4
	RowP0            // the degree-6 polynomial's coefficients, highest first (Cephes expf)
	RowP1
	RowP2
	RowP3
	RowP4
	RowP5
	RowOne  // 1.0
	RowInt1 // the int32 1 (for the exponents of the two halves of 2**n)
	// RowMask starts the tail mask table: 16 lanes of all ones, then 16 of zeros. The 16 (or 8)
	// lanes at lane 16-k have their first k lanes all ones.
	RowMask
	// Floats is the size of the block in float32s.
	Floats = (RowMask + 2) * 16
)

// Values returns the float32 bits of each row's lanes (the rows before RowMask), which the Go
// wrapper of package cpu fills the block with.
func Values() [RowMask]uint32 {
	f := func(x float32) uint32 { return f32bits(x) }
	return [RowMask]uint32{
		RowSign:   0x80000000,
		RowLo:     f(-87.33654),
		RowHi:     f(88.72283),
		RowLog2e:  f(1.44269504088896341),
		RowBias:   f(256.5),
		RowN0:     f(256),
		RowNLn2Hi: f(-0.693359375),
		RowNLn2Lo: f(2.12194440e-4),
		RowP0:     f(1.9875691500e-4),
		RowP1:     f(1.3981999507e-3),
		RowP2:     f(8.3334519073e-3),
		RowP3:     f(4.1665795894e-2),
		RowP4:     f(1.6666665459e-1),
		RowP5:     f(5.0000001201e-1),
		RowOne:    f(1),
		RowInt1:   1,
	}
}

// Args are the arguments of both kernels, in frame order.
var Args = []string{"x", "y", "n", "c"}

// Sig returns the Go signature of the kernel called name.
func Sig(name string) string {
	return "func " + name + "(x, y *float32, n int, c *float32)"
}

// Unroll is the vectors per iteration of the main loop of each width.
const (
	UnrollAVX2   = 3
	UnrollAVX512 = 4
)

// AVX2 returns sigmoidAVX2, and AVX512 sigmoidAVX512: y[i] = 1/(1+e**-x[i]) for i < n (n >= 0)
// with the constants block c (the Row* rows). Nothing outside x[:n] and y[:n] is read or
// written: the last 1..lanes-1 elements go through masked loads and stores (VMASKMOVPS with a
// mask vector from the table, or an opmask made from it by VPTESTMD).
//
// Per vector, in this order (the Go reference sigmoidRef of package cpu is written the same):
//
//	x = min(max(-v, lo), hi)                      (NaN stays NaN)
//	t = fma(x, log2e, 256.5); ti = int32(trunc(t)) (t > 0: floor(x*log2e + 0.5) + 256)
//	n = float(ti) - 256
//	r = fma(n, -ln2Hi, x); r = fma(n, -ln2Lo, r)
//	p = P0; p = fma(r, p, P1) ... fma(r, p, P5)
//	p = p*r; p = fma(r, p, r); p = p + 1          (e**r)
//	h = ti >> 1; s1 = (h-1) << 23; s2 = (ti-h-1) << 23   (2**(n>>1) and 2**(n-n>>1) in the exponent bits)
//	e = p*s1*s2; y = 1/(e+1)                      (VDIVPS: correctly rounded)
func AVX2() *Func { return build("sigmoidAVX2", Y, 8, UnrollAVX2, false) }

// AVX512 returns sigmoidAVX512 (see AVX2).
func AVX512() *Func { return build("sigmoidAVX512", Z, 16, UnrollAVX512, false) }

// SiLUAVX2 returns siluAVX2, and SiLUAVX512 siluAVX512: y[i] = x[i] * sigmoid(x[i]), the
// sigmoid kernel's arithmetic (see AVX2) followed by one VMULPS of x (loaded again) by the
// sigmoid: y = x * (1/(e+1)).
func SiLUAVX2() *Func { return build("siluAVX2", Y, 8, UnrollAVX2, true) }

// SiLUAVX512 returns siluAVX512 (see SiLUAVX2).
func SiLUAVX512() *Func { return build("siluAVX512", Z, 16, UnrollAVX512, true) }

func build(name string, kind Kind, lanes, unroll int, silu bool) *Func {
	f := NewFunc(name, Sig(name), Args...)
	reg := func(n int) Reg {
		if kind == Y {
			return YReg(n)
		}
		return ZReg(n)
	}
	row := func(r int) Mem { return At(64*r, DX) }
	// Registers: constants lo, hi, one; then 4 per vector (A: x then r, B: t then 2**h, C: n
	// then 2**(n-h), D: p).
	lo, hi, one := reg(0), reg(1), reg(2)
	f.I(MOVQ, f.Param("x"), SI)
	f.I(MOVQ, f.Param("y"), DI)
	f.I(MOVQ, f.Param("n"), CX)
	f.I(MOVQ, f.Param("c"), DX)
	f.I(VMOVUPS, row(RowLo), lo)
	f.I(VMOVUPS, row(RowHi), hi)
	f.I(VMOVUPS, row(RowOne), one)
	xor := VXORPS
	if kind == Z {
		xor = VPXORD
	}
	// body emits the computation of u vectors, interleaved, from x+off to y+off; load and store
	// emit the memory accesses of vector j.
	body := func(u int, load func(j int, d Reg), store func(j int, s Reg)) {
		A := func(j int) Reg { return reg(3 + 4*j) }
		B := func(j int) Reg { return reg(4 + 4*j) }
		C := func(j int) Reg { return reg(5 + 4*j) }
		D := func(j int) Reg { return reg(6 + 4*j) }
		each := func(emit func(j int)) {
			for j := 0; j < u; j++ {
				emit(j)
			}
		}
		each(func(j int) { load(j, A(j)) })
		each(func(j int) { f.I(xor, row(RowSign), A(j), A(j)) })
		each(func(j int) { f.I(VMAXPS, A(j), lo, A(j)) }) // max(lo, x): x when NaN
		each(func(j int) { f.I(VMINPS, A(j), hi, A(j)) })
		each(func(j int) { f.I(VMOVUPS, row(RowBias), B(j)) })
		each(func(j int) { f.I(VFMADD231PS, row(RowLog2e), A(j), B(j)) })
		each(func(j int) { f.I(VCVTTPS2DQ, B(j), B(j)) })
		each(func(j int) { f.I(VCVTDQ2PS, B(j), C(j)) })
		each(func(j int) { f.I(VSUBPS, row(RowN0), C(j), C(j)) })
		each(func(j int) { f.I(VFMADD231PS, row(RowNLn2Hi), C(j), A(j)) })
		each(func(j int) { f.I(VFMADD231PS, row(RowNLn2Lo), C(j), A(j)) })
		if kind == Y {
			each(func(j int) { f.I(VPSRLD, Imm(1), B(j), C(j)) })
			each(func(j int) { f.I(VPSUBD, C(j), B(j), B(j)) })
			each(func(j int) { f.I(VPSUBD, row(RowInt1), C(j), C(j)) })
			each(func(j int) { f.I(VPSUBD, row(RowInt1), B(j), B(j)) })
			each(func(j int) { f.I(VPSLLD, Imm(23), C(j), C(j)) })
			each(func(j int) { f.I(VPSLLD, Imm(23), B(j), B(j)) })
		}
		each(func(j int) { f.I(VMOVUPS, row(RowP0), D(j)) })
		for r := RowP1; r <= RowP5; r++ {
			each(func(j int) { f.I(VFMADD213PS, row(r), A(j), D(j)) })
		}
		each(func(j int) { f.I(VMULPS, A(j), D(j), D(j)) })
		each(func(j int) { f.I(VFMADD213PS, A(j), A(j), D(j)) })
		each(func(j int) { f.I(VADDPS, one, D(j), D(j)) })
		if kind == Y {
			each(func(j int) { f.I(VMULPS, C(j), D(j), D(j)) })
			each(func(j int) { f.I(VMULPS, B(j), D(j), D(j)) })
		} else {
			// p * 2**n in one VSCALEFPS (n, in C, is an integer): the same bits as the two
			// multiplications by 2**(h-128) and 2**(n-h+128) (see AVX2), whose first product
			// is always normal, so that only the last rounds, as VSCALEFPS does once. It
			// replaces eight instructions per vector: BenchmarkSigmoid 0.228 -> 0.20-0.22 ns
			// per element on Zen 5 (VDIVPS dominates what is left).
			each(func(j int) { f.I(VSCALEFPS, C(j), D(j), D(j)) })
		}
		each(func(j int) { f.I(VADDPS, one, D(j), D(j)) })
		each(func(j int) { f.I(VDIVPS, D(j), one, D(j)) })
		if silu {
			each(func(j int) { load(j, A(j)) })
			each(func(j int) { f.I(VMULPS, A(j), D(j), D(j)) })
		}
		each(func(j int) { store(j, D(j)) })
	}
	vb := 4 * lanes // bytes per vector
	full := func(u int) {
		body(u, func(j int, d Reg) { f.I(VMOVUPS, At(j*vb, SI), d) }, func(j int, s Reg) { f.I(VMOVUPS, s, At(j*vb, DI)) })
		f.I(ADDQ, Imm(int64(u*vb)), SI)
		f.I(ADDQ, Imm(int64(u*vb)), DI)
		f.I(SUBQ, Imm(int64(u*lanes)), CX)
	}
	p := fmt.Sprintf("s%d", lanes)
	if silu {
		p = fmt.Sprintf("silu%d", lanes)
	}
	mask := reg(15)
	f.Stream(p, lanes, unroll, full, mask, At(64*RowMask, DX))
	if kind == Y {
		body(1, func(_ int, d Reg) { f.I(VMASKMOVPS, Ptr(SI), mask, d) }, func(_ int, s Reg) { f.I(VMASKMOVPS, s, mask, Ptr(DI)) })
	} else {
		k := KReg(1)
		f.I(VPTESTMD, mask, mask, k)
		body(1, func(_ int, d Reg) { f.Masked(VMOVUPS, k, true, Ptr(SI), d) }, func(_ int, s Reg) { f.Masked(VMOVUPS, k, false, s, Ptr(DI)) })
	}
	f.Label(Label(p + "done"))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

// AsmFile returns the assembly file of the sigmoid kernels.
func AsmFile() *File {
	return &File{
		Header: AsmHeader("siggen.go"),
		Funcs:  []*Func{AVX2(), AVX512(), SiLUAVX2(), SiLUAVX512()},
	}
}

// Decl returns the Go declarations of AsmFile's functions.
func Decl() []byte {
	var b bytes.Buffer
	b.WriteString(DeclHeader("siggen.go", "cpu"))
	for _, f := range AsmFile().Funcs {
		what := "sigmoidRow"
		if f.Name == "siluAVX2" || f.Name == "siluAVX512" {
			what = "siluRow"
		}
		b.WriteString("\n// " + f.Name + " is " + what + " in assembly, described in package internal/sigasm, which\n")
		b.WriteString("// documents its arguments.\n//\n//go:noescape\n")
		b.WriteString(Sig(f.Name) + "\n")
	}
	return b.Bytes()
}

func f32bits(x float32) uint32 { return math.Float32bits(x) }

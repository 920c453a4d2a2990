package gemmasm

import (
	"fmt"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// Matrix-vector kernel for the AVX-512 level's 8-row panels of A.
//
// A packed row panel stores element (i, k) at a[k*8 + i], so one zmm load holds two values of
// k for all 8 rows. The kernel multiplies it by the matching x spread as [x[k] x8, x[k+1] x8]:
// lanes 0..7 collect the even k, lanes 8..15 the odd k, and the two halves are added at the
// end. A batch-1 Linear layer is memory bound, so what matters is reading A with full-width
// loads and no wasted lanes: the 16-column micro-kernel the level used before computed 16
// columns to keep one, and ran 2.2x slower than the AVX2 matrix-vector kernel over 4-row
// panels.

// GemvRows is the panel height the matrix-vector kernel is built for.
const GemvRows = 8

// gemvPrefetch is how far ahead of the FMAs' loads of A the main loop prefetches, in bytes.
const gemvPrefetch = 2048

// gemvSpread is the number of VPERMPS index vectors: one per pair of k in a 16-float load of x.
const gemvSpread = 16 / 2

// hasGemv reports whether the shape's file has a matrix-vector kernel: zmm registers and 8-row
// panels, two values of k per register (the only shape the AVX-512 level uses).
func (s Shape) hasGemv() bool { return s.Lanes == 16 && s.MR == GemvRows }

// GemvName is the name of the matrix-vector kernel.
func (s Shape) GemvName() string { return "gemv" + s.ISA() }

// GemvIndex returns the VPERMPS index vectors of the kernel, which the caller passes as its idx
// argument (the Go code has them as a generated array, see Decl): vector j, lane l selects
// x[2j + l/8] of a 16-float load of x.
func GemvIndex() []int32 {
	idx := make([]int32, gemvSpread*16)
	for j := range gemvSpread {
		for l := range 16 {
			idx[j*16+l] = int32(2*j + l/8)
		}
	}
	return idx
}

// gemvDecl is the Go declaration of the kernel and of its index vectors.
func (s Shape) gemvDecl() string {
	idx := GemvIndex()
	lit := ""
	for i, v := range idx {
		switch {
		case i == 0:
		case i%16 == 0:
			lit += ",\n\t"
		default:
			lit += ", "
		}
		lit += fmt.Sprint(v)
	}
	return fmt.Sprintf(`
// %[1]s computes out[i] = sum_{kk<k} a[kk*8+i] * x[kk] for i < 8 (one 8-row panel of A times
// x) in AVX-512 F assembly; idx must be &%[1]sIdx[0].
//
//go:noescape
func %[1]s(k int, a, x *float32, idx *int32, out *float32)

// %[1]sIdx are the VPERMPS index vectors of %[1]s: vector j spreads x[2j] over lanes 0..7
// and x[2j+1] over lanes 8..15.
var %[1]sIdx = [%[2]d]int32{
	%[3]s,
}
`, s.GemvName(), len(idx), lit)
}

// Gemv returns the matrix-vector kernel
//
//	gemvAVX512(k int, a, x *float32, idx *int32, out *float32)
//
// computing out[i] = sum_{kk<k} a[kk*8+i] * x[kk] for i < 8, reading exactly k*8 floats of a
// and k of x (so that a panel at the end of memory is safe).
//
// The main loop takes 16 values of k: one load of x, spread by 8 VPERMPS (index vectors
// Z16..Z23, loaded once from idx) into Z24..Z31, and 8 FMAs reading A from memory into 8
// accumulators Z0..Z7, so that each accumulator is written once per iteration: 8 independent
// FMA chains hide the 4-cycle FMA latency at 2 FMAs per cycle. Each line of A is prefetched
// gemvPrefetch bytes ahead. The k%16 remaining values are
// taken in pairs (one full load of A; x[k] broadcast to all lanes, then x[k+1] to lanes 8..15
// under opmask K2) and a last single k, whose FMA reads only lanes 0..7 of A under K3: merging
// masking leaves the accumulator's upper lanes as they were, and the unselected lanes of A are
// not read (AVX-512 suppresses their faults), so nothing past the panel is touched. The
// accumulators are summed as a tree, then lanes 8..15 (odd k) are added to lanes 0..7.
func (s Shape) Gemv() *Func {
	name := s.GemvName()
	f := NewFunc(name, "func "+name+"(k int, a, x *float32, idx *int32, out *float32)", "k", "a", "x", "idx", "out")
	acc := func(j int) Reg { return ZReg(j) }
	idx := func(j int) Reg { return ZReg(16 + j) }
	spread := func(j int) Reg { return ZReg(24 + j) }
	xv := ZReg(8)
	f.I(MOVQ, f.Param("k"), CX)
	f.I(MOVQ, f.Param("a"), SI)
	f.I(MOVQ, f.Param("x"), DX)
	f.I(MOVQ, f.Param("out"), DI)
	for j := range gemvSpread {
		s.zero(f, acc(j))
	}
	f.I(MOVQ, CX, BX)
	f.I(SHRQ, Imm(4), BX)
	f.I(JZ, Label("tail"))
	f.I(MOVQ, f.Param("idx"), R8)
	for j := range gemvSpread {
		f.I(VMOVUPS, At(64*j, R8), idx(j))
	}
	f.Label("loop16")
	f.I(VMOVUPS, Ptr(DX), xv)
	for j := range gemvSpread {
		f.I(VPERMPS, xv, idx(j), spread(j))
		f.I(VFMADD231PS, At(64*j, SI), spread(j), acc(j))
		// Fetch the line 4 iterations ahead: a 1000x1024 classifier streams 4 MB of A from L3
		// or memory, and this measured 10% faster there (44 against 40 GFLOP/s per core on a
		// shared Zen 5; 512, 1024 and 4096 bytes ahead did no better), the same on an
		// L2-resident 128x1024. Prefetches never fault, so reaching past the panel is safe.
		f.I(PREFETCHT0, At(gemvPrefetch+64*j, SI))
	}
	f.I(ADDQ, Imm(16*4), DX)
	f.I(ADDQ, Imm(16*GemvRows*4), SI)
	f.I(DECQ, BX)
	f.I(JNZ, Label("loop16"))

	f.Label("tail")
	f.I(ANDQ, Imm(15), CX)
	f.I(JZ, Label("reduce"))
	f.I(MOVQ, CX, BX)
	f.I(SHRQ, Imm(1), BX)
	f.I(JZ, Label("single"))
	f.I(MOVQ, Imm(0xFF00), R9)
	f.I(KMOVW, R9, KReg(2))
	f.Label("pair")
	f.I(VBROADCASTSS, Ptr(DX), xv)
	f.Masked(VBROADCASTSS, KReg(2), false, At(4, DX), xv)
	f.I(VFMADD231PS, Ptr(SI), xv, acc(0))
	f.I(ADDQ, Imm(2*4), DX)
	f.I(ADDQ, Imm(2*GemvRows*4), SI)
	f.I(DECQ, BX)
	f.I(JNZ, Label("pair"))

	f.Label("single")
	f.I(ANDQ, Imm(1), CX)
	f.I(JZ, Label("reduce"))
	f.I(MOVQ, Imm(0x00FF), R9)
	f.I(KMOVW, R9, KReg(3))
	f.I(VBROADCASTSS, Ptr(DX), xv)
	f.Masked(VFMADD231PS, KReg(3), false, Ptr(SI), xv, acc(0))

	f.Label("reduce")
	for w := gemvSpread / 2; w >= 1; w /= 2 {
		for j := range w {
			f.I(VADDPS, acc(j+w), acc(j), acc(j))
		}
	}
	f.I(VEXTRACTF64X4, Imm(1), acc(0), YReg(1))
	f.I(VADDPS, YReg(1), YReg(0), YReg(0))
	f.I(VMOVUPS, YReg(0), Ptr(DI))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

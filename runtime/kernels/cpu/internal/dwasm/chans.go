package dwasm

import (
	"fmt"

	. "github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// The channel kernels (ChansAVX512) compute whole output channels of a depthwise convolution of
// stride 1 or 2, many channels a call: per channel, the padded (stride 2: phase-split) copy of
// the input channel is written into a scratch plane by a table of rows, the taps run over one
// flat row of the plane, and each output vector is compacted (VCOMPRESSPS) to drop the padding
// columns and stored straight into the output channel. On 7x7 and 14x14 planes the per-row work
// that package cpu's Go code did around dwRowsAVX512 (copies in and out, a call per row of the
// stride-2 split) cost four to six times the taps; here it is a few vector moves a row.

// ChansArgs are the arguments of the channel kernels, in frame order:
//
//	x      the input channels, h rows of rowlen bytes each, contiguous
//	y      the output channels, contiguous (each channel the sum of vec's byte counts)
//	w      the weights, taps float32s per channel, in the order of off
//	b      the biases, one float32 per channel
//	nch    the number of channels (>= 1)
//	p      the two scratch planes, ps bytes apart: zero wherever the row table writes no pixel,
//	       before the call; the kernel writes only pixels and zeros into them
//	ps     the bytes from the first plane to the second
//	rows   per input row two int64 byte offsets into p: where its first chunk's vector is
//	       stored (stride 2: its even columns') and, stride 2, where its odd columns' is
//	h      the number of input rows (>= 1)
//	rowlen the bytes of one input row
//	chunks per chunk of a row (16 floats; stride 2: 32) its load masks as uint64s (low 16 bits
//	       used): one (stride 2: two, the chunk's first and second 16 floats)
//	nc     the chunks per row (>= 1)
//	off    the taps' offsets in p in floats (int64 each, >= 0)
//	taps   the number of taps (>= 1)
//	vec    per output vector (16 consecutive floats of the flat row) three uint64s: the lanes
//	       kept (the compress mask), the store mask (the first as many lanes), the bytes stored
//	nvec   the number of output vectors (>= 1)
//	c      the coefficient block: the floor, then the ceiling (float32 each)
//	idx    the permutation 0, 2, ..., 14, 1, 3, ..., 15 (16 uint32s; stride 2 only)
var ChansArgs = []string{"x", "y", "w", "b", "nch", "p", "ps", "rows", "h", "rowlen", "chunks", "nc", "off", "taps", "vec", "nvec", "c", "idx"}

// ChansSig returns the Go signature of the channel kernel called name.
func ChansSig(name string) string {
	return "func " + name + "(x, y, w, b *float32, nch int, p *float32, ps int, rows *int, h, rowlen int, chunks *uint64, nc int, off *int, taps int, vec *uint64, nvec int, c *float32, idx *uint32)"
}

// ChansUnroll is the vectors per block of the main loop of the channel kernels; the last
// 0..ChansUnroll-1 vectors run as one block.
const ChansUnroll = 8

// ChansName returns the name of the channel kernel of stride s.
func ChansName(s int) string { return fmt.Sprintf("dwChansS%dAVX512", s) }

// ChansAll returns the channel kernels of strides 1 and 2. (Kernels for 9 and 25 taps with the
// tap loop unrolled measured no faster on Zen 5: the taps' loads, three in four of them across
// two cache lines, bound the loop, not its bookkeeping.)
func ChansAll() []*Func { return []*Func{ChansAVX512(1), ChansAVX512(2)} }

// ChansAVX512 returns the channel kernel of stride s (1 or 2, both directions), dwChansGo of
// package cpu in AVX-512 F: for each channel, in this order,
//
//	fill: for each input row r and chunk j of it, load the chunk's floats (masked loads,
//	      zeroing: nothing past the row is read) and store 16 floats at p + rows[2r] + 64j
//	      (p: the first plane for even channels, the second for odd ones);
//	      stride 2 splits the chunk's 32 floats into 16 even and 16 odd columns first
//	      (VPERMPS, VSHUFF32X4, as SplitAVX512) and stores the odd ones at p + rows[2r+1] + 64j
//	taps: for each vector i of the flat row, lane l: v = b; v += w[0]*p[off[0] + 16i + l]; ...
//	      (separate VMULPS and VADDPS, taps in table order: the order of dwRowsAVX512), then
//	      v = max(floor, v), v = min(v, ceil)
//	store: the lanes of vec's compress mask packed to the front (VCOMPRESSPS), the first ones
//	      stored at y (masked store), y advanced by vec's byte count
//
// The lanes of a stored chunk past the row are zeros (the loads zero them), so the fill writes
// pixels where the padded plane has pixels and zeros elsewhere: the caller's table must order
// the stores so that a later row's pixels are never overwritten (rows in order, each phase
// plane followed by 16 floats of slack). The flat row reads whole vectors: each plane must hold
// max(off) + 16*nvec floats.
func ChansAVX512(s int) *Func {
	name := ChansName(s)
	f := NewFunc(name, ChansSig(name), ChansArgs...)
	// GPRs: SI the next input row to copy, DI the output, R9 the channel's weights, R10 its
	// bias, R12 the channels left, R13 the plane being filled, R15 the plane the taps read.
	// Fill: R8 the row table, DX the rows left, AX and BX the stores, R11 the chunk masks, CX
	// the chunks left, R14 scratch. Taps: AX the flat row's vector, R11 the vector table, CX
	// the vectors left, R8 the offsets, DX the tap, BX its offset, R14 scratch.
	// Vector registers: Z0 the tap's weight, Z1 the bias, Z2 the floor, Z3 the ceiling, Z4 the
	// split permutation, Z5.. products, Z13.. accumulators, Z21..Z24 the fill's.
	tmp := func(j int) Reg { return ZReg(5 + j) }
	acc := func(j int) Reg { return ZReg(5 + ChansUnroll + j) }
	f.I(MOVQ, f.Param("c"), AX)
	f.I(VBROADCASTSS, At(0, AX), ZReg(2))
	f.I(VBROADCASTSS, At(4, AX), ZReg(3))
	if s == 2 {
		f.I(MOVQ, f.Param("idx"), AX)
		f.I(VMOVUPS, Ptr(AX), ZReg(4))
	}
	f.I(MOVQ, f.Param("x"), SI)
	f.I(MOVQ, f.Param("y"), DI)
	f.I(MOVQ, f.Param("w"), R9)
	f.I(MOVQ, f.Param("b"), R10)
	f.I(MOVQ, f.Param("nch"), R12)
	f.I(MOVQ, f.Param("p"), R13)
	f.I(MOVQ, R13, R15)
	f.I(ADDQ, f.Param("ps"), R15)
	// A row of one chunk (stride 1: up to 16 floats, stride 2: 32; the 7x7 to 28x28 planes)
	// keeps its load masks in K3 and K4 for the whole call and runs a loop without the chunk
	// loop: on a 7x7 plane that loop's bookkeeping was a third of the channel's instructions.
	f.I(MOVQ, f.Param("chunks"), R11)
	f.I(MOVQ, At(0, R11), R14)
	f.I(KMOVW, R14, KReg(3))
	if s == 2 {
		f.I(MOVQ, At(8, R11), R14)
		f.I(KMOVW, R14, KReg(4))
	}

	// split stores the 32 floats of Z21 (first 16) and Z22 (next 16) as 16 evens at AX and 16
	// odds at BX.
	split := func() {
		f.I(VPERMPS, ZReg(21), ZReg(4), ZReg(21))                // evens of the first 16 low, odds high
		f.I(VPERMPS, ZReg(22), ZReg(4), ZReg(22))                // the same of the next 16
		f.I(VSHUFF32X4, Imm(0x44), ZReg(22), ZReg(21), ZReg(23)) // the 16 evens
		f.I(VSHUFF32X4, Imm(0xEE), ZReg(22), ZReg(21), ZReg(24)) // the 16 odds
		f.I(VMOVUPS, ZReg(23), Ptr(AX))
		f.I(VMOVUPS, ZReg(24), Ptr(BX))
	}
	// fill copies the input channel at SI into the plane at R13 and leaves SI at the next one.
	fill := func(sfx string) {
		l := func(n string) Label { return Label(n + sfx) }
		f.I(MOVQ, f.Param("rows"), R8)
		f.I(MOVQ, f.Param("h"), DX)
		// rowStart sets AX (and BX) to where the row's chunks go.
		rowStart := func() {
			f.I(MOVQ, R13, AX)
			if s == 2 {
				f.I(MOVQ, AX, BX)
				f.I(ADDQ, At(8, R8), BX)
			}
			f.I(ADDQ, At(0, R8), AX)
		}
		f.I(CMPQ, f.Param("nc"), Imm(1))
		f.I(JNE, l("row"))
		f.Label(l("row1"))
		rowStart()
		f.Masked(VMOVUPS, KReg(3), true, Ptr(SI), ZReg(21))
		if s == 1 {
			f.I(VMOVUPS, ZReg(21), Ptr(AX))
		} else {
			f.Masked(VMOVUPS, KReg(4), true, At(64, SI), ZReg(22))
			split()
		}
		f.I(ADDQ, f.Param("rowlen"), SI)
		f.I(ADDQ, Imm(16), R8)
		f.I(DECQ, DX)
		f.I(JNZ, l("row1"))
		f.I(JMP, l("filled"))

		// Rows of several chunks: SI walks the chunks, then steps back to the row's start.
		f.Label(l("row"))
		rowStart()
		f.I(MOVQ, f.Param("chunks"), R11)
		f.I(MOVQ, f.Param("nc"), CX)
		f.Label(l("chunk"))
		f.I(MOVQ, At(0, R11), R14)
		f.I(KMOVW, R14, KReg(1))
		if s == 1 {
			f.Masked(VMOVUPS, KReg(1), true, Ptr(SI), ZReg(21))
			f.I(VMOVUPS, ZReg(21), Ptr(AX))
			f.I(ADDQ, Imm(64), SI)
			f.I(ADDQ, Imm(8), R11)
		} else {
			f.I(MOVQ, At(8, R11), R14)
			f.I(KMOVW, R14, KReg(2))
			f.Masked(VMOVUPS, KReg(1), true, Ptr(SI), ZReg(21))
			f.Masked(VMOVUPS, KReg(2), true, At(64, SI), ZReg(22))
			split()
			f.I(ADDQ, Imm(64), BX)
			f.I(ADDQ, Imm(128), SI)
			f.I(ADDQ, Imm(16), R11)
		}
		f.I(ADDQ, Imm(64), AX)
		f.I(DECQ, CX)
		f.I(JNZ, l("chunk"))
		f.I(MOVQ, f.Param("nc"), R14)
		f.I(SHLQ, Imm(int64(5+s)), R14) // the chunks' bytes: 64 (stride 2: 128) each
		f.I(SUBQ, R14, SI)
		f.I(ADDQ, f.Param("rowlen"), SI)
		f.I(ADDQ, Imm(16), R8)
		f.I(DECQ, DX)
		f.I(JNZ, l("row"))
		f.Label(l("filled"))
	}

	// The channels are software-pipelined over two planes: the next channel's copy is made
	// before this channel's taps, so that the taps never read a plane whose stores are still in
	// flight (a 64-byte load straddling two recent stores waits for them), and the out-of-order
	// core can start a channel while the dependent sums of the last one (25 adds for a 5x5
	// kernel, on as few as 4 vectors on a 7x7 plane) finish.
	fill("0")
	f.Label("chan")
	f.I(MOVQ, R13, R14) // swap: R15 the plane just filled, R13 the other
	f.I(MOVQ, R15, R13)
	f.I(MOVQ, R14, R15)
	f.I(CMPQ, R12, Imm(1))
	f.I(JEQ, Label("taps"))
	fill("1")

	// The taps.
	f.Label("taps")
	f.I(VBROADCASTSS, Ptr(R10), ZReg(1))
	f.I(MOVQ, R15, AX)
	f.I(MOVQ, f.Param("vec"), R11)
	f.I(MOVQ, f.Param("nvec"), CX)
	f.I(MOVQ, f.Param("off"), R8)
	loops := 0
	body := func(u int) {
		for j := 0; j < u; j++ {
			f.I(VMOVUPS, ZReg(1), acc(j))
		}
		f.I(MOVQ, Imm(0), DX)
		loop := Label(fmt.Sprintf("tap%d", loops))
		loops++
		f.Label(loop)
		f.I(MOVQ, Mem{Base: R8, Index: DX, Scale: 8}, BX)
		f.I(VBROADCASTSS, Mem{Base: R9, Index: DX, Scale: 4}, ZReg(0))
		for j := 0; j < u; j++ {
			f.I(VMULPS, Mem{Base: AX, Index: BX, Scale: 4, Disp: int64(64 * j), ZeroDisp: true}, ZReg(0), tmp(j))
			f.I(VADDPS, tmp(j), acc(j), acc(j)) // acc + w_k*x_k
		}
		f.I(INCQ, DX)
		f.I(CMPQ, DX, f.Param("taps"))
		f.I(JLT, loop)
		for j := 0; j < u; j++ {
			f.I(VMAXPS, acc(j), ZReg(2), acc(j)) // floor > v ? floor : v
			f.I(VMINPS, acc(j), ZReg(3), acc(j)) // ceil < v ? ceil : v (NaN stays)
			f.I(MOVQ, At(24*j, R11), R14)
			f.I(KMOVW, R14, KReg(1))
			f.Masked(VCOMPRESSPS, KReg(1), false, acc(j), acc(j))
			f.I(MOVQ, At(24*j+8, R11), R14)
			f.I(KMOVW, R14, KReg(2))
			f.Masked(VMOVUPS, KReg(2), false, acc(j), Ptr(DI))
			f.I(ADDQ, At(24*j+16, R11), DI)
		}
		f.I(ADDQ, Imm(int64(64*u)), AX)
		f.I(ADDQ, Imm(int64(24*u)), R11)
		f.I(SUBQ, Imm(int64(u)), CX)
	}
	f.I(CMPQ, CX, Imm(ChansUnroll))
	f.I(JLT, Label("rest"))
	f.Label("block")
	body(ChansUnroll)
	f.I(CMPQ, CX, Imm(ChansUnroll))
	f.I(JGE, Label("block"))
	// The last 1..ChansUnroll-1 vectors run as one block of their number: each output's sum
	// is a chain of dependent adds, and a 7x7 plane has only 4 or 5 vectors, so a block split
	// as 4+1 would run a lone chain after the others.
	f.Label("rest")
	for u := ChansUnroll - 1; u >= 1; u-- {
		f.I(CMPQ, CX, Imm(int64(u)))
		f.I(JEQ, Label(fmt.Sprintf("rest%d", u)))
	}
	f.I(JMP, Label("next"))
	for u := ChansUnroll - 1; u >= 1; u-- {
		f.Label(Label(fmt.Sprintf("rest%d", u)))
		body(u)
		f.I(JMP, Label("next"))
	}
	f.Label("next")
	f.I(MOVQ, f.Param("taps"), R14)
	f.I(LEAQ, Mem{Base: R9, Index: R14, Scale: 4}, R9)
	f.I(ADDQ, Imm(4), R10)
	f.I(DECQ, R12)
	f.I(JNZ, Label("chan"))
	f.I(VZEROUPPER)
	f.I(RET)
	return f
}

package cpu

import (
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// kernels is the code of one instruction-set level (see package isa) for the kernels of this
// package that have more than one implementation: the Winograd transforms, the pooling rows,
// training's elementwise kernels, the sigmoid and the other element-wise kernels, and the GEMM's micro-kernels and packer. There is one
// immutable table per level, built at start-up. A kernel object (Conv2D, ConvCM, Pool2D) holds
// the table it was built with, so that the level is part of its prepared state: the process runs
// the selected level (active) and a test runs any level the machine has, side by side, with no
// global switch.
//
// One table holds all the kernels of a level because they must agree with one another: the
// assembly computes a BN prologue's x*scale + shift with one rounding (FMA), the Go code with
// two, and a BN-ReLU output stored by AffineRows must be the number that a convolution's packer
// (or ConvCM's stage) recomputes from the same input.
//
// Each function is called once per row, tile or channel, never per element, so the indirect
// call costs nothing measurable. Arguments are heap slices or values: a pointer to the caller's
// stack passed through a func value would make the compiler move that memory to the heap.
type kernels struct {
	level isa.Level     // the level whose table this is (avx512: see isa.AVX512.Describe for which kernels are AVX-512)
	gemm  *gemm.Kernels // the micro-kernels and B packer, of the same level

	// winoInput is inputSegment's transform of input channels [c0, c1) (see winoInputGo).
	winoInput func(f *winoForm, item []float32, hw int, off [6]int, zeros []float32, ulo, nu, n int, v []float32, ps, ldv int, rows []float32, wt, c0, c1 int)
	// winoOut is the output transform of n tiles of one channel (see winoOutGo); s is scratch
	// for 192 floats.
	winoOut func(m int, mm []float32, ps, n int, y []float32, ldy int, bias float32, relu bool, s []float32)

	// maxRows sets dst[x] = max over r < rows of src[off + r*step + x] (see maxRowsGo; the
	// AVX2 row kernel that maxTaps loops over at that level).
	maxRows func(dst, src []float32, off, step, rows int)
	// maxCols sets dst[k] = max over j < taps of src[k*s + j*d] (see maxColsGo).
	maxCols func(dst, src []float32, s, taps, d int)
	// maxTaps sets dst[r*dp + x] = max over t < taps of src[r*sadv + t*step + x] for r < rows,
	// x < n: both passes of a max pool over a plane (see maxTapsGo, maxPlane).
	maxTaps func(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int)
	// maxTaps2 sets dst[r*dp + k] = max over t < taps of src[r*sadv + 2k + t*step]: the stride-2
	// horizontal pass (see maxTaps2Go).
	maxTaps2 func(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int)
	// avg2x2Row is one output row of the 2x2 average pool with a prologue (see avg2x2RowGo).
	avg2x2Row func(dst, r0, r1 []float32, scale, shift, floor float32)
	// avg2x2Plane is rows output rows of n floats, dp apart in dst, of the 2x2 average pool
	// with a prologue over input rows wd apart in src: avg2x2Row on every row (see
	// avg2x2PlaneRows; the AVX-512 kernel gives the AVX2 one's bits).
	avg2x2Plane func(dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32)

	// rowStats returns the mean and biased variance of row (see rowStatsGo).
	rowStats func(row []float32) (mean, variance float64)
	// rowSum returns the float64 sum of row (see rowSumGo).
	rowSum func(row []float32) float64
	// affineRow writes y[i] = act(x[i]*a + b) (see affineRowGo).
	affineRow func(x, y []float32, a, b float32, relu bool)
	// stage writes dst[p*dstStride + c] = act(src[c*srcStride + p]*scale[c] + shift[c]) for
	// cnt <= 8 channels c and n pixels p (see stageGo).
	stage func(dst []float32, dstStride int, src []float32, srcStride, cnt, n int, scale, shift [8]float32, relu bool)
	// bnSums returns sum dz and sum dz*x (see bnSumsGo).
	bnSums func(x, dy []float32, a, b float32, relu bool) (s1, s2 float64)
	// bnDX writes (acc: adds) a*dz + cx*(x-m) + c0 into dx (see bnDXGo).
	bnDX func(x, dy, dx []float32, a, b, cx, c0, m float32, relu, acc bool)

	// sigmoid writes out[i] = 1/(1+e**-in[i]) (see sigmoidRow; the assembly fuses multiply-adds,
	// so its bits may differ from sigmoidRow's, within the same 2e-7 of the float64 sigmoid).
	sigmoid func(in, out []float32)
	// silu writes out[i] = in[i] * sigmoid(in[i]) (see siluRow).
	silu func(in, out []float32)
	// clip, hardSigmoid and hardSwish are Unary's functions with the block c of their
	// parameters (see Unary.unaryBlock, clipRow, hardSigmoidRow, hardSwishRow).
	clip, hardSigmoid, hardSwish func(in, out, c []float32)
	// binary is Binary's arithmetic on one run: b has len(a) elements, or one that every
	// element of a meets (see binaryGo). The value is passed in b, not as a float32 whose
	// address the assembly call would take: through a func value that address escapes, and
	// every call allocated.
	binary func(f BinaryFunc, bFirst bool, a, b, out []float32)

	// dwRows is one output channel of a depthwise convolution, all its rows, any number of taps
	// (see dwRowsGo; the assembly gives the same bits).
	dwRows func(dst, src, w []float32, b float32, cl dwClamp, g dwGeom)
	// dwSplit splits a row into its even (e) and odd (o) columns (see dwSplitGo).
	dwSplit func(e, o, x []float32)
	// dwChans computes nch whole depthwise channels on a small plane, padded copy included
	// (see dwChansGo; the assembly gives the same bits), and dwChanPlanes says whether the
	// level's depthwise convolutions take that path where it applies (Conv2D.dwChanGeom):
	// where it measured faster than the row kernel.
	dwChans      func(pl *dwPlan, x, y, w, b []float32, nch int, p []float32, cl dwClamp)
	dwChanPlanes bool
}

// goTable is the portable code, which defines what the others compute.
var goTable = kernels{
	level:     isa.Generic,
	gemm:      gemm.KernelsFor(isa.Generic),
	winoInput: winoInputGo,
	winoOut:   winoOutGo,
	maxRows:   maxRowsGo,
	maxCols:   maxColsGo,
	avg2x2Row: avg2x2RowGo,
	rowStats:  rowStatsGo,
	rowSum:    rowSumGo,
	affineRow: affineRowGo,
	stage:     stageGo,
	bnSums:    bnSumsGo,
	bnDX:      bnDXGo,
	sigmoid:   sigmoidRow,

	silu:        siluRow,
	clip:        clipRow,
	hardSigmoid: hardSigmoidRow,
	hardSwish:   hardSwishRow,
	binary:      binaryGo,
	dwRows:      dwRowsGo,
	dwSplit:     dwSplitGo,
	// The Go channel path is slower than the Go rows (0.3x to 1.4x their speed on Zen 5): it
	// is the reference of the assembly, and runs only in tests.
	dwChans:      dwChansGo,
	dwChanPlanes: false,

	maxTaps:     maxTapsGo,
	maxTaps2:    maxTaps2Go,
	avg2x2Plane: avg2x2PlaneGo,
}

// active is the table of the level this process runs at (isa.Selected), chosen once.
var active = tableFor(isa.Selected().Level)

// tableFor returns the kernels of level l (isa.Pick: the highest this build has at or below l;
// a level above what the CPU supports panics).
func tableFor(l isa.Level) *kernels { return isa.Pick("cpu", l, &goTable, avx2Table, avx512Table) }

// orActive returns k, or the process's table when k is nil (a Pool2D built as a literal).
func orActive(k *kernels) *kernels {
	if k == nil {
		return active
	}
	return k
}

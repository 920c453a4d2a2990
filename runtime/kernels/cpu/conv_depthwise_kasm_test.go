package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/dwasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// The tests in this file run the depthwise row kernels as package dwasm describes them in the
// kasm interpreter, on every machine and in every build, bit for bit against dwRowsRef (the
// operation order of dwRowsGo, one output at a time) for 1x1, 3x3, 5x5, 7x7 and 3x5 kernels at
// strides 1 and 2 over phase-split planes; where the CPU has the level (dwRowsHW,
// conv_depthwise_kasm_amd64_test.go) the assembly runs through its Go wrapper on the same inputs
// and must agree with the interpreter bit for bit.

// dwRowsRef is output column i of row oy: b + w[0]*x_0 + w[1]*x_1 + ... left to right, each
// product and sum rounded to float32, then the clamp (lo > v gives lo, hi < v gives hi; -0 and
// NaN stay).
func dwRowsRef(src, w []float32, b float32, cl dwClamp, g dwGeom, oy, i int) float32 {
	v := b
	for k, o := range g.off {
		v = float32(v + float32(w[k]*src[o+oy*g.wq+i]))
	}
	if cl.lo > v {
		v = cl.lo
	}
	if cl.hi < v {
		v = cl.hi
	}
	return v
}

// dwClamps are the clamps the kernels are checked with: none, ReLU, a ReLU6 whose ceiling the
// N(0,1) sums cross, a clip on both sides, and one whose floor is above its ceiling (ONNX's Clip
// then gives the ceiling everywhere: the order of the two matters).
var dwClamps = []dwClamp{dwNoClamp, {0, float32(math.Inf(1))}, {0, 0.75}, {-0.5, 0.5}, {0.5, -0.5}}

// dwCase is one kernel input: the geometry of a kh x kw depthwise channel at stride s over its
// phase-split padded plane (as depthwiseTask lays it out), the input cut to exactly the floats
// the taps read.
type dwCase struct {
	g   dwGeom
	src []float32
	w   []float32
	b   float32
	cl  dwClamp
}

// newDWCase returns a case of oh rows of ow outputs. negZero makes the input all zeros, the
// weights negative and the bias -0, so that every output is -0, which must survive ReLU.
func newDWCase(r *rand.Rand, ow, oh, kh, kw, s int, cl dwClamp, negZero bool) dwCase {
	var g dwGeom
	g.ow, g.oh = ow, oh
	hp, wp := (oh-1)*s+kh, (ow-1)*s+kw
	pg := padGeom{hq: (hp + s - 1) / s, wq: (wp + s - 1) / s}
	pg.chan_ = s * s * pg.hq * pg.wq
	g.wq = pg.wq
	g.off = dwTapOffsets(nil, kh, kw, s, s, 1, 1, pg)
	n := slices.Max(g.off) + (oh-1)*g.wq + ow
	if ow == 0 || oh == 0 {
		n = 0
	}
	c := dwCase{g: g, src: make([]float32, n), w: make([]float32, kh*kw), b: float32(r.NormFloat64()), cl: cl}
	for i := range c.src {
		c.src[i] = float32(r.NormFloat64())
		if i%17 == 3 || negZero {
			c.src[i] = 0
		}
	}
	for i := range c.w {
		c.w[i] = float32(r.NormFloat64())
		if negZero {
			c.w[i] = -float32(math.Abs(float64(c.w[i]))) - 0.5
		}
	}
	if negZero || r.IntN(4) == 0 {
		c.b = float32(math.Copysign(0, -1)) // -0: a -0 sum must stay -0 under ReLU
	}
	return c
}

// runDW runs f in the interpreter on c, every slice mapped exactly (an access past a row or past
// the plane faults), and returns the output, which starts as garbage.
func runDW(f *kasm.Func, c dwCase) ([]float32, error) {
	y := make([]float32, c.g.oh*c.g.ow)
	for i := range y {
		y[i] = 7
	}
	off := make([]int64, len(c.g.off))
	for k, o := range c.g.off {
		off[k] = int64(o)
	}
	coef := make([]float32, dwasm.Coefs)
	coef[dwasm.CoefBias] = c.b
	coef[dwasm.CoefFloor] = c.cl.lo
	coef[dwasm.CoefCeil] = c.cl.hi
	mask := make([]uint32, 32)
	for i := range 16 {
		mask[i] = 0xFFFFFFFF
	}
	var mem kasm.Memory
	m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 26}
	for i := range m.V {
		for l := range m.V[i] {
			m.V[i][l] = math.Float32bits(float32(i*16 + l))
		}
	}
	err := m.Run(f, mem.Map("x", kasm.Bytes(c.src)), mem.Map("y", kasm.Bytes(y)), uint64(c.g.ow), uint64(c.g.oh),
		uint64(4*(c.g.wq-c.g.ow)), mem.Map("off", kasm.Bytes(off)), mem.Map("w", kasm.Bytes(c.w)), uint64(len(c.w)),
		mem.Map("c", kasm.Bytes(coef)), mem.Map("mask", kasm.Bytes(mask)))
	return y, err
}

// dwLens are the row lengths the kernels are checked on: every tail of both widths, one and
// several iterations of the unrolled loops, and the row lengths of MobileNet and EfficientNet.
func dwLens() []int {
	var ls []int
	for n := 0; n <= 40; n++ {
		ls = append(ls, n)
	}
	return append(ls, 56, 63, 64, 65, 112, 113)
}

// dwKernels are the kernel sizes checked: kh, kw.
var dwKernels = [][2]int{{1, 1}, {3, 3}, {5, 5}, {7, 7}, {3, 5}}

// checkDW runs f on every length, kernel size, stride and clamp (quick: fewer lengths
// for the larger kernels), and returns the first disagreement with dwRowsRef, with dwRowsGo, or
// with the hardware (hw, when not nil).
func checkDW(f *kasm.Func, hw func(dst, src, w []float32, b float32, cl dwClamp, g dwGeom), quick bool) error {
	r := rand.New(rand.NewPCG(61, 62))
	for _, k := range dwKernels {
		for _, n := range dwLens() {
			if quick && k != [2]int{3, 3} && n > 17 && n != 64 && n != 65 {
				continue
			}
			for _, stride := range []int{1, 2} {
				for _, cl := range dwClamps {
					oh := 1 + (n+stride)%3
					negZero := n%11 == 5
					c := newDWCase(r, n, oh, k[0], k[1], stride, cl, negZero)
					where := fmt.Sprintf("%dx%d, n = %d, rows = %d, stride %d, clamp %v, -0 %v", k[0], k[1], n, oh, stride, cl, negZero)
					if err := checkDWCase(f, hw, c); err != nil {
						return fmt.Errorf("%s: %v", where, err)
					}
				}
			}
		}
	}
	return nil
}

func checkDWCase(f *kasm.Func, hw func(dst, src, w []float32, b float32, cl dwClamp, g dwGeom), c dwCase) error {
	got, err := runDW(f, c)
	if err != nil {
		return err
	}
	goOut := make([]float32, len(got))
	if len(goOut) > 0 {
		dwRowsGo(goOut, c.src, c.w, c.b, c.cl, c.g)
	}
	n := c.g.ow
	for oy := range c.g.oh {
		for i := range n {
			want := dwRowsRef(c.src, c.w, c.b, c.cl, c.g, oy, i)
			if g := got[oy*n+i]; math.Float32bits(g) != math.Float32bits(want) {
				return fmt.Errorf("interpreter: (%d, %d) = %g (%#x), dwRowsRef %g (%#x)", oy, i, g, math.Float32bits(g), want, math.Float32bits(want))
			}
			if g := goOut[oy*n+i]; math.Float32bits(g) != math.Float32bits(want) {
				return fmt.Errorf("dwRowsGo: (%d, %d) = %g, dwRowsRef %g", oy, i, g, want)
			}
		}
	}
	if hw != nil {
		y := make([]float32, len(got)+1)
		y[len(got)] = 42 // a guard past the end
		hw(y[:len(got)], c.src, c.w, c.b, c.cl, c.g)
		for i := range got {
			if math.Float32bits(y[i]) != math.Float32bits(got[i]) {
				return fmt.Errorf("hardware vs interpreter at %d: %#x, interpreter %#x", i, math.Float32bits(y[i]), math.Float32bits(got[i]))
			}
		}
		if y[len(got)] != 42 {
			return fmt.Errorf("hardware wrote past the end")
		}
	}
	return nil
}

func dwFuncs() map[string]*kasm.Func {
	return map[string]*kasm.Func{"dwRowsAVX2": dwasm.AVX2(), "dwRowsAVX512": dwasm.AVX512()}
}

// TestDepthwiseKasm: each kernel in the interpreter matches dwRowsRef bit for bit on every tail
// length, kernel size and stride, and the assembly, where this CPU runs it, matches the
// interpreter.
func TestDepthwiseKasm(t *testing.T) {
	for name, f := range dwFuncs() {
		hw := dwRowsHW(name)
		if err := checkDW(f, hw, testing.Short()); err != nil {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: interpreter agrees with dwRowsRef; hardware checked: %v", name, hw != nil)
		}
	}
}

// TestDepthwiseKasmFlat: the flat rows of depthwiseTask.channel (one row of (oh-1)*wq + ow
// columns over the whole plane) at the narrow planes of MobileNet and EfficientNet.
func TestDepthwiseKasmFlat(t *testing.T) {
	r := rand.New(rand.NewPCG(63, 64))
	for name, f := range dwFuncs() {
		hw := dwRowsHW(name)
		for _, k := range dwKernels {
			for _, hw0 := range []int{7, 14, 28} {
				for _, s := range []int{1, 2} {
					oh := (hw0-1)/s + 1
					c := newDWCase(r, oh, oh, k[0], k[1], s, dwClamp{0, 0.75}, false)
					n := (oh-1)*c.g.wq + oh
					c.g = dwGeom{off: c.g.off, wq: n, oh: 1, ow: n}
					if err := checkDWCase(f, hw, c); err != nil {
						t.Errorf("%s: %dx%d flat %dx%d stride %d: %v", name, k[0], k[1], oh, oh, s, err)
					}
				}
			}
		}
	}
}

// TestDepthwiseKasmPlantedBugs: checkDW catches a wrong weight, a missing bias, a skipped tap,
// a missing floor or ceiling, the two swapped, and a wrong tail mask.
func TestDepthwiseKasmPlantedBugs(t *testing.T) {
	bugs := []struct {
		name   string
		mutate func(f *kasm.Func) bool
	}{
		{"wrong weight", func(f *kasm.Func) bool {
			for i, in := range f.Body {
				if in.Op == kasm.VBROADCASTSS {
					if m, ok := in.Args[0].(kasm.Mem); ok && m.Index == kasm.R11 {
						m.Disp = 4
						f.Body[i].Args = []kasm.Operand{m, in.Args[1]}
						return true
					}
				}
			}
			return false
		}},
		{"missing bias", func(f *kasm.Func) bool {
			done := false
			for i, in := range f.Body {
				if in.Op == kasm.VMOVUPS && len(in.Args) == 2 {
					if r, ok := in.Args[0].(kasm.Reg); ok && r.N == 1 && r.Kind != kasm.GP {
						f.Body[i] = kasm.Inst{Op: kasm.VXORPS, Args: []kasm.Operand{in.Args[1], in.Args[1], in.Args[1]}}
						done = true
					}
				}
			}
			return done
		}},
		{"first tap skipped", func(f *kasm.Func) bool {
			done := false
			for i, in := range f.Body {
				if in.Op == kasm.MOVQ && in.Args[0] == kasm.Imm(0) {
					f.Body[i].Args = []kasm.Operand{kasm.Imm(1), in.Args[1]}
					done = true
				}
			}
			return done
		}},
		{"missing relu", func(f *kasm.Func) bool {
			n := len(f.Body)
			f.Body = slices.DeleteFunc(f.Body, func(in kasm.Inst) bool { return in.Op == kasm.VMAXPS })
			return len(f.Body) < n
		}},
		{"missing ceiling", func(f *kasm.Func) bool {
			n := len(f.Body)
			f.Body = slices.DeleteFunc(f.Body, func(in kasm.Inst) bool { return in.Op == kasm.VMINPS })
			return len(f.Body) < n
		}},
		{"ceiling before the floor", func(f *kasm.Func) bool {
			done := false
			for i := 1; i < len(f.Body); i++ {
				if f.Body[i].Op == kasm.VMINPS && f.Body[i-1].Op == kasm.VMAXPS {
					f.Body[i-1], f.Body[i] = f.Body[i], f.Body[i-1]
					done = true
				}
			}
			return done
		}},
		{"tail mask one lane short", func(f *kasm.Func) bool {
			for i, in := range f.Body {
				if in.Op == kasm.MOVQ && in.Args[0] == kasm.Imm(16) {
					f.Body[i].Args = []kasm.Operand{kasm.Imm(17), in.Args[1]}
					return true
				}
			}
			return false
		}},
		{"tail mask one lane long", func(f *kasm.Func) bool {
			for i, in := range f.Body {
				if in.Op == kasm.MOVQ && in.Args[0] == kasm.Imm(16) {
					f.Body[i].Args = []kasm.Operand{kasm.Imm(15), in.Args[1]}
					return true
				}
			}
			return false
		}},
	}
	for name := range dwFuncs() {
		for _, bug := range bugs {
			f := dwFuncs()[name]
			if !bug.mutate(f) {
				t.Fatalf("%s: %s: nothing to mutate", name, bug.name)
			}
			if err := checkDW(f, nil, true); err == nil {
				t.Errorf("%s: planted bug %q not caught", name, bug.name)
			} else {
				t.Logf("%s: %s caught: %v", name, bug.name, err)
			}
		}
	}
}

// TestDepthwiseLevels: depthwise convolutions (3x3, 5x5 and 7x7, strides 1 and 2, ReLU or
// not, flat and row-by-row planes) give the same bits at every level, and Level says which code
// ran.
func TestDepthwiseLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	levels := testLevels(t)
	for _, sh := range []struct{ c, k, s, hw int }{{8, 3, 1, 13}, {8, 3, 2, 17}, {4, 3, 2, 7}, {6, 5, 1, 9}, {5, 5, 2, 14},
		{3, 7, 1, 11}, {4, 3, 1, 56}, {3, 5, 2, 67}, {3, 5, 1, 40}} {
		for _, relu := range []bool{false, true} {
			spec := ConvSpec{Cin: sh.c, Cout: sh.c, Group: sh.c, KH: sh.k, KW: sh.k, StrideH: sh.s, StrideW: sh.s,
				PadT: sh.k / 2, PadL: sh.k / 2, PadB: sh.k / 2, PadR: sh.k / 2, Weights: randFloats(r, sh.c*sh.k*sh.k),
				Bias: randFloats(r, sh.c), PostRelu: relu}
			in := Dense(randFloats(r, 2*sh.c*sh.hw*sh.hw), 2, sh.c, sh.hw, sh.hw)
			var want []float32
			for _, l := range levels {
				conv, err := newConv2D(spec, -1, tableFor(l))
				if err != nil {
					t.Fatal(err)
				}
				if conv.Level() != l.Code() {
					t.Errorf("%v: %dx%d depthwise Level() = %s, want %s", l, sh.k, sh.k, conv.Level(), l.Code())
				}
				oh, ow := conv.OutputSize(sh.hw, sh.hw)
				out := Dense(make([]float32, 2*sh.c*oh*ow), 2, sh.c, oh, ow)
				workers := NewWorkers(2)
				err = conv.Run(workers, in, out, make([]float32, conv.ScratchSize(2, sh.hw, sh.hw, 2)))
				workers.Close()
				if err != nil {
					t.Fatal(err)
				}
				got := out.Data
				if want == nil {
					want = slices.Clone(got)
					continue
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%+v relu %v: level %s differs from generic at %d: %g vs %g", sh, relu, l, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// dwRowsAt returns the row kernel of level l (for the benchmarks).
func dwRowsAt(l isa.Level) func(dst, src, w []float32, b float32, cl dwClamp, g dwGeom) {
	return tableFor(l).dwRows
}

// BenchmarkDepthwiseRows runs the level's row kernel alone (no padded copy, no threads) on
// padded planes of the dwBenchShapes, one channel after another, row by row and flat, and
// reports ns per output (flat: per output kept).
func BenchmarkDepthwiseRows(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, sh := range dwBenchShapes {
		p := sh.k / 2
		hp := sh.hw + 2*p
		oh := (hp-sh.k)/sh.s + 1
		pg := padGeom{hq: (hp + sh.s - 1) / sh.s, wq: (hp + sh.s - 1) / sh.s}
		pg.chan_ = sh.s * sh.s * pg.hq * pg.wq
		off := dwTapOffsets(nil, sh.k, sh.k, sh.s, sh.s, 1, 1, pg)
		src := randFloats(r, sh.c*pg.chan_)
		taps := sh.k * sh.k
		w := randFloats(r, sh.c*taps)
		dst := make([]float32, sh.c*oh*pg.wq)
		for _, flat := range []bool{false, true} {
			g := dwGeom{off: off, wq: pg.wq, oh: oh, ow: oh}
			ohw := oh * oh
			if flat {
				n := (oh-1)*pg.wq + oh
				g = dwGeom{off: off, wq: n, oh: 1, ow: n}
				ohw = oh * pg.wq
			}
			for _, l := range testLevels(b) {
				k := dwRowsAt(l)
				b.Run(fmt.Sprintf("%s/flat=%v/%s", sh.name, flat, l), func(b *testing.B) {
					for range b.N {
						for m := range sh.c {
							k(dst[m*ohw:(m+1)*ohw], src[m*pg.chan_:(m+1)*pg.chan_], w[taps*m:taps*(m+1)], 0.5, dwClamp{0, 6}, g)
						}
					}
					b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(sh.c*oh*oh), "ns/output")
				})
			}
		}
	}
}

// TestDepthwiseSplitKasm: the stride-2 split kernel in the interpreter moves the floats
// dwSplitGo moves, for rows of every length up to 80 floats, tails included, with every slice
// mapped exactly (a read or write past a row faults), and the assembly, where this CPU runs it,
// through its wrapper (dwSplitAsm512) on the same rows, with guards past the ends.
func TestDepthwiseSplitKasm(t *testing.T) {
	f := dwasm.SplitAVX512()
	idx := make([]uint32, 16)
	for i := range 8 {
		idx[i], idx[8+i] = uint32(2*i), uint32(2*i+1)
	}
	hw := dwSplitHW()
	r := rand.New(rand.NewPCG(65, 66))
	for ne := 1; ne <= 40; ne++ {
		for _, no := range []int{ne - 1, ne} {
			if no < 1 {
				continue
			}
			x := randFloats(r, ne+no)
			we, wo := make([]float32, ne), make([]float32, no)
			dwSplitGo(we, wo, x)
			n, k, ok := dwSplitArgs(ne, no, len(x))
			if !ok {
				t.Fatalf("%d even, %d odd: dwSplitArgs refuses", ne, no)
			}
			e, o := make([]float32, ne), make([]float32, no)
			var mem kasm.Memory
			m := &kasm.Machine{Mem: &mem}
			err := m.Run(f, mem.Map("x", kasm.Bytes(x)), mem.Map("e", kasm.Bytes(e)), mem.Map("o", kasm.Bytes(o)), uint64(n),
				mem.Map("idx", kasm.Bytes(idx)), mem.Map("k", kasm.Bytes(k[:])))
			if err != nil {
				t.Fatalf("%d even, %d odd: %v", ne, no, err)
			}
			if !slices.Equal(e, we) || !slices.Equal(o, wo) {
				t.Fatalf("%d even, %d odd: interpreter %v %v, dwSplitGo %v %v", ne, no, e, o, we, wo)
			}
			if hw == nil {
				continue
			}
			e, o = make([]float32, ne+1), make([]float32, no+1)
			e[ne], o[no] = 42, 42 // guards
			hw(e[:ne], o[:no], x)
			if !slices.Equal(e[:ne], we) || !slices.Equal(o[:no], wo) || e[ne] != 42 || o[no] != 42 {
				t.Fatalf("%d even, %d odd: hardware %v %v, dwSplitGo %v %v", ne, no, e, o, we, wo)
			}
		}
	}
	t.Logf("interpreter agrees with dwSplitGo; hardware checked: %v", hw != nil)
}

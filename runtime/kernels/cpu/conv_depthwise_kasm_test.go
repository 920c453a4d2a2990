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

// The tests in this file run the 3x3 depthwise kernels as package dwasm describes them in the
// kasm interpreter, on every machine and in every build, bit for bit against dw3x3Ref (rows3x3's
// operation order, one output at a time); where the CPU has the level (dw3x3HW,
// conv_depthwise_kasm_amd64_test.go) the assembly runs through its Go wrapper on the same inputs
// and must agree with the interpreter bit for bit.

// dw3x3Ref is output column i of row oy: b + w0*x0 + ... + w8*x8 left to right, each product
// and sum rounded to float32, then ReLU (v < 0 becomes 0; -0 and NaN stay).
func dw3x3Ref(src, w []float32, b float32, relu bool, g dwGeom, oy, i int) float32 {
	v := b
	for k := range 9 {
		v = float32(v + float32(w[k]*src[g.base[k]+oy*g.wq+i]))
	}
	if relu && v < 0 {
		v = 0
	}
	return v
}

// dwCase is one kernel input: a geometry of rows3x3 (stride 1 or 2, phase-split planes) with
// the input cut to exactly the floats the taps read.
type dwCase struct {
	g    dwGeom
	src  []float32
	w    []float32
	b    float32
	relu bool
}

func newDWCase(r *rand.Rand, ow, oh, stride int, relu bool) dwCase {
	var g dwGeom
	g.ow, g.oh = ow, oh
	g.wq = ow + 2/stride // stride 1: ow+2 padded columns; stride 2: ow+1 per phase
	hq := oh + 2/stride
	plane := hq * g.wq
	for kh := range 3 {
		for kw := range 3 {
			g.base[kh*3+kw] = ((kh%stride)*stride+kw%stride)*plane + (kh/stride)*g.wq + kw/stride
		}
	}
	n := slices.Max(g.base[:]) + (oh-1)*g.wq + ow
	if ow == 0 || oh == 0 {
		n = 0
	}
	c := dwCase{g: g, src: make([]float32, n), w: make([]float32, 9), b: float32(r.NormFloat64()), relu: relu}
	for i := range c.src {
		c.src[i] = float32(r.NormFloat64())
		if i%17 == 3 {
			c.src[i] = 0
		}
	}
	for i := range c.w {
		c.w[i] = float32(r.NormFloat64())
	}
	if r.IntN(4) == 0 {
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
	var off [9]int64
	for k, o := range c.g.base {
		off[k] = int64(4 * o)
	}
	coef := make([]float32, dwasm.Coefs)
	copy(coef, c.w)
	coef[dwasm.CoefBias] = c.b
	coef[dwasm.CoefFloor] = float32(math.Inf(-1))
	if c.relu {
		coef[dwasm.CoefFloor] = 0
	}
	mask := make([]uint32, 32)
	for i := range 16 {
		mask[i] = 0xFFFFFFFF
	}
	var mem kasm.Memory
	m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 24}
	for i := range m.V {
		for l := range m.V[i] {
			m.V[i][l] = math.Float32bits(float32(i*16 + l))
		}
	}
	err := m.Run(f, mem.Map("x", kasm.Bytes(c.src)), mem.Map("y", kasm.Bytes(y)), uint64(c.g.ow), uint64(c.g.oh),
		uint64(4*(c.g.wq-c.g.ow)), mem.Map("off", kasm.Bytes(off[:])), mem.Map("c", kasm.Bytes(coef)), mem.Map("mask", kasm.Bytes(mask)))
	return y, err
}

// dwLens are the row lengths the kernels are checked on: every tail of both widths, one and
// several iterations of the unrolled loops.
func dwLens() []int {
	var ls []int
	for n := 0; n <= 40; n++ {
		ls = append(ls, n)
	}
	return append(ls, 63, 64, 65, 113)
}

// checkDW runs f on every length, both strides and both ReLU settings, and returns the first
// disagreement with dw3x3Ref, with dw3x3Go, or with the hardware (hw, when not nil).
func checkDW(f *kasm.Func, hw func(dst, src, w []float32, b float32, relu bool, g dwGeom)) error {
	r := rand.New(rand.NewPCG(61, 62))
	for _, n := range dwLens() {
		for _, stride := range []int{1, 2} {
			for _, relu := range []bool{false, true} {
				oh := 1 + (n+stride)%3
				c := newDWCase(r, n, oh, stride, relu)
				where := fmt.Sprintf("n = %d, rows = %d, stride %d, relu %v", n, oh, stride, relu)
				got, err := runDW(f, c)
				if err != nil {
					return fmt.Errorf("%s: %v", where, err)
				}
				goOut := make([]float32, len(got))
				if len(goOut) > 0 {
					dw3x3Go(goOut, c.src, c.w, c.b, c.relu, c.g)
				}
				for oy := range oh {
					for i := range n {
						want := dw3x3Ref(c.src, c.w, c.b, c.relu, c.g, oy, i)
						if g := got[oy*n+i]; math.Float32bits(g) != math.Float32bits(want) {
							return fmt.Errorf("%s: interpreter: (%d, %d) = %g (%#x), dw3x3Ref %g (%#x)", where, oy, i, g, math.Float32bits(g), want, math.Float32bits(want))
						}
						if g := goOut[oy*n+i]; math.Float32bits(g) != math.Float32bits(want) {
							return fmt.Errorf("%s: dw3x3Go: (%d, %d) = %g, dw3x3Ref %g", where, oy, i, g, want)
						}
					}
				}
				if hw != nil {
					y := make([]float32, len(got)+1)
					y[len(got)] = 42 // a guard past the end
					hw(y[:len(got)], c.src, c.w, c.b, c.relu, c.g)
					for i := range got {
						if math.Float32bits(y[i]) != math.Float32bits(got[i]) {
							return fmt.Errorf("%s: hardware vs interpreter at %d: %#x, interpreter %#x", where, i, math.Float32bits(y[i]), math.Float32bits(got[i]))
						}
					}
					if y[len(got)] != 42 {
						return fmt.Errorf("%s: hardware wrote past the end", where)
					}
				}
			}
		}
	}
	return nil
}

func dwFuncs() map[string]*kasm.Func {
	return map[string]*kasm.Func{"dw3x3AVX2": dwasm.AVX2(), "dw3x3AVX512": dwasm.AVX512()}
}

// TestDepthwiseKasm: each kernel in the interpreter matches dw3x3Ref bit for bit on every tail
// length, and the assembly, where this CPU runs it, matches the interpreter.
func TestDepthwiseKasm(t *testing.T) {
	for name, f := range dwFuncs() {
		hw := dw3x3HW(name)
		if err := checkDW(f, hw); err != nil {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: interpreter agrees with dw3x3Ref; hardware checked: %v", name, hw != nil)
		}
	}
}

// TestDepthwiseKasmPlantedBugs: checkDW catches a wrong weight, a missing bias, a missing ReLU
// and a wrong tail mask.
func TestDepthwiseKasmPlantedBugs(t *testing.T) {
	bugs := []struct {
		name   string
		mutate func(f *kasm.Func) bool
	}{
		{"wrong weight", func(f *kasm.Func) bool {
			for i, in := range f.Body {
				if in.Op == kasm.VMULPS && in.Args[1].(kasm.Reg).N == 4 {
					r := in.Args[1].(kasm.Reg)
					r.N = 5
					f.Body[i].Args = []kasm.Operand{in.Args[0], r, in.Args[2]}
					return true
				}
			}
			return false
		}},
		{"missing bias", func(f *kasm.Func) bool {
			done := false
			for i, in := range f.Body {
				if in.Op == kasm.VADDPS && in.Args[1].(kasm.Reg).N == 9 {
					f.Body[i] = kasm.Inst{Op: kasm.VMOVUPS, Args: []kasm.Operand{in.Args[0], in.Args[2]}}
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
			if err := checkDW(f, nil); err == nil {
				t.Errorf("%s: planted bug %q not caught", name, bug.name)
			} else {
				t.Logf("%s: %s caught: %v", name, bug.name, err)
			}
		}
	}
}

// TestDepthwiseLevels: a depthwise convolution (3x3, strides 1 and 2, ReLU or not, and a 5x5
// that takes the general loop) gives the same bits at every level, and Level says which code ran.
func TestDepthwiseLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	levels := testLevels(t)
	for _, sh := range []struct{ c, k, s, hw int }{{8, 3, 1, 13}, {8, 3, 2, 17}, {4, 3, 2, 7}, {6, 5, 1, 9}} {
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
				if wantL := l.Code(); sh.k != 3 {
					wantL = isa.Generic
					if conv.Level() != wantL {
						t.Errorf("%v: 5x5 depthwise Level() = %s, want %s", l, conv.Level(), wantL)
					}
				} else if conv.Level() != wantL {
					t.Errorf("%v: 3x3 depthwise Level() = %s, want %s", l, conv.Level(), wantL)
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

// BenchmarkDepthwise runs MobileNetV2's depthwise convolutions (3x3, bias, ReLU) at each level,
// batch 1, one thread, and reports ns per output.
func BenchmarkDepthwise(b *testing.B) {
	shapes := []struct {
		name     string
		c, s, hw int
	}{
		{"c=96,s=2,hw=112", 96, 2, 112},
		{"c=144,s=1,hw=56", 144, 1, 56},
		{"c=192,s=1,hw=28", 192, 1, 28},
		{"c=960,s=1,hw=7", 960, 1, 7},
	}
	r := rand.New(rand.NewPCG(3, 3))
	for _, sh := range shapes {
		spec := ConvSpec{Cin: sh.c, Cout: sh.c, Group: sh.c, KH: 3, KW: 3, StrideH: sh.s, StrideW: sh.s,
			PadT: 1, PadL: 1, PadB: 1, PadR: 1, Weights: randFloats(r, sh.c*9), Bias: randFloats(r, sh.c), PostRelu: true}
		for _, l := range testLevels(b) {
			b.Run(fmt.Sprintf("%s/%s", sh.name, l), func(b *testing.B) {
				conv, err := newConv2D(spec, -1, tableFor(l))
				if err != nil {
					b.Fatal(err)
				}
				oh, ow := conv.OutputSize(sh.hw, sh.hw)
				in := Dense(randFloats(r, sh.c*sh.hw*sh.hw), 1, sh.c, sh.hw, sh.hw)
				out := Dense(make([]float32, sh.c*oh*ow), 1, sh.c, oh, ow)
				scratch := make([]float32, conv.ScratchSize(1, sh.hw, sh.hw, 1))
				workers := NewWorkers(1)
				defer workers.Close()
				b.ResetTimer()
				for range b.N {
					if err := conv.Run(workers, in, out, scratch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(sh.c*oh*ow), "ns/output")
			})
		}
	}
}

// BenchmarkDepthwiseRows runs the level's dw3x3 alone (no padded copy, no threads) on the padded
// planes of the BenchmarkDepthwise shapes, one channel after another, and reports ns per output.
func BenchmarkDepthwiseRows(b *testing.B) {
	shapes := []struct {
		name     string
		c, s, hw int
	}{
		{"c=96,s=2,hw=112", 96, 2, 112},
		{"c=144,s=1,hw=56", 144, 1, 56},
		{"c=192,s=1,hw=28", 192, 1, 28},
		{"c=960,s=1,hw=7", 960, 1, 7},
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, sh := range shapes {
		oh := (sh.hw+2-3)/sh.s + 1
		wq := (sh.hw + 2 + sh.s - 1) / sh.s
		plane := wq * wq
		var g dwGeom
		g.wq, g.oh, g.ow = wq, oh, oh
		for kh := range 3 {
			for kw := range 3 {
				g.base[kh*3+kw] = ((kh%sh.s)*sh.s+kw%sh.s)*plane + (kh/sh.s)*wq + kw/sh.s
			}
		}
		chan_ := sh.s * sh.s * plane
		src := randFloats(r, sh.c*chan_)
		w := randFloats(r, sh.c*9)
		dst := make([]float32, sh.c*oh*oh)
		for _, l := range testLevels(b) {
			k := tableFor(l)
			b.Run(fmt.Sprintf("%s/%s", sh.name, l), func(b *testing.B) {
				for range b.N {
					for m := range sh.c {
						k.dw3x3(dst[m*oh*oh:(m+1)*oh*oh], src[m*chan_:(m+1)*chan_], w[9*m:9*m+9], 0.5, true, g)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(len(dst)), "ns/output")
			})
		}
	}
}

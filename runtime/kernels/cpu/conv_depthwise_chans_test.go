package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/dwasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// The tests in this file run the channel kernels of the depthwise path (package dwasm,
// ChansAVX512) in the kasm interpreter on every machine, bit for bit against the padded
// convolution computed here one output at a time (dwChanRef) and against dwChansGo, with every
// slice mapped exactly (an access past the input, the output, the plane or a table faults), and
// the assembly, where the CPU has AVX-512, through its wrapper on the same inputs.

// dwChanCase is one channel-kernel input: a kh x kw depthwise convolution of stride s with pads
// (top, left, bottom, right) over nch channels of h x w.
type dwChanCase struct {
	nch, h, w, k, kw, s int
	pads                [4]int
	cl                  dwClamp
	negZero             bool
}

func (c dwChanCase) String() string {
	return fmt.Sprintf("%dx%d s%d %dx%d pads %v x%d clamp %v -0 %v", c.k, c.kw, c.s, c.h, c.w, c.pads, c.nch, c.cl, c.negZero)
}

// dwChanCases are the geometries checked: the small planes of MobileNet and EfficientNet, every
// input width up to 40 (each chunk tail, stride 2's odd widths), asymmetric and ONNX same-upper
// pads, 1x1 to 7x7 kernels.
func dwChanCases(quick bool) []dwChanCase {
	var cs []dwChanCase
	for _, k := range [][2]int{{3, 3}, {5, 5}, {7, 7}, {1, 1}, {3, 5}} {
		for _, s := range []int{1, 2} {
			for _, hw := range []int{7, 14, 28} {
				p := k[0] / 2
				cs = append(cs, dwChanCase{nch: 3, h: hw, w: hw, k: k[0], kw: k[1], s: s, pads: [4]int{p, k[1] / 2, p, k[1] / 2}})
			}
		}
	}
	for w := 1; w <= 40; w++ {
		if quick && w%3 != 0 {
			continue
		}
		for _, s := range []int{1, 2} {
			cs = append(cs, dwChanCase{nch: 2, h: 3 + w%4, w: w, k: 3, kw: 3, s: s, pads: [4]int{1, 1, 1, 1}},
				dwChanCase{nch: 1, h: 5, w: w, k: 5, kw: 5, s: s, pads: [4]int{2, 1, 0, 3}})
		}
	}
	cs = append(cs,
		dwChanCase{nch: 2, h: 14, w: 14, k: 3, kw: 3, s: 2, pads: [4]int{0, 0, 1, 1}}, // same-upper
		dwChanCase{nch: 2, h: 13, w: 11, k: 5, kw: 5, s: 2, pads: [4]int{2, 2, 2, 2}}, // odd
		dwChanCase{nch: 2, h: 9, w: 5, k: 7, kw: 7, s: 1, pads: [4]int{3, 3, 3, 3}},   // pads wider than the image
		dwChanCase{nch: 20, h: 7, w: 7, k: 3, kw: 3, s: 1, pads: [4]int{1, 1, 1, 1}},  // more channels than a group
		dwChanCase{nch: 2, h: 56, w: 56, k: 3, kw: 3, s: 2, pads: [4]int{1, 1, 1, 1}}, // two stride-2 chunks a row
		dwChanCase{nch: 1, h: 28, w: 28, k: 5, kw: 5, s: 1, pads: [4]int{2, 2, 2, 2}, negZero: true},
	)
	r := rand.New(rand.NewPCG(71, 72))
	for i := range cs {
		cs[i].cl = dwClamps[r.IntN(len(dwClamps))]
	}
	return cs
}

// conv returns the convolution of c (bias included, no epilogue: the clamp is set on the Conv2D).
func (c dwChanCase) conv(r *rand.Rand) (*Conv2D, []float32) {
	spec := ConvSpec{Cin: c.nch, Cout: c.nch, Group: c.nch, KH: c.k, KW: c.kw, StrideH: c.s, StrideW: c.s,
		PadT: c.pads[0], PadL: c.pads[1], PadB: c.pads[2], PadR: c.pads[3],
		Weights: randFloats(r, c.nch*c.k*c.kw), Bias: randFloats(r, c.nch)}
	x := randFloats(r, c.nch*c.h*c.w)
	if c.negZero {
		for i := range spec.Weights {
			spec.Weights[i] = -float32(math.Abs(float64(spec.Weights[i]))) - 0.5
		}
		for i := range spec.Bias {
			spec.Bias[i] = float32(math.Copysign(0, -1))
		}
		clear(x)
	}
	for i := range x {
		if i%13 == 5 {
			x[i] = 0
		}
	}
	k := *tableFor(isa.Generic) // the Go code, with the channel path on (dwChanGeom asks)
	k.dwChanPlanes = true
	conv, err := newConv2D(spec, -1, &k)
	if err != nil {
		panic(err) // the cases are valid convolutions
	}
	conv.dwClamp = c.cl
	return conv, x
}

// dwChanRef is output (m, oy, ox) of c's padded convolution: bias, then taps row by row, left to
// right, each product rounded and added (padding taps add w*0), then the clamp.
func dwChanRef(c *Conv2D, x []float32, h, w, m, oy, ox int) float32 {
	s := &c.spec
	v := s.Bias[m]
	for i := 0; i < s.KH; i++ {
		for j := 0; j < s.KW; j++ {
			y, xx := oy*s.StrideH+i-s.PadT, ox*s.StrideW+j-s.PadL
			var p float32
			if y >= 0 && y < h && xx >= 0 && xx < w {
				p = x[(m*h+y)*w+xx]
			}
			v = float32(v + float32(s.Weights[(m*s.KH+i)*s.KW+j]*p))
		}
	}
	if c.dwClamp.lo > v {
		v = c.dwClamp.lo
	}
	if c.dwClamp.hi < v {
		v = c.dwClamp.hi
	}
	return v
}

// runDWChans runs f in the interpreter over the plan pl, every slice mapped exactly, and returns
// the output, which starts as garbage.
func runDWChans(f *kasm.Func, pl *dwPlan, x, w, b []float32, nch int, cl dwClamp) ([]float32, error) {
	y := make([]float32, nch*pl.ohw)
	for i := range y {
		y[i] = 7
	}
	p := make([]float32, 2*pl.plane)
	i64 := func(s []int) []int64 {
		o := make([]int64, len(s))
		for i, v := range s {
			o[i] = int64(v)
		}
		return o
	}
	idx := make([]uint32, 16) // the split permutation: even lanes, then odd ones
	for i := range 8 {
		idx[i], idx[8+i] = uint32(2*i), uint32(2*i+1)
	}
	coef := []float32{cl.lo, cl.hi}
	var mem kasm.Memory
	m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 28}
	for i := range m.V {
		for l := range m.V[i] {
			m.V[i][l] = math.Float32bits(float32(i*16 + l))
		}
	}
	err := m.Run(f, mem.Map("x", kasm.Bytes(x[:nch*pl.h*pl.w])), mem.Map("y", kasm.Bytes(y)),
		mem.Map("w", kasm.Bytes(w[:nch*len(pl.off)])), mem.Map("b", kasm.Bytes(b[:nch])), uint64(nch),
		mem.Map("p", kasm.Bytes(p)), uint64(4*pl.plane), mem.Map("rows", kasm.Bytes(i64(pl.rows))), uint64(pl.h), uint64(4*pl.w),
		mem.Map("chunks", kasm.Bytes(slices.Clone(pl.chunks))), uint64(pl.nc), mem.Map("off", kasm.Bytes(i64(pl.off))),
		uint64(len(pl.off)), mem.Map("vec", kasm.Bytes(slices.Clone(pl.vec))), uint64(pl.nvec),
		mem.Map("c", kasm.Bytes(coef)), mem.Map("idx", kasm.Bytes(idx)))
	return y, err
}

// checkDWChans runs the channel kernel of each stride (from build) on every case: the
// interpreter against dwChanRef, dwChansGo against dwChanRef, and the hardware (hw, when not
// nil) against the interpreter, with a guard past its output.
func checkDWChans(build func(s int) *kasm.Func, hw func(pl *dwPlan, x, y, w, b []float32, nch int, p []float32, cl dwClamp), quick bool) error {
	r := rand.New(rand.NewPCG(73, 74))
	cases, ran := dwChanCases(quick), 0
	for _, c := range cases {
		conv, x := c.conv(r)
		g, ok := conv.dwChanGeom(c.h, c.w)
		if !ok {
			continue // very narrow planes (1 or 2 columns) run row by row
		}
		ran++
		var pl dwPlan
		pl.build(conv, g, c.h, c.w)
		s := &conv.spec
		got, err := runDWChans(build(c.s), &pl, x, s.Weights, s.Bias, c.nch, c.cl)
		if err != nil {
			return fmt.Errorf("%v: %v", c, err)
		}
		goOut := make([]float32, len(got))
		dwChansGo(&pl, x, goOut, s.Weights, s.Bias, c.nch, make([]float32, 2*pl.plane), c.cl)
		for m := 0; m < c.nch; m++ {
			for oy := 0; oy < g.oh; oy++ {
				for ox := 0; ox < g.ow; ox++ {
					i := (m*g.oh+oy)*g.ow + ox
					want := dwChanRef(conv, x, c.h, c.w, m, oy, ox)
					if math.Float32bits(got[i]) != math.Float32bits(want) {
						return fmt.Errorf("%v: interpreter (%d, %d, %d) = %g (%#x), reference %g (%#x)", c, m, oy, ox, got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
					}
					if math.Float32bits(goOut[i]) != math.Float32bits(want) {
						return fmt.Errorf("%v: dwChansGo (%d, %d, %d) = %g, reference %g", c, m, oy, ox, goOut[i], want)
					}
				}
			}
		}
		if hw == nil {
			continue
		}
		y := make([]float32, len(got)+1)
		y[len(got)] = 42
		hw(&pl, x, y[:len(got)], s.Weights, s.Bias, c.nch, make([]float32, 2*pl.plane), c.cl)
		for i := range got {
			if math.Float32bits(y[i]) != math.Float32bits(got[i]) {
				return fmt.Errorf("%v: hardware vs interpreter at %d: %#x, interpreter %#x", c, i, math.Float32bits(y[i]), math.Float32bits(got[i]))
			}
		}
		if y[len(got)] != 42 {
			return fmt.Errorf("%v: hardware wrote past the end", c)
		}
	}
	if ran < len(cases)*9/10 {
		return fmt.Errorf("only %d of %d cases take the channel path", ran, len(cases))
	}
	return nil
}

// TestDepthwiseChansKasm: the channel kernels in the interpreter and dwChansGo compute the
// padded convolution bit for bit on every case, and the assembly, where this CPU runs it,
// matches the interpreter.
func TestDepthwiseChansKasm(t *testing.T) {
	hw := dwChansHW()
	if err := checkDWChans(dwasm.ChansAVX512, hw, testing.Short()); err != nil {
		t.Fatal(err)
	}
	t.Logf("interpreter agrees with the reference; hardware checked: %v", hw != nil)
}

// TestDepthwiseChansKasmPlantedBugs: checkDWChans catches a wrong weight, a skipped tap, a
// missing floor, the padding columns kept, the stride-2 phases swapped, and unmasked row loads.
func TestDepthwiseChansKasmPlantedBugs(t *testing.T) {
	// first returns the index of the first instruction for which ok holds (-1: none).
	first := func(f *kasm.Func, ok func(in kasm.Inst) bool) int {
		return slices.IndexFunc(f.Body, func(in kasm.Inst) bool { return in.Def == "" && ok(in) })
	}
	mem := func(in kasm.Inst, i int) (kasm.Mem, bool) {
		if i >= len(in.Args) {
			return kasm.Mem{}, false
		}
		m, ok := in.Args[i].(kasm.Mem)
		return m, ok
	}
	bugs := []struct {
		name   string
		mutate func(f *kasm.Func) bool
	}{
		{"wrong weight", func(f *kasm.Func) bool {
			i := first(f, func(in kasm.Inst) bool {
				m, ok := mem(in, 0)
				return in.Op == kasm.VBROADCASTSS && ok && m.Base == kasm.R9
			})
			if i < 0 {
				return false
			}
			m, _ := mem(f.Body[i], 0)
			m.Disp += 4
			f.Body[i].Args = []kasm.Operand{m, f.Body[i].Args[1]}
			return true
		}},
		{"first tap skipped", func(f *kasm.Func) bool {
			done := false
			for i, in := range f.Body {
				if in.Op == kasm.MOVQ && len(in.Args) == 2 && in.Args[0] == kasm.Imm(0) && in.Args[1] == kasm.DX {
					f.Body[i].Args = []kasm.Operand{kasm.Imm(1), kasm.DX} // the tap loop starts at tap 1
					done = true
				}
			}
			return done
		}},
		{"missing floor", func(f *kasm.Func) bool {
			n := len(f.Body)
			f.Body = slices.DeleteFunc(f.Body, func(in kasm.Inst) bool { return in.Op == kasm.VMAXPS })
			return len(f.Body) < n
		}},
		{"padding columns kept", func(f *kasm.Func) bool {
			n := len(f.Body)
			f.Body = slices.DeleteFunc(f.Body, func(in kasm.Inst) bool { return in.Op == kasm.VCOMPRESSPS })
			return len(f.Body) < n
		}},
		{"phases swapped", func(f *kasm.Func) bool {
			done := false
			for i, in := range f.Body {
				if in.Op == kasm.VSHUFF32X4 {
					imm := in.Args[0].(kasm.Imm) ^ (0x44 ^ 0xEE)
					f.Body[i].Args = append([]kasm.Operand{imm}, in.Args[1:]...)
					done = true
				}
			}
			return done
		}},
		{"unmasked row loads", func(f *kasm.Func) bool {
			done := false
			for i, in := range f.Body {
				if in.Op == kasm.VMOVUPS && in.Mask.Kind == kasm.K && in.Zeroing {
					f.Body[i].Mask, f.Body[i].Zeroing = kasm.Reg{}, false
					done = true
				}
			}
			return done
		}},
	}
	for _, bug := range bugs {
		for _, target := range dwasm.ChansAll() {
			if !bug.mutate(target) {
				if bug.name == "phases swapped" && strings.HasPrefix(target.Name, "dwChansS1") {
					continue // stride 1 has no phases
				}
				t.Fatalf("%s: %s: nothing to mutate", target.Name, bug.name)
			}
			build := func(s int) *kasm.Func {
				if dwasm.ChansName(s) == target.Name {
					return target
				}
				return dwasm.ChansAVX512(s)
			}
			if err := checkDWChans(build, nil, true); err != nil {
				t.Logf("%s: %s caught: %v", target.Name, bug.name, err)
			} else {
				t.Errorf("%s: planted bug %q not caught", target.Name, bug.name)
			}
		}
	}
}

// TestDepthwiseChansSizeChange: one Conv2D run on inputs of changing sizes (its channel plan is
// kept between Runs and must be rebuilt when the size changes) gives, at every level, the bits
// of a fresh generic-level Conv2D (the row path), with and without bias, on 1 and 2 threads.
func TestDepthwiseChansSizeChange(t *testing.T) {
	r := rand.New(rand.NewPCG(75, 76))
	for _, bias := range []bool{true, false} {
		spec := dwBenchSpec(r, 20, 5, 2)
		spec.PostRelu = false
		if !bias {
			spec.Bias = nil
		}
		for _, l := range testLevels(t) {
			conv, err := newConv2D(spec, -1, tableFor(l))
			if err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				workers := NewWorkers(threads)
				for _, hw := range []int{14, 7, 9, 14, 56} {
					in, out, scratch := dwBenchBuffers(r, conv, 20, hw, threads)
					if err := conv.Run(workers, in, out, scratch); err != nil {
						t.Fatal(err)
					}
					ref, err := newConv2D(spec, -1, &goTable)
					if err != nil {
						t.Fatal(err)
					}
					want := Dense(make([]float32, len(out.Data)), 1, 20, out.H, out.W)
					if err := ref.Run(nil, in, want, make([]float32, ref.ScratchSize(1, hw, hw, 1))); err != nil {
						t.Fatal(err)
					}
					for i := range want.Data {
						if math.Float32bits(out.Data[i]) != math.Float32bits(want.Data[i]) {
							t.Fatalf("%s, bias %v, %d threads, %dx%d: output %d = %g, generic %g", l, bias, threads, hw, hw, i, out.Data[i], want.Data[i])
						}
					}
				}
				workers.Close()
			}
		}
	}
}

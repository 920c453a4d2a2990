package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/winoasm"
)

// The tests in this file run the AVX-512 Winograd kernels as package winoasm describes them in
// the kasm interpreter, on every machine and in every build, against references in Go; where the
// CPU has AVX-512 (winoOut4HW, conv_winograd_kasm_amd64_test.go) the generated assembly runs on
// the same inputs and must agree with the interpreter bit for bit, which checks the printing.

// TestWinoOut4Consts: the constants block the Go wrapper fills is the layout the kernel reads.
func TestWinoOut4Consts(t *testing.T) {
	c := make([]float32, winoOut4Consts)
	winoOut4Fill(c, 0.5, true)
	if winoOut4Consts != winoasm.Out4Consts {
		t.Fatalf("winoOut4Consts = %d, winoasm.Out4Consts = %d", winoOut4Consts, winoasm.Out4Consts)
	}
	for _, f := range []struct {
		name string
		off  int
		want float32
	}{{"bias", winoasm.Out4Bias, 0.5}, {"2", winoasm.Out4Two, 2}, {"4", winoasm.Out4Four, 4}, {"8", winoasm.Out4Eight, 8}, {"floor", winoasm.Out4Floor, 0}} {
		if c[f.off/4] != f.want {
			t.Errorf("constant %s at byte %d: %g, want %g", f.name, f.off, c[f.off/4], f.want)
		}
	}
	winoOut4Fill(c, 0, false)
	if !math.IsInf(float64(c[winoasm.Out4Floor/4]), -1) {
		t.Errorf("floor without ReLU = %g, want -Inf", c[winoasm.Out4Floor/4])
	}
}

// winoOut4Exact is winoOutGo for F(4x4) with the operations of winoOut4AVX2 and winoOut4AVX512
// in their order: the factored A^T of winoAT4Apply with b + 2d, a + 4c and b + 8d as fused
// multiply-adds (kasm.FMA32), then the bias and max(floor, .). The kernels must match it bit for
// bit.
func winoOut4Exact(mm []float32, ps, n int, y []float32, ldy int, bias float32, relu bool) {
	at := func(s0, s1, s2, s3, s4, s5 float32) (r0, r1, r2, r3 float32) {
		a, b, c, d := s1+s2, s1-s2, s3+s4, s3-s4
		return s0 + a + c, kasm.FMA32(d, 2, b), kasm.FMA32(c, 4, a), kasm.FMA32(d, 8, b) + s5
	}
	for j := 0; j < n; j++ {
		var s [4][6]float32 // S[r][k]
		for k := 0; k < 6; k++ {
			m := func(i int) float32 { return mm[(i*6+k)*ps+j] }
			s[0][k], s[1][k], s[2][k], s[3][k] = at(m(0), m(1), m(2), m(3), m(4), m(5))
		}
		for r := 0; r < 4; r++ {
			var q [4]float32
			q[0], q[1], q[2], q[3] = at(s[r][0], s[r][1], s[r][2], s[r][3], s[r][4], s[r][5])
			for i, v := range q {
				v += bias
				if relu && !(v > 0) && v == v { // max(0, v): NaN stays
					v = 0
				}
				y[r*ldy+4*j+i] = v
			}
		}
	}
}

// out4Case is one call of the output transform: n tiles, position stride ps, row stride ldy.
type out4Case struct {
	n, ps, ldy int
	bias       float32
	relu       bool
}

// out4Cases are every tail of the 16-tile groups (n = 1..33), the DenseNet-121 row segments
// (14, 7, 4 and 2 tiles), strides just above and far above the data, with and without ReLU.
func out4Cases() []out4Case {
	var cs []out4Case
	for n := 1; n <= 33; n++ {
		cs = append(cs, out4Case{n: n, ps: n + n%3, ldy: 4*n + 4*(n%2), bias: 0.25, relu: n%2 == 0})
	}
	for _, n := range []int{2, 4, 7, 14, 48} {
		cs = append(cs, out4Case{n: n, ps: 8 * n, ldy: 4*n + 61, bias: -0.5, relu: true}, out4Case{n: n, ps: n, ldy: 4 * n, relu: false})
	}
	return cs
}

// runOut4 runs the output transform f of c in the interpreter on mm (mapped exactly, so that a
// read past the n tiles faults) into a copy of y0 (idem), and returns the result.
func runOut4(f *kasm.Func, c out4Case, mm, y0 []float32) ([]float32, error) {
	y := append([]float32(nil), y0...)
	consts := make([]float32, winoOut4Consts)
	winoOut4Fill(consts, c.bias, c.relu)
	tmask, fmask := winoOut4Masks(c.n)
	var mem kasm.Memory
	m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 20}
	// Garbage in every register, as on hardware.
	for i := range m.V {
		for l := range m.V[i] {
			m.V[i][l] = math.Float32bits(float32(i*16 + l))
		}
	}
	err := m.Run(f, mem.Map("mm", kasm.Bytes(mm)), uint64(c.ps), uint64(c.n), mem.Map("y", kasm.Bytes(y)), uint64(c.ldy),
		mem.Map("c", kasm.Bytes(consts)), uint64(tmask), uint64(fmask))
	return y, err
}

// checkOut4 runs f on the cases and returns the first disagreement with winoOut4Exact (bit for
// bit, and every float of y outside the tiles left as it was) or with the hardware (hw, when
// not nil, is winoOut4AVX512 on the same arguments).
func checkOut4(f *kasm.Func, hw func(c out4Case, mm, y []float32)) error {
	r := rand.New(rand.NewPCG(41, 42))
	for _, c := range out4Cases() {
		mm := randFloats(r, 35*c.ps+c.n)
		y0 := randFloats(r, 3*c.ldy+4*c.n)
		got, err := runOut4(f, c, mm, y0)
		if err != nil {
			return fmt.Errorf("%+v: %v", c, err)
		}
		want := append([]float32(nil), y0...)
		winoOut4Exact(mm, c.ps, c.n, want, c.ldy, c.bias, c.relu)
		if err := bitsMatch("interpreter", got, want); err != nil {
			return fmt.Errorf("%+v: %v", c, err)
		}
		if hw != nil {
			y := append([]float32(nil), y0...)
			hw(c, mm, y)
			if err := bitsMatch("hardware vs interpreter", y, got); err != nil {
				return fmt.Errorf("%+v: %v", c, err)
			}
		}
	}
	return nil
}

// bitsMatch returns an error at the first element where got and want differ in their bits.
func bitsMatch(what string, got, want []float32) error {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return fmt.Errorf("%s: element %d = %g (%#x), want %g (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
	return nil
}

// TestWinoOut4Interpreted runs winoOut4AVX512's description on every tail and checks it bit for
// bit against winoOut4Exact, and against the hardware where the CPU has AVX-512; the log says
// whether that ran. winoOut4Exact itself is checked against winoOutGo, the specification, within
// the Winograd tests' tolerance.
func TestWinoOut4Interpreted(t *testing.T) {
	hw := winoOut4HW()
	if hw != nil {
		t.Log("AVX-512 assembly checked against the interpreter on this CPU")
	} else {
		t.Log("no AVX-512 here: the interpreter only (the assembly is not run)")
	}
	if err := checkOut4(winoasm.Out4(), hw); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(43, 44))
	for _, c := range out4Cases() {
		mm := randFloats(r, 35*c.ps+c.n)
		got, want := make([]float32, 3*c.ldy+4*c.n), make([]float32, 3*c.ldy+4*c.n)
		winoOut4Exact(mm, c.ps, c.n, got, c.ldy, c.bias, c.relu)
		winoOutGo(4, mm, c.ps, c.n, want, c.ldy, c.bias, c.relu, nil)
		for i := range want {
			// |y| is at most (1+1+1+1+1)*(1+1+1+8+8+1) = 100 times max |M|, and M is ~N(0, 1).
			if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+100*4) {
				t.Fatalf("%+v: y[%d]: exact-order reference %g, winoOutGo %g", c, i, got[i], want[i])
			}
		}
	}
}

// TestWinoOut4CatchesBugs plants bugs in winoOut4AVX512's description and requires checkOut4 to
// catch each: the checks are shown to fail when the kernel is wrong.
func TestWinoOut4CatchesBugs(t *testing.T) {
	find := func(f *kasm.Func, nth int, match func(kasm.Inst) bool) int { return plantAt(t, f, nth, match) }
	op := isOp
	bugs := []struct {
		name  string
		plant func(f *kasm.Func)
	}{
		// The last position's load (M35, the 36th) reads past the tiles when unmasked; a load of
		// another position stays inside mm, and its extra lanes are never stored.
		{"last load unmasked", func(f *kasm.Func) {
			i := find(f, 35, func(in kasm.Inst) bool { return in.Op == kasm.VMOVUPS && in.Mask.Kind == kasm.K && in.Zeroing })
			f.Body[i].Mask, f.Body[i].Zeroing = kasm.Reg{}, false
		}},
		{"stores unmasked", func(f *kasm.Func) {
			i := find(f, 3, func(in kasm.Inst) bool { return in.Op == kasm.VMOVUPS && in.Mask.Kind == kasm.K && !in.Zeroing })
			f.Body[i].Mask = kasm.Reg{}
		}},
		{"b = m1 + m2", func(f *kasm.Func) { f.Body[find(f, 0, op(kasm.VSUBPS))].Op = kasm.VADDPS }},
		{"d = s4 - s3 in the last row", func(f *kasm.Func) {
			i := find(f, 13, op(kasm.VSUBPS))
			a := f.Body[i].Args
			f.Body[i].Args = []kasm.Operand{a[1], a[0], a[2]}
		}},
		{"8 d by 4", func(f *kasm.Func) {
			i := find(f, 0, func(in kasm.Inst) bool { return in.Bcst && in.Args[0].(kasm.Mem).Disp == winoasm.Out4Eight })
			f.Body[i].Args[0] = kasm.At(winoasm.Out4Four, kasm.DX)
		}},
		{"no bias", func(f *kasm.Func) {
			i := find(f, 5, func(in kasm.Inst) bool { return in.Op == kasm.VADDPS && in.Bcst })
			f.Body = append(f.Body[:i], f.Body[i+1:]...)
		}},
		{"no ReLU", func(f *kasm.Func) {
			i := find(f, 2, op(kasm.VMAXPS))
			f.Body = append(f.Body[:i], f.Body[i+1:]...)
		}},
		{"lanes out of order", func(f *kasm.Func) { f.Body[find(f, 4, op(kasm.VSHUFF32X4))].Args[0] = kasm.Imm(0xdd) }},
		{"tail float mask of the wrong tiles", func(f *kasm.Func) {
			f.Body[find(f, 0, op(kasm.SHRQ))].Args[0] = kasm.Imm(8)
		}},
		{"one group too few", func(f *kasm.Func) { f.Body[find(f, 0, op(kasm.SUBQ))].Args[0] = kasm.Imm(32) }},
	}
	for _, b := range bugs {
		f := winoasm.Out4()
		b.plant(f)
		if err := checkOut4(f, nil); err == nil {
			t.Errorf("planted bug %q not caught", b.name)
		} else {
			t.Logf("planted bug %q: %v", b.name, err)
		}
	}
}

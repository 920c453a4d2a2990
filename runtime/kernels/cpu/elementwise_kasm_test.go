package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/sigasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// The tests in this file run the sigmoid kernels as package sigasm describes them in the kasm
// interpreter, on every machine and in every build, bit for bit against sigmoidRef (the kernels'
// operation order in Go); where the CPU has the level (sigmoidHW, elementwise_kasm_amd64_test.go)
// the generated assembly runs on the same inputs and must agree with the interpreter bit for bit,
// which checks the printing.

// sigmoidRef is 1/(1+e**-v) computed as the sigmoid kernels compute it (see sigasm.AVX2):
// sigmoidRow's arithmetic with the multiply-adds fused (kasm.FMA32: one rounding), and every
// other operation rounded to float32 where the kernel rounds it (the conversions stop Go from
// fusing).
func sigmoidRef(v float32) float32 {
	x := -v
	if lo := float32(-87.33654); lo > x { // VMAXPS x, lo: x when NaN
		x = lo
	}
	if hi := float32(88.72283); hi < x { // VMINPS x, hi
		x = hi
	}
	t := kasm.FMA32(x, 1.44269504088896341, 256.5)
	ti := uint32(0x80000000) // VCVTTPS2DQ of NaN
	if t == t {
		ti = uint32(int32(t)) // t lies in [130, 385]
	}
	n := float32(float32(int32(ti)) - 256)
	r := kasm.FMA32(n, -0.693359375, x)
	r = kasm.FMA32(n, 2.12194440e-4, r)
	p := float32(1.9875691500e-4)
	for _, c := range []float32{1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1} {
		p = kasm.FMA32(r, p, c)
	}
	p = float32(p * r)
	p = kasm.FMA32(r, p, r)
	p = float32(p + 1)
	h := ti >> 1
	s1 := math.Float32frombits((h - 1) << 23)
	s2 := math.Float32frombits((ti - h - 1) << 23)
	e := float32(float32(p*s1) * s2)
	return float32(1 / float32(e+1))
}

// sigmoidInputs returns n inputs mixing normal values of every scale with the clamp bounds,
// zeros, infinities, NaN and denormals.
func sigmoidInputs(r *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		87.33654, -87.33654, 88.72283, -88.72283, 88.8, -88.8, 100, -100, 1e30, -1e30, 1e-40, -1e-40, 0.5, -0.5, 20, -20}
	x := make([]float32, n)
	for i := range x {
		switch i % 4 {
		case 0:
			x[i] = special[r.IntN(len(special))]
		case 1:
			x[i] = float32(r.NormFloat64())
		default:
			x[i] = float32((r.Float64() - 0.5) * 200)
		}
	}
	return x
}

// sigmoidLens are the lengths the kernels are checked on: every tail of both widths, one and
// several iterations of the unrolled loops.
func sigmoidLens() []int {
	var ls []int
	for n := 0; n <= 40; n++ {
		ls = append(ls, n)
	}
	return append(ls, 63, 64, 65, 1000)
}

// runSigmoid runs f in the interpreter on x (mapped exactly, as is the y it writes, so that an
// access past n faults) and returns y, which starts as garbage.
func runSigmoid(f *kasm.Func, x []float32) ([]float32, error) {
	y := make([]float32, len(x))
	for i := range y {
		y[i] = 7
	}
	c := append([]float32(nil), sigmoidConsts...)
	var mem kasm.Memory
	m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 22}
	for i := range m.V {
		for l := range m.V[i] {
			m.V[i][l] = math.Float32bits(float32(i*16 + l))
		}
	}
	err := m.Run(f, mem.Map("x", kasm.Bytes(x)), mem.Map("y", kasm.Bytes(y)), uint64(len(x)), mem.Map("c", kasm.Bytes(c)))
	return y, err
}

// sigSameBits compares as bits, any NaN matching any NaN when nanAny.
func sigSameBits(got, want float32, nanAny bool) bool {
	if nanAny && got != got && want != want {
		return true
	}
	return math.Float32bits(got) == math.Float32bits(want)
}

// checkSigmoid runs f on every length and returns the first disagreement with sigmoidRef (bit
// for bit, NaN for NaN) or with the hardware (hw, when not nil: bit for bit, NaNs included).
func checkSigmoid(f *kasm.Func, hw func(x, y []float32, n int, c []float32)) error {
	r := rand.New(rand.NewPCG(51, 52))
	for _, n := range sigmoidLens() {
		x := sigmoidInputs(r, n)
		got, err := runSigmoid(f, x)
		if err != nil {
			return fmt.Errorf("n = %d: %v", n, err)
		}
		for i, v := range x {
			if want := sigmoidRef(v); !sigSameBits(got[i], want, true) {
				return fmt.Errorf("n = %d: interpreter: sigmoid(%g) at %d = %g (%#x), sigmoidRef %g (%#x)", n, v, i, got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
			}
		}
		if hw != nil {
			y := make([]float32, n+1)
			y[n] = 42 // a guard past the end
			hw(x, y[:n], n, sigmoidConsts)
			for i := range n {
				if !sigSameBits(y[i], got[i], false) {
					return fmt.Errorf("n = %d: hardware vs interpreter: sigmoid(%g) at %d = %#x, interpreter %#x", n, x[i], i, math.Float32bits(y[i]), math.Float32bits(got[i]))
				}
			}
			if y[n] != 42 {
				return fmt.Errorf("n = %d: hardware wrote past the end", n)
			}
		}
	}
	return nil
}

// TestSigmoidConsts: the block the Go code fills is the layout the kernels read.
func TestSigmoidConsts(t *testing.T) {
	if len(sigmoidConsts) != sigasm.Floats {
		t.Fatalf("%d floats, sigasm.Floats = %d", len(sigmoidConsts), sigasm.Floats)
	}
	want := make([]uint32, sigasm.Floats)
	for r, v := range sigasm.Values() {
		for l := range 16 {
			want[16*r+l] = v
		}
	}
	for l := range 16 {
		want[16*sigasm.RowMask+l] = 0xFFFFFFFF
	}
	for i, w := range want {
		if math.Float32bits(sigmoidConsts[i]) != w {
			t.Fatalf("float %d (row %d) = %#x, want %#x", i, i/16, math.Float32bits(sigmoidConsts[i]), w)
		}
	}
}

// TestSigmoidRef: the kernels' operation order is as accurate as sigmoidRow: within 2e-7 of the
// float64 sigmoid (or 1e-38 where the result is below the normal range), NaN for NaN.
func TestSigmoidRef(t *testing.T) {
	worst, at := 0.0, float32(0)
	check := func(x float32) {
		got, want := float64(sigmoidRef(x)), 1/(1+math.Exp(-float64(x)))
		d := math.Abs(got - want)
		if d <= 1e-38 {
			return
		}
		if e := d / want; e > worst {
			worst, at = e, x
		}
	}
	for x := float32(-120); x < 120; x += 0.00037 {
		check(x)
	}
	r := rand.New(rand.NewPCG(53, 54))
	for range 1 << 20 {
		check(float32((r.Float64() - 0.5) * 20))
	}
	for _, x := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), 1e30, -1e30, 0, 1e-40} {
		check(x)
	}
	t.Logf("sigmoidRef: %.3g relative at worst (x = %g)", worst, at)
	if worst > 2e-7 {
		t.Errorf("sigmoidRef is %.3g from the float64 sigmoid at x = %g, want <= 2e-7", worst, at)
	}
	if v := sigmoidRef(float32(math.NaN())); v == v {
		t.Errorf("sigmoidRef(NaN) = %g", v)
	}
}

// TestSigmoidInterpreted runs both kernels' descriptions on every length and checks them bit
// for bit against sigmoidRef, and against the hardware where the CPU has the level; the log
// says whether that ran.
func TestSigmoidInterpreted(t *testing.T) {
	for _, f := range []*kasm.Func{sigasm.AVX2(), sigasm.AVX512()} {
		hw := sigmoidHW(f.Name)
		if hw != nil {
			t.Logf("%s: assembly checked against the interpreter on this CPU", f.Name)
		} else {
			t.Logf("%s: the interpreter only (this CPU or build does not run the assembly)", f.Name)
		}
		if err := checkSigmoid(f, hw); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
}

// TestSigmoidCatchesBugs plants bugs in both kernels' descriptions and requires checkSigmoid to
// catch each.
func TestSigmoidCatchesBugs(t *testing.T) {
	find := func(f *kasm.Func, match func(kasm.Inst) bool) int { return plantAt(t, f, 0, match) }
	op := isOp
	reads := func(o kasm.Op, row int) func(kasm.Inst) bool {
		return func(in kasm.Inst) bool {
			m, ok := in.Args[0].(kasm.Mem)
			return in.Op == o && ok && m.Disp == int64(64*row)
		}
	}
	remove := func(f *kasm.Func, i int) { f.Body = append(f.Body[:i], f.Body[i+1:]...) }
	bugs := []struct {
		name  string
		plant func(f *kasm.Func)
	}{
		{"wrong polynomial coefficient", func(f *kasm.Func) {
			f.Body[find(f, reads(kasm.VFMADD213PS, sigasm.RowP3))].Args[0] = kasm.At(64*sigasm.RowP2, kasm.DX)
		}},
		{"no upper clamp", func(f *kasm.Func) { remove(f, find(f, op(kasm.VMINPS))) }},
		{"no lower clamp", func(f *kasm.Func) { remove(f, find(f, op(kasm.VMAXPS))) }},
		{"clamp losing NaN", func(f *kasm.Func) {
			i := find(f, op(kasm.VMAXPS))
			a := f.Body[i].Args
			f.Body[i].Args = []kasm.Operand{a[1], a[0], a[2]}
		}},
		{"tail mask one lane too many", func(f *kasm.Func) {
			f.Body[find(f, func(in kasm.Inst) bool { return in.Op == kasm.MOVQ && in.Args[0] == kasm.Imm(16) })].Args[0] = kasm.Imm(15)
		}},
		{"tail mask one lane too few", func(f *kasm.Func) {
			f.Body[find(f, func(in kasm.Inst) bool { return in.Op == kasm.MOVQ && in.Args[0] == kasm.Imm(16) })].Args[0] = kasm.Imm(17)
		}},
		{"no ln2Lo", func(f *kasm.Func) { remove(f, find(f, reads(kasm.VFMADD231PS, sigasm.RowNLn2Lo))) }},
		{"2**n off by one", func(f *kasm.Func) {
			if f.Name == "sigmoidAVX512" {
				// The zmm kernels scale by 2**n with VSCALEFPS: scale by 2**(n+1) instead, adding
				// 1.0 to n (in the scale's first operand) just before it.
				i := find(f, op(kasm.VSCALEFPS))
				n := f.Body[i].Args[0]
				f.Body = append(f.Body[:i], append([]kasm.Inst{{Op: kasm.VADDPS, Args: []kasm.Operand{kasm.ZReg(2), n, n}}}, f.Body[i:]...)...)
				return
			}
			remove(f, find(f, reads(kasm.VPSUBD, sigasm.RowInt1)))
		}},
	}
	for _, mk := range []func() *kasm.Func{sigasm.AVX2, sigasm.AVX512} {
		for _, b := range bugs {
			f := mk()
			b.plant(f)
			if err := checkSigmoid(f, nil); err == nil {
				t.Errorf("%s: planted bug %q not caught", f.Name, b.name)
			} else {
				t.Logf("%s: planted bug %q: %v", f.Name, b.name, err)
			}
		}
	}
}

// TestSigmoidLevels runs Unary's sigmoid at every level this machine has against the float64
// sigmoid (2e-7 relative, or 1e-38 below the normal range), on lengths that leave every tail.
func TestSigmoidLevels(t *testing.T) {
	workers := NewWorkers(2)
	defer workers.Close()
	r := rand.New(rand.NewPCG(55, 56))
	for _, l := range testLevels(t) {
		k := &Unary{Func: FuncSigmoid, code: tableFor(l)}
		for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 1000, 40000} {
			x := sigmoidInputs(r, n)
			y := make([]float32, n)
			k.Run(workers, x, y)
			for i, v := range x {
				want := 1 / (1 + math.Exp(-float64(v)))
				got := float64(y[i])
				if v != v {
					if got == got {
						t.Fatalf("%s: sigmoid(NaN) = %g", l, got)
					}
					continue
				}
				if d := math.Abs(got - want); d > 2e-7*want && d > 1e-38 {
					t.Fatalf("%s n=%d: sigmoid(%g) = %g, want %g", l, n, v, got, want)
				}
			}
		}
	}
}

// BenchmarkSigmoid times each level's sigmoid on one thread, in ns per element.
func BenchmarkSigmoid(b *testing.B) {
	const n = 64 << 10
	r := rand.New(rand.NewPCG(57, 58))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 4)
	}
	y := make([]float32, n)
	for _, l := range isa.Levels() {
		k := tableFor(l)
		b.Run(l.String(), func(b *testing.B) {
			for b.Loop() {
				k.sigmoid(x, y)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/n, "ns/elem")
		})
	}
}

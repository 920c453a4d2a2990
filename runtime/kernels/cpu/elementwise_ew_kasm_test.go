package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/ewasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/sigasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// The tests in this file run the kernels of package ewasm (Clip, HardSigmoid, HardSwish, the
// binary arithmetic) and sigasm's SiLU in the kasm interpreter, on every machine and in every
// build, bit for bit against Go references of the kernels' operation order; where the CPU has
// the level (ewHW) the generated assembly runs on the same inputs and must agree with the
// interpreter bit for bit, which checks the printing.

// x86Max and x86Min are VMAXPS b, a and VMINPS b, a: a when it is strictly greater (smaller),
// else b (b when either is NaN, or both are zeros).
func x86Max(b, a float32) float32 {
	if a > b {
		return a
	}
	return b
}

func x86Min(b, a float32) float32 {
	if a < b {
		return a
	}
	return b
}

// The references: each kernel's operations in its order, rounded where it rounds.
func clipRef(v, lo, hi float32) float32 { return x86Min(x86Max(v, lo), hi) }

func hardSigmoidRef(v, alpha, beta float32) float32 {
	t := float32(v * alpha)
	t = float32(t + beta)
	return x86Max(x86Min(t, 1), 0)
}

func hardSwishRef(v float32) float32 {
	t := float32(v / 6)
	t = float32(t + 0.5)
	t = x86Max(x86Min(t, 1), 0)
	return float32(v * t)
}

func siluRef(v float32) float32 { return float32(v * sigmoidRef(v)) }

func binaryRef(op string, a, b float32) float32 {
	switch op {
	case "add":
		return a + b
	case "sub":
		return a - b
	case "rsub":
		return b - a
	case "mul":
		return a * b
	case "div":
		return a / b
	}
	return b / a // rdiv
}

// ewCase is one kernel to check: its description, its block, and the reference of element i
// given the operands.
type ewCase struct {
	f      *kasm.Func
	c      []float32
	binary bool // a, b, y
	vs     bool // b is one value
	ref    func(a, b float32) float32
}

func unaryBlockFor(u *Unary) []float32 { return append([]float32(nil), u.unaryBlock()...) }

// ewCases returns every kernel of both widths with its reference; fs builds the descriptions
// (the tests of planted bugs pass modified ones).
func ewCases() []ewCase {
	var cs []ewCase
	for _, kind := range []kasm.Kind{kasm.Y, kasm.Z} {
		cs = append(cs,
			ewCase{f: ewasm.UnaryFunc(ewasm.Clip, kind), c: unaryBlockFor(&Unary{Func: FuncClip, Lo: 0, Hi: 6}), ref: func(v, _ float32) float32 { return clipRef(v, 0, 6) }},
			ewCase{f: ewasm.UnaryFunc(ewasm.Clip, kind), c: unaryBlockFor(&Unary{Func: FuncClip, Lo: -1.5, Hi: 2.5}), ref: func(v, _ float32) float32 { return clipRef(v, -1.5, 2.5) }},
			ewCase{f: ewasm.UnaryFunc(ewasm.HardSigmoid, kind), c: unaryBlockFor(&Unary{Func: FuncHardSigmoid, Alpha: 0.2, Beta: 0.5}), ref: func(v, _ float32) float32 { return hardSigmoidRef(v, 0.2, 0.5) }},
			ewCase{f: ewasm.UnaryFunc(ewasm.HardSigmoid, kind), c: unaryBlockFor(&Unary{Func: FuncHardSigmoid, Alpha: 1.0 / 6, Beta: 0.5}), ref: func(v, _ float32) float32 { return hardSigmoidRef(v, 1.0/6, 0.5) }},
			ewCase{f: ewasm.UnaryFunc(ewasm.HardSwish, kind), c: unaryBlockFor(&Unary{Func: FuncHardSwish}), ref: func(v, _ float32) float32 { return hardSwishRef(v) }},
		)
		silu := sigasm.SiLUAVX2()
		if kind == kasm.Z {
			silu = sigasm.SiLUAVX512()
		}
		cs = append(cs, ewCase{f: silu, c: sigmoidConsts, ref: func(v, _ float32) float32 { return siluRef(v) }})
		for _, op := range ewasm.BinaryOps {
			for _, vs := range []bool{false, true} {
				cs = append(cs, ewCase{f: ewasm.BinaryFunc(op, vs, kind), c: ewMasks, binary: true, vs: vs, ref: func(a, b float32) float32 { return binaryRef(op, a, b) }})
			}
		}
	}
	return cs
}

// checkEW runs c.f in the interpreter on every length (operands mapped exactly, so that an
// access past n faults) against c.ref bit for bit (any NaN for NaN), and against the hardware
// when hw is not nil (bit for bit, NaNs included, with a guard past the end of y).
func checkEW(c ewCase, hw func(ptrs []*float32, n int, cb *float32)) error {
	r := rand.New(rand.NewPCG(61, 62))
	for _, n := range sigmoidLens() {
		a := sigmoidInputs(r, n)
		b := sigmoidInputs(r, n)
		if c.vs {
			b = []float32{float32(r.NormFloat64())}
			if n%3 == 0 {
				b[0] = 0
			}
		}
		y := make([]float32, n)
		for i := range y {
			y[i] = 7
		}
		cb := append([]float32(nil), c.c...)
		var mem kasm.Memory
		m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 22}
		for i := range m.V {
			for l := range m.V[i] {
				m.V[i][l] = math.Float32bits(float32(i*16 + l))
			}
		}
		var err error
		if c.binary {
			err = m.Run(c.f, mem.Map("a", kasm.Bytes(a)), mem.Map("b", kasm.Bytes(b)), mem.Map("y", kasm.Bytes(y)), uint64(n), mem.Map("c", kasm.Bytes(cb)))
		} else {
			err = m.Run(c.f, mem.Map("x", kasm.Bytes(a)), mem.Map("y", kasm.Bytes(y)), uint64(n), mem.Map("c", kasm.Bytes(cb)))
		}
		if err != nil {
			return fmt.Errorf("n = %d: %v", n, err)
		}
		bAt := func(i int) float32 {
			if c.vs {
				return b[0]
			}
			return b[i]
		}
		for i := range n {
			if want := c.ref(a[i], bAt(i)); !sigSameBits(y[i], want, true) {
				return fmt.Errorf("n = %d: interpreter at %d: f(%g, %g) = %g (%#x), reference %g (%#x)", n, i, a[i], bAt(i), y[i], math.Float32bits(y[i]), want, math.Float32bits(want))
			}
		}
		if hw == nil {
			continue
		}
		hy := make([]float32, n+1)
		hy[n] = 42
		ap, bp, yp := &cb[0], &cb[0], &cb[0] // n = 0: any valid pointer
		if n > 0 {
			ap, yp = &a[0], &hy[0]
		}
		if len(b) > 0 {
			bp = &b[0]
		}
		ptrs := []*float32{ap, yp}
		if c.binary {
			ptrs = []*float32{ap, bp, yp}
		}
		hw(ptrs, n, &cb[0])
		for i := range n {
			if !sigSameBits(hy[i], y[i], false) {
				return fmt.Errorf("n = %d: hardware vs interpreter at %d: f(%g, %g) = %#x, interpreter %#x", n, i, a[i], bAt(i), math.Float32bits(hy[i]), math.Float32bits(y[i]))
			}
		}
		if hy[n] != 42 {
			return fmt.Errorf("n = %d: hardware wrote past the end", n)
		}
	}
	return nil
}

// TestEWInterpreted checks every kernel's description on every length against its reference,
// and against the hardware where the CPU has the level.
func TestEWInterpreted(t *testing.T) {
	ran := 0
	for _, c := range ewCases() {
		hw := ewHW(c.f.Name)
		if hw != nil {
			ran++
		}
		if err := checkEW(c, hw); err != nil {
			t.Errorf("%s: %v", c.f.Name, err)
		}
	}
	t.Logf("%d kernel cases checked against the hardware too", ran)
}

// TestEWCatchesBugs plants bugs in the descriptions and requires checkEW to catch each.
func TestEWCatchesBugs(t *testing.T) {
	find := func(f *kasm.Func, match func(kasm.Inst) bool) int { return plantAt(t, f, 0, match) }
	op := isOp
	remove := func(f *kasm.Func, i int) { f.Body = append(f.Body[:i], f.Body[i+1:]...) }
	swap := func(f *kasm.Func, i int) {
		a := f.Body[i].Args
		f.Body[i].Args = []kasm.Operand{a[1], a[0], a[2]}
	}
	maskStart := func(in kasm.Inst) bool { return in.Op == kasm.MOVQ && in.Args[0] == kasm.Imm(16) }
	bugs := []struct {
		name  string
		which string // the kernel name prefix it applies to
		plant func(f *kasm.Func)
	}{
		{"clip: no upper bound", "clip", func(f *kasm.Func) { remove(f, find(f, op(kasm.VMINPS))) }},
		{"clip: lower bound losing NaN", "clip", func(f *kasm.Func) { swap(f, find(f, op(kasm.VMAXPS))) }},
		{"hardSigmoid: no beta", "hardSigmoid", func(f *kasm.Func) { remove(f, find(f, op(kasm.VADDPS))) }},
		{"hardSigmoid: no floor", "hardSigmoid", func(f *kasm.Func) { remove(f, find(f, op(kasm.VMAXPS))) }},
		{"hardSwish: no multiply by x", "hardSwish", func(f *kasm.Func) { remove(f, find(f, op(kasm.VMULPS))) }},
		{"hardSwish: tail mask one lane too many", "hardSwish", func(f *kasm.Func) { f.Body[find(f, maskStart)].Args[0] = kasm.Imm(15) }},
		{"silu: the sigmoid only", "silu", func(f *kasm.Func) {
			i := find(f, op(kasm.VDIVPS))
			j := i + 1
			for f.Body[j].Op != kasm.VMULPS {
				j++
			}
			remove(f, j)
		}},
		{"rsub: operands not swapped", "rsub", func(f *kasm.Func) { swap(f, find(f, op(kasm.VSUBPS))) }},
		{"div: operands swapped", "div", func(f *kasm.Func) { swap(f, find(f, op(kasm.VDIVPS))) }},
		{"add: tail mask one lane too few", "add", func(f *kasm.Func) { f.Body[find(f, maskStart)].Args[0] = kasm.Imm(17) }},
		{"mul: tail mask one lane too many", "mul", func(f *kasm.Func) { f.Body[find(f, maskStart)].Args[0] = kasm.Imm(15) }},
	}
	for _, b := range bugs {
		n := 0
		for _, c := range ewCases() {
			if len(c.f.Name) < len(b.which) || c.f.Name[:len(b.which)] != b.which {
				continue
			}
			n++
			b.plant(c.f)
			if err := checkEW(c, nil); err == nil {
				t.Errorf("%s: planted bug %q not caught", c.f.Name, b.name)
			}
		}
		if n == 0 {
			t.Errorf("planted bug %q: no kernel", b.name)
		}
	}
}

// TestEWConsts: the layout constants of package cpu are ewasm's.
func TestEWConsts(t *testing.T) {
	if ewMaskOff != ewasm.MaskOff || ewUnaryFloats != ewasm.UnaryFloats || len(ewMasks) != ewasm.MaskFloats {
		t.Fatal("the block layout of package cpu differs from ewasm's")
	}
	b := (&Unary{Func: FuncHardSigmoid, Alpha: 2, Beta: 3}).unaryBlock()
	if b[ewasm.ParA] != 2 || b[ewasm.ParB] != 3 || b[ewasm.ParOne] != 1 || b[ewasm.ParSix] != 6 || b[ewasm.ParHalf] != 0.5 {
		t.Fatalf("block %v", b[:8])
	}
}

// TestEWRefs: the references (and so the kernels) are within 1e-6 of the float64 definitions,
// relative to max(1, |y|) (HardSwish's x/6 + 0.5 cancels near x = -3, where its relative error
// is unbounded in float32 as in the Go loop).
func TestEWRefs(t *testing.T) {
	r := rand.New(rand.NewPCG(63, 64))
	for range 1 << 18 {
		x := float32((r.Float64() - 0.5) * 40)
		xd := float64(x)
		check := func(name string, got float32, want float64) {
			if d := math.Abs(float64(got) - want); d > 1e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("%s(%g) = %g, want %g", name, x, got, want)
			}
		}
		check("hardSwish", hardSwishRef(x), xd*math.Max(0, math.Min(1, xd/6+0.5)))
		check("hardSigmoid", hardSigmoidRef(x, 0.2, 0.5), math.Max(0, math.Min(1, 0.2*xd+0.5)))
		check("silu", siluRef(x), xd/(1+math.Exp(-xd)))
		check("clip", clipRef(x, 0, 6), math.Max(0, math.Min(6, xd)))
	}
}

// TestEWLevels runs Unary's Clip, HardSigmoid, HardSwish, SiLU and Binary at every level this
// machine has against the generic level's Go loops (equal as numbers; NaN for NaN) on lengths
// that leave every tail and split over threads.
func TestEWLevels(t *testing.T) {
	workers := NewWorkers(2)
	defer workers.Close()
	r := rand.New(rand.NewPCG(65, 66))
	same := func(got, want float32) bool { return got == want || (got != got && want != want) }
	// SiLU's assembly fuses multiply-adds: within 2e-7 of the generic level's.
	close := func(got, want float32) bool {
		return same(got, want) || math.Abs(float64(got-want)) <= 4e-7*math.Max(1e-30, math.Abs(float64(want)))
	}
	for _, l := range testLevels(t) {
		for _, u := range []struct {
			Func                UnaryFunc
			Lo, Hi, Alpha, Beta float32
		}{{Func: FuncClip, Lo: 0, Hi: 6}, {Func: FuncHardSigmoid, Alpha: 0.2, Beta: 0.5}, {Func: FuncHardSwish}, {Func: FuncSiLU}} {
			k := &Unary{Func: u.Func, Lo: u.Lo, Hi: u.Hi, Alpha: u.Alpha, Beta: u.Beta, code: tableFor(l)}
			g := &Unary{Func: u.Func, Lo: u.Lo, Hi: u.Hi, Alpha: u.Alpha, Beta: u.Beta, code: &goTable}
			for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 1000, 70000} {
				x := sigmoidInputs(r, n)
				y, w := make([]float32, n), make([]float32, n)
				k.Run(workers, x, y)
				g.Run(workers, x, w)
				for i := range x {
					if !close(y[i], w[i]) || (u.Func != FuncSiLU && !same(y[i], w[i])) {
						t.Fatalf("%s func %d n=%d: f(%g) = %g, generic %g", l, u.Func, n, x[i], y[i], w[i])
					}
				}
			}
		}
		for _, f := range []BinaryFunc{FuncAdd, FuncSub, FuncMul, FuncDiv} {
			for _, bFirst := range []bool{false, true} {
				for _, c := range []struct{ n, per int }{{0, 1}, {1, 1}, {37, 1}, {1000, 1}, {70000, 1}, {49 * 96, 49}, {196 * 40, 196}, {17 * 3, 17}, {70000, 70000}, {7 * 5000, 5000}} {
					a := sigmoidInputs(r, c.n)
					b := sigmoidInputs(r, c.n/c.per)
					k := &Binary{Func: f, Per: c.per, BFirst: bFirst, code: tableFor(l)}
					g := &Binary{Func: f, Per: c.per, BFirst: bFirst, code: &goTable}
					y, w := make([]float32, c.n), make([]float32, c.n)
					k.Run(workers, a, b, y)
					g.Run(workers, a, b, w)
					for i := range y {
						if !same(y[i], w[i]) {
							t.Fatalf("%s binary %d bFirst=%v n=%d per=%d at %d: %g, generic %g", l, f, bFirst, c.n, c.per, i, y[i], w[i])
						}
					}
				}
			}
		}
	}
}

// BenchmarkEW times each level's kernels on one thread, in ns per element (a 64K-element
// tensor, which stays in L2).
func BenchmarkEW(b *testing.B) {
	const n = 64 << 10
	r := rand.New(rand.NewPCG(67, 68))
	x, z := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], z[i] = float32(r.NormFloat64()*4), float32(r.NormFloat64())
	}
	y := make([]float32, n)
	clip := (&Unary{Func: FuncClip, Lo: 0, Hi: 6}).unaryBlock()
	hsig := (&Unary{Func: FuncHardSigmoid, Alpha: 0.2, Beta: 0.5}).unaryBlock()
	hsw := (&Unary{Func: FuncHardSwish}).unaryBlock()
	for _, l := range isa.Levels() {
		k := tableFor(l)
		for _, c := range []struct {
			name string
			run  func()
		}{
			{"clip", func() { k.clip(x, y, clip) }},
			{"hardSigmoid", func() { k.hardSigmoid(x, y, hsig) }},
			{"hardSwish", func() { k.hardSwish(x, y, hsw) }},
			{"silu", func() { k.silu(x, y) }},
			{"sigmoid", func() { k.sigmoid(x, y) }},
			{"addVV", func() { k.binary(FuncAdd, false, x, z, y) }},
			{"mulVS", func() { k.binary(FuncMul, false, x, z[:1], y) }},
			{"mulVS48", func() {
				for i := 0; i+48 <= n; i += 48 {
					k.binary(FuncMul, false, x[i:i+48], z[:1], y[i:i+48])
				}
			}},
			{"mulVS49", func() {
				for i := 0; i+49 <= n; i += 49 {
					k.binary(FuncMul, false, x[i:i+49], z[:1], y[i:i+49])
				}
			}},
		} {
			b.Run(l.String()+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					c.run()
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/n, "ns/elem")
			})
		}
	}
}

// grainTask records the chunks Workers hands it.
type grainTask struct {
	mu     sync.Mutex
	chunks [][2]int
}

func (g *grainTask) Do(lo, hi int) {
	g.mu.Lock()
	g.chunks = append(g.chunks, [2]int{lo, hi})
	g.mu.Unlock()
}

// TestEWGrain: Unary and Binary's grain keeps a tensor of up to 32K elements on the calling
// thread (one chunk, no hand-off) and splits a larger one.
func TestEWGrain(t *testing.T) {
	workers := NewWorkers(2)
	defer workers.Close()
	for _, c := range []struct{ n, chunks int }{{1000, 1}, {16385, 1}, {32768, 1}, {32769, 2}, {100000, 2}} {
		var g grainTask
		var wg Group
		workers.Run(&g, c.n, unaryGrain, &wg)
		if len(g.chunks) != c.chunks {
			t.Errorf("n = %d: %d chunks %v, want %d", c.n, len(g.chunks), g.chunks, c.chunks)
		}
	}
}

// BenchmarkEWRun times Unary (HardSwish) and Binary (Mul, per-channel) through Workers of 2
// threads on small and large tensors: below unaryGrain they run inline.
func BenchmarkEWRun(b *testing.B) {
	workers := NewWorkers(2)
	defer workers.Close()
	for _, n := range []int{8 << 10, 24 << 10, 32 << 10, 48 << 10, 128 << 10} {
		x, y := make([]float32, n), make([]float32, n)
		s := make([]float32, n/64)
		u := &Unary{Func: FuncHardSwish}
		m := &Binary{Func: FuncMul, Per: 64}
		b.Run(fmt.Sprintf("hardSwish/%d", n), func(b *testing.B) {
			for b.Loop() {
				u.Run(workers, x, y)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(n), "ns/elem")
		})
		b.Run(fmt.Sprintf("mulPer64/%d", n), func(b *testing.B) {
			for b.Loop() {
				m.Run(workers, x, s, y)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(n), "ns/elem")
		})
	}
}

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/poolasm"
)

// The tests in this file run the AVX-512 max-pool plane kernels as package poolasm describes
// them in the kasm interpreter, on every machine and in every build, against the portable
// kernels (maxTapsGo, maxTaps2Go), with NaN and ±Inf inputs; every slice is mapped exactly, so a
// read past the last tap (or past the one extra float the stride-2 kernel may read) faults, and
// the gaps between output rows must keep their sentinel. Where the CPU has AVX-512 (maxTapsHW)
// the assembly runs on the same inputs and must agree with the interpreter bit for bit.

// maxTapsCase is one call of a plane kernel.
type maxTapsCase struct {
	s2                                   bool // the stride-2 kernel
	n, rows, taps, step, sadv, dp, slack int
	src                                  []float32
}

// srcLen is how many floats the kernel may read: the last row's last tap, and for the stride-2
// kernel one more.
func (c maxTapsCase) srcLen() int {
	if c.s2 {
		return (c.rows-1)*c.sadv + 2*(c.n-1) + (c.taps-1)*c.step + 2
	}
	return (c.rows-1)*c.sadv + (c.taps-1)*c.step + c.n
}

func (c maxTapsCase) String() string {
	return fmt.Sprintf("s2 %v n %d rows %d taps %d step %d sadv %d dp %d", c.s2, c.n, c.rows, c.taps, c.step, c.sadv, c.dp)
}

// newMaxTapsCase returns a random case with n columns: steps and row advances as a max pool's
// two passes use them (row pitches, dilations), and output rows with gaps (dp > n) or without.
func newMaxTapsCase(rng *rand.Rand, s2 bool, n int) maxTapsCase {
	c := maxTapsCase{s2: s2, n: n, rows: 1 + rng.IntN(4), taps: 1 + rng.IntN(5)}
	width := n
	if s2 {
		width = 2 * n
	}
	switch rng.IntN(3) {
	case 0: // the vertical pass: taps a whole row apart
		c.step = width + rng.IntN(3)
		c.sadv = c.step * (1 + rng.IntN(2))
	default: // the horizontal pass: taps a dilation apart in a padded row
		c.step = 1 + rng.IntN(3)
		c.sadv = width + (c.taps-1)*c.step + 1 + rng.IntN(3)
	}
	c.dp = n + rng.IntN(3)
	c.src = maxTestData(rng, c.srcLen(), []float64{0, 0.02, 0.3}[rng.IntN(3)])
	return c
}

// sentinel fills the output before a kernel runs; the gaps between rows must keep it.
const maxTapsSentinel = 12345

// runMaxTaps runs f in the interpreter on c and returns the output ((rows-1)*dp + n floats).
func runMaxTaps(f *kasm.Func, c maxTapsCase) ([]float32, error) {
	y := make([]float32, (c.rows-1)*c.dp+c.n)
	fill(y, maxTapsSentinel)
	var mem kasm.Memory
	m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 26}
	for i := range m.V {
		for l := range m.V[i] {
			m.V[i][l] = math.Float32bits(float32(i*16 + l))
		}
	}
	err := m.Run(f, mem.Map("dst", kasm.Bytes(y)), mem.Map("src", kasm.Bytes(c.src)), uint64(c.n), uint64(c.rows),
		uint64(c.taps), uint64(c.step), uint64(c.sadv), uint64(c.dp), mem.Map("tab", kasm.Bytes(poolasm.Table())))
	return y, err
}

// checkMaxTaps runs f on c in the interpreter and compares it with the portable kernel, and the
// hardware (hw, when not nil) with the interpreter bit for bit.
func checkMaxTaps(f *kasm.Func, hw func(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int), c maxTapsCase) error {
	got, err := runMaxTaps(f, c)
	if err != nil {
		return fmt.Errorf("%v: %w", c, err)
	}
	want := make([]float32, len(got))
	fill(want, maxTapsSentinel)
	if c.s2 {
		maxTaps2Go(want, c.dp, c.src, c.sadv, c.step, c.taps, c.rows, c.n)
	} else {
		maxTapsGo(want, c.dp, c.src, c.sadv, c.step, c.taps, c.rows, c.n)
	}
	for i := range want {
		if !sameMax(got[i], want[i]) {
			return fmt.Errorf("%v: output %d (row %d) = %v, want %v", c, i, i/c.dp, got[i], want[i])
		}
	}
	if hw == nil {
		return nil
	}
	y := make([]float32, len(got)+8)
	fill(y, maxTapsSentinel)
	hw(y, c.dp, c.src, c.sadv, c.step, c.taps, c.rows, c.n)
	for i := range got {
		if math.Float32bits(y[i]) != math.Float32bits(got[i]) {
			return fmt.Errorf("%v: hardware vs interpreter at %d: %#x, interpreter %#x", c, i, math.Float32bits(y[i]), math.Float32bits(got[i]))
		}
	}
	for _, v := range y[len(got):] {
		if v != maxTapsSentinel {
			return fmt.Errorf("%v: hardware wrote past the end", c)
		}
	}
	return nil
}

// maxTapsLens are the row lengths checked: every tail of a zmm, one and several full vectors,
// and the output rows of GoogLeNet, ResNet and SqueezeNet pools.
func maxTapsLens() []int {
	ls := []int{}
	for n := 1; n <= 50; n++ {
		ls = append(ls, n)
	}
	return append(ls, 55, 56, 64, 111, 112)
}

// maxTapsFuncs are the max-pool descriptions under test.
func maxTapsFuncs() []*kasm.Func { return []*kasm.Func{poolasm.MaxTaps(), poolasm.MaxTaps2()} }

// checkMaxTapsFunc checks f on random cases at every length (trials per length); quick stops
// at the first failure.
func checkMaxTapsFunc(f *kasm.Func, hw func(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int), trials int) error {
	rng := rand.New(rand.NewPCG(11, 12))
	s2 := f.Name == "maxTaps2AVX512"
	for _, n := range maxTapsLens() {
		for range trials {
			if err := checkMaxTaps(f, hw, newMaxTapsCase(rng, s2, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestMaxPoolKasm runs each AVX-512 max-pool description in the interpreter against the
// portable kernels, and against the assembly where this CPU has AVX-512; the log says which.
func TestMaxPoolKasm(t *testing.T) {
	for _, f := range maxTapsFuncs() {
		hw := maxTapsHW(f.Name)
		if err := checkMaxTapsFunc(f, hw, 6); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		t.Logf("%s: interpreter agrees with the portable kernel; hardware checked: %v", f.Name, hw != nil)
	}
	if poolTabHW != nil && !slices.Equal(poolTabHW, poolasm.Table()) {
		t.Errorf("the assembly's table poolTab is not poolasm.Table()")
	}
}

// TestMaxPoolKasmPlantedBugs: the interpreter check catches a NaN test under the wrong
// predicate, a max that replaces a NaN accumulator, a skipped tap, a tail mask one lane short, a full vector stored under the tail mask, and a
// wrong stride-2 permutation (each planted in the description, which must then fail).
func TestMaxPoolKasmPlantedBugs(t *testing.T) {
	bugs := []struct {
		name   string
		kernel string
		mutate func(t *testing.T, f *kasm.Func)
	}{
		{"NaN test under the wrong predicate", "maxTapsAVX512", func(t *testing.T, f *kasm.Func) {
			i := plantAt(t, f, 0, isOp(kasm.VCMPPS))
			f.Body[i].Args[0] = kasm.Imm(4) // NEQ: acc != acc only where it is NaN, so numbers never fold
		}},
		{"NaN accumulator not kept", "maxTaps2AVX512", func(t *testing.T, f *kasm.Func) {
			for {
				i := slices.IndexFunc(f.Body, func(in kasm.Inst) bool { return in.Op == kasm.VCMPPS })
				if i < 0 {
					break
				}
				// The max then runs under the tail mask itself: it replaces a NaN accumulator.
				k := f.Body[i].Mask
				f.Body = slices.Delete(f.Body, i, i+1)
				f.Body[i].Mask = k
			}
		}},
		{"a tap skipped", "maxTapsAVX512", func(t *testing.T, f *kasm.Func) {
			i := plantAt(t, f, 0, isOp(kasm.ADDQ))
			for ; f.Body[i].Args[0] != kasm.R8; i++ {
			}
			f.Body[i].Args = []kasm.Operand{kasm.R8, kasm.R12}
			f.Body = slices.Insert(f.Body, i, kasm.Inst{Op: kasm.ADDQ, Args: []kasm.Operand{kasm.R8, kasm.R12}})
		}},
		{"tail mask one lane short", "maxTapsAVX512", func(t *testing.T, f *kasm.Func) {
			i := plantAt(t, f, 0, isOp(kasm.INCQ))
			f.Body = slices.Delete(f.Body, i, i+1)
		}},
		{"wrong permutation", "maxTaps2AVX512", func(t *testing.T, f *kasm.Func) {
			i := plantAt(t, f, 0, isOp(kasm.VSHUFPS))
			f.Body[i].Args[0] = kasm.Imm(0xDD) // the odd lanes
		}},
	}
	for _, bug := range bugs {
		var f *kasm.Func
		for _, g := range maxTapsFuncs() {
			if g.Name == bug.kernel {
				f = g
			}
		}
		bug.mutate(t, f)
		err := checkMaxTapsFunc(f, nil, 2)
		if err == nil {
			t.Errorf("%s: %s not caught", bug.kernel, bug.name)
			continue
		}
		t.Logf("%s: %s caught: %v", bug.kernel, bug.name, err)
	}
}

// TestMaxPoolGeneratedFiles: the checked-in assembly and declarations are what the
// descriptions print (a stale file fails here, with `go generate` as the fix).
func TestMaxPoolGeneratedFiles(t *testing.T) {
	for path, want := range map[string][]byte{
		"pool2d_avx512_amd64.s":       poolasm.AsmFile().Bytes(),
		"pool2d_avx512_decl_amd64.go": poolasm.Decl(),
	} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from what package poolasm prints: run go generate", path)
		}
	}
}

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/poolasm"
)

// The tests in this file run the AVX-512 2x2 average pool with a prologue (poolasm.Avg2x2) in the
// kasm interpreter, on every machine and in every build, against avg2x2Ref (the AVX2 kernel's
// operation order: one FMA per tap, rows added, then columns), with NaN and ±Inf inputs; where
// the CPU has AVX-512 the assembly must agree with the interpreter bit for bit, and with the
// AVX2 kernel (the avx2 level's bits, which the avx512 level keeps).

// avg2x2Case is one call of the plane kernel.
type avg2x2Case struct {
	n, rows, wd, dp     int
	scale, shift, floor float32
	src                 []float32
}

func (c avg2x2Case) String() string {
	return fmt.Sprintf("n %d rows %d wd %d dp %d floor %v", c.n, c.rows, c.wd, c.dp, c.floor)
}

// avg2x2Ref is output k of row r in the kernels' order: f(v) = max(fma(v, scale, shift), floor)
// (v when it is NaN), ((f(a0) + f(b0)) + (f(a1) + f(b1))) / 4.
func avg2x2Ref(c avg2x2Case, r, k int) float32 {
	f := func(v float32) float32 {
		v = kasm.FMA32(v, c.scale, c.shift)
		if v != v || v > c.floor {
			return v
		}
		return c.floor
	}
	a, b := c.src[2*r*c.wd+2*k:], c.src[(2*r+1)*c.wd+2*k:]
	return ((f(a[0]) + f(b[0])) + (f(a[1]) + f(b[1]))) * 0.25
}

// newAvg2x2Case returns a random case with n outputs per row: odd and even input widths,
// output rows with gaps or without, a ReLU floor or none.
func newAvg2x2Case(rng *rand.Rand, n int) avg2x2Case {
	c := avg2x2Case{n: n, rows: 1 + rng.IntN(3), wd: 2*n + rng.IntN(3), dp: n + rng.IntN(3),
		scale: float32(0.5 + rng.Float64()), shift: float32(rng.NormFloat64() * 0.5)}
	if rng.IntN(2) == 0 {
		c.floor = float32(math.Inf(-1))
	}
	c.src = maxTestData(rng, (2*c.rows-1)*c.wd+2*n, []float64{0, 0.02}[rng.IntN(2)])
	return c
}

// runAvg2x2 runs f in the interpreter on c; the output starts as the sentinel.
func runAvg2x2(f *kasm.Func, c avg2x2Case) ([]float32, error) {
	y := make([]float32, (c.rows-1)*c.dp+c.n)
	fill(y, maxTapsSentinel)
	coef := make([]float32, poolasm.Coefs)
	coef[poolasm.CoefScale], coef[poolasm.CoefShift], coef[poolasm.CoefFloor], coef[poolasm.CoefInv] = c.scale, c.shift, c.floor, 0.25
	var mem kasm.Memory
	m := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 26}
	err := m.Run(f, mem.Map("dst", kasm.Bytes(y)), mem.Map("src", kasm.Bytes(c.src)), uint64(c.n), uint64(c.rows),
		uint64(c.wd), uint64(c.dp), mem.Map("c", kasm.Bytes(coef)), mem.Map("tab", kasm.Bytes(poolasm.Table())))
	return y, err
}

// checkAvg2x2 checks f on random cases at every length up to 40 and DenseNet's row lengths
// (trials each), against avg2x2Ref and, with hw, the hardware kernels this CPU runs.
func checkAvg2x2(f *kasm.Func, trials int, hw bool) error {
	rng := rand.New(rand.NewPCG(15, 16))
	hw512, hw2 := avg2x2HW()
	if !hw {
		hw512, hw2 = nil, nil
	}
	lens := []int{}
	for n := 1; n <= 40; n++ {
		lens = append(lens, n)
	}
	for _, n := range append(lens, 56, 64, 112) {
		for range trials {
			c := newAvg2x2Case(rng, n)
			got, err := runAvg2x2(f, c)
			if err != nil {
				return fmt.Errorf("%v: %w", c, err)
			}
			for i, v := range got {
				r, k := i/c.dp, i%c.dp
				want := float32(maxTapsSentinel)
				if k < c.n {
					want = avg2x2Ref(c, r, k)
				}
				if math.Float32bits(v) != math.Float32bits(want) && !(v != v && want != want) {
					return fmt.Errorf("%v: output %d (row %d) = %v, want %v", c, i, r, v, want)
				}
			}
			for _, hw := range []func(dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32){hw512, hw2} {
				if hw == nil {
					continue
				}
				y := make([]float32, len(got)+8)
				fill(y, maxTapsSentinel)
				hw(y, c.dp, c.src, c.wd, c.rows, c.n, c.scale, c.shift, c.floor)
				for i := range got {
					if math.Float32bits(y[i]) != math.Float32bits(got[i]) {
						return fmt.Errorf("%v: hardware vs interpreter at %d: %#x, interpreter %#x", c, i, math.Float32bits(y[i]), math.Float32bits(got[i]))
					}
				}
				if slices.ContainsFunc(y[len(got):], func(v float32) bool { return v != maxTapsSentinel }) {
					return fmt.Errorf("%v: hardware wrote past the end", c)
				}
			}
		}
	}
	return nil
}

// TestAvg2x2Kasm runs poolasm.Avg2x2 in the interpreter against avg2x2Ref, and the AVX-512 and
// AVX2 assembly against the interpreter where this CPU has them; the log says which.
func TestAvg2x2Kasm(t *testing.T) {
	if err := checkAvg2x2(poolasm.Avg2x2(), 4, true); err != nil {
		t.Fatal(err)
	}
	hw512, hw2 := avg2x2HW()
	t.Logf("avg2x2PlaneAVX512: interpreter agrees with avg2x2Ref; hardware checked: avx512 %v, avx2 %v", hw512 != nil, hw2 != nil)
}

// TestAvg2x2KasmPlantedBugs: the check catches a prologue without its floor, a mul for the
// FMA (two roundings), odd columns summed twice, a missing permutation and a tail one lane short.
func TestAvg2x2KasmPlantedBugs(t *testing.T) {
	bugs := []struct {
		name   string
		mutate func(t *testing.T, f *kasm.Func)
	}{
		{"no floor", func(t *testing.T, f *kasm.Func) {
			f.Body = slices.DeleteFunc(f.Body, func(in kasm.Inst) bool { return in.Op == kasm.VMAXPS })
		}},
		{"prologue in two roundings", func(t *testing.T, f *kasm.Func) {
			i := plantAt(t, f, 0, isOp(kasm.VFMADD213PS))
			in := f.Body[i]
			f.Body[i] = kasm.Inst{Op: kasm.VMULPS, Args: []kasm.Operand{in.Args[1], in.Args[2], in.Args[2]}}
			f.Body = slices.Insert(f.Body, i+1, kasm.Inst{Op: kasm.VADDPS, Args: []kasm.Operand{in.Args[0], in.Args[2], in.Args[2]}})
		}},
		{"odd columns twice", func(t *testing.T, f *kasm.Func) {
			f.Body[plantAt(t, f, 0, isOp(kasm.VSHUFPS))].Args[0] = kasm.Imm(0xDD)
		}},
		{"no permutation", func(t *testing.T, f *kasm.Func) {
			f.Body = slices.DeleteFunc(f.Body, func(in kasm.Inst) bool { return in.Op == kasm.VPERMPS })
		}},
		{"tail one lane short", func(t *testing.T, f *kasm.Func) {
			i := plantAt(t, f, 0, isOp(kasm.INCQ))
			f.Body = slices.Delete(f.Body, i, i+1)
		}},
	}
	for _, bug := range bugs {
		f := poolasm.Avg2x2()
		bug.mutate(t, f)
		// The interpreter alone: the hardware runs the unmutated kernel.
		err := checkAvg2x2(f, 2, false)
		if err == nil {
			t.Errorf("%s not caught", bug.name)
			continue
		}
		t.Logf("%s caught: %v", bug.name, err)
	}
}

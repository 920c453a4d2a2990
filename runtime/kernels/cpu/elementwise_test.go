package cpu

import (
	"math"
	"testing"
)

// TestExp32 checks exp32 against float64 math.Exp over the float32 range where e**x is a
// normal float32, and the sigmoid built on it everywhere.
func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-87.3); x <= 88.7; x += 0.0037 {
		want := math.Exp(float64(x))
		got := float64(exp32(x))
		ulp := float64(math.Nextafter32(float32(want), float32(math.Inf(1)))) - float64(float32(want))
		if e := math.Abs(got-want) / ulp; e > worst {
			worst = e
		}
	}
	if worst > 2 {
		t.Errorf("exp32 is %.2f ulp from e**x at worst, want <= 2", worst)
	}
	t.Logf("exp32: %.2f ulp at worst", worst)
	for _, x := range []float32{-1000, -100, -90, 0, 90, 100, 1000} {
		got := 1 / (1 + exp32(-x))
		want := 1 / (1 + math.Exp(-float64(x)))
		if math.Abs(float64(got)-want) > 1e-7*max(want, 1e-30) && math.Abs(float64(got)-want) > 1e-38 {
			t.Errorf("sigmoid(%g) = %g, want %g", x, got, want)
		}
	}
	if v := exp32(float32(math.NaN())); !math.IsNaN(float64(v)) {
		t.Errorf("exp32(NaN) = %g, want NaN", v)
	}
}

// TestUnary checks every element-wise function against its float64 definition.
func TestUnary(t *testing.T) {
	in := make([]float32, 40000)
	for i := range in {
		in[i] = float32(i-20000) / 997
	}
	workers := NewWorkers(2)
	defer workers.Close()
	for _, tc := range []struct {
		name string
		k    *Unary
		f    func(x float64) float64
	}{
		{"sigmoid", &Unary{Func: FuncSigmoid}, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		{"clip", &Unary{Func: FuncClip, Lo: 0, Hi: 6}, func(x float64) float64 { return math.Min(math.Max(x, 0), 6) }},
		{"leaky-relu", &Unary{Func: FuncLeakyRelu, Alpha: 0.1}, func(x float64) float64 {
			if x < 0 {
				return 0.1 * x
			}
			return x
		}},
		{"hard-sigmoid", &Unary{Func: FuncHardSigmoid, Alpha: 0.2, Beta: 0.5}, func(x float64) float64 { return math.Max(0, math.Min(1, 0.2*x+0.5)) }},
		{"hard-swish", &Unary{Func: FuncHardSwish}, func(x float64) float64 { return x * math.Max(0, math.Min(1, x/6+0.5)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]float32, len(in))
			tc.k.Run(workers, in, out)
			for i, x := range in {
				want := tc.f(float64(x))
				if d := math.Abs(float64(out[i]) - want); d > 1e-6*math.Max(1, math.Abs(want)) {
					t.Fatalf("%s(%g) = %g, want %g", tc.name, x, out[i], want)
				}
			}
		})
	}
}

// TestSigmoidRowMatchesExp32: the generic sigmoid computes exactly 1/(1+exp32(-x)), NaN and
// infinities included.
func TestSigmoidRowMatchesExp32(t *testing.T) {
	in := make([]float32, 0, 50000)
	for x := float32(-120); x < 120; x += 0.0049 {
		in = append(in, x)
	}
	in = append(in, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)))
	out := make([]float32, len(in))
	sigmoidRow(in, out)
	for i, x := range in {
		want := 1 / (1 + exp32(-x))
		if math.Float32bits(out[i]) != math.Float32bits(want) && !(math.IsNaN(float64(want)) && math.IsNaN(float64(out[i]))) {
			t.Fatalf("sigmoidRow(%g) = %g, 1/(1+exp32(-x)) = %g", x, out[i], want)
		}
	}
}

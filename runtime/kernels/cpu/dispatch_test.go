package cpu

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa/isatest"
)

// testLevels returns the instruction-set levels this machine runs, logged (isatest.Levels).
func testLevels(t testing.TB) []isa.Level { return isatest.Levels(t) }

// TestTables checks each level's table: complete, of the level it claims (avx512 running some
// avx2 code), with GEMM kernels of the same level, and the process's table the selected one.
func TestTables(t *testing.T) {
	for _, l := range testLevels(t) {
		k := tableFor(l)
		if k.level != l.Code() || k.gemm == nil || k.gemm.Level() != l.Code() {
			t.Errorf("%s: table of level %s with GEMM kernels of %v", l, k.level, k.gemm.Level())
		}
		v := reflect.ValueOf(*k)
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.Kind() == reflect.Func && f.IsNil() {
				t.Errorf("%s: %s is nil", l, v.Type().Field(i).Name)
			}
		}
	}
	if s := isa.Selected(); active != tableFor(s.Level) {
		t.Errorf("active table is not that of the selected level %s", s)
	}
	if tableFor(isa.Generic) != &goTable {
		t.Error("the generic level does not run the Go table")
	}
}

// TestLevelPrologueAgrees checks, at each level, that the three places a BN-ReLU prologue is
// computed give the same bits: AffineRows (the stored output), the GEMM packer (a convolution
// reading the BN input through its prologue) and stage (ConvCM's staging copy). Training
// recomputes activations through one and stores them through another, so a level whose kernels
// disagreed (say, the packer fused and AffineRows did not) would change ReLU masks between the
// forward and backward passes.
func TestLevelPrologueAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const channels, n = 8, 37
	x := randFloats(r, channels*n)
	scale, shift := randFloats(r, channels), randFloats(r, channels)
	for i := range x {
		x[i] *= 3 // values whose FMA and two-rounding results often differ
	}
	for _, l := range testLevels(t) {
		code := tableFor(l)
		for _, relu := range []bool{false, true} {
			stored := make([]float32, channels*n)
			code.affineRows(nil, x, stored, channels, n, n, scale, shift, relu)

			offs := make([]int32, channels)
			for c := range offs {
				offs[c] = int32(c * n)
			}
			var rows gemm.Rows
			if err := rows.Init(code.gemm, x, offs, scale, shift, relu); err != nil {
				t.Fatal(err)
			}
			panel := make([]float32, channels*rows.NR())
			for n0 := 0; n0 < n; n0 += rows.NR() {
				nr := min(rows.NR(), n-n0)
				rows.Pack(panel, 0, channels, []gemm.Segment{{Lo: 0, Hi: nr, Base: n0}})
				for c := 0; c < channels; c++ {
					for j := 0; j < nr; j++ {
						if got, want := panel[c*rows.NR()+j], stored[c*n+n0+j]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("%s relu %v: packer channel %d pixel %d = %g, AffineRows %g", l, relu, c, n0+j, got, want)
						}
					}
				}
			}

			var sc, sh [8]float32
			copy(sc[:], scale)
			copy(sh[:], shift)
			staged := make([]float32, n*8)
			code.stage(staged, 8, x, n, 8, n, sc, sh, relu)
			for p := 0; p < n; p++ {
				for c := 0; c < 8; c++ {
					if got, want := staged[p*8+c], stored[c*n+p]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%s relu %v: stage channel %d pixel %d = %g, AffineRows %g", l, relu, c, p, got, want)
					}
				}
			}
		}
	}
}

//go:build amd64 && !purego

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// TestWinoInLayout checks the field offsets of winoIn that conv_winograd_amd64.s uses.
func TestWinoInLayout(t *testing.T) {
	var a winoIn
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"t", unsafe.Offsetof(a.t), 0}, {"ldt", unsafe.Offsetof(a.ldt), 8},
		{"x", unsafe.Offsetof(a.x), 16}, {"xstep", unsafe.Offsetof(a.xstep), 64},
		{"keep", unsafe.Offsetof(a.keep), 112}, {"ulo", unsafe.Offsetof(a.ulo), 136},
		{"n", unsafe.Offsetof(a.n), 144}, {"cin", unsafe.Offsetof(a.cin), 152},
		{"scale", unsafe.Offsetof(a.scale), 160}, {"shift", unsafe.Offsetof(a.shift), 168},
		{"relu", unsafe.Offsetof(a.relu), 176}, {"tiles", unsafe.Offsetof(a.tiles), 184},
		{"v", unsafe.Offsetof(a.v), 192}, {"ps", unsafe.Offsetof(a.ps), 200},
		{"ldv", unsafe.Offsetof(a.ldv), 208}, {"mask", unsafe.Offsetof(a.mask), 216},
		{"prefetch", unsafe.Offsetof(a.prefetch), 248},
	} {
		if f.got != f.want {
			t.Errorf("winoIn.%s at offset %d, the assembly reads it at %d", f.name, f.got, f.want)
		}
	}
}

// TestWinoInput512Conv runs whole Winograd convolutions with the AVX-512 input transform for
// both tile sizes (winoInput512, forced past winoIn512Use, which leaves F(2x2) to AVX2) and
// compares them with the avx512 level's. The kernels do the AVX2 kernels' arithmetic in the same
// order, but skip the prologue when there is none (the AVX2 kernels compute x*1 + 0, which turns
// -0 into +0), so the outputs are compared within rounding, not bit for bit.
func TestWinoInput512Conv(t *testing.T) {
	if isa.Selected().Max < isa.AVX512 {
		t.Skip("no AVX-512 here")
	}
	forced := *tableFor(isa.AVX512)
	forced.winoInput = winoInput512
	r := rand.New(rand.NewPCG(61, 62))
	var cases []convCase
	for w := 1; w <= 70; w += 3 {
		cases = append(cases, convCase{name: fmt.Sprintf("width %d", w), n: 2, cin: 5, cout: 3, h: 3 + w%11, w: w,
			pads: [4]int{1, 1, 1, 1}, pre: w%3 != 0, preRelu: w%2 == 0, bias: true, postRelu: w%4 == 0})
	}
	for _, tc := range cases {
		tc.kh, tc.kw = 3, 3
		spec := tc.spec(r)
		x := randFloats(r, tc.n*tc.cin*tc.h*tc.w)
		for _, m := range []int{2, 4} {
			var outs [2][]float32
			for i, k := range []*kernels{tableFor(isa.AVX512), &forced} {
				conv := newWinogradConv(t, spec, m, k)
				oh, ow := conv.OutputSize(tc.h, tc.w)
				outs[i] = make([]float32, tc.n*tc.cout*oh*ow)
				scratch := make([]float32, conv.ScratchSize(tc.n, tc.h, tc.w, 1))
				if err := conv.Run(nil, Dense(x, tc.n, tc.cin, tc.h, tc.w), Dense(outs[i], tc.n, tc.cout, oh, ow), scratch); err != nil {
					t.Fatal(err)
				}
			}
			for j := range outs[0] {
				if d := math.Abs(float64(outs[1][j] - outs[0][j])); d > 1e-5*(1+math.Abs(float64(outs[0][j]))) {
					t.Fatalf("%s F(%d): output %d: AVX-512 input transform %g, avx512 level %g", tc.name, m, j, outs[1][j], outs[0][j])
				}
			}
		}
	}
}

//go:build amd64 && !purego

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
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

// TestWinogradAsmMatchesGo runs each Winograd case with the assembly transforms and with the
// plain Go ones (their specification) and compares the outputs: they differ only in rounding
// (the two order the transforms' additions differently), so by far less than a wrong coefficient,
// tile or lane would make them.
func TestWinogradAsmMatchesGo(t *testing.T) {
	if !winoAVX2 {
		t.Skip("no AVX2: the assembly does not run here")
	}
	defer func() { winoAVX2 = true }()
	r := rand.New(rand.NewPCG(21, 22))
	var cases []convCase
	for _, tc := range winogradCases() {
		cases = append(cases, tc)
	}
	// Row segments of 1..17 tiles for both tile sizes, with and without ReLU.
	for w := 1; w <= 66; w += 5 {
		cases = append(cases, convCase{name: fmt.Sprintf("width %d", w), n: 2, cin: 5, cout: 3, h: 9, w: w,
			pads: [4]int{1, 1, 1, 1}, pre: true, preRelu: w%2 == 0, bias: true, postRelu: w%3 == 0})
	}
	for _, tc := range cases {
		tc.kh, tc.kw = 3, 3
		spec := tc.spec(r)
		x := randFloats(r, tc.n*tc.cin*tc.h*tc.w)
		_, mag, _ := refConv(t, spec, x, tc.n, tc.h, tc.w)
		for _, m := range []int{2, 4} {
			conv := newWinogradConv(t, spec, m)
			oh, ow := conv.OutputSize(tc.h, tc.w)
			in := Dense(x, tc.n, tc.cin, tc.h, tc.w)
			var outs [2][]float32
			for i, asm := range []bool{true, false} {
				winoAVX2 = asm
				outs[i] = make([]float32, tc.n*tc.cout*oh*ow)
				scratch := make([]float32, conv.ScratchSize(tc.n, tc.h, tc.w, 1))
				if err := conv.Run(nil, in, Dense(outs[i], tc.n, tc.cout, oh, ow), scratch); err != nil {
					t.Fatal(err)
				}
			}
			winoAVX2 = true
			for j := range outs[0] {
				if d := math.Abs(float64(outs[0][j] - outs[1][j])); d > 1e-6+2e-5*float64(mag[j]) {
					t.Fatalf("%s F(%d): output %d: assembly %g, Go %g (magnitude %g)", tc.name, m, j, outs[0][j], outs[1][j], mag[j])
				}
			}
		}
	}
}

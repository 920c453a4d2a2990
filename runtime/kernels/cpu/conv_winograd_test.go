package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// newWinogradConv returns a Conv2D for spec that always takes the Winograd path with m x m
// tiles, with the kernels of code.
func newWinogradConv(t testing.TB, spec ConvSpec, m int, code *kernels) *Conv2D {
	t.Helper()
	c, err := newConv2D(spec, pathDirect, code)
	if err != nil {
		t.Fatal(err)
	}
	if !winogradEligible(&c.spec) {
		t.Fatalf("spec %+v has no Winograd form", spec)
	}
	c.wino = newWinograd(c)
	c.wino.force = m
	return c
}

// runConvCase runs conv on x (tc's shapes) with in and out embedded as channel slices of larger
// buffers when tc.strided, and checks the result against want within atol + rtol*mag, that
// the input is unchanged and that nothing outside the output slice was written.
func runConvCase(t *testing.T, name string, conv *Conv2D, workers *Workers, tc convCase, x, want, mag []float32, rtol, atol float64, r *rand.Rand) (maxRel float64) {
	t.Helper()
	oh, ow := conv.OutputSize(tc.h, tc.w)
	inExtra, outExtra := 0, 0
	if tc.strided {
		inExtra, outExtra = 5, 5
	}
	inBuf := make([]float32, tc.n*(tc.cin+inExtra)*tc.h*tc.w)
	for i := range inBuf {
		inBuf[i] = sentinel
	}
	in := Dense(inBuf, tc.n, tc.cin+inExtra, tc.h, tc.w)
	if tc.strided {
		in = in.Channels(3, tc.cin)
	}
	for b := 0; b < tc.n; b++ {
		copy(in.Item(b), x[b*tc.cin*tc.h*tc.w:(b+1)*tc.cin*tc.h*tc.w])
	}
	inCopy := append([]float32(nil), inBuf...)
	outBuf := make([]float32, tc.n*(tc.cout+outExtra)*oh*ow)
	for i := range outBuf {
		outBuf[i] = sentinel
	}
	out := Dense(outBuf, tc.n, tc.cout+outExtra, oh, ow)
	if tc.strided {
		out = out.Channels(3, tc.cout)
	}
	threads := 1
	if workers != nil {
		threads = workers.Threads()
	}
	// Scratch starts with garbage, NaN included: nothing may read it before writing it.
	scratch := randFloats(r, conv.ScratchSize(tc.n, tc.h, tc.w, threads))
	for i := 0; i < len(scratch); i += 7 {
		scratch[i] = float32(math.NaN())
	}
	if err := conv.Run(workers, in, out, scratch); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for i := range inBuf {
		if inBuf[i] != inCopy[i] {
			t.Fatalf("%s: input changed at %d", name, i)
		}
	}
	plane := oh * ow
	for i, v := range outBuf {
		b, c := i/((tc.cout+outExtra)*plane), (i/plane)%(tc.cout+outExtra)
		if tc.strided && (c < 3 || c >= 3+tc.cout) {
			if v != sentinel {
				t.Fatalf("%s: output outside the slice changed at item %d channel %d", name, b, c)
			}
			continue
		}
		if tc.strided {
			c -= 3
		}
		j := (b*tc.cout+c)*plane + i%plane
		d := math.Abs(float64(v - want[j]))
		if d > atol+rtol*float64(mag[j]) || math.IsNaN(float64(v)) {
			t.Fatalf("%s: Y[%d,%d,%d,%d] = %g, want %g (magnitude %g)", name, b, c, (i%plane)/ow, i%ow, v, want[j], mag[j])
		}
		if mag[j] > 0 {
			maxRel = max(maxRel, d/float64(mag[j]))
		}
	}
	return maxRel
}

func winogradCases() []convCase {
	p1 := [4]int{1, 1, 1, 1}
	return []convCase{
		{name: "densenet 56", n: 1, cin: 128, cout: 32, h: 56, w: 56, pads: p1, pre: true, preRelu: true},
		{name: "densenet 28 bias relu", n: 1, cin: 128, cout: 32, h: 28, w: 28, pads: p1, bias: true, postRelu: true},
		{name: "densenet 14", n: 2, cin: 128, cout: 32, h: 14, w: 14, pads: p1, pre: true, preRelu: true},
		{name: "densenet 7", n: 1, cin: 128, cout: 32, h: 7, w: 7, pads: p1, pre: true, preRelu: true, bias: true},
		{name: "cifar 32", n: 2, cin: 48, cout: 12, h: 32, w: 32, pads: p1, pre: true, preRelu: true},
		{name: "cifar 8 batch 5", n: 5, cin: 48, cout: 12, h: 8, w: 8, pads: p1, pre: true, preRelu: true},
		{name: "odd 13x11", n: 1, cin: 9, cout: 7, h: 13, w: 11, pads: p1, pre: true, bias: true, postRelu: true},
		{name: "odd 10x17 prologue no relu", n: 2, cin: 6, cout: 5, h: 10, w: 17, pads: p1, pre: true},
		{name: "1x1 image", n: 2, cin: 4, cout: 3, h: 1, w: 1, pads: p1, pre: true, preRelu: true, bias: true},
		{name: "2x2 image", n: 1, cin: 5, cout: 6, h: 2, w: 2, pads: p1, pre: true, preRelu: true},
		{name: "1 row", n: 1, cin: 3, cout: 4, h: 1, w: 23, pads: p1, bias: true},
		{name: "1 column", n: 1, cin: 3, cout: 4, h: 19, w: 1, pads: p1, pre: true, preRelu: true},
		{name: "no padding", n: 1, cin: 8, cout: 9, h: 12, w: 15, pre: true, preRelu: true},
		{name: "asymmetric pads", n: 1, cin: 8, cout: 11, h: 10, w: 9, pads: [4]int{1, 0, 2, 1}, bias: true, pre: true},
		{name: "wide pads", n: 2, cin: 5, cout: 6, h: 6, w: 7, pads: [4]int{3, 2, 4, 1}, pre: true, preRelu: true, bias: true},
		{name: "one channel", n: 1, cin: 1, cout: 1, h: 9, w: 9, pads: p1},
		{name: "batch 3 strided", n: 3, cin: 24, cout: 32, h: 7, w: 5, pads: p1, bias: true, pre: true, preRelu: true, strided: true},
		{name: "batch 3 strided wide", n: 3, cin: 16, cout: 8, h: 30, w: 29, pads: p1, postRelu: true, bias: true, strided: true},
		{name: "many tiles per chunk", n: 4, cin: 4, cout: 5, h: 40, w: 37, pads: p1, pre: true, preRelu: true, bias: true},
	}
}

// TestWinogradMatchesReference runs F(2x2) and F(4x4) on each case, single- and multi-threaded,
// at every level this machine has, against the reference convolution. The tolerance is the
// kernels' (rtol 1e-4 of the magnitude sum |pre(x)|*|w| + |b|); the largest relative error seen
// is logged per tile size.
func TestWinogradMatchesReference(t *testing.T) {
	const rtol, atol = 1e-4, 1e-5
	r := rand.New(rand.NewPCG(11, 12))
	workerSets := testWorkerSets(t)
	worst := map[int]float64{}
	levels := testLevels(t)
	for _, tc := range winogradCases() {
		tc.kh, tc.kw = 3, 3
		spec := tc.spec(r)
		x := randFloats(r, tc.n*tc.cin*tc.h*tc.w)
		want, mag, _ := refConv(t, spec, x, tc.n, tc.h, tc.w)
		for _, level := range levels {
			for _, m := range []int{2, 4} {
				conv := newWinogradConv(t, spec, m, tableFor(level))
				for pi, workers := range workerSets {
					name := fmt.Sprintf("%s/%s/F(%d)/workers%d", level, tc.name, m, pi)
					rel := runConvCase(t, name, conv, workers, tc, x, want, mag, rtol, atol, r)
					worst[m] = max(worst[m], rel)
				}
			}
		}
	}
	t.Logf("largest error relative to the magnitude: F(2x2) %.2g, F(4x4) %.2g", worst[2], worst[4])
}

// TestWinogradChunks checks the tiling: chunks cover every tile exactly once, whatever the
// thread count, and scratch sizes are what run uses.
func TestWinogradChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, m := range []int{2, 4} {
		cc := convCase{cin: 128, cout: 32, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}}
		conv := newWinogradConv(t, cc.spec(r), m, active)
		for _, sz := range []struct{ n, hw, threads int }{{1, 56, 1}, {1, 56, 2}, {1, 28, 2}, {1, 7, 2}, {8, 14, 2}, {64, 8, 3}, {3, 1, 4}, {2, 31, 1}} {
			g := conv.wino.form(m).geom(sz.n, sz.hw, sz.hw, sz.threads)
			last := g.tiles - (g.chunks-1)*g.nt
			if g.nt < 1 || last < 1 || last > g.nt+7 || (g.chunks > 1 && last < 8) {
				t.Errorf("F(%d) %+v: %d chunks of %d tiles for %d tiles", m, sz, g.chunks, g.nt, g.tiles)
			}
			if g.slots < 1 || g.slots > sz.threads || g.ntPad < winoGemmCols(last, conv.wino.form(m).nr) || g.ntPad < winoGemmCols(min(g.nt, g.tiles), conv.wino.form(m).nr) || g.ldv < g.ntPad+8 {
				t.Errorf("F(%d) %+v: %d slots, ldv %d, %d GEMM columns for chunks of %d", m, sz, g.slots, g.ldv, g.ntPad, g.nt)
			}
			if split := g.chunks == 1 && sz.threads > 1; g.split != split {
				t.Errorf("F(%d) %+v: split = %v with %d chunks", m, sz, g.split, g.chunks)
			}
		}
	}
}

// TestWinogradSelection checks that NewConv2D gives DenseNet's 3x3 convolutions a Winograd form
// and nothing else one.
func TestWinogradSelection(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, tc := range []struct {
		name string
		cc   convCase
		want bool
	}{
		{"3x3 pad 1", convCase{cin: 128, cout: 32, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}}, true},
		{"3x3 stride 2", convCase{cin: 16, cout: 16, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int{1, 1, 1, 1}}, false},
		{"3x3 dilation 2", convCase{cin: 16, cout: 16, kh: 3, kw: 3, dh: 2, dw: 2, pads: [4]int{2, 2, 2, 2}}, false},
		{"3x3 groups 2", convCase{cin: 16, cout: 16, kh: 3, kw: 3, group: 2, pads: [4]int{1, 1, 1, 1}}, false},
		{"5x5", convCase{cin: 16, cout: 16, kh: 5, kw: 5, pads: [4]int{2, 2, 2, 2}}, false},
		{"1x1", convCase{cin: 16, cout: 16, kh: 1, kw: 1}, false},
	} {
		conv, err := NewConv2D(tc.cc.spec(r))
		if err != nil {
			t.Fatal(err)
		}
		if got := conv.wino != nil; got != tc.want {
			t.Errorf("%s: Winograd form %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWinogradRunDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	workers := NewWorkers(2)
	defer workers.Close()
	for _, level := range testLevels(t) {
		for _, m := range []int{2, 4} {
			tc := convCase{n: 2, cin: 32, cout: 16, h: 14, w: 14, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, bias: true, pre: true, preRelu: true}
			conv := newWinogradConv(t, tc.spec(r), m, tableFor(level))
			in := Dense(randFloats(r, tc.n*tc.cin*tc.h*tc.w), tc.n, tc.cin, tc.h, tc.w)
			out := Dense(make([]float32, tc.n*tc.cout*tc.h*tc.w), tc.n, tc.cout, tc.h, tc.w)
			scratch := make([]float32, conv.ScratchSize(tc.n, tc.h, tc.w, 2))
			if a := testing.AllocsPerRun(20, func() {
				if err := conv.Run(workers, in, out, scratch); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("%s F(%d): Run allocates %.1f times", level, m, a)
			}
		}
	}
}

// TestWinogradTransforms checks the written-out Go transforms against the matrices B^T and A^T,
// in float64.
func TestWinogradTransforms(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	const n, ldt, tol = 11, 64, 1e-5
	near := func(got float32, want, mag float64) bool {
		return math.Abs(float64(got)-want) <= tol*(1+mag)
	}
	for _, m := range []int{2, 4} {
		alpha := m + 2
		bt, at := winoBT2, winoAT2
		if m == 4 {
			bt, at = winoBT4, winoAT4
		}
		for _, relu := range []bool{false, true} {
			// Column pass: t[i][u] = sum_r B^T[i][r] pre_r(x[r][u]).
			var x [6][]float32
			var scale, shift [6]float32
			for rr := 0; rr < alpha; rr++ {
				x[rr] = randFloats(r, n)
				scale[rr], shift[rr] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			tr := make([]float32, alpha*ldt)
			winoInColsGo(m, tr, ldt, &x, n, &scale, &shift, relu)
			for i := 0; i < alpha; i++ {
				for u := 0; u < n; u++ {
					var want, mag float64
					for rr := 0; rr < alpha; rr++ {
						d := float64(x[rr][u]*scale[rr] + shift[rr])
						if relu && d < 0 {
							d = 0
						}
						want += bt[i][rr] * d
						mag += math.Abs(bt[i][rr] * d)
					}
					if !near(tr[i*ldt+u], want, mag) {
						t.Fatalf("F(%d) column pass t[%d][%d] = %g, want %g", m, i, u, tr[i*ldt+u], want)
					}
				}
			}
		}
		// Row pass: v[(i*alpha+k)*ps + j] = sum_s B^T[k][s] T_i[m*j+s].
		const ps = 37
		tr := randFloats(r, alpha*ldt)
		v := make([]float32, alpha*alpha*ps)
		winoInRowsGo(m, tr, ldt, n/2, v, ps)
		for i := 0; i < alpha; i++ {
			for k := 0; k < alpha; k++ {
				for j := 0; j < n/2; j++ {
					var want, mag float64
					for s := 0; s < alpha; s++ {
						want += bt[k][s] * float64(tr[i*ldt+m*j+s])
						mag += math.Abs(bt[k][s] * float64(tr[i*ldt+m*j+s]))
					}
					if got := v[(i*alpha+k)*ps+j]; !near(got, want, mag) {
						t.Fatalf("F(%d) row pass V[%d][%d] = %g, want %g", m, i*alpha+k, j, got, want)
					}
				}
			}
		}
		// Output: y[q][m*j+s] = post(bias + sum_{i,k} A^T[q][i] A^T[s][k] M[i*alpha+k][j]).
		mm := randFloats(r, alpha*alpha*ps)
		for _, relu := range []bool{false, true} {
			const bias = 0.25
			y := make([]float32, m*ldt)
			winoOutGo(m, mm, ps, n/2, y, ldt, bias, relu, nil)
			for q := 0; q < m; q++ {
				for j := 0; j < n/2; j++ {
					for s := 0; s < m; s++ {
						want, mag := bias, bias
						for i := 0; i < alpha; i++ {
							for k := 0; k < alpha; k++ {
								c := at[q][i] * at[s][k]
								want += c * float64(mm[(i*alpha+k)*ps+j])
								mag += math.Abs(c * float64(mm[(i*alpha+k)*ps+j]))
							}
						}
						if relu && want < 0 {
							want = 0
						}
						if got := y[q*ldt+m*j+s]; !near(got, want, mag) {
							t.Fatalf("F(%d) output y[%d][%d] = %g, want %g", m, q, m*j+s, got, want)
						}
					}
				}
			}
		}
	}
}

// TestWinogradConvPacksDirectWeightsLazily: a convolution with a Winograd form packs the direct
// path's weights only when an input size makes it run the direct path.
func TestWinogradConvPacksDirectWeightsLazily(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	cc := convCase{cin: 16, cout: 8, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}}
	conv, err := NewConv2D(cc.spec(r))
	if err != nil {
		t.Fatal(err)
	}
	run := func(hw int) {
		in := Dense(randFloats(r, 16*hw*hw), 1, 16, hw, hw)
		out := Dense(make([]float32, 8*hw*hw), 1, 8, hw, hw)
		if err := conv.Run(nil, in, out, make([]float32, conv.ScratchSize(1, hw, hw, 1))); err != nil {
			t.Fatal(err)
		}
	}
	run(16) // Winograd
	if conv.a != nil {
		t.Fatal("direct-path weights packed for a Winograd run")
	}
	run(3) // too small for Winograd: the direct path
	if conv.a == nil {
		t.Fatal("direct path ran without packed weights")
	}
}

// TestWinogradLevelsAgree runs each Winograd case at every level this machine has and compares
// the outputs with the generic level's (the plain Go transforms, their specification): they
// differ only in rounding (the assembly orders the transforms' additions differently and fuses
// multiply-adds), so by far less than a wrong coefficient, tile or lane would make them.
func TestWinogradLevelsAgree(t *testing.T) {
	levels := testLevels(t)
	if len(levels) < 2 {
		t.Skip("only the generic level runs here")
	}
	r := rand.New(rand.NewPCG(21, 22))
	cases := winogradCases()
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
			outs := make([][]float32, len(levels))
			for i, level := range levels {
				conv := newWinogradConv(t, spec, m, tableFor(level))
				oh, ow := conv.OutputSize(tc.h, tc.w)
				outs[i] = make([]float32, tc.n*tc.cout*oh*ow)
				scratch := make([]float32, conv.ScratchSize(tc.n, tc.h, tc.w, 1))
				if err := conv.Run(nil, Dense(x, tc.n, tc.cin, tc.h, tc.w), Dense(outs[i], tc.n, tc.cout, oh, ow), scratch); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i < len(levels); i++ {
				for j := range outs[0] {
					if d := math.Abs(float64(outs[i][j] - outs[0][j])); d > 1e-6+2e-5*float64(mag[j]) {
						t.Fatalf("%s F(%d): output %d: %s %g, generic %g (magnitude %g)", tc.name, m, j, levels[i], outs[i][j], outs[0][j], mag[j])
					}
				}
			}
		}
	}
}

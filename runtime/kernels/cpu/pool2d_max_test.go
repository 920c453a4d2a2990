package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// maxTestData returns n normal floats of which about a fraction nanRate are NaN and a few are
// ±Inf, so that tests see NaN at every lane position and on both sides of each max.
func maxTestData(rng *rand.Rand, n int, nanRate float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r := rng.Float64(); {
		case r < nanRate:
			x[i] = float32(math.NaN())
		case r < nanRate+0.02:
			x[i] = float32(math.Inf(1 - 2*rng.IntN(2)))
		default:
			x[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

// sameMax reports whether got is want, where all NaNs are equal (and so are -0 and +0, since
// either may win a max of zeros).
func sameMax(got, want float32) bool {
	if got != got || want != want {
		return got != got && want != want
	}
	return got == want
}

// naiveMax is max over vs with NaN winning, the semantics the row kernels must have.
func naiveMax(vs ...float32) float32 {
	m := vs[0]
	for _, v := range vs[1:] {
		if v != v || m != m {
			m = float32(math.NaN())
		} else if v > m {
			m = v
		}
	}
	return m
}

// TestMaxRowKernels checks maxRows and maxCols, at every level this machine has, against a
// scalar loop at every length up to 41 (vector tails included), with NaN and ±Inf inputs, and
// checks that they write nothing outside dst.
func TestMaxRowKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const guard = 5 // sentinel floats on each side of dst
	for _, level := range testLevels(t) {
		code := tableFor(level)
		for n := 1; n <= 41; n++ {
			for trial := 0; trial < 6; trial++ {
				nanRate := []float64{0, 0.02, 0.3}[trial%3]
				buf := make([]float32, n+2*guard)
				fill(buf, 12345)
				dst := buf[guard : guard+n]
				check := func(what string, want func(k int) float32) {
					t.Helper()
					for k := range dst {
						if w := want(k); !sameMax(dst[k], w) {
							t.Fatalf("%s (%s, n %d): dst[%d] = %v, want %v", what, level, n, k, dst[k], w)
						}
					}
					for i, v := range buf {
						if (i < guard || i >= guard+n) && v != 12345 {
							t.Fatalf("%s (%s, n %d): wrote outside dst at %d", what, level, n, i-guard)
						}
					}
				}

				rows, off, step := 1+rng.IntN(4), rng.IntN(3), n+rng.IntN(4)
				src := maxTestData(rng, off+(rows-1)*step+n, nanRate)
				code.maxRows(dst, src, off, step, rows)
				check(fmt.Sprintf("maxRows rows %d step %d", rows, step), func(x int) float32 {
					vs := make([]float32, rows)
					for r := range vs {
						vs[r] = src[off+r*step+x]
					}
					return naiveMax(vs...)
				})

				s, taps, d := 1+rng.IntN(3), 1+rng.IntN(4), 1+rng.IntN(3)
				src = maxTestData(rng, (n-1)*s+(taps-1)*d+1+maxRowSlack, nanRate)
				code.maxCols(dst, src, s, taps, d)
				check(fmt.Sprintf("maxCols s %d taps %d d %d", s, taps, d), func(k int) float32 {
					vs := make([]float32, taps)
					for j := range vs {
						vs[j] = src[k*s+j*d]
					}
					return naiveMax(vs...)
				})
			}
		}
	}
}

// runMaxPoolVsRef max-pools an n x c x h x w input x with win through Pool2D (with the row
// kernels of code) and through the reference kernel, and returns an error describing the first
// difference (all NaNs compare equal). It reports ok=false when win does not fit.
func runMaxPoolVsRef(p *Workers, x []float32, n, c, h, w int, win ops.Window, code *kernels) (ok bool, err error) {
	geo, err := win.PoolShapes("pool", []int{n, c, h, w})
	if err != nil {
		return false, nil // window larger than the padded input
	}
	op := &ops.MaxPool{Window: win, NumOutputs: 1}
	want, err := ref.Kernels()[op.OpType()](op, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{n, c, h, w}, x)}, 1)
	if err != nil {
		return true, fmt.Errorf("reference: %w", err)
	}
	k := &Pool2D{Win: Window2D{KH: win.Kernel[0], KW: win.Kernel[1], StrideH: geo.Stride[0], StrideW: geo.Stride[1],
		DilationH: geo.Dilation[0], DilationW: geo.Dilation[1], PadT: geo.PadBegin[0], PadL: geo.PadBegin[1],
		OutH: geo.Out[0], OutW: geo.Out[1]}, Max: true, code: code}
	oh, ow := geo.Out[0], geo.Out[1]
	y := make([]float32, n*c*oh*ow)
	if err := k.Run(p, Dense(x, n, c, h, w), Dense(y, n, c, oh, ow)); err != nil {
		return true, err
	}
	wy := tensor.Data[float32](want[0])
	for i := range y {
		if !sameMax(y[i], wy[i]) {
			return true, fmt.Errorf("output %d of %v (%dx%d) is %v, want %v", i, want[0].Shape, oh, ow, y[i], wy[i])
		}
	}
	return true, nil
}

// TestMaxPool2DOddShapes compares MaxPool with the reference at odd image sizes (vector tails,
// images narrower than a vector) for the geometries the fast paths specialise (stride 1 and 2)
// and others (stride 3, dilation, pads up to 2, ceil-mode end padding), with NaN and ±Inf in
// the input, at every level this machine has.
func TestMaxPool2DOddShapes(t *testing.T) {
	win := func(kh, kw, sh, sw, dh, dw, pt, pl, pb, pr int, ceil bool) ops.Window {
		return ops.Window{Kernel: []int{kh, kw}, Strides: []int{sh, sw}, Dilations: []int{dh, dw},
			Pads: []int{pt, pl, pb, pr}, CeilMode: ceil}
	}
	cases := []struct {
		name string
		win  ops.Window
	}{
		{"stem 3x3 s2 p1", win(3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false)},
		{"3x3 s2 p1 ceil", win(3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true)},
		{"3x3 s2 p0 ceil", win(3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true)},
		{"2x2 s2", win(2, 2, 2, 2, 1, 1, 0, 0, 0, 0, false)},
		{"2x2 s2 ceil", win(2, 2, 2, 2, 1, 1, 0, 0, 0, 0, true)},
		{"3x3 s1 p1", win(3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false)},
		{"5x5 s1 p2", win(5, 5, 1, 1, 1, 1, 2, 2, 2, 2, false)},
		{"3x3 s1 dilation 2 p2", win(3, 3, 1, 1, 2, 2, 2, 2, 2, 2, false)},
		{"3x3 s2 dilation 2 p1 ceil", win(3, 3, 2, 2, 2, 2, 1, 1, 1, 1, true)},
		{"3x2 s(1,2) dilation (2,3) asym pads", win(3, 2, 1, 2, 2, 3, 2, 1, 0, 2, false)},
		{"3x3 s3 p1 ceil", win(3, 3, 3, 3, 1, 1, 1, 1, 1, 1, true)},
		{"4x4 s3 dilation 2 p2", win(4, 4, 3, 3, 2, 2, 2, 2, 2, 2, false)},
		{"1x1 s1", win(1, 1, 1, 1, 1, 1, 0, 0, 0, 0, false)},
		{"1x1 s2", win(1, 1, 2, 2, 1, 1, 0, 0, 0, 0, false)},
		{"1x3 s(1,2) p(0,1)", win(1, 3, 1, 2, 1, 1, 0, 1, 0, 1, false)},
	}
	p := NewWorkers(2)
	defer p.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := [][2]int{{1, 1}, {3, 5}, {7, 7}, {9, 17}, {13, 23}, {16, 33}, {21, 41}, {5, 71}}
	levels := testLevels(t)
	for _, tc := range cases {
		for _, hw := range sizes {
			for _, nanRate := range []float64{0, 0.01, 0.2} {
				x := maxTestData(rng, 2*3*hw[0]*hw[1], nanRate)
				for _, level := range levels {
					name := fmt.Sprintf("%s %dx%d nan %g %s", tc.name, hw[0], hw[1], nanRate, level)
					if _, err := runMaxPoolVsRef(p, x, 2, 3, hw[0], hw[1], tc.win, tableFor(level)); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
			}
		}
	}
}

// TestMaxPool2DRandomWindows compares MaxPool with the reference over random windows, image
// sizes up to 40 wide and inputs with NaN, at every level this machine has.
func TestMaxPool2DRandomWindows(t *testing.T) {
	p := NewWorkers(2)
	defer p.Close()
	rng := rand.New(rand.NewPCG(9, 10))
	levels := testLevels(t)
	ran := 0
	for trial := 0; trial < 400; trial++ {
		h, w := 1+rng.IntN(20), 1+rng.IntN(40)
		kh, kw := 1+rng.IntN(4), 1+rng.IntN(4)
		win := ops.Window{Kernel: []int{kh, kw}, Strides: []int{1 + rng.IntN(3), 1 + rng.IntN(3)},
			Dilations: []int{1 + rng.IntN(3), 1 + rng.IntN(3)},
			Pads:      []int{rng.IntN(min(kh, 3)), rng.IntN(min(kw, 3)), rng.IntN(min(kh, 3)), rng.IntN(min(kw, 3))},
			CeilMode:  rng.IntN(2) == 1}
		x := maxTestData(rng, 2*h*w, []float64{0, 0.05}[trial%2])
		for _, level := range levels {
			ok, err := runMaxPoolVsRef(p, x, 1, 2, h, w, win, tableFor(level))
			if err != nil {
				t.Fatalf("trial %d (%dx%d, %+v, %s): %v", trial, h, w, win, level, err)
			}
			if ok {
				ran++
			}
		}
	}
	if ran < 100*len(levels) {
		t.Fatalf("only %d of %d runs had a valid window", ran, 400*len(levels))
	}
}

// TestMaxPool2DRunDoesNotAllocate: once warm, a max-pool Run allocates nothing (its row scratch
// comes back from the kernel's sync.Pool).
func TestMaxPool2DRunDoesNotAllocate(t *testing.T) {
	p := NewWorkers(2)
	defer p.Close()
	x := make([]float32, 8*37*37)
	y := make([]float32, 8*19*19)
	k := &Pool2D{Win: Window2D{KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, PadT: 1, PadL: 1, OutH: 19, OutW: 19}, Max: true}
	run := func() {
		if err := k.Run(p, Dense(x, 1, 8, 37, 37), Dense(y, 1, 8, 19, 19)); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if a := testing.AllocsPerRun(50, run); a != 0 {
		t.Errorf("Run allocates %.1f times", a)
	}
}

// maxPoolShapes are the max pools of GoogLeNet (3x3 stride 1 pad 1 in every inception block,
// 3x3 and 2x2 stride-2 ceil-mode pools between the stages), ResNet's stem pool and SqueezeNet's
// 3x3 stride-2 ceil-mode pools, at batch 1.
var maxPoolShapes = []struct {
	name    string
	c, h, w int
	win     ops.Window
}{
	{"googlenet-3x3s1-192x28", 192, 28, 28, poolWin(3, 1, 1, false)},
	{"googlenet-3x3s1-512x14", 512, 14, 14, poolWin(3, 1, 1, false)},
	{"googlenet-3x3s1-832x7", 832, 7, 7, poolWin(3, 1, 1, false)},
	{"googlenet-3x3s2c-64x112", 64, 112, 112, poolWin(3, 2, 0, true)},
	{"googlenet-3x3s2c-192x56", 192, 56, 56, poolWin(3, 2, 0, true)},
	{"googlenet-3x3s2c-480x28", 480, 28, 28, poolWin(3, 2, 0, true)},
	{"googlenet-2x2s2c-832x14", 832, 14, 14, poolWin(2, 2, 0, true)},
	{"resnet-3x3s2p1-64x112", 64, 112, 112, poolWin(3, 2, 1, false)},
	{"squeezenet-3x3s2c-64x111", 64, 111, 111, poolWin(3, 2, 0, true)},
	{"squeezenet-3x3s2c-128x55", 128, 55, 55, poolWin(3, 2, 0, true)},
	{"squeezenet-3x3s2c-256x27", 256, 27, 27, poolWin(3, 2, 0, true)},
}

// poolWin is a square k x k window of stride s and pad p on every side.
func poolWin(k, s, p int, ceil bool) ops.Window {
	return ops.Window{Kernel: []int{k, k}, Strides: []int{s, s}, Dilations: []int{1, 1}, Pads: []int{p, p, p, p}, CeilMode: ceil}
}

// BenchmarkMaxPool runs Pool2D max pools at the shapes of maxPoolShapes on one thread, at each
// level this machine has, and reports the input and output bytes moved per second (GB/s, one
// core).
func BenchmarkMaxPool(b *testing.B) {
	p := NewWorkers(1)
	defer p.Close()
	for _, s := range maxPoolShapes {
		geo, err := s.win.PoolShapes("pool", []int{1, s.c, s.h, s.w})
		if err != nil {
			b.Fatal(err)
		}
		oh, ow := geo.Out[0], geo.Out[1]
		x := maxTestData(rand.New(rand.NewPCG(1, 2)), s.c*s.h*s.w, 0)
		y := make([]float32, s.c*oh*ow)
		for _, level := range testLevels(b) {
			k := &Pool2D{Win: Window2D{KH: s.win.Kernel[0], KW: s.win.Kernel[1], StrideH: geo.Stride[0], StrideW: geo.Stride[1],
				DilationH: 1, DilationW: 1, PadT: geo.PadBegin[0], PadL: geo.PadBegin[1], OutH: oh, OutW: ow},
				Max: true, code: tableFor(level)}
			b.Run(fmt.Sprintf("%s/%s", s.name, level), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := k.Run(p, Dense(x, 1, s.c, s.h, s.w), Dense(y, 1, s.c, oh, ow)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(4*(len(x)+len(y)))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}

// TestMaxPool2DRealShapes compares MaxPool with the reference at the shapes of maxPoolShapes
// (whole plane kernels over many channels, split over the workers) at every level this machine
// has, with no Workers (nil: the caller pools every plane) and on 1, 2 and 3 threads, with NaN
// inputs.
func TestMaxPool2DRealShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, threads := range []int{0, 1, 2, 3} {
		var p *Workers
		if threads > 0 {
			p = NewWorkers(threads)
		}
		for _, s := range maxPoolShapes {
			x := maxTestData(rng, s.c*s.h*s.w, 0.001)
			for _, level := range testLevels(t) {
				if _, err := runMaxPoolVsRef(p, x, 1, s.c, s.h, s.w, s.win, tableFor(level)); err != nil {
					t.Fatalf("%s, %s, %d threads: %v", s.name, level, threads, err)
				}
			}
		}
		if p != nil {
			p.Close()
		}
	}
}

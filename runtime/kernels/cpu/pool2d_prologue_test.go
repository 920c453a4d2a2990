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

// TestAvgPoolPrologueMatchesReference compares the average pool with a BN-ReLU prologue against
// the reference FusedAveragePool over random windows and the three prologue forms, at every
// level this machine has.
func TestAvgPoolPrologueMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	kernel := ref.Kernels()["FusedAveragePool"]
	p := NewWorkers(2)
	defer p.Close()
	levels := testLevels(t)
	for trial := 0; trial < 200; trial++ {
		n, c, h, w := 1+rng.IntN(3), 1+rng.IntN(6), 2+rng.IntN(12), 2+rng.IntN(12)
		kh, kw := 1+rng.IntN(3), 1+rng.IntN(3)
		win := ops.Window{Kernel: []int{kh, kw}, Strides: []int{1 + rng.IntN(2), 1 + rng.IntN(2)},
			Pads: []int{rng.IntN(kh), rng.IntN(kw), rng.IntN(kh), rng.IntN(kw)}, CeilMode: rng.IntN(2) == 1}
		if trial%4 == 0 { // DenseNet's transition
			kh, kw = 2, 2
			win = ops.Window{Kernel: []int{2, 2}, Strides: []int{2, 2}}
		}
		op := &ops.FusedAveragePool{Pool: ops.AveragePool{Window: win, CountIncludePad: rng.IntN(2) == 0}, PreRelu: trial%3 != 1}
		if trial%3 != 2 {
			op.PreScale, op.PreShift = make([]float32, c), make([]float32, c)
			for i := range op.PreScale {
				op.PreScale[i], op.PreShift[i] = float32(0.5+rng.Float64()), float32(rng.NormFloat64()*0.5)
			}
		}
		geo, err := win.PoolShapes("pool", []int{n, c, h, w})
		if err != nil {
			continue
		}
		x := make([]float32, n*c*h*w)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		want, err := kernel(op, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{n, c, h, w}, x)}, 1)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		k := &Pool2D{Win: Window2D{KH: kh, KW: kw, StrideH: geo.Stride[0], StrideW: geo.Stride[1],
			DilationH: geo.Dilation[0], DilationW: geo.Dilation[1], PadT: geo.PadBegin[0], PadL: geo.PadBegin[1],
			OutH: geo.Out[0], OutW: geo.Out[1]}, CountIncludePad: op.Pool.CountIncludePad, PadB: geo.PadEnd[0], PadR: geo.PadEnd[1],
			PreScale: op.PreScale, PreShift: op.PreShift, PreRelu: op.PreRelu}
		for _, level := range levels {
			k.code = tableFor(level)
			got := make([]float32, n*c*geo.Out[0]*geo.Out[1])
			if err := k.Run(p, Dense(x, n, c, h, w), Dense(got, n, c, geo.Out[0], geo.Out[1])); err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s trial %d (%dx%dx%dx%d, %+v, relu %v, affine %v)", level, trial, n, c, h, w, win, op.PreRelu, op.PreScale != nil)
			if err := tensor.AllClose(tensor.FromSlice(want[0].Shape, got), want[0], 1e-5, 1e-6); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}

// TestAvgPoolPrologueErrors: a prologue that does not fit the input, or one on a max pool, is an
// error, not a panic.
func TestAvgPoolPrologueErrors(t *testing.T) {
	x, y := make([]float32, 3*4*4), make([]float32, 3*2*2)
	win := Window2D{KH: 2, KW: 2, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, OutH: 2, OutW: 2}
	for _, k := range []*Pool2D{
		{Win: win, PreScale: []float32{1, 1}, PreShift: []float32{0, 0}},
		{Win: win, PreScale: []float32{1, 1, 1}},
		{Win: win, Max: true, PreRelu: true},
	} {
		if err := k.Run(nil, Dense(x, 1, 3, 4, 4), Dense(y, 1, 3, 2, 2)); err == nil {
			t.Errorf("%+v: no error", k)
		}
	}
}

// BenchmarkAvgPoolPrologueTransition is DenseNet-121's first transition pool once it has moved
// before the 1x1 convolution: BN-ReLU then 2x2 stride-2 average over 256 channels, 56x56 -> 28x28.
func BenchmarkAvgPoolPrologueTransition(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			p := NewWorkers(threads)
			defer p.Close()
			const c = 256
			x := make([]float32, c*56*56)
			for i := range x {
				x[i] = float32(i%7) - 3
			}
			y := make([]float32, c*28*28)
			scale, shift := make([]float32, c), make([]float32, c)
			for i := range scale {
				scale[i], shift[i] = 1.5, -0.25
			}
			k := &Pool2D{Win: Window2D{KH: 2, KW: 2, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, OutH: 28, OutW: 28},
				PreScale: scale, PreShift: shift, PreRelu: true}
			b.SetBytes(int64(4 * (len(x) + len(y))))
			for i := 0; i < b.N; i++ {
				if err := k.Run(p, Dense(x, 1, c, 56, 56), Dense(y, 1, c, 28, 28)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAvg2x2Row checks the 2x2 average row kernel, at every level this machine has, against a
// float64 computation at every length from 1 to 41, with and without the ReLU floor, with NaN
// and infinite inputs, and with sentinels around the output.
func TestAvg2x2Row(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	inf := float32(math.Inf(1))
	levels := testLevels(t)
	for n := 1; n <= 41; n++ {
		for _, floor := range []float32{0, -inf} {
			for _, level := range levels {
				r0, r1 := make([]float32, 2*n), make([]float32, 2*n)
				for i := range r0 {
					r0[i], r1[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
				}
				if n > 3 {
					r0[3], r1[2*n-1] = float32(math.NaN()), inf
				}
				buf := make([]float32, n+2)
				buf[0], buf[n+1] = 777, 777
				const scale, shift = 1.25, -0.5
				tableFor(level).avg2x2Row(buf[1:n+1], r0, r1, scale, shift, floor)
				if buf[0] != 777 || buf[n+1] != 777 {
					t.Fatalf("n %d: wrote outside the output", n)
				}
				f := func(v float32) float64 {
					r := float64(v)*scale + shift
					if floor == 0 {
						r = max(r, 0)
					}
					return r
				}
				for k := 0; k < n; k++ {
					want := (f(r0[2*k]) + f(r0[2*k+1]) + f(r1[2*k]) + f(r1[2*k+1])) / 4
					got := float64(buf[k+1])
					if math.IsNaN(want) != math.IsNaN(got) || (!math.IsNaN(want) && math.Abs(got-want) > 1e-6*max(1, math.Abs(want)) && got != want) {
						t.Fatalf("n %d floor %v %s: out[%d] = %v, want %v", n, floor, level, k, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkAvgPool2x2Levels runs DenseNet-121's three transition pools (BN-ReLU prologue, 2x2
// stride 2, moved before the 1x1 convolution: 256x56x56, 512x28x28, 1024x14x14) on one thread at
// each level this machine has, and reports the bytes read and written per second (GB/s, one core).
func BenchmarkAvgPool2x2Levels(b *testing.B) {
	p := NewWorkers(1)
	defer p.Close()
	for _, s := range []struct{ c, hw int }{{256, 56}, {512, 28}, {1024, 14}} {
		x := make([]float32, s.c*s.hw*s.hw)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		oh := s.hw / 2
		y := make([]float32, s.c*oh*oh)
		scale, shift := make([]float32, s.c), make([]float32, s.c)
		for i := range scale {
			scale[i], shift[i] = 1.5, -0.25
		}
		for _, level := range testLevels(b) {
			k := &Pool2D{Win: Window2D{KH: 2, KW: 2, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, OutH: oh, OutW: oh},
				PreScale: scale, PreShift: shift, PreRelu: true, code: tableFor(level)}
			b.Run(fmt.Sprintf("densenet-%dx%d/%s", s.c, s.hw, level), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := k.Run(p, Dense(x, 1, s.c, s.hw, s.hw), Dense(y, 1, s.c, oh, oh)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(4*(len(x)+len(y)))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}

// TestAvgPool2x2RealShapes compares the 2x2 stride-2 average pool with a prologue (the one-pass
// plane kernels) with the reference at DenseNet-like shapes and odd sizes, at every level this
// machine has, with no Workers (nil) and on 1, 2 and 3 threads; the avx2 and avx512 levels must
// also agree bit for bit (same FMA, same summation order).
func TestAvgPool2x2RealShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	kernel := ref.Kernels()["FusedAveragePool"]
	for _, threads := range []int{0, 1, 2, 3} {
		var p *Workers
		if threads > 0 {
			p = NewWorkers(threads)
		}
		for _, s := range []struct{ c, h, w int }{{64, 56, 56}, {128, 28, 28}, {256, 14, 14}, {40, 7, 7}, {24, 33, 31}, {9, 2, 65}} {
			for form := range 3 {
				op := &ops.FusedAveragePool{Pool: ops.AveragePool{Window: ops.Window{Kernel: []int{2, 2}, Strides: []int{2, 2}}},
					PreRelu: form != 1}
				if form != 2 {
					op.PreScale, op.PreShift = make([]float32, s.c), make([]float32, s.c)
					for i := range op.PreScale {
						op.PreScale[i], op.PreShift[i] = float32(0.5+rng.Float64()), float32(rng.NormFloat64()*0.5)
					}
				}
				x := make([]float32, s.c*s.h*s.w)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				want, err := kernel(op, []*tensor.Tensor{tensor.FromSlice(tensor.Shape{1, s.c, s.h, s.w}, x)}, 1)
				if err != nil {
					t.Fatalf("reference: %v", err)
				}
				oh, ow := s.h/2, s.w/2
				k := &Pool2D{Win: Window2D{KH: 2, KW: 2, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, OutH: oh, OutW: ow},
					PreScale: op.PreScale, PreShift: op.PreShift, PreRelu: op.PreRelu}
				if a := k.Algorithm(s.h, s.w); a != "avgpool-2x2" {
					t.Fatalf("%dx%d: algorithm %s", s.h, s.w, a)
				}
				var prev []float32
				for _, level := range testLevels(t) {
					k.code = tableFor(level)
					got := make([]float32, s.c*oh*ow)
					if err := k.Run(p, Dense(x, 1, s.c, s.h, s.w), Dense(got, 1, s.c, oh, ow)); err != nil {
						t.Fatal(err)
					}
					name := fmt.Sprintf("%dx%dx%d form %d %s %d threads", s.c, s.h, s.w, form, level, threads)
					if err := tensor.AllClose(tensor.FromSlice(want[0].Shape, got), want[0], 1e-5, 1e-6); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if level.String() == "avx512" && prev != nil {
						for i := range got {
							if math.Float32bits(got[i]) != math.Float32bits(prev[i]) {
								t.Fatalf("%s: output %d is %v, avx2 %v", name, i, got[i], prev[i])
							}
						}
					}
					prev = got
				}
			}
		}
		if p != nil {
			p.Close()
		}
	}
}

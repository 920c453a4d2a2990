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

// TestPool2DMatchesReference compares MaxPool and AveragePool with the reference kernels over
// random windows (strides, pads, dilations, ceil mode, count_include_pad), writing into a strided
// output whose gaps must stay untouched, at every level this machine has.
func TestPool2DMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	refs := ref.Kernels()
	p := NewWorkers(2)
	defer p.Close()
	levels := testLevels(t)
	for trial := 0; trial < 300; trial++ {
		n, c, h, w := 1+rng.IntN(3), 1+rng.IntN(5), 1+rng.IntN(12), 1+rng.IntN(12)
		kh, kw := 1+rng.IntN(3), 1+rng.IntN(3)
		win := ops.Window{Kernel: []int{kh, kw}, Strides: []int{1 + rng.IntN(3), 1 + rng.IntN(3)},
			Dilations: []int{1 + rng.IntN(2), 1 + rng.IntN(2)},
			Pads:      []int{rng.IntN(kh), rng.IntN(kw), rng.IntN(kh), rng.IntN(kw)}, CeilMode: rng.IntN(2) == 1}
		isMax := rng.IntN(2) == 0
		countPad := rng.IntN(2) == 0
		var op ops.Op = &ops.MaxPool{Window: win, NumOutputs: 1}
		if !isMax {
			op = &ops.AveragePool{Window: win, CountIncludePad: countPad}
		}
		geo, err := win.PoolShapes("pool", []int{n, c, h, w})
		if err != nil {
			continue // window larger than the padded input
		}
		x := make([]float32, n*c*h*w)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		xt := tensor.FromSlice(tensor.Shape{n, c, h, w}, x)
		want, err := refs[op.OpType()](op, []*tensor.Tensor{xt}, 1)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		k := &Pool2D{Win: Window2D{KH: kh, KW: kw, StrideH: geo.Stride[0], StrideW: geo.Stride[1],
			DilationH: geo.Dilation[0], DilationW: geo.Dilation[1], PadT: geo.PadBegin[0], PadL: geo.PadBegin[1],
			OutH: geo.Out[0], OutW: geo.Out[1]}, Max: isMax, CountIncludePad: countPad, PadB: geo.PadEnd[0], PadR: geo.PadEnd[1]}
		oh, ow := geo.Out[0], geo.Out[1]
		per := c * oh * ow
		stride := per + 7 // gaps between batch items, filled with a sentinel
		for _, level := range levels {
			k.code = tableFor(level)
			buf := make([]float32, n*stride)
			for i := range buf {
				buf[i] = 12345
			}
			out := Image{Data: buf, N: n, C: c, H: oh, W: ow, BatchStride: stride}
			if err := k.Run(p, Dense(x, n, c, h, w), out); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, 0, n*per)
			for b := 0; b < n; b++ {
				got = append(got, out.Item(b)...)
				for _, v := range buf[b*stride+per : (b+1)*stride] {
					if v != 12345 {
						t.Fatalf("%s trial %d: the kernel wrote outside its output", level, trial)
					}
				}
			}
			name := fmt.Sprintf("%s trial %d (max %v, %dx%dx%dx%d, %+v)", level, trial, isMax, n, c, h, w, win)
			if err := tensor.AllClose(tensor.FromSlice(want[0].Shape, got), want[0], 1e-5, 1e-6); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}

func BenchmarkMaxPoolStem(b *testing.B) {
	// DenseNet-121's stem pool: 64 channels, 112x112 -> 56x56, 3x3 stride 2 pad 1.
	p := NewWorkers(2)
	defer p.Close()
	x := make([]float32, 64*112*112)
	y := make([]float32, 64*56*56)
	k := &Pool2D{Win: Window2D{KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, PadT: 1, PadL: 1, OutH: 56, OutW: 56}, Max: true}
	for i := 0; i < b.N; i++ {
		if err := k.Run(p, Dense(x, 1, 64, 112, 112), Dense(y, 1, 64, 56, 56)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAvgPoolTransition(b *testing.B) {
	// DenseNet-121's first transition pool: 128 channels, 56x56 -> 28x28, 2x2 stride 2.
	p := NewWorkers(1)
	defer p.Close()
	x := make([]float32, 128*56*56)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	y := make([]float32, 128*28*28)
	k := &Pool2D{Win: Window2D{KH: 2, KW: 2, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, OutH: 28, OutW: 28}}
	for i := 0; i < b.N; i++ {
		if err := k.Run(p, Dense(x, 1, 128, 56, 56), Dense(y, 1, 128, 28, 28)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGlobalPool checks the plane means against float64 sums, for planes of 1 to 12544 pixels,
// dense and channel-slice images, inline and on 2 and 3 threads.
func TestGlobalPool(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	pools := testWorkerSets(t)
	for _, level := range testLevels(t) {
		k := GlobalPool{code: tableFor(level)}
		for _, hw := range [][2]int{{1, 1}, {1, 7}, {7, 7}, {3, 5}, {14, 14}, {112, 112}} {
			for _, extra := range []int{0, 3} {
				n, c := 2, 5
				h, w := hw[0], hw[1]
				item := (c + extra) * h * w
				in := Image{Data: randFloats(r, n*item), N: n, C: c, H: h, W: w, BatchStride: item}
				for wi, workers := range pools {
					out := Image{Data: make([]float32, n*(c+extra)), N: n, C: c, H: 1, W: 1, BatchStride: c + extra}
					if err := k.Run(workers, in, out); err != nil {
						t.Fatal(err)
					}
					for b := 0; b < n; b++ {
						for ch := 0; ch < c; ch++ {
							var s, mag float64
							for _, v := range in.Data[b*item+ch*h*w:][:h*w] {
								s += float64(v)
								mag += math.Abs(float64(v))
							}
							want := s / float64(h*w)
							// A float64 sum: the one rounding to float32.
							if got := float64(out.Data[b*(c+extra)+ch]); math.Abs(got-want) > 1e-7*math.Abs(want)+1e-12 {
								t.Errorf("%s %dx%d extra %d workers%d: item %d channel %d = %g, want %g", level, h, w, extra, wi, b, ch, got, want)
							}
						}
						for ch := c; ch < c+extra; ch++ {
							if out.Data[b*(c+extra)+ch] != 0 {
								t.Errorf("wrote past the output's channels")
							}
						}
					}
				}
			}
		}
	}
	var k GlobalPool
	if err := k.Run(nil, Dense(make([]float32, 8), 1, 2, 2, 2), Dense(make([]float32, 3), 1, 3, 1, 1)); err == nil {
		t.Error("mismatched channels: no error")
	}
}

func BenchmarkGlobalPool(b *testing.B) {
	for _, s := range []struct{ c, hw int }{{96, 112}, {240, 28}, {1152, 7}} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.c, s.hw, s.hw), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			in := Dense(randFloats(r, s.c*s.hw*s.hw), 1, s.c, s.hw, s.hw)
			out := Dense(make([]float32, s.c), 1, s.c, 1, 1)
			var k GlobalPool
			b.SetBytes(int64(4 * len(in.Data)))
			for b.Loop() {
				_ = k.Run(nil, in, out)
			}
		})
	}
}

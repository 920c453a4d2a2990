package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// dwConvCases are depthwise convolutions checked against the reference convolution at every
// level, on every worker set: kernel sizes 3, 5 and 7, strides 1 and 2, asymmetric and wide
// pads, dilation, channel multipliers, prologues, batch, channel slices of larger buffers, and
// the narrow planes that run flat (7x7, 14x14) as well as wide ones that run row by row.
func dwConvCases() []convCase {
	dw := func(name string, n, c, h, w, k, s int, pads [4]int) convCase {
		return convCase{name: name, n: n, cin: c, cout: c, h: h, w: w, kh: k, kw: k, sh: s, sw: s, pads: pads, group: c,
			bias: true, postRelu: true, path: pathDepthwise}
	}
	cs := []convCase{
		dw("3x3 s1 112", 1, 3, 112, 112, 3, 1, [4]int{1, 1, 1, 1}),
		dw("3x3 s2 112", 1, 3, 112, 112, 3, 2, [4]int{1, 1, 1, 1}),
		dw("3x3 s2 112 onnx-same-upper", 1, 3, 112, 112, 3, 2, [4]int{0, 0, 1, 1}),
		dw("3x3 s1 7", 2, 5, 7, 7, 3, 1, [4]int{1, 1, 1, 1}),
		dw("5x5 s1 14", 1, 6, 14, 14, 5, 1, [4]int{2, 2, 2, 2}),
		dw("5x5 s2 56", 1, 3, 56, 56, 5, 2, [4]int{2, 2, 2, 2}),
		dw("5x5 s2 14 asym", 1, 4, 14, 14, 5, 2, [4]int{1, 1, 2, 2}),
		dw("5x5 s1 7", 1, 9, 7, 7, 5, 1, [4]int{2, 2, 2, 2}),
		dw("5x5 s1 28 asym", 1, 3, 28, 28, 5, 1, [4]int{0, 3, 2, 1}),
		dw("7x7 s1 28", 1, 3, 28, 28, 7, 1, [4]int{3, 3, 3, 3}),
		dw("7x7 s2 29 odd", 2, 3, 29, 31, 7, 2, [4]int{3, 2, 1, 3}),
		dw("7x7 s1 9x5 pads > kernel/2", 1, 2, 9, 5, 7, 1, [4]int{3, 3, 3, 3}),
		dw("3x3 s1 odd 13x57 no pad", 1, 4, 13, 57, 3, 1, [4]int{0, 0, 0, 0}),
		dw("5x5 s1 pads 0..3", 1, 3, 19, 23, 5, 1, [4]int{0, 1, 2, 3}),
		dw("3x3 s1 1x1 image", 1, 3, 1, 1, 3, 1, [4]int{1, 1, 1, 1}),
	}
	pre := dw("5x5 s1 prologue", 2, 5, 11, 12, 5, 1, [4]int{2, 2, 2, 2})
	pre.pre, pre.preRelu, pre.postRelu, pre.bias = true, true, false, false
	mult := dw("3x5 s2x1 x3 multiplier dilation", 1, 2, 15, 16, 3, 2, [4]int{2, 1, 0, 3})
	mult.cout, mult.kw, mult.sw, mult.dh, mult.dw, mult.pre = 6, 5, 1, 2, 1, true
	strided := dw("5x5 s2 strided batch 3", 3, 4, 9, 10, 5, 2, [4]int{2, 2, 2, 2})
	strided.strided = true
	return append(cs, pre, mult, strided)
}

// TestDepthwiseMatchesReference runs dwConvCases at every level against the reference.
func TestDepthwiseMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	workerSets := testWorkerSets(t)
	for _, level := range testLevels(t) {
		code := tableFor(level)
		for _, tc := range dwConvCases() {
			convMatchesReference(t, r, workerSets, tc, level, code)
		}
	}
}

// dwBenchShapes are depthwise layers of MobileNetV2 (3x3), EfficientNet-B0 and MobileNetV3
// (5x5), and a 7x7 one: c channels of hw x hw in, kernel k, stride s.
var dwBenchShapes = []struct {
	name        string
	c, k, s, hw int
}{
	{"mbv2/3x3/c=32,s=1,hw=112", 32, 3, 1, 112},
	{"mbv2/3x3/c=96,s=2,hw=112", 96, 3, 2, 112},
	{"mbv2/3x3/c=144,s=1,hw=56", 144, 3, 1, 56},
	{"mbv2/3x3/c=144,s=2,hw=56", 144, 3, 2, 56},
	{"mbv2/3x3/c=192,s=1,hw=28", 192, 3, 1, 28},
	{"mbv2/3x3/c=384,s=1,hw=14", 384, 3, 1, 14},
	{"mbv2/3x3/c=960,s=1,hw=7", 960, 3, 1, 7},
	{"effb0/5x5/c=144,s=2,hw=56", 144, 5, 2, 56},
	{"effb0/5x5/c=240,s=1,hw=28", 240, 5, 1, 28},
	{"effb0/5x5/c=672,s=1,hw=14", 672, 5, 1, 14},
	{"effb0/5x5/c=672,s=2,hw=14", 672, 5, 2, 14},
	{"effb0/5x5/c=1152,s=1,hw=7", 1152, 5, 1, 7},
	{"7x7/c=64,s=1,hw=28", 64, 7, 1, 28},
}

// BenchmarkDepthwiseConv runs depthwise convolutions (bias, ReLU) at each level, batch 1, one
// thread, and reports ns per output and GFLOP/s (2 per multiply-add, one core): the padded copy
// and the taps together. Levels with a channel kernel also run their row kernel ("rows").
func BenchmarkDepthwiseConv(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, sh := range dwBenchShapes {
		spec := dwBenchSpec(r, sh.c, sh.k, sh.s)
		for _, l := range testLevels(b) {
			for _, rows := range []bool{false, true} {
				k := *tableFor(l)
				name := fmt.Sprintf("%s/%s", sh.name, l)
				if rows {
					if !k.dwChanPlanes {
						continue
					}
					k.dwChanPlanes = false
					name += "/rows"
				}
				b.Run(name, func(b *testing.B) {
					conv, err := newConv2D(spec, -1, &k)
					if err != nil {
						b.Fatal(err)
					}
					in, out, scratch := dwBenchBuffers(r, conv, sh.c, sh.hw, 1)
					workers := NewWorkers(1)
					defer workers.Close()
					b.ResetTimer()
					for range b.N {
						if err := conv.Run(workers, in, out, scratch); err != nil {
							b.Fatal(err)
						}
					}
					ns := b.Elapsed().Seconds() * 1e9 / float64(b.N)
					outs := float64(len(out.Data))
					b.ReportMetric(ns/outs, "ns/output")
					b.ReportMetric(2*outs*float64(sh.k*sh.k)/ns, "GFLOP/s")
				})
			}
		}
	}
}

// dwBenchSpec is a c-channel k x k depthwise convolution of stride s with bias and ReLU, padded
// to keep the size (stride 1).
func dwBenchSpec(r *rand.Rand, c, k, s int) ConvSpec {
	p := k / 2
	return ConvSpec{Cin: c, Cout: c, Group: c, KH: k, KW: k, StrideH: s, StrideW: s,
		PadT: p, PadL: p, PadB: p, PadR: p, Weights: randFloats(r, c*k*k), Bias: randFloats(r, c), PostRelu: true}
}

// dwBenchBuffers returns an input of c hw x hw channels, the output and the scratch of conv on
// threads threads.
func dwBenchBuffers(r *rand.Rand, conv *Conv2D, c, hw, threads int) (in, out Image, scratch []float32) {
	oh, ow := conv.OutputSize(hw, hw)
	in = Dense(randFloats(r, c*hw*hw), 1, c, hw, hw)
	out = Dense(make([]float32, c*oh*ow), 1, c, oh, ow)
	return in, out, make([]float32, conv.ScratchSize(1, hw, hw, threads))
}

// BenchmarkDepthwisePaths compares the channel path with the row path of the selected level on
// a VM whose speed drifts: each iteration runs both, alternately, a few times each, and the
// metrics are the best time of each (us) and their ratio (rows/chans: above 1, the channel path
// is faster), at 1 and 2 threads.
func BenchmarkDepthwisePaths(b *testing.B) {
	if !active.dwChanPlanes {
		b.Skip("the selected level has no channel kernel")
	}
	r := rand.New(rand.NewPCG(3, 3))
	for _, threads := range []int{1, 2} {
		for _, sh := range dwBenchShapes {
			b.Run(fmt.Sprintf("%s/threads=%d", sh.name, threads), func(b *testing.B) {
				spec := dwBenchSpec(r, sh.c, sh.k, sh.s)
				rows := *active
				rows.dwChanPlanes = false
				var convs [2]*Conv2D
				for i, k := range []*kernels{&rows, active} {
					c, err := newConv2D(spec, -1, k)
					if err != nil {
						b.Fatal(err)
					}
					convs[i] = c
				}
				in, out, scratch := dwBenchBuffers(r, convs[0], sh.c, sh.hw, threads)
				scratch = make([]float32, max(len(scratch), convs[1].ScratchSize(1, sh.hw, sh.hw, threads)))
				workers := NewWorkers(threads)
				defer workers.Close()
				best := [2]time.Duration{time.Hour, time.Hour}
				for range b.N {
					for i, c := range convs {
						for range 3 {
							t0 := time.Now()
							if err := c.Run(workers, in, out, scratch); err != nil {
								b.Fatal(err)
							}
							best[i] = min(best[i], time.Since(t0))
						}
					}
				}
				b.ReportMetric(best[0].Seconds()*1e6, "rows-us")
				b.ReportMetric(best[1].Seconds()*1e6, "chans-us")
				b.ReportMetric(best[0].Seconds()/best[1].Seconds(), "rows/chans")
			})
		}
	}
}

package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkConvWinograd compares the stride-1 direct convolution with Winograd F(2x2, 3x3) and
// F(4x4, 3x3) on the 3x3 convolutions of DenseNet-121 (128 -> 32 channels) and CIFAR
// DenseNet-BC-100 (48 -> 12). GFLOP/s count the direct convolution's 2*Cout*Cin*9 flops per output
// pixel for every algorithm, so they compare times.
func BenchmarkConvWinograd(b *testing.B) {
	type shape struct {
		bc benchConv
		n  int
	}
	var shapes []shape
	for _, hw := range []int{56, 28, 14, 7} {
		shapes = append(shapes, shape{benchConv{fmt.Sprintf("3x3,c=128,k=32,hw=%d", hw), 128, 32, 3, 1, hw, true, false}, 1})
	}
	for _, hw := range []int{14, 7} {
		shapes = append(shapes, shape{benchConv{fmt.Sprintf("3x3,c=128,k=32,hw=%d", hw), 128, 32, 3, 1, hw, true, false}, 8})
	}
	for _, hw := range []int{32, 16, 8} {
		shapes = append(shapes, shape{benchConv{fmt.Sprintf("3x3,c=48,k=12,hw=%d", hw), 48, 12, 3, 1, hw, true, false}, 64})
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, sh := range shapes {
		for _, threads := range []int{1, 2} {
			for _, alg := range []int{0, 2, 4} {
				name := "direct"
				if alg > 0 {
					name = fmt.Sprintf("F%d", alg)
				}
				b.Run(fmt.Sprintf("%s,n=%d/threads=%d/%s", sh.bc.name, sh.n, threads, name), func(b *testing.B) {
					conv, err := newConv2D(sh.bc.spec(r), pathDirect, active)
					if err != nil {
						b.Fatal(err)
					}
					if alg > 0 {
						conv.wino = newWinograd(conv)
						conv.wino.force = alg
					}
					benchConvRun(b, conv, sh.bc, sh.n, threads, r)
				})
			}
		}
	}
}

// benchConvRun times conv.Run on random input of bc's shape.
func benchConvRun(b *testing.B, conv *Conv2D, bc benchConv, n, threads int, r *rand.Rand) {
	oh, ow := conv.OutputSize(bc.hw, bc.hw)
	in := Dense(randFloats(r, n*bc.cin*bc.hw*bc.hw), n, bc.cin, bc.hw, bc.hw)
	out := Dense(make([]float32, n*bc.cout*oh*ow), n, bc.cout, oh, ow)
	scratch := make([]float32, conv.ScratchSize(n, bc.hw, bc.hw, threads))
	workers := NewWorkers(threads)
	defer workers.Close()
	if err := conv.Run(workers, in, out, scratch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := convCPUTime()
	for range b.N {
		if err := conv.Run(workers, in, out, scratch); err != nil {
			b.Fatal(err)
		}
	}
	reportConv(b, bc.flops(n), cpu0)
}

// BenchmarkWinogradDenseNet121 runs the 58 3x3 convolutions of DenseNet-121 at 224x224 (128 -> 32
// channels with a BN-ReLU prologue, at 56, 28, 14 and 7), direct and as NewConv2D picks (Winograd
// where it measures faster). GFLOP/s count the direct convolution's flops.
func BenchmarkWinogradDenseNet121(b *testing.B) {
	var convs []benchConv
	for _, bc := range denseNet121() {
		if bc.k == 3 {
			bc.pre = true
			convs = append(convs, bc)
		}
	}
	for _, n := range []int{1, 8} {
		for _, threads := range []int{1, 2} {
			for _, alg := range []string{"direct", "auto"} {
				b.Run(fmt.Sprintf("n=%d/threads=%d/%s", n, threads, alg), func(b *testing.B) {
					var adjust func(*Conv2D)
					if alg == "direct" {
						adjust = func(c *Conv2D) { c.wino = nil }
					}
					benchConvSequence(b, convs, n, threads, rand.New(rand.NewPCG(6, 6)), adjust)
				})
			}
		}
	}
}

// BenchmarkWinoOutTransform times the F(4x4) output transform alone at each level this machine
// has, as outputSegment calls it for one DenseNet-121 image (3x3, 128 -> 32 channels) on one
// thread: the geometry (chunks, row strides) is that of the convolution's Run, and each chunk's
// row segments (up to ceil(hw/4) tiles) are transformed for the 32 output channels, from an M
// that stays in cache as a chunk's does. Mtiles/s counts tiles (a 6x6 M tile into a 4x4 block).
func BenchmarkWinoOutTransform(b *testing.B) {
	for _, hw := range []int{56, 28, 14, 7} {
		bc := benchConv{fmt.Sprintf("hw=%d", hw), 128, 32, 3, 1, hw, true, true}
		r := rand.New(rand.NewPCG(7, 7))
		conv, err := newConv2D(bc.spec(r), pathDirect, active)
		if err != nil {
			b.Fatal(err)
		}
		f := newWinograd(conv).form(4)
		g := f.geom(1, hw, hw, 1)
		mm := randFloats(r, 36*g.psM)
		rows := make([]float32, 4*g.wt)
		os := make([]float32, winoOutScratch)
		for _, level := range testLevels(b) {
			k := tableFor(level)
			b.Run(fmt.Sprintf("%s,rowtiles=%d/%s", bc.name, g.tilesX, level), func(b *testing.B) {
				for range b.N {
					for g0 := 0; g0 < g.tiles; g0 += g.nt {
						for gi := g0; gi < min(g0+g.nt, g.tiles); {
							n := min(g.tilesX-gi%g.tilesX, g0+g.nt-gi, g.tiles-gi)
							for mo := 0; mo < bc.cout; mo++ {
								k.winoOut(4, mm[mo*g.ldv+gi-g0:], g.psM, n, rows, g.wt, 0.5, true, os)
							}
							gi += n
						}
					}
				}
				b.ReportMetric(float64(b.N)*float64(g.tiles*bc.cout)/b.Elapsed().Seconds()/1e6, "Mtiles/s")
			})
		}
	}
}

// BenchmarkWinoInTransform times the input transform alone at each level this machine has, as
// a one-thread Run of one image calls it: the geometry (chunks, row segments, strides) and the
// tile size are the convolution's (winoChoice), at the 3x3 shapes of DenseNet-121 (128 -> 32,
// with its BN-ReLU prologue) and ResNet-18 (no prologue). The input stays in cache between
// iterations. Mtiles/s counts the tiles of one channel (an alpha x alpha input patch into V).
func BenchmarkWinoInTransform(b *testing.B) {
	shapes := []benchConv{}
	for _, hw := range []int{56, 28, 14, 7} {
		shapes = append(shapes, benchConv{fmt.Sprintf("densenet,c=128,hw=%d", hw), 128, 32, 3, 1, hw, true, false})
	}
	for _, s := range []struct{ c, hw int }{{64, 56}, {128, 28}, {256, 14}} {
		shapes = append(shapes, benchConv{fmt.Sprintf("resnet,c=%d,hw=%d", s.c, s.hw), s.c, s.c, 3, 1, s.hw, false, false})
	}
	for _, bc := range shapes {
		r := rand.New(rand.NewPCG(8, 8))
		spec := bc.spec(r)
		m := winoChoice(1, bc.hw, bc.hw, bc.cin, bc.cout, 1, active.gemm.NR())
		in := Dense(randFloats(r, bc.cin*bc.hw*bc.hw), 1, bc.cin, bc.hw, bc.hw)
		for _, level := range testLevels(b) {
			conv, err := newConv2D(spec, pathDirect, tableFor(level))
			if err != nil {
				b.Fatal(err)
			}
			f := newWinograd(conv).form(m)
			g := f.geom(1, bc.hw, bc.hw, 1)
			v := make([]float32, f.alpha*f.alpha*g.psV+16)
			rows := make([]float32, (f.alpha+f.m+1)*g.wt)
			b.Run(fmt.Sprintf("%s,F%d,rowtiles=%d/%s", bc.name, m, g.tilesX, level), func(b *testing.B) {
				for range b.N {
					for g0 := 0; g0 < g.tiles; g0 += g.nt {
						f.inputTransform(in, &g, v, rows, g0, min(g0+g.nt, g.tiles), 0, bc.cin)
					}
				}
				b.ReportMetric(float64(b.N)*float64(g.tiles*bc.cin)/b.Elapsed().Seconds()/1e6, "Mtiles/s")
			})
		}
	}
}

package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// reportConv reports GFLOP/s and ms per run over wall time and, because benchmarks share this
// machine with other work, GFLOP/s per busy core (over the CPU time the process got).
func reportConv(b *testing.B, flops float64, cpu0 time.Duration) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms")
	if d := convCPUTime() - cpu0; d > 0 && cpu0 > 0 {
		b.ReportMetric(flops*float64(b.N)/d.Seconds()/1e9, "GFLOP/s/core")
	}
	b.ReportMetric(0, "ns/op")
}

// benchConv is one convolution shape of DenseNet-121 (224x224 input).
type benchConv struct {
	name                string
	cin, cout, k, s, hw int
	pre, bias           bool
}

func (bc benchConv) spec(r *rand.Rand) ConvSpec {
	p := bc.k / 2
	s := ConvSpec{Cin: bc.cin, Cout: bc.cout, KH: bc.k, KW: bc.k, StrideH: bc.s, StrideW: bc.s,
		PadT: p, PadL: p, PadB: p, PadR: p, Weights: randFloats(r, bc.cout*bc.cin*bc.k*bc.k)}
	if bc.pre {
		s.PreScale, s.PreShift, s.PreRelu = randFloats(r, bc.cin), randFloats(r, bc.cin), true
	}
	if bc.bias {
		s.Bias, s.PostRelu = randFloats(r, bc.cout), true
	}
	return s
}

func (bc benchConv) flops(n int) float64 {
	o := (bc.hw + 2*(bc.k/2) - bc.k) / bc.s
	o++
	return 2 * float64(n*bc.cout*o*o*bc.cin*bc.k*bc.k)
}

// BenchmarkConv measures Conv2D.Run at DenseNet-121 shapes: the dense layers' 1x1 bottleneck
// (BN-ReLU prologue, bias-ReLU epilogue) and 3x3 convolution at each block's size, and the stem.
func BenchmarkConv(b *testing.B) {
	shapes := []benchConv{
		{"1x1,c=256,k=128,hw=56", 256, 128, 1, 1, 56, true, true},
		{"1x1,c=512,k=128,hw=28", 512, 128, 1, 1, 28, true, true},
		{"1x1,c=1024,k=128,hw=14", 1024, 128, 1, 1, 14, true, true},
		{"1x1,c=1024,k=128,hw=7", 1024, 128, 1, 1, 7, true, true},
		{"3x3,c=128,k=32,hw=56", 128, 32, 3, 1, 56, false, false},
		{"3x3,c=128,k=32,hw=28", 128, 32, 3, 1, 28, false, false},
		{"3x3,c=128,k=32,hw=14", 128, 32, 3, 1, 14, false, false},
		{"3x3,c=128,k=32,hw=7", 128, 32, 3, 1, 7, false, false},
		{"stem,7x7/2,c=3,k=64,hw=224", 3, 64, 7, 2, 224, false, true},
		// MobileNetV2's (and EfficientNet's, with 32 -> 32 of SiLU) and ShuffleNetV2's stems: 3x3
		// stride 2 over 3 channels, a GEMM depth of 27.
		{"stem,3x3/2,c=3,k=32,hw=224", 3, 32, 3, 2, 224, false, true},
		{"stem,3x3/2,c=3,k=24,hw=224", 3, 24, 3, 2, 224, false, true},
		// ResNet's downsampling convolutions: 3x3 stride 2 and the 1x1 stride-2 shortcut.
		{"resnet,3x3/2,c=64,k=128,hw=56", 64, 128, 3, 2, 56, false, true},
		{"resnet,3x3/2,c=256,k=512,hw=14", 256, 512, 3, 2, 14, false, true},
		{"resnet,1x1/2,c=64,k=128,hw=56", 64, 128, 1, 2, 56, false, false},
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, bc := range shapes {
		batches := []int{1}
		if bc.hw <= 14 {
			batches = append(batches, 8)
		}
		for _, n := range batches {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s,n=%d/threads=%d", bc.name, n, threads), func(b *testing.B) {
					benchRun(b, bc, n, threads, r)
				})
			}
		}
	}
}

// BenchmarkConvCIFAR measures DenseNet-BC-100 (growth 12) shapes on 32x32 CIFAR images at batch
// 64: a 1x1 bottleneck to 48 channels and the 3x3 48 -> 12 convolution at each block's size.
func BenchmarkConvCIFAR(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, bc := range []benchConv{
		{"1x1,c=120,k=48,hw=32", 120, 48, 1, 1, 32, true, true},
		{"3x3,c=48,k=12,hw=32", 48, 12, 3, 1, 32, false, false},
		{"1x1,c=300,k=48,hw=8", 300, 48, 1, 1, 8, true, true},
		{"3x3,c=48,k=12,hw=8", 48, 12, 3, 1, 8, false, false},
	} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s,n=64/threads=%d", bc.name, threads), func(b *testing.B) {
				benchRun(b, bc, 64, threads, r)
			})
		}
	}
}

func benchRun(b *testing.B, bc benchConv, n, threads int, r *rand.Rand) {
	conv, err := NewConv2D(bc.spec(r))
	if err != nil {
		b.Fatal(err)
	}
	oh, ow := conv.OutputSize(bc.hw, bc.hw)
	in := Dense(randFloats(r, n*bc.cin*bc.hw*bc.hw), n, bc.cin, bc.hw, bc.hw)
	out := Dense(make([]float32, n*bc.cout*oh*ow), n, bc.cout, oh, ow)
	scratch := make([]float32, conv.ScratchSize(n, bc.hw, bc.hw, threads))
	workers := NewWorkers(threads)
	defer workers.Close()
	b.ResetTimer()
	cpu0 := convCPUTime()
	for range b.N {
		if err := conv.Run(workers, in, out, scratch); err != nil {
			b.Fatal(err)
		}
	}
	reportConv(b, bc.flops(n), cpu0)
}

// denseNet121 lists DenseNet-121's convolutions at 224x224 (growth 32, bottleneck 128, blocks
// 6-12-24-16, compression 0.5).
func denseNet121() []benchConv {
	convs := []benchConv{{"stem", 3, 64, 7, 2, 224, false, true}}
	c, hw := 64, 56
	for blk, layers := range []int{6, 12, 24, 16} {
		for l := 0; l < layers; l++ {
			convs = append(convs, benchConv{"1x1", c, 128, 1, 1, hw, true, true}, benchConv{"3x3", 128, 32, 3, 1, hw, false, false})
			c += 32
		}
		if blk < 3 {
			convs = append(convs, benchConv{"transition", c, c / 2, 1, 1, hw, true, false})
			c, hw = c/2, hw/2
		}
	}
	return convs
}

// BenchmarkDenseNet121Convs runs every convolution of DenseNet-121 once per iteration (batch
// 1): ~95% of the model's time.
func BenchmarkDenseNet121Convs(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("n=1/threads=%d", threads), func(b *testing.B) {
			benchConvSequence(b, denseNet121(), 1, threads, rand.New(rand.NewPCG(2, 2)), nil)
		})
	}
}

// benchConvSequence times running convs one after another on random n-image inputs, each
// built by NewConv2D and then given to adjust (nil: as built); one untimed pass first packs
// any lazily packed weights. GFLOP/s count each conv's direct flops.
func benchConvSequence(b *testing.B, convs []benchConv, n, threads int, r *rand.Rand, adjust func(*Conv2D)) {
	workers := NewWorkers(threads)
	defer workers.Close()
	type job struct {
		conv    *Conv2D
		in, out Image
	}
	var jobs []job
	var flops float64
	size := 0
	for _, bc := range convs {
		conv, err := NewConv2D(bc.spec(r))
		if err != nil {
			b.Fatal(err)
		}
		if adjust != nil {
			adjust(conv)
		}
		oh, ow := conv.OutputSize(bc.hw, bc.hw)
		jobs = append(jobs, job{conv,
			Dense(randFloats(r, n*bc.cin*bc.hw*bc.hw), n, bc.cin, bc.hw, bc.hw),
			Dense(make([]float32, n*bc.cout*oh*ow), n, bc.cout, oh, ow)})
		flops += bc.flops(n)
		size = max(size, conv.ScratchSize(n, bc.hw, bc.hw, threads))
	}
	scratch := make([]float32, size)
	run := func() {
		for _, j := range jobs {
			if err := j.conv.Run(workers, j.in, j.out, scratch); err != nil {
				b.Fatal(err)
			}
		}
	}
	run()
	b.ResetTimer()
	cpu0 := convCPUTime()
	for range b.N {
		run()
	}
	reportConv(b, flops, cpu0)
}

// BenchmarkConvStride1Paths compares the two stride-1 algorithms on DenseNet's 3x3 shapes:
// packing im2col panels from the input (direct) and reading a padded copy in place (padded).
func BenchmarkConvStride1Paths(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, hw := range []int{56, 28, 14, 7} {
		bc := benchConv{"3x3", 128, 32, 3, 1, hw, false, false}
		for _, p := range []struct {
			name   string
			padded int
		}{{"direct", -1}, {"padded", 1}} {
			b.Run(fmt.Sprintf("hw=%d/%s", hw, p.name), func(b *testing.B) {
				conv, err := NewConv2D(bc.spec(r))
				if err != nil {
					b.Fatal(err)
				}
				conv.padded = p.padded
				in := Dense(randFloats(r, bc.cin*hw*hw), 1, bc.cin, hw, hw)
				out := Dense(make([]float32, bc.cout*hw*hw), 1, bc.cout, hw, hw)
				scratch := make([]float32, conv.ScratchSize(1, hw, hw, 1))
				b.ResetTimer()
				cpu0 := convCPUTime()
				for range b.N {
					if err := conv.Run(nil, in, out, scratch); err != nil {
						b.Fatal(err)
					}
				}
				reportConv(b, bc.flops(1), cpu0)
			})
		}
	}
}

// BenchmarkConvResNetAlgorithms compares the algorithms for ResNet's 3x3 stride-1 convolutions
// at batch 1 on 2 threads: Winograd F(4x4), F(2x2), and the direct convolution (padded copy or
// implicit GEMM, whichever usePadded picks), where the weights (9.4 MiB at 512 channels, 16.8
// MiB as F(2x2)'s transformed ones) no longer fit the caches and the run reads them from memory.
func BenchmarkConvResNetAlgorithms(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	workers := NewWorkers(2)
	defer workers.Close()
	for _, bc := range []benchConv{
		{"c=64,hw=56", 64, 64, 3, 1, 56, false, true},
		{"c=128,hw=28", 128, 128, 3, 1, 28, false, true},
		{"c=256,hw=14", 256, 256, 3, 1, 14, false, true},
		{"c=512,hw=7", 512, 512, 3, 1, 7, false, true},
	} {
		conv, err := NewConv2D(bc.spec(r))
		if err != nil {
			b.Fatal(err)
		}
		in := Dense(randFloats(r, bc.cin*bc.hw*bc.hw), 1, bc.cin, bc.hw, bc.hw)
		out := Dense(make([]float32, bc.cout*bc.hw*bc.hw), 1, bc.cout, bc.hw, bc.hw)
		for _, force := range []int{4, 2, -1} {
			name := map[int]string{4: "winograd-f4x4", 2: "winograd-f2x2", -1: "direct"}[force]
			b.Run(bc.name+"/"+name, func(b *testing.B) {
				conv.wino.force = force
				defer func() { conv.wino.force = 0 }()
				scratch := make([]float32, conv.ScratchSize(1, bc.hw, bc.hw, 2))
				cpu0 := convCPUTime()
				for b.Loop() {
					if err := conv.Run(workers, in, out, scratch); err != nil {
						b.Fatal(err)
					}
				}
				reportConv(b, bc.flops(1), cpu0)
			})
		}
	}
}

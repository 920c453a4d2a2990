package gemm_test

import (
	"fmt"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// BenchmarkGEMV measures single-column products (a Job with n = 1, which runs the level's
// matrix-vector kernel) at DenseNet-121's shapes: the classifier at batch 1 (a 1000x1024 Linear
// layer) and a 1x1 bottleneck convolution (128 outputs over 1024 channels) on a 1x1 image. Every
// level this machine runs is measured in the same process, and, at avx512, also the path it
// took before it had a matrix-vector kernel (avx512-nogemv: the 16-column micro-kernel).
func BenchmarkGEMV(b *testing.B) {
	type variant struct {
		name string
		code *gemm.Kernels
	}
	var vs []variant
	for _, l := range isa.Levels() {
		vs = append(vs, variant{l.String(), gemm.KernelsFor(l)})
		if l == isa.AVX512 {
			vs = append(vs, variant{"avx512-nogemv", gemm.WithoutGemv(gemm.KernelsFor(l))})
		}
	}
	for _, sh := range []struct {
		name string
		m, k int
	}{{"classifier/m=1000,k=1024", 1000, 1024}, {"conv1x1/m=128,k=1024", 128, 1024}} {
		for _, threads := range []int{1, 2} {
			for _, v := range vs {
				b.Run(fmt.Sprintf("%s/threads=%d/%s", sh.name, threads, v.name), func(b *testing.B) {
					m, k := sh.m, sh.k
					a := make([]float32, m*k)
					src := make([]float32, k)
					for i := range a {
						a[i] = float32(i%7) - 3
					}
					for i := range src {
						src[i] = float32(i%5) - 2
					}
					offs := make([]int32, k)
					for i := range offs {
						offs[i] = int32(i)
					}
					var pb planeB
					if err := pb.rows.Init(v.code, src, offs, nil, nil, false); err != nil {
						b.Fatal(err)
					}
					pa := gemm.PackA(v.code, m, k, a, k)
					c := make([]float32, m)
					scratch := make([]float32, gemm.ScratchSize(k, 1, threads))
					workers := cpu.NewWorkers(threads)
					defer workers.Close()
					var wg cpu.Group
					var j gemm.Job
					b.ResetTimer()
					cpu0 := cpuTime()
					for range b.N {
						if err := j.Init(v.code, pa, &pb, 1, c, 1, gemm.Epilogue{}, scratch, threads); err != nil {
							b.Fatal(err)
						}
						workers.Run(&j, j.Slots(), 1, &wg)
					}
					reportFlops(b, 2*float64(m*k), cpu0)
				})
			}
		}
	}
}

package gemm_test

import (
	"fmt"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
)

// planeB is B stored as K rows of n floats (the channel planes of a 1x1 convolution's input),
// packed with gemm.Rows.
type planeB struct {
	rows gemm.Rows
}

func (p *planeB) PackB(dst []float32, width, k0, k1, n0, nr int) {
	p.rows.Pack(dst, k0, k1, []gemm.Segment{{Lo: 0, Hi: nr, Base: n0}})
}

// BenchmarkGEMM measures C = A*B at the shapes of DenseNet-121's convolutions: 1x1 bottlenecks
// (m=128) at 56x56 and 7x7, the 3x3 convolution as a GEMM (m=32, k=128*9), and the classifier at
// batch 1 (m=1000, k=1024, n=1: a matrix-vector product).
func BenchmarkGEMM(b *testing.B) {
	for _, sh := range [][3]int{{1000, 1024, 1}, {128, 256, 3136}, {32, 1152, 3136}, {128, 1024, 49}, {128, 512, 196}, {32, 1152, 196}} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("m=%d,k=%d,n=%d/threads=%d", sh[0], sh[1], sh[2], threads), func(b *testing.B) {
				benchGEMM(b, sh[0], sh[1], sh[2], threads, false)
			})
		}
	}
}

// BenchmarkGEMMSmallN measures C = A*B at the 1x1 convolutions of MobileNetV2 and
// EfficientNet-B0 at batch 1 whose images are small (7x7: n = 49 = 32+17 columns at avx512,
// 14x14: n = 196 = 6x32+4), where the partial right-edge column panel is a large share of the
// work, and one 56x56 shape (n = 3136, 98 full panels) for comparison. The epilogue is that of
// an expansion convolution (bias, ReLU6 as a clamp).
func BenchmarkGEMMSmallN(b *testing.B) {
	for _, sh := range [][3]int{{960, 160, 49}, {160, 960, 49}, {1280, 320, 49}, {576, 96, 196}, {96, 576, 196}, {384, 64, 196}, {144, 24, 3136}} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("m=%d,k=%d,n=%d/threads=%d", sh[0], sh[1], sh[2], threads), func(b *testing.B) {
				benchGEMM(b, sh[0], sh[1], sh[2], threads, true)
			})
		}
	}
}

// benchGEMM times one m x k x n product on threads threads, B packed from k planes of n floats;
// the epilogue is ReLU, or with expand a bias and ReLU6 as a clamp (an expansion convolution's).
func benchGEMM(b *testing.B, m, k, n, threads int, expand bool) {
	a := make([]float32, m*k)
	src := make([]float32, k*n)
	for i := range a {
		a[i] = float32(i%7)/8 - 0.375
	}
	for i := range src {
		src[i] = float32(i%5)/4 - 0.5
	}
	ep := gemm.Epilogue{ReLU: true}
	if expand {
		bias := make([]float32, m)
		for i := range bias {
			bias[i] = float32(i%3) - 1
		}
		ep = gemm.Epilogue{Bias: bias, Clamp: true, Lo: 0, Hi: 6}
	}
	offs := make([]int32, k)
	for i := range offs {
		offs[i] = int32(i * n)
	}
	var pb planeB
	if err := pb.rows.Init(nil, src, offs, nil, nil, false); err != nil {
		b.Fatal(err)
	}
	pa := gemm.PackA(nil, m, k, a, k)
	c := make([]float32, m*n)
	scratch := make([]float32, gemm.ScratchSize(k, n, threads))
	workers := cpu.NewWorkers(threads)
	defer workers.Close()
	var wg cpu.Group
	var j gemm.Job
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		if err := j.Init(nil, pa, &pb, n, c, n, ep, scratch, threads); err != nil {
			b.Fatal(err)
		}
		workers.Run(&j, j.Slots(), 1, &wg)
	}
	reportFlops(b, 2*float64(m*k*n), cpu0)
}

//go:build unix

package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConvCM times the three products of DenseNet-BC-100's block-1 convolutions at batch
// 64 on 2 threads, reporting GFLOP per CPU-second (robust to other load on the machine).
func BenchmarkConvCM(b *testing.B) {
	N := 64
	if os.Getenv("BN_N") != "" {
		N, _ = strconv.Atoi(os.Getenv("BN_N"))
	}
	for _, tc := range []struct {
		name              string
		cin, cout, k, pad int
		pre               bool
	}{
		{"bottleneck 1x1 c=200", 200, 48, 1, 0, true},
		{"growth 3x3 c=48", 48, 12, 3, 1, true},
	} {
		cs := N * 1024
		if os.Getenv("BN_GAP") != "" {
			cs = 16 * ((N*1024+15)/16 | 1)
		}
		c, err := NewConvCM(ConvCMSpec{N: N, Cin: tc.cin, H: 32, W: 32, Cout: tc.cout, KH: tc.k, KW: tc.k, PadT: tc.pad, PadL: tc.pad, PadB: tc.pad, PadR: tc.pad,
			XStride: cs, YStride: cs})
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		x, y := randFloats(r, tc.cin*cs), make([]float32, tc.cout*cs)
		w := randFloats(r, tc.cout*tc.cin*tc.k*tc.k)
		var pre *Prologue
		if tc.pre {
			pre = &Prologue{Scale: randFloats(r, tc.cin), Shift: randFloats(r, tc.cin), ReLU: true}
		}
		workers := NewWorkers(2)
		scratch, stage := make([]float32, c.ScratchSize(2)), make([]float32, c.StagingSize())
		dx, dw := make([]float32, len(x)), make([]float32, len(w))
		flops := 2 * float64(N*1024*tc.cin*tc.cout*tc.k*tc.k)
		for _, op := range []struct {
			name string
			run  func() error
		}{
			{"forward", func() error { return c.Forward(workers, x, pre, w, nil, y, false, scratch) }},
			{"input", func() error { return c.InputGrad(workers, y, w, dx, false, scratch) }},
			{"weights", func() error { return c.WeightGrad(workers, x, pre, y, nil, dw, false, stage, scratch) }},
		} {
			b.Run(fmt.Sprintf("%s/%s", tc.name, op.name), func(b *testing.B) {
				t0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := op.run(); err != nil {
						b.Fatal(err)
					}
				}
				d := cpuTime() - t0
				b.ReportMetric(flops*float64(b.N)/d.Seconds()/1e9, "GFLOP/cpu-s")
				b.ReportMetric(float64(d.Milliseconds())/float64(b.N), "cpu-ms/op")
			})
		}
		workers.Close()
	}
}

// BenchmarkBatchNormBackward times the fused BN-ReLU backward on a DenseNet-BC-100 block-1 shape:
// 200 channels of 64 images of 32x32.
func BenchmarkBatchNormBackward(b *testing.B) {
	const C, L = 200, 64 * 32 * 32
	r := rand.New(rand.NewPCG(1, 2))
	x, dy, dx := randFloats(r, C*L), randFloats(r, C*L), make([]float32, C*L)
	g := &BNGrad{Channels: C, RowLen: L, Scale: randFloats(r, C), Shift: randFloats(r, C), Mean: make([]float64, C), InvStd: make([]float64, C),
		ReLU: true, Train: true, DGamma: make([]float64, C), DBeta: make([]float64, C)}
	for i := range g.InvStd {
		g.InvStd[i] = 1
	}
	workers := NewWorkers(2)
	defer workers.Close()
	t0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		BatchNormBackward(workers, g, x, dy, dx)
	}
	b.ReportMetric(float64((cpuTime()-t0).Nanoseconds())/float64(b.N)/float64(C*L), "cpu-ns/elem")
}

//go:build unix

package gemm

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// BenchmarkKernel measures the micro-kernel alone on L1-resident panels: the ceiling for the
// whole product.
func BenchmarkKernel(b *testing.B) {
	const kc = 256
	NR, MR := active.nr, active.mr
	a := make([]float32, kc*MR)
	bb := make([]float32, kc*NR)
	c := make([]float32, MR*NR)
	t0 := utime()
	b.ResetTimer()
	for range b.N {
		active.full(kc, &a[0], &bb[0], &c[0], NR, nil, flagCarry)
	}
	d := utime() - t0
	b.ReportMetric(float64(2*kc*MR*NR)*float64(b.N)/d.Seconds()/1e9, "GFLOP/s/core")
}

// BenchmarkGemvKernel measures each level's matrix-vector kernel alone, over the row panels of
// a packed A: the classifier's 1000x1024 (4 MB, streamed from L3 or memory) and a 1x1
// convolution's 128x1024 (512 KB, L2-resident); the ceiling of BenchmarkGEMV.
func BenchmarkGemvKernel(b *testing.B) {
	for _, sh := range [][2]int{{1000, 1024}, {128, 1024}} {
		m, k := sh[0], sh[1]
		for _, l := range isa.Levels() {
			code := KernelsFor(l)
			b.Run(fmt.Sprintf("m=%d,k=%d/%s", m, k, l), func(b *testing.B) {
				MR := code.mr
				a := make([]float32, m*k)
				for i := range a {
					a[i] = float32(i%7) - 3
				}
				x := make([]float32, k)
				for i := range x {
					x[i] = float32(i%5) - 2
				}
				pa := PackA(code, m, k, a, k)
				out := make([]float32, MR)
				panels := (m + MR - 1) / MR
				t0 := utime()
				b.ResetTimer()
				for range b.N {
					for q := range panels {
						code.gemv(k, pa.data[q*k*MR:], x, out)
					}
				}
				d := utime() - t0
				b.ReportMetric(float64(2*m*k)*float64(b.N)/d.Seconds()/1e9, "GFLOP/s/core")
			})
		}
	}
}

func BenchmarkPack(b *testing.B) {
	const k = 256
	NR := active.nr
	src := make([]float32, k*64)
	offs := make([]int32, k)
	for i := range offs {
		offs[i] = int32(i * 64)
	}
	dst := make([]float32, k*NR)
	for _, tc := range []struct {
		name string
		segs []Segment
	}{{"contig", []Segment{{0, NR, 3}}}, {"two", []Segment{{0, 5, 3}, {5, NR, 20}}}} {
		b.Run(tc.name, func(b *testing.B) {
			var r Rows
			r.Init(nil, src, offs, nil, nil, false)
			t0 := utime()
			for range b.N {
				r.Pack(dst, 0, k, tc.segs)
			}
			b.ReportMetric(float64((utime()-t0).Nanoseconds())/float64(b.N)/k, "cpu-ns/row")
		})
	}
}

func utime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano())
}

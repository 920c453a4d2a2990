//go:build unix

package gemm

import (
	"syscall"
	"testing"
	"time"
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
		active.kern[NR/active.step-1](kc, &a[0], &bb[0], &c[0], NR, nil, flagCarry)
	}
	d := utime() - t0
	b.ReportMetric(float64(2*kc*MR*NR)*float64(b.N)/d.Seconds()/1e9, "GFLOP/s/core")
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

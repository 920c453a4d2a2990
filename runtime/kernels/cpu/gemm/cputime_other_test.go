//go:build !unix

package gemm_test

import (
	"testing"
	"time"
)

func cpuTime() time.Duration { return 0 }

func reportFlops(b *testing.B, flops float64, cpu0 time.Duration) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

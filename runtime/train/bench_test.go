//go:build unix

package train

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/runtime/graph"
)

// BenchmarkTrainStep times one training step (SGD) of the CIFAR DenseNet-BC-100 (k=12) at
// batch 64 on 2 threads, in both memory modes, and reports the wall and CPU time per step (the
// CPU time says what the step costs when other processes share the machine), the peak
// activation memory and the size of the arena that holds activations, gradients and staging. DNX_TRAIN_BATCH and DNX_TRAIN_MODEL (a folder of ../shared/models) override
// the batch and the model, DNX_TRAIN_THREADS the thread count. PyTorch 1.13 takes 2.89 s per memory-efficient step on the reference
// machine.
func BenchmarkTrainStep(b *testing.B) {
	if testing.Short() {
		b.Skip("training-step benchmark skipped with -short")
	}
	batch := 64
	if s := os.Getenv("DNX_TRAIN_BATCH"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 1 {
			batch = n
		}
	}
	model := os.Getenv("DNX_TRAIN_MODEL")
	if model == "" {
		model = "densenet_bc100_k12_cifar_train"
	}
	g, err := graph.Load(filepath.Join(testenv.Shared(b, "models/"+model), "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	x, labels := randomBatch(1, batch, []int{3, 32, 32}, 10)
	for _, mode := range []struct {
		name   string
		memEff bool
	}{{"memory-efficient", true}, {"standard", false}} {
		b.Run(mode.name, func(b *testing.B) {
			opts := DefaultOptions()
			opts.MemoryEfficient = mode.memEff
			opts.Threads = 2
			if v, err := strconv.Atoi(os.Getenv("DNX_TRAIN_THREADS")); err == nil && v > 0 {
				opts.Threads = v
			}
			tr, err := New(g, opts)
			if err != nil {
				b.Fatal(err)
			}
			st, err := tr.Step(context.Background(), x, labels) // plans and allocates
			if err != nil {
				b.Fatal(err)
			}
			c0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if st, err = tr.Step(context.Background(), x, labels); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
			b.ReportMetric(float64((cpuTime()-c0).Milliseconds())/float64(b.N), "cpu-ms/step")
			b.ReportMetric(float64(st.ActivationBytes)/(1<<20), "act-MiB")
			b.ReportMetric(float64(tr.plans[len(tr.plans)-1].totalBytes)/(1<<20), "arena-MiB")
		})
	}
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package cpudev

import (
	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
)

// Training implements device.Device.
func (d *Device) Training() device.TrainingKernels { return parallel{d.workers} }

type parallel struct{ w *cpu.Workers }

type fnTask func(lo, hi int)

func (f fnTask) Do(lo, hi int) { f(lo, hi) }

func (p parallel) Parallel(n, grain int, fn func(lo, hi int)) {
	var g cpu.Group
	p.w.Run(fnTask(fn), n, grain, &g) // Run returns when every chunk is done
}

package cpudev

import "github.com/dnx-ml/dnx/runtime/device"

// Training implements device.Device: the trainer's kernels on the device's worker threads.
func (d *Device) Training() device.TrainingKernels { return TrainingOn(d.workers) }

package devices

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/device/cpudev"
)

// Config configures an opened device. The zero value uses every core.
type Config struct {
	// Threads is the number of threads a CPU device's kernels split work over; 0 means
	// GOMAXPROCS.
	Threads int
	// NoSpin makes a CPU device's idle threads block at once instead of polling for the next
	// kernel: a little slower, but the CPU time polling would take goes to the other processes
	// of a shared machine.
	NoSpin bool
}

// Open returns the device s names, ready to plan and run on; the caller closes it. A device
// dnx cannot run on (a DNX_CPU this CPU cannot obey; any CUDA device in this build) is an error
// saying why (device.Check).
func Open(s device.Spec, cfg Config) (device.Device, error) {
	if err := device.Check(s); err != nil {
		return nil, fmt.Errorf("device %s: %w", s, err)
	}
	switch s.Kind {
	case device.CPU:
		return cpudev.New(cpudev.Config{Threads: cfg.Threads, NoSpin: cfg.NoSpin}), nil
	}
	// device.Check accepts no other kind today; a new device kind is opened here.
	return nil, fmt.Errorf("device %s: %w", s, device.ErrUnknownDevice)
}

// CPU returns the CPU device (Open with device.Spec{Kind: device.CPU}).
func CPU(cfg Config) (device.Device, error) { return Open(device.Spec{Kind: device.CPU}, cfg) }

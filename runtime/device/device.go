package device

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dnx-ml/dnx/runtime/device/cuda"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// ErrUnknownDevice is wrapped by Parse's error for a name that is not a device.
var ErrUnknownDevice = errors.New("unknown device")

// Kind is a family of devices.
type Kind string

// The device kinds.
const (
	CPU  Kind = "cpu"
	CUDA Kind = "cuda"
)

// Spec is a parsed --device value: a kind and, for CUDA, the GPU's ordinal.
type Spec struct {
	Kind Kind
	// Ordinal is the N of cuda:N; 0 for cpu and for plain cuda.
	Ordinal int
}

// String formats s as Parse accepts it: "cpu", "cuda" (ordinal 0) or "cuda:N".
func (s Spec) String() string {
	if s.Kind == CUDA && s.Ordinal != 0 {
		return fmt.Sprintf("cuda:%d", s.Ordinal)
	}
	return string(s.Kind)
}

// Parse parses a --device value: "cpu", "cuda" (the first GPU) or "cuda:N" (the GPU with
// ordinal N >= 0). Any other name is an error wrapping ErrUnknownDevice.
func Parse(name string) (Spec, error) {
	switch {
	case name == string(CPU):
		return Spec{Kind: CPU}, nil
	case name == string(CUDA):
		return Spec{Kind: CUDA}, nil
	case strings.HasPrefix(name, "cuda:"):
		n := strings.TrimPrefix(name, "cuda:")
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || strings.HasPrefix(n, "+") {
			return Spec{}, fmt.Errorf("device %q: %w: the GPU ordinal %q is not an integer >= 0", name, ErrUnknownDevice, n)
		}
		return Spec{Kind: CUDA, Ordinal: i}, nil
	}
	return Spec{}, fmt.Errorf("device %q: %w: want cpu, cuda or cuda:N", name, ErrUnknownDevice)
}

// Info describes one device.
type Info struct {
	// Name is how --device names it: "cpu", "cuda" (when no GPU was found) or "cuda:N".
	Name string `json:"name"`
	// Kind is the device family.
	Kind Kind `json:"kind"`
	// Available reports whether dnx can run a model on the device now.
	Available bool `json:"available"`
	// Reason says why not when Available is false, e.g. "libcuda.so.1: cannot open shared object
	// file: No such file or directory (...)".
	Reason string `json:"reason,omitempty"`
	// Details are facts about the device. CPU: model, cores, gomaxprocs, simd, arch, and kernels
	// (the instruction-set level the kernels run at and why, "avx2 (detected)"). CUDA:
	// the GPU's name, memory, compute capability, the driver version and library, and whether
	// each CUDA library (cudart, cublas, cudnn, nvrtc) was found.
	Details map[string]string `json:"details"`
}

// NoKernelsReason is the Reason of a GPU that the driver reports: this build cannot run on it.
const NoKernelsReason = "CUDA kernels are not implemented in this build (no GPU was available to verify them)"

// List returns the CPU followed by the CUDA devices. When CUDA is unusable it returns one "cuda"
// entry whose Reason says why; when the driver reports GPUs it returns one "cuda:N" entry each.
// It loads the CUDA driver to find out, so it takes milliseconds, and never fails.
func List() []Info {
	out := []Info{cpuInfo()}
	drv, err := cuda.Open()
	if err != nil {
		return append(out, Info{Name: string(CUDA), Kind: CUDA, Reason: err.Error(), Details: map[string]string{}})
	}
	return append(out, cudaInfos(drv, cuda.ProbeLibraries())...)
}

// cudaInfos describes the driver's GPUs. Each entry is unavailable: this build has no CUDA kernels.
func cudaInfos(drv *cuda.Driver, libs []cuda.LibraryStatus) []Info {
	var out []Info
	for _, d := range drv.Devices {
		det := map[string]string{
			"name":               d.Name,
			"memory":             byteSize(d.TotalMem),
			"memory_bytes":       strconv.FormatUint(d.TotalMem, 10),
			"compute_capability": fmt.Sprintf("%d.%d", d.Major, d.Minor),
			"driver_version":     drv.VersionString(),
			"device_count":       strconv.Itoa(len(drv.Devices)),
			"libcuda":            drv.Path,
		}
		for _, l := range libs {
			if l.Err != nil {
				det[l.Library.Name] = "not found: " + l.Err.Error()
			} else {
				det[l.Library.Name] = l.Path
			}
		}
		out = append(out, Info{Name: fmt.Sprintf("cuda:%d", d.Ordinal), Kind: CUDA, Reason: NoKernelsReason, Details: det})
	}
	return out
}

// Check reports whether dnx can run on the device s. For cpu it returns nil, unless DNX_CPU
// names a kernel level that this CPU or build cannot run, or none (see package isa): that is
// reported here, before anything runs, since the kernels then ignore it. For CUDA it loads the
// driver and returns an error saying what is missing (the library, the symbol, the GPU with
// s's ordinal) or, when that GPU exists, that this build has no CUDA kernels.
func Check(s Spec) error {
	switch s.Kind {
	case CPU:
		return checkCPU(isa.Selected())
	case CUDA:
		drv, err := cuda.Open()
		if err != nil {
			return err
		}
		if s.Ordinal >= len(drv.Devices) {
			return fmt.Errorf("%w %d: the driver reports %d (cuda:0 to cuda:%d)", cuda.ErrNoDevice, s.Ordinal, len(drv.Devices), len(drv.Devices)-1)
		}
		return errors.New(NoKernelsReason)
	}
	return fmt.Errorf("device %q: %w", s.Kind, ErrUnknownDevice)
}

// byteSize formats n bytes with a binary unit: "79.2 GiB".
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

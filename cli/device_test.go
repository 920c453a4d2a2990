package cli

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/device/cuda"
	"github.com/dnx-ml/dnx/runtime/device/cuda/cudatest"
)

// skipIfCUDADriver skips tests of the GPU-less messages on a machine whose CUDA driver loads.
func skipIfCUDADriver(t *testing.T) {
	t.Helper()
	cudatest.RequireLoader(t)
	t.Setenv("DNX_LIBCUDA", "")
	drv, err := cuda.Open()
	switch {
	case err == nil:
		t.Skipf("this machine has a CUDA driver (%s)", drv.Path)
	case errors.Is(err, cuda.ErrNoDevice):
		// The driver library loads but sees no GPU (NVIDIA's user-space driver installed without
		// a GPU, as Debian's nvidia-cuda-toolkit brings): the errors then name the device, not
		// the library these tests expect.
		t.Skipf("this machine has a CUDA driver library but no GPU: %v", err)
	}
}

func TestInspectDevicesText(t *testing.T) {
	skipIfCUDADriver(t)
	out := mustSucceed(t, "inspect", "--devices")
	for _, want := range []string{"cpu  available\n", "  simd ", "  gomaxprocs ", "cuda  not available: libcuda.so.1: "} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestInspectDevicesJSON(t *testing.T) {
	skipIfCUDADriver(t)
	out := mustSucceed(t, "inspect", "--devices", "--json")
	var rep struct {
		Devices []device.Info `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if len(rep.Devices) != 2 {
		t.Fatalf("devices %+v, want cpu and cuda", rep.Devices)
	}
	c, g := rep.Devices[0], rep.Devices[1]
	if c.Name != "cpu" || c.Kind != "cpu" || !c.Available || c.Details["simd"] == "" {
		t.Errorf("cpu entry %+v", c)
	}
	if g.Name != "cuda" || g.Kind != "cuda" || g.Available || !strings.Contains(g.Reason, "libcuda") {
		t.Errorf("cuda entry %+v, want unavailable naming libcuda", g)
	}
	for _, key := range []string{`"name"`, `"kind"`, `"available"`, `"reason"`, `"details"`} {
		if !strings.Contains(out, key) {
			t.Errorf("JSON has no %s key: %s", key, out)
		}
	}
}

func TestInspectDevicesFakeGPU(t *testing.T) {
	t.Setenv("DNX_LIBCUDA", cudatest.Build(t, cudatest.Driver{Devices: 1}))
	out := mustSucceed(t, "inspect", "--devices")
	for _, want := range []string{"cuda:0  not available: " + device.NoKernelsReason, "  name ", "Fake GPU 0", "80.0 GiB", "  compute_capability  9.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestInspectDevicesUsage(t *testing.T) {
	for _, args := range [][]string{
		{"inspect", "--devices", "model.onnx"},
		{"inspect", "--devices", "--shape", "input=1,3,16,16"},
	} {
		if _, stderr, status := dnx(t, args...); status != exitUsage || !strings.Contains(stderr, "--devices") {
			t.Errorf("dnx %s: status %d, stderr %q; want a usage error about --devices", strings.Join(args, " "), status, stderr)
		}
	}
}

// TestDeviceFlag checks --device on run and bench: cuda stops with one line saying what is
// missing, never running on the CPU; an unknown device is a usage error; cpu runs as before.
func TestDeviceFlag(t *testing.T) {
	cudatest.RequireLoader(t)
	model := builtTiny(t)
	bogus := filepath.Join(t.TempDir(), "no", "libcuda.so.1")
	fake := cudatest.Build(t, cudatest.Driver{Devices: 1})
	cases := []struct {
		name   string
		env    string // DNX_LIBCUDA
		args   []string
		status int
		want   string // the whole stderr line after "dnx: ", or a prefix ending in "..."
	}{
		{"run bogus path", bogus, []string{"run", model, "--device", "cuda"}, exitError,
			"--device cuda: DNX_LIBCUDA=" + bogus + ": no such file or directory"},
		{"bench bogus path", bogus, []string{"bench", model, "--device", "cuda"}, exitError,
			"--device cuda: DNX_LIBCUDA=" + bogus + ": no such file or directory"},
		{"run fake GPU", fake, []string{"run", model, "--device", "cuda"}, exitError,
			"--device cuda: " + device.NoKernelsReason},
		{"bench fake GPU", fake, []string{"bench", "--device=cuda:0", model}, exitError,
			"--device cuda:0: " + device.NoKernelsReason},
		{"bench missing GPU", fake, []string{"bench", model, "--device", "cuda:1"}, exitError,
			"--device cuda:1: no CUDA device 1: the driver reports 1 (cuda:0 to cuda:0)"},
		{"run tpu", fake, []string{"run", model, "--device", "tpu"}, exitUsage,
			`run: --device "tpu": unknown device: want cpu, cuda or cuda:N`},
		{"bench tpu", fake, []string{"bench", model, "--device", "tpu"}, exitUsage,
			`bench: --device "tpu": unknown device: want cpu, cuda or cuda:N`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DNX_LIBCUDA", c.env)
			stdout, stderr, status := dnx(t, c.args...)
			if status != c.status || stderr != "dnx: "+c.want+"\n" || stdout != "" {
				t.Errorf("dnx %s: status %d, stdout %q, stderr %q; want status %d, no output, stderr %q",
					strings.Join(c.args, " "), status, stdout, stderr, c.status, "dnx: "+c.want+"\n")
			}
		})
	}
	t.Run("cpu", func(t *testing.T) {
		t.Setenv("DNX_LIBCUDA", bogus) // cpu never looks at CUDA
		out := mustSucceed(t, "bench", model, "--device", "cpu", "--iters", "1", "--warmup", "0")
		if !strings.Contains(out, "Latency") {
			t.Errorf("bench --device cpu printed %q", out)
		}
	})
}

// TestDeviceFlagWithoutDriver checks the default library search on a machine without CUDA:
// the one-line error names libcuda.
func TestDeviceFlagWithoutDriver(t *testing.T) {
	skipIfCUDADriver(t)
	model := builtTiny(t)
	for _, cmd := range []string{"run", "bench"} {
		_, stderr, status := dnx(t, cmd, model, "--device", "cuda")
		if status != exitError || !strings.HasPrefix(stderr, "dnx: --device cuda: libcuda.so.1: ") ||
			strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "DNX_LIBCUDA") {
			t.Errorf("%s --device cuda: status %d, stderr %q; want 1 and one line naming libcuda.so.1", cmd, status, stderr)
		}
	}
}

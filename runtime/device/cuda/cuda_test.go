package cuda_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/device/cuda"
	"github.com/dnx-ml/dnx/runtime/device/cuda/cudatest"
)

func TestLibraries(t *testing.T) {
	want := map[string]string{
		cuda.LibCUDA: "DNX_LIBCUDA", cuda.LibCUDART: "DNX_LIBCUDART", cuda.LibCUBLAS: "DNX_LIBCUBLAS",
		cuda.LibCUDNN: "DNX_LIBCUDNN", cuda.LibNVRTC: "DNX_LIBNVRTC",
	}
	libs := cuda.Libraries()
	if len(libs) != len(want) || libs[0].Name != cuda.LibCUDA {
		t.Fatalf("Libraries() = %d libraries starting with %q, want %d starting with libcuda", len(libs), libs[0].Name, len(want))
	}
	for _, l := range libs {
		if want[l.Name] != l.Env || len(l.Sonames) == 0 || l.Symbol == "" || l.What == "" {
			t.Errorf("library %+v: want env %q, sonames, a symbol and a description", l, want[l.Name])
		}
		for _, s := range l.Sonames {
			if !strings.HasPrefix(s, l.Name+".so") {
				t.Errorf("library %s: soname %q does not start with %s.so", l.Name, s, l.Name)
			}
		}
		if got, ok := cuda.LibraryNamed(l.Name); !ok || got.Env != l.Env {
			t.Errorf("LibraryNamed(%q) = %+v, %v", l.Name, got, ok)
		}
	}
	if _, ok := cuda.LibraryNamed("libfoo"); ok {
		t.Error("LibraryNamed(libfoo) found a library")
	}
}

// TestOpenWithoutDriver checks the error on a machine without a CUDA driver (the usual CI case).
func TestOpenWithoutDriver(t *testing.T) {
	t.Setenv("DNX_LIBCUDA", "")
	drv, err := cuda.Open()
	if err == nil {
		t.Skipf("this machine has a CUDA driver (%s, %d devices)", drv.Path, len(drv.Devices))
	}
	var le *cuda.LoadError
	if !errors.As(err, &le) {
		t.Skipf("the CUDA driver loads here but failed: %v", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"libcuda.so.1", "libcuda.so", "DNX_LIBCUDA"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Open() error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("Open() error spans lines: %q", msg)
	}
}

// TestOpenEnvOverride points DNX_LIBCUDA at things that are not a driver library: each error
// names the variable, the path and what is wrong.
func TestOpenEnvOverride(t *testing.T) {
	cudatest.RequireLoader(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "notalib.so")
	if err := os.WriteFile(text, []byte(strings.Repeat("this is a text file, not a shared library\n", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	textDir := filepath.Join(dir, "textdir")
	for _, d := range []string{empty, textDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(textDir, "libcuda.so.1"), []byte("not ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, value string
		want        []string
	}{
		{"missing file", filepath.Join(dir, "nope", "libcuda.so.1"), []string{"no such file"}},
		{"text file", text, []string{"ELF"}},
		{"empty dir", empty, []string{"directory has no libcuda.so.1 or libcuda.so"}},
		{"dir with a text file", textDir, []string{filepath.Join(textDir, "libcuda.so.1")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DNX_LIBCUDA", c.value)
			_, err := cuda.Open()
			var le *cuda.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Open() error %v (%T), want a *LoadError", err, err)
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range append([]string{"DNX_LIBCUDA=" + c.value}, c.want...) {
				if !containsFold(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestOpenFakeDriver(t *testing.T) {
	lib := cudatest.Build(t, cudatest.Driver{Devices: 2})
	for _, value := range []string{lib, filepath.Dir(lib)} { // the file, and its directory
		t.Setenv("DNX_LIBCUDA", value)
		drv, err := cuda.Open()
		if err != nil {
			t.Fatalf("DNX_LIBCUDA=%s: Open: %v", value, err)
		}
		if drv.Path != lib || drv.Version != 12040 || drv.VersionString() != "12.4" {
			t.Errorf("driver %s version %d (%s), want %s 12040 (12.4)", drv.Path, drv.Version, drv.VersionString(), lib)
		}
		want := []cuda.Device{
			{Ordinal: 0, Name: "Fake GPU 0", TotalMem: 80 * cudatest.GiB, Major: 9, Minor: 0},
			{Ordinal: 1, Name: "Fake GPU 1", TotalMem: 160 * cudatest.GiB, Major: 9, Minor: 0},
		}
		if len(drv.Devices) != len(want) {
			t.Fatalf("devices %+v, want %+v", drv.Devices, want)
		}
		for i := range want {
			if drv.Devices[i] != want[i] {
				t.Errorf("device %d = %+v, want %+v", i, drv.Devices[i], want[i])
			}
		}
	}
}

// TestOpenFakeDriverErrors checks each way a driver can fail after it loads.
func TestOpenFakeDriverErrors(t *testing.T) {
	cases := []struct {
		name string
		drv  cudatest.Driver
		is   error // errors.Is target, or nil
		want []string
	}{
		{"no device from cuInit", cudatest.Driver{Devices: 1, InitResult: 100}, cuda.ErrNoDevice,
			[]string{"no CUDA device", "cuInit: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"}},
		{"zero devices", cudatest.Driver{Devices: 0}, cuda.ErrNoDevice, []string{"no CUDA device", "driver 12.4", "reports 0 devices"}},
		{"stub library", cudatest.Driver{Devices: 1, InitResult: 34}, nil, []string{"stub library", "CUDA_ERROR_STUB_LIBRARY (34)", "DNX_LIBCUDA"}},
		{"cuInit fails", cudatest.Driver{Devices: 1, InitResult: 999}, nil, []string{"cuInit: CUDA_ERROR_UNKNOWN (999): unknown error"}},
		{"no error names", cudatest.Driver{Devices: 1, InitResult: 999, Omit: []string{"cuGetErrorName", "cuGetErrorString"}}, nil,
			[]string{"cuInit: error 999"}},
		{"no cuInit", cudatest.Driver{Devices: 1, Omit: []string{"cuInit"}}, cuda.ErrMissingSymbol,
			[]string{"DNX_LIBCUDA=", "missing symbol cuInit", "not the CUDA driver API"}},
		{"no cuDeviceTotalMem_v2", cudatest.Driver{Devices: 1, Omit: []string{"cuDeviceTotalMem_v2"}}, cuda.ErrMissingSymbol,
			[]string{"DNX_LIBCUDA=", "missing symbol cuDeviceTotalMem_v2", "or too old"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lib := cudatest.Build(t, c.drv)
			t.Setenv("DNX_LIBCUDA", lib)
			drv, err := cuda.Open()
			if err == nil {
				t.Fatalf("Open() = %+v, want an error", drv)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range append([]string{lib}, c.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestProbeLibraries(t *testing.T) {
	cudatest.RequireLoader(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "libcublas.so.12")
	notCUDNN := cudatest.Build(t, cudatest.Driver{Devices: 1}) // a library, but not cuDNN
	t.Setenv("DNX_LIBCUBLAS", missing)
	t.Setenv("DNX_LIBCUDNN", notCUDNN)
	t.Setenv("DNX_LIBNVRTC", dir)
	got := map[string]cuda.LibraryStatus{}
	for _, s := range cuda.ProbeLibraries() {
		got[s.Library.Name] = s
	}
	if _, ok := got[cuda.LibCUDA]; ok || len(got) != 4 {
		t.Fatalf("ProbeLibraries reports %d libraries (driver included: %v), want the 4 besides the driver", len(got), ok)
	}
	cases := []struct {
		lib  string
		is   error
		want []string
	}{
		{cuda.LibCUBLAS, nil, []string{"DNX_LIBCUBLAS=" + missing, "no such file"}},
		{cuda.LibCUDNN, cuda.ErrMissingSymbol, []string{"DNX_LIBCUDNN=" + notCUDNN, "missing symbol cudnnGetVersion"}},
		{cuda.LibNVRTC, nil, []string{"DNX_LIBNVRTC=" + dir, "directory has no libnvrtc.so.13 or libnvrtc.so.12"}},
	}
	for _, c := range cases {
		s := got[c.lib]
		if s.Err == nil {
			t.Errorf("%s: loaded %q, want an error", c.lib, s.Path)
			continue
		}
		if c.is != nil && !errors.Is(s.Err, c.is) {
			t.Errorf("%s: error %v is not %v", c.lib, s.Err, c.is)
		}
		for _, want := range c.want {
			if !containsFold(s.Err.Error(), want) {
				t.Errorf("%s: error %q does not contain %q", c.lib, s.Err, want)
			}
		}
	}
}

func TestCallErrorText(t *testing.T) {
	cases := []struct {
		err  cuda.CallError
		want string
	}{
		{cuda.CallError{Func: "cuInit", Code: 100, Name: "CUDA_ERROR_NO_DEVICE", Desc: "no CUDA-capable device is detected"},
			"cuInit: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"},
		{cuda.CallError{Func: "cuDeviceGet", Code: 101}, "cuDeviceGet: error 101"},
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

// containsFold reports whether s contains sub, ignoring case: the loader and the os package
// capitalise "No such file or directory" differently.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// TestUnsupported checks builds without a loader: Open says so instead of naming a library.
func TestUnsupported(t *testing.T) {
	if cuda.Supported() {
		t.Skip("this build loads shared libraries; see the other tests")
	}
	if _, err := cuda.Open(); !errors.Is(err, cuda.ErrUnsupported) {
		t.Errorf("Open() = %v, want ErrUnsupported", err)
	}
}

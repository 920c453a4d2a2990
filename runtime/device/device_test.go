package device_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/device/cuda"
	"github.com/dnx-ml/dnx/runtime/device/cuda/cudatest"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"golang.org/x/sys/cpu"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want device.Spec
		err  string // substring of the error; "" for success
	}{
		{"cpu", device.Spec{Kind: device.CPU}, ""},
		{"cuda", device.Spec{Kind: device.CUDA}, ""},
		{"cuda:0", device.Spec{Kind: device.CUDA}, ""},
		{"cuda:3", device.Spec{Kind: device.CUDA, Ordinal: 3}, ""},
		{"", device.Spec{}, `device "": unknown device: want cpu, cuda or cuda:N`},
		{"tpu", device.Spec{}, `device "tpu": unknown device: want cpu, cuda or cuda:N`},
		{"CPU", device.Spec{}, "want cpu, cuda or cuda:N"},
		{"gpu", device.Spec{}, "want cpu, cuda or cuda:N"},
		{"cpu:0", device.Spec{}, "want cpu, cuda or cuda:N"},
		{" cuda", device.Spec{}, "want cpu, cuda or cuda:N"},
		{"cuda:", device.Spec{}, `the GPU ordinal "" is not an integer >= 0`},
		{"cuda:-1", device.Spec{}, `the GPU ordinal "-1" is not an integer >= 0`},
		{"cuda:+1", device.Spec{}, `the GPU ordinal "+1" is not an integer >= 0`},
		{"cuda:x", device.Spec{}, `the GPU ordinal "x" is not an integer >= 0`},
		{"cuda:1:2", device.Spec{}, `the GPU ordinal "1:2" is not an integer >= 0`},
	}
	for _, c := range cases {
		got, err := device.Parse(c.in)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, device.ErrUnknownDevice) {
			t.Errorf("Parse(%q) = %+v, %v; want an ErrUnknownDevice error containing %q", c.in, got, err, c.err)
		}
	}
}

func TestSpecString(t *testing.T) {
	for _, s := range []string{"cpu", "cuda", "cuda:2"} {
		spec, err := device.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if spec.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, spec.String())
		}
	}
}

// TestListCPU checks the CPU entry: always first, available, with the SIMD features that
// golang.org/x/sys/cpu detects and the kernel level of this process.
func TestListCPU(t *testing.T) {
	infos := device.List()
	if len(infos) < 2 {
		t.Fatalf("List() = %+v, want the CPU and at least one CUDA entry", infos)
	}
	c := infos[0]
	if c.Name != "cpu" || c.Kind != device.CPU || !c.Available || c.Reason != "" {
		t.Fatalf("first entry %+v, want an available cpu", c)
	}
	for _, k := range []string{"model", "cores", "gomaxprocs", "simd", "arch", "kernels"} {
		if c.Details[k] == "" {
			t.Errorf("cpu details have no %q: %v", k, c.Details)
		}
	}
	if sel := isa.Selected(); c.Details["kernels"] != sel.String() || !strings.HasPrefix(c.Details["kernels"], sel.Level.String()+" (") {
		t.Errorf("cpu kernels %q, want the selected level %s", c.Details["kernels"], sel)
	}
	t.Logf("cpu kernels: %s", c.Details["kernels"])
	if c.Details["cores"] != strconv.Itoa(runtime.NumCPU()) || c.Details["gomaxprocs"] != strconv.Itoa(runtime.GOMAXPROCS(0)) {
		t.Errorf("cores %s gomaxprocs %s, want %d and %d", c.Details["cores"], c.Details["gomaxprocs"], runtime.NumCPU(), runtime.GOMAXPROCS(0))
	}
	simd := " " + c.Details["simd"] + " "
	for _, f := range []struct {
		name string
		has  bool
	}{{"avx2", cpu.X86.HasAVX2}, {"fma", cpu.X86.HasFMA}, {"avx512f", cpu.X86.HasAVX512F}, {"asimd", cpu.ARM64.HasASIMD}} {
		if got := strings.Contains(simd, " "+f.name+" "); got != f.has {
			t.Errorf("simd %q lists %s: %v, x/sys/cpu says %v", c.Details["simd"], f.name, got, f.has)
		}
	}
	for _, in := range infos[1:] {
		if in.Kind != device.CUDA {
			t.Errorf("entry %+v after the CPU is not CUDA", in)
		}
	}
}

// TestListWithoutCUDA checks the CUDA entry on a machine without a driver: unavailable, with a
// reason that names libcuda.
func TestListWithoutCUDA(t *testing.T) {
	cudatest.RequireLoader(t)
	t.Setenv("DNX_LIBCUDA", "")
	if drv, err := cuda.Open(); err == nil {
		t.Skipf("this machine has a CUDA driver (%s, %d devices)", drv.Path, len(drv.Devices))
	}
	infos := device.List()
	if len(infos) != 2 {
		t.Fatalf("List() = %+v, want cpu and one cuda entry", infos)
	}
	c := infos[1]
	if c.Name != "cuda" || c.Kind != device.CUDA || c.Available || !strings.Contains(c.Reason, "libcuda") {
		t.Errorf("cuda entry %+v, want unavailable with a reason naming libcuda", c)
	}
	if err := device.Check(device.Spec{Kind: device.CUDA}); err == nil || !strings.Contains(err.Error(), "libcuda") {
		t.Errorf("Check(cuda) = %v, want an error naming libcuda", err)
	}
}

// TestListEnvOverride checks that a bad DNX_LIBCUDA shows up in List and Check with its path.
func TestListEnvOverride(t *testing.T) {
	cudatest.RequireLoader(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "libcuda.so.1")
	if err := os.WriteFile(text, []byte(strings.Repeat("not a library\n", 40)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, value := range []string{filepath.Join(dir, "missing.so"), text, t.TempDir()} {
		t.Setenv("DNX_LIBCUDA", value)
		infos := device.List()
		c := infos[len(infos)-1]
		if c.Available || !strings.Contains(c.Reason, "DNX_LIBCUDA="+value) {
			t.Errorf("DNX_LIBCUDA=%s: cuda entry %+v, want unavailable naming the path", value, c)
		}
		err := device.Check(device.Spec{Kind: device.CUDA})
		if err == nil || !strings.Contains(err.Error(), "DNX_LIBCUDA="+value) {
			t.Errorf("DNX_LIBCUDA=%s: Check(cuda) = %v, want an error naming the path", value, err)
		}
	}
}

// TestListFakeGPUs uses a fake driver with two GPUs: List describes them, and Check says that
// this build has no CUDA kernels instead of running on the CPU.
func TestListFakeGPUs(t *testing.T) {
	lib := cudatest.Build(t, cudatest.Driver{Devices: 2})
	t.Setenv("DNX_LIBCUDA", lib)
	t.Setenv("DNX_LIBCUBLAS", filepath.Join(t.TempDir(), "none"))
	infos := device.List()
	if len(infos) != 3 {
		t.Fatalf("List() = %+v, want cpu, cuda:0, cuda:1", infos)
	}
	for i, in := range infos[1:] {
		want := map[string]string{
			"name":               "Fake GPU " + strconv.Itoa(i),
			"memory":             strconv.Itoa(80*(i+1)) + ".0 GiB",
			"memory_bytes":       strconv.Itoa(80 * (i + 1) * cudatest.GiB),
			"compute_capability": "9.0",
			"driver_version":     "12.4",
			"device_count":       "2",
			"libcuda":            lib,
		}
		if in.Name != "cuda:"+strconv.Itoa(i) {
			t.Errorf("entry %d name %q", i+1, in.Name)
		}
		if in.Available || in.Reason != device.NoKernelsReason {
			t.Errorf("%s: available %v reason %q, want unavailable: %q", in.Name, in.Available, in.Reason, device.NoKernelsReason)
		}
		for k, v := range want {
			if in.Details[k] != v {
				t.Errorf("%s: details[%q] = %q, want %q", in.Name, k, in.Details[k], v)
			}
		}
		if !strings.HasPrefix(in.Details["libcublas"], "not found: DNX_LIBCUBLAS=") {
			t.Errorf("%s: details[libcublas] = %q, want not found naming DNX_LIBCUBLAS", in.Name, in.Details["libcublas"])
		}
	}
	cases := []struct {
		spec device.Spec
		want string
	}{
		{device.Spec{Kind: device.CPU}, ""},
		{device.Spec{Kind: device.CUDA}, device.NoKernelsReason},
		{device.Spec{Kind: device.CUDA, Ordinal: 1}, device.NoKernelsReason},
		{device.Spec{Kind: device.CUDA, Ordinal: 2}, "no CUDA device 2: the driver reports 2 (cuda:0 to cuda:1)"},
	}
	for _, c := range cases {
		err := device.Check(c.spec)
		if (err == nil) != (c.want == "") || (err != nil && err.Error() != c.want) {
			t.Errorf("Check(%s) = %v, want %q", c.spec, err, c.want)
		}
	}
}

// Package cudatest builds fake CUDA driver libraries for tests on machines without a GPU.
//
// A fake libcuda is a small C file compiled with the system C compiler into a shared library
// that exports the driver functions package cuda calls, with results chosen by the test. It
// exercises the loader, the calling convention of every bound function and the error paths;
// it says nothing about a real driver or GPU.
package cudatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/device/cuda"
)

// Driver configures a fake libcuda.
type Driver struct {
	// Devices is what cuDeviceGetCount reports. Device i is named "Fake GPU i", has (i+1)*80 GiB
	// of memory and compute capability 9.0.
	Devices int
	// InitResult is the CUresult cuInit(0) returns (0: success, 100: CUDA_ERROR_NO_DEVICE,
	// 34: CUDA_ERROR_STUB_LIBRARY, 999: CUDA_ERROR_UNKNOWN).
	InitResult int
	// Omit lists driver functions the library does not export ("cuDeviceTotalMem_v2").
	Omit []string
}

// GiB is the unit of the fake devices' memory.
const GiB = 1 << 30

// source is the fake driver. Every function can be left out with -DOMIT_<name>.
const source = `#include <stddef.h>
#include <stdio.h>
typedef int CUresult;
#ifndef OMIT_cuInit
CUresult cuInit(unsigned int flags) { return flags != 0 ? 1 : INIT_RESULT; }
#endif
#ifndef OMIT_cuDriverGetVersion
CUresult cuDriverGetVersion(int *v) { *v = 12040; return 0; }
#endif
#ifndef OMIT_cuDeviceGetCount
CUresult cuDeviceGetCount(int *n) { *n = DEVICES; return 0; }
#endif
#ifndef OMIT_cuDeviceGet
CUresult cuDeviceGet(int *d, int ordinal) {
	if (ordinal < 0 || ordinal >= DEVICES) return 101;
	*d = ordinal;
	return 0;
}
#endif
#ifndef OMIT_cuDeviceGetName
CUresult cuDeviceGetName(char *name, int len, int dev) { snprintf(name, len, "Fake GPU %d", dev); return 0; }
#endif
#ifndef OMIT_cuDeviceTotalMem_v2
CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) { *bytes = (size_t)(dev + 1) * 80 * 1073741824ULL; return 0; }
#endif
#ifndef OMIT_cuDeviceGetAttribute
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
	if (attr == 75) { *v = 9; return 0; }
	if (attr == 76) { *v = 0; return 0; }
	return 1;
}
#endif
#ifndef OMIT_cuGetErrorName
CUresult cuGetErrorName(CUresult r, const char **s) {
	switch (r) {
	case 34: *s = "CUDA_ERROR_STUB_LIBRARY"; return 0;
	case 100: *s = "CUDA_ERROR_NO_DEVICE"; return 0;
	case 999: *s = "CUDA_ERROR_UNKNOWN"; return 0;
	}
	return 1;
}
#endif
#ifndef OMIT_cuGetErrorString
CUresult cuGetErrorString(CUresult r, const char **s) {
	switch (r) {
	case 34: *s = "CUDA driver is a stub library"; return 0;
	case 100: *s = "no CUDA-capable device is detected"; return 0;
	case 999: *s = "unknown error"; return 0;
	}
	return 1;
}
#endif
`

// Build compiles d into a shared library in a temporary directory and returns its path, named
// libcuda.so.1. It skips the test when no C compiler is installed, or when this build cannot load
// libraries (see RequireLoader).
func Build(t testing.TB, d Driver) string {
	t.Helper()
	RequireLoader(t)
	cc := ""
	for _, name := range []string{os.Getenv("CC"), "cc", "gcc", "clang"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			cc = p
			break
		}
	}
	if cc == "" {
		t.Skip("no C compiler (cc, gcc, clang) to build a fake libcuda")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "fake_cuda.c")
	if err := os.WriteFile(src, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "libcuda.so.1")
	args := []string{"-shared", "-fPIC", "-O1", "-o", lib, src,
		fmt.Sprintf("-DDEVICES=%d", d.Devices), fmt.Sprintf("-DINIT_RESULT=%d", d.InitResult)}
	for _, o := range d.Omit {
		args = append(args, "-DOMIT_"+o)
	}
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("build fake libcuda: %s %s: %v\n%s", cc, strings.Join(args, " "), err, out)
	}
	return lib
}

// RequireLoader skips the test in builds that cannot load shared libraries (cuda.Supported is
// false: not Linux, or built without the cuda tag).
func RequireLoader(t testing.TB) {
	t.Helper()
	if !cuda.Supported() {
		t.Skip("this build cannot load shared libraries (not Linux, or built without -tags cuda)")
	}
}

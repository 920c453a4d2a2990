//go:build linux && cuda

package kernels

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

// nvrtc is the part of NVRTC's C API the test calls.
type nvrtc struct {
	version     func(major, minor *int32) int32
	create      func(prog *uintptr, src, name string, numHeaders int32, headers, includeNames unsafe.Pointer) int32
	compile     func(prog uintptr, numOptions int32, options unsafe.Pointer) int32
	logSize     func(prog uintptr, size *uintptr) int32
	log         func(prog uintptr, dst unsafe.Pointer) int32
	ptxSize     func(prog uintptr, size *uintptr) int32
	ptx         func(prog uintptr, dst unsafe.Pointer) int32
	destroy     func(prog *uintptr) int32
	errorString func(result int32) string
}

// loadNVRTC opens NVRTC as package cuda would (DNX_LIBNVRTC, or the sonames, newest first; 11.2
// is the soname of CUDA 11.x's NVRTC, which Debian's toolkit has), or skips the test.
func loadNVRTC(t *testing.T) *nvrtc {
	names := []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}
	if p := os.Getenv("DNX_LIBNVRTC"); p != "" {
		names = []string{p}
	}
	var h uintptr
	var errs []string
	for _, n := range names {
		var err error
		if h, err = purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
			break
		}
		errs = append(errs, err.Error())
	}
	if h == 0 {
		t.Skipf("NVRTC not found (%s): install a CUDA toolkit or set DNX_LIBNVRTC", strings.Join(errs, "; "))
	}
	l := &nvrtc{}
	for sym, f := range map[string]any{
		"nvrtcVersion": &l.version, "nvrtcCreateProgram": &l.create, "nvrtcCompileProgram": &l.compile,
		"nvrtcGetProgramLogSize": &l.logSize, "nvrtcGetProgramLog": &l.log, "nvrtcGetPTXSize": &l.ptxSize,
		"nvrtcGetPTX": &l.ptx, "nvrtcDestroyProgram": &l.destroy, "nvrtcGetErrorString": &l.errorString,
	} {
		p, err := purego.Dlsym(h, sym)
		if err != nil {
			t.Fatalf("NVRTC has no %s: %v", sym, err)
		}
		purego.RegisterFunc(f, p)
	}
	return l
}

// compilePTX compiles src with options and returns its PTX and the compiler's log.
func (l *nvrtc) compilePTX(name, src string, options []string) (ptx, log string, err error) {
	var prog uintptr
	if r := l.create(&prog, src, name, 0, nil, nil); r != 0 {
		return "", "", fmt.Errorf("nvrtcCreateProgram: %s", l.errorString(r))
	}
	defer l.destroy(&prog)
	// options as a C array of C strings, pinned while NVRTC reads them.
	var pin runtime.Pinner
	defer pin.Unpin()
	cstr := make([]*byte, len(options))
	for i, o := range options {
		b := append([]byte(o), 0)
		pin.Pin(&b[0])
		cstr[i] = &b[0]
	}
	var opts unsafe.Pointer
	if len(cstr) > 0 {
		opts = unsafe.Pointer(&cstr[0])
	}
	r := l.compile(prog, int32(len(options)), opts)
	runtime.KeepAlive(cstr)
	var n uintptr
	if l.logSize(prog, &n) == 0 && n > 1 {
		b := make([]byte, n)
		l.log(prog, unsafe.Pointer(&b[0]))
		log = strings.TrimRight(string(b), "\x00")
	}
	if r != 0 {
		return "", log, fmt.Errorf("nvrtcCompileProgram: %s", l.errorString(r))
	}
	if l.ptxSize(prog, &n) != 0 || n == 0 {
		return "", log, fmt.Errorf("nvrtcGetPTXSize failed")
	}
	b := make([]byte, n)
	if r := l.ptx(prog, unsafe.Pointer(&b[0])); r != 0 {
		return "", log, fmt.Errorf("nvrtcGetPTX: %s", l.errorString(r))
	}
	return strings.TrimRight(string(b), "\x00"), log, nil
}

// TestNVRTCCompile compiles every source with NVRTC itself, as the CUDA device's loader will at
// run time (no headers, no include path), for compute_80 and compute_90, and checks that the
// log is empty and the PTX has exactly the listed entries. Only in -tags cuda builds on Linux;
// skipped when NVRTC is not installed.
func TestNVRTCCompile(t *testing.T) {
	l := loadNVRTC(t)
	var major, minor int32
	l.version(&major, &minor)
	t.Logf("NVRTC %d.%d", major, minor)
	entryPTX := regexp.MustCompile(`\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`)
	srcs, eps := Sources(), EntryPoints()
	for _, arch := range []string{"compute_80", "compute_90"} {
		t.Run(arch, func(t *testing.T) {
			for _, name := range Files() {
				ptx, log, err := l.compilePTX(name, srcs[name], []string{"--gpu-architecture=" + arch})
				if err != nil {
					if strings.Contains(log+err.Error(), "gpu-architecture") || strings.Contains(err.Error(), "INVALID_OPTION") {
						t.Skipf("this NVRTC does not support %s: %v %s", arch, err, log)
					}
					t.Errorf("%s for %s: %v\n%s", name, arch, err, log)
					continue
				}
				if strings.TrimSpace(log) != "" {
					t.Errorf("%s for %s: NVRTC printed diagnostics:\n%s", name, arch, log)
				}
				var got []string
				for _, m := range entryPTX.FindAllStringSubmatch(ptx, -1) {
					got = append(got, m[1])
				}
				if want := eps[name]; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
					t.Errorf("%s for %s: PTX entries %v, want %v", name, arch, got, want)
				}
				t.Logf("%s -> %s: %d entries, %d bytes of PTX", name, arch, len(got), len(ptx))
			}
		})
	}
}

package kernels

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// entryRE matches the definition of an entry point as every source writes it.
var entryRE = regexp.MustCompile(`extern "C" __global__ void ([A-Za-z_][A-Za-z0-9_]*)\(`)

// definedEntries returns the entry points src defines, in order.
func definedEntries(src string) []string {
	var names []string
	for _, m := range entryRE.FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	return names
}

// TestEntryPointsMatchSources checks the Go list of entry points against the sources both ways:
// every listed kernel is defined in its file as `extern "C" __global__ void NAME(`, in the listed
// order, and every kernel a file defines is listed; every embedded .cu file is listed; no file
// includes a header; no __global__ function is left with C++ linkage (its name would be
// mangled, and a loader asking for NAME would not find it); names are unique across files.
func TestEntryPointsMatchSources(t *testing.T) {
	srcs := Sources()
	eps := EntryPoints()
	embedded, err := fs.Glob(sources, "*.cu")
	if err != nil {
		t.Fatal(err)
	}
	if got := Files(); !slices.Equal(got, embedded) {
		t.Errorf("listed files %v, embedded .cu files %v", got, embedded)
	}
	seen := map[string]string{}
	for _, name := range Files() {
		src, want := srcs[name], eps[name]
		if len(want) == 0 {
			t.Errorf("%s: no entry points listed", name)
		}
		got := definedEntries(src)
		if !slices.Equal(got, want) {
			t.Errorf("%s defines\n\t%v\nbut EntryPoints lists\n\t%v", name, got, want)
		}
		for _, e := range want {
			if !strings.Contains(src, `extern "C" __global__ void `+e+`(`) {
				t.Errorf("%s: listed entry point %s is not defined", name, e)
			}
			if f, dup := seen[e]; dup {
				t.Errorf("entry point %s is in both %s and %s", e, f, name)
			}
			seen[e] = name
		}
		if n := strings.Count(src, "__global__"); n != len(got) {
			t.Errorf("%s has %d __global__ functions but %d extern \"C\" entry points", name, n, len(got))
		}
		for i, line := range strings.Split(src, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#include") {
				t.Errorf("%s:%d includes a header (NVRTC compiles the file alone): %s", name, i+1, line)
			}
		}
	}
}

// TestSourcesAreCopies checks that callers cannot change the package's lists.
func TestSourcesAreCopies(t *testing.T) {
	e := EntryPoints()
	e["bn.cu"][0] = "changed"
	delete(e, "pool.cu")
	if f := EntryPoints(); f["bn.cu"][0] == "changed" || f["pool.cu"] == nil {
		t.Fatal("EntryPoints returned the package's own map or slices")
	}
}

// ptxArches are the architectures the lent GPU machines have (A100-class sm_80 and the
// H100/H200's sm_90).
var ptxArches = []string{"sm_80", "sm_90"}

// TestCompileToPTX compiles every source with nvcc -ptx for sm_80 and sm_90, with warnings as
// errors, and checks that the PTX has an .entry for every listed kernel and no other. It skips
// when nvcc is not on PATH: CI does not install the CUDA toolkit. It says nothing about whether
// the kernels compute the right thing; only a GPU can tell (see README.md).
func TestCompileToPTX(t *testing.T) {
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("nvcc is not on PATH: install a CUDA toolkit (Debian: nvidia-cuda-toolkit from contrib/non-free) to compile the kernels to PTX")
	}
	ver, err := exec.Command(nvcc, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("nvcc --version: %v\n%s", err, ver)
	}
	t.Logf("%s --version:\n%s", nvcc, strings.TrimSpace(string(ver)))
	dir := t.TempDir()
	srcs, eps := Sources(), EntryPoints()
	for _, name := range Files() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(srcs[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entryPTX := regexp.MustCompile(`\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`)
	for _, arch := range ptxArches {
		t.Run(arch, func(t *testing.T) {
			for _, name := range Files() {
				ptx := filepath.Join(dir, strings.TrimSuffix(name, ".cu")+"."+arch+".ptx")
				cmd := exec.Command(nvcc, "-ptx", "-arch="+arch, "-Werror", "all-warnings", "-o", ptx, filepath.Join(dir, name))
				out, err := cmd.CombinedOutput()
				if err != nil {
					if strings.Contains(string(out), "Unsupported gpu architecture") {
						t.Skipf("this nvcc does not support %s: %s", arch, strings.TrimSpace(string(out)))
					}
					t.Errorf("%s for %s: %v\n%s", name, arch, err, out)
					continue
				}
				if s := strings.TrimSpace(string(out)); s != "" {
					t.Errorf("%s for %s: nvcc printed diagnostics:\n%s", name, arch, s)
				}
				b, err := os.ReadFile(ptx)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, m := range entryPTX.FindAllStringSubmatch(string(b), -1) {
					got = append(got, m[1])
				}
				want := eps[name]
				if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
					t.Errorf("%s for %s: PTX entries %v, want %v", name, arch, got, want)
				}
				if !strings.Contains(string(b), ".target "+arch) {
					t.Errorf("%s: PTX does not target %s", name, arch)
				}
				t.Logf("%s -> %s: %d entries, %d bytes of PTX", name, arch, len(got), len(b))
			}
		})
	}
}

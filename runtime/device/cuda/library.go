package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrMissingSymbol is wrapped by a LoadError whose library loaded but does not export a
// function dnx needs: the file is not the library it was taken for, or it is too old.
var ErrMissingSymbol = errors.New("missing symbol")

// ErrUnsupported is returned in builds that cannot load shared libraries: on systems other than
// Linux, and without the cuda build tag.
var ErrUnsupported = errors.New("this dnx build has no CUDA support (build with -tags cuda on Linux to load the CUDA libraries at run time)")

// Supported reports whether this build can load shared libraries: false on systems other than
// Linux and without the cuda build tag, where every load returns ErrUnsupported.
func Supported() bool { return canLoad }

// Library describes one CUDA shared library that dnx can load.
type Library struct {
	// Name is the library's usual file name stem, used in messages ("libcuda").
	Name string
	// What says what the library is ("the CUDA driver API").
	What string
	// Env is the environment variable whose value, when set, replaces the search: a file path,
	// or a directory searched for Sonames.
	Env string
	// Sonames are the file names searched for, in order (newest version first).
	Sonames []string
	// Symbol is a function that every supported version exports; a file without it is rejected.
	Symbol string
}

// Library names, for LibraryNamed.
const (
	LibCUDA   = "libcuda"
	LibCUDART = "libcudart"
	LibCUBLAS = "libcublas"
	LibCUDNN  = "libcudnn"
	LibNVRTC  = "libnvrtc"
)

// Libraries returns the libraries dnx looks for, the driver first. Each call returns a new slice.
func Libraries() []Library {
	return []Library{
		{Name: LibCUDA, What: "the CUDA driver API", Env: "DNX_LIBCUDA", Sonames: []string{"libcuda.so.1", "libcuda.so"}, Symbol: "cuInit"},
		{Name: LibCUDART, What: "the CUDA runtime", Env: "DNX_LIBCUDART", Sonames: []string{"libcudart.so.13", "libcudart.so.12"}, Symbol: "cudaRuntimeGetVersion"},
		{Name: LibCUBLAS, What: "cuBLAS", Env: "DNX_LIBCUBLAS", Sonames: []string{"libcublas.so.13", "libcublas.so.12"}, Symbol: "cublasCreate_v2"},
		{Name: LibCUDNN, What: "cuDNN", Env: "DNX_LIBCUDNN", Sonames: []string{"libcudnn.so.9", "libcudnn.so.8"}, Symbol: "cudnnGetVersion"},
		{Name: LibNVRTC, What: "NVRTC, the CUDA runtime compiler", Env: "DNX_LIBNVRTC", Sonames: []string{"libnvrtc.so.13", "libnvrtc.so.12"}, Symbol: "nvrtcVersion"},
	}
}

// LibraryNamed returns the library called name (LibCUDA, ...), or false.
func LibraryNamed(name string) (Library, bool) {
	for _, l := range Libraries() {
		if l.Name == name {
			return l, true
		}
	}
	return Library{}, false
}

// LoadError reports why a library could not be loaded.
type LoadError struct {
	// Library is the library looked for.
	Library Library
	// Env is "DNX_LIBCUDA=/some/path" when the environment variable chose the file, else "".
	Env string
	// Path is the candidate the error is about: a soname or a file path.
	Path string
	// Tried lists every candidate tried, Path included.
	Tried []string
	// Err is the loader's message, or wraps ErrMissingSymbol.
	Err error
}

// Error names the library, where it was looked for and what went wrong, on one line, e.g.
// "libcuda.so.1: cannot open shared object file: No such file or directory (also tried
// libcuda.so; set DNX_LIBCUDA to the library's path)".
func (e *LoadError) Error() string {
	msg := e.Err.Error()
	if e.Env != "" {
		where := e.Env
		if e.Path != "" && e.Path != envValue(e.Env) {
			where += ": " + e.Path
		}
		return where + ": " + msg
	}
	var others []string
	for _, t := range e.Tried {
		if t != e.Path {
			others = append(others, t)
		}
	}
	hint := fmt.Sprintf("set %s to the library's path", e.Library.Env)
	if len(others) > 0 {
		hint = "also tried " + strings.Join(others, ", ") + "; " + hint
	}
	return fmt.Sprintf("%s: %s (%s)", e.Path, msg, hint)
}

// Unwrap returns the underlying error.
func (e *LoadError) Unwrap() error { return e.Err }

// envValue returns the value part of "NAME=value".
func envValue(env string) string {
	_, v, _ := strings.Cut(env, "=")
	return v
}

// loaded is a library that dlopen accepted and that exports its Library.Symbol.
type loaded struct {
	lib  Library
	env  string // "NAME=value" when the environment variable chose the file
	path string
	h    uintptr
}

// attempt is one failed candidate.
type attempt struct {
	path     string
	err      error
	notFound bool // the loader found no such file; any other failure says more
}

// load finds and loads lib: the file or directory named by its environment variable when set,
// else the first of its sonames that the dynamic loader finds.
func load(lib Library) (*loaded, error) {
	if !canLoad {
		return nil, ErrUnsupported
	}
	var candidates []string
	env := ""
	if v := os.Getenv(lib.Env); v != "" {
		env = lib.Env + "=" + v
		fi, err := os.Stat(v)
		switch {
		case err == nil && fi.IsDir():
			for _, s := range lib.Sonames {
				if p := filepath.Join(v, s); fileExists(p) {
					candidates = append(candidates, p)
				}
			}
			if len(candidates) == 0 {
				return nil, &LoadError{Library: lib, Env: env, Path: v, Tried: []string{v},
					Err: fmt.Errorf("directory has no %s", strings.Join(lib.Sonames, " or "))}
			}
		case err != nil:
			return nil, &LoadError{Library: lib, Env: env, Path: v, Tried: []string{v}, Err: pathError(err)}
		default:
			candidates = []string{v}
		}
	} else {
		candidates = lib.Sonames
	}

	var fails []attempt
	for _, p := range candidates {
		l, a := loadOne(lib, p)
		if l != nil {
			l.env = env
			return l, nil
		}
		fails = append(fails, a)
	}
	best := fails[0]
	for _, a := range fails {
		if !a.notFound {
			best = a
			break
		}
	}
	return nil, &LoadError{Library: lib, Env: env, Path: best.path, Tried: candidates, Err: best.err}
}

// loadOne dlopens path and checks that it exports lib.Symbol.
func loadOne(lib Library, path string) (*loaded, attempt) {
	h, err := dlopen(path)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), path+": ")
		return nil, attempt{path: path, err: errors.New(msg), notFound: strings.Contains(msg, "No such file")}
	}
	if _, err := dlsym(h, lib.Symbol); err != nil {
		dlclose(h)
		return nil, attempt{path: path, err: fmt.Errorf("%w %s (not %s, or too old)", ErrMissingSymbol, lib.Symbol, lib.What)}
	}
	return &loaded{lib: lib, path: path, h: h}, attempt{}
}

// pathError strips the operation and path from an *os.PathError, which the caller names itself.
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// LibraryStatus is the outcome of looking for one library.
type LibraryStatus struct {
	Library Library
	// Path is the soname or file that loaded; empty when Err is set.
	Path string
	// Err says why the library is not usable; nil when it loaded.
	Err error
}

// ProbeLibraries looks for the CUDA libraries other than the driver (runtime, cuBLAS, cuDNN,
// NVRTC) and reports which load. It calls no function in them and unloads them again.
func ProbeLibraries() []LibraryStatus {
	var out []LibraryStatus
	for _, lib := range Libraries() {
		if lib.Name == LibCUDA {
			continue
		}
		l, err := load(lib)
		if err != nil {
			out = append(out, LibraryStatus{Library: lib, Err: err})
			continue
		}
		dlclose(l.h)
		out = append(out, LibraryStatus{Library: lib, Path: l.path})
	}
	return out
}

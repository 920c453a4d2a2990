//go:build linux && cuda

package cuda

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// canLoad is true: this build loads shared libraries with purego.
const canLoad = true

// dlopen loads the shared library at path (a soname or a file path) with RTLD_NOW|RTLD_LOCAL:
// every symbol is resolved now, so a library with missing dependencies fails here and not at
// its first call, and its symbols do not leak into later lookups of other libraries.
func dlopen(path string) (uintptr, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return 0, fmt.Errorf("%s", dlerror(err))
	}
	return h, nil
}

// dlsym returns the address of the symbol name in the library h, or an error if h does not
// export it.
func dlsym(h uintptr, name string) (uintptr, error) {
	p, err := purego.Dlsym(h, name)
	if err != nil {
		return 0, fmt.Errorf("%s", dlerror(err))
	}
	return p, nil
}

// dlclose drops one reference to the library h.
func dlclose(h uintptr) { _ = purego.Dlclose(h) }

// bind makes *fptr, a pointer to a Go func variable, call the C function at sym with the C
// calling convention.
func bind(fptr any, sym uintptr) { purego.RegisterFunc(fptr, sym) }

// dlerror returns the loader's message; purego's Dlerror wraps dlerror(3)'s text.
func dlerror(err error) string { return err.Error() }

//go:build !linux || !cuda

package cuda

// canLoad is false: this build has no dynamic loader, and load returns ErrUnsupported.
const canLoad = false

func dlopen(string) (uintptr, error)         { return 0, ErrUnsupported }
func dlsym(uintptr, string) (uintptr, error) { return 0, ErrUnsupported }
func dlclose(uintptr)                        {}
func bind(any, uintptr)                      {}

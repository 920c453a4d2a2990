// Package cuda finds NVIDIA's CUDA driver and libraries at run time, without cgo.
//
// The libraries are loaded with dlopen through github.com/ebitengine/purego, so a dnx binary built
// with CGO_ENABLED=0 still runs on a machine without CUDA: Open then returns an error that names
// what is missing. Nothing here allocates device memory or launches a kernel; the package only
// answers "is there a usable driver, and which GPUs does it see?".
//
// # Libraries and environment variables
//
// Each library is searched for under its usual sonames, newest first, by the dynamic loader
// (LD_LIBRARY_PATH, the ld.so cache, the default directories). An environment variable
// overrides the search; its value is the library file's path, or a directory that is searched for
// the sonames:
//
//	DNX_LIBCUDA    CUDA driver API   libcuda.so.1, libcuda.so
//	DNX_LIBCUDART  CUDA runtime      libcudart.so.13, libcudart.so.12
//	DNX_LIBCUBLAS  cuBLAS            libcublas.so.13, libcublas.so.12
//	DNX_LIBCUDNN   cuDNN             libcudnn.so.9, libcudnn.so.8
//	DNX_LIBNVRTC   NVRTC             libnvrtc.so.13, libnvrtc.so.12
//
// A library counts as found only if it also exports a symbol that every supported version has
// (cuInit for the driver, for example), so pointing a variable at the wrong library is reported
// as such instead of crashing later.
//
// # Build tag
//
// Loading shared libraries makes a CGO_ENABLED=0 binary dynamically linked against the C library,
// and dnx promises one static binary. So the loader is only in builds made with -tags cuda (on
// Linux): `CGO_ENABLED=0 go build -tags cuda ./cli/dnx`. Other builds stay static, and Open
// reports that the build has no CUDA support.
package cuda

// Package device describes the devices dnx can run on and parses the --device flag.
//
// List reports the CPU, which is always available, and probes for CUDA GPUs through package cuda,
// which loads NVIDIA's driver at run time (no cgo). Each entry says whether dnx can run a model
// on it now and, when not, why: the library that is missing, "no CUDA device", or, for a GPU that
// was found, that this build has no CUDA kernels yet.
//
// Parse accepts the --device values cpu, cuda and cuda:N; anything else is an error that lists
// them.
package device

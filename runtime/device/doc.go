// Package device describes the devices dnx can run on and parses the --device flag.
//
// List reports the CPU, with the instruction-set level its kernels run at and why (package
// isa: detected, forced lower by DNX_CPU, or plain Go in the purego build), and probes for CUDA
// GPUs through package cuda, which loads NVIDIA's driver at run time (no cgo). Each entry says
// whether dnx can run a model on it now and, when not, why: a DNX_CPU that this CPU cannot obey,
// the library that is missing, "no CUDA device", or, for a GPU that was found, that this build
// has no CUDA kernels yet.
//
// Parse accepts the --device values cpu, cuda and cuda:N; anything else is an error that lists
// them.
package device

package kernels

import (
	"embed"
	"maps"
	"slices"
)

//go:embed *.cu
var sources embed.FS

// entryPoints lists the extern "C" __global__ functions of each source file, in file order. A
// test checks it against the sources both ways.
var entryPoints = map[string][]string{
	"bn.cu": {
		"dnx_bn_affine",
		"dnx_bn_relu_prologue",
		"dnx_bn_stats",
		"dnx_bn_finalize",
		"dnx_bn_backward_reduce",
		"dnx_bn_backward_dx",
	},
	"elementwise.cu": {
		"dnx_relu_forward",
		"dnx_relu_backward",
		"dnx_binary_broadcast",
		"dnx_accumulate",
	},
	"concat.cu": {
		"dnx_copy_channels",
	},
	"pool.cu": {
		"dnx_global_avgpool_forward",
		"dnx_global_avgpool_backward",
		"dnx_avgpool2x2_forward",
		"dnx_avgpool2x2_backward",
	},
	"loss.cu": {
		"dnx_softmax_xent_forward",
		"dnx_softmax_xent_mean",
		"dnx_softmax_xent_backward",
	},
	"optim.cu": {
		"dnx_sgd_update",
		"dnx_adam_update",
		"dnx_sum_squares",
		"dnx_sum_partials",
		"dnx_scale",
	},
}

// Files returns the names of the source files ("bn.cu", ...), sorted.
func Files() []string {
	return slices.Sorted(maps.Keys(entryPoints))
}

// Sources returns the CUDA C source of every file, by file name. Each is one NVRTC program: it
// includes nothing, so it compiles with no headers and no include path. The map is the
// caller's.
func Sources() map[string]string {
	m := make(map[string]string, len(entryPoints))
	for name := range entryPoints {
		b, err := sources.ReadFile(name)
		if err != nil {
			panic("kernels: " + name + " is listed but not embedded: " + err.Error())
		}
		m[name] = string(b)
	}
	return m
}

// EntryPoints returns the kernels (extern "C" __global__ functions, unmangled) of each file, by
// file name, in the order the file defines them. The map and its slices are the caller's.
func EntryPoints() map[string][]string {
	m := make(map[string][]string, len(entryPoints))
	for name, e := range entryPoints {
		m[name] = slices.Clone(e)
	}
	return m
}

// Package kernels holds the CUDA C kernels of dnx's CUDA device: what a DenseNet inference and
// training step needs that neither cuDNN (convolutions, max pooling) nor cuBLAS (GEMM) provides.
//
// The sources are embedded (Sources) and are written to be compiled at run time with NVRTC: each
// file is self-contained, includes no CUDA header (NVRTC provides the builtins), and its entry
// points (EntryPoints) are extern "C" __global__ functions with explicit pointer and scalar
// arguments, grid-stride loops, and their formula and launch geometry in a comment above each.
// The files by family:
//
//	bn.cu          BatchNormalization: inference affine, the fused BN-ReLU prologue that stages a
//	               convolution's input, training statistics and running-statistic update,
//	               backward (dgamma, dbeta, dx)
//	elementwise.cu ReLU forward and backward, Add/Sub/Mul/Div with a broadcast operand,
//	               gradient accumulation
//	concat.cu      copying a value into a channel slice of a dense block's buffer
//	pool.cu        global average pool and 2x2 stride-2 average pool, forward and backward
//	loss.cu        softmax cross-entropy with label smoothing: per-sample loss, mean, gradient
//	optim.cu       SGD (momentum, dampening, Nesterov, weight decay), Adam, AdamW, gradient norm
//	               and clipping
//
// Status: the kernels compile to PTX for sm_80 and sm_90 with nvcc (TestCompileToPTX, when nvcc
// is on PATH) and with NVRTC (TestNVRTCCompile, in -tags cuda builds when libnvrtc loads), but
// no GPU has run them: nothing in dnx loads them yet, and their results are
// unverified. See README.md in this directory.
//
// The package imports nothing of dnx, so the CUDA device, a `go generate` step that ships PTX,
// or a test can use it alone.
package kernels

// Package cpu holds dnx's fast float32 CPU kernels: convolutions on packed weights with fused
// BN-ReLU prologues and bias-ReLU epilogues, pooling and element-wise ops on strided NCHW images,
// and the worker pool they share. Every kernel here has a reference twin in runtime/kernels/ref
// and is tested against it.
//
// # Strided images
//
// DenseNet's concatenations are free in dnx because each layer writes its new channels straight
// into a slice of the dense block's buffer. With batch N > 1 that slice is not contiguous, so
// kernels take an Image: channels of one batch item are contiguous (C*H*W floats), and batch items
// are BatchStride floats apart.
//
// # Allocation
//
// Kernels are built once per node (weights packed then) and run many times without allocating:
// scratch memory comes from the caller, and parallel loops take a Task interface value rather
// than a closure, so a steady-state Run allocates nothing.
package cpu

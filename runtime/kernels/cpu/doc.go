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
// # Threads
//
// A Pool splits each parallel loop into one chunk per thread, the caller running the first. Its
// workers and waiting callers poll briefly before they block, since a wake-up costs tens of
// microseconds on a virtual machine and a network runs hundreds of short loops back to back;
// NewBlockingPool gives a pool that never polls. Each Run takes the caller's Group, kept in the
// kernel's prepared state.
//
// # Allocation
//
// Kernels are built once per node (weights packed then) and run many times without allocating:
// scratch memory comes from the caller, and parallel loops take a Task interface value rather
// than a closure, so a steady-state Run allocates nothing.
package cpu

// Package cpu holds dnx's fast float32 CPU kernels: convolutions on packed weights with fused
// BN-ReLU prologues and bias-ReLU epilogues, pooling and element-wise ops on strided NCHW images,
// and the thread pool they share (Workers). Every kernel here has a reference twin in
// runtime/kernels/ref and is tested against it.
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
// Workers splits each parallel loop into one chunk per thread, the caller running the first. Its
// workers and waiting callers poll briefly before they block, since a wake-up costs tens of
// microseconds on a virtual machine and a network runs hundreds of short loops back to back;
// NewBlockingWorkers gives Workers that never poll. Each Run takes the caller's Group, kept in the
// kernel's prepared state.
//
// # Instruction sets
//
// Kernels with more than one implementation (the GEMM's micro-kernels and packer, the Winograd
// transforms, the pooling rows, training's elementwise kernels, the sigmoid) are reached through
// a dispatch table, one per instruction-set level of package isa: plain Go (generic), AVX2+FMA
// assembly (avx2) or, at avx512, the AVX-512 GEMM kernels, Winograd F(4x4) output transform and
// sigmoid with the avx2 code for the rest. The AVX-512 kernels of this package, and both
// sigmoid kernels, are described in the kasm IR by packages internal/winoasm and
// internal/sigasm and printed by winogen.go and siggen.go (go generate), as package gemm's are;
// the tests run the same descriptions in the kasm interpreter on every machine, and check the
// assembly against it bit for bit where the CPU has the level (conv_winograd_kasm_test.go,
// elementwise_kasm_test.go). The
// level is chosen once per process (isa.Selected: the CPU's features, DNX_CPU, the purego tag);
// each kernel object keeps the table it was built with, and every table function is called once
// per row, tile or panel, so dispatch costs one indirect call there and none per element. One
// table holds a whole level because its kernels must agree to the bit: the assembly rounds a BN
// prologue's multiply-add once, the Go code twice, and a stored activation must equal its
// recomputation. Tests run every level the machine has.
//
// # Allocation
//
// Kernels are built once per node (weights packed then) and run many times without allocating:
// scratch memory comes from the caller, and parallel loops take a Task interface value rather
// than a closure, so a steady-state Run allocates nothing.
package cpu

// Package plan compiles a graph, for concrete input shapes, into a list of steps over one float32
// arena, and runs it.
//
// # What compiling decides
//
//   - Types: every value's shape is inferred for the given input shapes. A graph whose float32
//     values do not all get static shapes cannot be planned (the caller falls back to the
//     reference executor).
//   - Kernels: each node gets a fast kernel from runtime/kernels/cpu when one fits (float32,
//     supported attributes), else its reference kernel, which reads arena-backed tensors and whose
//     outputs are copied into place.
//   - Storage: float32 values live in the arena. Reshape-like ops alias their input. Concat along
//     channels is free: the concatenation's buffer is allocated once, and the producers of its
//     inputs write straight into their channel slice (DenseNet's dense-block buffer); every
//     smaller concatenation of a prefix of those inputs is a view of the same buffer.
//   - Memory: buffers get arena offsets from their lifetimes (first write to last read), so
//     buffers whose lifetimes do not overlap share memory. The arena and scratch sizes are fixed
//     at compile time; a steady-state Run allocates nothing but its outputs.
//
// Names are resolved here, once; Run works on indices only (STYLE habit 11).
package plan

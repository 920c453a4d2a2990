// Package plan is dnx's one planning core: it decides, for concrete input shapes, everything
// about running a graph that does not depend on the device, for inference (Compile) and for
// training (runtime/train builds its program on the same stages).
//
// # Stages
//
//   - Types (Infer): every value's shape is inferred for the given input shapes, and whatever
//     can be known then is computed once with the reference kernels (constant folding): a
//     Constant, the Shape of a value of static shape, any node whose inputs are all known. The
//     trainer marks its parameters and running statistics as variable, so nothing reading them
//     is folded. A graph whose float32 values do not all get static shapes cannot be planned
//     for inference (ErrNotPlannable: the caller falls back to the reference executor).
//   - Storage: Reshape-like ops alias their input. Channel concatenations are free
//     (PlaceConcats): the concatenation's buffer is allocated once, the producers of its inputs
//     write straight into their channel slice (DenseNet's dense-block buffer), and every
//     smaller concatenation of a prefix of those inputs is a view of the same buffer. The
//     inference plan addresses a slice in NCHW with a batch stride, the trainer channel-major;
//     both describe their layout to PlaceConcats through ConcatLayout.
//   - Memory (Pack): buffers get arena offsets from their lifetimes (first write to last read),
//     so buffers whose lifetimes do not overlap share memory.
//   - Lowering: each node is lowered onto a kernel of the plan's device.Device (Device.Lower,
//     given where each operand lives), or runs its reference kernel on host copies when the
//     device has none; Steps says which and why. The plan never names a device's kernels: the
//     CPU is package cpudev, a GPU would be another implementation of the same interface.
//
// The arena and scratch sizes are fixed at compile time; a steady-state Run allocates nothing but
// its outputs. Names are resolved here, once; Run works on indices only (STYLE habit 11).
package plan

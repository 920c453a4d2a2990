package device

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// A Device runs planned graphs: it lowers each node onto one of its kernels, owns the memory a
// run works in, and runs the kernels in order on its own threads or streams. The planner
// (runtime/plan) decides everything that does not depend on the device — value types, constant
// folding, where each value lives in the run's memory (liveness packing, in-place
// concatenation) — and hands the device operands that say where a node's values are; the
// executor (runtime/exec) and the trainer (runtime/train) see only this interface.
//
// The CPU (package cpudev) is the first implementation: its memory is a host float32 arena,
// its kernels are runtime/kernels/cpu at the instruction-set level chosen once (package isa),
// its "stream" is a pool of worker threads. A GPU device implements the same methods with
// device memory, its own kernels and a stream; nodes it cannot lower run on their reference
// kernels through Memory.Read/Write copies.
//
// A Device is used by one session or trainer at a time for building plans, but the kernels it
// returns may run concurrently, each on its own Memory.
type Device interface {
	// Name is how --device names the device: "cpu", "cuda:0".
	Name() string
	// Threads is the number of threads (CPU) or the parallelism the kernels split work over;
	// some kernels pick their algorithm from it.
	Threads() int
	// Lower returns the kernel that runs node n on this device, given where its inputs and
	// outputs live (one Operand per n.Inputs / n.Outputs entry; absent ones are Absent), or nil
	// and a sentence saying why the device has none (shown by `dnx inspect --plan`); the planner
	// then runs n's reference kernel.
	Lower(n *graph.Node, in, out []Operand) (Kernel, string)
	// NewMemory allocates the memory of one run: floats elements of activations (the planned
	// arena) and scratch elements of kernel scratch.
	NewMemory(floats, scratch int) (Memory, error)
	// Training returns the kernels the trainer builds its forward and backward passes from.
	Training() TrainingKernels
	// Close releases the device's threads or streams. Kernels must not run after it.
	Close() error
}

// Lanes is implemented by a device that can run one batch as independent lanes: the batch
// is cut into as many parts as the device has threads, and each part runs the whole graph on one
// thread with a plan of its own, with no synchronisation between the lanes until the end. On the
// CPU that replaces a fork-join per kernel (hundreds per image) and the phases in which every
// thread does the same memory-bound work at once: DenseNet-121 at batch 8 on 2 threads ran
// 109-114 ms in two independent 1-thread lanes of 4 against 136-186 ms as one batch.
type Lanes interface {
	// Lane returns a device whose kernels run on the calling goroutine but choose their
	// algorithms and split their work as this device's do, so that a plan compiled on it
	// computes each batch item bit for bit as a plan compiled on this device.
	Lane() Device
	// RunLanes calls f(0), ..., f(n-1) concurrently on the device's threads (n at most
	// Threads()) and returns when all have returned.
	RunLanes(n int, f func(lane int))
}

// Placement says where an operand's data is.
type Placement uint8

const (
	// Absent: an optional input or output the node does not have.
	Absent Placement = iota
	// InMemory: a float32 value of static shape in the run's Memory, at Offset.
	InMemory
	// Constant: a value known when the plan is compiled (an initializer or a folded value).
	Constant
	// OnHost: a value whose type only the run decides (not float32, or a dynamic shape); it is
	// never in device memory, so only reference kernels read it.
	OnHost
)

// Operand says where one value of a node lives for its kernel.
type Operand struct {
	Placement Placement
	// Shape is the value's shape (InMemory, Constant).
	Shape tensor.Shape
	// Offset is the position of the value's first element, in float32 elements from the start
	// of the run's memory (InMemory).
	Offset int
	// BatchStride is the elements between consecutive batch items (InMemory). It is the item
	// size for a dense value and larger for a channel slice of a concatenation's buffer.
	BatchStride int
	// Const is the value (Constant).
	Const *tensor.Tensor
}

// Size returns the value's number of elements.
func (o Operand) Size() int { return o.Shape.Size() }

// Dense reports whether the value's elements are contiguous in memory.
func (o Operand) Dense() bool {
	if o.Placement != InMemory || len(o.Shape) == 0 || o.Shape[0] <= 1 {
		return true
	}
	return o.BatchStride*o.Shape[0] == o.Size()
}

// End returns the offset just past the value's last element (InMemory).
func (o Operand) End() int {
	if len(o.Shape) == 0 || o.Shape[0] <= 1 {
		return o.Offset + o.Size()
	}
	return o.Offset + (o.Shape[0]-1)*o.BatchStride + o.Size()/o.Shape[0]
}

// A Kernel runs one node on a device, built once when the plan is compiled (weights packed,
// algorithm chosen) and run many times without allocating.
type Kernel interface {
	// Run computes the node's outputs from its inputs, both in mem (or constants).
	Run(mem Memory) error
	// Scratch is the kernel scratch, in float32 elements, that Run needs in mem.
	Scratch() int
	// Info says how the kernel runs the node, for `dnx inspect --plan`.
	Info() KernelInfo
}

// KernelInfo describes a kernel.
type KernelInfo struct {
	// Name is the algorithm: "winograd-f4x4", "gemm-1x1", "maxpool", "bn-affine", ...
	Name string
	// Code is the instruction-set level (CPU: "avx512", "avx2", "generic") or the device code
	// that runs.
	Code string
	// Prologue is what the kernel applies to its input as it reads it ("bn-relu", "bn", "relu"),
	// Epilogue what it applies to its output ("relu"); "" for none.
	Prologue, Epilogue string
}

// Memory is the memory of one run on a device: the planned values (Operand.Offset) and the
// kernels' scratch.
type Memory interface {
	// Write copies src (dense, the operand's elements in order) into the operand's storage.
	Write(o Operand, src []float32) error
	// Read copies the operand's elements, in order, into dst (dense).
	Read(o Operand, dst []float32) error
	// Host returns the elements of a dense operand as host memory the caller may read and
	// write, when the device's memory is host memory (the CPU); ok is false otherwise, and the
	// caller copies with Read and Write.
	Host(o Operand) (data []float32, ok bool)
}

package plan

import (
	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// The kernels of steps that do no work at run time, and of the reference path. The fast
// kernels name their algorithm instead: see StepInfo.Kernel.
const (
	// KernelFolded: every input is known at compile time, so the node was computed once, by its
	// reference kernel, while compiling, and its outputs are constants.
	KernelFolded = "folded"
	// KernelAlias: a Reshape-like node (Reshape, Flatten, Squeeze, Unsqueeze, Identity, inference
	// Dropout) whose output shares its input's storage.
	KernelAlias = "alias"
	// KernelConcatInPlace: a channel concatenation whose inputs were all written straight into
	// their slices of its buffer by their producers (DenseNet's dense-block buffer).
	KernelConcatInPlace = "concat-in-place"
	// KernelConcatCopy: a channel concatenation that copies the inputs that could not be placed.
	KernelConcatCopy = "concat-copy"
	// KernelReference: the node's reference kernel (runtime/kernels/ref) on arena-backed tensors,
	// its outputs copied into place; StepInfo.Why says why no fast kernel runs it.
	KernelReference = "reference"
)

// StepInfo describes one step of a plan: the node it runs, how, and where its outputs live. It
// is what `dnx inspect --plan` prints.
type StepInfo struct {
	Node string // the node's name (may be empty: ONNX names are optional)
	Op   string // the node's operator, with its domain when not the default: "FusedConv" is dnx's
	// Kernel is KernelFolded, KernelAlias, KernelConcatInPlace (no work at run time),
	// KernelConcatCopy, KernelReference, or the fast kernel's algorithm: for convolutions (and
	// Gemm, run as a 1x1 convolution) cpu.Conv2D.Algorithm at the planned input size
	// ("gemm-1x1", "gemm-direct", "gemm-direct-padded", "implicit-gemm", "winograd-f2x2",
	// "winograd-f4x4", "depthwise"); "maxpool", "avgpool-2x2" (DenseNet's transition pool),
	// "avgpool", "global-avgpool", "relu", "bn-affine", an element-wise function ("sigmoid",
	// "silu", "clip", ...), an arithmetic one ("add", "mul", ...), or a data movement
	// ("transpose", "slice").
	Kernel string
	// Why is, for KernelReference, the reason no fast kernel runs the node; for KernelConcatCopy,
	// what is copied.
	Why string
	// Prologue is what the kernel applies to its input as it reads it: "bn-relu" (a fused
	// pre-activation BatchNormalization-ReLU), "bn" or "relu"; "" for none. Epilogue is what it
	// applies to its output: "add" (a fused residual), an activation ("relu", "clip",
	// "hardswish", "silu", ...), both ("add+relu"), or "".
	Prologue, Epilogue string
	// ISA is the instruction-set level (or device code) that runs the step
	// (device.KernelInfo.Code; on the CPU isa.Level's name: "avx512", "avx2", "generic" for
	// plain Go); "" where no device kernel runs (no work, or a reference kernel).
	ISA     string
	Outputs []StepOutput
	// MACs is the multiply-adds of a convolution or Gemm with constant weights at the planned
	// shapes (what GFLOP/s are measured against: 2 FLOPs each); 0 for other steps.
	MACs int64
}

// Fast reports whether the step runs a device kernel or no work at all.
func (s StepInfo) Fast() bool { return s.Kernel != KernelReference }

// StepOutput is one output of a step.
type StepOutput struct {
	Name  string
	Shape tensor.Shape // nil for a value whose shape only the run decides (not float32)
	// InArena says whether the value lives in the arena: float32 values of static shape do;
	// constants (folded values) and other dtypes do not.
	InArena bool
	// Offset is the arena byte offset of the value's first element, Bytes its size (4 bytes per
	// element); both 0 outside the arena. A value placed inside a concatenation's buffer with a
	// batch over 1 is strided: its items lie BatchStride bytes apart, not contiguously.
	Offset, Bytes int64
	// BatchStride is the bytes between batch items where they are not contiguous (a channel
	// slice of a concatenation's buffer with batch > 1); 0 for a dense value.
	BatchStride int64
}

// stepDesc is what a step says about itself (see StepInfo).
type stepDesc struct {
	kernel, why        string
	prologue, epilogue string
	code               string // the isa.Level's name, "" for none
}

// Steps describes every step of the plan, one per graph node, in execution order.
func (p *Plan) Steps() []StepInfo {
	out := make([]StepInfo, len(p.steps))
	for i, s := range p.steps {
		n := p.nodes[i]
		d := s.describe()
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + "." + n.OpType
		}
		info := StepInfo{Node: n.Name, Op: op, Kernel: d.kernel, Why: d.why,
			Prologue: d.prologue, Epilogue: d.epilogue, ISA: d.code}
		if len(n.Outputs) > 0 && n.Outputs[0] != nil {
			info.MACs = stepMACs(n, p.values[p.mustID(n.Outputs[0])].shape)
		}
		for _, v := range n.Outputs {
			if v == nil {
				continue
			}
			val := &p.values[p.mustID(v)]
			o := StepOutput{Name: v.Name, Shape: val.shape}
			if val.kind == inArena {
				o.InArena = true
				o.Offset, o.Bytes = 4*int64(p.base(p.mustID(v))), 4*int64(val.size)
				if !val.dense() {
					o.BatchStride = 4 * int64(val.bstride)
				}
			}
			info.Outputs = append(info.Outputs, o)
		}
		out[i] = info
	}
	return out
}

// Threads returns the threads the plan's kernels split work over (the device's), which decide
// some kernels' algorithms (cpu.Conv2D.Algorithm).
func (p *Plan) Threads() int { return p.dev.Threads() }

// Device returns the device the plan runs on.
func (p *Plan) Device() device.Device { return p.dev }

// stepMACs returns the multiply-adds of n when it is a convolution or a Gemm with constant
// weights, at the planned output shape out: each output element of a convolution reduces over
// W's C/group x kernel, each of a Gemm over B's K. 0 for other nodes.
func stepMACs(n *graph.Node, out tensor.Shape) int64 {
	if len(n.Inputs) < 2 || n.Inputs[1] == nil || !n.Inputs[1].IsConst() || len(out) == 0 {
		return 0
	}
	w := n.Inputs[1].Const.Shape
	switch n.Op.(type) {
	case *ops.Conv, *ops.FusedConv:
		if len(w) < 2 || w[0] == 0 {
			return 0
		}
		return int64(out.Size()) * int64(w.Size()/w[0])
	case *ops.Gemm:
		if len(out) != 2 || out[1] == 0 {
			return 0
		}
		return int64(out.Size()) * int64(w.Size()/out[1])
	}
	return 0
}

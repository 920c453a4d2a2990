package cpudev

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Transpose and Slice only move data: each output element is the input element at
// base + sum_d idx[d]*stride[d]. They run as one strided-copy kernel (viewCopy) whose innermost
// run of contiguous elements is copied at once: ShuffleNet's channel shuffle (Transpose of
// [N, 2, C/2, H, W] with perm [0, 2, 1, 3, 4]) and its channel split (two Slices on axis 1) copy
// H*W or C/2*H*W floats per step, where the reference kernels allocated new tensors every run.

// transposeKernel lowers a float32 Transpose of a dense value.
func transposeKernel(op *ops.Transpose, x, y device.Operand) (device.Kernel, string) {
	if !x.Dense() || !y.Dense() {
		return nil, "a strided operand (a channel slice of a concatenation with batch > 1)"
	}
	perm, err := op.Resolve(len(x.Shape))
	if err != nil {
		return nil, "perm: " + err.Error()
	}
	in := denseStrides(x.Shape)
	stride := make([]int, len(perm))
	for d, p := range perm {
		stride[d] = in[p]
	}
	return newViewCopy("transpose", x, y, 0, stride)
}

// sliceKernel lowers a float32 Slice of a dense value whose starts, ends, axes and steps are
// constants.
func sliceKernel(n *graph.Node, op *ops.Slice, in []device.Operand, y device.Operand) (device.Kernel, string) {
	x := in[0]
	if !x.Dense() || !y.Dense() {
		return nil, "a strided operand (a channel slice of a concatenation with batch > 1)"
	}
	starts, ends, axes, steps := op.Starts, op.Ends, op.Axes, []int64(nil)
	if op.FromInputs {
		var lists [4][]int64
		for i := range lists {
			if i+1 >= len(in) || in[i+1].Placement == device.Absent {
				if i < 2 {
					return nil, fmt.Sprintf("input %d is absent", i+1)
				}
				continue
			}
			if in[i+1].Placement != device.Constant {
				return nil, fmt.Sprintf("input %d (%q) is not a constant", i+1, n.Inputs[i+1].Name)
			}
			v, err := in[i+1].Const.Int64s()
			if err != nil {
				return nil, fmt.Sprintf("input %d: %v", i+1, err)
			}
			lists[i] = v
		}
		starts, ends, axes, steps = lists[0], lists[1], lists[2], lists[3]
	}
	ranges, err := ops.SliceRanges(x.Shape, starts, ends, axes, steps)
	if err != nil {
		return nil, "ranges: " + err.Error()
	}
	st := denseStrides(x.Shape)
	base := 0
	stride := make([]int, len(ranges))
	for d, r := range ranges {
		if r.Len != y.Shape[d] {
			return nil, fmt.Sprintf("axis %d keeps %d elements, the output has %d", d, r.Len, y.Shape[d])
		}
		base += r.Start * st[d]
		stride[d] = r.Step * st[d]
	}
	return newViewCopy("slice", x, y, base, stride)
}

// denseStrides returns the row-major strides of shape.
func denseStrides(s tensor.Shape) []int {
	st := make([]int, len(s))
	acc := 1
	for d := len(s) - 1; d >= 0; d-- {
		st[d] = acc
		acc *= s[d]
	}
	return st
}

// viewCopy copies a strided view of x into the dense y: y[idx] = x[base + sum idx[d]*stride[d]].
// Dims are merged where the view is contiguous across them, so the inner loop is one copy of
// run elements.
type viewCopy struct {
	name   string
	x, y   device.Operand
	base   int
	outer  []int // sizes of the dims iterated one by one
	stride []int // their strides in x
	run    int   // contiguous elements copied at once
}

func newViewCopy(name string, x, y device.Operand, base int, stride []int) (device.Kernel, string) {
	if len(stride) != len(y.Shape) {
		return nil, fmt.Sprintf("%d strides for a %d-D output", len(stride), len(y.Shape))
	}
	// Drop dims of size 1, then merge each dim into the next when it steps over it exactly.
	var dims, strides []int
	for d, n := range y.Shape {
		if n != 1 {
			dims, strides = append(dims, n), append(strides, stride[d])
		}
	}
	for d := len(dims) - 2; d >= 0; d-- {
		if strides[d] == strides[d+1]*dims[d+1] {
			dims[d] *= dims[d+1]
			strides[d] = strides[d+1]
			dims, strides = append(dims[:d+1], dims[d+2:]...), append(strides[:d+1], strides[d+2:]...)
		}
	}
	k := &viewCopy{name: name, x: x, y: y, base: base, run: 1}
	if n := len(dims); n > 0 && strides[n-1] == 1 {
		k.run = dims[n-1]
		dims, strides = dims[:n-1], strides[:n-1]
	}
	k.outer, k.stride = dims, strides
	// Every source element must lie inside x (the planner's shapes guarantee it; check once).
	last := base
	for d, n := range k.outer {
		last += (n - 1) * max(k.stride[d], 0)
	}
	if base < 0 || last+k.run > x.Size() {
		return nil, "the view reaches outside its input"
	}
	for d, n := range k.outer {
		if k.stride[d] < 0 && base+(n-1)*k.stride[d] < 0 {
			return nil, "the view reaches outside its input"
		}
	}
	return k, ""
}

func (k *viewCopy) Info() device.KernelInfo {
	return device.KernelInfo{Name: k.name, Code: "generic"}
}

func (k *viewCopy) Scratch() int { return 0 }

func (k *viewCopy) Run(mem device.Memory) error {
	m := of(mem)
	src := m.arena[k.x.Offset : k.x.Offset+k.x.Size()]
	dst := m.arena[k.y.Offset : k.y.Offset+k.y.Size()]
	var idx [8]int
	if len(k.outer) > len(idx) {
		return fmt.Errorf("cpudev: %s of %d strided dims", k.name, len(k.outer))
	}
	off, o := k.base, 0
	for o < len(dst) {
		if k.run == 1 {
			dst[o] = src[off]
		} else {
			copy(dst[o:o+k.run], src[off:off+k.run])
		}
		o += k.run
		// Odometer over the outer dims, innermost last.
		d := len(k.outer) - 1
		for ; d >= 0; d-- {
			idx[d]++
			off += k.stride[d]
			if idx[d] < k.outer[d] {
				break
			}
			off -= idx[d] * k.stride[d]
			idx[d] = 0
		}
		if d < 0 {
			break
		}
	}
	return nil
}

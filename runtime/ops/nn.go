package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// nnSchemas returns Conv, BatchNormalization, the pooling operators and Pad.
//
// A Schema is listed at every version where the ONNX spec changed the operator, including
// type-only changes, so that Lookup reports the real "since" version; the decoders read n.Opset
// where attributes differ between versions.
func nnSchemas() []Schema {
	var s []Schema
	add := func(op string, decode func(*Node) (Op, error), versions ...int) {
		for _, v := range versions {
			s = append(s, Schema{OpType: op, Since: v, Decode: decode})
		}
	}
	add("Conv", decodeConv, 1, 11, 22)
	add("BatchNormalization", decodeBatchNormalization, 1, 6, 7, 9, 14, 15)
	add("AveragePool", decodeAveragePool, 1, 7, 10, 11, 19, 22)
	add("MaxPool", decodeMaxPool, 1, 8, 10, 11, 12, 22)
	add("GlobalAveragePool", decodeGlobalAveragePool, 1, 22)
	add("GlobalMaxPool", decodeGlobalMaxPool, 1, 22)
	add("Pad", decodePad, 1, 2, 11, 13, 18, 19, 21, 23, 24, 25)
	return s
}

// AutoPad is the auto_pad attribute of Conv and the pooling operators.
type AutoPad string

// The auto_pad values. SAME_UPPER and SAME_LOWER pad so that output = ceil(input / stride), putting
// the odd extra pad at the end (UPPER) or the beginning (LOWER); VALID pads nothing.
const (
	AutoPadNotSet    AutoPad = "NOTSET"
	AutoPadSameUpper AutoPad = "SAME_UPPER"
	AutoPadSameLower AutoPad = "SAME_LOWER"
	AutoPadValid     AutoPad = "VALID"
)

// maxWindowAttr bounds every kernel, stride, dilation and pad value so that the window arithmetic
// ((k-1)*d + pads, out*stride) cannot overflow an int; real models are many orders of magnitude
// below it.
const maxWindowAttr = 1 << 30

// Window holds the sliding-window attributes that Conv and the pooling operators share. Slices
// have one entry per spatial dim (Pads two: all begins, then all ends); a nil slice means the
// default (stride 1, dilation 1, pad 0). Kernel is nil for a Conv without kernel_shape, whose
// kernel comes from W.
type Window struct {
	Kernel    []int
	Strides   []int
	Dilations []int
	Pads      []int
	AutoPad   AutoPad
	// CeilMode rounds the output size up instead of down (pooling from opset 10). A window that
	// would start in the end padding is still dropped, as in PyTorch and the ONNX reference.
	CeilMode bool
}

// Spatial returns the number of spatial dims the attributes fix, or -1 when no attribute does
// (a Conv with only group and auto_pad).
func (w *Window) Spatial() int {
	switch {
	case w.Kernel != nil:
		return len(w.Kernel)
	case w.Strides != nil:
		return len(w.Strides)
	case w.Dilations != nil:
		return len(w.Dilations)
	case w.Pads != nil:
		return len(w.Pads) / 2
	}
	return -1
}

// Stride returns the stride of spatial dim i.
func (w *Window) Stride(i int) int {
	if w.Strides == nil {
		return 1
	}
	return w.Strides[i]
}

// Dilation returns the dilation of spatial dim i.
func (w *Window) Dilation(i int) int {
	if w.Dilations == nil {
		return 1
	}
	return w.Dilations[i]
}

// PadBegin and PadEnd return the explicit pads of spatial dim i of an n-dim window (zero when
// auto_pad is set: those pads come from Resolve).
func (w *Window) PadBegin(i int) int {
	if w.Pads == nil || w.AutoPad != AutoPadNotSet {
		return 0
	}
	return w.Pads[i]
}

// PadEnd: see PadBegin.
func (w *Window) PadEnd(i int) int {
	if w.Pads == nil || w.AutoPad != AutoPadNotSet {
		return 0
	}
	return w.Pads[len(w.Pads)/2+i]
}

// Geometry is a Window resolved against concrete spatial input sizes: every slice has one entry
// per spatial dim and the pads are the effective ones (computed for SAME_*, zero for VALID).
type Geometry struct {
	In, Out, Kernel, Stride, Dilation, PadBegin, PadEnd []int
}

// Resolve computes the output sizes and effective pads for spatial input sizes in and kernel
// sizes kernel (w.Kernel when nil). Per spatial dim, with ek = (k-1)*d + 1 the dilated extent:
//
//	NOTSET:  out = floor((in + pb + pe - ek) / s) + 1, or with CeilMode ceil(...) + 1, minus 1
//	         when that last window would start at or after in + pb (entirely in the end padding)
//	VALID:   out = floor((in - ek) / s) + 1, no padding
//	SAME_*:  out = ceil(in / s); total = max(0, (out-1)*s + ek - in); UPPER puts floor(total/2)
//	         at the beginning, LOWER puts ceil(total/2) there.
//
// It reports ErrShape when the padded input is smaller than the dilated kernel.
func (w *Window) Resolve(in, kernel []int) (*Geometry, error) {
	if kernel == nil {
		kernel = w.Kernel
	}
	n := len(in)
	if len(kernel) != n {
		return nil, fmt.Errorf("%w: kernel has %d spatial dims, input has %d", ErrShape, len(kernel), n)
	}
	if sp := w.Spatial(); sp >= 0 && sp != n {
		return nil, fmt.Errorf("%w: attributes describe %d spatial dims, input has %d", ErrShape, sp, n)
	}
	g := &Geometry{
		In: append([]int(nil), in...), Out: make([]int, n), Kernel: append([]int(nil), kernel...),
		Stride: make([]int, n), Dilation: make([]int, n), PadBegin: make([]int, n), PadEnd: make([]int, n),
	}
	for i := 0; i < n; i++ {
		if kernel[i] < 1 || kernel[i] > maxWindowAttr {
			return nil, fmt.Errorf("%w: kernel size %d in spatial dim %d", ErrShape, kernel[i], i)
		}
		g.Stride[i], g.Dilation[i] = w.Stride(i), w.Dilation(i)
		out, pb, pe, err := nnWindowDim(in[i], kernel[i], g.Stride[i], g.Dilation[i], w.PadBegin(i), w.PadEnd(i), w.AutoPad, w.CeilMode)
		if err != nil {
			return nil, fmt.Errorf("spatial dim %d: %w", i, err)
		}
		g.Out[i], g.PadBegin[i], g.PadEnd[i] = out, pb, pe
	}
	return g, nil
}

// nnWindowDim applies Resolve's formulas to one spatial dim.
func nnWindowDim(in, k, s, d, pb, pe int, ap AutoPad, ceil bool) (out, padBegin, padEnd int, err error) {
	if in < 0 {
		return 0, 0, 0, fmt.Errorf("%w: negative input size %d", ErrShape, in)
	}
	ek := (k-1)*d + 1
	switch ap {
	case AutoPadSameUpper, AutoPadSameLower:
		out = (in + s - 1) / s
		total := max(0, (out-1)*s+ek-in)
		if ap == AutoPadSameUpper {
			return out, total / 2, total - total/2, nil
		}
		return out, total - total/2, total / 2, nil
	case AutoPadValid:
		pb, pe = 0, 0
	}
	span := in + pb + pe - ek
	if span < 0 {
		return 0, 0, 0, fmt.Errorf("%w: input size %d padded by %d+%d is smaller than the dilated kernel extent %d",
			ErrShape, in, pb, pe, ek)
	}
	if ceil && ap != AutoPadValid {
		out = (span+s-1)/s + 1
		if (out-1)*s >= in+pb {
			out-- // the last window would start in the end padding
		}
	} else {
		out = span/s + 1
	}
	return out, pb, pe, nil
}

// outDims infers the spatial output dims from spatial input dims; kernel[i] < 0 marks a kernel
// size that is not known yet. A known input gives a known output; an unknown or symbolic input
// keeps its dim when the window provably preserves the size (stride 1 with SAME_*, or stride 1
// with pads summing to ek-1) and gives Unknown otherwise.
func (w *Window) outDims(in []Dim, kernel []int) ([]Dim, error) {
	out := make([]Dim, len(in))
	for i, d := range in {
		k := kernel[i]
		if k < 0 {
			out[i] = Unknown()
			continue
		}
		s, dl := w.Stride(i), w.Dilation(i)
		if d.IsKnown() {
			o, _, _, err := nnWindowDim(int(d.Value), k, s, dl, w.PadBegin(i), w.PadEnd(i), w.AutoPad, w.CeilMode)
			if err != nil {
				return nil, fmt.Errorf("spatial dim %d: %w", i, err)
			}
			out[i] = Known(int64(o))
			continue
		}
		ek := (k-1)*dl + 1
		switch {
		case s == 1 && (w.AutoPad == AutoPadSameUpper || w.AutoPad == AutoPadSameLower):
			out[i] = d
		case s == 1 && w.AutoPad == AutoPadNotSet && w.PadBegin(i)+w.PadEnd(i) == ek-1:
			out[i] = d
		case s == 1 && w.AutoPad == AutoPadValid && ek == 1:
			out[i] = d
		default:
			out[i] = Unknown()
		}
	}
	return out, nil
}

// nnWindowAttrs decodes kernel_shape, strides, dilations, pads, auto_pad and ceil_mode. The caller
// says whether kernel_shape is required and from which opset ceil_mode and dilations exist (0:
// never); an attribute the node's opset does not define is an ErrAttr error, so that a model
// relying on it is not silently run with other semantics.
func nnWindowAttrs(n *Node, kernelRequired bool, ceilSince, dilationsSince int) (Window, error) {
	var w Window
	var err error
	if kernelRequired && !n.Attrs.Has("kernel_shape") {
		return w, fmt.Errorf("%w: kernel_shape is required", ErrAttr)
	}
	if w.Kernel, err = nnIntsAttr(n, "kernel_shape", 1); err != nil {
		return w, err
	}
	if n.Attrs.Has("kernel_shape") && w.Kernel == nil {
		return w, fmt.Errorf("%w: kernel_shape is empty", ErrAttr)
	}
	if w.Strides, err = nnIntsAttr(n, "strides", 1); err != nil {
		return w, err
	}
	if n.Attrs.Has("dilations") && (dilationsSince == 0 || n.Opset < dilationsSince) {
		return w, fmt.Errorf("%w: %s has no dilations attribute before opset %d (model imports opset %d)",
			ErrAttr, n.OpType, dilationsSince, n.Opset)
	}
	if w.Dilations, err = nnIntsAttr(n, "dilations", 1); err != nil {
		return w, err
	}
	if w.Pads, err = nnIntsAttr(n, "pads", 0); err != nil {
		return w, err
	}
	ap, err := n.Attrs.String("auto_pad", string(AutoPadNotSet))
	if err != nil {
		return w, err
	}
	switch AutoPad(ap) {
	case "", AutoPadNotSet:
		w.AutoPad = AutoPadNotSet // some old exporters write an empty string
	case AutoPadSameUpper, AutoPadSameLower, AutoPadValid:
		w.AutoPad = AutoPad(ap)
	default:
		return w, fmt.Errorf("%w: auto_pad %q is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ErrAttr, ap)
	}
	if n.Attrs.Has("ceil_mode") && (ceilSince == 0 || n.Opset < ceilSince) {
		return w, fmt.Errorf("%w: %s has no ceil_mode attribute before opset %d (model imports opset %d)",
			ErrAttr, n.OpType, ceilSince, n.Opset)
	}
	if w.CeilMode, err = nnBoolAttr(n, "ceil_mode"); err != nil {
		return w, err
	}
	// Every list present must describe the same number of spatial dims.
	sp := w.Spatial()
	check := func(name string, v []int, per int) error {
		if v != nil && len(v) != per*sp {
			return fmt.Errorf("%w: %s has %d values, want %d (%d spatial dims)", ErrAttr, name, len(v), per*sp, sp)
		}
		return nil
	}
	if w.Pads != nil && len(w.Pads)%2 != 0 {
		return w, fmt.Errorf("%w: pads has an odd number of values (%d)", ErrAttr, len(w.Pads))
	}
	for _, c := range []struct {
		name string
		v    []int
		per  int
	}{{"kernel_shape", w.Kernel, 1}, {"strides", w.Strides, 1}, {"dilations", w.Dilations, 1}, {"pads", w.Pads, 2}} {
		if err := check(c.name, c.v, c.per); err != nil {
			return w, err
		}
	}
	if sp == 0 {
		return w, fmt.Errorf("%w: the window has no spatial dims", ErrAttr)
	}
	return w, nil
}

// nnIntsAttr returns an ints attribute as []int (nil when absent or empty, which some exporters
// write for "default"), checking each value is in [lo, maxWindowAttr].
func nnIntsAttr(n *Node, name string, lo int64) ([]int, error) {
	v, err := n.Attrs.Ints(name, nil)
	if err != nil || len(v) == 0 {
		return nil, err
	}
	out := make([]int, len(v))
	for i, x := range v {
		if x < lo || x > maxWindowAttr {
			return nil, fmt.Errorf("%w: %s[%d] = %d, want %d to %d", ErrAttr, name, i, x, lo, maxWindowAttr)
		}
		out[i] = int(x)
	}
	return out, nil
}

// nnBoolAttr returns an int attribute that must be 0 or 1 (absent: false).
func nnBoolAttr(n *Node, name string) (bool, error) {
	v, err := n.Attrs.Int(name, 0)
	if err != nil {
		return false, err
	}
	if v != 0 && v != 1 {
		return false, fmt.Errorf("%w: %s = %d, want 0 or 1", ErrAttr, name, v)
	}
	return v == 1, nil
}

// nnArg returns in[i], or nil when the input is absent.
func nnArg(in []*Arg, i int) *Arg {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// nnSameDType reports an ErrShape error when two inputs have different known element types.
func nnSameDType(op string, a, b *Arg, an, bn string) error {
	if a == nil || b == nil || a.Type.DType == tensor.Undefined || b.Type.DType == tensor.Undefined {
		return nil
	}
	if a.Type.DType != b.Type.DType {
		return fmt.Errorf("%w: %s %s is %s but %s is %s", ErrShape, op, an, a.Type.DType, bn, b.Type.DType)
	}
	return nil
}

// nnCheckVector checks that a per-channel input (BatchNormalization's scale, Conv's bias) has
// rank 1 and, when both are known, length want.
func nnCheckVector(op, name string, a *Arg, want Dim) error {
	if a == nil || a.Type.Unranked {
		return nil
	}
	if len(a.Type.Shape) != 1 {
		return fmt.Errorf("%w: %s %s must have rank 1, got %s", ErrShape, op, name, a.Type)
	}
	if d := a.Type.Shape[0]; d.IsKnown() && want.IsKnown() && d.Value != want.Value {
		return fmt.Errorf("%w: %s %s has %d elements, want %d", ErrShape, op, name, d.Value, want.Value)
	}
	return nil
}

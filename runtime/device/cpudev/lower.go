package cpudev

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Lower implements device.Device: the runtime/kernels/cpu kernel for n, or nil and why not (the
// node then runs on its reference kernel). Every kernel here works on float32 values of static
// shape in the arena; anything unusual (other dtypes, optional outputs, 1-D or 3-D pooling)
// stays on the reference path. The reason is what `dnx inspect --plan` shows for a reference
// step: each nil return says why.
func (d *Device) Lower(n *graph.Node, in, out []device.Operand) (device.Kernel, string) {
	if dom := ops.NormalizeDomain(n.Domain); dom != "" && dom != ops.DomainDNX {
		return nil, fmt.Sprintf("domain %q has no fast kernels", n.Domain)
	}
	for k, o := range in {
		if o.Placement == device.OnHost {
			return nil, fmt.Sprintf("input %d (%q) is not a float32 value of static shape", k, n.Inputs[k].Name)
		}
	}
	for k, o := range out {
		if o.Placement != device.InMemory && o.Placement != device.Absent {
			return nil, fmt.Sprintf("output %d (%q) is not a float32 value of static shape", k, n.Outputs[k].Name)
		}
	}
	if a, ok := n.Op.(*ops.Arith); ok && len(out) == 1 && len(in) == 2 {
		return d.arithKernel(n, a, in, out[0])
	}
	if c, ok := n.Op.(*ops.Concat); ok {
		return concatKernel(c, in, out)
	}
	switch {
	case len(out) != 1:
		return nil, fmt.Sprintf("%d outputs (the fast kernels write one)", len(out))
	case len(in) == 0 || in[0].Placement != device.InMemory:
		return nil, "input 0 is not an activation (a constant or absent)"
	case out[0].Placement != device.InMemory:
		return nil, "the output is absent"
	}
	x, y := in[0], out[0]
	xs := x.Shape
	not4D := fmt.Sprintf("input is %d-D (the fast pooling kernels are 2-D: NCHW)", len(xs))
	switch op := n.Op.(type) {
	case *ops.Conv:
		return d.convKernel(n, x, y, device.Operand{}, op, nil)
	case *ops.FusedConv:
		var z device.Operand
		if op.Residual {
			if len(in) < 4 || in[3].Placement != device.InMemory {
				return nil, "the residual (input 3) is not an activation in memory"
			}
			z = in[3]
		}
		return d.convKernel(n, x, y, z, &op.Conv, op)
	case *ops.Gemm:
		return d.linearKernel(n, x, y, op)
	case *ops.Transpose:
		return transposeKernel(op, x, y)
	case *ops.Slice:
		return sliceKernel(n, op, in, y)
	case *ops.MaxPool:
		switch {
		case len(xs) != 4:
			return nil, not4D
		case op.StorageOrder != 0:
			return nil, "storage_order 1 (column-major indices)"
		}
		return d.poolKernel(x, y, &op.Window, true, false, nil)
	case *ops.AveragePool:
		if len(xs) != 4 {
			return nil, not4D
		}
		return d.poolKernel(x, y, &op.Window, false, op.CountIncludePad, nil)
	case *ops.FusedAveragePool:
		switch {
		case len(xs) != 4:
			return nil, not4D
		case op.PreScale != nil && len(op.PreScale) != xs[1]:
			return nil, fmt.Sprintf("prologue has %d scales for %d channels", len(op.PreScale), xs[1])
		}
		return d.poolKernel(x, y, &op.Pool.Window, false, op.Pool.CountIncludePad, op)
	case *ops.GlobalAveragePool:
		if len(xs) != 4 {
			return nil, not4D
		}
		pool := &cpu.GlobalPool{}
		return &imageKernel{d: d, x: x, y: y, name: "global-avgpool", code: isa.Generic, f: pool.Run}, ""
	case *ops.ReduceMean:
		if why := spatialMean(n, op, xs); why != "" {
			return nil, why
		}
		pool := &cpu.GlobalPool{}
		return &imageKernel{d: d, x: x, y: y, name: "global-avgpool", code: isa.Generic, f: pool.Run}, ""
	case *ops.Sigmoid:
		return d.unaryKernel(x, y, "sigmoid", &cpu.Unary{Func: cpu.FuncSigmoid})
	case *ops.SiLU:
		return d.unaryKernel(x, y, "silu", &cpu.Unary{Func: cpu.FuncSiLU})
	case *ops.LeakyRelu:
		return d.unaryKernel(x, y, "leaky-relu", &cpu.Unary{Func: cpu.FuncLeakyRelu, Alpha: op.Alpha})
	case *ops.HardSigmoid:
		return d.unaryKernel(x, y, "hard-sigmoid", &cpu.Unary{Func: cpu.FuncHardSigmoid, Alpha: op.Alpha, Beta: op.Beta})
	case *ops.HardSwish:
		return d.unaryKernel(x, y, "hard-swish", &cpu.Unary{Func: cpu.FuncHardSwish})
	case *ops.Clip:
		lo, hi, ok := clipBounds(n, op)
		if !ok {
			return nil, "bounds are not constant float32 scalars"
		}
		return d.unaryKernel(x, y, "clip", &cpu.Unary{Func: cpu.FuncClip, Lo: lo, Hi: hi})
	case *ops.Relu:
		if len(xs) < 1 {
			return nil, "scalar input"
		}
		return &imageKernel{d: d, x: x, y: y, name: "relu", code: isa.Generic, f: func(_ *cpu.Workers, in, out cpu.Image) error {
			cpu.Relu(in, out)
			return nil
		}}, ""
	case *ops.BatchNormalization:
		switch {
		case op.Training:
			return nil, "training mode (batch statistics)"
		case len(xs) < 2:
			return nil, fmt.Sprintf("input is %d-D (no channel axis)", len(xs))
		}
		scale, shift, ok := bnAffine(n, xs[1], float64(op.Epsilon))
		if !ok {
			return nil, "parameters are not constant float32 vectors of one value per channel"
		}
		return &imageKernel{d: d, x: x, y: y, name: "bn-affine", code: isa.Generic, f: func(_ *cpu.Workers, in, out cpu.Image) error {
			return cpu.Affine(in, out, scale, shift, false)
		}}, ""
	}
	return nil, "no fast kernel for " + n.OpType
}

// bnAffine folds constant BatchNormalization parameters into a per-channel scale and shift:
// scale = γ/sqrt(var+ε), shift = β - mean*scale.
func bnAffine(n *graph.Node, channels int, eps float64) (scale, shift []float32, ok bool) {
	if len(n.Inputs) < 5 {
		return nil, nil, false
	}
	var params [4][]float32
	for i := range params {
		v := n.Inputs[i+1]
		if v == nil || !v.IsConst() || v.Const.DType != tensor.Float32 || v.Const.Len() != channels {
			return nil, nil, false
		}
		params[i] = tensor.Data[float32](v.Const)
	}
	gamma, beta, mean, variance := params[0], params[1], params[2], params[3]
	scale, shift = make([]float32, channels), make([]float32, channels)
	for c := range scale {
		s := float64(gamma[c]) / math.Sqrt(float64(variance[c])+eps)
		scale[c] = float32(s)
		shift[c] = float32(float64(beta[c]) - float64(mean[c])*s)
	}
	return scale, shift, true
}

// poolKernel builds a 2-D pooling kernel from the resolved window geometry, with the prologue
// of fused (nil for none).
func (d *Device) poolKernel(x, y device.Operand, w *ops.Window, isMax, countPad bool, fused *ops.FusedAveragePool) (device.Kernel, string) {
	xs := x.Shape
	geo, err := w.PoolShapes("pool", xs)
	if err != nil {
		return nil, "window: " + err.Error()
	}
	if len(geo.Out) != 2 {
		return nil, fmt.Sprintf("%d-D window (the fast kernels are 2-D)", len(geo.Out))
	}
	// The fast kernels read padded rows as wide as the windows reach, tap by tap; the reference
	// kernel clamps each window to the image. A window wider or taller than the image itself, or
	// a padding at least as large as the window (taps that only ever read padding), is not a CNN's
	// pooling but a model built to make those rows and tap loops huge: it runs on the reference
	// kernel, whose work and memory stay bounded by the image.
	for a := range 2 {
		extent := (geo.Kernel[a]-1)*geo.Dilation[a] + 1
		if extent > xs[2+a] || geo.PadBegin[a] >= extent || geo.PadEnd[a] >= extent {
			return nil, "window wider than the image, or padding at least as wide as the window"
		}
	}
	k := &cpu.Pool2D{
		Win: cpu.Window2D{KH: geo.Kernel[0], KW: geo.Kernel[1], StrideH: geo.Stride[0], StrideW: geo.Stride[1],
			DilationH: geo.Dilation[0], DilationW: geo.Dilation[1], PadT: geo.PadBegin[0], PadL: geo.PadBegin[1],
			OutH: geo.Out[0], OutW: geo.Out[1]},
		Max: isMax, CountIncludePad: countPad, PadB: geo.PadEnd[0], PadR: geo.PadEnd[1],
	}
	s := &imageKernel{d: d, x: x, y: y, f: func(workers *cpu.Workers, in, out cpu.Image) error {
		return k.Run(workers, in, out)
	}}
	if fused != nil {
		k.PreScale, k.PreShift, k.PreRelu = fused.PreScale, fused.PreShift, fused.PreRelu
		s.prologue = prologueName(k.PreScale != nil, k.PreRelu)
	}
	// Max pools and the 2x2 stride-2 average pool run the selected level's code, any other
	// average pool plain Go (Pool2D.Algorithm).
	s.name, s.code = k.Algorithm(xs[2], xs[3]), isa.Selected().Level.Code()
	if s.name == "avgpool" {
		s.code = isa.Generic
	}
	return s, ""
}

// prologueName names a kernel's input prologue: "bn-relu" (DenseNet's pre-activation
// BatchNormalization-ReLU, fused), "bn", "relu", or "" for none.
func prologueName(affine, relu bool) string {
	switch {
	case affine && relu:
		return "bn-relu"
	case affine:
		return "bn"
	case relu:
		return "relu"
	}
	return ""
}

// epilogueName names a convolution's epilogue for the plan: "add" for a residual, the
// activation in lower case ("relu", "clip", "hardswish", ...), or both joined by "+".
func epilogueName(residual bool, a ops.Activation) string {
	var parts []string
	if residual {
		parts = append(parts, "add")
	}
	if a.Kind != ops.ActNone {
		parts = append(parts, strings.ToLower(a.Kind.String()))
	}
	return strings.Join(parts, "+")
}

// imageKernel runs an image-to-image kernel.
type imageKernel struct {
	d        *Device
	x, y     device.Operand
	f        func(workers *cpu.Workers, in, out cpu.Image) error
	name     string
	code     isa.Level // the level whose code f runs
	prologue string    // prologueName of a fused pool's prologue
}

func (k *imageKernel) Info() device.KernelInfo {
	return device.KernelInfo{Name: k.name, Code: k.code.String(), Prologue: k.prologue}
}

func (k *imageKernel) Scratch() int { return 0 }

func (k *imageKernel) Run(mem device.Memory) error {
	m := of(mem)
	return k.f(k.d.workers, m.image(k.x), m.image(k.y))
}

// convKernel builds a packed-weight convolution for a 2-D Conv or FusedConv with constant
// weights; z is the FusedConv's residual (Placement InMemory) or the zero Operand.
func (d *Device) convKernel(n *graph.Node, x, y, z device.Operand, conv *ops.Conv, fused *ops.FusedConv) (device.Kernel, string) {
	xs := x.Shape
	switch {
	case len(xs) != 4:
		return nil, fmt.Sprintf("input is %d-D (the fast convolutions are 2-D: NCHW)", len(xs))
	case z.Placement == device.InMemory && !slices.Equal(z.Shape, y.Shape):
		return nil, fmt.Sprintf("the residual's shape %v differs from the output's %v", z.Shape, y.Shape)
	case len(n.Inputs) < 2 || n.Inputs[1] == nil || !n.Inputs[1].IsConst():
		return nil, "weights are not a constant"
	}
	w := n.Inputs[1].Const
	if w.DType != tensor.Float32 || len(w.Shape) != 4 {
		return nil, fmt.Sprintf("weights are %s %v, not float32 4-D", w.DType, w.Shape)
	}
	var bias []float32
	var biasShape []int
	if len(n.Inputs) > 2 && n.Inputs[2] != nil {
		b := n.Inputs[2]
		if !b.IsConst() || b.Const.DType != tensor.Float32 {
			return nil, "bias is not a constant float32 vector"
		}
		bias, biasShape = tensor.Data[float32](b.Const), b.Const.Shape
	}
	geo, err := conv.ConvShapes(xs, w.Shape, biasShape, bias != nil)
	if err != nil {
		return nil, "geometry: " + err.Error()
	}
	if len(geo.Out) != 2 {
		return nil, fmt.Sprintf("%d-D convolution (the fast kernels are 2-D)", len(geo.Out))
	}
	spec := cpu.ConvSpec{
		Cin: xs[1], Cout: w.Shape[0], KH: geo.Kernel[0], KW: geo.Kernel[1],
		StrideH: geo.Stride[0], StrideW: geo.Stride[1], DilationH: geo.Dilation[0], DilationW: geo.Dilation[1],
		PadT: geo.PadBegin[0], PadL: geo.PadBegin[1], PadB: geo.PadEnd[0], PadR: geo.PadEnd[1],
		Group: conv.Group, Weights: tensor.Data[float32](w), Bias: bias,
	}
	if fused != nil {
		spec.PreScale, spec.PreShift, spec.PreRelu = fused.PreScale, fused.PreShift, fused.PreRelu
		spec.Residual, spec.Post = fused.Residual, fused.Post
	}
	k, err := d.conv(n, func() (*cpu.Conv2D, error) { return cpu.NewConv2D(spec) })
	if err != nil {
		return nil, "cpu.NewConv2D: " + err.Error()
	}
	if oh, ow := k.OutputSize(xs[2], xs[3]); oh != geo.Out[0] || ow != geo.Out[1] {
		// the kernel and the op disagree on the geometry: keep the reference
		return nil, fmt.Sprintf("the fast kernel's output size %dx%d differs from the op's %dx%d", oh, ow, geo.Out[0], geo.Out[1])
	}
	s := &convKernel{d: d, k: k, x: x, y: y, z: z, n: xs[0], h: xs[2], w: xs[3]}
	if fused != nil {
		s.prologue = prologueName(fused.PreScale != nil, fused.PreRelu)
		s.epilogue = epilogueName(fused.Residual, fused.Post)
	}
	return s, ""
}

// convKernel runs a packed-weight convolution (or a Linear layer as a 1x1 convolution over
// [M, K, 1, 1]); its output may be a channel slice of a dense block's buffer.
type convKernel struct {
	d                  *Device
	k                  *cpu.Conv2D
	x, y               device.Operand
	z                  device.Operand // the residual, or the zero Operand
	n, h, w            int            // the planned input size, which decides the algorithm
	prologue, epilogue string         // what the FusedConv fuses
}

// Info names the algorithm the kernel picks for the planned input size, as Run will.
func (k *convKernel) Info() device.KernelInfo {
	return device.KernelInfo{Name: k.k.Algorithm(k.n, k.h, k.w, k.d.Threads()), Code: k.k.Level().String(),
		Prologue: k.prologue, Epilogue: k.epilogue}
}

func (k *convKernel) Scratch() int { return k.k.ScratchSize(k.n, k.h, k.w, k.d.Threads()) }

func (k *convKernel) Run(mem device.Memory) error {
	m := of(mem)
	// image() views a [M, K] Linear input as M images of K channels and 1x1 pixels already.
	var z cpu.Image
	if k.z.Placement == device.InMemory {
		z = m.image(k.z)
	}
	return k.k.RunResidual(k.d.workers, m.image(k.x), z, m.image(k.y), m.scratch)
}

// linearKernel runs Gemm with constant B and C and an activation A of shape [M, K] (PyTorch's
// Linear: transB=1) as a 1x1 convolution over M images of K channels and 1x1 pixels: weights
// [N, K] = alpha*op(B)^T, bias beta*C. The output [M, N] then has exactly the conv's layout.
func (d *Device) linearKernel(n *graph.Node, x, y device.Operand, op *ops.Gemm) (device.Kernel, string) {
	xs := x.Shape
	switch {
	case op.TransA:
		return nil, "transA=1 (the fast path is PyTorch's Linear: A as is)"
	case len(xs) != 2:
		return nil, fmt.Sprintf("A is %d-D", len(xs))
	case len(n.Inputs) < 2 || n.Inputs[1] == nil || !n.Inputs[1].IsConst():
		return nil, "B is not a constant"
	}
	b := n.Inputs[1].Const
	if b.DType != tensor.Float32 || len(b.Shape) != 2 {
		return nil, fmt.Sprintf("B is %s %v, not float32 2-D", b.DType, b.Shape)
	}
	k, cout := xs[1], b.Shape[1]
	if op.TransB {
		cout = b.Shape[0]
	}
	if (op.TransB && b.Shape[1] != k) || (!op.TransB && b.Shape[0] != k) {
		return nil, fmt.Sprintf("B %v does not match A's %d columns", b.Shape, k)
	}
	src := tensor.Data[float32](b)
	w := make([]float32, cout*k)
	for o := 0; o < cout; o++ {
		for i := 0; i < k; i++ {
			v := src[i*cout+o] // B is [K, N]
			if op.TransB {
				v = src[o*k+i] // B is [N, K]
			}
			w[o*k+i] = op.Alpha * v
		}
	}
	var bias []float32
	if len(n.Inputs) > 2 && n.Inputs[2] != nil && op.Beta != 0 {
		c := n.Inputs[2]
		if !c.IsConst() || c.Const.DType != tensor.Float32 {
			return nil, "C is not a constant float32"
		}
		cs := c.Const.Shape
		switch {
		case c.Const.Len() == cout && (len(cs) == 1 || (len(cs) == 2 && cs[0] == 1)):
			bias = make([]float32, cout)
			for i, v := range tensor.Data[float32](c.Const) {
				bias[i] = op.Beta * v
			}
		case c.Const.Len() == 1:
			bias = make([]float32, cout)
			for i := range bias {
				bias[i] = op.Beta * tensor.Data[float32](c.Const)[0]
			}
		default:
			return nil, fmt.Sprintf("C %v is not one value per output or a scalar (a per-row C needs the general kernel)", cs)
		}
	}
	spec := cpu.ConvSpec{Cin: k, Cout: cout, KH: 1, KW: 1, Weights: w, Bias: bias}
	conv, err := d.conv(n, func() (*cpu.Conv2D, error) { return cpu.NewConv2D(spec) })
	if err != nil {
		return nil, "cpu.NewConv2D: " + err.Error()
	}
	return &convKernel{d: d, k: conv, x: x, y: y, n: xs[0], h: 1, w: 1}, ""
}

// spatialMean says why ReduceMean n does not average the spatial axes of a 4-D input, as
// GlobalAveragePool does ("" when it does): the axes must be {2, 3} (or {-2, -1}), from the
// attribute or a constant input.
func spatialMean(n *graph.Node, op *ops.ReduceMean, xs tensor.Shape) string {
	if len(xs) != 4 {
		return fmt.Sprintf("input is %d-D (the fast mean is over H and W of NCHW)", len(xs))
	}
	axes := op.Axes
	if op.AxesInput {
		if len(n.Inputs) < 2 || n.Inputs[1] == nil || !n.Inputs[1].IsConst() || n.Inputs[1].Const.DType != tensor.Int64 {
			return "axes are not a constant int64 input"
		}
		axes = tensor.Data[int64](n.Inputs[1].Const)
	}
	var seen [4]bool
	for _, a := range axes {
		if a < 0 {
			a += 4
		}
		if a < 0 || a > 3 {
			return fmt.Sprintf("axis out of range in %v", axes)
		}
		seen[a] = true
	}
	if len(axes) != 2 || !seen[2] || !seen[3] {
		return fmt.Sprintf("axes %v (the fast mean is over H and W: axes 2 and 3)", axes)
	}
	return ""
}

// clipBounds returns Clip's bounds when they are static (see ops.Clip.StaticBounds).
func clipBounds(n *graph.Node, op *ops.Clip) (lo, hi float32, ok bool) {
	var b [2]*tensor.Tensor
	var present [2]bool
	for i := range b {
		if len(n.Inputs) > i+1 && n.Inputs[i+1] != nil {
			present[i] = true
			if v := n.Inputs[i+1]; v.IsConst() {
				b[i] = v.Const
			}
		}
	}
	return op.StaticBounds(b[0], b[1], present[0], present[1])
}

// unaryKernel runs an element-wise function, named name, over a dense value.
func (d *Device) unaryKernel(x, y device.Operand, name string, k *cpu.Unary) (device.Kernel, string) {
	if !x.Dense() || !y.Dense() || x.Size() != y.Size() {
		return nil, "a strided operand (a channel slice of a concatenation with batch > 1)"
	}
	return &unaryKernel{d: d, k: k, x: x, y: y, name: name}, ""
}

type unaryKernel struct {
	d    *Device
	k    *cpu.Unary
	x, y device.Operand
	name string
}

func (k *unaryKernel) Info() device.KernelInfo {
	return device.KernelInfo{Name: k.name, Code: isa.Generic.String()}
}

func (k *unaryKernel) Scratch() int { return 0 }

func (k *unaryKernel) Run(mem device.Memory) error {
	m := of(mem)
	k.k.Run(k.d.workers, m.dense(k.x), m.dense(k.y))
	return nil
}

// dense returns a dense float32 operand's elements: arena memory or the constant's data.
func (m *memory) dense(o device.Operand) []float32 {
	if o.Placement == device.Constant {
		return tensor.Data[float32](o.Const)
	}
	end := o.Offset + o.Size()
	return m.arena[o.Offset:end:end]
}

// arithKernel runs Add/Sub/Mul/Div when one operand has the output's shape and the other the
// same shape, one element, or a per-leading-index value broadcast over trailing dims
// ([N,C,1,1] against [N,C,H,W]).
func (d *Device) arithKernel(n *graph.Node, op *ops.Arith, in []device.Operand, y device.Operand) (device.Kernel, string) {
	switch {
	case op.Legacy:
		return nil, "legacy broadcast attributes (opset < 7)"
	case in[0].Placement == device.Absent || in[1].Placement == device.Absent || y.Placement != device.InMemory:
		return nil, "an absent operand or output"
	}
	for _, o := range in {
		if !(o.Placement == device.InMemory && o.Dense()) && !(o.Placement == device.Constant && o.Const.DType == tensor.Float32) {
			return nil, "an operand is strided (a channel slice of a concatenation) or not float32"
		}
	}
	if !y.Dense() {
		return nil, "the output is strided (a channel slice of a concatenation)"
	}
	full, small, bFirst := in[0], in[1], false
	if !full.Shape.Equal(y.Shape) {
		full, small, bFirst = in[1], in[0], true
	}
	if !full.Shape.Equal(y.Shape) {
		return nil, "neither operand has the output's shape (both broadcast)"
	}
	per, ok := broadcastRun(small.Shape, y.Shape)
	if !ok {
		return nil, fmt.Sprintf("%v does not broadcast to %v as leading dims followed by 1s", small.Shape, y.Shape)
	}
	var f cpu.BinaryFunc
	switch op.Kind {
	case ops.ArithAdd:
		f = cpu.FuncAdd
	case ops.ArithSub:
		f = cpu.FuncSub
	case ops.ArithMul:
		f = cpu.FuncMul
	case ops.ArithDiv:
		f = cpu.FuncDiv
	default:
		return nil, "no fast kernel for " + n.OpType
	}
	return &binaryKernel{d: d, k: &cpu.Binary{Func: f, Per: per, BFirst: bFirst}, a: full, b: small, y: y,
		name: strings.ToLower(n.OpType)}, ""
}

// broadcastRun returns how many consecutive output elements share one element of small, when
// small broadcasts to out as a prefix of out's dims followed by 1s (after NumPy's right
// alignment): 1 for the same shape, len(out) for a scalar.
func broadcastRun(small, out tensor.Shape) (int, bool) {
	if len(small) > len(out) {
		return 0, false
	}
	padded := make([]int, len(out))
	for i := range padded {
		padded[i] = 1
		if j := i - (len(out) - len(small)); j >= 0 {
			padded[i] = small[j]
		}
	}
	t := 0
	for t < len(out) && padded[t] == out[t] {
		t++
	}
	per := 1
	for i := t; i < len(out); i++ {
		if padded[i] != 1 {
			return 0, false
		}
		per *= out[i]
	}
	return max(per, 1), true
}

type binaryKernel struct {
	d       *Device
	k       *cpu.Binary
	a, b, y device.Operand
	name    string
}

func (k *binaryKernel) Info() device.KernelInfo {
	return device.KernelInfo{Name: k.name, Code: isa.Generic.String()}
}

func (k *binaryKernel) Scratch() int { return 0 }

func (k *binaryKernel) Run(mem device.Memory) error {
	m := of(mem)
	k.k.Run(k.d.workers, m.dense(k.a), m.dense(k.b), m.dense(k.y))
	return nil
}

// concatKernel copies the inputs of a channel concatenation (axis 1, every operand in memory)
// that do not already lie at their channel offset inside the output: the planner writes the
// others in place (DenseNet's dense-block buffer), so only graph inputs, constants' copies and
// values also used elsewhere move.
func concatKernel(c *ops.Concat, in, out []device.Operand) (device.Kernel, string) {
	if len(out) != 1 || out[0].Placement != device.InMemory || len(out[0].Shape) < 2 {
		return nil, "the output is not a float32 value of rank >= 2 in memory"
	}
	y := out[0]
	axis := int(c.Axis)
	if axis < 0 {
		axis += len(y.Shape)
	}
	if axis != 1 {
		return nil, fmt.Sprintf("axis %d (the fast concatenation joins channels, axis 1)", c.Axis)
	}
	k := &concatCopy{y: y}
	c0 := 0
	for _, x := range in {
		if x.Placement != device.InMemory {
			return nil, "an input is not a float32 value in memory"
		}
		dst := channelSlice(y, c0, x.Shape[1])
		if x.Offset != dst.Offset || (len(x.Shape) > 0 && x.Shape[0] > 1 && x.BatchStride != dst.BatchStride) {
			k.parts = append(k.parts, concatPart{src: x, dst: dst})
		}
		c0 += x.Shape[1]
	}
	return k, ""
}

// channelSlice returns the operand of channels [c0, c0+count) of y.
func channelSlice(y device.Operand, c0, count int) device.Operand {
	inner := 1
	for _, d := range y.Shape[2:] {
		inner *= d
	}
	s := y.Shape.Clone()
	s[1] = count
	bs := y.BatchStride
	if bs == 0 {
		bs = y.Size() / max(1, y.Shape[0])
	}
	return device.Operand{Placement: device.InMemory, Shape: s, Offset: y.Offset + c0*inner, BatchStride: bs}
}

type concatPart struct{ src, dst device.Operand }

type concatCopy struct {
	y     device.Operand
	parts []concatPart
}

func (k *concatCopy) Info() device.KernelInfo {
	return device.KernelInfo{Name: "concat-copy", Code: isa.Generic.String()}
}

func (k *concatCopy) Scratch() int { return 0 }

func (k *concatCopy) Run(mem device.Memory) error {
	m := of(mem)
	for _, p := range k.parts {
		src, dst := m.image(p.src), m.image(p.dst)
		per := src.C * src.H * src.W
		for n := 0; n < src.N; n++ {
			copy(dst.Item(n)[:per], src.Item(n))
		}
	}
	return nil
}

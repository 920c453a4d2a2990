package plan

import (
	"fmt"
	"math"
	"strings"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// fastStep returns a runtime/kernels/cpu step for n, or nil and why not, to use the reference
// kernel. Every fast kernel works on float32 arena values of static shape; anything unusual
// (other dtypes, optional outputs, 1-D or 3-D pooling) stays on the reference path. The reason
// is what `dnx inspect --plan` shows for a reference step: each nil return says why.
func (p *Plan) fastStep(n *graph.Node) (step, string) {
	if d := ops.NormalizeDomain(n.Domain); d != "" && d != ops.DomainDNX {
		return nil, fmt.Sprintf("domain %q has no fast kernels", n.Domain)
	}
	for k, v := range n.Inputs {
		if v != nil && p.values[p.mustID(v)].kind == isDynamic {
			return nil, fmt.Sprintf("input %d (%q) is not a float32 value of static shape", k, v.Name)
		}
	}
	for k, v := range n.Outputs {
		if v != nil && p.values[p.mustID(v)].kind != inArena {
			return nil, fmt.Sprintf("output %d (%q) is not a float32 value of static shape", k, v.Name)
		}
	}
	if a, ok := n.Op.(*ops.Arith); ok && len(n.Outputs) == 1 && len(n.Inputs) == 2 {
		return p.arithStep(n, a)
	}
	switch {
	case len(n.Outputs) != 1:
		return nil, fmt.Sprintf("%d outputs (the fast kernels write one)", len(n.Outputs))
	case n.Inputs[0] == nil || p.values[p.mustID(n.Inputs[0])].kind != inArena:
		return nil, "input 0 is not an activation (a constant or absent)"
	}
	x, y := p.mustID(n.Inputs[0]), p.mustID(n.Outputs[0])
	xs := p.values[x].shape
	not4D := fmt.Sprintf("input is %d-D (the fast pooling kernels are 2-D: NCHW)", len(xs))
	switch op := n.Op.(type) {
	case *ops.Conv:
		return p.convStep(n, x, y, op, nil)
	case *ops.FusedConv:
		return p.convStep(n, x, y, &op.Conv, op)
	case *ops.Gemm:
		return p.linearStep(n, x, y, op)
	case *ops.MaxPool:
		switch {
		case len(xs) != 4:
			return nil, not4D
		case op.StorageOrder != 0:
			return nil, "storage_order 1 (column-major indices)"
		}
		return p.poolStep(x, y, &op.Window, true, false, nil)
	case *ops.AveragePool:
		if len(xs) != 4 {
			return nil, not4D
		}
		return p.poolStep(x, y, &op.Window, false, op.CountIncludePad, nil)
	case *ops.FusedAveragePool:
		switch {
		case len(xs) != 4:
			return nil, not4D
		case op.PreScale != nil && len(op.PreScale) != xs[1]:
			return nil, fmt.Sprintf("prologue has %d scales for %d channels", len(op.PreScale), xs[1])
		}
		return p.poolStep(x, y, &op.Pool.Window, false, op.Pool.CountIncludePad, op)
	case *ops.GlobalAveragePool:
		if len(xs) != 4 {
			return nil, not4D
		}
		return &funcStep{p: p, x: x, y: y, kernel: "global-avgpool", code: isa.Generic, f: func(workers *cpu.Workers, in, out cpu.Image) error {
			return cpu.GlobalAvgPool(workers, in, out)
		}}, ""
	case *ops.Sigmoid:
		return p.unaryStep(x, y, "sigmoid", &cpu.Unary{Func: cpu.FuncSigmoid})
	case *ops.LeakyRelu:
		return p.unaryStep(x, y, "leaky-relu", &cpu.Unary{Func: cpu.FuncLeakyRelu, Alpha: op.Alpha})
	case *ops.HardSigmoid:
		return p.unaryStep(x, y, "hard-sigmoid", &cpu.Unary{Func: cpu.FuncHardSigmoid, Alpha: op.Alpha, Beta: op.Beta})
	case *ops.HardSwish:
		return p.unaryStep(x, y, "hard-swish", &cpu.Unary{Func: cpu.FuncHardSwish})
	case *ops.Clip:
		lo, hi, ok := clipBounds(n, op)
		if !ok {
			return nil, "bounds are not constant float32 scalars"
		}
		return p.unaryStep(x, y, "clip", &cpu.Unary{Func: cpu.FuncClip, Lo: lo, Hi: hi})
	case *ops.Relu:
		if len(xs) < 1 {
			return nil, "scalar input"
		}
		return &funcStep{p: p, x: x, y: y, kernel: "relu", code: isa.Generic, f: func(_ *cpu.Workers, in, out cpu.Image) error {
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
		return &funcStep{p: p, x: x, y: y, kernel: "bn-affine", code: isa.Generic, f: func(_ *cpu.Workers, in, out cpu.Image) error {
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

// poolStep builds a 2-D pooling kernel from the resolved window geometry, with the prologue of
// fused (nil for none).
func (p *Plan) poolStep(x, y int, w *ops.Window, isMax, countPad bool, fused *ops.FusedAveragePool) (step, string) {
	xs := p.values[x].shape
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
	s := &funcStep{p: p, x: x, y: y, f: func(workers *cpu.Workers, in, out cpu.Image) error {
		return k.Run(workers, in, out)
	}}
	if fused != nil {
		k.PreScale, k.PreShift, k.PreRelu = fused.PreScale, fused.PreShift, fused.PreRelu
		s.prologue = prologueName(k.PreScale != nil, k.PreRelu)
	}
	// Max pools and the 2x2 stride-2 average pool run the selected level's code, any other
	// average pool plain Go (Pool2D.Algorithm).
	s.kernel, s.code = k.Algorithm(xs[2], xs[3]), isa.Selected().Level.Code()
	if s.kernel == "avgpool" {
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

// funcStep runs an image-to-image kernel.
type funcStep struct {
	p        *Plan
	x, y     int
	f        func(workers *cpu.Workers, in, out cpu.Image) error
	kernel   string    // for describe
	code     isa.Level // the level whose code f runs
	prologue string    // prologueName of a fused pool's prologue
}

func (s *funcStep) describe() stepDesc {
	return stepDesc{kernel: s.kernel, code: s.code.String(), prologue: s.prologue}
}

func (s *funcStep) run(st *runState) error {
	return s.f(s.p.workers, s.p.image(st, s.x), s.p.image(st, s.y))
}

// convStep builds a packed-weight convolution for a 2-D Conv or FusedConv with constant weights.
func (p *Plan) convStep(n *graph.Node, x, y int, conv *ops.Conv, fused *ops.FusedConv) (step, string) {
	xs := p.values[x].shape
	switch {
	case len(xs) != 4:
		return nil, fmt.Sprintf("input is %d-D (the fast convolutions are 2-D: NCHW)", len(xs))
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
		spec.PreScale, spec.PreShift, spec.PreRelu, spec.PostRelu = fused.PreScale, fused.PreShift, fused.PreRelu, fused.PostRelu
	}
	k, err := p.cache.conv(n, func() (*cpu.Conv2D, error) { return cpu.NewConv2D(spec) })
	if err != nil {
		return nil, "cpu.NewConv2D: " + err.Error()
	}
	if oh, ow := k.OutputSize(xs[2], xs[3]); oh != geo.Out[0] || ow != geo.Out[1] {
		// the kernel and the op disagree on the geometry: keep the reference
		return nil, fmt.Sprintf("the fast kernel's output size %dx%d differs from the op's %dx%d", oh, ow, geo.Out[0], geo.Out[1])
	}
	p.scratchSize = max(p.scratchSize, k.ScratchSize(xs[0], xs[2], xs[3], p.workers.Threads()))
	s := &convStep{p: p, k: k, x: x, y: y}
	if fused != nil {
		s.prologue = prologueName(fused.PreScale != nil, fused.PreRelu)
		if fused.PostRelu {
			s.epilogue = "relu"
		}
	}
	return s, ""
}

// convStep runs a packed-weight convolution; its output may be a channel slice of a dense
// block's buffer.
type convStep struct {
	p                  *Plan
	k                  *cpu.Conv2D
	x, y               int
	prologue, epilogue string // for describe: what the FusedConv fuses
}

// describe names the algorithm the kernel picks for the planned input size, as Run will.
func (s *convStep) describe() stepDesc {
	xs := s.p.values[s.x].shape
	return stepDesc{kernel: s.k.Algorithm(xs[0], xs[2], xs[3], s.p.workers.Threads()), code: s.k.Level().String(),
		prologue: s.prologue, epilogue: s.epilogue}
}

func (s *convStep) run(st *runState) error {
	return s.k.Run(s.p.workers, s.p.image(st, s.x), s.p.image(st, s.y), st.scratch)
}

// linearStep runs Gemm with constant B and C and an activation A of shape [M, K] (PyTorch's
// Linear: transB=1) as a 1x1 convolution over M images of K channels and 1x1 pixels: weights
// [N, K] = alpha*op(B)^T, bias beta*C. The output [M, N] then has exactly the conv's layout.
func (p *Plan) linearStep(n *graph.Node, x, y int, op *ops.Gemm) (step, string) {
	xs := p.values[x].shape
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
	conv, err := p.cache.conv(n, func() (*cpu.Conv2D, error) { return cpu.NewConv2D(spec) })
	if err != nil {
		return nil, "cpu.NewConv2D: " + err.Error()
	}
	p.scratchSize = max(p.scratchSize, conv.ScratchSize(xs[0], 1, 1, p.workers.Threads()))
	return &linear{p: p, k: conv, x: x, y: y}, ""
}

// linear runs a Linear layer as a 1x1 convolution over [M, K, 1, 1].
type linear struct {
	p    *Plan
	k    *cpu.Conv2D
	x, y int
}

func (s *linear) describe() stepDesc {
	m := s.p.values[s.x].shape[0]
	return stepDesc{kernel: s.k.Algorithm(m, 1, 1, s.p.workers.Threads()), code: s.k.Level().String()}
}

func (s *linear) run(st *runState) error {
	in, out := s.p.image(st, s.x), s.p.image(st, s.y)
	// image() views [M, K] as M images of K channels and 1x1 pixels already.
	return s.k.Run(s.p.workers, in, out, st.scratch)
}

// clipBounds returns Clip's bounds when they are static (attributes, or constant inputs).
func clipBounds(n *graph.Node, op *ops.Clip) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if !op.BoundInputs {
		if op.HasMin {
			lo = op.Min
		}
		if op.HasMax {
			hi = op.Max
		}
		return lo, hi, true
	}
	for i, dst := range []*float32{&lo, &hi} {
		if len(n.Inputs) <= i+1 || n.Inputs[i+1] == nil {
			continue
		}
		v := n.Inputs[i+1]
		if !v.IsConst() || v.Const.DType != tensor.Float32 || v.Const.Len() != 1 {
			return 0, 0, false
		}
		*dst = tensor.Data[float32](v.Const)[0]
	}
	return lo, hi, true
}

// unaryStep runs an element-wise function, named kernel, over a dense value.
func (p *Plan) unaryStep(x, y int, kernel string, k *cpu.Unary) (step, string) {
	if !p.values[x].dense() || !p.values[y].dense() || p.values[x].size != p.values[y].size {
		return nil, "a strided operand (a channel slice of a concatenation with batch > 1)"
	}
	return &unaryStep{p: p, k: k, x: x, y: y, kernel: kernel}, ""
}

type unaryStep struct {
	p      *Plan
	k      *cpu.Unary
	x, y   int
	kernel string
}

func (s *unaryStep) describe() stepDesc {
	return stepDesc{kernel: s.kernel, code: isa.Generic.String()}
}

func (s *unaryStep) run(st *runState) error {
	s.k.Run(s.p.workers, s.p.dense(st, s.x), s.p.dense(st, s.y))
	return nil
}

// dense returns a dense float32 value's elements: arena memory or the constant's data.
func (p *Plan) dense(st *runState, id int) []float32 {
	v := &p.values[id]
	if v.kind == isConst {
		return tensor.Data[float32](v.konst)
	}
	b := p.base(id)
	return st.arena[b : b+v.size : b+v.size]
}

// arithStep runs Add/Sub/Mul/Div when one operand has the output's shape and the other the same
// shape, one element, or a per-leading-index value broadcast over trailing dims ([N,C,1,1]
// against [N,C,H,W]).
func (p *Plan) arithStep(n *graph.Node, op *ops.Arith) (step, string) {
	switch {
	case op.Legacy:
		return nil, "legacy broadcast attributes (opset < 7)"
	case n.Inputs[0] == nil || n.Inputs[1] == nil || n.Outputs[0] == nil:
		return nil, "an absent operand or output"
	}
	a, b, y := p.mustID(n.Inputs[0]), p.mustID(n.Inputs[1]), p.mustID(n.Outputs[0])
	for _, id := range []int{a, b} {
		v := &p.values[id]
		if !(v.kind == inArena && v.dense()) && !(v.kind == isConst && v.konst.DType == tensor.Float32) {
			return nil, "an operand is strided (a channel slice of a concatenation) or not float32"
		}
	}
	out := &p.values[y]
	if out.kind != inArena || !out.dense() {
		return nil, "the output is strided (a channel slice of a concatenation)"
	}
	full, small, bFirst := a, b, false
	if !p.values[a].shape.Equal(out.shape) {
		full, small, bFirst = b, a, true
	}
	if !p.values[full].shape.Equal(out.shape) {
		return nil, "neither operand has the output's shape (both broadcast)"
	}
	per, ok := broadcastRun(p.values[small].shape, out.shape)
	if !ok {
		return nil, fmt.Sprintf("%v does not broadcast to %v as leading dims followed by 1s", p.values[small].shape, out.shape)
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
	return &binaryStep{p: p, k: &cpu.Binary{Func: f, Per: per, BFirst: bFirst}, a: full, b: small, y: y,
		kernel: strings.ToLower(n.OpType)}, ""
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

type binaryStep struct {
	p       *Plan
	k       *cpu.Binary
	a, b, y int
	kernel  string
}

func (s *binaryStep) describe() stepDesc {
	return stepDesc{kernel: s.kernel, code: isa.Generic.String()}
}

func (s *binaryStep) run(st *runState) error {
	s.k.Run(s.p.workers, s.p.dense(st, s.a), s.p.dense(st, s.b), s.p.dense(st, s.y))
	return nil
}

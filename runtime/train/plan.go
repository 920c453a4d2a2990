package train

import (
	"fmt"
	"slices"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	inferplan "github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// A plan is the trainer's program for one input shape: the graph's nodes as units (forward and
// backward kernels with their value ids), the storage of every activation and gradient inside one
// float32 arena, and the recomputation policy.
//
// # Layout
//
// Activations of rank >= 3 are channel-major: element (n, c, i), i the flattened spatial index,
// of a value [N, C, ...] with S spatial elements is at c*cs + n*S + i, cs = chanStride(N*S)
// (device.TrainingKernels' channel-major layout). Values of rank <= 2 are row-major. Parameters
// keep their ONNX (row-major) layout.
//
// # Storage and memory
//
// Every buffer (activation, gradient, transient) has a lifetime on the step's timeline: forward
// unit i runs at time i, the loss at time U, and the backward of unit i at time 2U-i. Buffers get
// arena offsets from their lifetimes, so buffers that are never alive together share memory;
// an activation stays alive until the last backward kernel that reads it.
//
// In the memory-efficient mode a channel concatenation is a view: the producers of its inputs
// write straight into the channel slices of one buffer per dense block (a channel-major channel
// slice is contiguous), every earlier concatenation of a prefix is a view of the same buffer, and
// the gradients mirror that layout, so backward kernels accumulate into the block's gradient
// buffer. The output of a BatchNormalization-ReLU whose readers are all convolutions is virtual:
// the convolutions read it through their prologue in the forward pass, and the weight gradient
// recomputes it (from the stored BN input and the saved batch mean and inverse deviation, never
// touching the running statistics) just before it is needed: straight into the GEMM's panels for
// a 1x1 convolution, into a transient staging buffer otherwise. The gradient of such a virtual
// output is not stored whole either (see markFused). Without the mode every concatenation
// copies and every BN-ReLU output is stored, as a plain framework does.
type plan struct {
	vals    []*val
	units   []unit
	bufs    []*buffer
	input   int // the fed graph input
	output  int // the logits
	arena   int // floats
	scratch []float32
	// actBytes is the peak over the timeline of the live activation bytes (activations and
	// the staging buffers they are recomputed into, not gradients); totalBytes the arena size.
	actBytes, totalBytes int64
	memEff               bool
	threads              int
	g                    *graph.Graph
	mem                  []float32 // the arena, allocated at the first pass
	stats                map[int]*statCache
	budget               membudget.Budget
}

// vkind says where a value's data lives.
type vkind uint8

const (
	vAct   vkind = iota // computed in the step, stored in the arena (unless virtual)
	vInput              // the fed input, converted into the arena
	vParam              // a trained or frozen initializer
	vStat               // a BatchNormalization running statistic
	vConst              // any other constant
)

// val is one graph value of the plan.
type val struct {
	name  string
	shape tensor.Shape
	cm    bool // channel-major storage (rank >= 3)
	n     int  // batch (shape[0]); 1 for rank 0
	c     int  // channels (shape[1]) for rank >= 2
	s     int  // elements per (n, c) for rank >= 2
	cs    int  // channel-major: floats between consecutive channels (>= n*s, see chanStride)
	size  int  // floats of storage (c*cs when channel-major)
	kind  vkind
	p     *param         // vParam, vStat
	konst *tensor.Tensor // vConst: the value
	cdata []float32      // vConst of float type: the data in storage layout

	virtual bool
	// gradChunked: a virtual value whose gradient is never stored whole; the convolution that
	// reads it computes it a channel range at a time and hands each range to the
	// BatchNormalization that produced it (see convUnit.fused). It has no gradient buffer.
	gradChunked bool
	buf, off    int // activation storage; buf < 0: none
	needGrad    bool
	gbuf        int // gradient storage (offset off in gbuf, or 0 for a virtual value's own buffer)
	goff        int
	prod        int   // producing unit, -1
	readers     []int // units that read it
	graphOut    bool
}

// buffer is one allocation in the arena.
type buffer struct {
	size        int
	grad        bool
	transient   bool
	first, last int // lifetime, inclusive; first > last when unused
	off         int
	// chanLen is the channel stride cs shared by every channel-major value placed in the buffer
	// (0 when they differ); with it, per-channel batch statistics are cached per buffer channel,
	// since each channel is written once per step.
	chanLen int
}

// unit is one forward/backward kernel pair.
type unit interface {
	base() *unitBase
	forward(r *run) error
	backward(r *run) error
}

// unitBase holds what the planner needs to know of every unit.
type unitBase struct {
	node     *graph.Node
	in, out  []int
	bwd      bool  // the unit runs in the backward pass
	reads    []int // values the backward pass reads
	bwdBufs  []int // transient buffers used in the backward pass
	bwdGrads []int // values other than its inputs and outputs whose gradients the backward pass writes
}

func (u *unitBase) base() *unitBase { return u }

// errorf wraps an error with the unit's node.
func (u *unitBase) errorf(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", u.node, err)
}

// compile builds the plan of graph g for the trainer t and an input of the given shape, with the
// convolutions and pools of k's device. Types and constant folding come from the planning core
// (plan.Infer), with the trainer's parameters and running statistics as the values that vary; g
// itself is not changed. The plan keeps no reference to k: each pass runs it on the kernels of
// that pass.
func compile(t *Trainer, g *graph.Graph, shape tensor.Shape, threads int, k device.TrainingKernels) (*plan, error) {
	p := &plan{memEff: t.opts.MemoryEfficient, threads: threads, input: -1, output: -1, g: g, budget: t.budget}
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("%w: the graph has %d inputs; training needs exactly one (the images)", ErrGraph, len(g.Inputs))
	}
	types, err := inferplan.Infer(g, []tensor.Shape{shape}, t.budget, inferplan.InferOptions{
		Variable: func(v *graph.Value) bool { return t.byName[v.Name] != nil },
	})
	if err != nil {
		return nil, err
	}
	ids := map[*graph.Value]int{}
	id := func(v *graph.Value) (int, error) {
		if i, ok := ids[v]; ok {
			return i, nil
		}
		vv, err := t.newVal(v, types)
		if err != nil {
			return 0, err
		}
		p.vals = append(p.vals, vv)
		ids[v] = len(p.vals) - 1
		return len(p.vals) - 1, nil
	}
	if p.input, err = id(g.Inputs[0]); err != nil {
		return nil, err
	}
	in := p.vals[p.input]
	if in.kind != vInput || in.shape[0] < 1 {
		return nil, fmt.Errorf("%w: graph input %q is not a fed tensor with a batch dim", ErrGraph, in.name)
	}
	// Nodes become units; nodes computed at compile time (plan.Infer's folding) are constants.
	absorbed := map[*graph.Node]bool{}
	for _, n := range g.Nodes {
		if absorbed[n] || types.Folded[n] {
			continue
		}
		inIDs := make([]int, len(n.Inputs))
		for i, v := range n.Inputs {
			if v == nil {
				inIDs[i] = -1
				continue
			}
			if inIDs[i], err = id(v); err != nil {
				return nil, err
			}
		}
		outIDs := make([]int, len(n.Outputs))
		for i, v := range n.Outputs {
			if v == nil {
				outIDs[i] = -1
				continue
			}
			if outIDs[i], err = id(v); err != nil {
				return nil, err
			}
		}
		u, err := p.newUnit(t, k, n, inIDs, outIDs, absorbed, id)
		if err != nil {
			return nil, err
		}
		p.units = append(p.units, u)
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("%w: the graph has no outputs", ErrGraph)
	}
	if p.output, err = id(g.Outputs[0]); err != nil {
		return nil, err
	}
	out := p.vals[p.output]
	if out.kind != vAct || len(out.shape) != 2 || out.shape[0] != in.shape[0] {
		return nil, fmt.Errorf("%w: the first graph output %q has shape %v; training needs logits [batch, classes] computed from the input", ErrGraph, out.name, out.shape)
	}
	for _, v := range g.Outputs {
		if i, ok := ids[v]; ok {
			p.vals[i].graphOut = true
		}
	}
	for i, u := range p.units {
		b := u.base()
		for _, v := range b.in {
			if v >= 0 {
				p.vals[v].readers = append(p.vals[v].readers, i)
			}
		}
		for _, v := range b.out {
			if v >= 0 {
				p.vals[v].prod = i
			}
		}
	}
	p.markGradients()
	if p.memEff {
		p.markVirtual()
	}
	for _, u := range p.units {
		if f, ok := u.(interface{ finish(p *plan) error }); ok {
			if err := f.finish(p); err != nil {
				return nil, err
			}
		}
	}
	if p.memEff {
		p.markFused()
	}
	if err := p.place(); err != nil {
		return nil, err
	}
	p.allocate()
	for _, u := range p.units {
		if c, ok := u.(*convUnit); ok {
			c.setPrepack(p)
		}
	}
	return p, nil
}

// setShape fills the layout fields of v from shape.
func (v *val) setShape(shape tensor.Shape) {
	v.shape = shape.Clone()
	v.size = shape.Size()
	v.n, v.c, v.s = 1, 1, 1
	if len(shape) >= 1 {
		v.n = shape[0]
	}
	if len(shape) >= 2 {
		v.c = shape[1]
		for _, d := range shape[2:] {
			v.s *= d
		}
	}
	v.cm = len(shape) >= 3
	v.cs = v.n * v.s
	if v.cm {
		v.cs = chanStride(v.n * v.s)
		v.size = v.c * v.cs
	}
	v.buf, v.gbuf, v.prod = -1, -1, -1
}

// chanStride returns the distance between the channels of a channel-major value whose channels
// hold ns floats: ns rounded up to whole 64-byte lines, and to an odd number of them when the
// channels are large. With a power-of-two stride (a batch of 64 32x32 images is 2^16 floats per
// channel) every channel row of a tensor starts in the same cache set, and the kernels, which
// read many channels at once, thrash the caches.
func chanStride(ns int) int {
	if ns < 1024 {
		return ns
	}
	lines := (ns + 15) / 16
	return 16 * (lines | 1)
}

// constVal makes a constant value; float constants also get their data in storage layout.
func constVal(name string, t *tensor.Tensor) (*val, error) {
	v := &val{name: name, kind: vConst, konst: t}
	v.setShape(t.Shape)
	if t.DType.IsFloat() {
		v.cdata = toLayout(v, float32s(t))
	}
	return v, nil
}

// float32s returns t's elements as float32 (t itself when it is float32).
func float32s(t *tensor.Tensor) []float32 {
	if t.DType == tensor.Float32 {
		return tensor.Data[float32](t)
	}
	f := t.Float64s()
	out := make([]float32, len(f))
	for i, x := range f {
		out[i] = float32(x)
	}
	return out
}

// markGradients decides which values need a gradient (they depend on a trained parameter) and
// which units run backward (some input needs a gradient).
func (p *plan) markGradients() {
	for _, v := range p.vals {
		v.needGrad = v.kind == vParam && v.p.train
	}
	for _, u := range p.units {
		b := u.base()
		for _, i := range b.in {
			if i >= 0 && p.vals[i].needGrad {
				b.bwd = true
			}
		}
		if b.bwd {
			for _, o := range b.out {
				if o >= 0 && p.vals[o].kind == vAct {
					p.vals[o].needGrad = true
				}
			}
		}
	}
}

// markVirtual makes the outputs of BatchNormalization(-ReLU) units virtual when every reader is
// a convolution (which takes them as a prologue) and they are not graph outputs.
func (p *plan) markVirtual() {
	for _, u := range p.units {
		bn, ok := u.(*bnUnit)
		if !ok || !p.vals[bn.x].cm {
			continue
		}
		y := p.vals[bn.y]
		if y.graphOut || len(y.readers) == 0 {
			continue
		}
		all := true
		for _, r := range y.readers {
			c, ok := p.units[r].(*convUnit)
			if !ok || c.x != bn.y || c.w == bn.y || c.b == bn.y {
				all = false
				break
			}
		}
		y.virtual = all
	}
}

// markFused fuses the backward passes of a BatchNormalization-ReLU with a virtual output and of
// the stride-1 convolution (group 1) that reads it (convUnit.fused), when the convolution is the
// output's only reader and the next unit after the BatchNormalization, so no backward kernel runs
// between the two and every gradient is summed in the same order as without fusion.
func (p *plan) markFused() {
	for i, u := range p.units {
		c, ok := u.(*convUnit)
		if !ok || c.pre == nil || !c.bwd || c.group != 1 || !c.conv.SplitsInputGrad() || i == 0 || p.units[i-1] != unit(c.pre) {
			continue
		}
		v := p.vals[c.x]
		if !v.needGrad || len(v.readers) != 1 {
			continue
		}
		bn := c.pre
		c.fused, bn.fused, v.gradChunked = true, true, true
		c.reads = append(c.reads, bn.x)
		c.bwdGrads = append(c.bwdGrads, bn.x)
		c.dz, c.chunk = p.newBuffer(0, true, true), v.c // sized by sizeChunks
		c.bwdBufs = append(c.bwdBufs, c.dz)
	}
}

// minChunk is the fewest channels a fused convolution computes the input gradient of at once
// (unless it has fewer): each range is one more pass of the product over the output gradient.
const minChunk = 32

// sizeChunks decides, once every buffer's lifetime is known, where the fused convolutions
// compute the gradient of their virtual input. When the BatchNormalization's own input gradient
// is a whole buffer that nothing has written yet in the step (DenseNet's transitions, and the
// second BatchNormalization of a dense layer, whose input is the bottleneck's output), the
// gradient goes straight there and the BatchNormalization runs in place, needing no memory
// (inPlace). Otherwise it goes to dz, which takes the fewest equal channel ranges (at least
// minChunk channels each) with which it does not raise the peak of live arena memory: ranges
// cost a product pass each, so only the convolutions whose whole gradient would set a new peak
// split it (in DenseNet-BC-100, the last layers of the first dense blocks).
func (p *plan) sizeChunks() {
	var fused []*convUnit
	U := len(p.units)
	for i, u := range p.units {
		c, ok := u.(*convUnit)
		if !ok || !c.fused {
			continue
		}
		xv := p.vals[c.pre.x]
		if xv.needGrad && xv.gbuf >= 0 {
			gb := p.bufs[xv.gbuf]
			c.inPlace = xv.goff == 0 && xv.size == gb.size && gb.first == 2*U-i
		}
		if !c.inPlace {
			fused = append(fused, c)
		}
	}
	if len(fused) == 0 {
		return
	}
	live := make([]int64, 2*U+2)
	for _, b := range p.bufs {
		for t := b.first; t <= b.last; t++ {
			live[t] += int64(b.size)
		}
	}
	peak := slices.Max(live)
	for _, c := range fused {
		b := p.bufs[c.dz]
		x := p.vals[c.x]
		if b.first > b.last {
			continue
		}
		var at int64 // dz lives in one backward step, but the rule holds for any lifetime
		for t := b.first; t <= b.last; t++ {
			at = max(at, live[t])
		}
		ch := x.c
		for k := 2; ch > minChunk && at+int64(ch*x.cs) > peak; k++ {
			ch = max((x.c+k-1)/k, min(x.c, minChunk))
		}
		c.chunk = ch
		b.size = ch * x.cs
		for t := b.first; t <= b.last; t++ {
			live[t] += int64(b.size)
		}
	}
}

// newBuffer appends a buffer of size floats and returns its id.
func (p *plan) newBuffer(size int, grad, transient bool) int {
	p.bufs = append(p.bufs, &buffer{size: size, grad: grad, transient: transient, first: 1 << 30, last: -1})
	return len(p.bufs) - 1
}

// place gives every activation its storage: views for in-place concatenations and aliases, a
// buffer of its own otherwise; then gradients, mirroring the activation buffers.
func (p *plan) place() error {
	if p.memEff {
		p.placeConcats()
	}
	in := p.vals[p.input]
	in.buf, in.off = p.newBuffer(in.size, false, false), 0
	for _, u := range p.units {
		src, shares := sharedInput(u)
		for _, o := range u.base().out {
			if o < 0 {
				continue
			}
			v := p.vals[o]
			if v.buf >= 0 || v.virtual {
				continue
			}
			if shares {
				x := p.vals[src]
				v.buf, v.off = x.buf, x.off
				continue
			}
			v.buf, v.off = p.newBuffer(v.size, false, false), 0
		}
	}
	// Channel length per buffer, for the statistics cache.
	for _, b := range p.bufs {
		b.chanLen = -1
	}
	for _, v := range p.vals {
		if v.buf < 0 || !v.cm {
			continue
		}
		b := p.bufs[v.buf]
		l := v.cs
		switch {
		case v.off%l != 0 || b.size%l != 0:
			b.chanLen = 0
		case b.chanLen == -1:
			b.chanLen = l
		case b.chanLen != l:
			b.chanLen = 0
		}
	}
	for _, b := range p.bufs {
		b.chanLen = max(b.chanLen, 0)
	}
	// Gradients: a mirror buffer per activation buffer, a buffer of its own per virtual value.
	mirror := map[int]int{}
	for _, v := range p.vals {
		if !v.needGrad || v.kind != vAct {
			continue
		}
		if v.gradChunked {
			continue
		}
		if v.virtual {
			v.gbuf, v.goff = p.newBuffer(v.size, true, false), 0
			continue
		}
		if v.buf < 0 {
			return fmt.Errorf("%w: value %q has no storage", ErrGraph, v.name)
		}
		gb, ok := mirror[v.buf]
		if !ok {
			gb = p.newBuffer(p.bufs[v.buf].size, true, false)
			mirror[v.buf] = gb
		}
		v.gbuf, v.goff = gb, v.off
	}
	return nil
}

// placeConcats lays out channel concatenations without copies (plan.PlaceConcats, the planning
// core's dense-block layout, shared with inference): each dense block is one buffer that its
// layers write their features into, and a concatenation whose inputs all landed in place is a
// view (nothing to copy forward, nothing to split backward).
func (p *plan) placeConcats() {
	var cs []inferplan.Concat
	var units []*concatUnit
	for _, u := range p.units {
		if cu, ok := u.(*concatUnit); ok && cu.channelMajor(p) {
			cs = append(cs, inferplan.Concat{Out: cu.y, Ins: cu.xs})
			units = append(units, cu)
		}
	}
	l := cmLayout{p}
	inferplan.PlaceConcats(cs, l)
	for i, cu := range units {
		cu.view = len(inferplan.ConcatCopies(cs[i], l)) == 0
	}
}

// cmLayout is the trainer's storage as plan.PlaceConcats sees it: channel-major values, so a
// channel slice of a concatenation is one contiguous run of its buffer.
type cmLayout struct{ p *plan }

func (l cmLayout) Where(id int) (buf, off, key int) {
	v := l.p.vals[id]
	return v.buf, v.off, 0
}

func (l cmLayout) Extent(id int) int     { return l.p.vals[id].size }
func (l cmLayout) Placeable(id int) bool { return l.p.placeable(id) }
func (l cmLayout) Own(id int) {
	l.p.vals[id].buf, l.p.vals[id].off = l.p.newBuffer(l.p.vals[id].size, false, false), 0
}
func (l cmLayout) PlaceIn(id, out, off int) { l.p.placeAt(id, l.p.vals[out].buf, off) }

func (l cmLayout) View(out, first int) bool {
	v0, o := l.p.vals[first], l.p.vals[out]
	o.buf, o.off = v0.buf, v0.off
	return true
}

// placeable reports whether value id may be stored inside another value's buffer: it is
// computed by a unit that writes it (not an alias, a view or a virtual value) and is not a graph
// output. The output of an in-place Dropout is placeable when its input is: the two move together
// (placeAt), so a dense layer's dropped-out features still land in the block's buffer.
func (p *plan) placeable(id int) bool {
	v := p.vals[id]
	if v.kind != vAct || v.virtual || v.graphOut || v.prod < 0 {
		return false
	}
	switch u := p.units[v.prod].(type) {
	case *aliasUnit:
		return false
	case *concatUnit:
		return false
	case *dropoutUnit:
		if u.inPlace {
			return p.vals[u.x].buf < 0 && p.placeable(u.x)
		}
		return true
	default:
		for _, o := range u.base().out {
			if o >= 0 && o != id && p.vals[o].buf >= 0 {
				return false
			}
		}
	}
	return true
}

// placeAt stores value id at offset off of buffer b, together with the input of the in-place
// Dropout that produces it, if any (they share storage).
func (p *plan) placeAt(id, b, off int) {
	v := p.vals[id]
	v.buf, v.off = b, off
	if d, ok := p.units[v.prod].(*dropoutUnit); ok && d.inPlace {
		p.placeAt(d.x, b, off)
	}
}

// sharedInput returns the input whose storage unit u's output is, if any: an alias's, or an
// in-place Dropout's.
func sharedInput(u unit) (int, bool) {
	switch u := u.(type) {
	case *aliasUnit:
		return u.x, true
	case *dropoutUnit:
		return u.x, u.inPlace
	}
	return -1, false
}

// storageBuf returns the buffer holding value id's data for lifetime purposes: for a virtual
// value, the buffer of the BatchNormalization input it is recomputed from.
func (p *plan) storageBuf(id int) int {
	v := p.vals[id]
	if v.virtual {
		return p.storageBuf(p.units[v.prod].(*bnUnit).x)
	}
	return v.buf
}

// allocate computes lifetimes, arena offsets and the peak activation memory, and sizes the
// kernel scratch.
func (p *plan) allocate() {
	U := len(p.units)
	use := func(b, t int) {
		if b < 0 {
			return
		}
		bf := p.bufs[b]
		bf.first, bf.last = min(bf.first, t), max(bf.last, t)
	}
	useVal := func(id, t int) {
		if id >= 0 {
			use(p.storageBuf(id), t)
		}
	}
	useGrad := func(id, t int) {
		if id >= 0 && p.vals[id].needGrad {
			use(p.vals[id].gbuf, t)
		}
	}
	useVal(p.input, 0)
	for i, u := range p.units {
		b := u.base()
		for _, v := range b.in {
			useVal(v, i)
		}
		for _, v := range b.out {
			useVal(v, i)
		}
		if !b.bwd {
			continue
		}
		tb := 2*U - i
		for _, v := range b.reads {
			useVal(v, tb)
		}
		for _, v := range b.out {
			useGrad(v, tb)
		}
		for _, v := range b.in {
			useGrad(v, tb)
		}
		for _, v := range b.bwdGrads {
			useGrad(v, tb)
		}
		for _, x := range b.bwdBufs {
			use(x, tb)
		}
	}
	useVal(p.output, U)
	useGrad(p.output, U)
	p.sizeChunks()

	// Peak of live activation memory.
	delta := make([]int64, 2*U+2)
	for _, b := range p.bufs {
		if b.grad || b.first > b.last {
			continue
		}
		delta[b.first] += int64(b.size)
		delta[b.last+1] -= int64(b.size)
	}
	var live int64
	for _, d := range delta {
		live += d
		p.actBytes = max(p.actBytes, 4*live)
	}

	// Arena offsets: the planning core's packing by lifetime (plan.Pack).
	spans := make([]inferplan.Span, len(p.bufs))
	for i, b := range p.bufs {
		spans[i] = inferplan.Span{Size: b.size, First: b.first, Last: b.last}
	}
	offs, size := inferplan.Pack(spans)
	for i, b := range p.bufs {
		b.off = offs[i]
	}
	p.arena = size
	p.totalBytes = 4 * int64(p.arena)

	need := 0
	for _, u := range p.units {
		if c, ok := u.(*convUnit); ok {
			need = max(need, c.conv.ScratchSize(p.threads))
		}
	}
	p.scratch = make([]float32, need)
}

// newUnit builds the unit of node n.
func (p *plan) newUnit(t *Trainer, k device.TrainingKernels, n *graph.Node, in, out []int, absorbed map[*graph.Node]bool, id func(*graph.Value) (int, error)) (unit, error) {
	if ops.NormalizeDomain(n.Domain) != "" {
		return nil, fmt.Errorf("%w: %s cannot be trained (domain %q)", ops.ErrUnsupportedOp, n, n.Domain)
	}
	base := unitBase{node: n, in: in, out: out}
	used := func(i int) bool { return i < len(out) && out[i] >= 0 && len(n.Outputs[i].Consumers) > 0 }
	for i := 1; i < len(out); i++ {
		if used(i) {
			return nil, fmt.Errorf("%w: %s: output %d (%q) is read by another node; training supports only the first output", ops.ErrUnsupportedOp, n, i, n.Outputs[i].Name)
		}
	}
	for i := 1; i < len(out); i++ {
		base.out[i] = -1
	}
	tr := lookupTrainable(n.OpType)
	if tr == nil {
		return nil, unsupportedOp(n)
	}
	u, err := tr.build(p, &unitCtx{t: t, k: k, base: base, absorbed: absorbed, id: id})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n, err)
	}
	return u, nil
}

// act returns value id, checking that it is a float32 activation or input of the given rank
// range.
func (p *plan) act(id int, what string, minRank, maxRank int) (*val, error) {
	if id < 0 {
		return nil, fmt.Errorf("%w: %s is missing", ErrGraph, what)
	}
	v := p.vals[id]
	if v.kind != vAct && v.kind != vInput {
		return nil, fmt.Errorf("%w: %s %q is a constant; training needs it computed from the input", ops.ErrUnsupportedOp, what, v.name)
	}
	if len(v.shape) < minRank || len(v.shape) > maxRank {
		return nil, fmt.Errorf("%w: %s %q has shape %v", ops.ErrShape, what, v.name, v.shape)
	}
	return v, nil
}

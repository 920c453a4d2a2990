package plan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ErrNotPlannable is returned by Compile when a float32 value has no static shape for the given
// inputs (a shape computed from data at run time) or is empty; such graphs run on the reference
// executor.
var ErrNotPlannable = errors.New("graph cannot be planned statically")

// storage says where a value lives during a run.
type storage uint8

const (
	inArena   storage = iota // float32 with a static shape: a region of the arena
	isConst                  // an initializer
	isDynamic                // anything else: a tensor held per run
)

// value is the plan's record of one graph value.
type value struct {
	v       *graph.Value
	kind    storage
	shape   tensor.Shape
	size    int // elements
	buf     int // buffer index (inArena)
	off     int // floats from the buffer start
	bstride int // floats between batch items when placed inside a concat buffer; 0 = dense
	dyn     int // index in runState.dyn (isDynamic)
	konst   *tensor.Tensor
	aliasOf int // value id this one shares storage with (-1: none)
}

// dense reports whether the value's elements are contiguous.
func (v *value) dense() bool { return v.bstride == 0 || len(v.shape) == 0 || v.shape[0] <= 1 }

// batchStride returns the floats between batch items.
func (v *value) batchStride() int {
	if v.bstride != 0 {
		return v.bstride
	}
	if len(v.shape) == 0 || v.shape[0] == 0 {
		return v.size
	}
	return v.size / v.shape[0]
}

// buffer is one region of the arena: a standalone value, or a concat buffer holding several.
type buffer struct {
	size        int
	first, last int // live from step first (written) to step last (read); -1 / len(steps) at the ends
	offset      int
}

// step is one compiled node.
type step interface {
	run(st *runState) error
	// describe says how the step runs its node, for Steps.
	describe() stepDesc
}

// Plan is a graph compiled for fixed input shapes. Run may be called from many goroutines.
type Plan struct {
	g           *graph.Graph
	values      []value
	ids         map[*graph.Value]int
	steps       []step
	nodes       []*graph.Node // node of each step, for errors
	bufs        []buffer
	inputs      []int
	outputs     []int
	ndyn        int
	arenaSize   int
	scratchSize int
	workers     *cpu.Workers
	states      sync.Pool
	folded      map[*graph.Node]bool // nodes computed at compile time
	cache       *KernelCache
	budget      membudget.Budget
}

// runState is the per-run memory: the arena, kernel scratch and dynamic values.
type runState struct {
	arena   []float32
	scratch []float32
	dyn     []*tensor.Tensor
	wg      sync.WaitGroup
}

// Stats describes a compiled plan.
type Stats struct {
	ArenaBytes   int64 // peak activation memory: the arena
	ScratchBytes int64 // kernel scratch (packed panels and the like)
	Steps        int
	FastSteps    int // steps run by runtime/kernels/cpu kernels or resolved at compile time
	Buffers      int
	// UnplannedBytes adds up every arena value as if each had its own buffer: the memory a
	// runtime without liveness sharing and in-place concatenation would need.
	UnplannedBytes int64
}

// KernelCache keeps the kernels whose construction is expensive (packed convolution weights) per
// node, so that the plans of one graph for several input shapes share them. Safe for concurrent
// use; the zero value is ready.
type KernelCache struct {
	mu    sync.Mutex
	convs map[*graph.Node]*cpu.Conv2D
}

// conv returns the cached convolution of n, building it with make on first use.
func (c *KernelCache) conv(n *graph.Node, make func() (*cpu.Conv2D, error)) (*cpu.Conv2D, error) {
	if c == nil {
		return make()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.convs[n]; ok {
		return k, nil
	}
	k, err := make()
	if err != nil {
		return nil, err
	}
	if c.convs == nil {
		c.convs = map[*graph.Node]*cpu.Conv2D{}
	}
	c.convs[n] = k
	return k, nil
}

// Compile plans g for inputs of the given shapes (one per g.Inputs entry). workers supplies the
// threads and must outlive the plan; cache (may be nil) shares packed kernels between the plans
// of one graph. Every planned value, the activation arena with the kernels' scratch, every value
// computed at compile time and every value a reference kernel makes at run time must fit budget
// (errors wrap membudget.ErrOverBudget and name the node or value).
func Compile(g *graph.Graph, shapes []tensor.Shape, workers *cpu.Workers, cache *KernelCache, budget membudget.Budget) (*Plan, error) {
	if len(shapes) != len(g.Inputs) {
		return nil, fmt.Errorf("plan: %d input shapes for %d inputs", len(shapes), len(g.Inputs))
	}
	p := &Plan{g: g, ids: map[*graph.Value]int{}, workers: workers, cache: cache, budget: budget}
	if err := p.inferTypes(shapes); err != nil {
		return nil, err
	}
	p.placeConcats()
	if err := p.buildSteps(); err != nil {
		return nil, err
	}
	p.assignOffsets()
	// A run holds the arena, the kernels' scratch and the outputs Run allocates: they must fit
	// together.
	need := 4 * (int64(p.arenaSize) + int64(p.scratchSize))
	for _, id := range p.outputs {
		if v := &p.values[id]; v.kind == inArena {
			need += 4 * int64(v.size)
		}
	}
	what := fmt.Sprintf("a run of the plan for inputs %s (activation arena, kernel scratch and outputs)", shapeList(shapes))
	if err := budget.CheckBytes(what, need); err != nil {
		return nil, err
	}
	return p, nil
}

// mustID returns the id of a value registered by inferTypes.
func (p *Plan) mustID(v *graph.Value) int {
	id, ok := p.ids[v]
	if !ok {
		panic("plan: value " + v.Name + " was not registered")
	}
	return id
}

// id returns the value id of v, registering it on first use.
func (p *Plan) id(v *graph.Value) int {
	if id, ok := p.ids[v]; ok {
		return id
	}
	id := len(p.values)
	p.ids[v] = id
	p.values = append(p.values, value{v: v, aliasOf: -1, buf: -1})
	return id
}

// maxFoldElements caps the size of a value computed at compile time (a constant subgraph).
const maxFoldElements = 1 << 24

// inferTypes gives every value its concrete type and storage class. Values that can be known at
// compile time (initializers, Constant nodes, Shape of a static value, and any node whose inputs
// are all known) are computed here with the reference kernels and become constants: their nodes
// cost nothing at run time.
func (p *Plan) inferTypes(shapes []tensor.Shape) error {
	kernels := ref.Kernels()
	known := map[*graph.Value]*tensor.Tensor{}
	p.folded = map[*graph.Node]bool{}
	setType := func(v *graph.Value, t ops.Type) error {
		id := p.id(v)
		val := &p.values[id]
		if c := known[v]; c != nil {
			val.kind = isConst
			val.konst = c
			val.shape = c.Shape
			return nil
		}
		if t.DType == tensor.Float32 {
			s, ok := t.Static()
			if !ok {
				return fmt.Errorf("%w: value %q has type %s", ErrNotPlannable, v.Name, t)
			}
			if s.Size() == 0 {
				// The fast kernels and the in-place concatenation are written for data; an
				// empty value has none to compute, and the reference kernels handle it.
				return fmt.Errorf("%w: value %q is empty (%s)", ErrNotPlannable, v.Name, t)
			}
			if v.Producer == nil {
				if err := p.budget.Check(fmt.Sprintf("input %q", v.Name), t.DType, s); err != nil {
					return err
				}
			} else if err := p.budget.Check(fmt.Sprintf("output %q", v.Name), t.DType, s); err != nil {
				return fmt.Errorf("%s: %w", v.Producer, err)
			}
			val.kind = inArena
			val.shape = s
			val.size = s.Size()
			return nil
		}
		val.kind = isDynamic
		val.dyn = p.ndyn
		p.ndyn++
		return nil
	}
	types := map[*graph.Value]ops.Type{}
	for i, v := range p.g.Inputs {
		t := ops.Type{DType: v.Type.DType, Shape: ops.DimsOf(shapes[i])}
		types[v] = t
		p.inputs = append(p.inputs, p.id(v))
		if err := setType(v, t); err != nil {
			return err
		}
	}
	for _, v := range p.g.Initializers {
		known[v] = v.Const
		types[v] = ops.TypeOf(v.Const)
		if err := setType(v, types[v]); err != nil {
			return err
		}
	}
	for _, n := range p.g.Nodes {
		args := make([]*ops.Arg, len(n.Inputs))
		allKnown := ops.NormalizeDomain(n.Domain) == ""
		for k, v := range n.Inputs {
			if v == nil {
				continue
			}
			t, ok := types[v]
			if !ok {
				return fmt.Errorf("plan: %s reads %q before it is produced", n, v.Name)
			}
			args[k] = &ops.Arg{Type: t, Const: known[v]}
			if known[v] == nil {
				allKnown = false
			}
		}
		out, err := ops.InferChecked(n.Op, args)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if len(out) < len(n.Outputs) {
			return fmt.Errorf("%s: inference gave %d types for %d outputs", n, len(out), len(n.Outputs))
		}
		if shp, isShape := n.Op.(*ops.Shape); isShape && args[0] != nil {
			if s, ok := args[0].Type.Static(); ok { // the shape of a static value is a constant
				lo, hi := shp.Range(len(s))
				dims := make([]int64, 0, hi-lo)
				for _, d := range s[lo:hi] {
					dims = append(dims, int64(d))
				}
				known[n.Outputs[0]] = tensor.FromSlice(tensor.Shape{len(dims)}, dims)
				p.folded[n] = true
			}
		} else if k := kernels[n.OpType]; allKnown && k != nil && foldable(out) {
			in := make([]*tensor.Tensor, len(n.Inputs))
			for i, v := range n.Inputs {
				if v != nil {
					in[i] = known[v]
				}
			}
			res, err := ref.Checked(p.budget, k, n.Op, in, len(n.Outputs), n.OutputNames())
			if errors.Is(err, membudget.ErrOverBudget) {
				return fmt.Errorf("%s: %w", n, err)
			}
			if err == nil && len(res) >= len(n.Outputs) {
				for i, v := range n.Outputs {
					if v != nil {
						known[v] = res[i]
					}
				}
				p.folded[n] = true
			}
		}
		for k, v := range n.Outputs {
			if v == nil {
				continue
			}
			t := out[k]
			if c := known[v]; c != nil {
				t = ops.TypeOf(c)
			}
			types[v] = t
			if err := setType(v, t); err != nil {
				return err
			}
		}
	}
	for _, v := range p.g.Outputs {
		id, ok := p.ids[v]
		if !ok {
			if c := known[v]; c != nil { // an initializer returned as an output
				id = p.id(v)
				p.values[id].kind, p.values[id].konst, p.values[id].shape = isConst, c, c.Shape
			} else {
				return fmt.Errorf("plan: output %q is never produced", v.Name)
			}
		}
		p.outputs = append(p.outputs, id)
	}
	return nil
}

// foldable reports whether outputs of these types are small enough to compute at compile time.
func foldable(types []ops.Type) bool {
	for _, t := range types {
		s, ok := t.Static()
		if !ok || s.Size() > maxFoldElements {
			return false
		}
	}
	return true
}

// isGraphOutput reports whether value id is a graph output.
func (p *Plan) isGraphOutput(id int) bool {
	for _, o := range p.outputs {
		if o == id {
			return true
		}
	}
	return false
}

// Stats reports the plan's memory and kernel use.
func (p *Plan) Stats() Stats {
	s := Stats{ArenaBytes: int64(p.arenaSize) * 4, ScratchBytes: int64(p.scratchSize) * 4,
		Steps: len(p.steps), Buffers: len(p.bufs)}
	for _, st := range p.steps {
		if _, slow := st.(*refStep); !slow {
			s.FastSteps++
		}
	}
	for _, v := range p.values {
		if v.kind == inArena {
			s.UnplannedBytes += int64(v.size) * 4
		}
	}
	return s
}

// assignOffsets computes buffer lifetimes and packs them into the arena: largest first, each at
// the lowest offset that does not overlap a buffer live at the same time.
func (p *Plan) assignOffsets() {
	for i := range p.bufs {
		p.bufs[i].first, p.bufs[i].last = len(p.steps), -1
	}
	touch := func(id, step int) {
		val := &p.values[id]
		if val.kind != inArena {
			return
		}
		b := &p.bufs[val.buf]
		b.first = min(b.first, step)
		b.last = max(b.last, step)
	}
	for _, id := range p.inputs {
		touch(id, -1)
	}
	for i, n := range p.nodes {
		for _, v := range n.Inputs {
			if v != nil {
				touch(p.mustID(v), i)
			}
		}
		for _, v := range n.Outputs {
			if v != nil {
				touch(p.mustID(v), i)
			}
		}
	}
	for _, id := range p.outputs {
		touch(id, len(p.steps))
	}
	order := make([]int, len(p.bufs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p.bufs[order[a]].size > p.bufs[order[b]].size })
	var placed []int
	for _, i := range order {
		b := &p.bufs[i]
		if b.last < b.first { // never used
			continue
		}
		// candidate offsets: 0 and the end of every live-overlapping placed buffer
		type span struct{ lo, hi int }
		var busy []span
		for _, j := range placed {
			o := &p.bufs[j]
			if o.first <= b.last && b.first <= o.last {
				busy = append(busy, span{o.offset, o.offset + o.size})
			}
		}
		sort.Slice(busy, func(a, c int) bool { return busy[a].lo < busy[c].lo })
		off := 0
		for _, s := range busy {
			if off+b.size <= s.lo {
				break
			}
			off = max(off, s.hi)
		}
		b.offset = off
		p.arenaSize = max(p.arenaSize, off+b.size)
		placed = append(placed, i)
	}
}

// newBuffer allocates a buffer for value id alone.
func (p *Plan) newBuffer(id int) {
	p.values[id].buf = len(p.bufs)
	p.values[id].off = 0
	p.bufs = append(p.bufs, buffer{size: p.values[id].size})
}

// Run executes the plan on inputs of exactly the compiled shapes and returns new output tensors.
func (p *Plan) Run(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	outs := make([]*tensor.Tensor, len(p.outputs))
	for i, id := range p.outputs {
		v := &p.values[id]
		if v.kind == inArena {
			outs[i] = tensor.New(tensor.Float32, v.shape)
		}
	}
	if err := p.RunInto(ctx, inputs, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// RunInto executes the plan and writes float32 outputs into outs (preallocated with the planned
// shapes: no allocation at all for a fully fast plan); other outputs are stored into outs.
func (p *Plan) RunInto(ctx context.Context, inputs, outs []*tensor.Tensor) error {
	if len(inputs) != len(p.inputs) {
		return fmt.Errorf("plan: %d inputs, want %d", len(inputs), len(p.inputs))
	}
	if len(outs) != len(p.outputs) {
		return fmt.Errorf("plan: %d output slots, want %d", len(outs), len(p.outputs))
	}
	st, _ := p.states.Get().(*runState)
	if st == nil {
		st = &runState{arena: make([]float32, p.arenaSize), scratch: make([]float32, p.scratchSize),
			dyn: make([]*tensor.Tensor, p.ndyn)}
	}
	defer func() {
		clear(st.dyn)
		p.states.Put(st)
	}()
	for i, id := range p.inputs {
		if err := p.store(st, id, inputs[i]); err != nil {
			return fmt.Errorf("input %q: %w", p.values[id].v.Name, err)
		}
	}
	for i, s := range p.steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.run(st); err != nil {
			return fmt.Errorf("%s: %w", p.nodes[i], err)
		}
	}
	for i, id := range p.outputs {
		v := &p.values[id]
		switch v.kind {
		case inArena:
			if outs[i] == nil || outs[i].DType != tensor.Float32 || !outs[i].Shape.Equal(v.shape) {
				return fmt.Errorf("plan: output %d must be a float32 %v tensor", i, v.shape)
			}
			p.gather(st, id, tensor.Data[float32](outs[i]))
		case isConst:
			outs[i] = v.konst.Clone()
		default:
			outs[i] = st.dyn[v.dyn]
		}
	}
	return nil
}

// base returns the arena index of value id's first element.
func (p *Plan) base(id int) int {
	v := &p.values[id]
	return p.bufs[v.buf].offset + v.off
}

// image returns value id as a strided image (N, C, inner) for rank >= 2 values; rank-4 values
// keep H and W.
func (p *Plan) image(st *runState, id int) cpu.Image {
	v := &p.values[id]
	n, c, h, w := 1, 1, 1, 1
	switch len(v.shape) {
	case 0:
	case 1:
		c = v.shape[0]
	case 4:
		n, c, h, w = v.shape[0], v.shape[1], v.shape[2], v.shape[3]
	default:
		n, c = v.shape[0], v.shape[1]
		for _, d := range v.shape[2:] {
			h *= d
		}
	}
	bs := v.bstride
	if bs == 0 {
		bs = c * h * w
	}
	b := p.base(id)
	end := b + (n-1)*bs + c*h*w
	if n == 0 {
		end = b
	}
	return cpu.Image{Data: st.arena[b:end:end], N: n, C: c, H: h, W: w, BatchStride: bs}
}

// gather copies value id into dst (dense).
func (p *Plan) gather(st *runState, id int, dst []float32) {
	v := &p.values[id]
	if v.dense() {
		b := p.base(id)
		copy(dst, st.arena[b:b+v.size])
		return
	}
	im := p.image(st, id)
	per := im.C * im.H * im.W
	for n := 0; n < im.N; n++ {
		copy(dst[n*per:(n+1)*per], im.Item(n))
	}
}

// tensorOf returns value id as a tensor for a reference kernel: constants and dynamic values as
// they are, dense arena values sharing arena memory, strided ones gathered into a copy.
func (p *Plan) tensorOf(st *runState, id int) *tensor.Tensor {
	v := &p.values[id]
	switch v.kind {
	case isConst:
		return v.konst
	case isDynamic:
		return st.dyn[v.dyn]
	}
	if v.dense() {
		b := p.base(id)
		return &tensor.Tensor{DType: tensor.Float32, Shape: v.shape, Data: st.arena[b : b+v.size : b+v.size]}
	}
	out := make([]float32, v.size)
	p.gather(st, id, out)
	return &tensor.Tensor{DType: tensor.Float32, Shape: v.shape, Data: out}
}

// store writes t into value id's storage, checking it has the planned type.
func (p *Plan) store(st *runState, id int, t *tensor.Tensor) error {
	v := &p.values[id]
	if t == nil {
		return errors.New("missing tensor")
	}
	switch v.kind {
	case isDynamic:
		st.dyn[v.dyn] = t
		return nil
	case isConst:
		return errors.New("cannot overwrite a constant")
	}
	if t.DType != tensor.Float32 || !t.Shape.Equal(v.shape) {
		return fmt.Errorf("got %s %v, planned float32 %v", t.DType, t.Shape, v.shape)
	}
	src := tensor.Data[float32](t)
	if v.dense() {
		b := p.base(id)
		copy(st.arena[b:b+v.size], src)
		return nil
	}
	im := p.image(st, id)
	per := im.C * im.H * im.W
	for n := 0; n < im.N; n++ {
		copy(im.Item(n), src[n*per:(n+1)*per])
	}
	return nil
}

// refStep runs a node's reference kernel on arena-backed tensors.
type refStep struct {
	p      *Plan
	node   *graph.Node
	kernel ref.Kernel
	in     []int // value ids, -1 for absent
	out    []int
	why    string // why no fast kernel runs the node (StepInfo.Why)
}

func (s *refStep) describe() stepDesc { return stepDesc{kernel: KernelReference, why: s.why} }

func (s *refStep) run(st *runState) error {
	in := make([]*tensor.Tensor, len(s.in))
	for k, id := range s.in {
		if id >= 0 {
			in[k] = s.p.tensorOf(st, id)
		}
	}
	out, err := ref.Checked(s.p.budget, s.kernel, s.node.Op, in, len(s.out), s.node.OutputNames())
	if err != nil {
		return err
	}
	if len(out) < len(s.out) {
		return fmt.Errorf("kernel returned %d outputs, want %d", len(out), len(s.out))
	}
	for k, id := range s.out {
		if id < 0 {
			continue
		}
		if err := s.p.store(st, id, out[k]); err != nil {
			return fmt.Errorf("output %d: %w", k, err)
		}
	}
	return nil
}

// nopStep is a node resolved at compile time: kernel is KernelFolded, KernelAlias or
// KernelConcatInPlace.
type nopStep struct{ kernel string }

func (nopStep) run(*runState) error { return nil }

func (s nopStep) describe() stepDesc { return stepDesc{kernel: s.kernel} }

// shapeList formats input shapes for messages: [1,3,224,224] and [1,10].
func shapeList(shapes []tensor.Shape) string {
	parts := make([]string, len(shapes))
	for i, s := range shapes {
		dims := make([]string, len(s))
		for k, d := range s {
			dims[k] = strconv.Itoa(d)
		}
		parts[i] = "[" + strings.Join(dims, ",") + "]"
	}
	return strings.Join(parts, " and ")
}

package plan

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/membudget"
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
	run(p *Plan, st *runState) error
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
	dev         device.Device
	// free holds the run memories not in use. It is a plain list, not a sync.Pool: a pool drops
	// its items at every garbage collection and cannot hand a goroutine the item another
	// processor put last, so a server running batches in lanes allocated a new arena (26 MiB for
	// DenseNet-121 at 4 rows) every few runs, and its heap after each collection climbed in
	// such steps from 180 to 290 MiB and back. The list keeps as many memories as runs have
	// ever overlapped, for the plan's life.
	mu     sync.Mutex
	free   []*runState
	types  *Types // inferred types and compile-time values
	budget membudget.Budget
}

// runState is the per-run memory: the device memory (arena and kernel scratch) and the dynamic
// values.
type runState struct {
	mem device.Memory
	dyn []*tensor.Tensor
}

// Stats describes a compiled plan.
type Stats struct {
	ArenaBytes   int64 // peak activation memory: the arena
	ScratchBytes int64 // kernel scratch (packed panels and the like)
	Steps        int
	FastSteps    int // steps run by the device's kernels or resolved at compile time
	Buffers      int
	// UnplannedBytes adds up every arena value as if each had its own buffer: the memory a
	// runtime without liveness sharing and in-place concatenation would need.
	UnplannedBytes int64
}

// Compile plans g for inputs of the given shapes (one per g.Inputs entry) on dev, which must
// outlive the plan. Planning is device-independent up to the last stage: types and constant
// folding (Infer), storage (aliases, in-place concatenation: PlaceConcats), arena offsets from
// lifetimes (Pack); then each node is lowered onto one of dev's kernels (Device.Lower), or its
// reference kernel where dev has none. Every planned value, the arena with the kernels' scratch,
// every value computed at compile time and every value a reference kernel makes at run time must
// fit budget (errors wrap membudget.ErrOverBudget and name the node or value).
func Compile(g *graph.Graph, shapes []tensor.Shape, dev device.Device, budget membudget.Budget) (*Plan, error) {
	if len(shapes) != len(g.Inputs) {
		return nil, fmt.Errorf("plan: %d input shapes for %d inputs", len(shapes), len(g.Inputs))
	}
	p := &Plan{g: g, ids: map[*graph.Value]int{}, dev: dev, budget: budget}
	if err := p.inferTypes(shapes); err != nil {
		return nil, err
	}
	p.placeConcats()
	p.placeValues()
	p.assignOffsets()
	if err := p.lower(); err != nil {
		return nil, err
	}
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

// inferTypes gives every value its concrete type and storage class (Infer): values known at
// compile time become constants, and their nodes cost nothing at run time.
func (p *Plan) inferTypes(shapes []tensor.Shape) error {
	ts, err := Infer(p.g, shapes, p.budget, InferOptions{})
	if err != nil {
		return err
	}
	p.types = ts
	setType := func(v *graph.Value) error {
		id := p.id(v)
		val := &p.values[id]
		if c := ts.Known[v]; c != nil {
			val.kind = isConst
			val.konst = c
			val.shape = c.Shape
			return nil
		}
		t := ts.Type[v]
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
	for _, v := range p.g.Inputs {
		p.inputs = append(p.inputs, p.id(v))
		if err := setType(v); err != nil {
			return err
		}
	}
	for _, v := range p.g.Initializers {
		if err := setType(v); err != nil {
			return err
		}
	}
	for _, n := range p.g.Nodes {
		for _, v := range n.Outputs {
			if v == nil {
				continue
			}
			if err := setType(v); err != nil {
				return err
			}
		}
	}
	for _, v := range p.g.Outputs {
		id, ok := p.ids[v]
		if !ok {
			return fmt.Errorf("plan: output %q is never produced", v.Name)
		}
		p.outputs = append(p.outputs, id)
	}
	return nil
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

// assignOffsets computes buffer lifetimes (first write to last read, in steps) and packs them
// into the arena (Pack).
func (p *Plan) assignOffsets() {
	spans := make([]Span, len(p.bufs))
	for i := range spans {
		spans[i] = Span{Size: p.bufs[i].size, First: len(p.g.Nodes), Last: -1}
	}
	touch := func(id, step int) {
		val := &p.values[id]
		if val.kind != inArena {
			return
		}
		s := &spans[val.buf]
		s.First = min(s.First, step)
		s.Last = max(s.Last, step)
	}
	for _, id := range p.inputs {
		touch(id, -1)
	}
	for i, n := range p.g.Nodes {
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
		touch(id, len(p.g.Nodes))
	}
	offs, size := Pack(spans)
	for i := range p.bufs {
		p.bufs[i].first, p.bufs[i].last, p.bufs[i].offset = spans[i].First, spans[i].Last, offs[i]
	}
	p.arenaSize = size
}

// newBuffer allocates a buffer for value id alone.
func (p *Plan) newBuffer(id int) {
	p.values[id].buf = len(p.bufs)
	p.values[id].off = 0
	p.bufs = append(p.bufs, buffer{size: p.values[id].size})
}

// OutputShapes returns the shapes of the plan's outputs when every one is a float32 value the
// run computes in its memory (RunInto then writes each into a tensor the caller gives), else
// ok false: an output that is a constant or of a type only the run decides.
func (p *Plan) OutputShapes() (shapes []tensor.Shape, ok bool) {
	for _, id := range p.outputs {
		v := &p.values[id]
		if v.kind != inArena {
			return nil, false
		}
		shapes = append(shapes, v.shape)
	}
	return shapes, true
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
	st := p.getState()
	if st == nil {
		mem, err := p.dev.NewMemory(p.arenaSize, p.scratchSize)
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		st = &runState{mem: mem, dyn: make([]*tensor.Tensor, p.ndyn)}
	}
	defer func() {
		clear(st.dyn)
		p.putState(st)
	}()
	for i, id := range p.inputs {
		if err := p.store(st, id, inputs[i]); err != nil {
			return fmt.Errorf("input %q: %w", p.values[id].v.Name, err)
		}
	}
	times := stepTimesOf(ctx)
	if times != nil && len(times.Total) != len(p.steps) {
		times.Total, times.Runs = make([]time.Duration, len(p.steps)), 0
	}
	for i, s := range p.steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		var t0 time.Time
		if times != nil {
			t0 = time.Now()
		}
		if err := s.run(p, st); err != nil {
			return fmt.Errorf("%s: %w", p.nodes[i], err)
		}
		if times != nil {
			times.Total[i] += time.Since(t0)
		}
	}
	if times != nil {
		times.Runs++
	}
	for i, id := range p.outputs {
		v := &p.values[id]
		switch v.kind {
		case inArena:
			if outs[i] == nil || outs[i].DType != tensor.Float32 || !outs[i].Shape.Equal(v.shape) {
				return fmt.Errorf("plan: output %d must be a float32 %v tensor", i, v.shape)
			}
			if err := st.mem.Read(p.operand(id), tensor.Data[float32](outs[i])); err != nil {
				return fmt.Errorf("output %q: %w", v.v.Name, err)
			}
		case isConst:
			outs[i] = v.konst.Clone()
		default:
			outs[i] = st.dyn[v.dyn]
		}
	}
	return nil
}

// getState returns a free run memory, or nil.
func (p *Plan) getState() *runState {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		return nil
	}
	st := p.free[n-1]
	p.free = p.free[:n-1]
	return st
}

// putState returns a run memory to the free list.
func (p *Plan) putState(st *runState) {
	p.mu.Lock()
	p.free = append(p.free, st)
	p.mu.Unlock()
}

// base returns the arena index of value id's first element.
func (p *Plan) base(id int) int {
	v := &p.values[id]
	return p.bufs[v.buf].offset + v.off
}

// operand returns where value id lives, as a device kernel sees it.
func (p *Plan) operand(id int) device.Operand {
	if id < 0 {
		return device.Operand{Placement: device.Absent}
	}
	v := &p.values[id]
	switch v.kind {
	case isConst:
		return device.Operand{Placement: device.Constant, Shape: v.konst.Shape, Const: v.konst}
	case isDynamic:
		return device.Operand{Placement: device.OnHost}
	}
	return device.Operand{Placement: device.InMemory, Shape: v.shape, Offset: p.base(id), BatchStride: v.batchStride()}
}

// tensorOf returns value id as a tensor for a reference kernel: constants and dynamic values as
// they are, dense values in host memory sharing it, others copied out.
func (p *Plan) tensorOf(st *runState, id int) (*tensor.Tensor, error) {
	v := &p.values[id]
	switch v.kind {
	case isConst:
		return v.konst, nil
	case isDynamic:
		return st.dyn[v.dyn], nil
	}
	o := p.operand(id)
	if data, ok := st.mem.Host(o); ok {
		return &tensor.Tensor{DType: tensor.Float32, Shape: v.shape, Data: data}, nil
	}
	out := make([]float32, v.size)
	if err := st.mem.Read(o, out); err != nil {
		return nil, err
	}
	return &tensor.Tensor{DType: tensor.Float32, Shape: v.shape, Data: out}, nil
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
	return st.mem.Write(p.operand(id), tensor.Data[float32](t))
}

// refStep runs a node's reference kernel on tensors in host memory.
type refStep struct {
	node   *graph.Node
	kernel ref.Kernel
	in     []int // value ids, -1 for absent
	out    []int
	why    string // why no fast kernel runs the node (StepInfo.Why)
}

func (s *refStep) describe() stepDesc { return stepDesc{kernel: KernelReference, why: s.why} }

func (s *refStep) run(p *Plan, st *runState) error {
	in := make([]*tensor.Tensor, len(s.in))
	for k, id := range s.in {
		if id >= 0 {
			t, err := p.tensorOf(st, id)
			if err != nil {
				return fmt.Errorf("input %d: %w", k, err)
			}
			in[k] = t
		}
	}
	out, err := ref.Checked(p.budget, s.kernel, s.node.Op, in, len(s.out), s.node.OutputNames())
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
		if err := p.store(st, id, out[k]); err != nil {
			return fmt.Errorf("output %d: %w", k, err)
		}
	}
	return nil
}

// nopStep is a node resolved at compile time: kernel is KernelFolded, KernelAlias or
// KernelConcatInPlace.
type nopStep struct{ kernel string }

func (nopStep) run(*Plan, *runState) error { return nil }

// kernelStep runs a device kernel.
type kernelStep struct {
	k   device.Kernel
	why string // for a concat-copy: what is copied
}

func (s kernelStep) run(_ *Plan, st *runState) error { return s.k.Run(st.mem) }

func (s kernelStep) describe() stepDesc {
	info := s.k.Info()
	return stepDesc{kernel: info.Name, code: info.Code, prologue: info.Prologue, epilogue: info.Epilogue, why: s.why}
}

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

package exec

import (
	"context"
	"errors"
	"fmt"

	"sync"
	"sync/atomic"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/devices"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/passes"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ErrInput is wrapped by errors about the tensors a caller feeds: count, dtype, rank, dims.
var ErrInput = errors.New("bad input")

// step is one node resolved to slots.
type step struct {
	node    *graph.Node
	kernel  ref.Kernel
	in      []int // slot per input position, -1 when absent
	out     []int // slot per output position, -1 when absent
	release []int // slots whose last reader is this step
}

// Session is a compiled graph, ready to run.
type Session struct {
	g       *graph.Graph
	opts    Options
	steps   []step
	nslots  int
	consts  map[int]*tensor.Tensor
	inputs  []int
	outputs []int

	dev    device.Device // nil for a reference session
	ownDev bool          // the session opened dev and closes it
	budget membudget.Budget
	mu     sync.Mutex
	plans  map[string]*planEntry // by input shapes (lane plans: by "lane " and the shapes)

	// lanes is the device's when it can split a batch into lanes and the session has several
	// threads; laneDev is its lane device; noLanes says why not. rowsWhy is why the graph's
	// symbolic types do not show it row-independent (plan.RowIndependent; "" when they do): its
	// batches are then checked at their concrete shapes, with the verdicts in rowsAt.
	lanes   device.Lanes
	laneDev device.Device
	noLanes string
	rowsWhy string
	rowsAt  map[string]string
	// running counts the planned runs in progress; a run that starts while another is running
	// runs in a lane of its own (runAlongside).
	running atomic.Int64
}

// maxPlans bounds the plans a Session keeps (one per distinct set of input shapes).
const maxPlans = 16

// planEntry is the plan for one set of input shapes, or the reason there is none.
type planEntry struct {
	plan *plan.Plan
	err  error
}

// Options configure a Session.
type Options struct {
	// Threads is the number of threads kernels split work over; 0 means GOMAXPROCS.
	Threads int
	// Reference runs every node with its reference kernel, one allocation per value, no
	// graph passes and no planning: the oracle the optimized execution is tested against.
	Reference bool
	// NoPasses skips the inference graph passes (BN folding, BN-ReLU-Conv fusion, ...) while
	// still planning; for tests and for measuring what the passes buy.
	NoPasses bool
	// NoSpin makes idle worker threads block at once instead of polling for the next parallel
	// loop: a little slower, but the CPU time polling would take goes to the other processes of a
	// shared machine.
	NoSpin bool
	// Device is the device plans are lowered onto and run on; nil opens the CPU with Threads
	// and NoSpin (package devices). A device given here is the caller's to close, after the
	// session's last run.
	Device device.Device
	// NoLanes never runs in lanes (see Session.Lanes): every batch runs whole, its kernels
	// splitting each operator's work over the threads, and so does every run that starts while
	// others are running. For tests and for measuring what lanes buy.
	NoLanes bool
	// MaxMemory bounds, in bytes, every tensor and activation arena whose size the model or the
	// inputs decide (membudget.Budget): 0 means membudget.Default (a fraction of physical
	// memory), a negative value no bound.
	MaxMemory int64
}

// New prepares g for execution. It fails, naming the node, when an op has no kernel. Unless
// opts.Reference is set, each distinct set of input shapes is compiled into a plan (static
// memory layout, fast kernels) on first use; graphs that cannot be planned statically run on
// the reference path.
//
// Unless opts.Reference or opts.NoPasses is set, New runs passes.Inference() on a clone of g;
// g itself is never modified, and Graph() returns the graph actually run.
func New(g *graph.Graph, opts ...Options) (*Session, error) {
	kernels := ref.Kernels()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if !o.Reference && !o.NoPasses {
		c, err := g.Clone(ops.Default())
		if err != nil {
			return nil, err
		}
		if _, err := passes.Inference().Run(c); err != nil {
			return nil, fmt.Errorf("optimizing the graph: %w", err)
		}
		g = c
	}
	s := &Session{g: g, opts: o, consts: map[int]*tensor.Tensor{}, plans: map[string]*planEntry{}, budget: membudget.New(o.MaxMemory)}
	if !s.opts.Reference {
		s.dev = o.Device
		if s.dev == nil {
			dev, err := devices.CPU(devices.Config{Threads: o.Threads, NoSpin: o.NoSpin})
			if err != nil {
				return nil, err
			}
			s.dev, s.ownDev = dev, true
		}
	}
	s.setLanes()
	slot := map[*graph.Value]int{}
	slotOf := func(v *graph.Value) int {
		if id, ok := slot[v]; ok {
			return id
		}
		id := s.nslots
		s.nslots++
		slot[v] = id
		if v.IsConst() {
			s.consts[id] = v.Const
		}
		return id
	}
	for _, v := range g.Inputs {
		s.inputs = append(s.inputs, slotOf(v))
	}
	for _, n := range g.Nodes {
		k, ok := kernels[n.OpType]
		if d := ops.NormalizeDomain(n.Domain); !ok || (d != "" && d != ops.DomainDNX) {
			return nil, fmt.Errorf("%s: %w: no kernel for %s in domain %q", n, ops.ErrUnsupportedOp, n.OpType, n.Domain)
		}
		st := step{node: n, kernel: k}
		for _, v := range n.Inputs {
			id := -1
			if v != nil {
				id = slotOf(v)
			}
			st.in = append(st.in, id)
		}
		for _, v := range n.Outputs {
			id := -1
			if v != nil {
				id = slotOf(v)
			}
			st.out = append(st.out, id)
		}
		s.steps = append(s.steps, st)
	}
	for _, v := range g.Outputs {
		s.outputs = append(s.outputs, slotOf(v))
	}

	// Release each non-constant, non-output slot after its last reader.
	keep := map[int]bool{}
	for _, id := range s.outputs {
		keep[id] = true
	}
	last := map[int]int{}
	for i, st := range s.steps {
		for _, id := range st.in {
			if id >= 0 {
				last[id] = i
			}
		}
		for _, id := range st.out {
			if id >= 0 {
				if _, read := last[id]; !read {
					last[id] = i // an output nobody reads dies where it is made
				}
			}
		}
	}
	for id, i := range last {
		if _, isConst := s.consts[id]; isConst || keep[id] {
			continue
		}
		s.steps[i].release = append(s.steps[i].release, id)
	}
	return s, nil
}

// Graph returns the graph the session runs.
func (s *Session) Graph() *graph.Graph { return s.g }

// Run feeds inputs in the order of Graph().Inputs and returns the outputs in the order of
// Graph().Outputs. Inputs are checked against the declared types: dtype, rank, known dims, and
// symbolic dims that must agree across inputs (every "batch" the same size). Inputs are never
// modified. ctx is checked between nodes.
func (s *Session) Run(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := s.checkInputs(inputs); err != nil {
		return nil, err
	}
	if s.laneDev != nil {
		defer s.running.Add(-1)
		if s.running.Add(1) > 1 {
			if outs, ok, err := s.runAlongside(ctx, inputs); ok {
				return outs, err
			}
		}
	}
	if outs, ok, err := s.runLanes(ctx, inputs); ok {
		return outs, err
	}
	p, err := s.planFor(inputs)
	if err != nil {
		return nil, err
	}
	if p != nil {
		return p.Run(ctx, inputs)
	}
	return s.runReference(ctx, inputs)
}

// Close releases the session's worker threads.
func (s *Session) Close() {
	if s.dev != nil && s.ownDev {
		s.dev.Close()
	}
}

// Plan returns the compiled plan for inputs of the given shapes (compiling it if needed), or an
// error saying why the graph runs on the reference path.
func (s *Session) Plan(shapes []tensor.Shape) (*plan.Plan, error) {
	if s.opts.Reference {
		return nil, errors.New("exec: the session runs reference kernels only")
	}
	return s.compiled(fmt.Sprint(shapes), shapes, s.dev)
}

// compiled returns the plan for shapes on dev, cached under key.
func (s *Session) compiled(key string, shapes []tensor.Shape, dev device.Device) (*plan.Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.plans[key]
	if !ok {
		if len(s.plans) >= maxPlans {
			// A caller cycling through many shapes must not grow memory without bound; the
			// packed kernels stay cached, so recompiling a plan is cheap.
			clear(s.plans)
		}
		p, err := plan.Compile(s.g, shapes, dev, s.budget)
		e = &planEntry{plan: p, err: err}
		s.plans[key] = e
	}
	return e.plan, e.err
}

// planFor returns the plan for the inputs' shapes, or nil when the graph runs on the reference
// path: with Options.Reference, or when the graph cannot be planned statically (values of
// data-dependent shape). Any other compile error, such as a plan over the memory budget, is
// returned: it would fail the reference path too, only later.
func (s *Session) planFor(inputs []*tensor.Tensor) (*plan.Plan, error) {
	if s.opts.Reference {
		return nil, nil
	}
	shapes := make([]tensor.Shape, len(inputs))
	for i, t := range inputs {
		shapes[i] = t.Shape
	}
	p, err := s.Plan(shapes)
	if errors.Is(err, plan.ErrNotPlannable) {
		return nil, nil
	}
	return p, err
}

// runReference runs every node with its reference kernel.
func (s *Session) runReference(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	slots := make([]*tensor.Tensor, s.nslots)
	for id, t := range s.consts {
		slots[id] = t
	}
	for i, id := range s.inputs {
		slots[id] = inputs[i]
	}
	// live is the bytes of the values this run made and still holds: each node's outputs must
	// fit the budget next to them.
	var live int64
	held := make([]int64, s.nslots)
	for i := range s.steps {
		st := &s.steps[i]
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in := make([]*tensor.Tensor, len(st.in))
		for k, id := range st.in {
			if id >= 0 {
				in[k] = slots[id]
			}
		}
		out, err := ref.Checked(s.budget.InUse(live), st.kernel, st.node.Op, in, len(st.out), st.node.OutputNames())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.node, err)
		}
		if len(out) < len(st.out) {
			return nil, fmt.Errorf("%s: kernel returned %d outputs, want %d", st.node, len(out), len(st.out))
		}
		for k, id := range st.out {
			if id < 0 {
				continue
			}
			if err := checkProduced(st.node.Outputs[k], out[k]); err != nil {
				return nil, fmt.Errorf("%s: output %d: %w", st.node, k, err)
			}
			slots[id] = out[k]
			held[id], _ = membudget.Bytes(out[k].DType, out[k].Shape)
			live += held[id]
		}
		for _, id := range st.release {
			slots[id] = nil
			live -= held[id]
			held[id] = 0
		}
	}
	res := make([]*tensor.Tensor, len(s.outputs))
	for i, id := range s.outputs {
		res[i] = slots[id]
	}
	return res, nil
}

// RunNamed feeds inputs by name and returns every graph output by name.
func (s *Session) RunNamed(ctx context.Context, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	list := make([]*tensor.Tensor, len(s.g.Inputs))
	for i, v := range s.g.Inputs {
		t, ok := inputs[v.Name]
		if !ok {
			return nil, fmt.Errorf("%w: input %q is missing", ErrInput, v.Name)
		}
		list[i] = t
	}
	for name := range inputs {
		if v := s.g.Value(name); v == nil || v.Producer != nil || v.IsConst() {
			return nil, fmt.Errorf("%w: the model has no input %q", ErrInput, name)
		}
	}
	out, err := s.Run(ctx, list)
	if err != nil {
		return nil, err
	}
	res := make(map[string]*tensor.Tensor, len(out))
	for i, v := range s.g.Outputs {
		res[v.Name] = out[i]
	}
	return res, nil
}

func (s *Session) checkInputs(inputs []*tensor.Tensor) error {
	if len(inputs) != len(s.g.Inputs) {
		return fmt.Errorf("%w: the model takes %d inputs, got %d", ErrInput, len(s.g.Inputs), len(inputs))
	}
	symbols := map[string]int{}
	for i, v := range s.g.Inputs {
		t := inputs[i]
		if t == nil {
			return fmt.Errorf("%w: input %q is nil", ErrInput, v.Name)
		}
		if t.DType != v.Type.DType {
			return fmt.Errorf("%w: input %q is %s, the model expects %s", ErrInput, v.Name, t.DType, v.Type.DType)
		}
		if v.Type.Unranked {
			continue
		}
		if len(t.Shape) != len(v.Type.Shape) {
			return fmt.Errorf("%w: input %q has shape %v, the model expects %s", ErrInput, v.Name, t.Shape, v.Type)
		}
		for k, d := range v.Type.Shape {
			got := t.Shape[k]
			switch {
			case d.IsKnown() && int64(got) != d.Value:
				return fmt.Errorf("%w: input %q dim %d is %d, the model expects %d (shape %s)", ErrInput, v.Name, k, got, d.Value, v.Type)
			case !d.IsKnown() && got == 0:
				// An empty batch has nothing to compute, and the fast kernels are written for at
				// least one item: refuse it here, once, instead of in every kernel.
				return fmt.Errorf("%w: input %q has shape %v: dim %d (%s) is 0, and dnx runs batches of at least one item", ErrInput, v.Name, t.Shape, k, d)
			case !d.IsKnown() && d.Param != "":
				if prev, ok := symbols[d.Param]; ok && prev != got {
					return fmt.Errorf("%w: input %q dim %d (%s) is %d, but %s is %d in another input", ErrInput, v.Name, k, d.Param, got, d.Param, prev)
				}
				symbols[d.Param] = got
			}
		}
	}
	return nil
}

// checkProduced catches kernel results that contradict the inferred type.
func checkProduced(v *graph.Value, t *tensor.Tensor) error {
	if t == nil {
		return errors.New("kernel returned no tensor")
	}
	if v.Type.DType != tensor.Undefined && t.DType != v.Type.DType {
		return fmt.Errorf("kernel produced %s, inference said %s", t.DType, v.Type)
	}
	if !v.Type.Unranked && len(t.Shape) != len(v.Type.Shape) {
		return fmt.Errorf("kernel produced shape %v, inference said %s", t.Shape, v.Type)
	}
	for k, d := range v.Type.Shape {
		if d.IsKnown() && k < len(t.Shape) && int64(t.Shape[k]) != d.Value {
			return fmt.Errorf("kernel produced shape %v, inference said %s", t.Shape, v.Type)
		}
	}
	return nil
}

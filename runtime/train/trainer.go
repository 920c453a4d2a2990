package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/devices"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/passes"
	inferplan "github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Errors wrapped by the trainer, checkable with errors.Is.
var (
	// ErrGraph: the graph cannot be trained as a classifier (inputs, outputs, unknown shapes,
	// non-float32 data).
	ErrGraph = errors.New("graph cannot be trained")
	// ErrInput: a batch or labels do not fit the model.
	ErrInput = errors.New("bad training input")
	// ErrDiverged: a step's loss or gradients are not finite (NaN or infinite); the step was
	// not applied.
	ErrDiverged = errors.New("training diverged")
)

// Trainer fine-tunes a classifier graph: each Step runs the forward pass in training mode, the
// softmax cross-entropy loss, the backward pass and one optimizer update. A Trainer is not safe
// for concurrent use.
type Trainer struct {
	opts Options
	orig *graph.Graph // the graph as given (cloned), for Graph
	work *graph.Graph // after passes.Training; never changed by planning (plan.Infer)
	// classes is the second dim of the logits, from the trial plan New compiles.
	classes int
	params  []*param // trained and frozen parameters, in initializer order
	stats   []*param // running statistics, in initializer order
	byName  map[string]*param
	step    int
	gen     uint32
	plans   []*plan    // most recent last
	ws      *workspace // working memory outside the arena, shared by the plans
	// tieBreak is set by tests only (see tieBreaker).
	tieBreak tieBreaker
	budget   membudget.Budget // from Options.MaxMemory
}

// maxPlans is how many input shapes keep their plan (and arena); the last batch of an epoch is
// often smaller, so two cover a training loop.
const maxPlans = 2

// New prepares g for training with opts. g is not modified: the trainer works on a clone, to
// which it applies passes.Training (eliminations only; BatchNormalization stays a node).
//
// The graph must have one input (the images, float32) and a first output of logits
// [batch, classes], computed by the operators the trainer differentiates, which Trainables
// lists with their limits; nodes whose inputs are all constants are evaluated once. The
// parameters are the float32 initializers at the inputs Trainables' operators train (Conv
// weights and biases, BatchNormalization scales and biases, Gemm and Add operands);
// BatchNormalization means and variances are running statistics.
// A Freeze prefix that matches no parameter is an error (ErrOptions).
func New(g *graph.Graph, opts Options) (*Trainer, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	reg := ops.Default()
	orig, err := g.Clone(reg)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	work, err := g.Clone(reg)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if _, err := passes.Training().Run(work); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t := &Trainer{opts: o, orig: orig, work: work, byName: map[string]*param{}, ws: &workspace{}, budget: membudget.New(o.MaxMemory)}
	if err := t.findParams(); err != nil {
		return nil, err
	}
	if len(work.Inputs) != 1 {
		return nil, fmt.Errorf("%w: the graph has %d inputs; training needs exactly one (the images)", ErrGraph, len(work.Inputs))
	}
	in := work.Inputs[0]
	if in.Type.DType != tensor.Float32 || in.Type.Unranked || len(in.Type.Shape) < 2 {
		return nil, fmt.Errorf("%w: input %q is %s; training needs a float32 batch", ErrGraph, in.Name, in.Type)
	}
	// Plan a batch of two to report unsupported graphs now rather than at the first step.
	trial := make(tensor.Shape, len(in.Type.Shape))
	for i, d := range in.Type.Shape {
		trial[i] = int(d.Value)
		if !d.IsKnown() {
			if i != 0 {
				return nil, fmt.Errorf("%w: input %q has an unknown dim %d (%s)", ErrGraph, in.Name, i, in.Type)
			}
			trial[i] = 2
		}
	}
	p, err := t.compileFor(trial, 1)
	if err != nil {
		return nil, err
	}
	t.classes = p.vals[p.output].shape[1]
	return t, nil
}

// paramPositions returns the input positions of an op type that hold trainable parameters (the
// trainables table's params; nil for an op type outside it).
func paramPositions(opType string) []int {
	if tr := lookupTrainable(opType); tr != nil {
		return tr.params
	}
	return nil
}

// findParams classifies the initializers the graph's nodes read: parameters at the positions
// paramPositions lists, running statistics at BatchNormalization's inputs 3 and 4.
func (t *Trainer) findParams() error {
	isParam, isStat := map[*graph.Value]bool{}, map[*graph.Value]bool{}
	for _, n := range t.work.Nodes {
		if ops.NormalizeDomain(n.Domain) != "" {
			continue
		}
		for _, i := range paramPositions(n.OpType) {
			if i < len(n.Inputs) && n.Inputs[i] != nil && n.Inputs[i].IsConst() {
				isParam[n.Inputs[i]] = true
			}
		}
		if n.OpType != "BatchNormalization" {
			continue
		}
		for _, i := range []int{3, 4} {
			if v := n.Inputs[i]; v != nil && v.IsConst() {
				if isStat[v] {
					return fmt.Errorf("%w: running statistic %q is read by more than one BatchNormalization", ErrGraph, v.Name)
				}
				isStat[v] = true
			}
		}
	}
	for _, v := range t.work.Initializers {
		if !isParam[v] && !isStat[v] {
			continue
		}
		if isParam[v] && isStat[v] {
			return fmt.Errorf("%w: initializer %q is both a parameter and a running statistic", ErrGraph, v.Name)
		}
		if v.Const.DType != tensor.Float32 {
			return fmt.Errorf("%w: initializer %q is %s; training supports float32 models", ErrGraph, v.Name, v.Const.DType)
		}
		p := &param{name: v.Name, shape: v.Const.Shape.Clone(), data: slices.Clone(tensor.Data[float32](v.Const))}
		if isStat[v] {
			t.stats = append(t.stats, p)
		} else {
			p.train = !slices.ContainsFunc(t.opts.Freeze, func(prefix string) bool { return strings.HasPrefix(v.Name, prefix) })
			if p.train {
				p.grad = make([]float32, len(p.data))
			}
			t.params = append(t.params, p)
		}
		t.byName[v.Name] = p
	}
	// A prefix that freezes nothing is almost always a typo ("feature" for "features."); training
	// everything instead would go unnoticed.
	for _, prefix := range t.opts.Freeze {
		if slices.ContainsFunc(t.params, func(p *param) bool { return strings.HasPrefix(p.name, prefix) }) {
			continue
		}
		if len(t.params) == 0 {
			return fmt.Errorf("%w: Freeze prefix %q matches no parameter: the graph has none", ErrOptions, prefix)
		}
		return fmt.Errorf("%w: Freeze prefix %q matches no parameter (the %d parameters have names like %q and %q)",
			ErrOptions, prefix, len(t.params), t.params[0].name, t.params[len(t.params)-1].name)
	}
	return nil
}

// newVal describes graph value v for a plan.
func (t *Trainer) newVal(v *graph.Value, types *inferplan.Types) (*val, error) {
	typ, ok := types.Type[v]
	if !ok {
		return nil, fmt.Errorf("%w: value %q has no type", ErrGraph, v.Name)
	}
	shape, ok := typ.Static()
	if !ok {
		return nil, fmt.Errorf("%w: value %q has no static shape (%s)", ErrGraph, v.Name, typ)
	}
	x := &val{name: v.Name}
	x.setShape(shape)
	switch {
	case v.IsConst() && t.byName[v.Name] != nil:
		p := t.byName[v.Name]
		x.kind, x.p = vParam, p
		x.size, x.cs = shape.Size(), x.n*x.s // parameters keep their row-major layout
		if slices.Contains(t.stats, p) {
			x.kind = vStat
		}
		return x, nil
	case types.Known[v] != nil:
		return constVal(v.Name, types.Known[v])
	case v.Producer == nil:
		x.kind = vInput
	default:
		x.kind = vAct
	}
	if typ.DType != tensor.Float32 {
		return nil, fmt.Errorf("%w: value %q is %s; training supports float32 models", ErrGraph, v.Name, typ.DType)
	}
	return x, nil
}

// planFor returns the plan for an input of the given shape, compiling it when needed.
func (t *Trainer) planFor(shape tensor.Shape, threads int) (*plan, error) {
	for i, p := range t.plans {
		if p.vals[p.input].shape.Equal(shape) && p.threads == threads {
			t.plans = append(slices.Delete(t.plans, i, i+1), p)
			return p, nil
		}
	}
	p, err := t.compileFor(shape, threads)
	if err != nil {
		return nil, err
	}
	t.plans = append(t.plans, p)
	if len(t.plans) > maxPlans {
		t.plans = t.plans[1:]
	}
	return p, nil
}

// compileFor plans the working graph for an input of the given shape.
func (t *Trainer) compileFor(shape tensor.Shape, threads int) (*plan, error) {
	if err := t.work.CheckInputShape(t.work.Inputs[0], shape); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	k, done, err := t.kernelsFor(threads)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	p, err := compile(t, t.work, shape, threads, k)
	if cerr := done(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	// The arena is allocated at the first pass: check it (with the kernels' scratch) first.
	what := fmt.Sprintf("the training arena for input shape %v (memory-efficient=%v)", shape, t.opts.MemoryEfficient)
	if err := t.budget.CheckBytes(what, 4*(int64(p.arena)+int64(len(p.scratch)))); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return p, nil
}

// kernelsFor returns the training kernels to compile or run a pass with on threads threads, and
// the function that releases them once the pass is done. Everything the trainer computes outside
// its own loops goes through them: this is the one place it names a device.
func (t *Trainer) kernelsFor(threads int) (device.TrainingKernels, func() error, error) {
	if t.opts.Device != nil {
		return t.opts.Device.Training(), func() error { return nil }, nil
	}
	// The trainer has no Close, so a device it opens itself lives for one pass: starting the
	// CPU's worker threads costs microseconds against a pass's milliseconds.
	dev, err := devices.CPU(devices.Config{Threads: threads})
	if err != nil {
		return nil, nil, err
	}
	return dev.Training(), dev.Close, nil
}

// threads returns the worker count of the options.
func (t *Trainer) threads() int {
	if t.opts.Device != nil {
		return t.opts.Device.Threads()
	}
	if t.opts.Threads > 0 {
		return t.opts.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// start prepares a pass over x: the plan, the kernels, the arena with the input in place. It
// returns the function that releases the pass's kernels, which the caller defers; its error is
// dropped there, as the pass's result is already complete (the CPU's release cannot fail).
func (t *Trainer) start(x *tensor.Tensor, train bool) (*run, func() error, error) {
	if x == nil || x.DType != tensor.Float32 {
		return nil, nil, fmt.Errorf("%w: the batch must be a float32 tensor", ErrInput)
	}
	threads := t.threads()
	p, err := t.planFor(x.Shape, threads)
	if err != nil {
		return nil, nil, err
	}
	if p.mem == nil {
		p.mem = make([]float32, p.arena)
		p.stats = map[int]*statCache{}
	}
	k, done, err := t.kernelsFor(threads)
	if err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	t.gen++
	r := &run{p: p, k: k, arena: p.mem, train: train, updateStats: train && !t.opts.FreezeBNStats,
		gradInit: make([]bool, len(p.bufs)), gen: t.gen, stats: p.stats, work: t.ws, tieBreak: t.tieBreak, step: t.step}
	in := p.vals[p.input]
	copyToLayout(in, r.data(p.input), tensor.Data[float32](x))
	return r, done, nil
}

// forward runs every unit's forward pass.
func (r *run) forward(ctx context.Context) error {
	for _, u := range r.p.units {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := u.forward(r); err != nil {
			return err
		}
	}
	return nil
}

// Step trains on one batch: x [N, ...] float32 and one class label per sample. It runs the
// forward pass in training mode, the loss, the backward pass and the optimizer update with the
// schedule's learning rate for the current step, then moves the BatchNormalization running
// statistics. When ctx is cancelled or an error occurs, the trainer's state is unchanged; a loss
// or gradient that is not finite is an error wrapping ErrDiverged.
func (t *Trainer) Step(ctx context.Context, x *tensor.Tensor, labels []int64) (StepStats, error) {
	if x != nil && (len(x.Shape) == 0 || x.Shape[0] != len(labels)) {
		return StepStats{}, fmt.Errorf("%w: batch of shape %v with %d labels", ErrInput, x.Shape, len(labels))
	}
	r, done, err := t.start(x, true)
	if err != nil {
		return StepStats{}, err
	}
	defer done()
	p := r.p
	for _, pr := range t.params {
		clear(pr.grad)
	}
	if err := r.forward(ctx); err != nil {
		return StepStats{}, err
	}
	logits := r.data(p.output)
	out := p.vals[p.output]
	var dz []float32
	if out.needGrad {
		dz, _ = r.gradIn(p.output)
	}
	loss, correct, err := crossEntropy(logits, labels, out.shape[1], t.opts.LabelSmoothing, dz)
	if err != nil {
		return StepStats{}, err
	}
	for i := len(p.units) - 1; i >= 0; i-- {
		u := p.units[i]
		if !u.base().bwd {
			continue
		}
		if err := ctx.Err(); err != nil {
			return StepStats{}, err
		}
		if err := u.backward(r); err != nil {
			return StepStats{}, err
		}
	}
	st := StepStats{Loss: loss, Correct: correct, LR: t.opts.Schedule.LR(t.opts.Optim.LR, t.step), ActivationBytes: p.actBytes}
	st.GradNorm = gradNorm(t.params)
	// A non-finite loss or gradient would turn every weight into NaN: refuse the update, so the
	// trainer keeps its last finite state (and the caller can still save it).
	if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(st.GradNorm) || math.IsInf(st.GradNorm, 0) {
		return st, fmt.Errorf("%w at step %d: loss %g, gradient norm %g (the learning rate may be too high); the step was not applied",
			ErrDiverged, t.step+1, loss, st.GradNorm)
	}
	if t.opts.Optim.ClipNorm > 0 {
		clipGrads(t.params, st.GradNorm, t.opts.Optim.ClipNorm)
	}
	update(t.opts.Optim, t.params, st.LR, t.step)
	for _, u := range p.units {
		if bn, ok := u.(*bnUnit); ok {
			bn.commit(r)
		}
	}
	t.step++
	return st, nil
}

// Evaluate returns the logits [N, classes] of x in inference mode: BatchNormalization uses the
// running statistics, nothing is updated.
func (t *Trainer) Evaluate(ctx context.Context, x *tensor.Tensor) (*tensor.Tensor, error) {
	r, done, err := t.start(x, false)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := r.forward(ctx); err != nil {
		return nil, err
	}
	out := r.p.vals[r.p.output]
	return tensor.FromSlice(out.shape.Clone(), slices.Clone(r.data(r.p.output))), nil
}

// StepCount returns the number of completed steps.
func (t *Trainer) StepCount() int { return t.step }

// Graph returns a copy of the graph as given to New with the current weights and running
// statistics as its initializers (same names), ready for graph.Export.
func (t *Trainer) Graph() *graph.Graph {
	c, err := t.orig.Clone(ops.Default())
	if err != nil {
		panic("train: cloning an already decoded graph failed: " + err.Error())
	}
	for _, p := range append(slices.Clone(t.params), t.stats...) {
		if v := c.Value(p.name); v != nil && v.IsConst() {
			v.Const = tensor.FromSlice(tensor.Shape(slices.Clone(p.shape)), slices.Clone(p.data))
		}
	}
	return c
}

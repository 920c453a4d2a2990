package exec

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// setLanes decides once whether the session runs in lanes (device.Lanes): the device must have
// them and more than one thread. A run that starts while another is running then runs in a lane
// of its own (runAlongside), and a batch is split into lanes (runLanes) when its inputs share a
// symbolic batch dim and the graph computes each row of the batch from that row alone
// (plan.RowIndependent).
func (s *Session) setLanes() {
	l, ok := s.dev.(device.Lanes)
	switch {
	case s.opts.Reference:
		s.noLanes = "reference session"
	case s.opts.NoLanes:
		s.noLanes = "no lanes asked for (Options.NoLanes)"
	case !ok:
		s.noLanes = "device " + s.dev.Name() + " has no lanes"
	case s.dev.Threads() < 2:
		s.noLanes = "one thread"
	}
	if s.noLanes != "" {
		return
	}
	s.laneDev = l.Lane()
	if _, why := plan.BatchDim(s.g); why != "" {
		s.noLanes = why
		return
	}
	if ok, why := plan.RowIndependent(s.g, nil); !ok {
		s.rowsWhy = why
		s.rowsAt = map[string]string{}
	}
	s.lanes = l
}

// runAlongside runs inputs in a lane of their own, on the calling goroutine, for a run that
// starts while others are running on the session: splitting each operator over threads that
// those keep busy only adds fork-joins that wait for them. DenseNet-121 at batch 1 from 2 or 4
// goroutines on one 2-thread session, three alternating rounds: 70-72 images/s, against 60-68
// with every run on the whole pool (1 goroutine: 47-64). The lane's kernels choose and round as
// the session's, so the result is the same bit for bit. ok is false when the inputs cannot be
// planned (they then run as usual).
func (s *Session) runAlongside(ctx context.Context, inputs []*tensor.Tensor) (outs []*tensor.Tensor, ok bool, err error) {
	shapes := make([]tensor.Shape, len(inputs))
	for i, t := range inputs {
		shapes[i] = t.Shape
	}
	p, err := s.onLane(shapes)
	if errors.Is(err, plan.ErrNotPlannable) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	outs, err = p.Run(ctx, inputs)
	return outs, true, err
}

// rowsAtShapes returns why a lane of the given input shapes would not compute its rows as the
// whole batch does ("" when it would), for a graph whose symbolic types left that open: the
// analysis again, with the types at those shapes.
func (s *Session) rowsAtShapes(shapes []tensor.Shape) string {
	key := fmt.Sprint(shapes)
	s.mu.Lock()
	defer s.mu.Unlock()
	if why, ok := s.rowsAt[key]; ok {
		return why
	}
	if len(s.rowsAt) >= maxPlans {
		clear(s.rowsAt)
	}
	why := s.rowsWhy
	if types, err := plan.Infer(s.g, shapes, s.budget, plan.InferOptions{}); err == nil {
		if ok, w := plan.RowIndependent(s.g, types); ok {
			why = ""
		} else {
			why = w
		}
	}
	s.rowsAt[key] = why
	return why
}

// Lanes returns the lanes a batch of inputs of the given shapes runs in, with each lane's rows
// (nil when the batch runs whole), and when the session does not split such a batch, why not.
//
// A batch of n >= threads is cut into one lane per thread, as evenly as possible. Unequal lanes
// still win: DenseNet-121 at batch 3 on 2 threads took 58-60 ms whole and 52-56 ms as the
// longer lane of 2+1 (2 rows on 1 thread). Each lane runs the whole graph on its thread with a
// plan of its own, and every row's result is bit for bit the same as in a batch of its own on
// the session (the lane device's kernels choose as the session's do).
func (s *Session) Lanes(shapes []tensor.Shape) (rows []int, whyNot string) {
	if s.lanes == nil {
		return nil, s.noLanes
	}
	if len(shapes) == 0 || len(shapes[0]) == 0 {
		return nil, "no batch dim"
	}
	n, t := shapes[0][0], s.dev.Threads()
	for _, sh := range shapes {
		if len(sh) == 0 || sh[0] != n {
			return nil, "the inputs' first dims differ"
		}
	}
	if n < t {
		return nil, ""
	}
	rows = make([]int, t)
	for i := range rows {
		rows[i] = n / t
		if i < n%t {
			rows[i]++
		}
	}
	if s.rowsWhy != "" {
		if why := s.rowsAtShapes(withRows(shapes, rows[0])); why != "" {
			return nil, why
		}
	}
	return rows, ""
}

// runLanes runs a batch as lanes when Lanes says so (ok true; the result is then outs, err),
// else returns ok false and the batch runs whole.
func (s *Session) runLanes(ctx context.Context, inputs []*tensor.Tensor) (outs []*tensor.Tensor, ok bool, err error) {
	if s.lanes == nil || len(inputs) == 0 || len(inputs[0].Shape) == 0 || inputs[0].Shape[0] < s.dev.Threads() {
		return nil, false, nil // no lanes, or too few rows: nothing to allocate for a batch of 1
	}
	batch := make([]tensor.Shape, len(inputs))
	for i, t := range inputs {
		batch[i] = t.Shape
	}
	rows, _ := s.Lanes(batch)
	if rows == nil {
		return nil, false, nil
	}
	plans, err := s.lanePlans(batch, rows)
	if err != nil {
		return nil, true, err
	}
	if plans == nil {
		return nil, false, nil
	}
	shapes, _ := plans[0].OutputShapes()
	// The lanes hold their memories at once: together, with the outputs, they must fit the
	// budget a whole batch's plan is held to (plan.Compile checks each lane's alone).
	n := inputs[0].Shape[0]
	m := runMemory(plans)
	need := m.ArenaBytes + m.ScratchBytes
	for _, sh := range shapes {
		need += 4 * int64(sh.Size()/max(sh[0], 1)) * int64(n)
	}
	what := fmt.Sprintf("a run in %d lanes for inputs %v (their activation arenas, kernel scratch and the outputs)", len(rows), batch)
	if err := s.budget.CheckBytes(what, need); err != nil {
		return nil, true, err
	}
	outs = make([]*tensor.Tensor, len(shapes))
	for i, sh := range shapes {
		full := sh.Clone()
		full[0] = n
		outs[i] = tensor.New(tensor.Float32, full)
	}
	errs := make([]error, len(rows))
	// Step times (dnx bench --steps): each lane times its own steps, and a run's time per step is
	// the lanes' sum, the thread time it took.
	times := plan.StepTimesOf(ctx)
	var laneTimes []plan.StepTimes
	if times != nil {
		laneTimes = make([]plan.StepTimes, len(rows))
	}
	s.lanes.RunLanes(len(rows), func(l int) {
		ctx := ctx
		if times != nil {
			ctx = plan.WithStepTimes(ctx, &laneTimes[l])
		}
		lo := 0
		for _, r := range rows[:l] {
			lo += r
		}
		hi := lo + rows[l]
		in := make([]*tensor.Tensor, len(inputs))
		for i, t := range inputs {
			in[i] = t.Rows(lo, hi)
		}
		out := make([]*tensor.Tensor, len(outs))
		for i, t := range outs {
			out[i] = t.Rows(lo, hi)
		}
		if err := plans[l].RunInto(ctx, in, out); err != nil {
			errs[l] = fmt.Errorf("lane %d (rows %d to %d): %w", l, lo, hi-1, err)
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, true, err
		}
	}
	if times != nil {
		sum := plan.StepTimes{Total: make([]time.Duration, len(laneTimes[0].Total))}
		for l := range laneTimes {
			if len(laneTimes[l].Total) == len(sum.Total) { // lanes of other sizes may plan otherwise
				for i, d := range laneTimes[l].Total {
					sum.Total[i] += d
				}
			}
		}
		times.Add(&sum)
	}
	return outs, true, nil
}

// lanePlans returns the plan of each lane of a batch of the given input shapes cut into lanes of
// rows (lanes of equal rows share one), compiling them if needed, or nil when the batch must run
// whole: a lane's graph cannot be planned, or an output of its plan is not a float32 value with
// the lane's rows first.
func (s *Session) lanePlans(batch []tensor.Shape, rows []int) ([]*plan.Plan, error) {
	plans := make([]*plan.Plan, len(rows))
	for i, r := range rows {
		if i > 0 && r == rows[i-1] {
			plans[i] = plans[i-1]
			continue
		}
		p, err := s.LanePlan(batch, r)
		if errors.Is(err, plan.ErrNotPlannable) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		shapes, whole := p.OutputShapes()
		for _, sh := range shapes {
			// RowIndependent puts the batch first in every output; a plan that does not is run whole.
			whole = whole && len(sh) > 0 && sh[0] == r
		}
		if !whole {
			return nil, nil
		}
		plans[i] = p
	}
	return plans, nil
}

// PlanFor returns the plan a run of inputs of the given shapes executes: for a batch that runs
// in lanes, the plan of the first lane, with the lanes' rows. mem is the memory the run holds:
// the plan's arena and scratch, or with lanes the sum of every lane's.
func (s *Session) PlanFor(shapes []tensor.Shape) (p *plan.Plan, lanes []int, mem plan.Stats, err error) {
	if rows, _ := s.Lanes(shapes); rows != nil {
		plans, err := s.lanePlans(shapes, rows)
		if err != nil {
			return nil, nil, plan.Stats{}, err
		}
		if plans != nil {
			return plans[0], rows, runMemory(plans), nil
		}
	}
	p, err = s.Plan(shapes)
	if err != nil {
		return nil, nil, plan.Stats{}, err
	}
	return p, nil, p.Stats(), nil
}

// runMemory returns the arena and scratch bytes the lanes of plans hold together.
func runMemory(plans []*plan.Plan) plan.Stats {
	var m plan.Stats
	for _, p := range plans {
		st := p.Stats()
		m.ArenaBytes += st.ArenaBytes
		m.ScratchBytes += st.ScratchBytes
	}
	return m
}

// LanePlan returns the plan a lane of rows rows of a batch of the given shapes runs (compiling
// it if needed), on the lane device.
func (s *Session) LanePlan(batch []tensor.Shape, rows int) (*plan.Plan, error) {
	if s.laneDev == nil {
		return nil, errors.New("exec: the session has no lanes: " + s.noLanes)
	}
	return s.onLane(withRows(batch, rows))
}

// onLane returns the lane device's plan for inputs of the given shapes, compiling it if needed.
func (s *Session) onLane(shapes []tensor.Shape) (*plan.Plan, error) {
	return s.compiled("lane "+fmt.Sprint(shapes), shapes, s.laneDev)
}

// withRows returns the shapes of a batch's inputs with rows rows instead.
func withRows(batch []tensor.Shape, rows int) []tensor.Shape {
	shapes := make([]tensor.Shape, len(batch))
	for i, sh := range batch {
		shapes[i] = sh.Clone()
		shapes[i][0] = rows
	}
	return shapes
}

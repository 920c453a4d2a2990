package plan

import (
	"context"
	"time"
)

// StepTimes accumulates the wall time of each step of a plan over the runs whose context carries
// it (WithStepTimes): where a model's time goes, per node, as `dnx bench --steps` prints it. A
// StepTimes may be shared by runs of one plan that do not overlap; Total is sized on first use.
type StepTimes struct {
	// Total[i] is the summed time of step i (in Steps() order), Runs the number of runs.
	Total []time.Duration
	Runs  int
}

type stepTimesKey struct{}

// WithStepTimes returns ctx carrying t: the plan runs given the result record each step's time
// into t. Timing reads the clock twice per step, negligible next to any kernel.
func WithStepTimes(ctx context.Context, t *StepTimes) context.Context {
	return context.WithValue(ctx, stepTimesKey{}, t)
}

// StepTimesOf returns the StepTimes ctx carries, or nil.
func StepTimesOf(ctx context.Context) *StepTimes { return stepTimesOf(ctx) }

// Add adds the step times of one run of the same plan's steps, held in o, to t as one run.
func (t *StepTimes) Add(o *StepTimes) {
	if len(t.Total) != len(o.Total) {
		t.Total, t.Runs = make([]time.Duration, len(o.Total)), 0
	}
	for i, d := range o.Total {
		t.Total[i] += d
	}
	t.Runs++
}

// stepTimesOf returns the StepTimes ctx carries, or nil.
func stepTimesOf(ctx context.Context) *StepTimes {
	t, _ := ctx.Value(stepTimesKey{}).(*StepTimes)
	return t
}

package train

import (
	"context"
	"errors"
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"math"
	"slices"
	"time"

	"github.com/dnx-ml/dnx/runtime/data"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Batches is a source of training or validation batches, one epoch at a time: *data.Loader.
// The batches of an epoch must depend only on the epoch number, so that a resumed run, which
// skips the batches trained before its checkpoint, sees what the interrupted run would have.
type Batches interface {
	// Batches returns the number of batches per epoch.
	Batches() int
	// Epoch starts epoch epoch.
	Epoch(ctx context.Context, epoch int) *data.Iter
}

// ExplosionFactor is how far above its reference the loss of a step may go before Fit declares
// the run diverged: the reference is the larger of the first step's loss and ln(classes), the
// loss of a uniform prediction. A loss a hundred times that is not a bad batch but weights that
// have run away (Adam at a high rate reaching 8.9e7 while staying finite, say).
const ExplosionFactor = 100

// EpochSums accumulates the training loss and accuracy of an epoch.
type EpochSums struct {
	LossSum float64 `json:"loss_sum"` // sum over batches of batch size x batch mean loss
	Correct int64   `json:"correct"`
	Images  int64   `json:"images"`
}

// Add records one batch of n images with mean loss loss and correct right answers.
func (s *EpochSums) Add(n int, loss float64, correct int64) {
	s.LossSum += loss * float64(n)
	s.Correct += correct
	s.Images += int64(n)
}

// Loss returns the mean loss per image (NaN before any image).
func (s EpochSums) Loss() float64 { return s.LossSum / float64(s.Images) }

// Acc returns the fraction of correct answers (NaN before any image).
func (s EpochSums) Acc() float64 { return float64(s.Correct) / float64(s.Images) }

// ValResult is a validation pass's outcome: the mean cross-entropy loss and the accuracy over
// Images images (NaN for both when there were none).
type ValResult struct {
	Loss   float64 `json:"loss"`
	Acc    float64 `json:"acc"`
	Images int     `json:"images"`
}

// FitState is where a Fit run stands: what a checkpoint records besides the trainer's state
// (CheckpointMeta), and what Fit starts from (FitConfig.Start) and returns. The JSON names are
// those of the checkpoint header.
type FitState struct {
	// Epoch is the epoch in progress, counted from 0, and Batch the number of its batches
	// already trained: the data source resumes at batch Batch of epoch Epoch.
	Epoch int `json:"epoch"`
	Batch int `json:"batch"`
	// Step is the number of optimizer steps taken so far.
	Step int `json:"step"`
	// Running holds the sums behind the running means of the epoch in progress.
	Running EpochSums `json:"running"`
	// LastEpoch holds the sums of the last completed epoch.
	LastEpoch *EpochSums `json:"last_epoch,omitempty"`
	// LastVal is the last validation result, if any.
	LastVal *ValResult `json:"last_val,omitempty"`
	// TrainSeconds is the training time spent so far (steps only, across resumes).
	TrainSeconds float64 `json:"train_seconds"`
	// ActivationBytes is the largest activation memory of a step so far.
	ActivationBytes int64 `json:"activation_bytes"`
	// FirstLoss is the loss of the run's first step, the reference of the divergence rule (see
	// ExplosionFactor); nil before the first step, and in checkpoints written before it was kept
	// (the first step after such a resume takes its place).
	FirstLoss *float64 `json:"first_loss,omitempty"`
	// Skipped lists the images the data source left out of batches because they could not be
	// decoded (by path, or by error text when it has none), each once.
	Skipped []string `json:"skipped,omitempty"`
}

// clone returns a copy of s that shares no memory with it.
func (s FitState) clone() FitState {
	c := s
	if s.LastEpoch != nil {
		v := *s.LastEpoch
		c.LastEpoch = &v
	}
	if s.LastVal != nil {
		v := *s.LastVal
		c.LastVal = &v
	}
	if s.FirstLoss != nil {
		v := *s.FirstLoss
		c.FirstLoss = &v
	}
	c.Skipped = slices.Clone(s.Skipped)
	return c
}

// CheckpointConfig says when and where Fit saves checkpoints.
type CheckpointConfig struct {
	// Dir is the folder of the checkpoint ("" for none): Fit saves at the end of every epoch,
	// after its validation.
	Dir string
	// Every > 0 also saves every Every steps (not at the end of an epoch or of the run, which
	// save anyway).
	Every int
	// SaveOnCancel saves when ctx is cancelled, once a step has been trained, so that the run
	// can resume from where it stopped.
	SaveOnCancel bool
	// Settings and Seeds go into every checkpoint's header, for the caller's checks on resume.
	Settings map[string]string
	Seeds    Seeds
}

// FitConfig configures Fit.
type FitConfig struct {
	// Train gives the training batches; Val, if not nil, the validation batches, evaluated after
	// every epoch.
	Train, Val Batches
	// Steps is the run's length in optimizer steps, counted from the run's start (a resumed run
	// gives the same Steps as the run it continues). A run of E epochs has
	// E*Train.Batches() steps. The learning-rate schedule is the Trainer's (Options.Schedule,
	// whose TotalSteps a cosine schedule sets to Steps).
	Steps int
	// Classes is the number of classes, for the divergence rule's ln(classes); 0 takes it from
	// the logits of the first step.
	Classes int
	// Start is where the run starts: the zero value for a fresh run, a checkpoint's FitState
	// (LoadCheckpoint) for a resumed one, with the trainer state loaded.
	Start FitState
	// Checkpoint configures checkpoints.
	Checkpoint CheckpointConfig
	// Progress, if not nil, is called after every step, at the end of every epoch and after
	// every validation. An error it returns ends Fit, which returns it as is.
	Progress func(Event) error
	// Skipped, if not nil, is told of each image a data source leaves out of its batch because
	// it cannot be decoded (data.LoaderOptions.SkipUnreadable), once per image over the whole
	// run, resumes included.
	Skipped func(data.Unreadable)
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventStep: a step was trained (Stats, Images, Duration, Batch).
	EventStep EventKind = iota
	// EventEpochEnd: the epoch's batches are all trained, or the run's last step is, before the
	// validation.
	EventEpochEnd
	// EventValidation: the validation after an epoch (Val, Train).
	EventValidation
)

// Event reports Fit's progress to FitConfig.Progress.
type Event struct {
	Kind EventKind
	// State is the run's position after the step (Running: the epoch's running sums). Its
	// pointers and slices belong to Fit: read them during the call only.
	State FitState
	// Total is the run's length in steps, Epochs the number of epochs it touches and Batches
	// the number of batches per epoch.
	Total, Epochs, Batches int
	// RunSteps, RunImages and RunTime count the steps, images and step time of this call to Fit
	// (not of the run before a resume): the inputs of a speed and an ETA.
	RunSteps  int
	RunImages int64
	RunTime   time.Duration
	// EventStep: the step's statistics, its batch and its duration, and the loss above which
	// the run is declared diverged (when Stats.Loss is above it, Fit returns a DivergedError
	// after this event).
	Stats     StepStats
	Batch     data.Batch
	Images    int
	Duration  time.Duration
	LossLimit float64
	// EventValidation: the validation's result, and the sums of the epoch it follows.
	Val   ValResult
	Train EpochSums
}

// FitSummary is what Fit returns, on error too: the run's final position and this call's
// figures.
type FitSummary struct {
	State                  FitState
	Total, Epochs, Batches int
	// StartStep is the step the call started from (FitConfig.Start.Step).
	StartStep int
	// Images and TrainTime count the images trained and the time spent in steps by this call.
	Images    int64
	TrainTime time.Duration
}

// DivergedError is the error Fit returns when the run diverges: a step whose loss or gradient is
// not finite (Trainer.Step refused it: Applied is false), or whose loss exceeds Limit =
// ExplosionFactor * max(FirstLoss, ln(Classes)) (the step was applied). It matches ErrDiverged.
// Fit saves no checkpoint then: the last one saved before stays.
type DivergedError struct {
	Step     int // the step that diverged, counted from 1
	Epoch    int // its epoch, counted from 1
	Loss     float64
	GradNorm float64
	Applied  bool
	// Limit, FirstLoss and Classes describe the loss limit (when Applied).
	Limit, FirstLoss float64
	Classes          int
	// Err is Trainer.Step's error, when it refused the step.
	Err error
}

func (e *DivergedError) Error() string {
	if !e.Applied {
		return fmt.Sprintf("training diverged at step %d (epoch %d): loss %g, gradient norm %g (the step was not applied)", e.Step, e.Epoch, e.Loss, e.GradNorm)
	}
	return fmt.Sprintf("training diverged at step %d (epoch %d): %s", e.Step, e.Epoch, e.LimitText())
}

// LimitText explains the loss limit: "loss 1.2e+07 exceeds 100 x max(first step's loss 1.609,
// ln(5 classes) = 1.609) = 160.9".
func (e *DivergedError) LimitText() string {
	return fmt.Sprintf("loss %.4g exceeds %d x max(first step's loss %.4g, ln(%s) = %.4g) = %.4g",
		e.Loss, ExplosionFactor, e.FirstLoss, plural.Count(e.Classes, "class", "classes"), math.Log(float64(e.Classes)), e.Limit)
}

func (e *DivergedError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrDiverged
}

// CancelledError is the error Fit returns when ctx is cancelled: it matches ctx's error
// (context.Canceled, context.DeadlineExceeded). Saved says whether a checkpoint was saved
// (CheckpointConfig.SaveOnCancel); SaveErr is the save's error when it failed.
type CancelledError struct {
	Err     error
	Saved   bool
	SaveErr error
}

func (e *CancelledError) Error() string {
	switch {
	case e.SaveErr != nil:
		return fmt.Sprintf("%v; the checkpoint could not be saved: %v", e.Err, e.SaveErr)
	case e.Saved:
		return fmt.Sprintf("%v; checkpoint saved", e.Err)
	}
	return e.Err.Error()
}

func (e *CancelledError) Unwrap() []error {
	if e.SaveErr == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.SaveErr}
}

// fitter is the state of one Fit call.
type fitter struct {
	tr      *Trainer
	cfg     FitConfig
	st      FitState
	batches int
	epochs  int
	classes int
	images  int64
	time    time.Duration
}

// Fit trains tr on cfg.Train from cfg.Start to cfg.Steps steps: the epoch and step loop, a
// validation after every epoch (cfg.Val), checkpoints (cfg.Checkpoint) and the divergence rule.
//
// Steps run to completion once started: a cancelled ctx is honoured between steps, so that the
// running statistics never move without the matching weight update; Fit then saves a
// checkpoint when asked and returns a *CancelledError matching ctx.Err(). A step whose loss or
// gradients are not finite, or whose loss exceeds ExplosionFactor * max(first loss,
// ln(classes)), ends the run with a *DivergedError (matching ErrDiverged) and no checkpoint.
//
// Fit is deterministic: its steps are exactly those of a loop calling tr.Step on the batches of
// cfg.Train, epoch after epoch, and a run resumed from a checkpoint ends as the uninterrupted
// run does. The summary is returned on error too.
func Fit(ctx context.Context, tr *Trainer, cfg FitConfig) (FitSummary, error) {
	f := &fitter{tr: tr, cfg: cfg, st: cfg.Start.clone(), classes: cfg.Classes}
	if tr == nil || cfg.Train == nil {
		return f.summary(), fmt.Errorf("train: fit: %w: a trainer and training batches are needed", ErrOptions)
	}
	f.batches = cfg.Train.Batches()
	switch s := f.st; {
	case cfg.Steps <= 0:
		return f.summary(), fmt.Errorf("train: fit: %w: %d steps, want 1 or more", ErrOptions, cfg.Steps)
	case f.batches <= 0:
		return f.summary(), fmt.Errorf("train: fit: %w: the training data has no batches", ErrOptions)
	case cfg.Checkpoint.Every < 0:
		return f.summary(), fmt.Errorf("train: fit: %w: checkpoint every %d steps", ErrOptions, cfg.Checkpoint.Every)
	case s.Epoch < 0 || s.Batch < 0 || s.Batch > f.batches || s.Step != s.Epoch*f.batches+s.Batch:
		return f.summary(), fmt.Errorf("train: fit: %w: start at epoch %d, batch %d, step %d does not fit %s per epoch",
			ErrOptions, s.Epoch, s.Batch, s.Step, plural.Count(f.batches, "batch", "batches"))
	case s.Step > cfg.Steps:
		return f.summary(), fmt.Errorf("train: fit: %w: start at step %d, past the run's %s", ErrOptions, s.Step, plural.Count(cfg.Steps, "step"))
	case tr.StepCount() != s.Step:
		return f.summary(), fmt.Errorf("train: fit: %w: start at step %d, but the trainer has taken %s", ErrOptions, s.Step, plural.Count(tr.StepCount(), "step"))
	}
	f.epochs = (cfg.Steps + f.batches - 1) / f.batches
	err := f.loop(ctx)
	return f.summary(), err
}

func (f *fitter) summary() FitSummary {
	return FitSummary{State: f.st.clone(), Total: f.cfg.Steps, Epochs: f.epochs, Batches: f.batches,
		StartStep: f.cfg.Start.Step, Images: f.images, TrainTime: f.time}
}

// event fills the fields every event has and calls the progress callback.
func (f *fitter) event(ev Event) error {
	if f.cfg.Progress == nil {
		return nil
	}
	ev.State = f.st
	ev.Total, ev.Epochs, ev.Batches = f.cfg.Steps, f.epochs, f.batches
	ev.RunSteps, ev.RunImages, ev.RunTime = f.st.Step-f.cfg.Start.Step, f.images, f.time
	return f.cfg.Progress(ev)
}

// loop trains to cfg.Steps, validating after every epoch and saving checkpoints.
func (f *fitter) loop(ctx context.Context) error {
	st := &f.st
	for st.Step < f.cfg.Steps {
		if err := f.cancelled(ctx); err != nil {
			return err
		}
		epoch := st.Epoch
		if err := f.trainEpoch(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			continue // the check at the top of the loop saves and reports
		}
		endOfEpoch := st.Batch == f.batches
		if !endOfEpoch && st.Step < f.cfg.Steps {
			return fmt.Errorf("epoch %d: the data loader stopped after %d of %s", epoch+1, st.Batch, plural.Count(f.batches, "batch", "batches"))
		}
		if err := f.event(Event{Kind: EventEpochEnd}); err != nil {
			return err
		}
		sums := st.Running
		if f.cfg.Val != nil {
			v, err := Validate(ctx, f.cfg.Val, epoch, f.tr.Evaluate, f.noteSkipped)
			if ctx.Err() != nil {
				continue
			}
			if err != nil {
				return fmt.Errorf("validation after epoch %d: %w", epoch+1, err)
			}
			st.LastVal = &v
			if err := f.event(Event{Kind: EventValidation, Val: v, Train: sums}); err != nil {
				return err
			}
		}
		st.LastEpoch = &sums
		if endOfEpoch { // a run of Steps may end mid-epoch
			st.Running = EpochSums{}
			st.Epoch++
			st.Batch = 0
		}
		if err := f.save(); err != nil {
			return err
		}
	}
	return f.cancelled(ctx)
}

// lossLimit returns the loss above which a step counts as diverged.
func (f *fitter) lossLimit() float64 {
	return ExplosionFactor * max(*f.st.FirstLoss, math.Log(float64(f.classes)))
}

// trainEpoch trains the rest of epoch st.Epoch, from batch st.Batch, stopping early at the run's
// last step or when ctx is cancelled.
func (f *fitter) trainEpoch(ctx context.Context) error {
	st := &f.st
	if st.Batch >= f.batches {
		return nil
	}
	epoch := st.Epoch
	// Steps run to completion once started: a half-done step could leave running statistics
	// updated without the matching weight update. The cancellation is honoured between steps.
	stepCtx := context.WithoutCancel(ctx)
	it := f.cfg.Train.Epoch(ctx, epoch)
	defer it.Close()
	// The batches depend only on the epoch, so skipping the batches trained before the
	// checkpoint puts the source where the interrupted run was.
	for range st.Batch {
		if _, ok := it.Next(); !ok {
			break
		}
	}
	for st.Batch < f.batches && st.Step < f.cfg.Steps && ctx.Err() == nil {
		b, ok := it.Next()
		if !ok {
			break
		}
		f.noteSkipped(b.Skipped)
		if len(b.Y) == 0 {
			return fmt.Errorf("epoch %d, batch %d: none of its images can be decoded (%v); remove the unreadable files",
				epoch+1, st.Batch+1, b.Skipped[0].Err)
		}
		t := time.Now()
		s, err := f.tr.Step(stepCtx, b.X, b.Y)
		if errors.Is(err, ErrDiverged) {
			return &DivergedError{Step: st.Step + 1, Epoch: epoch + 1, Loss: s.Loss, GradNorm: s.GradNorm, Err: err}
		}
		if err != nil {
			return fmt.Errorf("epoch %d, step %d: %w", epoch+1, st.Step+1, err)
		}
		d := time.Since(t)
		n := len(b.Y)
		f.images += int64(n)
		f.time += d
		st.TrainSeconds += d.Seconds()
		st.Step++
		st.Batch++
		st.Running.Add(n, s.Loss, int64(s.Correct))
		st.ActivationBytes = max(st.ActivationBytes, s.ActivationBytes)
		if st.FirstLoss == nil {
			first := s.Loss
			st.FirstLoss = &first
		}
		if f.classes <= 0 {
			f.classes = f.tr.Classes()
		}
		limit := f.lossLimit()
		if err := f.event(Event{Kind: EventStep, Stats: s, Batch: b, Images: n, Duration: d, LossLimit: limit}); err != nil {
			return err
		}
		if s.Loss > limit {
			return &DivergedError{Step: st.Step, Epoch: epoch + 1, Loss: s.Loss, GradNorm: s.GradNorm, Applied: true,
				Limit: limit, FirstLoss: *st.FirstLoss, Classes: f.classes}
		}
		if every := f.cfg.Checkpoint.Every; every > 0 && st.Step%every == 0 && st.Step < f.cfg.Steps && st.Batch < f.batches {
			if err := f.save(); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	it.Close()
	if err := it.Err(); err != nil {
		return fmt.Errorf("epoch %d: %w", epoch+1, err)
	}
	return nil
}

// noteSkipped records the images a data source left out of a batch, each once over the whole
// run, and tells cfg.Skipped of the new ones.
func (f *fitter) noteSkipped(skipped []data.Unreadable) {
	for _, u := range skipped {
		key := u.Path
		if key == "" {
			key = u.Err.Error()
		}
		if slices.Contains(f.st.Skipped, key) {
			continue
		}
		f.st.Skipped = append(f.st.Skipped, key)
		if f.cfg.Skipped != nil {
			f.cfg.Skipped(u)
		}
	}
}

// cancelled returns nil while ctx is live. Once it is cancelled it saves a checkpoint (when
// asked, once a step has been trained: a checkpoint of the initial state would only stand in the
// way of the next fresh run) and returns a *CancelledError.
func (f *fitter) cancelled(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	e := &CancelledError{Err: ctx.Err()}
	if f.cfg.Checkpoint.SaveOnCancel && f.cfg.Checkpoint.Dir != "" && f.st.Step > 0 {
		e.SaveErr = f.save()
		e.Saved = e.SaveErr == nil
	}
	return e
}

// save writes the checkpoint, when cfg.Checkpoint.Dir is set.
func (f *fitter) save() error {
	c := f.cfg.Checkpoint
	if c.Dir == "" {
		return nil
	}
	return WriteCheckpoint(c.Dir, CheckpointMeta{Settings: c.Settings, Seeds: c.Seeds, FitState: f.st}, f.tr)
}

// Classes returns the number of classes: the second dim of the logits, from the batch New
// planned to check the graph.
func (t *Trainer) Classes() int { return t.classes }

// Validate runs logits (inference mode: Trainer.Evaluate, or an inference session's Run) over
// one epoch of src and returns the mean cross-entropy loss, -log softmax(z)_y, and the accuracy.
// skipped, if not nil, is told of the images the source left out (SkipUnreadable). A source
// without images gives NaN loss and accuracy.
func Validate(ctx context.Context, src Batches, epoch int, logits func(context.Context, *tensor.Tensor) (*tensor.Tensor, error), skipped func([]data.Unreadable)) (ValResult, error) {
	it := src.Epoch(ctx, epoch)
	defer it.Close()
	var sumLoss float64
	var correct, n int
	for {
		b, ok := it.Next()
		if !ok {
			break
		}
		if skipped != nil && len(b.Skipped) > 0 {
			skipped(b.Skipped)
		}
		if len(b.Y) == 0 {
			continue
		}
		z, err := logits(ctx, b.X)
		if err != nil {
			return ValResult{}, err
		}
		l, c, err := CrossEntropySum(z, b.Y)
		if err != nil {
			return ValResult{}, err
		}
		sumLoss += l
		correct += c
		n += len(b.Y)
	}
	if err := it.Err(); err != nil {
		return ValResult{}, err
	}
	if n == 0 {
		return ValResult{Loss: math.NaN(), Acc: math.NaN()}, nil
	}
	return ValResult{Loss: sumLoss / float64(n), Acc: float64(correct) / float64(n), Images: n}, nil
}

// CrossEntropySum returns the summed cross-entropy loss of logits z [N, classes],
// sum_i logsumexp(z_i) - z_i[y_i] (in float64, as the training loss without label smoothing),
// and the number of rows whose largest logit (the first, on ties) is the label.
func CrossEntropySum(z *tensor.Tensor, labels []int64) (float64, int, error) {
	if z.Rank() != 2 || z.Shape[0] != len(labels) {
		return 0, 0, fmt.Errorf("%w: logits of shape %v for %s", ErrInput, z.Shape, plural.Count(len(labels), "label"))
	}
	k := z.Shape[1]
	vals := z.Float64s()
	var loss float64
	correct := 0
	for i, y := range labels {
		row := vals[i*k : (i+1)*k]
		if y < 0 || int(y) >= k {
			return 0, 0, fmt.Errorf("%w: label %d is outside the model's %s", ErrInput, y, plural.Count(k, "class", "classes"))
		}
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == int(y) {
			correct++
		}
		m := row[best]
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - m)
		}
		loss += m + math.Log(s) - row[y]
	}
	return loss, correct, nil
}

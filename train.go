package dnx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/runtime/data"
	"github.com/dnx-ml/dnx/runtime/labels"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/train"
)

// TrainOptions configure a Trainer. Each field has torch.optim's meaning, and 0 means what it
// means there, except where noted: the zero value is plain SGD at learning rate 0.01, in the
// memory-efficient mode, on every core.
type TrainOptions struct {
	// Optimizer is "sgd" (the default when ""), "adam" or "adamw".
	Optimizer string
	// LR is the learning rate; 0 means 0.01 for SGD and 0.001 for Adam and AdamW.
	LR float64
	// Momentum and Nesterov apply to SGD.
	Momentum float64
	Nesterov bool
	// WeightDecay is L2 added to the gradient (SGD, Adam) or decoupled decay (AdamW). It applies
	// to every trained tensor, biases and BN scales included, as torch.optim does with a plain
	// parameter list. Note that 0 means none, also for AdamW (torch's AdamW defaults to 0.01).
	WeightDecay float64
	// ClipNorm > 0 rescales the gradients to a global L2 norm of at most ClipNorm
	// (clip_grad_norm_) before the update.
	ClipNorm float64
	// LabelSmoothing is CrossEntropyLoss's label_smoothing, in [0, 1].
	LabelSmoothing float64

	// Classes > 0 replaces the classifier with a fresh one of that many outputs (initialized as
	// torch.nn.Linear, from Seed): the usual start of fine-tuning on new classes.
	Classes int
	// Freeze lists initializer name prefixes whose tensors are not trained ("features" trains
	// only the classifier of a torchvision DenseNet). A prefix that matches nothing is an error.
	Freeze []string
	// FreezeBNStats normalizes with the BatchNormalization running statistics, as in inference,
	// and leaves them unchanged (their scales and shifts still train unless frozen).
	FreezeBNStats bool
	// KeepActivations turns off the memory-efficient mode, in which each dense layer's
	// concatenation, BatchNormalization and ReLU are recomputed in the backward pass instead of
	// kept, so that activation memory grows linearly with depth instead of quadratically. Results
	// are bit-identical either way; keeping them trades memory for a little speed.
	KeepActivations bool

	// Threads is the number of worker threads; 0 means one per core. Losses and gradients do not
	// depend on it.
	Threads int
	// MaxMemory bounds the training arena and every tensor computed while planning, as
	// Options.MaxMemory does for sessions.
	MaxMemory int64
	// Seed seeds the new classifier (Classes) and Dropout's masks.
	Seed uint64
}

// internal converts o to the trainer's options.
func (o TrainOptions) internal() (train.Options, error) {
	if err := checkThreads(o.Threads); err != nil {
		return train.Options{}, err
	}
	if o.Classes < 0 {
		return train.Options{}, fmt.Errorf("%w: Classes %d: want 0 (keep the classifier) or more", ErrOptions, o.Classes)
	}
	name := strings.ToLower(o.Optimizer)
	lr := o.LR
	if lr == 0 {
		lr = 0.01
		if name == "adam" || name == "adamw" {
			lr = 0.001
		}
	}
	return train.Options{
		Optim: train.OptimConfig{
			Name: name, LR: lr, Momentum: o.Momentum, Nesterov: o.Nesterov,
			WeightDecay: o.WeightDecay, ClipNorm: o.ClipNorm,
		},
		MemoryEfficient: !o.KeepActivations,
		Freeze:          o.Freeze,
		FreezeBNStats:   o.FreezeBNStats,
		LabelSmoothing:  o.LabelSmoothing,
		Threads:         o.Threads,
		MaxMemory:       o.MaxMemory,
		Seed:            o.Seed,
	}, nil
}

// Trainer fine-tunes a classifier Model: each Step runs a training-mode forward pass, the
// softmax cross-entropy loss, the backward pass and one optimizer update, with PyTorch 1.13's
// semantics (BatchNormalization statistics included).
//
// The trainer works on its own copy of the model; Model returns the trained weights as a new
// Model. Its methods may be called from several goroutines, but they run one at a time.
//
// Step does one step on a batch the caller makes (see Batch and LoadImage); Fit runs the loop of
// "dnx finetune" (epochs, shuffling, validation, checkpoints and resume, the divergence rule) on
// images in memory.
type Trainer struct {
	mu    sync.Mutex
	model *Model
	tr    *train.Trainer
	// meta is the trained model's metadata: the original's, updated for a replaced classifier.
	meta map[string]string
}

// StepResult describes one training step.
type StepResult struct {
	Loss     float64 // mean cross-entropy of the batch, before the update
	Correct  int     // samples whose largest logit is their label (before the update)
	LR       float64 // learning rate of the update
	GradNorm float64 // global L2 norm of the gradients, before clipping
}

// NewTrainer prepares model for training. The model must be a classifier in training form:
// one float32 image input and a first output of logits [batch, classes], with
// BatchNormalization nodes (as Build makes by default, or PyTorch exports with
// training=TrainingMode.PRESERVE). A model the trainer cannot differentiate is refused
// (ErrUnsupported, naming the operator); bad options match ErrOptions.
func NewTrainer(model *Model, opts TrainOptions) (*Trainer, error) {
	if model == nil {
		return nil, fmt.Errorf("dnx: new trainer: %w: nil model", ErrOptions)
	}
	o, err := opts.internal()
	if err != nil {
		return nil, fmt.Errorf("dnx: new trainer: %w", err)
	}
	g := model.g
	meta := model.Metadata()
	if opts.Classes > 0 {
		// ReplaceHead modifies its graph; the model's is shared and must stay as it is.
		if g, err = g.Clone(ops.Default()); err != nil {
			return nil, wrapf(err, "new trainer")
		}
		if err := train.ReplaceHead(g, opts.Classes, int64(opts.Seed)); err != nil {
			return nil, wrapf(fmt.Errorf("%w: Classes %d: %w", ErrUnsupported, opts.Classes, err), "new trainer")
		}
		// The recorded class count and any class names describe the old head.
		if meta[builders.MetaPrefix+"classes"] != "" {
			meta[builders.MetaPrefix+"classes"] = strconv.Itoa(opts.Classes)
		}
		meta[labels.MetadataKey] = ""
	}
	tr, err := train.New(g, o)
	if err != nil {
		return nil, wrapf(err, "new trainer")
	}
	return &Trainer{model: model, tr: tr, meta: meta}, nil
}

// Step trains on one batch: images [N, ...] float32, as the model's input takes them, and one
// class label in [0, classes) per image. When ctx is cancelled or the step fails the trainer is
// unchanged; a loss or gradient that is not finite matches ErrDiverged (lower LR or set
// ClipNorm). Bad images or labels match ErrInput.
func (t *Trainer) Step(ctx context.Context, images *Tensor, labels []int64) (StepResult, error) {
	if images == nil || images.t == nil {
		return StepResult{}, fmt.Errorf("dnx: train step: %w: nil images", ErrInput)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st, err := t.tr.Step(ctx, images.t, labels)
	if err != nil {
		return StepResult{}, wrapf(err, "train step %d", t.tr.StepCount()+1)
	}
	return StepResult{Loss: st.Loss, Correct: st.Correct, LR: st.LR, GradNorm: st.GradNorm}, nil
}

// Evaluate returns the logits [N, classes] of images in inference mode (BatchNormalization
// uses its running statistics, Dropout is off), with the current weights; nothing is updated.
func (t *Trainer) Evaluate(ctx context.Context, images *Tensor) (*Tensor, error) {
	if images == nil || images.t == nil {
		return nil, fmt.Errorf("dnx: evaluate: %w: nil images", ErrInput)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out, err := t.tr.Evaluate(ctx, images.t)
	if err != nil {
		return nil, wrapf(err, "evaluate")
	}
	return wrapTensor(out), nil
}

// Steps returns the number of completed steps.
func (t *Trainer) Steps() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tr.StepCount()
}

// Model returns the model with the current weights and BatchNormalization statistics, under the
// original tensor names, ready for NewSession or Save. It carries the original model's metadata
// (with "dnx.densenet.classes" updated and the "labels" names dropped when TrainOptions.Classes
// replaced the classifier; add new names with WithMetadata).
func (t *Trainer) Model() (*Model, error) {
	t.mu.Lock()
	g := t.tr.Graph()
	t.mu.Unlock()
	setMetadata(g, t.meta)
	return &Model{g: g}, nil
}

// SaveState writes everything a resumed run needs (weights, running statistics, optimizer
// buffers, the step count) to w, so that LoadState on a trainer made the same way continues
// bit-identically.
func (t *Trainer) SaveState(w io.Writer) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return wrapf(t.tr.SaveState(w), "save training state")
}

// LoadState restores a state SaveState wrote for the same model and options. The whole state is
// checked first: on error the trainer is unchanged.
func (t *Trainer) LoadState(r io.Reader) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return wrapf(t.tr.LoadState(r), "load training state")
}

// FitOptions configure Trainer.Fit: the data, the run's length, checkpoints and progress.
type FitOptions struct {
	// Images [N, 3, H, W] float32 (normalised as the model expects) and one label per image are
	// the training set; ValImages and ValLabels, if given, the validation set, evaluated after
	// every epoch.
	Images, ValImages *Tensor
	Labels, ValLabels []int64
	// Batch is the number of images per step.
	Batch int
	// Epochs or Steps (one of them) is the run's length.
	Epochs, Steps int
	// Shuffle visits the training images in an order drawn from (Seed, epoch).
	Shuffle bool
	Seed    int64
	// CheckpointDir, if not "", is a folder where Fit saves a checkpoint after every epoch,
	// every CheckpointEvery steps (when > 0) and when ctx is cancelled. With Resume, a run
	// continues from the checkpoint there (made with the same options; none yet starts afresh)
	// and ends as the uninterrupted run would, bit for bit.
	CheckpointDir   string
	CheckpointEvery int
	Resume          bool
	// Progress, if not nil, is called after every step and every validation, with the trainer
	// locked: it must not call the Trainer's methods. An error it returns ends Fit.
	Progress func(FitProgress) error
}

// FitProgress reports a step or a validation to FitOptions.Progress.
type FitProgress struct {
	// Validation is true for a validation (ValLoss, ValAcc), false for a step (Loss, Acc, LR).
	Validation bool
	// Step is the number of steps done, of Steps; Epoch is counted from 1.
	Step, Steps, Epoch int
	Loss, Acc, LR      float64
	ValLoss, ValAcc    float64
	// ImagesPerSecond and ETA are measured over the steps of this call.
	ImagesPerSecond float64
	ETA             time.Duration
}

// FitResult summarizes a Fit run.
type FitResult struct {
	Steps, Epochs int
	// TrainLoss and TrainAcc are the means over the last (complete) epoch's images.
	TrainLoss, TrainAcc float64
	// ValLoss and ValAcc are the last validation's, NaN without validation.
	ValLoss, ValAcc float64
	// ResumedAt is the step the run resumed from (0 for a fresh run).
	ResumedAt int
}

// Fit runs the fine-tuning loop of "dnx finetune" (runtime/train.Fit) on in-memory data: epochs
// of batches, a validation after every epoch, checkpoints and resume, and its divergence rule (a
// non-finite loss, or one above 100 x max(first loss, ln(classes)), stops the run with an error
// matching ErrDiverged). A cancelled ctx stops the run between steps, saves the checkpoint (with
// CheckpointDir) and returns an error matching ctx.Err(). The learning rate is the trainer's.
func (t *Trainer) Fit(ctx context.Context, opts FitOptions) (FitResult, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res, err := t.fit(ctx, opts)
	return res, wrapf(err, "fit")
}

func (t *Trainer) fit(ctx context.Context, o FitOptions) (FitResult, error) {
	switch {
	case (o.Epochs > 0) == (o.Steps > 0) || o.Epochs < 0 || o.Steps < 0:
		return FitResult{}, fmt.Errorf("%w: give the run's length as Epochs or Steps (got %d and %d)", ErrOptions, o.Epochs, o.Steps)
	case o.Batch <= 0:
		return FitResult{}, fmt.Errorf("%w: Batch %d, want 1 or more", ErrOptions, o.Batch)
	case o.Resume && o.CheckpointDir == "":
		return FitResult{}, fmt.Errorf("%w: Resume needs a CheckpointDir", ErrOptions)
	}
	classes := t.tr.Classes()
	trainDS, err := newMemDataset(o.Images, o.Labels, classes)
	if err != nil {
		return FitResult{}, fmt.Errorf("images: %w", err)
	}
	trainLd, err := data.NewLoader(trainDS, data.LoaderOptions{Batch: o.Batch, Shuffle: o.Shuffle, Seed: o.Seed})
	if err != nil {
		return FitResult{}, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	total := o.Steps
	if o.Epochs > 0 {
		total = o.Epochs * trainLd.Batches()
	}
	cfg := train.FitConfig{Train: trainLd, Steps: total, Classes: classes}
	if o.ValImages != nil {
		valDS, err := newMemDataset(o.ValImages, o.ValLabels, classes)
		if err != nil {
			return FitResult{}, fmt.Errorf("validation images: %w", err)
		}
		if cfg.Val, err = data.NewLoader(valDS, data.LoaderOptions{Batch: o.Batch}); err != nil {
			return FitResult{}, fmt.Errorf("%w: %w", ErrOptions, err)
		}
	}
	// The options that decide the batches; a resumed run must have the same ones.
	settings := map[string]string{
		"images": strconv.Itoa(trainDS.Len()), "batch": strconv.Itoa(o.Batch), "shuffle": strconv.FormatBool(o.Shuffle),
		"seed": strconv.FormatInt(o.Seed, 10), "steps": strconv.Itoa(total),
	}
	cfg.Checkpoint = train.CheckpointConfig{Dir: o.CheckpointDir, Every: o.CheckpointEvery, SaveOnCancel: true, Settings: settings}
	if o.Resume {
		meta, err := train.LoadCheckpoint(o.CheckpointDir, t.tr)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return FitResult{}, fmt.Errorf("resume: %w", err)
		case !maps.Equal(meta.Settings, settings):
			return FitResult{}, fmt.Errorf("%w: resume: the checkpoint in %s was made with other options (%v, now %v)", ErrOptions, o.CheckpointDir, meta.Settings, settings)
		default:
			cfg.Start = meta.FitState
		}
	}
	if o.Progress != nil {
		cfg.Progress = func(ev train.Event) error {
			p := FitProgress{Step: ev.State.Step, Steps: ev.Total, Epoch: ev.State.Epoch + 1}
			switch ev.Kind {
			case train.EventStep:
				p.Loss, p.Acc, p.LR = ev.Stats.Loss, float64(ev.Stats.Correct)/float64(ev.Images), ev.Stats.LR
			case train.EventValidation:
				p.Validation, p.ValLoss, p.ValAcc = true, ev.Val.Loss, ev.Val.Acc
			default:
				return nil
			}
			if ev.RunTime > 0 && ev.RunSteps > 0 {
				p.ImagesPerSecond = float64(ev.RunImages) / ev.RunTime.Seconds()
				p.ETA = time.Duration(float64(ev.RunTime) / float64(ev.RunSteps) * float64(ev.Total-ev.State.Step))
			}
			return o.Progress(p)
		}
	}
	sum, err := train.Fit(ctx, t.tr, cfg)
	st := sum.State
	res := FitResult{Steps: st.Step, Epochs: sum.Epochs, ResumedAt: cfg.Start.Step, ValLoss: math.NaN(), ValAcc: math.NaN()}
	sums := st.Running
	if st.LastEpoch != nil && (sums.Images == 0 || st.Batch == 0) {
		sums = *st.LastEpoch
	}
	res.TrainLoss, res.TrainAcc = sums.Loss(), sums.Acc()
	if st.LastVal != nil {
		res.ValLoss, res.ValAcc = st.LastVal.Loss, st.LastVal.Acc
	}
	return res, err
}

// memDataset is a data.Dataset over images and labels in memory, for Trainer.Fit.
type memDataset struct {
	x       []float32
	labels  []int64
	h, w    int
	classes int
}

// newMemDataset checks images [N, 3, H, W] float32 and N labels in [0, classes).
func newMemDataset(images *Tensor, labels []int64, classes int) (*memDataset, error) {
	if images == nil || images.t == nil {
		return nil, fmt.Errorf("%w: nil images", ErrInput)
	}
	x := images.t
	if x.DType != tensor.Float32 || len(x.Shape) != 4 || x.Shape[1] != 3 || x.Shape[0] != len(labels) || len(labels) == 0 {
		return nil, fmt.Errorf("%w: images %v with %d labels; want [N, 3, H, W] float32 and N labels, N > 0", ErrInput, x, len(labels))
	}
	for i, y := range labels {
		if y < 0 || y >= int64(classes) {
			return nil, fmt.Errorf("%w: label %d of image %d is outside the model's %d classes", ErrInput, y, i, classes)
		}
	}
	return &memDataset{x: tensor.Data[float32](x), labels: labels, h: x.Shape[2], w: x.Shape[3], classes: classes}, nil
}

func (d *memDataset) Len() int         { return len(d.labels) }
func (d *memDataset) NumClasses() int  { return d.classes }
func (d *memDataset) Size() (h, w int) { return d.h, d.w }
func (d *memDataset) ClassNames() []string {
	names := make([]string, d.classes)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// Load returns image i as it is: the tensors are taken as already normalised, and Fit does not
// augment them.
func (d *memDataset) Load(i int, _ bool, _ *rand.Rand) (data.Example, error) {
	n := 3 * d.h * d.w
	return data.Example{Image: d.x[i*n : (i+1)*n], Label: int(d.labels[i])}, nil
}

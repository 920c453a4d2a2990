package dnx

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/runtime/labels"
	"github.com/dnx-ml/dnx/runtime/ops"
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
// It does one step at a time on batches the caller makes (see Batch and LoadImage): data
// loading, shuffling, augmentation, epochs, validation and learning-rate schedules are the
// caller's, or dnx's command line's ("dnx finetune"), whose loop is to move into the runtime
// and then here.
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

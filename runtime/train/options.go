package train

import (
	"errors"
	"fmt"
	"github.com/dnx-ml/dnx/runtime/device"
	"math"
	"strings"
)

// ErrOptions is wrapped by every error about invalid Options (optimizer, schedule, label
// smoothing).
var ErrOptions = errors.New("invalid training options")

// OptimConfig selects and parameterizes the optimizer, with torch.optim's meaning for each field.
//
// Name is "sgd" (the default when empty), "adam" or "adamw". SGD uses LR, Momentum, Dampening,
// WeightDecay and Nesterov; Adam and AdamW use LR, Beta1, Beta2, Eps and WeightDecay (coupled L2
// for Adam, decoupled decay for AdamW). Beta1, Beta2 and Eps of 0 mean PyTorch's defaults 0.9,
// 0.999 and 1e-8. ClipNorm > 0 rescales the gradients so that their global L2 norm is at most
// ClipNorm (torch.nn.utils.clip_grad_norm_) before the optimizer sees them.
type OptimConfig struct {
	Name                                 string
	LR, Momentum, Dampening, WeightDecay float64
	Nesterov                             bool
	Beta1, Beta2, Eps                    float64
	ClipNorm                             float64
}

// Schedule is the learning-rate schedule: the optimizer's LR at step t is Schedule.LR(LR, t).
// Kind is "constant" (the default when empty), "step" (multiply by Gamma every StepSize steps)
// or "cosine" (cosine annealing to 0 at TotalSteps). WarmupSteps > 0 first ramps the rate
// linearly over that many steps; the schedule proper then starts from step WarmupSteps.
type Schedule struct {
	Kind                    string
	StepSize                int
	Gamma                   float64
	WarmupSteps, TotalSteps int
}

// Options configures a Trainer.
type Options struct {
	Optim    OptimConfig
	Schedule Schedule
	// MemoryEfficient recomputes, during the backward pass, the BatchNormalization-ReLU outputs
	// that feed convolutions instead of keeping them, and lays each dense block's features out in
	// one shared buffer that every concatenation views (Pleiss et al., "Memory-Efficient
	// Implementation of DenseNets"). Results are identical either way; DefaultOptions turns it on.
	MemoryEfficient bool
	// Freeze lists initializer name prefixes whose tensors are not trained.
	Freeze []string
	// FreezeBNStats makes BatchNormalization normalize with its running statistics (as in
	// inference) and leaves them unchanged; gamma and beta still train unless frozen.
	FreezeBNStats bool
	// LabelSmoothing is CrossEntropyLoss's label_smoothing, in [0, 1].
	LabelSmoothing float64
	// Threads is the number of worker threads (GOMAXPROCS when <= 0).
	Threads int
	// Device is the device whose training kernels run the passes (and whose Threads then
	// replace Threads); nil opens the CPU for each pass (package devices). A device given here
	// is the caller's to close, after the trainer's last pass.
	Device device.Device
	// MaxMemory bounds, in bytes, the training arena and every tensor computed while planning
	// (membudget.Budget): 0 means membudget.Default (a fraction of physical memory), a negative
	// value no bound.
	MaxMemory int64
	// Seed seeds the random choices of training-mode operators (Dropout's masks): the same
	// seed, step number and model give the same masks, whatever the thread count or memory mode.
	Seed uint64
}

// DefaultOptions returns the defaults: SGD with learning rate 0.01, momentum 0.9 and weight decay
// 1e-4, a constant schedule, and the memory-efficient mode.
func DefaultOptions() Options {
	return Options{
		Optim:           OptimConfig{Name: "sgd", LR: 0.01, Momentum: 0.9, WeightDecay: 1e-4},
		Schedule:        Schedule{Kind: "constant"},
		MemoryEfficient: true,
	}
}

// StepStats describes one training step.
type StepStats struct {
	Loss     float64 // mean loss of the step's forward pass (before the update)
	Correct  int     // samples whose largest logit is their label
	LR       float64 // learning rate of the update
	GradNorm float64 // global L2 norm of the gradients, before clipping and weight decay
	// ActivationBytes is the peak, over the step, of the bytes of activations held for the
	// backward pass: tensors kept from the forward pass plus the buffers activations are
	// recomputed or restaged into during the backward pass (gradients and kernel scratch are not
	// counted).
	ActivationBytes int64
}

// optimizer names.
const (
	optSGD   = "sgd"
	optAdam  = "adam"
	optAdamW = "adamw"
)

// normalize fills defaults and checks o; it returns the normalized copy.
func (o Options) normalize() (Options, error) {
	c := &o.Optim
	c.Name = strings.ToLower(c.Name)
	if c.Name == "" {
		c.Name = optSGD
	}
	bad := func(format string, args ...any) (Options, error) {
		return o, fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	for _, v := range []float64{c.LR, c.Momentum, c.Dampening, c.WeightDecay, c.Beta1, c.Beta2, c.Eps, c.ClipNorm, o.LabelSmoothing, o.Schedule.Gamma} {
		if !finite(v) {
			return bad("options hold a non-finite number")
		}
	}
	switch {
	case c.LR < 0:
		return bad("learning rate %g is negative", c.LR)
	case c.WeightDecay < 0:
		return bad("weight decay %g is negative", c.WeightDecay)
	case c.ClipNorm < 0:
		return bad("clip norm %g is negative", c.ClipNorm)
	case o.LabelSmoothing < 0 || o.LabelSmoothing > 1:
		return bad("label smoothing %g is outside [0, 1]", o.LabelSmoothing)
	}
	switch c.Name {
	case optSGD:
		if c.Momentum < 0 || c.Dampening < 0 {
			return bad("SGD momentum %g and dampening %g must not be negative", c.Momentum, c.Dampening)
		}
		if c.Nesterov && (c.Momentum <= 0 || c.Dampening != 0) {
			return bad("Nesterov momentum requires a momentum and zero dampening")
		}
	case optAdam, optAdamW:
		if c.Beta1 == 0 {
			c.Beta1 = 0.9
		}
		if c.Beta2 == 0 {
			c.Beta2 = 0.999
		}
		if c.Eps == 0 {
			c.Eps = 1e-8
		}
		if c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1 || c.Eps < 0 {
			return bad("Adam betas (%g, %g) must be in [0, 1) and eps %g not negative", c.Beta1, c.Beta2, c.Eps)
		}
	default:
		return bad("unknown optimizer %q (want sgd, adam or adamw)", c.Name)
	}
	if err := o.Schedule.check(); err != nil {
		return o, err
	}
	o.Schedule.Kind = strings.ToLower(o.Schedule.Kind)
	return o, nil
}

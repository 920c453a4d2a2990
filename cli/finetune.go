package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/data"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/labels"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/train"
)

func finetuneCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "finetune",
		Usage:     "fine-tune a DenseNet ONNX model on labelled images and write the trained model",
		ArgsUsage: "MODEL",
		Description: "Trains MODEL (an ONNX DenseNet in training form: BatchNormalization nodes kept, as\n" +
			"'dnx build' writes it or PyTorch exports it with training=PRESERVE) on one data source:\n" +
			"  --data DIR          an image folder, one sub-folder of PNG/JPEG files per class\n" +
			"  --cifar DIR         the CIFAR-10/100 binary distribution (training split)\n" +
			"  --x FILE --y FILE   [N,3,H,W] float32 images (already normalised) and [N] labels (.npy or .pb)\n" +
			"Validation (loss and accuracy after every epoch) uses --val DIR (an image folder for --data,\n" +
			"the CIFAR test split for --cifar), --val-x FILE --val-y FILE (tensors, for --x/--y) or\n" +
			"--val-split F (a random fraction held out).\n" +
			"\n" +
			"Images (--data, --cifar) are resized to the model's input size (its input dims, or\n" +
			"--input-size) and normalised with the mean/std its metadata names (models from 'dnx build'\n" +
			"or 'dnx finetune'); --mean R,G,B and --std R,G,B override it. A model without that metadata\n" +
			"(a PyTorch export) needs both flags, e.g. ImageNet's --mean 0.485,0.456,0.406\n" +
			"--std 0.229,0.224,0.225. Tensors (--x) are taken as already normalised. Every image's header\n" +
			"is checked before training; an image that cannot be decoded is skipped with a warning and\n" +
			"counted in the summary.\n" +
			"\n" +
			"The run lasts --epochs E or --steps S of --batch B images. --checkpoint DIR saves the state\n" +
			"every epoch, every --checkpoint-every steps and on SIGINT (Ctrl-C) or SIGTERM, which then end\n" +
			"the run with status 130 or 143; run the same command with --resume to continue: the result is\n" +
			"the same as an uninterrupted run's. A run without --resume refuses a DIR that holds another\n" +
			"run's checkpoint unless --overwrite is given. The result, written atomically to -o, is an\n" +
			"eval-mode ONNX model with the initializer names of MODEL and updated BatchNormalization\n" +
			"running statistics. -o, --log-json and --checkpoint are checked before training starts:\n" +
			"writable, and none of them an input (the model, its external data, the data files) or inside\n" +
			"a data folder. With --data, the class folders' names go into the model's metadata (\"labels\"),\n" +
			"where dnx run finds them.\n" +
			"\n" +
			"Divergence stops the run at once, with status 1 and no -o model: a step whose loss or\n" +
			"gradient is not finite (the step is not applied), or a loss above 100 x max(the first step's\n" +
			"loss, ln(classes)). No checkpoint is saved then: the last one saved before the divergence\n" +
			"stays (resuming with the same settings would diverge again; start afresh with a lower --lr\n" +
			"or --clip-norm).\n" +
			"\n" +
			"Progress goes to stderr; --log-json FILE (or - for stdout) gets one JSON object per step\n" +
			"(step, epoch, loss, acc, lr, images_per_s, ...) and per validation (epoch, val_acc, val_loss).\n" +
			"With --resume the file is continued from the checkpoint's step: lines a stopped run wrote\n" +
			"after its last checkpoint are dropped first.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "data", Usage: "training image folder `DIR` (one sub-folder per class)"},
			&ucli.StringFlag{Name: "cifar", Usage: "CIFAR-10/100 binary `DIR` (data_batch_*.bin or train.bin)"},
			&ucli.StringFlag{Name: "x", Usage: "training images `FILE` (.npy or .pb), [N,3,H,W] float32, normalised"},
			&ucli.StringFlag{Name: "y", Usage: "training labels `FILE` (.npy or .pb), [N] int64 or int32"},
			&ucli.StringFlag{Name: "val", Usage: "validation `DIR`: an image folder with --data, a CIFAR folder (test split) with --cifar"},
			&ucli.StringFlag{Name: "val-x", Usage: "validation images `FILE` (.npy or .pb) for --x/--y, [N,3,H,W] float32, normalised"},
			&ucli.StringFlag{Name: "val-y", Usage: "validation labels `FILE` (.npy or .pb) for --x/--y, [N] int64 or int32"},
			&ucli.Float64Flag{Name: "val-split", Usage: "hold out the fraction `F` (0 < F < 1) of the training data for validation"},
			&ucli.IntFlag{Name: "epochs", Usage: "train for `E` passes over the data"},
			&ucli.IntFlag{Name: "steps", Usage: "train for `S` optimizer steps (batches)"},
			&ucli.IntFlag{Name: "batch", Usage: "images per step `B`"},
			&ucli.StringFlag{Name: "optimizer", Value: "sgd", Usage: "optimizer `NAME`: sgd, adam or adamw"},
			&ucli.Float64Flag{Name: "lr", Usage: "learning rate `X` (a run whose loss becomes non-finite or exceeds 100 x max(first loss, ln classes) stops)", DefaultText: "0.01 for sgd, 0.001 for adam and adamw"},
			&ucli.Float64Flag{Name: "momentum", Value: 0.9, Usage: "SGD momentum `X`"},
			&ucli.Float64Flag{Name: "weight-decay", Usage: "weight decay `X` (L2 for sgd and adam, decoupled for adamw)", DefaultText: "1e-4 for sgd, 0 for adam, 0.01 for adamw"},
			&ucli.BoolFlag{Name: "nesterov", Usage: "Nesterov momentum (sgd)"},
			&ucli.StringFlag{Name: "schedule", Value: "constant", Usage: "learning-rate schedule `KIND`: constant, step or cosine (to 0 at the last step)"},
			&ucli.IntFlag{Name: "warmup", Usage: "ramp the learning rate up linearly over the first `N` steps"},
			&ucli.IntFlag{Name: "step-size", Usage: "step schedule: multiply the learning rate by --gamma every `N` steps"},
			&ucli.Float64Flag{Name: "gamma", Value: 0.1, Usage: "step schedule: decay factor `X`"},
			&ucli.Float64Flag{Name: "label-smoothing", Usage: "cross-entropy label smoothing `X` in [0, 1)"},
			&ucli.Float64Flag{Name: "clip-norm", Usage: "clip the gradients' global L2 norm to `X` (0: no clipping)"},
			&ucli.IntFlag{Name: "classes", Usage: "replace the classifier with a fresh one of `N` outputs"},
			&ucli.StringSliceFlag{Name: "freeze", Usage: "do not train the initializers whose names start with `PREFIX` (repeatable; e.g. features)"},
			&ucli.BoolFlag{Name: "freeze-bn", Usage: "normalise with the BN running statistics and keep them unchanged"},
			&ucli.Int64Flag{Name: "seed", Value: 1, Usage: "`N` seeds the shuffling, augmentation, --val-split, --classes head and Dropout masks"},
			&ucli.BoolFlag{Name: "no-shuffle", Usage: "visit the training images in order"},
			&ucli.BoolFlag{Name: "no-augment", Usage: "no random crops and flips"},
			&ucli.BoolFlag{Name: "memory-efficient", Value: true, Usage: "recompute BN-ReLU outputs in the backward pass instead of keeping them (--memory-efficient=false to keep them)"},
			threadsFlag(),
			maxMemoryFlag(),
			&ucli.StringFlag{Name: "checkpoint", Usage: "save checkpoints in `DIR` (every epoch, every --checkpoint-every steps, on interrupt)"},
			&ucli.IntFlag{Name: "checkpoint-every", Usage: "also save a checkpoint every `N` steps"},
			&ucli.BoolFlag{Name: "resume", Usage: "continue from the checkpoint in --checkpoint DIR"},
			&ucli.BoolFlag{Name: "overwrite", Usage: "start afresh even though --checkpoint DIR holds another run's checkpoint (replaced at the first save)"},
			&ucli.StringFlag{Name: "log-json", Usage: "write one JSON line per step and per validation to `FILE` as the run goes (- for stdout; continued from the checkpoint's step with --resume)"},
			&ucli.StringFlag{Name: "mean", Usage: "normalise images with the per-channel mean `R,G,B` (of [0,1] pixels; overrides the model's metadata)"},
			&ucli.StringFlag{Name: "std", Usage: "normalise images with the per-channel standard deviation `R,G,B` (> 0; overrides the model's metadata)"},
			&ucli.IntFlag{Name: "input-size", Usage: "image height and width `S` when the model's input dims are symbolic"},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output model `FILE` (.onnx), written atomically"},
			&ucli.BoolFlag{Name: "json", Usage: "print the final summary as one JSON object (and no progress line)"},
		},
		Action: finetuneAction,
	}
}

// finetuneConfig is the parsed command line of dnx finetune.
type finetuneConfig struct {
	model                   string
	dataDir, cifarDir, x, y string
	val, valX, valY         string
	valSplit                float64
	mean, std               *[3]float32 // --mean, --std; nil when not given
	epochs, steps, batch    int
	opts                    train.Options
	classes                 int
	seed                    int64
	shuffle, augment        bool
	checkpoint              string
	checkpointEvery         int
	resume, overwrite       bool
	logJSON                 string
	inputSize               int
	output                  string
	json                    bool
}

// source names the training data flag in use, for messages.
func (c *finetuneConfig) source() string {
	switch {
	case c.dataDir != "":
		return "--data " + c.dataDir
	case c.cifarDir != "":
		return "--cifar " + c.cifarDir
	}
	return "--x " + c.x
}

// parseFinetune checks the command line and turns it into a finetuneConfig. Every error is a
// usage error.
func parseFinetune(c *ucli.Context) (*finetuneConfig, error) {
	if err := exactArgs(c, "MODEL"); err != nil {
		return nil, err
	}
	cfg := &finetuneConfig{
		model: c.Args().First(), dataDir: c.String("data"), cifarDir: c.String("cifar"),
		x: c.String("x"), y: c.String("y"), val: c.String("val"), valX: c.String("val-x"), valY: c.String("val-y"),
		valSplit: c.Float64("val-split"), overwrite: c.Bool("overwrite"),
		epochs: c.Int("epochs"), steps: c.Int("steps"), batch: c.Int("batch"),
		classes: c.Int("classes"), seed: c.Int64("seed"),
		shuffle: !c.Bool("no-shuffle"), augment: !c.Bool("no-augment"),
		checkpoint: c.String("checkpoint"), checkpointEvery: c.Int("checkpoint-every"), resume: c.Bool("resume"),
		logJSON: c.String("log-json"), inputSize: c.Int("input-size"), output: c.String("output"), json: c.Bool("json"),
	}
	sources := 0
	for _, set := range []bool{cfg.dataDir != "", cfg.cifarDir != "", cfg.x != "" || cfg.y != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		return nil, usagef("finetune: say where the training data is: --data DIR (image folder), --cifar DIR or --x FILE --y FILE")
	case sources > 1:
		return nil, usagef("finetune: give one training data source: --data, --cifar or --x/--y")
	case (cfg.x == "") != (cfg.y == ""):
		return nil, usagef("finetune: --x and --y go together (images and labels)")
	}
	valSources := 0
	for _, set := range []bool{c.IsSet("val"), c.IsSet("val-split"), cfg.valX != "" || cfg.valY != ""} {
		if set {
			valSources++
		}
	}
	switch {
	case valSources > 1:
		return nil, usagef("finetune: give one validation source: --val DIR, --val-x FILE --val-y FILE or --val-split F")
	case (cfg.valX == "") != (cfg.valY == ""):
		return nil, usagef("finetune: --val-x and --val-y go together (validation images and labels)")
	case cfg.valX != "" && cfg.x == "":
		return nil, usagef("finetune: --val-x/--val-y hold validation tensors for --x/--y; with --data or --cifar give a validation folder with --val DIR")
	case c.IsSet("val") && cfg.x != "":
		return nil, usagef("finetune: --val takes a folder, for --data or --cifar; with --x/--y give --val-x FILE --val-y FILE or hold out data with --val-split F")
	}
	for _, f := range []struct {
		name string
		dst  **[3]float32
		std  bool
	}{{"mean", &cfg.mean, false}, {"std", &cfg.std, true}} {
		if !c.IsSet(f.name) {
			continue
		}
		if cfg.x != "" {
			return nil, usagef("finetune: --%s applies to images (--data, --cifar); --x holds tensors that are taken as already normalised", f.name)
		}
		v, err := parseChannels(c.String(f.name), f.std)
		if err != nil {
			return nil, usagef("finetune: --%s %q: %v (e.g. ImageNet's --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)", f.name, c.String(f.name), err)
		}
		*f.dst = &v
	}
	if c.IsSet("val-split") && !(cfg.valSplit > 0 && cfg.valSplit < 1) {
		return nil, usagef("finetune: --val-split %g: want a fraction strictly between 0 and 1", cfg.valSplit)
	}
	switch {
	case c.IsSet("epochs") == c.IsSet("steps"):
		return nil, usagef("finetune: give the run's length as either --epochs E or --steps S")
	case c.IsSet("epochs") && cfg.epochs <= 0:
		return nil, usagef("finetune: --epochs %d: want 1 or more", cfg.epochs)
	case c.IsSet("steps") && cfg.steps <= 0:
		return nil, usagef("finetune: --steps %d: want 1 or more", cfg.steps)
	case !c.IsSet("batch"):
		return nil, usagef("finetune: missing --batch B (images per step, e.g. 64)")
	case cfg.batch <= 0 || cfg.batch > 1<<16:
		return nil, usagef("finetune: --batch %d: want 1..%d", cfg.batch, 1<<16)
	case cfg.output == "":
		return nil, usagef("finetune: missing -o OUT.onnx (where to write the trained model)")
	case cfg.classes < 0 || cfg.classes > data.MaxClasses:
		return nil, usagef("finetune: --classes %d: want 1..%d", cfg.classes, data.MaxClasses)
	case c.IsSet("classes") && cfg.classes == 0:
		return nil, usagef("finetune: --classes 0: want 1 or more")
	case cfg.inputSize < 0 || cfg.inputSize > imageio.MaxSize:
		return nil, usagef("finetune: --input-size %d: want 1..%d", cfg.inputSize, imageio.MaxSize)
	case cfg.resume && cfg.checkpoint == "":
		return nil, usagef("finetune: --resume needs --checkpoint DIR (the folder the interrupted run saved to)")
	case cfg.overwrite && cfg.checkpoint == "":
		return nil, usagef("finetune: --overwrite needs --checkpoint DIR (it allows replacing the checkpoint there)")
	case cfg.overwrite && cfg.resume:
		return nil, usagef("finetune: --resume continues the checkpoint in --checkpoint DIR and --overwrite replaces it: give one")
	case cfg.checkpointEvery < 0:
		return nil, usagef("finetune: --checkpoint-every %d: want 0 (per epoch only) or more", cfg.checkpointEvery)
	case cfg.checkpointEvery > 0 && cfg.checkpoint == "":
		return nil, usagef("finetune: --checkpoint-every needs --checkpoint DIR")
	}
	threads, err := threadsOption(c)
	if err != nil {
		return nil, err
	}
	maxMemory, err := memoryLimit(c)
	if err != nil {
		return nil, err
	}

	o := train.Options{
		MemoryEfficient: c.Bool("memory-efficient"),
		Freeze:          c.StringSlice("freeze"),
		FreezeBNStats:   c.Bool("freeze-bn"),
		LabelSmoothing:  c.Float64("label-smoothing"),
		Threads:         threads,
		MaxMemory:       maxMemory,
		Seed:            uint64(cfg.seed), // Dropout masks
	}
	for _, p := range o.Freeze {
		if p == "" {
			return nil, usagef("finetune: --freeze \"\": an empty prefix would freeze everything")
		}
	}
	name := strings.ToLower(c.String("optimizer"))
	lr, wd := 0.01, 1e-4
	switch name {
	case "sgd":
	case "adam":
		lr, wd = 1e-3, 0
	case "adamw":
		lr, wd = 1e-3, 0.01
	default:
		return nil, usagef("finetune: --optimizer %q: want sgd, adam or adamw", c.String("optimizer"))
	}
	if c.IsSet("lr") {
		lr = c.Float64("lr")
	}
	if c.IsSet("weight-decay") {
		wd = c.Float64("weight-decay")
	}
	o.Optim = train.OptimConfig{Name: name, LR: lr, WeightDecay: wd, ClipNorm: c.Float64("clip-norm")}
	if name == "sgd" {
		o.Optim.Momentum, o.Optim.Nesterov = c.Float64("momentum"), c.Bool("nesterov")
	} else if c.IsSet("momentum") || c.IsSet("nesterov") {
		return nil, usagef("finetune: --momentum and --nesterov apply to --optimizer sgd")
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !finite(lr) || lr <= 0:
		return nil, usagef("finetune: --lr %g: want a positive number", lr)
	case !finite(wd) || wd < 0:
		return nil, usagef("finetune: --weight-decay %g: want 0 or more", wd)
	case !finite(o.Optim.Momentum) || o.Optim.Momentum < 0 || o.Optim.Momentum >= 1:
		return nil, usagef("finetune: --momentum %g: want 0 <= X < 1", o.Optim.Momentum)
	case o.Optim.Nesterov && o.Optim.Momentum == 0:
		return nil, usagef("finetune: --nesterov needs a momentum above 0")
	case !finite(o.Optim.ClipNorm) || o.Optim.ClipNorm < 0:
		return nil, usagef("finetune: --clip-norm %g: want 0 (off) or more", o.Optim.ClipNorm)
	case !finite(o.LabelSmoothing) || o.LabelSmoothing < 0 || o.LabelSmoothing >= 1:
		return nil, usagef("finetune: --label-smoothing %g: want 0 <= X < 1", o.LabelSmoothing)
	}

	s := train.Schedule{Kind: strings.ToLower(c.String("schedule")), WarmupSteps: c.Int("warmup")}
	switch s.Kind {
	case "constant", "cosine":
		if c.IsSet("step-size") || c.IsSet("gamma") {
			return nil, usagef("finetune: --step-size and --gamma apply to --schedule step")
		}
	case "step":
		s.StepSize, s.Gamma = c.Int("step-size"), c.Float64("gamma")
		if s.StepSize <= 0 {
			return nil, usagef("finetune: --schedule step needs --step-size N (steps between decays), N >= 1")
		}
		if !finite(s.Gamma) || s.Gamma <= 0 || s.Gamma > 1 {
			return nil, usagef("finetune: --gamma %g: want 0 < X <= 1", s.Gamma)
		}
	default:
		return nil, usagef("finetune: --schedule %q: want constant, step or cosine", c.String("schedule"))
	}
	if s.WarmupSteps < 0 {
		return nil, usagef("finetune: --warmup %d: want 0 or more", s.WarmupSteps)
	}
	o.Schedule = s
	cfg.opts = o
	return cfg, nil
}

// parseChannels parses a mean or standard deviation (positive) per input channel: three finite
// numbers (R, G, B), comma-separated; a standard deviation must be above 0.
func parseChannels(s string, positive bool) ([3]float32, error) {
	var v [3]float32
	parts := strings.Split(s, ",")
	if len(parts) != len(v) {
		return v, fmt.Errorf("want %d comma-separated numbers, one per input channel (R,G,B)", len(v))
	}
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		switch {
		case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
			return v, fmt.Errorf("value %d (%q) is not a finite number", i+1, strings.TrimSpace(p))
		case positive && f <= 0:
			return v, fmt.Errorf("value %d is %g; a standard deviation must be above 0", i+1, f)
		}
		v[i] = float32(f)
	}
	return v, nil
}

// settings returns the settings that decide the result of the run, by flag name, for the
// checkpoint: a resumed run must agree on all of them except the run's length. modelHash is the
// SHA-256 of the model file.
func (c *finetuneConfig) settings(modelHash string, total int) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	o := c.opts
	s := map[string]string{
		"model-sha256": modelHash, "data": c.dataDir, "cifar": c.cifarDir, "x": c.x, "y": c.y,
		"val": c.val, "val-split": f(c.valSplit), "batch": strconv.Itoa(c.batch),
		"epochs": strconv.Itoa(c.epochs), "steps": strconv.Itoa(c.steps), "total-steps": strconv.Itoa(total),
		"optimizer": o.Optim.Name, "lr": f(o.Optim.LR), "momentum": f(o.Optim.Momentum),
		"weight-decay": f(o.Optim.WeightDecay), "nesterov": strconv.FormatBool(o.Optim.Nesterov),
		"clip-norm": f(o.Optim.ClipNorm), "schedule": o.Schedule.Kind, "warmup": strconv.Itoa(o.Schedule.WarmupSteps),
		"step-size": strconv.Itoa(o.Schedule.StepSize), "gamma": f(o.Schedule.Gamma),
		"label-smoothing": f(o.LabelSmoothing), "classes": strconv.Itoa(c.classes),
		"freeze": strings.Join(o.Freeze, ","), "freeze-bn": strconv.FormatBool(o.FreezeBNStats),
		"seed": strconv.FormatInt(c.seed, 10), "shuffle": strconv.FormatBool(c.shuffle),
		"augment": strconv.FormatBool(c.augment), "memory-efficient": strconv.FormatBool(o.MemoryEfficient),
		"input-size": strconv.Itoa(c.inputSize),
	}
	// Settings added after the checkpoint format are recorded only when given, so that older
	// checkpoints, which lack them, still resume.
	for k, v := range map[string]string{"val-x": c.valX, "val-y": c.valY, "mean": channelsText(c.mean), "std": channelsText(c.std)} {
		if v != "" {
			s[k] = v
		}
	}
	for _, k := range []string{"data", "cifar", "x", "y", "val", "val-x", "val-y"} {
		if s[k] != "" {
			if abs, err := filepath.Abs(s[k]); err == nil {
				s[k] = abs
			}
		}
	}
	return s
}

// resumeFree lists the settings a resumed run may change: the run's length (a cosine schedule
// also compares total-steps, which its learning rates depend on).
func resumeFree(schedule string) map[string]bool {
	free := map[string]bool{"epochs": true, "steps": true, "total-steps": true}
	if schedule == "cosine" {
		delete(free, "total-steps")
	}
	return free
}

// finetuneReport is what `dnx finetune --json` prints.
type finetuneReport struct {
	Model           string  `json:"model"`
	Output          string  `json:"output"`
	Steps           int     `json:"steps"`
	Epochs          int     `json:"epochs"`
	Batch           int     `json:"batch"`
	BatchesPerEpoch int     `json:"batches_per_epoch"`
	TrainImages     int     `json:"train_images"`
	ValImages       int     `json:"val_images"`
	Classes         int     `json:"classes"`
	ResumedAt       int     `json:"resumed_at_step"`
	TrainLoss       number  `json:"train_loss"`
	TrainAcc        number  `json:"train_acc"`
	ValLoss         *number `json:"val_loss"`
	ValAcc          *number `json:"val_acc"`
	LR              number  `json:"lr"`
	Seconds         number  `json:"seconds"`
	TrainSeconds    number  `json:"train_seconds"`
	ImagesPerS      number  `json:"images_per_s"`
	StepS           number  `json:"s_per_step"`
	ActivationBytes int64   `json:"activation_bytes"`
	PeakRSSBytes    int64   `json:"peak_rss_bytes"`
	MemoryEfficient bool    `json:"memory_efficient"`
	// Normalization describes the images' normalisation: "preset tiny", "--mean/--std", ...
	Normalization string `json:"normalization"`
	// NormalizationSource says where it comes from: "metadata", "flags", "metadata+flags" (one
	// of --mean and --std), or "none" for tensors, taken as already normalised.
	NormalizationSource string     `json:"normalization_source"`
	Mean                *[3]number `json:"mean"` // null for tensors
	Std                 *[3]number `json:"std"`
	// UnreadableImages counts the image files left out because they cannot be decoded.
	UnreadableImages int `json:"unreadable_images"`
}

// stepLog is one --log-json line per training step.
type stepLog struct {
	Step       int    `json:"step"`
	Epoch      int    `json:"epoch"`
	Batch      int    `json:"batch"`
	Loss       number `json:"loss"`
	Acc        number `json:"acc"`
	LR         number `json:"lr"`
	GradNorm   number `json:"grad_norm"`
	ImagesPerS number `json:"images_per_s"`
	StepS      number `json:"step_s"`
	ActBytes   int64  `json:"activation_bytes"`
}

// valLog is one --log-json line per validation.
type valLog struct {
	Epoch     int    `json:"epoch"`
	Step      int    `json:"step"`
	ValLoss   number `json:"val_loss"`
	ValAcc    number `json:"val_acc"`
	ValImages int    `json:"val_images"`
	TrainLoss number `json:"train_loss"`
	TrainAcc  number `json:"train_acc"`
}

// jsonLines writes one JSON object per line, each with a single Write so that a reader tailing
// the file never sees half a line (the file is unbuffered: every line reaches the OS at once).
type jsonLines struct {
	w      io.Writer
	closer io.Closer
}

func (l *jsonLines) write(v any) error {
	if l == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("--log-json: %w", err)
	}
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("--log-json: %w", err)
	}
	return nil
}

// close closes the file (not stdout); later calls do nothing.
func (l *jsonLines) close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	c := l.closer
	l.closer = nil
	return c.Close()
}

// openLog opens --log-json: "-" is stdout; a file is appended to when resuming, truncated
// otherwise.
func openLog(name string, stdout io.Writer, resume bool) (*jsonLines, error) {
	switch name {
	case "":
		return nil, nil
	case "-":
		return &jsonLines{w: stdout}, nil
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if resume {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--log-json: %w", err)
	}
	return &jsonLines{w: f, closer: f}, nil
}

// finetuneRun is the state of one dnx finetune run.
type finetuneRun struct {
	cfg       *finetuneConfig
	tr        *train.Trainer
	trainLd   *data.Loader
	valLd     *data.Loader
	classes   int                  // the model's outputs
	batches   int                  // per epoch
	total     int                  // steps of the whole run
	epochs    int                  // epochs the run touches
	meta      train.CheckpointMeta // where the run starts (a checkpoint's), then where it ended
	log       *jsonLines
	prog      *trainProgress
	stderr    io.Writer
	resumed   bool // from a checkpoint
	resumedAt int
	runImages int64         // images trained by this process
	runTrain  time.Duration // training time of this process
	// eventErr is the error of the last progress event (writing --log-json), which train.Fit
	// returns as is and the command too.
	eventErr error
}

func finetuneAction(c *ucli.Context) error {
	// With Go's default GOGC of 100 the heap settles near twice the live set. Almost all live
	// memory is the activation arena, which holds no pointers, so collecting often is cheap:
	// GOGC 10 took peak RSS on DenseNet-BC-100 at batch 64 from 924 to 521 MiB (with
	// gradient-buffer reuse) at no measurable step-time cost; it serves while the model and data
	// load, and training lowers it further (below). The process belongs to this command, so the
	// knob is set here.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	cfg, err := parseFinetune(c)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx := c.Context
	stderr := c.App.ErrWriter

	// The files first: a run must not train for an hour and then find that it cannot write.
	inputs, outputs := finetuneFiles(cfg)
	if err := checkFiles("finetune", inputs, outputs); err != nil {
		return err
	}
	if err := checkReadBudget("finetune", membudget.New(cfg.opts.MaxMemory), inputs); err != nil {
		return err
	}
	if err := prepareCheckpointDir(cfg.checkpoint, cfg.resume, cfg.overwrite, stderr); err != nil {
		return err
	}

	// The model, its metadata and its input size.
	m, err := onnx.ReadModelFile(cfg.model)
	if err != nil {
		return err
	}
	if err := checkConflicts("finetune", externalFiles(m, cfg.model), outputs); err != nil {
		return err
	}
	modelHash, err := fileSHA256(cfg.model)
	if err != nil {
		return err
	}
	g, err := graph.Import(m, filepath.Dir(cfg.model), ops.Default())
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.model, err)
	}
	m = nil // the graph holds the weights and the metadata; the protobuf need not live through training
	size, modelClasses, err := modelGeometry(g, cfg)
	if err != nil {
		return err
	}
	inMeta := g.MetadataMap()
	norm, err := runNormalization(inMeta, cfg)
	if err != nil {
		return err
	}

	// The data.
	seeds := train.Seeds{Data: cfg.seed, Split: cfg.seed, Head: cfg.seed}
	ds, err := openData(ctx, cfg, size, norm.norm, seeds.Split, stderr)
	if err != nil {
		return err
	}
	for i, u := range ds.unreadable {
		if i == maxWarnings {
			fmt.Fprintf(stderr, "finetune: warning: ... and %s more\n", plural.Count(len(ds.unreadable)-i, "unreadable image"))
			break
		}
		fmt.Fprintf(stderr, "finetune: warning: skipping an unreadable image: %v\n", u.Err)
	}
	trainDS, valDS := ds.train, ds.val
	classes := modelClasses
	if cfg.classes > 0 {
		classes = cfg.classes
	}
	if err := checkClasses(cfg, ds, classes, modelClasses); err != nil {
		return err
	}
	if cfg.classes > 0 {
		if err := train.ReplaceHead(g, cfg.classes, seeds.Head); err != nil {
			return fmt.Errorf("finetune: --classes %d: %s: %w", cfg.classes, cfg.model, err)
		}
	}

	run := &finetuneRun{cfg: cfg, classes: classes, stderr: stderr, prog: newTrainProgress(stderr, !cfg.json)}
	// Only image files can be unreadable; the header check found most, a truncated file is found
	// when it is decoded and skipped then.
	skip := cfg.dataDir != ""
	run.trainLd, err = data.NewLoader(trainDS, data.LoaderOptions{Batch: cfg.batch, Shuffle: cfg.shuffle, Augment: cfg.augment, Seed: seeds.Data, SkipUnreadable: skip})
	if err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	run.batches = run.trainLd.Batches()
	if run.batches == 0 {
		return fmt.Errorf("finetune: %s: no training images", cfg.source())
	}
	if valDS != nil && valDS.Len() > 0 {
		if run.valLd, err = data.NewLoader(valDS, data.LoaderOptions{Batch: cfg.batch, Seed: seeds.Data, SkipUnreadable: skip}); err != nil {
			return fmt.Errorf("finetune: %w", err)
		}
	}
	run.total = cfg.steps
	if cfg.epochs > 0 {
		run.total = cfg.epochs * run.batches
	}
	run.epochs = (run.total + run.batches - 1) / run.batches
	opts := cfg.opts
	opts.Schedule.TotalSteps = run.total
	if opts.Schedule.Kind == "cosine" && run.total <= opts.Schedule.WarmupSteps {
		return usagef("finetune: --warmup %d must be below the run's %s for --schedule cosine", opts.Schedule.WarmupSteps, plural.Count(run.total, "step"))
	}
	run.tr, err = train.New(g, opts)
	if errors.Is(err, train.ErrOptions) && len(opts.Freeze) > 0 { // a --freeze prefix that matches nothing
		return usageError{fmt.Errorf("finetune: --freeze: %s: %w", cfg.model, err)}
	}
	if err != nil {
		return fmt.Errorf("finetune: %s: %w", cfg.model, err)
	}
	// From here on the heap is the trainer's: an arena and working memory sized once, and a
	// step makes about 1 MB of garbage (mostly the loader's batch). At GOGC 10 the heap would
	// grow by a tenth of the live ~400 MB before each collection, 40 MB of peak RSS in any run
	// longer than a few dozen steps; at 2 it grows by 8 MB, and each collection (a few ms, the
	// arena holding no pointers) comes every several steps.
	debug.SetGCPercent(2)

	// Resume, or start afresh.
	settings := cfg.settings(modelHash, run.total)
	run.meta = train.CheckpointMeta{Settings: settings, Seeds: seeds}
	if cfg.resume {
		meta, state, err := train.ReadCheckpoint(cfg.checkpoint)
		switch {
		case isNotExist(err):
			fmt.Fprintf(stderr, "finetune: no checkpoint in %s yet: starting from the beginning\n", cfg.checkpoint)
		case err != nil:
			return fmt.Errorf("finetune: --resume: %w", err)
		default:
			if diffs := settingsDiff(meta.Settings, settings, resumeFree(opts.Schedule.Kind)); len(diffs) > 0 {
				return usagef("finetune: --resume: the checkpoint in %s was made with other settings: %s", cfg.checkpoint, strings.Join(diffs, ", "))
			}
			if meta.Seeds != seeds {
				return usagef("finetune: --resume: the checkpoint in %s was made with --seed %d, this run has --seed %d", cfg.checkpoint, meta.Seeds.Data, cfg.seed)
			}
			if meta.Batch > run.batches || meta.Step != meta.Epoch*run.batches+meta.Batch {
				return fmt.Errorf("finetune: --resume: %s: position epoch %d, batch %d, step %d does not fit %s per epoch",
					train.CheckpointPath(cfg.checkpoint), meta.Epoch, meta.Batch, meta.Step, plural.Count(run.batches, "batch", "batches"))
			}
			if meta.Step > run.total {
				return usagef("finetune: --resume: the checkpoint in %s is at step %d, past this run's %s", cfg.checkpoint, meta.Step, plural.Count(run.total, "step"))
			}
			if err := run.tr.LoadState(bytes.NewReader(state)); err != nil {
				return fmt.Errorf("finetune: --resume: %s: %w", train.CheckpointPath(cfg.checkpoint), err)
			}
			if n := run.tr.StepCount(); n != meta.Step {
				return fmt.Errorf("finetune: --resume: %s: the trainer state has %s, the header %d", train.CheckpointPath(cfg.checkpoint), plural.Count(n, "step"), meta.Step)
			}
			meta.Settings = settings // the new run length
			run.meta = meta
			run.resumed, run.resumedAt = true, meta.Step
		}
	}

	// The log continues the checkpoint's: what a stopped run wrote after it is dropped, so that
	// no step appears twice.
	if run.resumed && cfg.logJSON != "" && cfg.logJSON != "-" {
		n, err := trimLog(cfg.logJSON, run.meta, run.batches)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(stderr, "finetune: --log-json %s: dropped %s written after the checkpoint (step %d)\n", cfg.logJSON, plural.Count(n, "line"), run.meta.Step)
		}
	}
	if run.log, err = openLog(cfg.logJSON, c.App.Writer, run.resumed); err != nil {
		return err
	}
	defer run.log.close()

	if err := run.fit(ctx); err != nil {
		return err
	}

	// Export the eval-mode model with the trained weights.
	eg := run.tr.Graph() // carries the input model's metadata and doc string
	finetuneMetadata(eg, classes, run.meta.Step, norm, finetuneLabels(cfg, ds, classes, inMeta))
	out, err := graph.Export(eg)
	if err != nil {
		return fmt.Errorf("finetune: export: %w", err)
	}
	if err := onnx.WriteModelFile(cfg.output, out); err != nil {
		return err
	}
	if err := run.log.close(); err != nil {
		return fmt.Errorf("--log-json: %w", err)
	}

	rep := run.report(ds, norm, time.Since(start))
	if cfg.json {
		return writeJSON(c.App.Writer, rep)
	}
	return printFinetune(c.App.Writer, rep)
}

// maxWarnings bounds the unreadable images named one by one on stderr.
const maxWarnings = 10

// checkClasses checks that every label of the data is one of the model's classes (classes, which
// is --classes when given): a label file's bad label is reported with the file, the example and
// the value; the other sources by their class count.
func checkClasses(cfg *finetuneConfig, ds *finetuneData, classes, modelClasses int) error {
	valFlag := "--y" // held out by --val-split
	if cfg.valY != "" {
		valFlag = "--val-y"
	}
	for _, src := range []struct {
		d    data.Dataset
		flag string
	}{{ds.train, "--y"}, {ds.val, valFlag}} {
		if src.d == nil {
			continue
		}
		if bad, ok := data.FirstLabelOutside(src.d, classes); ok {
			whose := "of " + cfg.model
			if cfg.classes > 0 {
				whose = "of --classes " + strconv.Itoa(cfg.classes)
			} else if src.flag == "--y" {
				whose += fmt.Sprintf("; replace its classifier with --classes %d", src.d.NumClasses())
			}
			return fmt.Errorf("finetune: %s %s: label %d of example %d is outside the %s [0, %d) %s",
				src.flag, bad.File, bad.Label, bad.Index, plural.Count(classes, "class", "classes"), classes, whose)
		}
	}
	switch n := ds.train.NumClasses(); {
	case cfg.classes > 0 && n > cfg.classes:
		return fmt.Errorf("finetune: %s has %s, more than --classes %d", cfg.source(), plural.Count(n, "class", "classes"), cfg.classes)
	case n > modelClasses && cfg.classes == 0:
		return fmt.Errorf("finetune: %s has %s but %s predicts %d; replace its classifier with --classes %d",
			cfg.source(), plural.Count(n, "class", "classes"), cfg.model, modelClasses, n)
	case ds.val != nil && ds.val.NumClasses() > classes:
		return fmt.Errorf("finetune: --val %s has %s but the model predicts %d", cfg.val, plural.Count(ds.val.NumClasses(), "class", "classes"), classes)
	}
	return nil
}

// finetuneFiles returns the files and folders a run reads and writes, for checkFiles: a run must
// not train for an hour and then find that it cannot write, or that it would overwrite its own
// model or data.
func finetuneFiles(cfg *finetuneConfig) (inputs, outputs []fileArg) {
	inputs = []fileArg{
		{path: cfg.model},
		{flag: "--data", path: cfg.dataDir, dir: true}, {flag: "--cifar", path: cfg.cifarDir, dir: true},
		{flag: "--val", path: cfg.val, dir: true},
		{flag: "--x", path: cfg.x}, {flag: "--y", path: cfg.y}, {flag: "--val-x", path: cfg.valX}, {flag: "--val-y", path: cfg.valY},
	}
	outputs = []fileArg{{flag: "-o", path: cfg.output}}
	if cfg.logJSON != "-" {
		outputs = append(outputs, fileArg{flag: "--log-json", path: cfg.logJSON, inPlace: true})
	}
	return inputs, append(outputs, fileArg{flag: "--checkpoint", path: cfg.checkpoint, dir: true, files: []string{train.CheckpointName}})
}

// trimLog prepares a --log-json file for a run resumed from the checkpoint meta: it drops what a
// stopped run wrote after that checkpoint, so that the file reads as one run with no step twice.
// The lines dropped are the first step line past meta.Step and everything after it, the
// validation line of the epoch the checkpoint ends when its validation is still to run
// (meta.Batch == batches), and a last line cut short. It returns the number of lines dropped; a
// missing file is not an error.
func trimLog(path string, meta train.CheckpointMeta, batches int) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if isNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("finetune: --log-json: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var off, cut int64 = 0, -1
	dropped := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if cut < 0 && (line[len(line)-1] != '\n' || !keepLogLine(line, meta, batches)) {
				cut = off
			}
			if cut >= 0 {
				dropped++
			}
			off += int64(len(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("finetune: --log-json: %w", err)
		}
	}
	if cut < 0 {
		return 0, nil
	}
	if err := f.Truncate(cut); err != nil {
		return 0, fmt.Errorf("finetune: --log-json: %w", err)
	}
	return dropped, nil
}

// keepLogLine reports whether a --log-json line was written before the checkpoint meta (see
// trimLog). Lines that are not ours are kept.
func keepLogLine(line []byte, meta train.CheckpointMeta, batches int) bool {
	var m map[string]json.RawMessage
	var step int
	if json.Unmarshal(line, &m) != nil || json.Unmarshal(m["step"], &step) != nil {
		return true
	}
	if _, isVal := m["val_images"]; isVal {
		// A validation line at the checkpoint's step precedes the save, unless the checkpoint was
		// taken before that validation (an interrupt during it: the epoch's batches all done).
		return step < meta.Step || (step == meta.Step && meta.Batch < batches)
	}
	return step <= meta.Step
}

// fit trains from run.meta's position to run.total steps with the library's loop (train.Fit:
// validation after every epoch, checkpoints, the divergence rule), showing the progress line
// and writing the --log-json lines, and turns its errors into the command's. An interrupt (ctx
// cancelled) ends the step in progress, saves a checkpoint when --checkpoint is given and
// returns an error saying so.
func (run *finetuneRun) fit(ctx context.Context) error {
	cfg := run.cfg
	fc := train.FitConfig{
		Train: run.trainLd, Steps: run.total, Classes: run.classes, Start: run.meta.FitState,
		Checkpoint: train.CheckpointConfig{
			Dir: cfg.checkpoint, Every: cfg.checkpointEvery, SaveOnCancel: true,
			Settings: run.meta.Settings, Seeds: run.meta.Seeds,
		},
		Progress: run.event,
		Skipped:  run.warnSkipped,
	}
	if run.valLd != nil { // a nil *data.Loader would be a non-nil train.Batches
		fc.Val = run.valLd
	}
	sum, err := train.Fit(ctx, run.tr, fc)
	run.meta.FitState = sum.State
	run.runImages, run.runTrain = sum.Images, sum.TrainTime
	if err == nil {
		return nil
	}
	run.prog.finish()
	var div *train.DivergedError
	var stop *train.CancelledError
	switch {
	case run.eventErr != nil && err == run.eventErr: // already says --log-json
		return err
	case errors.As(err, &div):
		what := fmt.Sprintf("loss %g, gradient norm %g (the step was not applied)", div.Loss, div.GradNorm)
		if div.Applied {
			what = div.LimitText()
		}
		return run.diverged(div.Step, div.Epoch, what)
	case errors.As(err, &stop):
		return run.interrupted(ctx, stop)
	}
	return fmt.Errorf("finetune: %w", err)
}

// event shows the loop's progress: the progress line, the validation lines and the --log-json
// lines. Its error (writing the log) ends the run.
func (run *finetuneRun) event(ev train.Event) error {
	var err error
	switch ev.Kind {
	case train.EventStep:
		s, n := ev.Stats, ev.Images
		err = run.log.write(stepLog{
			Step: ev.State.Step, Epoch: ev.State.Epoch + 1, Batch: ev.State.Batch, Loss: number(s.Loss),
			Acc: number(float64(s.Correct) / float64(n)), LR: number(s.LR), GradNorm: number(s.GradNorm),
			ImagesPerS: number(float64(n) / ev.Duration.Seconds()), StepS: number(ev.Duration.Seconds()), ActBytes: s.ActivationBytes,
		})
		if err == nil && !(s.Loss > ev.LossLimit) { // a diverged step ends the run instead
			run.progress(ev, false)
		}
	case train.EventEpochEnd:
		run.progress(ev, true)
		run.prog.finish()
	case train.EventValidation:
		v := ev.Val
		run.prog.line(fmt.Sprintf("epoch %d/%d  validation  loss %.4f  acc %.2f%%  (%s)", ev.State.Epoch+1, ev.Epochs, v.Loss, 100*v.Acc, plural.Count(v.Images, "image")))
		err = run.log.write(valLog{
			Epoch: ev.State.Epoch + 1, Step: ev.State.Step, ValLoss: number(v.Loss), ValAcc: number(v.Acc), ValImages: v.Images,
			TrainLoss: number(ev.Train.Loss()), TrainAcc: number(ev.Train.Acc()),
		})
	}
	if err != nil {
		run.eventErr = err
	}
	return err
}

// diverged returns the error that ends a diverged run at step step of epoch epoch (what says
// how). Neither -o nor the checkpoint is written: the checkpoint keeps the last state saved
// before, from which the same settings would diverge again.
func (run *finetuneRun) diverged(step, epoch int, what string) error {
	saved := ""
	if run.cfg.checkpoint != "" {
		saved = " and the checkpoint left as it was"
	}
	return fmt.Errorf("finetune: training diverged at step %d of %d (epoch %d): %s; no model written%s (try a lower --lr, or --clip-norm)",
		step, run.total, epoch, what, saved)
}

// warnSkipped warns about an image the loader left out of a batch because it cannot be decoded
// (train.Fit names each once over the whole run, resumes included).
func (run *finetuneRun) warnSkipped(u data.Unreadable) {
	run.prog.finish()
	fmt.Fprintf(run.stderr, "finetune: warning: skipping an unreadable image: %v\n", u.Err)
}

// interrupted returns the error that ends an interrupted run, saying where it stopped and
// whether the checkpoint was saved (train.Fit saves it, with --checkpoint, once a step has been
// trained).
func (run *finetuneRun) interrupted(ctx context.Context, stop *train.CancelledError) error {
	by := "interrupted"
	if sc, ok := contextSignal(ctx); ok {
		by += " by " + signalName(sc.sig)
	}
	where := fmt.Sprintf("at step %d of %d (epoch %d, batch %d of %d)", run.meta.Step, run.total, run.meta.Epoch+1, run.meta.Batch, run.batches)
	switch {
	case run.cfg.checkpoint == "":
		return fmt.Errorf("finetune: %s %s; nothing saved (use --checkpoint DIR to be able to resume)", by, where)
	case stop.SaveErr != nil:
		return fmt.Errorf("finetune: %s %s, and the checkpoint could not be saved: %w", by, where, stop.SaveErr)
	case !stop.Saved:
		// A checkpoint of the initial state would only make the next run need --overwrite.
		return fmt.Errorf("finetune: %s before the first step; nothing saved", by)
	}
	return fmt.Errorf("finetune: %s %s; checkpoint saved in %s: run the same command with --resume to continue", by, where, run.cfg.checkpoint)
}

// progress refreshes the progress line (at most a few times per second unless force).
func (run *finetuneRun) progress(ev train.Event, force bool) {
	if !run.prog.on {
		return
	}
	st := ev.State
	line := fmt.Sprintf("epoch %d/%d  step %d/%d  loss %.4f  acc %.2f%%", st.Epoch+1, ev.Epochs, st.Step, ev.Total,
		st.Running.Loss(), 100*st.Running.Acc())
	if ev.RunTime > 0 {
		ips := float64(ev.RunImages) / ev.RunTime.Seconds()
		eta := time.Duration(float64(ev.RunTime) / float64(ev.RunSteps) * float64(ev.Total-st.Step))
		line += fmt.Sprintf("  %.1f img/s  ETA %s", ips, etaText(eta))
	}
	run.prog.update(line, force)
}

// report assembles the final summary.
func (run *finetuneRun) report(ds *finetuneData, norm imageNorm, elapsed time.Duration) finetuneReport {
	cfg, meta := run.cfg, run.meta
	sums := meta.Running
	if meta.LastEpoch != nil && (sums.Images == 0 || meta.Batch == 0) {
		sums = *meta.LastEpoch
	}
	rep := finetuneReport{
		Model: cfg.model, Output: cfg.output, Steps: meta.Step, Epochs: run.epochs, Batch: cfg.batch,
		BatchesPerEpoch: run.batches, TrainImages: ds.train.Len(), Classes: run.classes, ResumedAt: run.resumedAt,
		TrainLoss: number(sums.Loss()), TrainAcc: number(sums.Acc()),
		Seconds: number(elapsed.Seconds()), TrainSeconds: number(meta.TrainSeconds),
		ActivationBytes: meta.ActivationBytes, PeakRSSBytes: peakRSS(),
		MemoryEfficient: cfg.opts.MemoryEfficient, Normalization: norm.name, NormalizationSource: norm.source,
		UnreadableImages: len(ds.unreadable) + len(meta.Skipped),
	}
	if norm.source != normNone {
		var mean, std [3]number
		for i := range mean {
			mean[i], std[i] = number(norm.norm.Mean[i]), number(norm.norm.Std[i])
		}
		rep.Mean, rep.Std = &mean, &std
	}
	// The learning rate of the last step.
	s := cfg.opts.Schedule
	s.TotalSteps = run.total
	rep.LR = number(s.LR(cfg.opts.Optim.LR, max(meta.Step-1, 0)))
	if ds.val != nil {
		rep.ValImages = ds.val.Len()
	}
	if meta.LastVal != nil {
		l, a := number(meta.LastVal.Loss), number(meta.LastVal.Acc)
		rep.ValLoss, rep.ValAcc = &l, &a
	}
	if run.runTrain > 0 {
		rep.ImagesPerS = number(float64(run.runImages) / run.runTrain.Seconds())
		rep.StepS = number(run.runTrain.Seconds() / float64(meta.Step-run.resumedAt))
	}
	return rep
}

func printFinetune(w io.Writer, r finetuneReport) error {
	resumed := ""
	if r.ResumedAt > 0 {
		resumed = fmt.Sprintf(", resumed at step %d", r.ResumedAt)
	}
	fmt.Fprintf(w, "Trained     %s of %s (%s of %s%s) in %.1f s\n",
		plural.Count(r.Steps, "step"), plural.Count(r.Batch, "image"), plural.Count(r.Epochs, "epoch"), plural.Count(r.BatchesPerEpoch, "batch", "batches"), resumed, float64(r.TrainSeconds))
	if r.ImagesPerS > 0 {
		fmt.Fprintf(w, "Speed       %.1f images/s, %.3f s/step\n", float64(r.ImagesPerS), float64(r.StepS))
	}
	fmt.Fprintf(w, "Train       loss %.4f, accuracy %.2f%% (last epoch; %s, %s)\n", float64(r.TrainLoss), 100*float64(r.TrainAcc),
		plural.Count(r.TrainImages, "training image"), plural.Count(r.Classes, "class", "classes"))
	if r.ValAcc != nil {
		fmt.Fprintf(w, "Validation  loss %.4f, accuracy %.2f%% (%s)\n", float64(*r.ValLoss), 100*float64(*r.ValAcc), plural.Count(r.ValImages, "image"))
	}
	switch {
	case r.Mean == nil:
		fmt.Fprintf(w, "Normalise   %s\n", r.Normalization)
	case r.NormalizationSource == normFromMetadata:
		fmt.Fprintf(w, "Normalise   mean %s, std %s from the model's metadata (%s)\n", numbersText(r.Mean[:]), numbersText(r.Std[:]), r.Normalization)
	default:
		fmt.Fprintf(w, "Normalise   mean %s, std %s from %s\n", numbersText(r.Mean[:]), numbersText(r.Std[:]), r.Normalization)
	}
	if r.UnreadableImages > 0 {
		fmt.Fprintf(w, "Skipped     %s (named on stderr)\n", plural.Count(r.UnreadableImages, "unreadable image"))
	}
	mode := "memory-efficient"
	if !r.MemoryEfficient {
		mode = "standard"
	}
	fmt.Fprintf(w, "Memory      activations %s per step (%s), peak RSS %s\n", byteCount(r.ActivationBytes), mode, byteCount(r.PeakRSSBytes))
	_, err := fmt.Fprintf(w, "Output      %s\n", r.Output)
	return err
}

// numbersText formats numbers as "0.485,0.456,0.406", with float32 precision.
func numbersText(v []number) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	return strings.Join(parts, ",")
}

// modelGeometry checks that g takes one [N,3,S,S] image input and gives [N,C] logits, and
// returns S (from the dims or --input-size) and C.
func modelGeometry(g *graph.Graph, cfg *finetuneConfig) (size, classes int, err error) {
	if len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		return 0, 0, fmt.Errorf("finetune: %s has %s and %s; want one image input and one logits output", cfg.model, plural.Count(len(g.Inputs), "input"), plural.Count(len(g.Outputs), "output"))
	}
	in, out := g.Inputs[0], g.Outputs[0]
	t := in.Type
	if t.Unranked || len(t.Shape) != 4 || (t.Shape[1].IsKnown() && t.Shape[1].Value != 3) {
		return 0, 0, fmt.Errorf("finetune: %s: input %q is %s; want [N,3,H,W] images", cfg.model, in.Name, t)
	}
	h, w := t.Shape[2], t.Shape[3]
	switch {
	case h.IsKnown() && w.IsKnown() && h.Value != w.Value:
		return 0, 0, fmt.Errorf("finetune: %s: input %q is %s; only square images are supported", cfg.model, in.Name, t)
	case h.IsKnown() && w.IsKnown():
		size = int(h.Value)
		if cfg.inputSize > 0 && cfg.inputSize != size {
			return 0, 0, usagef("finetune: --input-size %d: %s takes %dx%d images", cfg.inputSize, cfg.model, size, size)
		}
	case cfg.inputSize > 0:
		size = cfg.inputSize
	default:
		return 0, 0, usagef("finetune: %s: input %q is %s: give the image size with --input-size S", cfg.model, in.Name, t)
	}
	ot := out.Type
	if ot.Unranked || len(ot.Shape) != 2 {
		return 0, 0, fmt.Errorf("finetune: %s: output %q is %s; want [N,classes] logits", cfg.model, out.Name, ot)
	}
	if !ot.Shape[1].IsKnown() {
		if cfg.classes == 0 {
			return 0, 0, fmt.Errorf("finetune: %s: output %q is %s: the class count is unknown; give it with --classes N", cfg.model, out.Name, ot)
		}
		return size, cfg.classes, nil
	}
	return size, int(ot.Shape[1].Value), nil
}

// finetuneData is the data of a run.
type finetuneData struct {
	train, val data.Dataset // val is nil without validation
	// unreadable lists the images whose header cannot be read, left out of train and val.
	unreadable []data.Unreadable
}

// openData opens the training and (optional) validation datasets for images of size x size,
// leaving out the images whose header cannot be read.
func openData(ctx context.Context, cfg *finetuneConfig, size int, norm imageio.Normalization, splitSeed int64, stderr io.Writer) (*finetuneData, error) {
	var trainDS, valDS data.Dataset
	var err error
	valName := "--val " + cfg.val
	switch {
	case cfg.dataDir != "":
		if trainDS, err = data.ImageFolder(cfg.dataDir, size, norm); err != nil {
			return nil, fmt.Errorf("finetune: --data: %w", err)
		}
		if cfg.val != "" {
			if valDS, err = data.ImageFolder(cfg.val, size, norm); err != nil {
				return nil, fmt.Errorf("finetune: --val: %w", err)
			}
			if !slices.Equal(valDS.ClassNames(), trainDS.ClassNames()[:min(len(trainDS.ClassNames()), valDS.NumClasses())]) {
				return nil, fmt.Errorf("finetune: --val %s: its classes %s are not those of --data %s (%s)",
					cfg.val, strings.Join(valDS.ClassNames(), ","), cfg.dataDir, strings.Join(trainDS.ClassNames(), ","))
			}
		}
	case cfg.cifarDir != "":
		if trainDS, err = data.CIFAR(cfg.cifarDir, true, norm); err != nil {
			return nil, fmt.Errorf("finetune: --cifar: %w", err)
		}
		if cfg.val != "" {
			if valDS, err = data.CIFAR(cfg.val, false, norm); err != nil {
				return nil, fmt.Errorf("finetune: --val: %w", err)
			}
		}
	default:
		if err := checkFloat64File("finetune", fileArg{flag: "--x", path: cfg.x}, stderr); err != nil {
			return nil, err
		}
		if trainDS, err = data.TensorFiles(cfg.x, cfg.y); err != nil {
			return nil, fmt.Errorf("finetune: %w", err)
		}
		if cfg.valX != "" {
			if err := checkFloat64File("finetune", fileArg{flag: "--val-x", path: cfg.valX}, stderr); err != nil {
				return nil, err
			}
			if valDS, err = data.TensorFiles(cfg.valX, cfg.valY); err != nil {
				return nil, fmt.Errorf("finetune: --val-x/--val-y: %w", err)
			}
			valName = "--val-x " + cfg.valX
		}
	}
	if h, w := trainDS.Size(); h != size || w != size {
		return nil, fmt.Errorf("finetune: %s holds %dx%d images but %s takes %dx%d", cfg.source(), h, w, cfg.model, size, size)
	}
	if valDS != nil {
		if h, w := valDS.Size(); h != size || w != size {
			return nil, fmt.Errorf("finetune: %s holds %dx%d images but %s takes %dx%d", valName, h, w, cfg.model, size, size)
		}
	}

	// Every image file's header, now rather than mid-epoch (see data.CheckImages for the cost).
	out := &finetuneData{}
	for _, d := range []struct {
		ds   *data.Dataset
		name string
	}{{&trainDS, cfg.source()}, {&valDS, valName}} {
		if *d.ds == nil {
			continue
		}
		bad, err := data.CheckImages(ctx, *d.ds, 0)
		if err != nil {
			return nil, fmt.Errorf("finetune: interrupted while checking the images of %s; nothing saved", d.name)
		}
		if len(bad) > 0 && len(bad) == (*d.ds).Len() {
			return nil, fmt.Errorf("finetune: %s: none of its %s can be read (%v)", d.name, plural.Count(len(bad), "image"), bad[0].Err)
		}
		drop := make([]int, len(bad))
		for i, u := range bad {
			drop[i] = u.Index
		}
		*d.ds = data.Without(*d.ds, drop)
		out.unreadable = append(out.unreadable, bad...)
	}
	if cfg.valSplit > 0 {
		trainDS, valDS = data.Split(trainDS, cfg.valSplit, splitSeed)
	}
	out.train, out.val = trainDS, valDS
	return out, nil
}

// Metadata keys about the images a model takes. presetKey names a preset (models.Lookup), whose
// mean and std apply; dnx finetune records the mean and std it normalised images with under
// meanKey and stdKey, as "R,G,B".
const (
	presetKey = "dnx.preset"
	meanKey   = "dnx.normalization.mean"
	stdKey    = "dnx.normalization.std"
)

// Where a run's normalisation comes from (finetuneReport.NormalizationSource).
const (
	normFromMetadata = "metadata"
	normFromFlags    = "flags"
	normFromBoth     = "metadata+flags" // one of --mean and --std overrides the metadata
	normNone         = "none"           // tensors, taken as already normalised
)

// imageNorm is the normalisation a run applies to its images, and where it comes from.
type imageNorm struct {
	norm   imageio.Normalization
	name   string // "preset tiny", "--mean/--std", ...
	source string // normFrom*, normNone
}

// normalizationFor returns the image normalisation a model's metadata gives and what gives it:
// the mean and std dnx finetune recorded (meanKey, stdKey), else the preset named by presetKey,
// else the preset whose architecture the dnx.densenet.* metadata that dnx build writes
// describes. ok is false when the metadata says nothing; a recorded mean or std that cannot be
// read is an error naming the key.
func normalizationFor(meta map[string]string) (norm imageio.Normalization, name string, ok bool, err error) {
	if meta[meanKey] != "" || meta[stdKey] != "" {
		for _, k := range []struct {
			key      string
			dst      *[3]float32
			positive bool
		}{{meanKey, &norm.Mean, false}, {stdKey, &norm.Std, true}} {
			v, err := parseChannels(meta[k.key], k.positive)
			if err != nil {
				return norm, "", false, fmt.Errorf("metadata %s = %q: %w (give --mean and --std instead)", k.key, meta[k.key], err)
			}
			*k.dst = v
		}
		return norm, "recorded by dnx finetune", true, nil
	}
	if name := meta[presetKey]; name != "" {
		if p, err := models.Lookup(name); err == nil {
			return imageio.Normalization{Mean: p.Mean, Std: p.Std}, "preset " + p.Name, true, nil
		}
	}
	arch := func(c builders.Config) string {
		return fmt.Sprintf("%d|%s|%d|%d|%s|%s", c.Growth, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(c.Blocks)), ","), "[]"),
			c.InitFeatures, c.BNSize, strconv.FormatFloat(c.Compression, 'g', -1, 64), c.Stem)
	}
	p := builders.MetaPrefix
	if meta[p+"growth"] != "" {
		got := strings.Join([]string{meta[p+"growth"], meta[p+"blocks"], meta[p+"init_features"], meta[p+"bn_size"], meta[p+"compression"], meta[p+"stem"]}, "|")
		for _, pr := range models.Presets() {
			if arch(pr.Config) == got {
				return imageio.Normalization{Mean: pr.Mean, Std: pr.Std}, "preset " + pr.Name, true, nil
			}
		}
	}
	return imageio.Normalization{}, "", false, nil
}

// runNormalization decides how the run normalises its images: not at all for tensors; else the
// model's metadata, with --mean and --std overriding it. A model whose metadata says nothing
// needs both flags: guessing (ImageNet's statistics, say) would train on wrongly scaled inputs
// without a word.
func runNormalization(meta map[string]string, cfg *finetuneConfig) (imageNorm, error) {
	if cfg.x != "" {
		return imageNorm{name: "none: --x images are taken as already normalised", source: normNone}, nil
	}
	norm, name, ok, err := normalizationFor(meta)
	if err != nil && (cfg.mean == nil || cfg.std == nil) {
		return imageNorm{}, fmt.Errorf("finetune: %s: %w", cfg.model, err)
	}
	if !ok && (cfg.mean == nil || cfg.std == nil) {
		return imageNorm{}, usagef("finetune: %s has no metadata saying how its images are normalised (not a 'dnx build' model): "+
			"give the mean and std of its training data, e.g. ImageNet's --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225", cfg.model)
	}
	out := imageNorm{norm: norm, name: name, source: normFromMetadata}
	if cfg.mean != nil {
		out.norm.Mean = *cfg.mean
	}
	if cfg.std != nil {
		out.norm.Std = *cfg.std
	}
	switch {
	case cfg.mean != nil && cfg.std != nil:
		out.name, out.source = "--mean/--std", normFromFlags
		if ok {
			out.name += " (overriding " + name + ")"
		}
	case cfg.mean != nil:
		out.name, out.source = name+" with --mean", normFromBoth
	case cfg.std != nil:
		out.name, out.source = name+" with --std", normFromBoth
	}
	return out, nil
}

// channelsText formats a per-channel triple as "R,G,B"; nil gives "".
func channelsText(v *[3]float32) string {
	if v == nil {
		return ""
	}
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	return strings.Join(parts, ",")
}

// checkFloat64File gives a float64 tensor file of training images what narrowFloat64 gives dnx
// run's inputs: the note on stderr, and the refusal of values beyond float32's range (which the
// conversion would turn into infinities). data.TensorFiles then converts the file itself; a
// float32 file costs only a look at its header here.
func checkFloat64File(cmd string, arg fileArg, stderr io.Writer) error {
	if dt, ok := tensorFileDType(arg.path); !ok || dt != tensor.Float64 {
		return nil
	}
	t, err := readTensorFile(arg.path)
	if err != nil {
		return nil // data.TensorFiles reports it
	}
	_, err = narrowFloat64(cmd, arg, t, stderr)
	return err
}

// labelNames is what finetuneMetadata records under labels.MetadataKey: names to write, or
// drop to remove the input model's.
type labelNames struct {
	names []string
	drop  bool
}

// finetuneLabels decides the class names the output model carries (see package labels). An
// image folder (--data) names the classes: class k is the k-th folder, and the outputs past the
// folders (a classifier with more outputs than the data has classes) keep the names they had
// (the input model's, or ImageNet's for 1000 outputs), or their index under a new head. Tensors
// and CIFAR leave the input model's names in place, unless --classes replaced the classifier the
// names described.
func finetuneLabels(cfg *finetuneConfig, ds *finetuneData, classes int, inMeta map[string]string) labelNames {
	if cfg.dataDir == "" {
		return labelNames{drop: cfg.classes > 0}
	}
	names := ds.train.ClassNames()
	if len(names) >= classes {
		return labelNames{names: names[:classes]}
	}
	var prev []string
	if cfg.classes == 0 {
		prev, _, _ = labels.For(classes, "", inMeta)
	}
	for k := len(names); k < classes; k++ {
		if prev != nil {
			names = append(names, prev[k])
		} else {
			names = append(names, strconv.Itoa(k))
		}
	}
	return labelNames{names: names}
}

// finetuneMetadata updates the metadata the trained graph g carries from the input model: the
// class count updated, the number of fine-tuning steps and the image normalisation (unless none)
// recorded, and the class names set or dropped as lbl says. Existing keys keep their place.
func finetuneMetadata(g *graph.Graph, classes, steps int, norm imageNorm, lbl labelNames) {
	if lbl.drop {
		g.DeleteMetadata(labels.MetadataKey)
	}
	if _, ok := g.MetadataValue(builders.MetaPrefix + "classes"); ok { // models from dnx build record their class count
		g.SetMetadata(builders.MetaPrefix+"classes", strconv.Itoa(classes))
	}
	g.SetMetadata("dnx.finetune.steps", strconv.Itoa(steps))
	if norm.source != normNone {
		g.SetMetadata(meanKey, channelsText(&norm.norm.Mean))
		g.SetMetadata(stdKey, channelsText(&norm.norm.Std))
	}
	if lbl.names != nil {
		g.SetMetadata(labels.MetadataKey, labels.Encode(lbl.names))
	}
}

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// etaText formats a remaining time as 45s, 3m07s or 2h05m.
func etaText(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s/60%60)
}

// trainProgress is the one-line progress display on stderr: update rewrites the line in place
// (carriage return) at most every progressInterval; finish ends it with a newline.
type trainProgress struct {
	w       io.Writer
	on      bool
	last    time.Time
	text    string // the line on screen, "" when none
	pending string // the latest line, maybe not shown yet
}

// progressInterval is the shortest time between two refreshes of the progress line.
const progressInterval = 250 * time.Millisecond

func newTrainProgress(w io.Writer, on bool) *trainProgress { return &trainProgress{w: w, on: on} }

// update shows line, unless the last refresh was under progressInterval ago and force is false.
func (p *trainProgress) update(line string, force bool) {
	if !p.on {
		return
	}
	p.pending = line
	if line == p.text || (!force && time.Since(p.last) < progressInterval) {
		return
	}
	pad := ""
	if n := len(p.text) - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.text, p.last = line, time.Now()
}

// finish shows the latest line if it is not on screen yet and ends it with a newline.
func (p *trainProgress) finish() {
	if !p.on || p.pending == "" {
		return
	}
	if p.pending != p.text {
		p.update(p.pending, true)
	}
	fmt.Fprintln(p.w)
	p.text, p.pending = "", ""
}

// line prints a whole line (ending any progress line first).
func (p *trainProgress) line(s string) {
	if !p.on {
		return
	}
	p.finish()
	fmt.Fprintln(p.w, s)
}

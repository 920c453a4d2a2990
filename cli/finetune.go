package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/data"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/imageio"
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
			"the CIFAR test split for --cifar) or --val-split F (a random fraction held out). Images are\n" +
			"resized to the model's input size (its input dims, or --input-size) and normalised with the\n" +
			"mean/std of the preset named by the model's metadata (models from 'dnx build'), else ImageNet's.\n" +
			"\n" +
			"The run lasts --epochs E or --steps S of --batch B images. --checkpoint DIR saves the state\n" +
			"every epoch, every --checkpoint-every steps and on an interrupt (Ctrl-C); run the same command\n" +
			"with --resume to continue: the result is the same as an uninterrupted run's. The result,\n" +
			"written atomically to -o, is an eval-mode ONNX model with the initializer names of MODEL and\n" +
			"updated BatchNormalization running statistics.\n" +
			"\n" +
			"Progress goes to stderr; --log-json FILE (or - for stdout) gets one JSON object per step\n" +
			"(step, epoch, loss, acc, lr, images_per_s, ...) and per validation (epoch, val_acc, val_loss).",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "data", Usage: "training image folder `DIR` (one sub-folder per class)"},
			&ucli.StringFlag{Name: "cifar", Usage: "CIFAR-10/100 binary `DIR` (data_batch_*.bin or train.bin)"},
			&ucli.StringFlag{Name: "x", Usage: "training images `FILE` (.npy or .pb), [N,3,H,W] float32, normalised"},
			&ucli.StringFlag{Name: "y", Usage: "training labels `FILE` (.npy or .pb), [N] int64 or int32"},
			&ucli.StringFlag{Name: "val", Usage: "validation `DIR`: an image folder with --data, a CIFAR folder (test split) with --cifar"},
			&ucli.Float64Flag{Name: "val-split", Usage: "hold out the fraction `F` (0 < F < 1) of the training data for validation"},
			&ucli.IntFlag{Name: "epochs", Usage: "train for `E` passes over the data"},
			&ucli.IntFlag{Name: "steps", Usage: "train for `S` optimizer steps (batches)"},
			&ucli.IntFlag{Name: "batch", Usage: "images per step `B`"},
			&ucli.StringFlag{Name: "optimizer", Value: "sgd", Usage: "optimizer `NAME`: sgd, adam or adamw"},
			&ucli.Float64Flag{Name: "lr", Usage: "learning rate `X`", DefaultText: "0.01 for sgd, 0.001 for adam and adamw"},
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
			&ucli.Int64Flag{Name: "seed", Value: 1, Usage: "`N` seeds the shuffling, augmentation, --val-split and --classes head"},
			&ucli.BoolFlag{Name: "no-shuffle", Usage: "visit the training images in order"},
			&ucli.BoolFlag{Name: "no-augment", Usage: "no random crops and flips"},
			&ucli.BoolFlag{Name: "memory-efficient", Value: true, Usage: "recompute BN-ReLU outputs in the backward pass instead of keeping them (--memory-efficient=false to keep them)"},
			&ucli.IntFlag{Name: "threads", Usage: "worker threads `T`", DefaultText: "GOMAXPROCS"},
			&ucli.StringFlag{Name: "checkpoint", Usage: "save checkpoints in `DIR` (every epoch, every --checkpoint-every steps, on interrupt)"},
			&ucli.IntFlag{Name: "checkpoint-every", Usage: "also save a checkpoint every `N` steps"},
			&ucli.BoolFlag{Name: "resume", Usage: "continue from the checkpoint in --checkpoint DIR"},
			&ucli.StringFlag{Name: "log-json", Usage: "write one JSON line per step and per validation to `FILE` as the run goes (- for stdout; appended to with --resume)"},
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
	val                     string
	valSplit                float64
	epochs, steps, batch    int
	opts                    train.Options
	classes                 int
	seed                    int64
	shuffle, augment        bool
	checkpoint              string
	checkpointEvery         int
	resume                  bool
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
		x: c.String("x"), y: c.String("y"), val: c.String("val"), valSplit: c.Float64("val-split"),
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
	if c.IsSet("val") && c.IsSet("val-split") {
		return nil, usagef("finetune: --val and --val-split are exclusive")
	}
	if c.IsSet("val") && cfg.x != "" {
		return nil, usagef("finetune: --val takes a folder, for --data or --cifar; with --x/--y hold out data with --val-split F")
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
	case cfg.checkpointEvery < 0:
		return nil, usagef("finetune: --checkpoint-every %d: want 0 (per epoch only) or more", cfg.checkpointEvery)
	case cfg.checkpointEvery > 0 && cfg.checkpoint == "":
		return nil, usagef("finetune: --checkpoint-every needs --checkpoint DIR")
	case c.Int("threads") < 0:
		return nil, usagef("finetune: --threads %d: want 0 (all cores) or more", c.Int("threads"))
	}

	o := train.Options{
		MemoryEfficient: c.Bool("memory-efficient"),
		Freeze:          c.StringSlice("freeze"),
		FreezeBNStats:   c.Bool("freeze-bn"),
		LabelSmoothing:  c.Float64("label-smoothing"),
		Threads:         c.Int("threads"),
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
	for _, k := range []string{"data", "cifar", "x", "y", "val"} {
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

// valResult is a validation pass's outcome.
type valResult struct {
	Loss   float64 `json:"loss"`
	Acc    float64 `json:"acc"`
	Images int     `json:"images"`
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
	Normalization   string  `json:"normalization"`
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
	batches   int // per epoch
	total     int // steps of the whole run
	epochs    int // epochs the run touches
	meta      checkpointMeta
	log       *jsonLines
	prog      *trainProgress
	resumedAt int
	runImages int64         // images trained by this process
	runTrain  time.Duration // training time of this process
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

	// The model, its metadata and its input size.
	m, err := onnx.ReadModelFile(cfg.model)
	if err != nil {
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
	size, modelClasses, err := modelGeometry(g, cfg)
	if err != nil {
		return err
	}
	norm, normName := normalizationFor(m)

	// The data.
	seeds := runSeeds{Data: cfg.seed, Split: cfg.seed, Head: cfg.seed}
	trainDS, valDS, err := openData(cfg, size, norm, seeds.Split)
	if err != nil {
		return err
	}
	classes := modelClasses
	switch {
	case cfg.classes > 0:
		if n := trainDS.NumClasses(); n > cfg.classes {
			return fmt.Errorf("finetune: %s has %d classes, more than --classes %d", cfg.source(), n, cfg.classes)
		}
		if err := train.ReplaceHead(g, cfg.classes, seeds.Head); err != nil {
			return fmt.Errorf("finetune: --classes %d: %s: %w", cfg.classes, cfg.model, err)
		}
		classes = cfg.classes
	case trainDS.NumClasses() > modelClasses:
		return fmt.Errorf("finetune: %s has %d classes but %s predicts %d; replace its classifier with --classes %d",
			cfg.source(), trainDS.NumClasses(), cfg.model, modelClasses, trainDS.NumClasses())
	}
	if valDS != nil && valDS.NumClasses() > classes {
		return fmt.Errorf("finetune: --val %s has %d classes but the model predicts %d", cfg.val, valDS.NumClasses(), classes)
	}

	run := &finetuneRun{cfg: cfg}
	run.trainLd, err = data.NewLoader(trainDS, data.LoaderOptions{Batch: cfg.batch, Shuffle: cfg.shuffle, Augment: cfg.augment, Seed: seeds.Data})
	if err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	run.batches = run.trainLd.Batches()
	if run.batches == 0 {
		return fmt.Errorf("finetune: %s: no training images", cfg.source())
	}
	if valDS != nil && valDS.Len() > 0 {
		if run.valLd, err = data.NewLoader(valDS, data.LoaderOptions{Batch: cfg.batch, Seed: seeds.Data}); err != nil {
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
		return usagef("finetune: --warmup %d must be below the run's %d steps for --schedule cosine", opts.Schedule.WarmupSteps, run.total)
	}
	run.tr, err = train.New(g, opts)
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
	run.meta = checkpointMeta{Settings: settings, Seeds: seeds}
	if cfg.resume {
		meta, state, err := readCheckpoint(cfg.checkpoint)
		switch {
		case isNotExist(err):
			fmt.Fprintf(c.App.ErrWriter, "finetune: no checkpoint in %s yet: starting from the beginning\n", cfg.checkpoint)
		case err != nil:
			return fmt.Errorf("finetune: --resume: %w", err)
		default:
			if diffs := settingsDiff(meta.Settings, settings, resumeFree(opts.Schedule.Kind)); len(diffs) > 0 {
				return usagef("finetune: --resume: the checkpoint in %s was made with other settings: %s", cfg.checkpoint, strings.Join(diffs, ", "))
			}
			if meta.Seeds != seeds {
				return usagef("finetune: --resume: the checkpoint in %s was made with other seeds (%+v)", cfg.checkpoint, meta.Seeds)
			}
			if meta.Batch > run.batches || meta.Step != meta.Epoch*run.batches+meta.Batch {
				return fmt.Errorf("finetune: --resume: %s: position epoch %d, batch %d, step %d does not fit %d batches per epoch",
					checkpointPath(cfg.checkpoint), meta.Epoch, meta.Batch, meta.Step, run.batches)
			}
			if meta.Step > run.total {
				return usagef("finetune: --resume: the checkpoint in %s is at step %d, past this run's %d steps", cfg.checkpoint, meta.Step, run.total)
			}
			if err := run.tr.LoadState(bytes.NewReader(state)); err != nil {
				return fmt.Errorf("finetune: --resume: %s: %w", checkpointPath(cfg.checkpoint), err)
			}
			if n := run.tr.StepCount(); n != meta.Step {
				return fmt.Errorf("finetune: --resume: %s: the trainer state has %d steps, the header %d", checkpointPath(cfg.checkpoint), n, meta.Step)
			}
			meta.Settings = settings // the new run length
			run.meta = meta
			run.resumedAt = meta.Step
		}
	}

	if run.log, err = openLog(cfg.logJSON, c.App.Writer, cfg.resume); err != nil {
		return err
	}
	defer run.log.close()
	run.prog = newTrainProgress(c.App.ErrWriter, !cfg.json)

	if err := run.loop(ctx); err != nil {
		return err
	}

	// Export the eval-mode model with the trained weights.
	out, err := graph.Export(run.tr.Graph())
	if err != nil {
		return fmt.Errorf("finetune: export: %w", err)
	}
	out.MetadataProps = finetuneMetadata(m.GetMetadataProps(), classes, run.meta.Step)
	out.DocString = m.DocString
	if err := onnx.WriteModelFile(cfg.output, out); err != nil {
		return err
	}
	if err := run.log.close(); err != nil {
		return fmt.Errorf("--log-json: %w", err)
	}

	rep := run.report(cfg, trainDS, valDS, classes, normName, time.Since(start))
	if cfg.json {
		return writeJSON(c.App.Writer, rep)
	}
	return printFinetune(c.App.Writer, rep)
}

// loop trains from run.meta's position to run.total steps, validating after every epoch and
// saving checkpoints. An interrupt (ctx cancelled) ends the step in progress, saves a checkpoint
// when --checkpoint is given and returns an error saying so.
func (run *finetuneRun) loop(ctx context.Context) error {
	meta := &run.meta
	for meta.Step < run.total {
		if err := run.interrupted(ctx); err != nil {
			return err
		}
		epoch := meta.Epoch
		if err := run.trainEpoch(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			continue // the check at the top of the loop saves and reports
		}
		endOfEpoch := meta.Batch == run.batches
		if !endOfEpoch && meta.Step < run.total {
			run.prog.finish()
			return fmt.Errorf("finetune: epoch %d: the data loader stopped after %d of %d batches", epoch+1, meta.Batch, run.batches)
		}
		run.progress(true)
		run.prog.finish()
		sums := meta.Running
		if run.valLd != nil {
			v, err := evaluate(ctx, run.valLd, epoch, run.tr.Evaluate)
			if ctx.Err() != nil {
				continue
			}
			if err != nil {
				return fmt.Errorf("finetune: validation after epoch %d: %w", epoch+1, err)
			}
			meta.LastVal = &v
			run.prog.line(fmt.Sprintf("epoch %d/%d  validation  loss %.4f  acc %.2f%%  (%d images)", epoch+1, run.epochs, v.Loss, 100*v.Acc, v.Images))
			if err := run.log.write(valLog{
				Epoch: epoch + 1, Step: meta.Step, ValLoss: number(v.Loss), ValAcc: number(v.Acc), ValImages: v.Images,
				TrainLoss: number(sums.loss()), TrainAcc: number(sums.acc()),
			}); err != nil {
				return err
			}
		}
		meta.LastEpoch = &sums
		if endOfEpoch { // a --steps run may end mid-epoch
			meta.Running = epochSums{}
			meta.Epoch++
			meta.Batch = 0
		}
		if err := run.save(); err != nil {
			return err
		}
	}
	return run.interrupted(ctx)
}

// trainEpoch trains the rest of epoch meta.Epoch, from batch meta.Batch, stopping early at the
// run's last step or when ctx is cancelled.
func (run *finetuneRun) trainEpoch(ctx context.Context) error {
	meta := &run.meta
	if meta.Batch >= run.batches {
		return nil
	}
	epoch := meta.Epoch
	// Steps run to completion once started: a half-done step could leave running statistics
	// updated without the matching weight update. The interrupt is honoured between steps.
	stepCtx := context.WithoutCancel(ctx)
	it := run.trainLd.Epoch(ctx, epoch)
	defer it.Close()
	// The loader's batches depend only on (seed, epoch), so skipping the batches trained
	// before the checkpoint puts it where the interrupted run was.
	for range meta.Batch {
		if _, ok := it.Next(); !ok {
			break
		}
	}
	fail := func(err error) error {
		run.prog.finish()
		return err
	}
	for meta.Batch < run.batches && meta.Step < run.total && ctx.Err() == nil {
		b, ok := it.Next()
		if !ok {
			break
		}
		t := time.Now()
		st, err := run.tr.Step(stepCtx, b.X, b.Y)
		if err != nil {
			return fail(fmt.Errorf("finetune: epoch %d, step %d: %w", epoch+1, meta.Step+1, err))
		}
		d := time.Since(t)
		n := len(b.Y)
		run.runImages += int64(n)
		run.runTrain += d
		meta.TrainSeconds += d.Seconds()
		meta.Step++
		meta.Batch++
		meta.Running.add(n, float64(st.Loss), int64(st.Correct))
		meta.ActivationBytes = max(meta.ActivationBytes, int64(st.ActivationBytes))
		if err := run.log.write(stepLog{
			Step: meta.Step, Epoch: epoch + 1, Batch: meta.Batch, Loss: number(st.Loss),
			Acc: number(float64(st.Correct) / float64(n)), LR: number(st.LR), GradNorm: number(st.GradNorm),
			ImagesPerS: number(float64(n) / d.Seconds()), StepS: number(d.Seconds()), ActBytes: int64(st.ActivationBytes),
		}); err != nil {
			return fail(err)
		}
		run.progress(false)
		if every := run.cfg.checkpointEvery; every > 0 && meta.Step%every == 0 && meta.Step < run.total && meta.Batch < run.batches {
			if err := run.save(); err != nil {
				return fail(err)
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	it.Close()
	if err := it.Err(); err != nil {
		return fail(fmt.Errorf("finetune: epoch %d: %w", epoch+1, err))
	}
	return nil
}

// interrupted returns nil while ctx is live. Once it is cancelled it saves a checkpoint (with
// --checkpoint) and returns the error that ends the command.
func (run *finetuneRun) interrupted(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	run.prog.finish()
	where := fmt.Sprintf("at step %d of %d (epoch %d, batch %d of %d)", run.meta.Step, run.total, run.meta.Epoch+1, run.meta.Batch, run.batches)
	if run.cfg.checkpoint == "" {
		return fmt.Errorf("finetune: interrupted %s; nothing saved (use --checkpoint DIR to be able to resume)", where)
	}
	if err := run.save(); err != nil {
		return fmt.Errorf("finetune: interrupted %s, and the checkpoint could not be saved: %w", where, err)
	}
	return fmt.Errorf("finetune: interrupted %s; checkpoint saved in %s: run the same command with --resume to continue", where, run.cfg.checkpoint)
}

// save writes the checkpoint, when --checkpoint is given.
func (run *finetuneRun) save() error {
	if run.cfg.checkpoint == "" {
		return nil
	}
	if err := writeCheckpoint(run.cfg.checkpoint, run.meta, run.tr); err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	return nil
}

// progress refreshes the progress line (at most a few times per second unless force).
func (run *finetuneRun) progress(force bool) {
	if !run.prog.on {
		return
	}
	meta := run.meta
	line := fmt.Sprintf("epoch %d/%d  step %d/%d  loss %.4f  acc %.2f%%", meta.Epoch+1, run.epochs, meta.Step, run.total,
		meta.Running.loss(), 100*meta.Running.acc())
	if run.runTrain > 0 {
		ips := float64(run.runImages) / run.runTrain.Seconds()
		stepsDone := meta.Step - run.resumedAt
		eta := time.Duration(float64(run.runTrain) / float64(stepsDone) * float64(run.total-meta.Step))
		line += fmt.Sprintf("  %.1f img/s  ETA %s", ips, etaText(eta))
	}
	run.prog.update(line, force)
}

// report assembles the final summary.
func (run *finetuneRun) report(cfg *finetuneConfig, trainDS, valDS data.Dataset, classes int, normName string, elapsed time.Duration) finetuneReport {
	meta := run.meta
	sums := meta.Running
	if meta.LastEpoch != nil && (sums.Images == 0 || meta.Batch == 0) {
		sums = *meta.LastEpoch
	}
	rep := finetuneReport{
		Model: cfg.model, Output: cfg.output, Steps: meta.Step, Epochs: run.epochs, Batch: cfg.batch,
		BatchesPerEpoch: run.batches, TrainImages: trainDS.Len(), Classes: classes, ResumedAt: run.resumedAt,
		TrainLoss: number(sums.loss()), TrainAcc: number(sums.acc()),
		Seconds: number(elapsed.Seconds()), TrainSeconds: number(meta.TrainSeconds),
		ActivationBytes: meta.ActivationBytes, PeakRSSBytes: peakRSS(),
		MemoryEfficient: cfg.opts.MemoryEfficient, Normalization: normName,
	}
	// The learning rate of the last step.
	s := cfg.opts.Schedule
	s.TotalSteps = run.total
	rep.LR = number(s.LR(cfg.opts.Optim.LR, max(meta.Step-1, 0)))
	if valDS != nil {
		rep.ValImages = valDS.Len()
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
	fmt.Fprintf(w, "Trained     %s of %d images (%s of %s%s) in %.1f s\n",
		plural(r.Steps, "step"), r.Batch, plural(r.Epochs, "epoch"), plural(r.BatchesPerEpoch, "batch"), resumed, float64(r.TrainSeconds))
	if r.ImagesPerS > 0 {
		fmt.Fprintf(w, "Speed       %.1f images/s, %.3f s/step\n", float64(r.ImagesPerS), float64(r.StepS))
	}
	fmt.Fprintf(w, "Train       loss %.4f, accuracy %.2f%% (last epoch; %d training images, %d classes)\n", float64(r.TrainLoss), 100*float64(r.TrainAcc), r.TrainImages, r.Classes)
	if r.ValAcc != nil {
		fmt.Fprintf(w, "Validation  loss %.4f, accuracy %.2f%% (%d images)\n", float64(*r.ValLoss), 100*float64(*r.ValAcc), r.ValImages)
	}
	mode := "memory-efficient"
	if !r.MemoryEfficient {
		mode = "standard"
	}
	fmt.Fprintf(w, "Memory      activations %s per step (%s), peak RSS %s\n", byteCount(r.ActivationBytes), mode, byteCount(r.PeakRSSBytes))
	_, err := fmt.Fprintf(w, "Output      %s\n", r.Output)
	return err
}

// evaluate runs logits (eval mode) over one pass of ld and returns the mean cross-entropy loss,
// -log softmax(z)_y, and the accuracy.
func evaluate(ctx context.Context, ld *data.Loader, epoch int, logits func(context.Context, *tensor.Tensor) (*tensor.Tensor, error)) (valResult, error) {
	it := ld.Epoch(ctx, epoch)
	defer it.Close()
	var sumLoss float64
	var correct, n int
	for {
		b, ok := it.Next()
		if !ok {
			break
		}
		z, err := logits(ctx, b.X)
		if err != nil {
			return valResult{}, err
		}
		l, c, err := scoreLogits(z, b.Y)
		if err != nil {
			return valResult{}, err
		}
		sumLoss += l
		correct += c
		n += len(b.Y)
	}
	if err := it.Err(); err != nil {
		return valResult{}, err
	}
	if n == 0 {
		return valResult{Loss: math.NaN(), Acc: math.NaN()}, nil
	}
	return valResult{Loss: sumLoss / float64(n), Acc: float64(correct) / float64(n), Images: n}, nil
}

// scoreLogits returns the summed cross-entropy loss, sum_i logsumexp(z_i) - z_i[y_i], and the
// number of rows whose largest logit (first on ties) is the label.
func scoreLogits(z *tensor.Tensor, labels []int64) (float64, int, error) {
	if z.Rank() != 2 || z.Shape[0] != len(labels) {
		return 0, 0, fmt.Errorf("logits of shape %v for %d labels", z.Shape, len(labels))
	}
	k := z.Shape[1]
	vals := z.Float64s()
	var loss float64
	correct := 0
	for i, y := range labels {
		row := vals[i*k : (i+1)*k]
		if y < 0 || int(y) >= k {
			return 0, 0, fmt.Errorf("label %d is outside the model's %d classes", y, k)
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

// modelGeometry checks that g takes one [N,3,S,S] image input and gives [N,C] logits, and
// returns S (from the dims or --input-size) and C.
func modelGeometry(g *graph.Graph, cfg *finetuneConfig) (size, classes int, err error) {
	if len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		return 0, 0, fmt.Errorf("finetune: %s has %d inputs and %d outputs; want one image input and one logits output", cfg.model, len(g.Inputs), len(g.Outputs))
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

// openData opens the training and (optional) validation datasets for images of size x size.
func openData(cfg *finetuneConfig, size int, norm imageio.Normalization, splitSeed int64) (trainDS, valDS data.Dataset, err error) {
	switch {
	case cfg.dataDir != "":
		if trainDS, err = data.ImageFolder(cfg.dataDir, size, norm); err != nil {
			return nil, nil, fmt.Errorf("finetune: --data: %w", err)
		}
		if cfg.val != "" {
			if valDS, err = data.ImageFolder(cfg.val, size, norm); err != nil {
				return nil, nil, fmt.Errorf("finetune: --val: %w", err)
			}
			if !slices.Equal(valDS.ClassNames(), trainDS.ClassNames()[:min(len(trainDS.ClassNames()), valDS.NumClasses())]) {
				return nil, nil, fmt.Errorf("finetune: --val %s: its classes %s are not those of --data %s (%s)",
					cfg.val, strings.Join(valDS.ClassNames(), ","), cfg.dataDir, strings.Join(trainDS.ClassNames(), ","))
			}
		}
	case cfg.cifarDir != "":
		if trainDS, err = data.CIFAR(cfg.cifarDir, true, norm); err != nil {
			return nil, nil, fmt.Errorf("finetune: --cifar: %w", err)
		}
		if cfg.val != "" {
			if valDS, err = data.CIFAR(cfg.val, false, norm); err != nil {
				return nil, nil, fmt.Errorf("finetune: --val: %w", err)
			}
		}
	default:
		if trainDS, err = data.TensorFiles(cfg.x, cfg.y); err != nil {
			return nil, nil, fmt.Errorf("finetune: %w", err)
		}
	}
	if h, w := trainDS.Size(); h != size || w != size {
		return nil, nil, fmt.Errorf("finetune: %s holds %dx%d images but %s takes %dx%d", cfg.source(), h, w, cfg.model, size, size)
	}
	if valDS != nil {
		if h, w := valDS.Size(); h != size || w != size {
			return nil, nil, fmt.Errorf("finetune: --val %s holds %dx%d images but %s takes %dx%d", cfg.val, h, w, cfg.model, size, size)
		}
	}
	if cfg.valSplit > 0 {
		trainDS, valDS = data.Split(trainDS, cfg.valSplit, splitSeed)
	}
	return trainDS, valDS, nil
}

// presetKey is a metadata_props key naming the model's preset (see normalizationFor).
const presetKey = "dnx.preset"

// normalizationFor returns the image normalisation a model expects and where it comes from: the
// preset named by the metadata key dnx.preset, else the preset whose architecture the
// dnx.densenet.* metadata that dnx build writes describes, else ImageNet's statistics.
func normalizationFor(m *onnxpb.ModelProto) (imageio.Normalization, string) {
	meta := map[string]string{}
	for _, p := range m.GetMetadataProps() {
		meta[p.GetKey()] = p.GetValue()
	}
	if name := meta[presetKey]; name != "" {
		if p, err := models.Lookup(name); err == nil {
			return imageio.Normalization{Mean: p.Mean, Std: p.Std}, "preset " + p.Name
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
				return imageio.Normalization{Mean: pr.Mean, Std: pr.Std}, "preset " + pr.Name
			}
		}
	}
	return imageio.ImageNet(), "ImageNet"
}

// finetuneMetadata returns the input model's metadata_props with the class count updated and the
// number of fine-tuning steps recorded.
func finetuneMetadata(in []*onnxpb.StringStringEntryProto, classes, steps int) []*onnxpb.StringStringEntryProto {
	var out []*onnxpb.StringStringEntryProto
	set := func(k, v string) {
		for _, p := range out {
			if p.GetKey() == k {
				p.Value = proto.String(v)
				return
			}
		}
		out = append(out, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(v)})
	}
	for _, p := range in {
		out = append(out, proto.Clone(p).(*onnxpb.StringStringEntryProto))
	}
	if len(out) > 0 { // models from dnx build record their class count
		for _, p := range out {
			if p.GetKey() == builders.MetaPrefix+"classes" {
				p.Value = proto.String(strconv.Itoa(classes))
			}
		}
	}
	set("dnx.finetune.steps", strconv.Itoa(steps))
	return out
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

// plural returns "1 step", "2 steps", "3 batches".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "ch") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
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

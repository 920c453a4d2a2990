package cli

import (
	"context"
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"image"
	"image/color"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/data"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/train"
)

// demoImageSize is the side of the synthetic picture the inference-only demo draws before it is
// resized to the model's input.
const demoImageSize = 96

func demoCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "demo",
		Usage: "train a small DenseNet on synthetic shapes, export it and check it (offline, under a minute)",
		Description: "The demo builds a small DenseNet-BC (2 blocks x 3 layers, k=6, 16x16 inputs, 4 classes) with\n" +
			"seeded random weights, draws synthetic training and validation pictures of four coloured\n" +
			"shapes (red circle, green square, blue triangle, yellow cross) on noisy backgrounds, and\n" +
			"fine-tunes the model on them in the memory-efficient mode (BN-ReLU outputs recomputed in the\n" +
			"backward pass). It then exports the trained model as ONNX, reloads the export with the\n" +
			"inference engine and reports its validation accuracy (chance is 25%), the activation memory\n" +
			"of a training step with and without the memory-efficient mode, and the time taken.\n" +
			"\n" +
			"--inference-only instead builds a model preset (default \"tiny\") with untrained weights and\n" +
			"classifies one synthetic picture with it: build, import, plan, run, report.",
		Flags: []ucli.Flag{
			&ucli.Int64Flag{Name: "seed", Value: 1, Usage: "`N` seeds the weights and the data"},
			&ucli.IntFlag{Name: "steps", Value: demoSteps, Usage: "training steps `N`"},
			&ucli.IntFlag{Name: "batch", Value: demoBatch, Usage: "images per training step `B`"},
			threadsFlag(),
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "also write the trained model to `FILE` (.onnx)"},
			&ucli.BoolFlag{Name: "inference-only", Usage: "skip training: build a preset and classify one synthetic picture"},
			&ucli.StringFlag{Name: "preset", Value: "tiny", Usage: "--inference-only: model preset `NAME` to build (see 'dnx models')"},
			&ucli.IntFlag{Name: "runs", Value: 5, Usage: "--inference-only: `N` timed runs for the latency (the first run is not timed)"},
			&ucli.IntFlag{Name: "top", Value: 5, Usage: "--inference-only: classes `K` to show"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
			maxMemoryFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usagef("demo: takes no arguments, got %q", c.Args().First())
			}
			if c.Bool("inference-only") {
				for _, f := range []string{"steps", "batch", "output", "threads"} {
					if c.IsSet(f) {
						return usagef("demo: --%s applies to the training demo, not to --inference-only", f)
					}
				}
				return demoInference(c)
			}
			for _, f := range []string{"preset", "runs", "top"} {
				if c.IsSet(f) {
					return usagef("demo: --%s applies to --inference-only", f)
				}
			}
			return demoTrain(c)
		},
	}
}

// demoReport is what `dnx demo --json` prints.
type demoReport struct {
	Preset         string         `json:"preset"`
	Description    string         `json:"description"`
	Config         string         `json:"config"`
	Seed           int64          `json:"seed"`
	InputShape     tensor.Shape   `json:"input_shape"`
	Nodes          int            `json:"nodes"`
	Parameters     int64          `json:"parameters"`
	ParameterBytes int64          `json:"parameter_bytes"`
	MACs           *int64         `json:"macs"`
	BuildMS        number         `json:"build_ms"`
	Runs           int            `json:"runs"`
	LatencyMS      latency        `json:"latency_ms"`
	Outputs        []outputReport `json:"outputs"`
}

type latency struct {
	Min    number `json:"min"`
	Median number `json:"median"`
}

// demoInference is `dnx demo --inference-only`.
func demoInference(c *ucli.Context) error {
	runs, top := c.Int("runs"), c.Int("top")
	if runs < 1 || runs > 1000 {
		return usagef("demo: --runs %d: want 1..1000", runs)
	}
	if top < 0 {
		return usagef("demo: --top %d: want 0 or more", top)
	}
	preset, err := models.Lookup(c.String("preset"))
	if err != nil {
		return usageError{fmt.Errorf("demo: --preset: %w", err)}
	}
	budget, err := memoryBudget(c)
	if err != nil {
		return err
	}
	if err := checkBuildBudget("demo", budget, preset.Config); err != nil {
		return err
	}
	seed := c.Int64("seed")

	start := time.Now()
	m, err := builders.Build(preset.Config, builders.BuildOptions{Seed: seed, Inference: true})
	if err != nil {
		return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
	}
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
	}
	if len(g.Inputs) != 1 {
		return fmt.Errorf("demo: preset %s: the built model has %s, want 1", preset.Name, plural.Count(len(g.Inputs), "input"))
	}
	in := g.Inputs[0]
	size := preset.Config.InputSize
	shape := tensor.Shape{1, 3, size, size}
	if err := g.SetInputShapes(map[string]tensor.Shape{in.Name: shape}); err != nil {
		return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
	}
	sess, err := exec.New(g, exec.Options{MaxMemory: budget.Limit()})
	if err != nil {
		return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
	}
	defer sess.Close()
	build := time.Since(start)

	x, err := imageio.Preprocess(syntheticImage(demoImageSize), size, size, imageio.Normalization{Mean: preset.Mean, Std: preset.Std})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// The first run allocates and warms caches; the timed runs follow.
	outputs, err := sess.Run(c.Context, []*tensor.Tensor{x})
	if err != nil {
		return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
	}
	times := make([]time.Duration, runs)
	for i := range times {
		_, d, err := runTimed(c.Context, sess, []*tensor.Tensor{x})
		if err != nil {
			return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
		}
		times[i] = d
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })

	st := g.Stats()
	rep := demoReport{
		Preset: preset.Name, Description: preset.Description, Config: preset.Config.String(), Seed: seed,
		InputShape: shape, Nodes: st.Nodes, Parameters: st.Parameters, ParameterBytes: st.ParameterBytes,
		BuildMS: ms(build), Runs: runs,
		LatencyMS: latency{Min: ms(times[0]), Median: ms(times[len(times)/2])},
	}
	if st.MACsKnown {
		macs := st.MACs
		rep.MACs = &macs
	}
	for i, t := range outputs {
		o := outputReport{Name: g.Outputs[i].Name, DType: t.DType.String(), Shape: t.Shape, t: t}
		if top > 0 && isClassifier(t) {
			o.Top = topK(t, top)
		}
		rep.Outputs = append(rep.Outputs, o)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	return printDemo(c.App.Writer, rep)
}

func ms(d time.Duration) number { return number(float64(d.Microseconds()) / 1000) }

func printDemo(w io.Writer, rep demoReport) error {
	fmt.Fprintf(w, "Model       %s (seed %d, untrained: the classes are arbitrary)\n", rep.Preset, rep.Seed)
	fmt.Fprintf(w, "            %s\n", rep.Config)
	fmt.Fprintf(w, "Graph       %d nodes, %s parameters (%s), built in %.1f ms\n",
		rep.Nodes, groupDigits(rep.Parameters), byteCount(rep.ParameterBytes), float64(rep.BuildMS))
	if rep.MACs != nil {
		fmt.Fprintf(w, "MACs        %s at input %s\n", siCount(*rep.MACs), shapeText(rep.InputShape))
	}
	fmt.Fprintf(w, "Input       synthetic %dx%d image of coloured rings, resized and cropped to %s\n", demoImageSize, demoImageSize, shapeText(rep.InputShape))
	fmt.Fprintf(w, "Latency     %.3f ms median, %.3f ms best of %s\n\n", float64(rep.LatencyMS.Median), float64(rep.LatencyMS.Min), plural.Count(rep.Runs, "run"))
	return printOutputs(w, rep.Outputs)
}

// syntheticImage draws a deterministic size x size picture: concentric red, green, blue and
// yellow rings on a dark diagonal gradient, with a white square in the middle.
func syntheticImage(size int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	rings := []color.NRGBA{{230, 40, 40, 255}, {40, 200, 60, 255}, {50, 80, 230, 255}, {240, 220, 40, 255}}
	c := float64(size-1) / 2
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			dx, dy := float64(x)-c, float64(y)-c
			r := math.Hypot(dx, dy) / (float64(size) / 2)
			col := color.NRGBA{uint8(20 + 60*x/size), uint8(20 + 60*y/size), 60, 255}
			if r < 1 {
				col = rings[int(r*8)%len(rings)]
			}
			if math.Abs(dx) < float64(size)/12 && math.Abs(dy) < float64(size)/12 {
				col = color.NRGBA{250, 250, 250, 255}
			}
			img.SetNRGBA(x, y, col)
		}
	}
	return img
}

// The training demo's model, data and schedule. The model is small enough to train to a high
// accuracy in well under a minute on two cores; the data set is large enough that the validation
// accuracy measures recognition, not memory.
const (
	demoSteps     = 200
	demoBatch     = 32
	demoTrainSize = 2048
	demoValSize   = 512
	demoLR        = 0.1
	demoWarmup    = 20
)

// demoConfig returns the training demo's DenseNet-BC.
func demoConfig() builders.Config {
	return builders.Config{
		Growth: 6, Blocks: []int{3, 3}, InitFeatures: 12, BNSize: 4, Compression: 0.5,
		Stem: builders.StemCIFAR, Classes: 4, InputSize: 16,
	}
}

// demoTrainReport is what `dnx demo --json` prints.
type demoTrainReport struct {
	Config                  string   `json:"config"`
	Seed                    int64    `json:"seed"`
	Parameters              int64    `json:"parameters"`
	Classes                 []string `json:"classes"`
	ImageSize               int      `json:"image_size"`
	TrainImages             int      `json:"train_images"`
	ValImages               int      `json:"val_images"`
	Steps                   int      `json:"steps"`
	Batch                   int      `json:"batch"`
	Optimizer               string   `json:"optimizer"`
	TrainSeconds            number   `json:"train_seconds"`
	ImagesPerS              number   `json:"images_per_s"`
	FinalLoss               number   `json:"final_loss"`
	TrainAcc                number   `json:"train_acc"`
	ActivationBytes         int64    `json:"activation_bytes"`
	ActivationBytesStandard int64    `json:"activation_bytes_standard"`
	ExportBytes             int      `json:"export_bytes"`
	ValAcc                  number   `json:"val_acc"`
	ValLoss                 number   `json:"val_loss"`
	Chance                  number   `json:"chance"`
	PeakRSSBytes            int64    `json:"peak_rss_bytes"`
	Seconds                 number   `json:"seconds"`
	Output                  string   `json:"output,omitempty"`
}

// demoTrain is `dnx demo`: build, fine-tune on synthetic shapes, export, reload, validate.
func demoTrain(c *ucli.Context) error {
	start := time.Now()
	ctx := c.Context
	seed, steps, batch := c.Int64("seed"), c.Int("steps"), c.Int("batch")
	switch {
	case steps < 1 || steps > 100000:
		return usagef("demo: --steps %d: want 1..100000", steps)
	case batch < 2 || batch > 1024:
		return usagef("demo: --batch %d: want 2..1024", batch)
	}
	threads, err := threadsOption(c)
	if err != nil {
		return err
	}
	limit, err := memoryLimit(c)
	if err != nil {
		return err
	}
	if err := checkFiles("demo", nil, []fileArg{{flag: "-o", path: c.String("output")}}); err != nil {
		return err
	}
	cfg := demoConfig()
	build := func() (*graph.Graph, error) {
		m, err := builders.Build(cfg, builders.BuildOptions{Seed: seed})
		if err != nil {
			return nil, err
		}
		return graph.Import(m, "", ops.Default())
	}
	g, err := build()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	size := cfg.InputSize
	trainDS := data.Shapes(demoTrainSize, size, seed)
	valDS := data.Shapes(demoValSize, size, seed^0x5eed) // other pictures than the training ones
	opts := train.Options{
		Optim:           train.OptimConfig{Name: "sgd", LR: demoLR, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
		Schedule:        train.Schedule{Kind: "cosine", WarmupSteps: min(demoWarmup, steps-1), TotalSteps: steps},
		MemoryEfficient: true,
		Threads:         threads,
		MaxMemory:       limit,
	}
	if steps == 1 {
		opts.Schedule = train.Schedule{Kind: "constant"}
	}
	tr, err := train.New(g, opts)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	ld, err := data.NewLoader(trainDS, data.LoaderOptions{Batch: batch, Shuffle: true, Augment: true, DropLast: true, Seed: seed})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	rep := demoTrainReport{
		Config: cfg.String(), Seed: seed, Parameters: builders.Params(cfg), Classes: trainDS.ClassNames(), ImageSize: size,
		TrainImages: trainDS.Len(), ValImages: valDS.Len(), Steps: steps, Batch: batch,
		Optimizer: fmt.Sprintf("SGD (Nesterov momentum 0.9, weight decay 5e-4), cosine learning rate from %g after %s", demoLR, plural.Count(opts.Schedule.WarmupSteps, "warm-up step")),
		Chance:    number(1 / float64(trainDS.NumClasses())),
	}

	// Train with the library's loop, showing a progress line; the running means cover the last
	// 20 steps.
	prog := newTrainProgress(c.App.ErrWriter, !c.Bool("json"))
	var recent []train.EpochSums
	var firstBatch *tensor.Tensor
	var firstLabels []int64
	fitted, err := train.Fit(ctx, tr, train.FitConfig{
		Train: ld, Steps: steps, Classes: trainDS.NumClasses(),
		Progress: func(ev train.Event) error {
			if ev.Kind != train.EventStep {
				return nil
			}
			if firstBatch == nil {
				firstBatch, firstLabels = ev.Batch.X, ev.Batch.Y
			}
			var s train.EpochSums
			s.Add(ev.Images, ev.Stats.Loss, int64(ev.Stats.Correct))
			recent = append(recent, s)
			if len(recent) > 20 {
				recent = recent[1:]
			}
			rep.ActivationBytes = max(rep.ActivationBytes, ev.Stats.ActivationBytes)
			var sum train.EpochSums
			for _, r := range recent {
				sum.Add(int(r.Images), r.Loss(), r.Correct)
			}
			rep.FinalLoss, rep.TrainAcc = number(sum.Loss()), number(sum.Acc())
			step := ev.State.Step
			ips := float64(step*batch) / ev.RunTime.Seconds()
			eta := time.Duration(float64(ev.RunTime) / float64(step) * float64(steps-step))
			prog.update(fmt.Sprintf("demo: step %d/%d  loss %.4f  acc %.1f%%  %.0f img/s  ETA %s", step, steps, sum.Loss(), 100*sum.Acc(), ips, etaText(eta)), step == steps)
			return nil
		},
	})
	prog.finish()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	trained := fitted.TrainTime
	rep.TrainSeconds = number(trained.Seconds())
	rep.ImagesPerS = number(float64(steps*batch) / trained.Seconds())

	// The activation memory of the same step without the memory-efficient mode, on a fresh copy
	// of the initial model.
	if g0, err := build(); err == nil {
		o := opts
		o.MemoryEfficient = false
		if tr0, err := train.New(g0, o); err == nil {
			if st, err := tr0.Step(ctx, firstBatch, firstLabels); err == nil {
				rep.ActivationBytesStandard = st.ActivationBytes
			}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("demo: %w", ctx.Err())
	}

	// Export, reload the bytes with the inference engine and validate.
	m, err := graph.Export(tr.Graph())
	if err != nil {
		return fmt.Errorf("demo: export: %w", err)
	}
	blob, err := onnx.MarshalModel(m)
	if err != nil {
		return fmt.Errorf("demo: export: %w", err)
	}
	rep.ExportBytes = len(blob)
	if out := c.String("output"); out != "" {
		if err := onnx.WriteFileAtomic(out, blob, 0o644); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		rep.Output = out
	}
	m2, err := onnx.ReadModel(blob)
	if err != nil {
		return fmt.Errorf("demo: reload: %w", err)
	}
	g2, err := graph.Import(m2, "", ops.Default())
	if err != nil {
		return fmt.Errorf("demo: reload: %w", err)
	}
	sess, err := exec.New(g2, exec.Options{Threads: threads, MaxMemory: limit})
	if err != nil {
		return fmt.Errorf("demo: reload: %w", err)
	}
	defer sess.Close()
	vld, err := data.NewLoader(valDS, data.LoaderOptions{Batch: 128, Seed: seed})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	v, err := train.Validate(ctx, vld, 0, func(ctx context.Context, x *tensor.Tensor) (*tensor.Tensor, error) {
		out, err := sess.Run(ctx, []*tensor.Tensor{x})
		if err != nil {
			return nil, err
		}
		return out[0], nil
	}, nil)
	if err != nil {
		return fmt.Errorf("demo: validation: %w", err)
	}
	rep.ValAcc, rep.ValLoss = number(v.Acc), number(v.Loss)
	rep.PeakRSSBytes = peakRSS()
	rep.Seconds = number(time.Since(start).Seconds())
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	return printDemoTrain(c.App.Writer, rep)
}

func printDemoTrain(w io.Writer, r demoTrainReport) error {
	fmt.Fprintf(w, "Model       %s\n", r.Config)
	fmt.Fprintf(w, "            %s parameters, seeded random weights (seed %d), training form\n", groupDigits(r.Parameters), r.Seed)
	fmt.Fprintf(w, "Data        synthetic %dx%d pictures of %s (%s)\n", r.ImageSize, r.ImageSize, plural.Count(len(r.Classes), "shape"), strings.Join(r.Classes, ", "))
	fmt.Fprintf(w, "            %d for training (random crops and flips), %d other ones for validation\n", r.TrainImages, r.ValImages)
	fmt.Fprintf(w, "Training    %s of %s in %.1f s (%.0f images/s), memory-efficient mode\n", plural.Count(r.Steps, "step"), plural.Count(r.Batch, "image"), float64(r.TrainSeconds), float64(r.ImagesPerS))
	fmt.Fprintf(w, "            %s\n", r.Optimizer)
	fmt.Fprintf(w, "            last 20 steps: loss %.4f, accuracy %.1f%%\n", float64(r.FinalLoss), 100*float64(r.TrainAcc))
	fmt.Fprintf(w, "Memory      activations held for the backward pass: %s per step", byteCount(r.ActivationBytes))
	if r.ActivationBytesStandard > 0 {
		fmt.Fprintf(w, " (%s without the memory-efficient mode, %.1fx)", byteCount(r.ActivationBytesStandard), float64(r.ActivationBytesStandard)/float64(max(r.ActivationBytes, 1)))
	}
	fmt.Fprintf(w, "\n            peak RSS %s\n", byteCount(r.PeakRSSBytes))
	fmt.Fprintf(w, "Export      ONNX model of %s", byteCount(int64(r.ExportBytes)))
	if r.Output != "" {
		fmt.Fprintf(w, " written to %s", r.Output)
	}
	fmt.Fprintf(w, ", reloaded and run by the inference engine\n")
	fmt.Fprintf(w, "Accuracy    %.1f%% on the %d validation pictures (chance: %.0f%%), loss %.4f\n", 100*float64(r.ValAcc), r.ValImages, 100*float64(r.Chance), float64(r.ValLoss))
	_, err := fmt.Fprintf(w, "Time        %.1f s in all\n", float64(r.Seconds))
	return err
}

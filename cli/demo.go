package cli

import (
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"sort"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// demoImageSize is the side of the synthetic picture before it is resized to the model's input.
const demoImageSize = 96

func demoCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "demo",
		Usage: "build a small DenseNet in memory and classify a synthetic image with it (no files needed)",
		Description: "The demo builds a model preset (default \"tiny\": DenseNet-BC, 2 blocks x 2 layers, k=4,\n" +
			"16x16 input, 5 classes) with seeded random weights, draws a synthetic picture of concentric\n" +
			"coloured rings, preprocesses it like a photo (resize, centre crop, normalise) and runs the\n" +
			"model on it. The weights are untrained, so the predicted classes are arbitrary; the demo\n" +
			"shows the whole pipeline working offline: build, import, plan, run, report.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "preset", Value: "tiny", Usage: "model preset to build (see the models package: tiny, densenet121, densenet_bc100_k12, ...)"},
			&ucli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the random weights"},
			&ucli.IntFlag{Name: "runs", Value: 5, Usage: "timed runs for the latency (the first run is not timed)"},
			&ucli.IntFlag{Name: "top", Value: 5, Usage: "classes to show"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
		},
		Action: demoAction,
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

func demoAction(c *ucli.Context) error {
	if c.Args().Present() {
		return usagef("demo: takes no arguments, got %q", c.Args().First())
	}
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
		return fmt.Errorf("demo: preset %s: the built model has %d inputs, want 1", preset.Name, len(g.Inputs))
	}
	in := g.Inputs[0]
	size := preset.Config.InputSize
	shape := tensor.Shape{1, 3, size, size}
	if err := g.SetInputShapes(map[string]tensor.Shape{in.Name: shape}); err != nil {
		return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
	}
	sess, err := exec.New(g)
	if err != nil {
		return fmt.Errorf("demo: preset %s: %w", preset.Name, err)
	}
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
	fmt.Fprintf(w, "Latency     %.3f ms median, %.3f ms best of %d runs\n\n", float64(rep.LatencyMS.Median), float64(rep.LatencyMS.Min), rep.Runs)
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

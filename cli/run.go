package cli

import (
	"context"
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"image"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/labels"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// defaultImageSize is the side of the crop for an image input whose H and W are not static.
const defaultImageSize = 224

func runCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "run a model on input files and print its outputs (top-K classes for classifiers)",
		ArgsUsage: "MODEL",
		Description: "Each --input feeds one graph input, in the model's input order. A .pb file holds an\n" +
			"ONNX TensorProto, a .npy file a NumPy array (float64 is converted to float32 for a float32\n" +
			"input, with a note); a .png/.jpg/.jpeg image is resized, centre-cropped to the input's H x W\n" +
			"(224 when not static) and normalised with the ImageNet mean and std, as batch 1. Outputs of\n" +
			"shape [N, C] (C >= 2) are shown as the top-K softmax classes per row, named (\"tabby (281)\")\n" +
			"by --labels FILE, else by the model's metadata (\"labels\", which dnx finetune --data writes),\n" +
			"else, for 1000 classes, by the ImageNet-1k names.",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Usage: "input `FILE` (.pb, .npy, .png, .jpg); repeat once per graph input"},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the first output to `FILE` (.pb or .npy)"},
			&ucli.StringFlag{Name: "output-dir", Usage: "write every output to `DIR`/output_K.pb"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
			&ucli.IntFlag{Name: "top", Value: 5, Usage: "classes to show per row of a classifier output (0: none)"},
			&ucli.StringFlag{Name: "labels", Usage: "class names for the top classes: `FILE` with one name per line (or a JSON array); overrides the model's"},
			threadsFlag(),
			maxMemoryFlag(),
			deviceFlag(),
		},
		Action: runAction,
	}
}

// runReport is what `dnx run --json` prints.
type runReport struct {
	Model     string         `json:"model"`
	Outputs   []outputReport `json:"outputs"`
	ElapsedMS number         `json:"elapsed_ms"`
	Written   []string       `json:"written,omitempty"`
}

type outputReport struct {
	Name  string       `json:"name"`
	DType string       `json:"dtype"`
	Shape tensor.Shape `json:"shape"`
	Top   []topEntry   `json:"top,omitempty"`
	// LabelsFrom says where the class names in Top come from (labels.Source: "file", "model
	// metadata", "ImageNet-1k (embedded)", or "none"); empty for outputs shown without classes.
	LabelsFrom string `json:"labels_from,omitempty"`
	t          *tensor.Tensor
}

func runAction(c *ucli.Context) error {
	if err := checkDevice(c); err != nil {
		return err
	}
	if err := exactArgs(c, "MODEL"); err != nil {
		return err
	}
	path := c.Args().First()
	files := c.StringSlice("input")
	out, outDir := c.String("output"), c.String("output-dir")
	top := c.Int("top")
	labelsFile := c.String("labels")
	if out != "" && outDir != "" {
		return usagef("run: --output and --output-dir are exclusive")
	}
	if top < 0 {
		return usagef("run: --top %d: want 0 or more", top)
	}
	if labelsFile != "" && top == 0 {
		return usagef("run: --labels names the top classes, which --top 0 turns off")
	}
	var outFormat tensorFormat
	if out != "" {
		f, err := outputFormat(out)
		if err != nil {
			return err
		}
		outFormat = f
	}
	for _, f := range files {
		if _, err := inputKind(f); err != nil {
			return err
		}
	}
	threads, err := threadsOption(c)
	if err != nil {
		return err
	}
	budget, err := memoryBudget(c)
	if err != nil {
		return err
	}

	inputs := []fileArg{{path: path}, {flag: "--labels", path: labelsFile}}
	for _, f := range files {
		inputs = append(inputs, fileArg{flag: "--input", path: f})
	}
	outputs := []fileArg{{flag: "-o", path: out}, {flag: "--output-dir", path: outDir, dir: true}}
	if err := checkFiles("run", inputs, outputs); err != nil {
		return err
	}
	if err := checkReadBudget("run", budget, inputs); err != nil {
		return err
	}
	model, err := loadModel(path)
	if err != nil {
		return err
	}
	g := model.g
	if len(files) != len(g.Inputs) {
		return usagef("run: %s takes %s (%s), got %s", path, plural.Count(len(g.Inputs), "input"), inputNames(g), plural.Count(len(files), "--input file"))
	}
	// Now that the model is known: its external data files, and the files --output-dir gets.
	for i := range g.Outputs {
		outputs[1].files = append(outputs[1].files, outputFileName(i))
	}
	if err := checkConflicts("run", append(inputs, model.external...), outputs); err != nil {
		return err
	}
	sess, err := exec.New(g, exec.Options{Threads: threads, MaxMemory: budget.Limit()})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer sess.Close()
	in := make([]*tensor.Tensor, len(files))
	for i, f := range files {
		arg := fileArg{flag: "--input", path: f}
		t, err := loadInput(arg, g.Inputs[i], budget)
		if err != nil {
			return err
		}
		if g.Inputs[i].Type.DType == tensor.Float32 {
			if t, err = narrowFloat64("run", arg, t, c.App.ErrWriter); err != nil {
				return err
			}
		}
		if err := checkInput(g.Inputs[i], t, f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		in[i] = t
	}

	outs, elapsed, err := runTimed(c.Context, sess, in)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep := runReport{Model: path, ElapsedMS: number(float64(elapsed.Microseconds()) / 1000)}
	named := false
	meta := g.MetadataMap()
	for i, t := range outs {
		o := outputReport{Name: g.Outputs[i].Name, DType: t.DType.String(), Shape: t.Shape, t: t}
		if top > 0 && isClassifier(t) {
			o.Top = topK(t, top)
			names, src, err := labels.For(t.Shape[1], labelsFile, meta)
			if err != nil {
				if labelsFile == "" {
					return fmt.Errorf("run: %s: %w (give the class names with --labels FILE)", path, err)
				}
				return fmt.Errorf("run: --labels: %w", err)
			}
			o.LabelsFrom = string(src)
			if names != nil {
				for k := range o.Top {
					o.Top[k].Label = names[o.Top[k].Class]
				}
			}
			named = true
		}
		rep.Outputs = append(rep.Outputs, o)
	}
	if labelsFile != "" && !named {
		return fmt.Errorf("run: --labels %s: no output of %s is a classifier ([N, C] scores) whose classes it could name", labelsFile, path)
	}

	switch {
	case out != "":
		if err := writeTensor(out, outFormat, outs[0], g.Outputs[0].Name); err != nil {
			return err
		}
		rep.Written = append(rep.Written, out)
	case outDir != "":
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return fmt.Errorf("run: --output-dir %s: %w", outDir, pathErrorCause(err))
		}
		for i, t := range outs {
			p := filepath.Join(outDir, outputFileName(i))
			if err := onnx.WriteTensorFile(p, t, g.Outputs[i].Name); err != nil {
				return err
			}
			rep.Written = append(rep.Written, p)
		}
	}

	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	return printRun(c.App.Writer, rep)
}

// outputFileName is the name of output i in --output-dir.
func outputFileName(i int) string { return fmt.Sprintf("output_%d.pb", i) }

// runTimed runs the session and measures the wall time of the run alone.
func runTimed(ctx context.Context, s *exec.Session, in []*tensor.Tensor) ([]*tensor.Tensor, time.Duration, error) {
	start := time.Now()
	out, err := s.Run(ctx, in)
	return out, time.Since(start), err
}

// Kinds of --input files, by extension.
const (
	inputPB = iota
	inputNPY
	inputImage
)

// inputKind returns the kind of an --input file by its extension; an unknown extension is a
// usage error.
func inputKind(path string) (int, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".pb":
		return inputPB, nil
	case ".npy":
		return inputNPY, nil
	case ".png", ".jpg", ".jpeg":
		return inputImage, nil
	default:
		return 0, usagef("run: --input %s: unknown extension %q (use .pb, .npy, .png, .jpg or .jpeg)", path, ext)
	}
}

// loadInput reads one --input file for graph input v, choosing the reader by extension. An
// image's decoded pixels must fit budget: a small file can declare a huge picture.
func loadInput(arg fileArg, v *graph.Value, budget membudget.Budget) (*tensor.Tensor, error) {
	kind, err := inputKind(arg.path)
	if err != nil {
		return nil, err
	}
	if kind != inputImage {
		return readTensorFile(arg.path)
	}
	h, w, err := imageSize(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg.path, err)
	}
	if err := checkImageBudget("run", arg, budget); err != nil {
		return nil, err
	}
	return imageio.LoadFile(arg.path, h, w, imageio.ImageNet())
}

// checkImageBudget checks the memory an image file's decoded pixels take, from its header,
// against budget. A header that cannot be read is left to the decoder to report.
func checkImageBudget(cmd string, arg fileArg, budget membudget.Budget) error {
	f, err := os.Open(arg.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil
	}
	what := fmt.Sprintf("decoding %s (%s, %dx%d pixels)", arg, format, cfg.Width, cfg.Height)
	if err := budget.CheckBytes(what, imageio.DecodedBytes(cfg)); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// imageSize checks that v can take an image, a float32 [N, 3, H, W] tensor, and returns its H and
// W (defaultImageSize where not static).
func imageSize(v *graph.Value) (h, w int, err error) {
	t := v.Type
	ok := t.DType == tensor.Float32 && !t.Unranked && len(t.Shape) == 4 &&
		(!t.Shape[1].IsKnown() || t.Shape[1].Value == 3) &&
		(!t.Shape[0].IsKnown() || t.Shape[0].Value == 1)
	if !ok {
		return 0, 0, fmt.Errorf("input %q is %s, not an image input (an image needs float32[1 or batch,3,H,W]); pass a .pb or .npy tensor", v.Name, t)
	}
	size := func(d int) int {
		if t.Shape[d].IsKnown() && t.Shape[d].Value > 0 {
			return int(t.Shape[d].Value)
		}
		return defaultImageSize
	}
	return size(2), size(3), nil
}

// checkInput compares a loaded tensor with the input's declared type, naming the input, the file
// and both shapes. The session checks again (symbolic dims across inputs included).
func checkInput(v *graph.Value, t *tensor.Tensor, file string) error {
	bad := t.DType != v.Type.DType
	if !v.Type.Unranked {
		bad = bad || len(t.Shape) != len(v.Type.Shape)
		for k, d := range v.Type.Shape {
			bad = bad || (k < len(t.Shape) && d.IsKnown() && int64(t.Shape[k]) != d.Value)
		}
	}
	if bad {
		return fmt.Errorf("%w: input %q from %s is %s%s, the model expects %s", exec.ErrInput, v.Name, file, t.DType, shapeText(t.Shape), v.Type)
	}
	return nil
}

func printRun(w io.Writer, rep runReport) error {
	if err := printOutputs(w, rep.Outputs); err != nil {
		return err
	}
	for _, p := range rep.Written {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
	_, err := fmt.Fprintf(w, "elapsed %.3f ms\n", float64(rep.ElapsedMS))
	return err
}

// printOutputs prints each output's type and either its top classes or its value range.
func printOutputs(w io.Writer, outputs []outputReport) error {
	for _, o := range outputs {
		names := ""
		if o.LabelsFrom != "" && o.LabelsFrom != string(labels.None) {
			names = "  (class names: " + o.LabelsFrom + ")"
		}
		fmt.Fprintf(w, "%s %s%s%s\n", o.Name, o.DType, shapeText(o.Shape), names)
		switch {
		case len(o.Top) > 0:
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "  row\tclass\tprob\tlogit\t\n")
			prev := -1
			for _, e := range o.Top {
				row := ""
				if e.Row != prev {
					row, prev = fmt.Sprint(e.Row), e.Row
				}
				class := strconv.Itoa(e.Class)
				if e.Label != "" {
					class = fmt.Sprintf("%s (%d)", e.Label, e.Class)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%.4f\t%.4f\t\n", row, class, float64(e.Prob), float64(e.Logit))
			}
			tw.Flush()
			if _, err := io.WriteString(w, b.String()); err != nil {
				return err
			}
		case o.t.DType != tensor.String && o.t.Len() > 0:
			lo, mean, hi := summary(o.t)
			fmt.Fprintf(w, "  min %.6g  mean %.6g  max %.6g\n", lo, mean, hi)
		}
	}
	return nil
}

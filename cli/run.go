package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// defaultImageSize is the side of the crop for an image input whose H and W are not static.
const defaultImageSize = 224

func runCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "run a model on input files and print its outputs (top-K classes for classifiers)",
		ArgsUsage: "MODEL",
		Description: "Each --input feeds one graph input, in the model's input order. A .pb file holds an\n" +
			"ONNX TensorProto, a .npy file a NumPy array; a .png/.jpg/.jpeg image is resized, centre-cropped\n" +
			"to the input's H x W (224 when not static) and normalised with the ImageNet mean and std,\n" +
			"as batch 1. Outputs of shape [N, C] (C >= 2) are shown as the top-K softmax classes per row.",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Usage: "input `FILE` (.pb, .npy, .png, .jpg); repeat once per graph input"},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the first output to `FILE` (.pb or .npy)"},
			&ucli.StringFlag{Name: "output-dir", Usage: "write every output to `DIR`/output_K.pb"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
			&ucli.IntFlag{Name: "top", Value: 5, Usage: "classes to show per row of a classifier output (0: none)"},
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
	t     *tensor.Tensor
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
	if out != "" && outDir != "" {
		return usagef("run: --output and --output-dir are exclusive")
	}
	if top < 0 {
		return usagef("run: --top %d: want 0 or more", top)
	}
	var outFormat tensorFormat
	if out != "" {
		f, err := outputFormat(out)
		if err != nil {
			return err
		}
		outFormat = f
	}

	g, err := graph.Load(path)
	if err != nil {
		return err
	}
	sess, err := exec.New(g)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(files) != len(g.Inputs) {
		return usagef("run: %s takes %d input(s) (%s), got %d --input file(s)", path, len(g.Inputs), inputNames(g), len(files))
	}
	inputs := make([]*tensor.Tensor, len(files))
	for i, f := range files {
		t, err := loadInput(f, g.Inputs[i])
		if err != nil {
			return err
		}
		if err := checkInput(g.Inputs[i], t, f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		inputs[i] = t
	}

	outputs, elapsed, err := runTimed(c.Context, sess, inputs)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep := runReport{Model: path, ElapsedMS: number(float64(elapsed.Microseconds()) / 1000)}
	for i, t := range outputs {
		o := outputReport{Name: g.Outputs[i].Name, DType: t.DType.String(), Shape: t.Shape, t: t}
		if top > 0 && isClassifier(t) {
			o.Top = topK(t, top)
		}
		rep.Outputs = append(rep.Outputs, o)
	}

	switch {
	case out != "":
		if err := writeTensor(out, outFormat, outputs[0], g.Outputs[0].Name); err != nil {
			return err
		}
		rep.Written = append(rep.Written, out)
	case outDir != "":
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return fmt.Errorf("--output-dir: %w", err)
		}
		for i, t := range outputs {
			p := filepath.Join(outDir, fmt.Sprintf("output_%d.pb", i))
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

// runTimed runs the session and measures the wall time of the run alone.
func runTimed(ctx context.Context, s *exec.Session, in []*tensor.Tensor) ([]*tensor.Tensor, time.Duration, error) {
	start := time.Now()
	out, err := s.Run(ctx, in)
	return out, time.Since(start), err
}

// loadInput reads one --input file for graph input v, choosing the reader by extension.
func loadInput(path string, v *graph.Value) (*tensor.Tensor, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".pb":
		t, _, err := onnx.ReadTensorFile(path)
		return t, err
	case ".npy":
		return npy.ReadFile(path)
	case ".png", ".jpg", ".jpeg":
		h, w, err := imageSize(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return imageio.LoadFile(path, h, w, imageio.ImageNet())
	default:
		return nil, usagef("run: --input %s: unknown extension %q (use .pb, .npy, .png, .jpg or .jpeg)", path, ext)
	}
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
		fmt.Fprintf(w, "%s %s%s\n", o.Name, o.DType, shapeText(o.Shape))
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
				fmt.Fprintf(tw, "  %s\t%d\t%.4f\t%.4f\t\n", row, e.Class, float64(e.Prob), float64(e.Logit))
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

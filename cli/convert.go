package cli

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	opsetconv "github.com/dnx-ml/dnx/converters/opset"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/passes"

	ucli "github.com/urfave/cli/v2"
)

func convertCommand() *ucli.Command {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE` (.onnx), written atomically"},
		&ucli.IntFlag{Name: "opset", Usage: "default-domain opset of the output (11 to 21)"},
		&ucli.BoolFlag{Name: "optimize", Usage: "for an .onnx input: fold BNs into convs, drop Identity/Dropout/zero Pads, fold constants (standard ONNX out)"},
	}
	return &ucli.Command{
		Name:      "convert",
		Usage:     "convert a PyTorch checkpoint to ONNX, or an ONNX model to another opset",
		ArgsUsage: "(CHECKPOINT.pth|CHECKPOINT.safetensors|MODEL.onnx)",
		Description: "A PyTorch DenseNet state_dict (torch.save zip or legacy format, or .safetensors) becomes an\n" +
			"ONNX model of the preset's architecture (--preset) or of the one its tensor shapes imply. The\n" +
			"pickle is parsed, never executed. An .onnx input is rewritten to the default-domain --opset.",
		Flags:  append(flags, checkpointFlags()...),
		Action: convertAction,
	}
}

func convertAction(c *ucli.Context) error {
	if err := exactArgs(c, "INPUT"); err != nil {
		return err
	}
	in := c.Args().First()
	if strings.EqualFold(filepath.Ext(in), ".onnx") {
		for _, name := range []string{"preset", "classes", "input-size", "inference"} {
			if c.IsSet(name) {
				return usagef("convert: --%s applies to checkpoints, not to %s", name, in)
			}
		}
		switch {
		case c.Bool("optimize"):
			return convertOptimize(c, in, c.String("output"), c.Int("opset"))
		case c.IsSet("opset"):
			return convertOpset(c, in, c.String("output"), c.Int("opset"))
		}
		return usagef("convert: %s is already ONNX: say what to change (--optimize, --opset N)", in)
	}
	if c.Bool("optimize") {
		return usagef("convert: --optimize applies to .onnx models (a checkpoint converts with --inference to fold its BNs)")
	}
	return convertCheckpoint(c)
}

// convertOptimize is `dnx convert IN.onnx --optimize [--opset N] -o OUT.onnx`: the graph passes that
// keep the model standard ONNX (passes.Export: BN folded into the conv before it, Identity,
// inference Dropout, all-zero Pads and single-input Concats dropped, constants folded) and,
// with --opset, a rewrite to that opset. Output names and values are unchanged.
func convertOptimize(c *ucli.Context, in, out string, opset int) error {
	if out == "" {
		return usagef("convert: missing the output file (-o OUT.onnx)")
	}
	g, err := graph.Load(in)
	if err != nil {
		return err
	}
	before := len(g.Nodes)
	hist := g.OpHistogram()
	if _, err := passes.Export().Run(g); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	m, err := graph.Export(g)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if opset != 0 {
		if opset < opsetconv.MinTarget || opset > opsetconv.MaxTarget {
			return usagef("convert: --opset %d: dnx converts to opsets %d to %d", opset, opsetconv.MinTarget, opsetconv.MaxTarget)
		}
		if m, err = opsetconv.Convert(m, opset); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	}
	if err := onnx.WriteModelFile(out, m); err != nil {
		return err
	}
	after := g.OpHistogram()
	var removed []string
	for _, op := range sortedKeys(hist) {
		if d := hist[op] - after[op]; d > 0 {
			removed = append(removed, fmt.Sprintf("%d %s", d, op))
		}
	}
	summary := "nothing to remove"
	if len(removed) > 0 {
		summary = "removed " + strings.Join(removed, ", ")
	}
	_, err = fmt.Fprintf(c.App.Writer, "%s: %d -> %d nodes (%s); wrote %s\n", in, before, len(g.Nodes), summary, out)
	return err
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

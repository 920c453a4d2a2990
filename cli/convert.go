package cli

import (
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"path/filepath"
	"sort"
	"strings"

	opsetconv "github.com/dnx-ml/dnx/converters/opset"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/passes"

	ucli "github.com/urfave/cli/v2"
)

func convertCommand() *ucli.Command {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE` (.onnx), written atomically"},
		&ucli.IntFlag{Name: "opset", Usage: "default-domain opset of the output (11 to 21)"},
		&ucli.BoolFlag{Name: "optimize", Usage: "for an .onnx input: fold BNs into convs, drop Identity/Dropout/zero Pads, fold constants (standard ONNX out)"},
		maxMemoryFlag(),
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
	in, out, opset := c.Args().First(), c.String("output"), c.Int("opset")
	if !strings.EqualFold(filepath.Ext(in), ".onnx") {
		if c.Bool("optimize") {
			return usagef("convert: --optimize applies to .onnx models (a checkpoint converts with --inference to fold its BNs)")
		}
		return convertCheckpoint(c)
	}
	// The command line first, then the files, then the work: a usage error costs nothing.
	for _, name := range []string{"preset", "classes", "input-size", "inference"} {
		if c.IsSet(name) {
			return usagef("convert: --%s applies to checkpoints, not to %s", name, in)
		}
	}
	if !c.Bool("optimize") && !c.IsSet("opset") {
		return usagef("convert: %s is already ONNX: say what to change (--optimize, --opset N)", in)
	}
	if c.IsSet("opset") && (opset < opsetconv.MinTarget || opset > opsetconv.MaxTarget) {
		return usagef("convert: --opset %d: dnx converts to opsets %d to %d", opset, opsetconv.MinTarget, opsetconv.MaxTarget)
	}
	if out == "" {
		return usagef("convert: missing the output file (-o OUT.onnx)")
	}
	budget, err := memoryBudget(c)
	if err != nil {
		return err
	}
	inputs, outputs := []fileArg{{path: in}}, []fileArg{{flag: "-o", path: out}}
	if err := checkFiles("convert", inputs, outputs); err != nil {
		return err
	}
	if err := checkReadBudget("convert", budget, inputs); err != nil {
		return err
	}
	m, err := onnx.ReadModelFile(in)
	if err != nil {
		return err
	}
	if err := checkConflicts("convert", externalFiles(m, in), outputs); err != nil {
		return err
	}
	if c.Bool("optimize") {
		return convertOptimize(c, in, out, m, opset)
	}
	return convertOpset(c, in, out, m, opset)
}

// convertOptimize is `dnx convert IN.onnx --optimize [--opset N] -o OUT.onnx`: the graph passes that
// keep the model standard ONNX (passes.Portable: BN folded into the conv before it, Identity,
// inference Dropout, all-zero Pads and single-input Concats dropped, constants folded) and,
// with --opset, a rewrite to that opset. Output names and values are unchanged. m is the model
// read from in (the flags and files are checked).
func convertOptimize(c *ucli.Context, in, out string, m *onnxpb.ModelProto, opset int) error {
	g, err := graph.Import(m, filepath.Dir(in), ops.Default())
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	before := len(g.Nodes)
	hist := g.OpHistogram()
	if _, err := passes.Portable().Run(g); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if m, err = graph.Export(g); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if opset != 0 {
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
	_, err = fmt.Fprintf(c.App.Writer, "%s: %d -> %s (%s); wrote %s\n", in, before, plural.Count(len(g.Nodes), "node"), summary, out)
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

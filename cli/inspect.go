package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func inspectCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "inspect",
		Usage:     "describe a model: inputs, outputs, operators, parameters and MACs",
		ArgsUsage: "MODEL | --devices",
		Description: "MACs (multiply-accumulates of Conv, Gemm and MatMul) and the activation memory are\n" +
			"counted at concrete input shapes: every symbolic or unknown input dim is 1 unless --shape gives\n" +
			"the input's shape. The activation memory is that of the plan 'dnx run' would compile (one\n" +
			"arena shared by values whose lifetimes do not overlap, plus kernel scratch); compiling it\n" +
			"evaluates the model's constant subgraphs, within --max-memory.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
			&ucli.StringFlag{Name: "dot", Usage: "write the graph as Graphviz DOT to `FILE` (with the --shape shapes if given, else the declared ones)"},
			&ucli.StringSliceFlag{Name: "shape", Usage: "input shape for the MAC count, as `NAME=1,3,224,224` (repeatable)"},
			&ucli.BoolFlag{Name: "devices", Usage: "list the devices dnx can run on (CPU, CUDA) instead of a model"},
			maxMemoryFlag(),
		},
		Action: inspectAction,
	}
}

// inspectReport is what `dnx inspect --json` prints. Its keys are stable.
type inspectReport struct {
	Model           string                  `json:"model"`
	Producer        string                  `json:"producer"`
	ProducerVersion string                  `json:"producer_version"`
	IRVersion       int64                   `json:"ir_version"`
	Opsets          map[string]int          `json:"opsets"`
	Inputs          []valueReport           `json:"inputs"`
	Outputs         []valueReport           `json:"outputs"`
	Nodes           int                     `json:"nodes"`
	Ops             map[string]int          `json:"ops"`
	Parameters      int64                   `json:"parameters"`
	ParameterBytes  int64                   `json:"parameter_bytes"`
	MACs            *int64                  `json:"macs"` // null when unknown
	MACsByOp        map[string]int64        `json:"macs_by_op"`
	MACsUnknown     string                  `json:"macs_unknown,omitempty"`
	MACInputShapes  map[string]tensor.Shape `json:"mac_input_shapes"`
	// ActivationBytes is the planned activation arena at the MAC input shapes, ScratchBytes the
	// kernels' scratch; both null when the graph cannot be planned there, and
	// ActivationsUnknown says why.
	ActivationBytes    *int64 `json:"activation_bytes"`
	ScratchBytes       *int64 `json:"scratch_bytes"`
	ActivationsUnknown string `json:"activations_unknown,omitempty"`
}

// valueReport describes a graph input or output.
type valueReport struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []any  `json:"shape"` // numbers, symbolic names, null for unknown dims
	Type  string `json:"-"`
}

func inspectAction(c *ucli.Context) error {
	if c.Bool("devices") {
		return inspectDevices(c)
	}
	if err := exactArgs(c, "MODEL"); err != nil {
		return err
	}
	path := c.Args().First()
	given, err := parseShapes(c.StringSlice("shape"))
	if err != nil {
		return err
	}
	limit, err := memoryLimit(c)
	if err != nil {
		return err
	}
	dot := c.String("dot")
	inputs, outputs := []fileArg{{path: path}}, []fileArg{{flag: "--dot", path: dot}}
	if err := checkFiles("inspect", inputs, outputs); err != nil {
		return err
	}
	if err := checkReadBudget("inspect", membudget.New(limit), inputs); err != nil {
		return err
	}
	model, err := loadModel(path)
	if err != nil {
		return err
	}
	if err := checkConflicts("inspect", model.external, outputs); err != nil {
		return err
	}
	g := model.g
	rep := inspectReport{
		Model:           path,
		Producer:        g.ProducerName,
		ProducerVersion: g.ProducerVersion,
		IRVersion:       g.IRVersion,
		Opsets:          map[string]int{},
		Inputs:          valueReports(g.Inputs),
		Outputs:         valueReports(g.Outputs),
	}
	for d, v := range g.Opsets {
		rep.Opsets[domainName(d)] = v
	}

	if dot != "" && len(given) == 0 {
		if err := writeDot(g, dot); err != nil {
			return err
		}
	}
	// MACs need concrete input shapes; fixing them re-infers every value's type.
	shapes, reason, err := macShapes(g, given)
	if err != nil {
		return err
	}
	if reason == "" {
		if err := g.SetInputShapes(shapes); err != nil {
			if len(given) > 0 {
				return fmt.Errorf("%s: --shape: %w", path, err)
			}
			reason = fmt.Sprintf("inference at input shapes %s failed: %v", shapesText(g, shapes), err)
		}
	}
	if dot != "" && len(given) > 0 {
		if err := writeDot(g, dot); err != nil {
			return err
		}
	}
	st := g.Stats()
	rep.Nodes, rep.Ops = st.Nodes, st.Ops
	rep.Parameters, rep.ParameterBytes = st.Parameters, st.ParameterBytes
	rep.MACInputShapes = shapes
	rep.MACsByOp = map[string]int64{}
	switch {
	case reason != "":
		rep.MACsUnknown = reason
	case !st.MACsKnown:
		rep.MACsUnknown = st.MACsUnknown
	default:
		macs := st.MACs
		rep.MACs, rep.MACsByOp = &macs, st.MACsByOp
	}
	if reason != "" {
		rep.ActivationsUnknown = reason
	} else {
		rep.ActivationBytes, rep.ScratchBytes, rep.ActivationsUnknown = plannedMemory(g, shapes, limit)
	}

	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	return printInspect(c.App.Writer, g, rep)
}

// plannedMemory compiles the plan dnx run would use for g at the given input shapes (with a
// session of run's options, its threads blocking rather than polling) and returns its activation
// arena and kernel scratch in bytes, or why there is no plan: a graph of data-dependent shapes
// runs on the reference kernels, and a plan over the memory budget is refused.
func plannedMemory(g *graph.Graph, shapes map[string]tensor.Shape, maxMemory int64) (arena, scratch *int64, why string) {
	sess, err := exec.New(g, exec.Options{NoSpin: true, MaxMemory: maxMemory})
	if err != nil {
		return nil, nil, err.Error()
	}
	defer sess.Close()
	ordered := make([]tensor.Shape, len(g.Inputs))
	for i, v := range g.Inputs {
		ordered[i] = shapes[v.Name]
	}
	p, err := sess.Plan(ordered)
	switch {
	case errors.Is(err, plan.ErrNotPlannable):
		return nil, nil, fmt.Sprintf("not planned (dnx run uses the reference kernels, one buffer per value): %v", err)
	case err != nil:
		return nil, nil, err.Error()
	}
	st := p.Stats()
	return &st.ArenaBytes, &st.ScratchBytes, ""
}

// parseShapes parses --shape NAME=d0,d1,... values.
func parseShapes(specs []string) (map[string]tensor.Shape, error) {
	out := map[string]tensor.Shape{}
	for _, s := range specs {
		name, dims, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return nil, usagef("inspect: --shape %q: want NAME=d0,d1,... such as input=1,3,224,224", s)
		}
		if _, dup := out[name]; dup {
			return nil, usagef("inspect: --shape: input %q is given twice", name)
		}
		var ds []int64
		if dims = strings.TrimSpace(dims); dims != "" {
			for _, f := range strings.Split(dims, ",") {
				d, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
				if err != nil {
					return nil, usagef("inspect: --shape %q: dim %q is not an integer", s, f)
				}
				ds = append(ds, d)
			}
		}
		shape, err := tensor.CheckShape(ds)
		if err != nil {
			return nil, usagef("inspect: --shape %q: %v", s, err)
		}
		out[name] = shape
	}
	return out, nil
}

// macShapes returns the concrete shape of every graph input: the given one, or the declared one
// with symbolic and unknown dims set to 1. reason is non-empty when an input's rank is unknown
// and no shape was given for it.
func macShapes(g *graph.Graph, given map[string]tensor.Shape) (map[string]tensor.Shape, string, error) {
	out := map[string]tensor.Shape{}
	for name := range given {
		if v := g.Value(name); v == nil || v.Producer != nil || v.IsConst() {
			return nil, "", usagef("inspect: --shape: the model has no input %q (inputs: %s)", name, inputNames(g))
		}
	}
	var reason string
	for _, v := range g.Inputs {
		if s, ok := given[v.Name]; ok {
			out[v.Name] = s
			continue
		}
		if v.Type.Unranked {
			if reason == "" {
				reason = fmt.Sprintf("input %q has unknown rank; give its shape with --shape %s=...", v.Name, v.Name)
			}
			continue
		}
		s := make(tensor.Shape, len(v.Type.Shape))
		for i, d := range v.Type.Shape {
			s[i] = 1
			if d.IsKnown() {
				s[i] = int(d.Value)
			}
		}
		out[v.Name] = s
	}
	return out, reason, nil
}

// writeDot writes g's DOT rendering to path atomically.
func writeDot(g *graph.Graph, path string) error {
	var b bytes.Buffer
	if err := g.WriteDot(&b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return onnx.WriteFileAtomic(path, b.Bytes(), 0o644)
}

func valueReports(vs []*graph.Value) []valueReport {
	out := make([]valueReport, len(vs))
	for i, v := range vs {
		out[i] = valueReport{Name: v.Name, DType: v.Type.DType.String(), Shape: dimsJSON(v.Type), Type: v.Type.String()}
	}
	return out
}

// domainName spells the default domain as ai.onnx.
func domainName(d string) string {
	if d == "" {
		return "ai.onnx"
	}
	return d
}

func inputNames(g *graph.Graph) string {
	names := make([]string, len(g.Inputs))
	for i, v := range g.Inputs {
		names[i] = strconv.Quote(v.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// shapesText formats input shapes in graph-input order: "input [1,3,224,224], mask [1,10]".
func shapesText(g *graph.Graph, shapes map[string]tensor.Shape) string {
	var parts []string
	for _, v := range g.Inputs {
		if s, ok := shapes[v.Name]; ok {
			parts = append(parts, v.Name+" "+shapeText(s))
		}
	}
	return strings.Join(parts, ", ")
}

func printInspect(w io.Writer, g *graph.Graph, rep inspectReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	producer := strings.TrimSpace(rep.Producer + " " + rep.ProducerVersion)
	if producer == "" {
		producer = "(not recorded)"
	}
	fmt.Fprintf(tw, "Model\t%s\n", rep.Model)
	fmt.Fprintf(tw, "Producer\t%s\n", producer)
	fmt.Fprintf(tw, "IR version\t%d\n", rep.IRVersion)
	var opsets []string
	for d, v := range rep.Opsets {
		opsets = append(opsets, fmt.Sprintf("%s %d", d, v))
	}
	sort.Strings(opsets)
	fmt.Fprintf(tw, "Opsets\t%s\n", strings.Join(opsets, ", "))
	for i, v := range rep.Inputs {
		label := ""
		if i == 0 {
			label = "Inputs"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", label, v.Name, v.Type)
	}
	for i, v := range rep.Outputs {
		label := ""
		if i == 0 {
			label = "Outputs"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", label, v.Name, v.Type)
	}
	fmt.Fprintf(tw, "Parameters\t%s (%s)\n", groupDigits(rep.Parameters), byteCount(rep.ParameterBytes))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nOperators (%s)\n", plural(rep.Nodes, "node"))
	type count struct {
		op string
		n  int
	}
	var counts []count
	for op, n := range rep.Ops {
		counts = append(counts, count{op, n})
	}
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].n != counts[j].n {
			return counts[i].n > counts[j].n
		}
		return counts[i].op < counts[j].op
	})
	var table strings.Builder
	tw = tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	for _, c := range counts {
		macs := ""
		if m, ok := rep.MACsByOp[c.op]; ok && rep.MACs != nil && *rep.MACs > 0 {
			macs = fmt.Sprintf("%s MACs (%.1f%%)", siCount(m), 100*float64(m)/float64(*rep.MACs))
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", c.op, c.n, macs)
	}
	tw.Flush()
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}

	fmt.Fprintln(w)
	// A model without inputs has no shapes to name.
	at := ""
	if shapes := shapesText(g, rep.MACInputShapes); shapes != "" {
		at = " at " + shapes
	}
	if rep.MACs != nil {
		fmt.Fprintf(w, "MACs%s: %s (%s)\n", at, siCount(*rep.MACs), groupDigits(*rep.MACs))
	} else {
		fmt.Fprintf(w, "MACs%s: unknown: %s\n", at, rep.MACsUnknown)
	}
	var err error
	if rep.ActivationBytes != nil {
		_, err = fmt.Fprintf(w, "Activations%s: %s planned (%s bytes), kernel scratch %s\n", at,
			byteCount(*rep.ActivationBytes), groupDigits(*rep.ActivationBytes), byteCount(*rep.ScratchBytes))
	} else {
		_, err = fmt.Fprintf(w, "Activations%s: unknown: %s\n", at, rep.ActivationsUnknown)
	}
	return err
}

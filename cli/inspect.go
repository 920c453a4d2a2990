package cli

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func inspectCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "inspect",
		Usage:     "describe a model: inputs, outputs, operators, parameters and MACs",
		ArgsUsage: "MODEL | --devices",
		Description: "MACs (multiply-accumulates of Conv, Gemm and MatMul) and the activation memory are\n" +
			"counted at concrete input shapes: every symbolic or unknown input dim is --batch (1) unless\n" +
			"--shape gives the input's shape. The activation memory is that of the plan 'dnx run' would\n" +
			"compile (one arena shared by values whose lifetimes do not overlap, plus kernel scratch);\n" +
			"compiling it evaluates the model's constant subgraphs, within --max-memory.\n\n" +
			"--plan prints that plan instead, step by step: each node after the inference passes, the\n" +
			"kernel and algorithm that runs it (or why the reference kernel does), its fused BN-ReLU\n" +
			"prologue, the CPU instruction-set level, and where its output lives in the arena. Some\n" +
			"algorithms depend on the thread count: --threads as for 'dnx run'.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
			&ucli.StringFlag{Name: "dot", Usage: "write the graph as Graphviz DOT to `FILE` (with the --shape shapes if given, else the declared ones)"},
			&ucli.StringSliceFlag{Name: "shape", Usage: "input shape for the MAC count, as `NAME=1,3,224,224` (repeatable)"},
			&ucli.BoolFlag{Name: "devices", Usage: "list the devices dnx can run on (CPU, CUDA) instead of a model"},
			&ucli.BoolFlag{Name: "plan", Usage: "print the compiled execution plan, step by step (kernels, fusions, arena offsets)"},
			&ucli.IntFlag{Name: "batch", Value: 1, Usage: "`N` for every symbolic or unknown input dim (--shape overrides per input)"},
			threadsFlag(),
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
	batch := c.Int("batch")
	if batch < 1 || batch > maxInspectBatch {
		return usagef("inspect: --batch %d: want 1..%d", batch, maxInspectBatch)
	}
	threads, err := threadsOption(c)
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
	shapes, reason, err := macShapes(g, given, batch)
	if err != nil {
		return err
	}
	// The counts come from a copy at the concrete shapes; plans are compiled from the model as it
	// is, whose symbolic batch dim lets a batch run in lanes as it would in dnx run.
	symbolic := g
	if reason == "" {
		if g, err = g.Clone(ops.Default()); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
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
	if c.Bool("plan") {
		return inspectPlan(c.App.Writer, c.Bool("json"), symbolic, path, shapes, reason, threads, limit)
	}
	if reason != "" {
		rep.ActivationsUnknown = reason
	} else {
		rep.ActivationBytes, rep.ScratchBytes, rep.ActivationsUnknown = plannedMemory(symbolic, shapes, threads, limit)
	}

	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	return printInspect(c.App.Writer, g, rep)
}

// maxInspectBatch bounds --batch; the memory budget refuses far smaller batches of real models.
const maxInspectBatch = 1 << 20

// plannedMemory compiles the plan dnx run would use for g at the given input shapes (with a
// session of run's options, its threads blocking rather than polling) and returns its activation
// arena and kernel scratch in bytes, or why there is no plan: a graph of data-dependent shapes
// runs on the reference kernels, and a plan over the memory budget is refused.
func plannedMemory(g *graph.Graph, shapes map[string]tensor.Shape, threads int, maxMemory int64) (arena, scratch *int64, why string) {
	var st plan.Stats
	err := withPlan(g, shapes, threads, maxMemory, func(_ *plan.Plan, _ []int, total plan.Stats) { st = total })
	switch {
	case errors.Is(err, plan.ErrNotPlannable):
		return nil, nil, notPlanned(err)
	case err != nil:
		return nil, nil, err.Error()
	}
	return &st.ArenaBytes, &st.ScratchBytes, ""
}

// notPlanned says why a graph runs without a plan, and what that means for dnx run.
func notPlanned(err error) string {
	return fmt.Sprintf("not planned (dnx run uses the reference kernels, one buffer per value): %v", err)
}

// withPlan compiles the plan dnx run would use for g at the given input shapes (a session of
// run's options after the inference passes, its threads blocking rather than polling) and calls
// use with it while the session, whose thread pool the plan describes, is open. A batch that
// runs in lanes (exec.Session.Lanes) gives the first lane's plan, the lanes' rows, and in total
// the arena and scratch of all the lanes, each of which holds its own.
func withPlan(g *graph.Graph, shapes map[string]tensor.Shape, threads int, maxMemory int64, use func(p *plan.Plan, lanes []int, total plan.Stats)) error {
	sess, err := exec.New(g, exec.Options{Threads: threads, NoSpin: true, MaxMemory: maxMemory})
	if err != nil {
		return err
	}
	defer sess.Close()
	ordered := make([]tensor.Shape, len(g.Inputs))
	for i, v := range g.Inputs {
		ordered[i] = shapes[v.Name]
	}
	p, lanes, mem, err := sess.PlanFor(ordered)
	if err != nil {
		return err
	}
	use(p, lanes, mem)
	return nil
}

// planReport is what `dnx inspect --plan --json` prints. Its keys are stable.
type planReport struct {
	Model       string                  `json:"model"`
	InputShapes map[string]tensor.Shape `json:"input_shapes"`
	Threads     int                     `json:"threads"`
	// ISA is the instruction-set level the CPU kernels run at, with why (isa.Selection).
	ISA   string           `json:"isa"`
	Steps []planStepReport `json:"steps"` // null when there is no plan
	// ArenaBytes is the activation arena every step's outputs live in, ScratchBytes the kernels'
	// scratch; both null when there is no plan, and NotPlanned says why.
	ArenaBytes   *int64 `json:"arena_bytes"`
	ScratchBytes *int64 `json:"scratch_bytes"`
	NotPlanned   string `json:"not_planned,omitempty"`
	// Lanes are the rows of each lane when the batch runs in lanes, one per thread: Steps are
	// then the first lane's plan, and the arena and scratch those of all the lanes.
	Lanes []int `json:"lanes,omitempty"`
}

// planStepReport is one step of a planReport (plan.StepInfo).
type planStepReport struct {
	Node     string             `json:"node"`
	Op       string             `json:"op"`
	Kernel   string             `json:"kernel"`
	Fast     bool               `json:"fast"`
	Why      string             `json:"why,omitempty"`
	Prologue string             `json:"prologue,omitempty"`
	Epilogue string             `json:"epilogue,omitempty"`
	ISA      string             `json:"isa,omitempty"`
	Outputs  []planOutputReport `json:"outputs"`
}

// planOutputReport is one output of a step: where it lives in the arena (arena_offset null for
// values outside it: constants and non-float32 values).
type planOutputReport struct {
	Name        string       `json:"name"`
	Shape       tensor.Shape `json:"shape"`
	ArenaOffset *int64       `json:"arena_offset"`
	Bytes       int64        `json:"bytes"`
	BatchStride int64        `json:"batch_stride,omitempty"`
}

// inspectPlan prints the plan dnx run would compile for g at shapes: every step, then the arena.
// A graph that cannot be planned is reported with the reason (reason, from the shapes, or
// plan.ErrNotPlannable's message), not as an error: dnx run still runs it, on the reference path.
func inspectPlan(w io.Writer, asJSON bool, g *graph.Graph, path string, shapes map[string]tensor.Shape, reason string, threads int, maxMemory int64) error {
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	rep := planReport{Model: path, InputShapes: shapes, Threads: threads, ISA: isa.Selected().Level.Describe(), NotPlanned: reason}
	if reason == "" {
		err := withPlan(g, shapes, threads, maxMemory, func(p *plan.Plan, lanes []int, st plan.Stats) {
			rep.ArenaBytes, rep.ScratchBytes, rep.Lanes = &st.ArenaBytes, &st.ScratchBytes, lanes
			rep.Steps = []planStepReport{}
			for _, s := range p.Steps() {
				sr := planStepReport{Node: s.Node, Op: s.Op, Kernel: s.Kernel, Fast: s.Fast(), Why: s.Why,
					Prologue: s.Prologue, Epilogue: s.Epilogue, ISA: s.ISA, Outputs: []planOutputReport{}}
				for _, o := range s.Outputs {
					or := planOutputReport{Name: o.Name, Shape: o.Shape, Bytes: o.Bytes, BatchStride: o.BatchStride}
					if o.InArena {
						off := o.Offset
						or.ArenaOffset = &off
					}
					sr.Outputs = append(sr.Outputs, or)
				}
				rep.Steps = append(rep.Steps, sr)
			}
		})
		switch {
		case errors.Is(err, plan.ErrNotPlannable):
			rep.NotPlanned = notPlanned(err)
		case err != nil:
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if asJSON {
		return writeJSON(w, rep)
	}
	return printPlan(w, g, rep)
}

// printPlan writes a planReport as text: a header, one table row per step output, the arena.
func printPlan(w io.Writer, g *graph.Graph, rep planReport) error {
	at := ""
	if shapes := shapesText(g, rep.InputShapes); shapes != "" {
		at = " at " + shapes
	}
	if rep.Steps == nil {
		_, err := fmt.Fprintf(w, "Plan%s: none: %s\n", at, rep.NotPlanned)
		return err
	}
	work := 0
	for _, s := range rep.Steps {
		if s.Kernel != plan.KernelFolded && s.Kernel != plan.KernelAlias && s.Kernel != plan.KernelConcatInPlace {
			work++
		}
	}
	fmt.Fprintf(w, "Plan%s: %s, %d with work at run time; %s, CPU kernels %s\n", at,
		plural.Count(len(rep.Steps), "step"), work, plural.Count(rep.Threads, "thread"), rep.ISA)
	if len(rep.Lanes) > 0 {
		fmt.Fprintf(w, "The batch runs in %d lanes of %s rows, one per thread, each with a plan and arena of its own: the plan of the first lane.\n",
			len(rep.Lanes), laneRows(rep.Lanes))
	}
	fmt.Fprintln(w)
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tnode\top\tkernel\tfused\tisa\toutput shape\toffset\tbytes\tnote")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for i, s := range rep.Steps {
		fused := s.Prologue
		if s.Epilogue != "" {
			fused = strings.TrimPrefix(fused+", "+s.Epilogue+" epilogue", ", ")
		}
		note := s.Why
		if s.Kernel == plan.KernelReference && note != "" {
			note = "not fast: " + note
		}
		outs := s.Outputs
		if len(outs) == 0 {
			outs = []planOutputReport{{}}
		}
		for k, o := range outs {
			lead := fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", i, dash(s.Node), s.Op, s.Kernel, dash(fused), dash(s.ISA))
			if k > 0 { // a further output of the same step
				lead, note = "\t\t\t\t\t", ""
			}
			off, size := "-", "-"
			if o.ArenaOffset != nil {
				off, size = groupDigits(*o.ArenaOffset), groupDigits(o.Bytes)
				if o.BatchStride != 0 {
					size += " (stride " + groupDigits(o.BatchStride) + ")"
				}
			}
			shape := "-"
			if o.Shape != nil {
				shape = shapeText(o.Shape)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", lead, shape, off, size, dash(note))
		}
	}
	tw.Flush()
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}
	lanes := ""
	if len(rep.Lanes) > 0 {
		lanes = fmt.Sprintf(" (all %d lanes)", len(rep.Lanes))
	}
	_, err := fmt.Fprintf(w, "\nArena: %s (%s bytes), kernel scratch %s%s\n", byteCount(*rep.ArenaBytes),
		groupDigits(*rep.ArenaBytes), byteCount(*rep.ScratchBytes), lanes)
	return err
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
// with symbolic and unknown dims set to batch. reason is non-empty when an input's rank is
// unknown and no shape was given for it.
func macShapes(g *graph.Graph, given map[string]tensor.Shape, batch int) (map[string]tensor.Shape, string, error) {
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
			s[i] = batch
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

	fmt.Fprintf(w, "\nOperators (%s)\n", plural.Count(rep.Nodes, "node"))
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

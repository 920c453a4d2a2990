package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dnx-ml/dnx/internal/plural"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
	ucli "github.com/urfave/cli/v2"
)

func benchCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "bench",
		Usage:     "time a model's inference: latency percentiles, throughput, peak memory",
		ArgsUsage: "MODEL",
		Description: "Runs the model --warmup times untimed, then --iters times one after another, and reports\n" +
			"the latency distribution. Inputs come from --input files (the batch is taken from or tiled to\n" +
			"--batch rows) or are random N(0,1) values. --json prints one line with the keys\n" +
			"../shared/tools/ort/ort_bench.js prints (median_ms, min_ms, max_ms, ...), so compare.sh can put\n" +
			"dnx next to ONNX Runtime.",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "batch", Usage: "batch size (the model's symbolic batch dim); default: the input file's, else 1"},
			threadsFlag(),
			&ucli.BoolFlag{Name: "no-spin", Usage: "idle threads block at once instead of polling between parallel loops (leaves CPU time to other processes; like ORT's --no-spin)"},
			&ucli.IntFlag{Name: "iters", Value: 20, Usage: "timed runs"},
			&ucli.IntFlag{Name: "warmup", Value: 3, Usage: "untimed runs first"},
			&ucli.StringSliceFlag{Name: "input", Usage: "input `FILE` (.pb or .npy), one per model input in order"},
			&ucli.StringFlag{Name: "expect", Usage: "`FILE` (.pb/.npy) with the expected first output: report max_abs_diff"},
			&ucli.Int64Flag{Name: "seed", Value: 0, Usage: "seed of the random inputs"},
			&ucli.BoolFlag{Name: "reference", Usage: "run the reference kernels (no planning, no fast kernels)"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON line"},
			&ucli.StringFlag{Name: "cpuprofile", Usage: "write a pprof CPU profile of the timed runs to `FILE` (replaced once the runs succeed)"},
			&ucli.IntFlag{Name: "steps", Usage: "time every step of the plan over the timed runs and report the `N` slowest (with GFLOP/s for convolutions), and the time per kernel"},
			maxMemoryFlag(),
			deviceFlag(),
		},
		Action: benchAction,
	}
}

type benchReport struct {
	Engine        string  `json:"engine"`
	Version       string  `json:"version"`
	Threads       int     `json:"threads"`
	Batch         int     `json:"batch"`
	MedianMS      number  `json:"median_ms"`
	MinMS         number  `json:"min_ms"`
	MaxMS         number  `json:"max_ms"`
	Iters         int     `json:"iters"`
	MaxAbsDiff    *number `json:"max_abs_diff,omitempty"`
	P90MS         number  `json:"p90_ms"`
	MeanMS        number  `json:"mean_ms"`
	Warmup        int     `json:"warmup"`
	Spin          bool    `json:"spin"`
	Throughput    number  `json:"throughput_per_s"`
	PeakRSSBytes  int64   `json:"peak_rss_bytes"`
	ArenaBytes    int64   `json:"arena_bytes,omitempty"`
	LoadMS        number  `json:"load_ms"`
	FirstRunMS    number  `json:"first_run_ms"`
	Model         string  `json:"model"`
	Shape         []int   `json:"shape"`
	Planned       bool    `json:"planned"`
	PlanFastSteps int     `json:"fast_steps,omitempty"`
	PlanSteps     int     `json:"steps,omitempty"`
	// Lanes are the rows of each lane a batch runs in (exec.Session.Lanes); absent when the
	// batch runs whole. Steps, arena and step times are then the lanes' plans'.
	Lanes []int `json:"lanes,omitempty"`
	// With --steps: the slowest steps and the time per kernel, per run.
	SlowSteps  []stepTime        `json:"slow_steps,omitempty"`
	KernelTime map[string]number `json:"kernel_ms,omitempty"`
}

// stepTime is one step's share of a run (--steps).
type stepTime struct {
	Node    string `json:"node"`
	Op      string `json:"op"`
	Kernel  string `json:"kernel"`
	Fused   string `json:"fused,omitempty"`
	Shape   []int  `json:"shape,omitempty"`
	MS      number `json:"ms"`
	Percent number `json:"percent"`
	// GFLOPS is 2*MACs over the step's time, for convolutions and Gemm (plan.StepInfo.MACs).
	GFLOPS number `json:"gflops,omitempty"`
}

func benchAction(c *ucli.Context) error {
	if err := checkDevice(c); err != nil {
		return err
	}
	if err := exactArgs(c, "MODEL"); err != nil {
		return err
	}
	path := c.Args().First()
	iters, warmup, batch := c.Int("iters"), c.Int("warmup"), c.Int("batch")
	if iters < 1 || warmup < 0 || batch < 0 {
		return usagef("bench: --iters must be >= 1, --warmup and --batch >= 0")
	}
	threads, err := threadsOption(c)
	if err != nil {
		return err
	}
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	limit, err := memoryLimit(c)
	if err != nil {
		return err
	}
	files, expect, profile := c.StringSlice("input"), c.String("expect"), c.String("cpuprofile")
	inputs := []fileArg{{path: path}, {flag: "--expect", path: expect}}
	for _, f := range files {
		inputs = append(inputs, fileArg{flag: "--input", path: f})
	}
	outputs := []fileArg{{flag: "--cpuprofile", path: profile}}
	if err := checkFiles("bench", inputs, outputs); err != nil {
		return err
	}
	if err := checkReadBudget("bench", membudget.New(limit), inputs); err != nil {
		return err
	}
	start := time.Now()
	model, err := loadModel(path)
	if err != nil {
		return err
	}
	g := model.g
	if err := checkConflicts("bench", model.external, outputs); err != nil {
		return err
	}
	sess, err := exec.New(g, exec.Options{Threads: threads, Reference: c.Bool("reference"), NoSpin: c.Bool("no-spin"), MaxMemory: limit})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer sess.Close()
	load := time.Since(start)

	in, err := benchInputs(g, files, batch, c.Int64("seed"), membudget.New(limit), c.App.ErrWriter)
	if err != nil {
		return err
	}
	if len(in) == 0 {
		return fmt.Errorf("bench: %s has no inputs", path)
	}
	rep := benchReport{Engine: "dnx", Version: Version, Threads: threads, Iters: iters, Warmup: warmup,
		Spin: !c.Bool("no-spin") && !c.Bool("reference"), Model: path, Shape: in[0].Shape, LoadMS: ms(load)}
	if len(in[0].Shape) > 0 {
		rep.Batch = in[0].Shape[0]
	}
	shapes := make([]tensor.Shape, len(in))
	for i, t := range in {
		shapes[i] = t.Shape
	}
	if !c.Bool("reference") {
		if p, lanes, mem, err := sess.PlanFor(shapes); err == nil {
			st := p.Stats()
			rep.Planned, rep.ArenaBytes, rep.PlanSteps, rep.PlanFastSteps = true, mem.ArenaBytes+mem.ScratchBytes, st.Steps, st.FastSteps
			rep.Lanes = lanes
		}
	}

	progress := newProgress(c.App.ErrWriter, warmup+iters, !c.Bool("json"))
	t0 := time.Now()
	out, err := sess.Run(c.Context, in)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep.FirstRunMS = ms(time.Since(t0))
	progress.step()
	if expect != "" {
		arg := fileArg{flag: "--expect", path: expect}
		want, err := readTensorFile(expect)
		if err != nil {
			return err
		}
		if out[0].DType == tensor.Float32 {
			if want, err = narrowFloat64("bench", arg, want, c.App.ErrWriter); err != nil {
				return err
			}
		}
		if want.Len() < out[0].Len() || want.DType != out[0].DType {
			return fmt.Errorf("bench: %s: %s%s does not cover the output %s%s", arg, want.DType, shapeText(want.Shape), out[0].DType, shapeText(out[0].Shape))
		}
		got := out[0]
		if want.Len() > got.Len() { // batch taken from a larger stored output: compare its first rows
			want = sliceRows(want, got.Shape)
		}
		d := number(tensor.MaxAbsDiff(got, want))
		rep.MaxAbsDiff = &d
	}
	for i := 1; i < warmup; i++ {
		if _, err := sess.Run(c.Context, in); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		progress.step()
	}
	// The profile goes to memory and replaces the file only once every timed run succeeded: a
	// failed or interrupted run leaves an earlier profile as it was.
	var prof bytes.Buffer
	if profile != "" {
		if err := pprof.StartCPUProfile(&prof); err != nil {
			return fmt.Errorf("bench: --cpuprofile %s: %w", profile, err)
		}
		defer pprof.StopCPUProfile() // a no-op once stopped below
	}
	nSteps := c.Int("steps")
	if nSteps < 0 {
		return usagef("bench: --steps must be >= 0")
	}
	runCtx := c.Context
	var stepTimes plan.StepTimes
	if nSteps > 0 {
		if c.Bool("reference") {
			return usagef("bench: --steps times the steps of a plan; --reference runs none")
		}
		runCtx = plan.WithStepTimes(runCtx, &stepTimes)
	}
	times := make([]float64, iters)
	for i := range times {
		t := time.Now()
		if _, err := sess.Run(runCtx, in); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		times[i] = float64(time.Since(t).Microseconds()) / 1000
		progress.step()
	}
	if profile != "" {
		pprof.StopCPUProfile()
		if err := onnx.WriteFileAtomic(profile, prof.Bytes(), 0o644); err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
	}
	progress.done()
	sort.Float64s(times)
	sum := 0.0
	for _, t := range times {
		sum += t
	}
	rep.MedianMS = roundMS(percentile(times, 50))
	rep.P90MS = roundMS(percentile(times, 90))
	rep.MinMS, rep.MaxMS = roundMS(times[0]), roundMS(times[len(times)-1])
	rep.MeanMS = roundMS(sum / float64(len(times)))
	if rep.MedianMS > 0 {
		rep.Throughput = roundMS(float64(rep.Batch) * 1000 / float64(rep.MedianMS))
	}
	rep.PeakRSSBytes = peakRSS()
	if nSteps > 0 {
		p, _, _, err := sess.PlanFor(shapes)
		if err != nil || stepTimes.Runs == 0 {
			return fmt.Errorf("bench: --steps: %s runs on the reference path, which has no steps to time", path)
		}
		rep.SlowSteps, rep.KernelTime = slowSteps(p.Steps(), &stepTimes, nSteps, len(rep.Lanes))
	}

	w := c.App.Writer
	if c.Bool("json") {
		b, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("bench: encode JSON: %w", err)
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	fmt.Fprintf(w, "Model       %s, input %s, %s (%s)\n", path, shapeText(rep.Shape), plural.Count(threads, "thread"), planWord(rep))
	fmt.Fprintf(w, "Latency     median %.3f ms, p90 %.3f ms, min %.3f ms, max %.3f ms (%s after %s)\n",
		float64(rep.MedianMS), float64(rep.P90MS), float64(rep.MinMS), float64(rep.MaxMS), plural.Count(iters, "run"), plural.Count(warmup, "warm-up run"))
	fmt.Fprintf(w, "Throughput  %.1f images/s\n", float64(rep.Throughput))
	fmt.Fprintf(w, "Memory      peak RSS %.1f MiB", float64(rep.PeakRSSBytes)/(1<<20))
	if rep.ArenaBytes > 0 {
		fmt.Fprintf(w, ", activations %.1f MiB", float64(rep.ArenaBytes)/(1<<20))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Load        %.1f ms, first run %.1f ms\n", float64(rep.LoadMS), float64(rep.FirstRunMS))
	if rep.MaxAbsDiff != nil {
		fmt.Fprintf(w, "Check       max |output - expected| = %.3g\n", float64(*rep.MaxAbsDiff))
	}
	if nSteps > 0 {
		printSteps(w, rep)
	}
	return nil
}

// slowSteps returns the n slowest steps of a plan, by their mean time per run, and the time per
// run of each kernel (steps with no work at run time left out).
//
// With lanes (lanes > 1) the times are thread times summed over the lanes, each of which ran
// every step on its own rows, and GFLOP/s is per thread: the lanes' work over their summed time.
func slowSteps(info []plan.StepInfo, t *plan.StepTimes, n, lanes int) ([]stepTime, map[string]number) {
	var total time.Duration
	for _, d := range t.Total {
		total += d
	}
	perRun := func(d time.Duration) number { return roundMS(float64(d.Microseconds()) / 1000 / float64(t.Runs)) }
	pct := func(d time.Duration) number {
		if total == 0 {
			return 0
		}
		return number(math.Round(1000*float64(d)/float64(total)) / 10)
	}
	kernels := map[string]time.Duration{}
	idx := make([]int, 0, len(info))
	for i, s := range info {
		switch s.Kernel {
		case plan.KernelFolded, plan.KernelAlias, plan.KernelConcatInPlace:
			continue
		}
		kernels[s.Kernel] += t.Total[i]
		idx = append(idx, i)
	}
	sort.SliceStable(idx, func(a, b int) bool { return t.Total[idx[a]] > t.Total[idx[b]] })
	var out []stepTime
	for _, i := range idx[:min(n, len(idx))] {
		s := info[i]
		st := stepTime{Node: s.Node, Op: s.Op, Kernel: s.Kernel, MS: perRun(t.Total[i]), Percent: pct(t.Total[i])}
		if d := t.Total[i].Seconds() / float64(t.Runs); s.MACs > 0 && d > 0 {
			st.GFLOPS = roundSig(2*float64(s.MACs)*float64(max(lanes, 1))/d/1e9, 3)
		}
		switch {
		case s.Prologue != "" && s.Epilogue != "":
			st.Fused = s.Prologue + " prologue, " + s.Epilogue + " epilogue"
		case s.Prologue != "":
			st.Fused = s.Prologue + " prologue"
		case s.Epilogue != "":
			st.Fused = s.Epilogue + " epilogue"
		}
		if len(s.Outputs) > 0 {
			st.Shape = s.Outputs[0].Shape
		}
		out = append(out, st)
	}
	km := map[string]number{}
	for k, d := range kernels {
		km[k] = perRun(d)
	}
	return out, km
}

// printSteps prints --steps' tables: time per kernel, then the slowest steps.
func printSteps(w io.Writer, rep benchReport) {
	type kt struct {
		kernel string
		ms     number
	}
	var ks []kt
	var sum number
	for k, v := range rep.KernelTime {
		ks = append(ks, kt{k, v})
		sum += v
	}
	sort.Slice(ks, func(a, b int) bool {
		return ks[a].ms > ks[b].ms || (ks[a].ms == ks[b].ms && ks[a].kernel < ks[b].kernel)
	})
	if len(rep.Lanes) > 0 {
		fmt.Fprintf(w, "\nTime per kernel (ms per run, summed over its steps and the %d lanes; %.3f ms of thread time in steps)\n", len(rep.Lanes), float64(sum))
	} else {
		fmt.Fprintf(w, "\nTime per kernel (ms per run, summed over its steps; %.3f ms in steps)\n", float64(sum))
	}
	for _, k := range ks {
		share := 0.0
		if sum > 0 {
			share = 100 * float64(k.ms) / float64(sum)
		}
		fmt.Fprintf(w, "  %-22s %9.3f  %5.1f%%\n", k.kernel, float64(k.ms), share)
	}
	if len(rep.Lanes) > 0 {
		fmt.Fprintf(w, "\nSlowest steps (ms per run summed over the lanes, GFLOP/s per thread)\n")
	} else {
		fmt.Fprintf(w, "\nSlowest steps (ms per run)\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ms\t%\tGFLOP/s\tnode\top\tkernel\tfused\toutput")
	for _, s := range rep.SlowSteps {
		fused := s.Fused
		if fused == "" {
			fused = "-"
		}
		gf := "-"
		if s.GFLOPS > 0 {
			gf = fmt.Sprintf("%.3g", float64(s.GFLOPS))
		}
		fmt.Fprintf(tw, "  %.3f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n", float64(s.MS), float64(s.Percent), gf, s.Node, s.Op, s.Kernel, fused, shapeText(s.Shape))
	}
	tw.Flush()
}

// roundMS rounds to the microsecond for printing.
func roundMS(v float64) number { return number(math.Round(v*1000) / 1000) }

// roundSig rounds v (> 0) to digits significant digits: a slow step (a race-detector build, a
// loaded machine) keeps a rate that one decimal would round to 0.
func roundSig(v float64, digits int) number {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return number(v)
	}
	scale := math.Pow(10, float64(digits)-math.Ceil(math.Log10(v)))
	return number(math.Round(v*scale) / scale)
}

func planWord(r benchReport) string {
	if !r.Planned {
		return "reference kernels"
	}
	w := fmt.Sprintf("planned, %d of %s on fast kernels", r.PlanFastSteps, plural.Count(r.PlanSteps, "step"))
	if len(r.Lanes) > 0 {
		w += fmt.Sprintf("; the batch in %d lanes of %s rows, one per thread", len(r.Lanes), laneRows(r.Lanes))
	}
	return w
}

// laneRows writes the rows of lanes: "4" when all are equal, else "4, 4, 3".
func laneRows(lanes []int) string {
	if slices.Min(lanes) == slices.Max(lanes) {
		return fmt.Sprint(lanes[0])
	}
	return strings.Trim(fmt.Sprint(lanes), "[]")
}

// percentile returns the p-th percentile of sorted values (nearest rank, interpolated).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(pos)
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(lo)
	return sorted[lo]*(1-f) + sorted[lo+1]*f
}

// benchInputs loads the --input files (batch rows taken or tiled to batch; float64 converted for
// float32 inputs, with a note on stderr) or makes random ones. A tiled or random input, whose size
// --batch decides, must fit budget.
func benchInputs(g *graph.Graph, files []string, batch int, seed int64, budget membudget.Budget, stderr io.Writer) ([]*tensor.Tensor, error) {
	if len(files) > 0 && len(files) != len(g.Inputs) {
		return nil, usagef("bench: the model takes %s (%s), got %s", plural.Count(len(g.Inputs), "input"), inputNames(g), plural.Count(len(files), "--input file"))
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6a09e667))
	inputs := make([]*tensor.Tensor, len(g.Inputs))
	for i, v := range g.Inputs {
		if len(files) > 0 {
			arg := fileArg{flag: "--input", path: files[i]}
			t, err := readTensorFile(files[i])
			if err != nil {
				return nil, err
			}
			if v.Type.DType == tensor.Float32 {
				if t, err = narrowFloat64("bench", arg, t, stderr); err != nil {
					return nil, err
				}
			}
			if batch > 0 && len(t.Shape) > 0 && t.Shape[0] != batch {
				if t.Shape[0] == 0 {
					return nil, fmt.Errorf("bench: %s is empty (%s%s): no rows to tile to --batch %d", arg, t.DType, shapeText(t.Shape), batch)
				}
				tiled := append(tensor.Shape{batch}, t.Shape[1:]...)
				if err := budget.Check(fmt.Sprintf("%s tiled to --batch %d:", arg, batch), t.DType, tiled); err != nil {
					return nil, fmt.Errorf("bench: %w", err)
				}
				t = tileRows(t, batch)
			}
			inputs[i] = t
			continue
		}
		if v.Type.DType != tensor.Float32 || v.Type.Unranked {
			return nil, usagef("bench: input %q is %s: give it with --input", v.Name, v.Type)
		}
		shape := make(tensor.Shape, len(v.Type.Shape))
		for k, d := range v.Type.Shape {
			switch {
			case d.IsKnown():
				shape[k] = int(d.Value)
			case k == 0 && batch > 0:
				shape[k] = batch
			default:
				shape[k] = 1
			}
		}
		if _, err := tensor.CheckShape(int64s(shape)); err != nil {
			return nil, fmt.Errorf("bench: input %q: %w", v.Name, err)
		}
		if err := budget.Check(fmt.Sprintf("random input %q", v.Name), tensor.Float32, shape); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		data := make([]float32, shape.Size())
		for j := range data {
			data[j] = float32(rng.NormFloat64())
		}
		inputs[i] = tensor.FromSlice(shape, data)
	}
	return inputs, nil
}

func int64s(s tensor.Shape) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// tileRows returns a tensor of batch rows: the first rows of t, repeated as often as needed. t
// has at least one row; any element type is copied as it is.
func tileRows(t *tensor.Tensor, batch int) *tensor.Tensor {
	out := tensor.New(t.DType, append(tensor.Shape{batch}, t.Shape[1:]...))
	rows := t.Shape[0]
	per := t.Len() / rows
	src, dst := reflect.ValueOf(t.Data), reflect.ValueOf(out.Data)
	for r := range batch {
		k := r % rows
		reflect.Copy(dst.Slice(r*per, (r+1)*per), src.Slice(k*per, (k+1)*per))
	}
	return out
}

// sliceRows returns the leading elements of t that fill shape (its first rows, for a shape
// that differs in the batch dim only).
func sliceRows(t *tensor.Tensor, shape tensor.Shape) *tensor.Tensor {
	out := tensor.New(t.DType, shape)
	reflect.Copy(reflect.ValueOf(out.Data), reflect.ValueOf(t.Data))
	return out
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes, or 0 where /proc is
// not available.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// progress prints "bench: 12/23 runs" on stderr for people watching a long run.
type progress struct {
	w       io.Writer
	n, runs int
	on      bool
	printed bool
	last    time.Time
}

func newProgress(w io.Writer, n int, on bool) *progress {
	return &progress{w: w, n: n, on: on, last: time.Now()}
}

func (p *progress) step() {
	p.runs++
	if p.on && time.Since(p.last) > 500*time.Millisecond {
		fmt.Fprintf(p.w, "\rbench: %d/%d runs", p.runs, p.n)
		p.last, p.printed = time.Now(), true
	}
}

// done ends the progress line.
func (p *progress) done() {
	if p.printed {
		fmt.Fprintf(p.w, "\rbench: %d/%d runs\n", p.runs, p.n)
	}
}

package cli

import (
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"io"
	"os"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// archFlags are the build flags that describe an architecture; --preset fixes all of them.
var archFlags = []string{"variant", "depth", "growth", "compression", "blocks", "stem", "bn-size", "init-features"}

func buildCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "build",
		Usage: "build a DenseNet (a preset or any plain/B/C/BC configuration) and write it as ONNX",
		Description: "The model comes from a preset (--preset, see 'dnx models') or from the paper's description:\n" +
			"--variant plain|B|C|BC with --growth K and --depth L (3n+4 for plain and C, 6n+4 for B and BC:\n" +
			"three blocks of n layers) or explicit --blocks 6,12,24,16 (which override the depth's blocks).\n" +
			"Weights are seeded random values with torchvision's initialization (--seed). The default form\n" +
			"keeps every BatchNormalization with torchvision's state_dict names, ready for fine-tuning;\n" +
			"--inference folds the BNs that follow a conv into it, as PyTorch's eval export does.\n" +
			"--drop-rate P adds torchvision's dropout after each dense layer to the training form (a Dropout\n" +
			"node that 'dnx finetune' trains with and inference passes through); the inference form has none.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "preset", Usage: "named configuration (`NAME`: densenet121, densenet_bc100_k12, tiny, ...; see 'dnx models')"},
			&ucli.StringFlag{Name: "variant", Usage: "`plain`, B (bottleneck), C (compression) or BC"},
			&ucli.IntFlag{Name: "depth", Usage: "depth `L` counting convs and the classifier: 3n+4 (plain, C) or 6n+4 (B, BC)"},
			&ucli.IntFlag{Name: "growth", Aliases: []string{"k"}, Usage: "growth rate `K`: channels each dense layer adds"},
			&ucli.Float64Flag{Name: "compression", Usage: "transition compression `θ` in (0,1) for C and BC (default 0.5)"},
			&ucli.StringFlag{Name: "blocks", Usage: "dense layers per block, as `N,N,...` (e.g. 6,12,24,16); overrides --depth"},
			&ucli.StringFlag{Name: "stem", Value: "cifar", Usage: "`imagenet` (Conv7x7/2, BN, ReLU, MaxPool; 224x224, 1000 classes) or cifar (Conv3x3; 32x32, 10 classes)"},
			&ucli.IntFlag{Name: "bn-size", Usage: "bottleneck width factor `N` of B and BC (default 4)"},
			&ucli.IntFlag{Name: "init-features", Usage: "stem output channels `N` (default 2k for B and BC, 16 for plain and C)"},
			&ucli.IntFlag{Name: "classes", Usage: "classifier outputs `N`"},
			&ucli.IntFlag{Name: "input-size", Usage: "input height and width `S`"},
			&ucli.Float64Flag{Name: "drop-rate", Usage: "dropout probability `P` in [0,1) after each dense layer (torchvision's drop_rate; training form only)"},
			&ucli.Int64Flag{Name: "seed", Usage: "seed of the random weights"},
			&ucli.IntFlag{Name: "opset", Value: builders.DefaultOpset, Usage: fmt.Sprintf("ai.onnx opset to declare (%d to %d)", builders.MinOpset, builders.MaxOpset)},
			&ucli.BoolFlag{Name: "inference", Usage: "fold each BN that follows a conv into the conv (smaller and faster; not fine-tunable)"},
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE` (.onnx), written atomically"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
			maxMemoryFlag(),
		},
		Action: buildAction,
	}
}

// configJSON is a builders.Config in `dnx build --json` and `dnx models --json`.
type configJSON struct {
	Growth       int     `json:"growth"`
	Blocks       []int   `json:"blocks"`
	InitFeatures int     `json:"init_features"`
	BNSize       int     `json:"bn_size"`
	Compression  float64 `json:"compression"`
	Stem         string  `json:"stem"`
	DropRate     float64 `json:"drop_rate"`
	Classes      int     `json:"classes"`
	InputSize    int     `json:"input_size"`
}

func newConfigJSON(c builders.Config) configJSON {
	return configJSON{Growth: c.Growth, Blocks: c.Blocks, InitFeatures: c.InitFeatures, BNSize: c.BNSize,
		Compression: c.Compression, Stem: c.Stem.String(), DropRate: c.DropRate, Classes: c.Classes, InputSize: c.InputSize}
}

// buildReport is what `dnx build --json` prints. Parameters are the trainable values as PyTorch
// counts them (no BN running statistics); MACs are per image at the model's input size.
type buildReport struct {
	Name         string     `json:"name"`
	Preset       string     `json:"preset,omitempty"`
	Variant      string     `json:"variant"`
	Depth        int        `json:"depth"`
	Config       configJSON `json:"config"`
	Parameters   int64      `json:"parameters"`
	MACs         int64      `json:"macs"`
	Form         string     `json:"form"`
	BNNodes      int        `json:"bn_nodes"`
	BNFolded     int        `json:"bn_folded"`
	DropoutNodes int        `json:"dropout_nodes"`
	Opset        int        `json:"opset"`
	IRVersion    int64      `json:"ir_version"`
	Seed         int64      `json:"seed"`
	Nodes        int        `json:"nodes"`
	Initializers int        `json:"initializers"`
	File         string     `json:"file"`
	Bytes        int64      `json:"bytes"`
}

func buildAction(c *ucli.Context) error {
	if c.Args().Present() {
		return usagef("build: unexpected argument %q (the output file goes after -o)", c.Args().First())
	}
	out := c.String("output")
	if out == "" {
		return usagef("build: missing the output file (-o FILE.onnx)")
	}
	opset := c.Int("opset")
	if opset < builders.MinOpset || opset > builders.MaxOpset {
		return usagef("build: --opset %d: dnx builds opsets %d to %d", opset, builders.MinOpset, builders.MaxOpset)
	}
	cfg, name, preset, err := buildConfig(c)
	if err != nil {
		return err
	}
	budget, err := memoryBudget(c)
	if err != nil {
		return err
	}
	if err := checkFiles("build", nil, []fileArg{{flag: "-o", path: out}}); err != nil {
		return err
	}
	if err := checkBuildBudget("build", budget, cfg); err != nil {
		return err
	}
	seed := c.Int64("seed")
	m, err := builders.Build(cfg, builders.BuildOptions{Seed: seed, Opset: opset, Inference: c.Bool("inference")})
	if err != nil {
		return fmt.Errorf("build: %s: %w", name, err)
	}
	if err := onnx.WriteModelFile(out, m); err != nil {
		return err
	}
	rep := buildReport{
		Name: name, Preset: preset, Variant: cfg.Variant(), Depth: depth(cfg), Config: newConfigJSON(cfg),
		Parameters: builders.Params(cfg), MACs: builders.MACs(cfg), Form: "training", Opset: opset,
		IRVersion: m.GetIrVersion(), Seed: seed, Nodes: len(m.GetGraph().GetNode()),
		Initializers: len(m.GetGraph().GetInitializer()), File: out,
	}
	if c.Bool("inference") {
		rep.Form = "inference"
	}
	rep.BNNodes = countOps(m, "BatchNormalization")
	rep.DropoutNodes = countOps(m, "Dropout")
	rep.BNFolded = bnModules(cfg) - rep.BNNodes
	if st, err := os.Stat(out); err == nil {
		rep.Bytes = st.Size()
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	return printBuild(c.App.Writer, rep)
}

// buildConfig turns the flags into a Config, a model name and the preset name ("" for a
// configuration given by --variant). Every problem is a one-line usage error.
func buildConfig(c *ucli.Context) (cfg builders.Config, name, preset string, err error) {
	for _, f := range []string{"classes", "input-size"} {
		if c.IsSet(f) && c.Int(f) <= 0 {
			return cfg, "", "", usagef("build: --%s %d: want a positive number", f, c.Int(f))
		}
	}
	switch {
	case c.IsSet("preset") && c.IsSet("variant"):
		return cfg, "", "", usagef("build: --preset and --variant are exclusive")
	case c.IsSet("preset"):
		for _, f := range archFlags {
			if c.IsSet(f) {
				return cfg, "", "", usagef("build: --preset %s fixes the architecture; --%s applies to --variant", c.String("preset"), f)
			}
		}
		p, err := models.Lookup(c.String("preset"))
		if err != nil {
			return cfg, "", "", usagef("build: --preset: %v (see 'dnx models')", err)
		}
		cfg, name, preset = p.Config.Clone(), p.Name, p.Name
	case c.IsSet("variant"):
		if cfg, err = variantConfig(c); err != nil {
			return cfg, "", "", err
		}
		name = customName(cfg)
	default:
		return cfg, "", "", usagef("build: say which model: --preset NAME (see 'dnx models') or --variant plain|B|C|BC with --growth and --depth or --blocks")
	}
	if c.IsSet("classes") {
		cfg.Classes = c.Int("classes")
	}
	if c.IsSet("input-size") {
		cfg.InputSize = c.Int("input-size")
	}
	// The drop rate is a training setting, not part of the architecture: it goes with --preset
	// as well as with --variant.
	if c.IsSet("drop-rate") {
		p := c.Float64("drop-rate")
		if !(p >= 0 && p < 1) {
			return cfg, "", "", usagef("build: --drop-rate %g: want a probability in [0, 1) (0: no dropout)", p)
		}
		cfg.DropRate = p
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", "", usagef("build: %s: %s", name, configProblem(err))
	}
	return cfg, name, preset, nil
}

// variantConfig builds the Config of --variant from --depth or --blocks and the other
// architecture flags, with the paper's defaults (builders.FromDepth) for what is not given.
func variantConfig(c *ucli.Context) (builders.Config, error) {
	var cfg builders.Config
	v, ok := map[string]string{"plain": "plain", "b": "B", "c": "C", "bc": "BC"}[strings.ToLower(c.String("variant"))]
	if !ok {
		return cfg, usagef("build: --variant %q: want plain, B, C or BC", c.String("variant"))
	}
	bottleneck, compressed := strings.Contains(v, "B"), strings.Contains(v, "C")
	var stem builders.Stem
	switch strings.ToLower(c.String("stem")) {
	case "cifar":
		stem = builders.StemCIFAR
	case "imagenet":
		stem = builders.StemImageNet
	default:
		return cfg, usagef("build: --stem %q: want imagenet or cifar", c.String("stem"))
	}
	if !c.IsSet("growth") {
		return cfg, usagef("build: --variant %s needs the growth rate (--growth K, e.g. 12)", v)
	}
	if k := c.Int("growth"); k <= 0 || k > builders.MaxGrowth {
		return cfg, usagef("build: --growth %d: want 1..%d", k, builders.MaxGrowth)
	}
	var blocks []int
	if c.IsSet("blocks") {
		var err error
		if blocks, err = parseBlocks(c.String("blocks")); err != nil {
			return cfg, err
		}
	} else if !c.IsSet("depth") {
		return cfg, usagef("build: --variant %s needs --depth L or --blocks N,N,...", v)
	}
	per := 3
	if bottleneck {
		per = 6
	}
	d := per + 4 // the smallest depth: FromDepth then supplies the defaults, --blocks the layers
	if c.IsSet("depth") {
		d = c.Int("depth")
		if d < per+4 || (d-4)%per != 0 {
			return cfg, usagef("build: --depth %d: %s needs depth %dn+4 with n >= 1, such as %s",
				d, variantPhrase(v, stem), per, nearDepths(d, per))
		}
	}
	theta := c.Float64("compression")
	if c.IsSet("compression") {
		uncompressed, withC := "plain", "C"
		if bottleneck {
			uncompressed, withC = "B", "BC"
		}
		switch {
		case compressed && !(theta > 0 && theta < 1):
			return cfg, usagef("build: --compression %g: %s needs θ in (0,1) (θ = 1 is no compression: --variant %s)",
				theta, variantName(v), uncompressed)
		case !compressed && theta != 1:
			return cfg, usagef("build: --compression %g: %s has no compression (use --variant %s)",
				theta, variantName(v), withC)
		}
	}
	if n := (d - 4) / per; n > builders.MaxBlockLayers {
		return cfg, usagef("build: --depth %d: %s would have %d layers per block; the limit is %d (depth up to %d)",
			d, variantPhrase(v, stem), n, builders.MaxBlockLayers, per*builders.MaxBlockLayers+4)
	}
	cfg, err := builders.FromDepth(v, d, c.Int("growth"), theta, stem)
	if err != nil {
		return cfg, usagef("build: %s", configProblem(err))
	}
	if blocks != nil {
		cfg.Blocks = blocks
	}
	if c.IsSet("bn-size") {
		n := c.Int("bn-size")
		switch {
		case !bottleneck:
			return cfg, usagef("build: --bn-size applies to the bottleneck variants B and BC, not to a %s", variantName(v))
		case n <= 0 || n > builders.MaxBNSize:
			return cfg, usagef("build: --bn-size %d: want 1..%d", n, builders.MaxBNSize)
		}
		cfg.BNSize = n
	}
	if c.IsSet("init-features") {
		n := c.Int("init-features")
		if n <= 0 || n > builders.MaxInitFeatures {
			return cfg, usagef("build: --init-features %d: want 1..%d", n, builders.MaxInitFeatures)
		}
		cfg.InitFeatures = n
	}
	return cfg, nil
}

// configProblem returns what is wrong in a builders.ErrConfig error, without the wrapping that
// names Go functions or the sentinel ("FromDepth(...): invalid DenseNet config: ..."): the
// command line's user knows the configuration by its flags.
func configProblem(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, builders.ErrConfig.Error()+": "); ok {
		return rest
	}
	return msg
}

// variantName names a variant for messages: "DenseNet-BC", "plain DenseNet".
func variantName(v string) string {
	if v == "plain" {
		return "plain DenseNet"
	}
	return "DenseNet-" + v
}

// variantPhrase names a variant with its stem for error messages: "a CIFAR DenseNet-BC".
func variantPhrase(v string, stem builders.Stem) string {
	name := variantName(v)
	if stem == builders.StemImageNet {
		return "a " + name + " with the ImageNet stem"
	}
	return "a CIFAR " + name
}

// nearDepths lists the valid depths per*n+4 nearest to d: "40 or 46".
func nearDepths(d, per int) string {
	n := max(1, (d-4)/per)
	lo, hi := per*n+4, per*(n+1)+4
	if d < lo {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d or %d", lo, hi)
}

// parseBlocks parses --blocks "6,12,24,16".
func parseBlocks(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > builders.MaxBlockLayers {
			return nil, usagef("build: --blocks %q: want comma-separated layer counts 1..%d, such as 6,12,24,16", s, builders.MaxBlockLayers)
		}
		out = append(out, n)
	}
	if len(out) > builders.MaxBlocks {
		return nil, usagef("build: --blocks %q: %d blocks exceeds the limit of %d", s, len(out), builders.MaxBlocks)
	}
	return out, nil
}

// depth returns the paper's depth of cfg: the stem conv, every conv in the dense layers, one conv
// per transition and the classifier.
func depth(cfg builders.Config) int {
	per := 1
	if cfg.Bottleneck() {
		per = 2
	}
	d := 1 + len(cfg.Blocks) // stem conv, transitions (blocks-1) and the classifier
	for _, n := range cfg.Blocks {
		d += per * n
	}
	return d
}

// bnModules returns how many BatchNorm modules the torchvision model of cfg has: one per
// dense-layer conv, one per transition, norm5 and, with the ImageNet stem, norm0.
func bnModules(cfg builders.Config) int {
	n := depth(cfg) - 1 // every conv but the stem's (one BN before each), and norm5 for the classifier
	if cfg.Stem == builders.StemImageNet {
		n++
	}
	return n
}

// customName names a --variant model in the style of the presets: densenet_bc100_k12,
// densenet40_k12, with "_imagenet" for the ImageNet stem.
func customName(cfg builders.Config) string {
	v := ""
	if cfg.Variant() != "plain" {
		v = "_" + strings.ToLower(cfg.Variant())
	}
	name := fmt.Sprintf("densenet%s%d_k%d", v, depth(cfg), cfg.Growth)
	if cfg.Stem == builders.StemImageNet {
		name += "_imagenet"
	}
	return name
}

func countOps(m *onnxpb.ModelProto, op string) int {
	n := 0
	for _, nd := range m.GetGraph().GetNode() {
		if nd.GetOpType() == op {
			n++
		}
	}
	return n
}

func printBuild(w io.Writer, r buildReport) error {
	cfg := r.Config
	fmt.Fprintf(w, "Model       %s: DenseNet-%s, depth %d, k=%d, blocks %s, %d stem channels (%s stem)",
		r.Name, r.Variant, r.Depth, cfg.Growth, joinInts(cfg.Blocks), cfg.InitFeatures, cfg.Stem)
	if cfg.BNSize > 0 {
		fmt.Fprintf(w, ", bn_size %d", cfg.BNSize)
	}
	if cfg.Compression < 1 {
		fmt.Fprintf(w, ", θ=%g", cfg.Compression)
	}
	if cfg.DropRate > 0 {
		fmt.Fprintf(w, ", drop rate %g", cfg.DropRate)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Input       float32[batch,3,%d,%d] -> logits float32[batch,%d]\n", cfg.InputSize, cfg.InputSize, cfg.Classes)
	fmt.Fprintf(w, "Parameters  %s (%s)\n", groupDigits(r.Parameters), siCount(r.Parameters))
	fmt.Fprintf(w, "MACs        %s (%s) per %dx%d image\n", groupDigits(r.MACs), siCount(r.MACs), cfg.InputSize, cfg.InputSize)
	if r.Form == "inference" {
		fmt.Fprintf(w, "Form        inference: %s folded into convs, %s remain\n", plural.Count(r.BNFolded, "BN"), plural.Count(r.BNNodes, "BatchNormalization node"))
	} else {
		fmt.Fprintf(w, "Form        training: %s, torchvision state_dict names", plural.Count(r.BNNodes, "BatchNormalization node"))
		if r.DropoutNodes > 0 {
			fmt.Fprintf(w, ", %s", plural.Count(r.DropoutNodes, "Dropout node"))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Opset       ai.onnx %d, IR %d; %s, %s, seed %d\n", r.Opset, r.IRVersion, plural.Count(r.Nodes, "node"), plural.Count(r.Initializers, "initializer"), r.Seed)
	_, err := fmt.Fprintf(w, "Wrote       %s (%s)\n", r.File, byteCount(r.Bytes))
	return err
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

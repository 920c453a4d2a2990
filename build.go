package dnx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/converters/pytorch"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/membudget"
)

// DenseNetConfig describes a DenseNet (Huang et al., "Densely Connected Convolutional Networks")
// in the form torchvision builds it, extended with the paper's plain, B-only and C-only variants.
//
// Block b has Blocks[b] dense layers. A layer sees the concatenation of every earlier feature
// map of its block and adds Growth channels: with BNSize > 0 through a bottleneck
// (BN-ReLU-Conv1x1(BNSize*Growth)-BN-ReLU-Conv3x3, DenseNet-B), with BNSize == 0 through
// BN-ReLU-Conv3x3. Between blocks a transition maps C channels to floor(Compression*C)
// (DenseNet-C when Compression < 1) and halves the resolution.
type DenseNetConfig struct {
	Growth       int     // k: channels each dense layer adds
	Blocks       []int   // dense layers per block
	InitFeatures int     // channels out of the stem
	BNSize       int     // bottleneck width factor (4 in the paper); 0 = no bottleneck
	Compression  float64 // θ in (0, 1]: a transition's output channels are floor(θ*C)
	// Stem is "imagenet" (the default when ""): Conv7x7/2-BN-ReLU-MaxPool3x3/2, or "cifar":
	// one Conv3x3 at full resolution.
	Stem string
	// DropRate is the dropout probability after each dense layer during training (torchvision's
	// drop_rate); 0 for none.
	DropRate  float64
	Classes   int // classifier outputs
	InputSize int // input height and width
}

// internal converts c to the builders' form.
func (c DenseNetConfig) internal() (builders.Config, error) {
	out := builders.Config{
		Growth: c.Growth, Blocks: slices.Clone(c.Blocks), InitFeatures: c.InitFeatures, BNSize: c.BNSize,
		Compression: c.Compression, DropRate: c.DropRate, Classes: c.Classes, InputSize: c.InputSize,
	}
	switch strings.ToLower(c.Stem) {
	case "", "imagenet":
		out.Stem = builders.StemImageNet
	case "cifar":
		out.Stem = builders.StemCIFAR
	default:
		return out, fmt.Errorf("%w: Stem %q: want \"imagenet\" or \"cifar\"", ErrConfig, c.Stem)
	}
	return out, out.Validate()
}

// denseNetConfig converts a builders.Config to this package's form.
func denseNetConfig(c builders.Config) DenseNetConfig {
	return DenseNetConfig{
		Growth: c.Growth, Blocks: slices.Clone(c.Blocks), InitFeatures: c.InitFeatures, BNSize: c.BNSize,
		Compression: c.Compression, Stem: c.Stem.String(), DropRate: c.DropRate, Classes: c.Classes, InputSize: c.InputSize,
	}
}

// Params returns the number of trainable values of the network c describes (conv weights, BN
// scales and shifts, the classifier), as PyTorch counts model.parameters(), or an error
// matching ErrConfig when c is not buildable.
func (c DenseNetConfig) Params() (int64, error) {
	ic, err := c.internal()
	if err != nil {
		return 0, fmt.Errorf("dnx: %w", err)
	}
	return builders.Params(ic), nil
}

// Preset is a named DenseNetConfig from dnx's model zoo, with the input normalization its
// weights expect.
type Preset struct {
	Name          string
	Description   string
	Config        DenseNetConfig
	Normalization Normalization
}

// Presets returns every preset: the ImageNet DenseNet-121/161/169/201/264, the paper's CIFAR
// models, and "tiny" (a 16x16, 5-class DenseNet-BC for tests and demos). The values are fresh
// copies the caller may modify.
func Presets() []Preset {
	ps := models.Presets()
	out := make([]Preset, len(ps))
	for i, p := range ps {
		out[i] = preset(p)
	}
	return out
}

// LookupPreset returns the preset called name. The error for an unknown name matches
// ErrUnknownPreset and lists the valid names.
func LookupPreset(name string) (Preset, error) {
	p, err := models.Lookup(name)
	if err != nil {
		return Preset{}, fmt.Errorf("dnx: %w", err)
	}
	return preset(p), nil
}

func preset(p models.Preset) Preset {
	return Preset{Name: p.Name, Description: p.Description, Config: denseNetConfig(p.Config),
		Normalization: Normalization{Mean: p.Mean, Std: p.Std}}
}

// BuildOptions control Build and BuildPreset. The zero value gives a training-ready model at
// opset 13 with the weights of seed 0.
type BuildOptions struct {
	// Seed selects the random initial weights (torchvision's initialization); the same seed
	// always gives the same model.
	Seed int64
	// Opset is the ai.onnx opset to declare: 0 means 13; 11 to 21 are accepted.
	Opset int
	// Inference folds the BatchNormalizations that follow convolutions into them, as PyTorch's
	// eval-mode export does: smaller and faster to load, but no longer trainable by NewTrainer
	// with the torchvision parameter set. Sessions fold them anyway, so the default form runs
	// just as fast.
	Inference bool
	// MaxMemory bounds the bytes building may take (the weights about three times over, while
	// they are generated, encoded and imported): 0 means the default budget, negative no bound.
	MaxMemory int64
}

// weightCopies is how many float32 copies of a model's weights building or converting holds at
// once: the generated tensors, their ONNX encoding and the imported graph.
const weightCopies = 3

// checkBuildBudget refuses a configuration whose weights would not fit the budget, before any of
// them is allocated: a config from user input can ask for billions of parameters.
func checkBuildBudget(cfg builders.Config, limit int64) error {
	n := builders.Params(cfg)
	return membudget.New(limit).CheckBytes(fmt.Sprintf("building a model of %d parameters", n), weightCopies*4*n)
}

// Build returns the DenseNet cfg describes, with fresh weights, as an in-memory Model: input
// "input" float32 [batch, 3, InputSize, InputSize], output "logits" [batch, Classes], node and
// initializer names as torchvision and PyTorch's exporter give them. Its metadata records cfg
// under "dnx.densenet.*". Errors match ErrConfig, ErrOptions or ErrOverBudget.
func Build(cfg DenseNetConfig, opts BuildOptions) (*Model, error) {
	ic, err := cfg.internal()
	if err != nil {
		return nil, fmt.Errorf("dnx: build: %w", err)
	}
	return build(ic, "", opts)
}

// BuildPreset is Build for a named preset (see Presets). The model's metadata also records the
// preset under "dnx.preset", from which dnx's command line picks the image normalization.
func BuildPreset(name string, opts BuildOptions) (*Model, error) {
	p, err := models.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("dnx: build: %w", err)
	}
	return build(p.Config, p.Name, opts)
}

func build(cfg builders.Config, presetName string, opts BuildOptions) (*Model, error) {
	what := "build"
	if presetName != "" {
		what = "build " + presetName
	}
	if err := checkBuildBudget(cfg, opts.MaxMemory); err != nil {
		return nil, wrapf(err, "%s", what)
	}
	m, err := builders.Build(cfg, builders.BuildOptions{Seed: opts.Seed, Opset: opts.Opset, Inference: opts.Inference})
	if err != nil {
		return nil, wrapf(err, "%s", what)
	}
	return fromBuilt(m, presetName, what)
}

// presetKey is the metadata key naming a model's preset; dnx's command line reads it to find the
// image normalization (cli/finetune.go).
const presetKey = "dnx.preset"

// fromBuilt imports a model the builders or the converter made.
func fromBuilt(m *onnxpb.ModelProto, presetName, what string) (*Model, error) {
	model, err := fromProto(m, "")
	if err != nil {
		return nil, wrapf(err, "%s", what) // a builder bug: its models always import
	}
	if presetName != "" {
		model.g.SetMetadata(presetKey, presetName) // the model is new: nobody shares its graph yet
	}
	return model, nil
}

// ConvertOptions control ConvertCheckpoint. The zero value infers the architecture from the
// checkpoint and gives a training-ready model at opset 13.
type ConvertOptions struct {
	// Preset names the checkpoint's architecture (see Presets); "" infers it from the tensor
	// shapes, which works for every torchvision-style DenseNet except the input size (see
	// InputSize).
	Preset string
	// Classes, when > 0, overrides the classifier size of Preset (a fine-tuned head).
	Classes int
	// InputSize, when > 0, is the input height and width to declare; otherwise the preset's, or
	// for an inferred architecture 224 (ImageNet stem) or 32 (CIFAR stem). Global average
	// pooling makes the weights independent of it.
	InputSize int
	// Opset and Inference are as in BuildOptions.
	Opset     int
	Inference bool
	// MaxMemory bounds the bytes converting may take, as BuildOptions.MaxMemory.
	MaxMemory int64
}

// ConvertCheckpoint reads a PyTorch DenseNet checkpoint (a torch.save file, zip or legacy
// format, or .safetensors) and returns the model with its weights. The pickle inside a .pth file
// is parsed, never executed: a file referencing anything but tensors is refused. Training
// checkpoints that wrap the state_dict ({"state_dict": ...}) and nn.DataParallel's "module."
// prefixes are handled. Errors name the file and match ErrCheckpoint; a mismatch with the
// architecture lists every missing key, unexpected key and shape difference.
func ConvertCheckpoint(path string, opts ConvertOptions) (*Model, error) {
	what := "convert " + path
	if opts.Classes < 0 || opts.InputSize < 0 {
		return nil, fmt.Errorf("dnx: %s: %w: Classes %d, InputSize %d: want 0 (the default) or more", what, ErrOptions, opts.Classes, opts.InputSize)
	}
	var cfg builders.Config
	presetName := ""
	if opts.Preset != "" {
		p, err := models.Lookup(opts.Preset)
		if err != nil {
			return nil, fmt.Errorf("dnx: %s: %w", what, err)
		}
		cfg, presetName = p.Config.Clone(), p.Name
	}
	sd, err := pytorch.LoadFile(path)
	if err != nil {
		return nil, wrapf(err, "convert")
	}
	if presetName == "" {
		if cfg, err = pytorch.InferConfig(sd, opts.InputSize); err != nil {
			return nil, wrapf(fmt.Errorf("%w (name the architecture with ConvertOptions.Preset)", err), "%s", what)
		}
	} else if opts.InputSize > 0 {
		cfg.InputSize = opts.InputSize
	}
	if opts.Classes > 0 {
		cfg.Classes = opts.Classes
	}
	if err := cfg.Validate(); err != nil {
		return nil, wrapf(err, "%s", what)
	}
	if err := checkBuildBudget(cfg, opts.MaxMemory); err != nil {
		return nil, wrapf(err, "%s", what)
	}
	m, err := pytorch.Convert(sd, cfg, builders.BuildOptions{Opset: opts.Opset, Inference: opts.Inference})
	if err != nil {
		return nil, wrapf(err, "%s", what)
	}
	return fromBuilt(m, presetName, what)
}

package builders

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ErrConfig is wrapped by every error about an invalid Config or an impossible FromDepth request.
var ErrConfig = errors.New("invalid DenseNet config")

// ErrOptions is wrapped by every error about invalid BuildOptions.
var ErrOptions = errors.New("invalid build options")

// Limits on Config fields. They are far above any published DenseNet and keep every count that
// Params and MACs compute inside int64 without overflow checks; configs may come from a command line.
const (
	MaxGrowth       = 1 << 12 // channels added per dense layer
	MaxInitFeatures = 1 << 16 // stem output channels
	MaxBNSize       = 64      // bottleneck width factor
	MaxBlocks       = 16      // dense blocks
	MaxBlockLayers  = 1 << 10 // dense layers in one block
	MaxClasses      = 1 << 20 // classifier outputs
	MaxInputSize    = 1 << 13 // input height and width
	// MaxParams bounds Params(cfg): a larger model could not be held as float32 initializers anyway.
	MaxParams = tensor.MaxElements
)

// Stem selects the layers between the image and the first dense block.
type Stem int

const (
	// StemImageNet is torchvision's stem: Conv7x7/2 (pad 3, no bias) -> BN -> ReLU -> MaxPool 3x3/2
	// (pad 1). It divides the resolution by 4.
	StemImageNet Stem = iota
	// StemCIFAR is the stem of the paper's CIFAR/SVHN models: one Conv3x3 (pad 1, no bias) to
	// InitFeatures channels, with no BN, pooling or stride.
	StemCIFAR
)

// String returns "imagenet" or "cifar".
func (s Stem) String() string {
	switch s {
	case StemImageNet:
		return "imagenet"
	case StemCIFAR:
		return "cifar"
	}
	return fmt.Sprintf("Stem(%d)", int(s))
}

// Config describes a DenseNet (Huang et al., "Densely Connected Convolutional Networks", 2017)
// in the form torchvision builds it, extended with the paper's plain and B-only/C-only variants.
//
// Block b has Blocks[b] dense layers; layer l of a block whose input has c channels sees the
// concatenation of all earlier features, c + l*Growth channels, and adds Growth channels.
// With BNSize > 0 a layer is a bottleneck (DenseNet-B) BN-ReLU-Conv1x1(BNSize*Growth)-BN-ReLU-
// Conv3x3(Growth); with BNSize == 0 it is the plain BN-ReLU-Conv3x3(Growth). Between blocks a
// transition maps C channels to floor(Compression*C) (DenseNet-C when Compression < 1) and halves
// the resolution with a 2x2 average pool.
type Config struct {
	Growth       int     // k, channels each dense layer adds
	Blocks       []int   // dense layers per block
	InitFeatures int     // channels out of the stem
	BNSize       int     // bottleneck width factor (4 in the paper); 0 = no bottleneck
	Compression  float64 // θ in (0,1]: transition output channels = floor(θ*C)
	Stem         Stem
	// DropRate is the dropout probability after each dense layer in training (torchvision's
	// drop_rate). The training form has a Dropout node after each dense layer's last conv; the
	// inference form has none (eval semantics). Build records the value in the model metadata.
	DropRate  float64
	Classes   int // classifier outputs
	InputSize int // input height = width
}

// Bottleneck reports whether dense layers have the 1x1 bottleneck conv (DenseNet-B).
func (c Config) Bottleneck() bool { return c.BNSize > 0 }

// Variant returns the paper's name for the layer/transition combination: "plain", "B", "C" or "BC".
func (c Config) Variant() string {
	switch {
	case c.Bottleneck() && c.Compression < 1:
		return "BC"
	case c.Bottleneck():
		return "B"
	case c.Compression < 1:
		return "C"
	}
	return "plain"
}

// String summarizes c on one line, for model doc strings and logs.
func (c Config) String() string {
	return fmt.Sprintf("DenseNet-%s k=%d blocks=%v init=%d bn_size=%d θ=%g stem=%s drop=%g classes=%d input=%dx%d",
		c.Variant(), c.Growth, c.Blocks, c.InitFeatures, c.BNSize, c.Compression, c.Stem, c.DropRate,
		c.Classes, c.InputSize, c.InputSize)
}

// Clone returns a copy of c that shares no memory with it (Blocks is copied).
func (c Config) Clone() Config {
	c.Blocks = append([]int(nil), c.Blocks...)
	return c
}

// Validate reports the first problem that makes c unbuildable: a missing or empty block, a
// non-positive growth, width or class count, a compression outside (0,1], a transition that
// would leave no channels, an input too small for the stem and pooling, or a size beyond the
// Max* limits. Every error wraps ErrConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case len(c.Blocks) == 0:
		return bad("no dense blocks (Blocks is empty)")
	case len(c.Blocks) > MaxBlocks:
		return bad("%d dense blocks exceeds the limit of %d", len(c.Blocks), MaxBlocks)
	}
	for i, n := range c.Blocks {
		if n <= 0 || n > MaxBlockLayers {
			return bad("dense block %d has %d layers; want 1..%d", i+1, n, MaxBlockLayers)
		}
	}
	switch {
	case c.Growth <= 0 || c.Growth > MaxGrowth:
		return bad("growth rate k=%d; want 1..%d", c.Growth, MaxGrowth)
	case c.InitFeatures <= 0 || c.InitFeatures > MaxInitFeatures:
		return bad("InitFeatures=%d; want 1..%d", c.InitFeatures, MaxInitFeatures)
	case c.BNSize < 0 || c.BNSize > MaxBNSize:
		return bad("BNSize=%d; want 0 (no bottleneck) .. %d", c.BNSize, MaxBNSize)
	case !(c.Compression > 0 && c.Compression <= 1): // also catches NaN
		return bad("compression θ=%g is outside (0,1]", c.Compression)
	case !(c.DropRate >= 0 && c.DropRate < 1):
		return bad("DropRate=%g is outside [0,1)", c.DropRate)
	case c.Classes <= 0 || c.Classes > MaxClasses:
		return bad("Classes=%d; want 1..%d", c.Classes, MaxClasses)
	case c.InputSize <= 0 || c.InputSize > MaxInputSize:
		return bad("InputSize=%d; want 1..%d", c.InputSize, MaxInputSize)
	case c.Stem != StemImageNet && c.Stem != StemCIFAR:
		return bad("unknown stem %v", c.Stem)
	}
	ch, hw := c.InitFeatures, stemOutSize(c.Stem, c.InputSize)
	for b, n := range c.Blocks {
		ch += n * c.Growth
		if b == len(c.Blocks)-1 {
			break
		}
		out := transitionChannels(ch, c.Compression)
		if out == 0 {
			return bad("transition %d maps %d channels to floor(%g*%d) = 0", b+1, ch, c.Compression, ch)
		}
		if hw < 2 {
			return bad("input %dx%d is too small: transition %d would pool a %dx%d map to nothing",
				c.InputSize, c.InputSize, b+1, hw, hw)
		}
		ch, hw = out, hw/2
	}
	if p := Params(c); p > MaxParams {
		return bad("%d parameters exceeds the limit of %d", p, int64(MaxParams))
	}
	return nil
}

// transitionChannels returns floor(θ*c), the width of a transition's 1x1 conv. It truncates the
// float64 product exactly as torchvision's int(num_features * compression) does, so shapes match
// torch exports even where θ*c rounds just below an integer.
func transitionChannels(c int, theta float64) int {
	return int(theta * float64(c))
}

// stemOutSize returns the spatial size after the stem for an s x s input.
func stemOutSize(stem Stem, s int) int {
	if stem != StemImageNet {
		return s
	}
	h := convOut(s, 7, 2, 3)
	return convOut(h, 3, 2, 1)
}

// convOut is the output size of a conv or pool window: floor((s + 2*pad - k) / stride) + 1.
func convOut(s, k, stride, pad int) int {
	n := s + 2*pad - k
	if n < 0 {
		return 0
	}
	return n/stride + 1
}

// FromDepth returns the paper's CIFAR configuration for a network of the given depth: three dense
// blocks of equal size, 10 classes, 32x32 input and the CIFAR stem unless stem says otherwise (an
// ImageNet stem also sets 1000 classes and 224x224 input; change the fields afterwards as needed).
//
// variant is "plain", "B", "C" or "BC" (case-insensitive). The depth counts the stem conv, every
// conv in the dense layers, the two transition convs and the classifier, so
//
//	plain, C: depth = 3n + 4 (n layers of one 3x3 conv per block), InitFeatures 16
//	B, BC:    depth = 6n + 4 (n bottleneck layers of two convs per block), InitFeatures 2k, BNSize 4
//
// compression 0 selects the default: 0.5 for C and BC, 1 for plain and B. Plain and B have no
// compression, so for them only 0 or 1 is accepted; C and BC need θ in (0,1).
func FromDepth(variant string, depth, growth int, compression float64, stem ...Stem) (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: FromDepth: "+format, append([]any{ErrConfig}, args...)...)
	}
	v := strings.ToUpper(variant)
	if v == "PLAIN" {
		v = "plain"
	}
	var bottleneck, compressed bool
	switch v {
	case "plain":
	case "B":
		bottleneck = true
	case "C":
		compressed = true
	case "BC":
		bottleneck, compressed = true, true
	default:
		return bad("unknown variant %q; want plain, B, C or BC", variant)
	}
	if len(stem) > 1 {
		return bad("at most one stem, got %d", len(stem))
	}
	convsPerLayer := 1
	if bottleneck {
		convsPerLayer = 2
	}
	per := 3 * convsPerLayer
	if depth < per+4 || (depth-4)%per != 0 {
		return bad("DenseNet-%s depth %d is impossible: want %dn+4 with n >= 1 (e.g. %d, %d, %d)",
			v, depth, per, per+4, 2*per+4, 16*per+4)
	}
	if growth <= 0 {
		return bad("growth rate k=%d; want > 0", growth)
	}
	theta := compression
	switch {
	case compressed && compression == 0:
		theta = 0.5
	case compressed && !(compression > 0 && compression < 1):
		return bad("DenseNet-%s needs compression θ in (0,1), got %g", v, compression)
	case !compressed && (compression == 0 || compression == 1):
		theta = 1
	case !compressed:
		return bad("DenseNet-%s has no compression; got θ=%g (use C or BC, or pass 0)", v, compression)
	}
	n := (depth - 4) / per
	cfg := Config{
		Growth:       growth,
		Blocks:       []int{n, n, n},
		InitFeatures: 16,
		Compression:  theta,
		Stem:         StemCIFAR,
		Classes:      10,
		InputSize:    32,
	}
	if bottleneck {
		cfg.InitFeatures = 2 * growth
		cfg.BNSize = 4
	}
	if len(stem) == 1 {
		cfg.Stem = stem[0]
		if cfg.Stem == StemImageNet {
			cfg.Classes, cfg.InputSize = 1000, 224
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("DenseNet-%s of depth %d and growth %d: %w", variant, depth, growth, err)
	}
	return cfg, nil
}

package builders

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// tinyConfig is the architecture of shared/models/densenet_tiny.
func tinyConfig() Config {
	return Config{Growth: 4, Blocks: []int{2, 2}, InitFeatures: 8, BNSize: 4, Compression: 0.5,
		Stem: StemCIFAR, Classes: 5, InputSize: 16}
}

func densenet121Config() Config {
	return Config{Growth: 32, Blocks: []int{6, 12, 24, 16}, InitFeatures: 64, BNSize: 4, Compression: 0.5,
		Stem: StemImageNet, Classes: 1000, InputSize: 224}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(c *Config)
		errSub string // "" = valid
	}{
		{"tiny", func(c *Config) {}, ""},
		{"plain", func(c *Config) { c.BNSize, c.Compression = 0, 1 }, ""},
		{"imagenet stem", func(c *Config) { c.Stem, c.InputSize = StemImageNet, 32 }, ""},
		{"theta 1", func(c *Config) { c.Compression = 1 }, ""},
		{"no blocks", func(c *Config) { c.Blocks = nil }, "no dense blocks"},
		{"empty block", func(c *Config) { c.Blocks = []int{2, 0} }, "dense block 2 has 0 layers"},
		{"negative block", func(c *Config) { c.Blocks = []int{-1} }, "dense block 1 has -1 layers"},
		{"too many blocks", func(c *Config) { c.Blocks = make([]int, MaxBlocks+1) }, "exceeds the limit"},
		{"huge block", func(c *Config) { c.Blocks = []int{MaxBlockLayers + 1} }, "layers; want 1..1024"},
		{"zero growth", func(c *Config) { c.Growth = 0 }, "growth rate k=0"},
		{"negative growth", func(c *Config) { c.Growth = -3 }, "growth rate k=-3"},
		{"zero init", func(c *Config) { c.InitFeatures = 0 }, "InitFeatures=0"},
		{"negative bn_size", func(c *Config) { c.BNSize = -1 }, "BNSize=-1"},
		{"theta 0", func(c *Config) { c.Compression = 0 }, "outside (0,1]"},
		{"theta above 1", func(c *Config) { c.Compression = 1.5 }, "outside (0,1]"},
		{"theta NaN", func(c *Config) { c.Compression = math.NaN() }, "outside (0,1]"},
		{"drop 1", func(c *Config) { c.DropRate = 1 }, "DropRate=1"},
		{"drop negative", func(c *Config) { c.DropRate = -0.1 }, "DropRate=-0.1"},
		{"zero classes", func(c *Config) { c.Classes = 0 }, "Classes=0"},
		{"zero input", func(c *Config) { c.InputSize = 0 }, "InputSize=0"},
		{"unknown stem", func(c *Config) { c.Stem = Stem(7) }, "unknown stem Stem(7)"},
		{"transition to nothing", func(c *Config) { c.Compression = 0.01 }, "floor(0.01*16) = 0"},
		{"input too small", func(c *Config) { c.InputSize = 1 }, "too small"},
		{"imagenet input too small", func(c *Config) { c.Stem, c.InputSize = StemImageNet, 4 }, "too small"},
		{"too many params", func(c *Config) {
			c.Growth, c.BNSize, c.Blocks = MaxGrowth, MaxBNSize, []int{MaxBlockLayers}
		}, "parameters exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tinyConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.errSub == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.errSub) {
				t.Fatalf("Validate() = %v, want an ErrConfig containing %q", err, tt.errSub)
			}
		})
	}
}

func TestFromDepth(t *testing.T) {
	tests := []struct {
		variant     string
		depth, k    int
		theta       float64
		stem        []Stem
		blocks      []int
		init, bn    int
		wantTheta   float64
		wantVariant string
	}{
		{"plain", 40, 12, 0, nil, []int{12, 12, 12}, 16, 0, 1, "plain"},
		{"plain", 100, 24, 1, nil, []int{32, 32, 32}, 16, 0, 1, "plain"},
		{"C", 40, 12, 0, nil, []int{12, 12, 12}, 16, 0, 0.5, "C"},
		{"c", 40, 12, 0.25, nil, []int{12, 12, 12}, 16, 0, 0.25, "C"},
		{"B", 100, 12, 0, nil, []int{16, 16, 16}, 24, 4, 1, "B"},
		{"BC", 100, 12, 0, nil, []int{16, 16, 16}, 24, 4, 0.5, "BC"},
		{"bc", 190, 40, 0, nil, []int{31, 31, 31}, 80, 4, 0.5, "BC"},
		{"BC", 250, 24, 0, nil, []int{41, 41, 41}, 48, 4, 0.5, "BC"},
		{"BC", 10, 12, 0, []Stem{StemImageNet}, []int{1, 1, 1}, 24, 4, 0.5, "BC"},
	}
	for _, tt := range tests {
		c, err := FromDepth(tt.variant, tt.depth, tt.k, tt.theta, tt.stem...)
		if err != nil {
			t.Errorf("FromDepth(%q, %d, %d, %g) error: %v", tt.variant, tt.depth, tt.k, tt.theta, err)
			continue
		}
		if !slices.Equal(c.Blocks, tt.blocks) || c.InitFeatures != tt.init || c.BNSize != tt.bn ||
			c.Compression != tt.wantTheta || c.Growth != tt.k || c.Variant() != tt.wantVariant {
			t.Errorf("FromDepth(%q, %d, %d, %g) = %v", tt.variant, tt.depth, tt.k, tt.theta, c)
		}
		wantStem, wantClasses, wantSize := StemCIFAR, 10, 32
		if len(tt.stem) == 1 {
			wantStem, wantClasses, wantSize = StemImageNet, 1000, 224
		}
		if c.Stem != wantStem || c.Classes != wantClasses || c.InputSize != wantSize {
			t.Errorf("FromDepth(%q, %d, %d): stem %v classes %d input %d", tt.variant, tt.depth, tt.k, c.Stem, c.Classes, c.InputSize)
		}
	}
}

func TestFromDepthErrors(t *testing.T) {
	tests := []struct {
		variant  string
		depth, k int
		theta    float64
		stem     []Stem
		errSub   string
	}{
		{"D", 40, 12, 0, nil, `unknown variant "D"`},
		{"", 40, 12, 0, nil, "unknown variant"},
		{"plain", 41, 12, 0, nil, "depth 41 is impossible: want 3n+4"},
		{"plain", 4, 12, 0, nil, "depth 4 is impossible"},
		{"BC", 42, 12, 0, nil, "depth 42 is impossible: want 6n+4"},
		{"B", 0, 12, 0, nil, "depth 0 is impossible"},
		{"BC", -2, 12, 0, nil, "depth -2 is impossible"},
		{"BC", 100, 0, 0, nil, "growth rate k=0"},
		{"plain", 40, -1, 0, nil, "growth rate k=-1"},
		{"plain", 40, 12, 0.5, nil, "has no compression"},
		{"B", 100, 12, 0.5, nil, "has no compression"},
		{"BC", 100, 12, 1, nil, "needs compression θ in (0,1)"},
		{"C", 40, 12, -0.5, nil, "needs compression"},
		{"C", 40, 12, math.NaN(), nil, "needs compression"},
		{"BC", 100, 12, 0, []Stem{StemCIFAR, StemImageNet}, "at most one stem"},
		{"BC", 100, 12, 0, []Stem{Stem(9)}, "unknown stem"},
		{"plain", 3*MaxBlockLayers + 7, 12, 0, nil, "layers; want 1..1024"},
		{"BC", 100, MaxGrowth + 1, 0, nil, "growth rate"},
	}
	for _, tt := range tests {
		_, err := FromDepth(tt.variant, tt.depth, tt.k, tt.theta, tt.stem...)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.errSub) {
			t.Errorf("FromDepth(%q, %d, %d, %g) = %v, want an ErrConfig containing %q",
				tt.variant, tt.depth, tt.k, tt.theta, err, tt.errSub)
		}
	}
}

func TestTransitionChannels(t *testing.T) {
	tests := []struct {
		c     int
		theta float64
		want  int
	}{
		{16, 0.5, 8}, {15, 0.5, 7}, {1024, 0.5, 512}, {10, 0.3, 3}, {7, 1, 7}, {3, 0.25, 0},
	}
	for _, tt := range tests {
		if got := transitionChannels(tt.c, tt.theta); got != tt.want {
			t.Errorf("transitionChannels(%d, %g) = %d, want %d", tt.c, tt.theta, got, tt.want)
		}
	}
}

func TestConfigString(t *testing.T) {
	got := tinyConfig().String()
	want := "DenseNet-BC k=4 blocks=[2 2] init=8 bn_size=4 θ=0.5 stem=cifar drop=0 classes=5 input=16x16"
	if got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c := tinyConfig()
	d := c.Clone()
	d.Blocks[0] = 9
	if c.Blocks[0] != 2 {
		t.Error("Clone shares Blocks with the original")
	}
}

package models

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dnx-ml/dnx/builders"
)

// ErrUnknownPreset is wrapped by Lookup's error for a name no preset has.
var ErrUnknownPreset = errors.New("unknown model preset")

// Per-channel (R, G, B) input normalization, x' = (x - Mean) / Std on [0,1] pixels.
var (
	imageNetMean = [3]float32{0.485, 0.456, 0.406}
	imageNetStd  = [3]float32{0.229, 0.224, 0.225}
	cifarMean    = [3]float32{0.4914, 0.4822, 0.4465}
	cifarStd     = [3]float32{0.2470, 0.2435, 0.2616}
)

// Preset is a named DenseNet configuration with the preprocessing its inputs expect.
type Preset struct {
	Name        string
	Description string
	Config      builders.Config
	// Mean and Std normalize each RGB channel of a [0,1] image: x' = (x - Mean[c]) / Std[c].
	Mean, Std [3]float32
}

// Presets returns every preset, ImageNet models first. The slice and the Configs in it are fresh on
// each call.
func Presets() []Preset {
	imagenet := func(name string, k, init int, blocks []int, desc string) Preset {
		return Preset{
			Name:        name,
			Description: desc,
			Config: builders.Config{
				Growth: k, Blocks: blocks, InitFeatures: init, BNSize: 4, Compression: 0.5,
				Stem: builders.StemImageNet, Classes: 1000, InputSize: 224,
			},
			Mean: imageNetMean, Std: imageNetStd,
		}
	}
	// cifar is the paper's CIFAR-10 model of depth 3n+4 (plain) or 6n+4 (BC) with n layers per block.
	cifar := func(name string, bc bool, n, k int, desc string) Preset {
		cfg := builders.Config{
			Growth: k, Blocks: []int{n, n, n}, InitFeatures: 16, Compression: 1,
			Stem: builders.StemCIFAR, Classes: 10, InputSize: 32,
		}
		if bc {
			cfg.InitFeatures, cfg.BNSize, cfg.Compression = 2*k, 4, 0.5
		}
		return Preset{Name: name, Description: desc, Config: cfg, Mean: cifarMean, Std: cifarStd}
	}
	return []Preset{
		imagenet("densenet121", 32, 64, []int{6, 12, 24, 16}, "DenseNet-121 (torchvision densenet121): DenseNet-BC, k=32, ImageNet 224x224, 1000 classes"),
		imagenet("densenet169", 32, 64, []int{6, 12, 32, 32}, "DenseNet-169 (torchvision densenet169): DenseNet-BC, k=32, ImageNet 224x224, 1000 classes"),
		imagenet("densenet201", 32, 64, []int{6, 12, 48, 32}, "DenseNet-201 (torchvision densenet201): DenseNet-BC, k=32, ImageNet 224x224, 1000 classes"),
		imagenet("densenet161", 48, 96, []int{6, 12, 36, 24}, "DenseNet-161 (torchvision densenet161): DenseNet-BC, k=48, 96 stem channels, ImageNet 224x224, 1000 classes"),
		imagenet("densenet264", 32, 64, []int{6, 12, 64, 48}, "DenseNet-264 (paper, Table 1): DenseNet-BC, k=32, ImageNet 224x224, 1000 classes"),
		cifar("densenet40_k12", false, 12, 12, "DenseNet (plain) L=40, k=12, CIFAR-10 32x32 (paper: 1.0M params)"),
		cifar("densenet100_k12", false, 32, 12, "DenseNet (plain) L=100, k=12, CIFAR-10 32x32 (paper: 7.0M params)"),
		cifar("densenet100_k24", false, 32, 24, "DenseNet (plain) L=100, k=24, CIFAR-10 32x32 (paper: 27.2M params)"),
		cifar("densenet_bc100_k12", true, 16, 12, "DenseNet-BC L=100, k=12, CIFAR-10 32x32 (paper: 0.8M params)"),
		cifar("densenet_bc250_k24", true, 41, 24, "DenseNet-BC L=250, k=24, CIFAR-10 32x32 (paper: 15.3M params)"),
		cifar("densenet_bc190_k40", true, 31, 40, "DenseNet-BC L=190, k=40, CIFAR-10 32x32 (paper: 25.6M params)"),
		{
			Name:        "tiny",
			Description: "tiny DenseNet-BC (2 blocks x 2 layers, k=4, 8 stem channels, CIFAR stem), 16x16, 5 classes: the architecture of shared/models/densenet_tiny, for demos and tests",
			Config: builders.Config{
				Growth: 4, Blocks: []int{2, 2}, InitFeatures: 8, BNSize: 4, Compression: 0.5,
				Stem: builders.StemCIFAR, Classes: 5, InputSize: 16,
			},
			Mean: cifarMean, Std: cifarStd,
		},
	}
}

// Names returns the preset names in Presets order.
func Names() []string {
	ps := Presets()
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}

// Lookup returns the preset called name (exact match). The error for an unknown name wraps
// ErrUnknownPreset and lists the valid names.
func Lookup(name string) (Preset, error) {
	for _, p := range Presets() {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("%w %q; valid names: %s", ErrUnknownPreset, name, strings.Join(Names(), ", "))
}

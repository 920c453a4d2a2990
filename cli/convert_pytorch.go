package cli

import (
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/converters/pytorch"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
)

// checkpointFlags returns the flags only checkpoint conversion uses. convertCheckpoint also
// reads --opset (int, 0 for the default) and --output/-o (string), which the convert command
// defines once for both of its conversions.
func checkpointFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "preset", Usage: "architecture of the checkpoint (densenet121, densenet_bc100_k12, ...); default: inferred from the tensor shapes"},
		&ucli.IntFlag{Name: "classes", Usage: "classifier outputs, when they differ from the preset's (a fine-tuned head)"},
		&ucli.IntFlag{Name: "input-size", Usage: "input height and width recorded in the model (default: the preset's, or 224 for the ImageNet stem and 32 for the CIFAR stem)"},
		&ucli.BoolFlag{Name: "inference", Usage: "fold each BN that follows a conv into the conv (smaller and faster; not fine-tunable)"},
	}
}

// convertCheckpoint is `dnx convert CHECKPOINT [--preset NAME] [--classes N] [--input-size S]
// [--inference] [--opset N] -o OUT.onnx`. It reads a PyTorch DenseNet state_dict (torch.save zip
// or legacy format, or .safetensors; see package converters/pytorch, which never executes the
// pickle), builds the architecture of the preset or, without one, the architecture the tensor
// shapes imply, puts the checkpoint's weights in, and writes the ONNX model to OUT.onnx,
// replacing any file there only once the new one is complete. It prints a one-line summary.
func convertCheckpoint(c *ucli.Context) error {
	if err := exactArgs(c, "CHECKPOINT"); err != nil {
		return err
	}
	in, out := c.Args().First(), c.String("output")
	if out == "" {
		return usagef("convert: missing the output file (-o OUT.onnx)")
	}
	opset := c.Int("opset")
	if opset != 0 && (opset < builders.MinOpset || opset > builders.MaxOpset) {
		return usagef("convert: --opset %d: a converted checkpoint can declare opsets %d to %d", opset, builders.MinOpset, builders.MaxOpset)
	}
	for _, name := range []string{"classes", "input-size"} {
		if c.IsSet(name) && c.Int(name) <= 0 {
			return usagef("convert: --%s %d: want a positive number", name, c.Int(name))
		}
	}
	var preset *models.Preset
	if name := c.String("preset"); name != "" {
		p, err := models.Lookup(name)
		if err != nil {
			return usagef("convert: --preset: %v", err)
		}
		preset = &p
	}
	budget, err := memoryBudget(c)
	if err != nil {
		return err
	}
	inputs := []fileArg{{path: in}}
	if err := checkFiles("convert", inputs, []fileArg{{flag: "-o", path: out}}); err != nil {
		return err
	}
	if err := checkReadBudget("convert", budget, inputs); err != nil {
		return err
	}

	sd, err := pytorch.LoadFile(in)
	if err != nil {
		return err
	}
	var cfg builders.Config
	if preset != nil {
		cfg = preset.Config.Clone()
		if c.IsSet("input-size") {
			cfg.InputSize = c.Int("input-size")
		}
	} else if cfg, err = pytorch.InferConfig(sd, c.Int("input-size")); err != nil {
		return fmt.Errorf("%s: %w (name the architecture with --preset)", in, err)
	}
	if c.IsSet("classes") {
		cfg.Classes = c.Int("classes")
	}
	if err := checkBuildBudget("convert", budget, cfg); err != nil {
		return err
	}
	m, err := pytorch.Convert(sd, cfg, builders.BuildOptions{Opset: opset, Inference: c.Bool("inference")})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := onnx.WriteModelFile(out, m); err != nil {
		return err
	}
	used, err := pytorch.Normalize(sd)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err) // unreachable: Convert normalized the same keys
	}
	form := "training"
	if c.Bool("inference") {
		form = "inference"
	}
	arch := "inferred " + cfg.String()
	if preset != nil {
		arch = "preset " + preset.Name
	}
	_, err = fmt.Fprintf(c.App.Writer, "%s: %s loaded (%d model tensors), %s, %s; wrote %s (%s form, opset %d)\n",
		in, plural.Count(len(sd), "tensor"), len(used), plural.Count(int(builders.Params(cfg)), "parameter"), arch, out, form, m.GetOpsetImport()[0].GetVersion())
	return err
}

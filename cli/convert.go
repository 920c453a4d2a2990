package cli

import (
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

func convertCommand() *ucli.Command {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE` (.onnx), written atomically"},
		&ucli.IntFlag{Name: "opset", Usage: "default-domain opset of the output (11 to 21)"},
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
	in := c.Args().First()
	if strings.EqualFold(filepath.Ext(in), ".onnx") {
		for _, name := range []string{"preset", "classes", "input-size", "inference"} {
			if c.IsSet(name) {
				return usagef("convert: --%s applies to checkpoints, not to %s", name, in)
			}
		}
		if !c.IsSet("opset") {
			return usagef("convert: %s is already ONNX: say what to change (--opset N)", in)
		}
		return convertOpset(c, in, c.String("output"), c.Int("opset"))
	}
	return convertCheckpoint(c)
}

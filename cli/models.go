package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
)

func modelsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "models",
		Usage: "list the model presets 'dnx build --preset' and 'dnx demo' know",
		Description: "Parameters are the trainable values as PyTorch counts them (BN running statistics excluded);\n" +
			"MACs are the multiply-accumulates of the convolutions and the classifier for one image at the\n" +
			"preset's input size.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON array instead of a table"},
		},
		Action: modelsAction,
	}
}

// presetReport is one element of `dnx models --json`.
type presetReport struct {
	Name        string     `json:"name"`
	Variant     string     `json:"variant"`
	Depth       int        `json:"depth"`
	InputSize   int        `json:"input_size"`
	Classes     int        `json:"classes"`
	Parameters  int64      `json:"parameters"`
	MACs        int64      `json:"macs"`
	Description string     `json:"description"`
	Config      configJSON `json:"config"`
	Mean        [3]float32 `json:"mean"`
	Std         [3]float32 `json:"std"`
}

func modelsAction(c *ucli.Context) error {
	if c.Args().Present() {
		return usagef("models: takes no arguments, got %q", c.Args().First())
	}
	var reps []presetReport
	for _, p := range models.Presets() {
		cfg := p.Config
		reps = append(reps, presetReport{
			Name: p.Name, Variant: cfg.Variant(), Depth: depth(cfg), InputSize: cfg.InputSize, Classes: cfg.Classes,
			Parameters: builders.Params(cfg), MACs: builders.MACs(cfg), Description: p.Description,
			Config: newConfigJSON(cfg), Mean: p.Mean, Std: p.Std,
		})
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, reps)
	}
	return printModels(c.App.Writer, reps)
}

func printModels(w io.Writer, reps []presetReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVARIANT\tINPUT\tCLASSES\tPARAMS\tMACS\tDESCRIPTION")
	for _, r := range reps {
		fmt.Fprintf(tw, "%s\t%s\t%dx%d\t%d\t%s\t%s\t%s\n", r.Name, r.Variant, r.InputSize, r.InputSize, r.Classes,
			siCount(r.Parameters), siCount(r.MACs), r.Description)
	}
	return tw.Flush()
}

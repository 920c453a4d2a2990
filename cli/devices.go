package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/runtime/device"
)

// devicesReport is what `dnx inspect --devices --json` prints. Its keys are stable.
type devicesReport struct {
	Devices []device.Info `json:"devices"`
}

// inspectDevices runs `dnx inspect --devices`: it lists the CPU and the CUDA devices, each with
// whether dnx can run on it and, when not, why.
func inspectDevices(c *ucli.Context) error {
	if c.Args().Present() {
		return usagef("inspect: --devices takes no MODEL argument, got %s", strings.Join(c.Args().Slice(), " "))
	}
	for _, f := range []string{"dot", "shape", "max-memory"} {
		if c.IsSet(f) {
			return usagef("inspect: --%s describes a model; it does not go with --devices", f)
		}
	}
	rep := devicesReport{Devices: device.List()}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	return printDevices(c.App.Writer, rep.Devices)
}

// printDevices writes one block per device: its name and state, then its details sorted by key.
//
//	cpu  available
//	  arch        linux/amd64
//	  ...
//	cuda  not available: libcuda.so.1: cannot open shared object file: ...
func printDevices(w io.Writer, infos []device.Info) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, in := range infos {
		state := "available"
		if !in.Available {
			state = "not available: " + oneLine(in.Reason)
		}
		// No tab: the header ends the previous block's column, so each block aligns on its own.
		fmt.Fprintf(tw, "%s  %s\n", in.Name, state)
		keys := make([]string, 0, len(in.Details))
		for k := range in.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%s\n", k, oneLine(in.Details[k]))
		}
	}
	return tw.Flush()
}

package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/runtime/device"
)

// deviceFlag returns the --device flag of the commands that run a model (run, bench, finetune).
// Their action calls checkDevice first.
func deviceFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:  "device",
		Value: "cpu",
		Usage: "run on `DEVICE`: cpu, cuda or cuda:N (this build has no CUDA kernels: cuda reports what it finds and stops)",
	}
}

// checkDevice validates the command's --device value. It returns nil for cpu, which runs as
// before; a usage error for a name that is not a device; and for cuda or cuda:N an error naming
// what is missing (the library, the symbol, the GPU) or, when the GPU is there, saying that this
// build has no CUDA kernels. It never lets a cuda request run on the CPU.
func checkDevice(c *ucli.Context) error {
	name := c.String("device")
	spec, err := device.Parse(name)
	if err != nil {
		return usagef("%s: --%v", c.Command.Name, err)
	}
	if err := device.Check(spec); err != nil {
		return fmt.Errorf("--device %s: %w", name, err)
	}
	return nil
}

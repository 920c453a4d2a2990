package cli

import (
	"fmt"
	"os"
	"runtime"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/runtime/membudget"
)

// The flags several commands share are defined here once, with the function that reads and
// checks each, so that every command spells, documents and validates them the same way.

// maxMemoryFlag returns --max-memory, the memory budget of the commands that load a model or
// data. Read it with memoryLimit.
func maxMemoryFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:        "max-memory",
		Usage:       "refuse any tensor, activation arena, decoded image or file larger than `SIZE` (4GiB, 512M, 50%), naming it",
		DefaultText: fmt.Sprintf("%.0f%% of physical memory or of the cgroup limit: %s here", 100*membudget.DefaultFraction, membudget.Default()),
	}
}

// memoryLimit returns the --max-memory budget in bytes, 0 when the flag is not given (which
// exec.Options.MaxMemory, train.Options.MaxMemory and membudget.New read as the default). A value
// ParseSize refuses is a usage error naming the flag.
func memoryLimit(c *ucli.Context) (int64, error) {
	if !c.IsSet("max-memory") {
		return 0, nil
	}
	n, err := membudget.ParseSize(c.String("max-memory"))
	if err != nil {
		return 0, usagef("%s: --max-memory: %v", c.Command.Name, err)
	}
	return n, nil
}

// memoryBudget is memoryLimit as a membudget.Budget, for the checks the command line makes
// itself (file sizes, parameter counts).
func memoryBudget(c *ucli.Context) (membudget.Budget, error) {
	n, err := memoryLimit(c)
	return membudget.New(n), err
}

// checkReadBudget checks the sizes of the input files (folders are skipped) against budget
// before any is read: each is read whole into memory. Files that cannot be stat'ed are left to
// checkFiles or the reader to report.
func checkReadBudget(cmd string, budget membudget.Budget, inputs []fileArg) error {
	for _, in := range inputs {
		if in.path == "" || in.dir {
			continue
		}
		st, err := os.Stat(in.path)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := budget.CheckBytes("reading "+in.String(), st.Size()); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
	}
	return nil
}

// weightCopies is how many float32 copies of a model's weights building or converting it holds
// at once: the tensors, their ONNX encoding, and the serialized file.
const weightCopies = 3

// checkBuildBudget checks, before anything is allocated, that building a model of cfg (dnx build,
// dnx convert of a checkpoint) fits budget: the configuration flags alone can ask for billions of
// parameters.
func checkBuildBudget(cmd string, budget membudget.Budget, cfg builders.Config) error {
	n := builders.Params(cfg)
	what := fmt.Sprintf("building a model of %s parameters (the weights, their ONNX encoding and the file's bytes)", siCount(n))
	if err := budget.CheckBytes(what, weightCopies*4*n); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// minMaxThreads is the --threads limit on machines with up to 64 CPUs; larger machines allow
// 4 per CPU (maxThreads). Each worker is a goroutine with its own share of every parallel loop,
// so beyond a few per CPU threads only add scheduling and memory: 100000 took 755 MB of stacks
// and a million ran for minutes before doing anything.
const minMaxThreads = 256

// maxThreads returns the largest --threads value: minMaxThreads or 4 per CPU, whichever is larger.
func maxThreads() int { return max(minMaxThreads, 4*runtime.NumCPU()) }

// threadsFlag returns --threads, the worker threads of the commands that run a model. Read it with
// threadsOption.
func threadsFlag() ucli.Flag {
	return &ucli.IntFlag{
		Name:        "threads",
		Usage:       fmt.Sprintf("worker threads `T`: 1..%d, or 0 for one per CPU (GOMAXPROCS)", maxThreads()),
		DefaultText: "GOMAXPROCS",
	}
}

// threadsOption returns --threads checked: 0 (the default: GOMAXPROCS) or 1..maxThreads();
// anything else is a usage error saying the range.
func threadsOption(c *ucli.Context) (int, error) {
	n := c.Int("threads")
	if n < 0 || n > maxThreads() {
		return 0, usagef("%s: --threads %d: want 1..%d, or 0 for one per CPU", c.Command.Name, n, maxThreads())
	}
	return n, nil
}

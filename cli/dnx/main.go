// Command dnx inspects and runs DenseNet ONNX models; see package cli for the commands.
package main

import (
	"os"

	"github.com/dnx-ml/dnx/cli"
)

func main() { os.Exit(cli.Main()) }

//go:build ignore

// dwgen writes conv_depthwise_amd64.s, the AVX2 and AVX-512 depthwise-convolution row kernels
// (any kernel size: a loop over a table of taps) and the AVX-512 stride-2 column split, and
// conv_depthwise_decl_amd64.go, their Go declarations. Run it with `go generate` in this folder.
//
// The kernels are described in the kasm IR by package internal/dwasm; this program only prints
// them. The tests run the same descriptions in the kasm interpreter (conv_depthwise_kasm_test.go),
// so what is printed here is what was tested.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/dwasm"
)

func main() {
	out := flag.String("o", "conv_depthwise_amd64.s", "output file")
	decl := flag.String("decl", "conv_depthwise_decl_amd64.go", "output file for the Go declarations")
	flag.Parse()
	err := os.WriteFile(*out, dwasm.AsmFile().Bytes(), 0o644)
	if err == nil {
		err = os.WriteFile(*decl, dwasm.Decl(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dwgen:", err)
		os.Exit(1)
	}
}

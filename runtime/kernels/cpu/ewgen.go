//go:build ignore

// ewgen writes elementwise_ew_amd64.s, the AVX2 and AVX-512 Clip, HardSigmoid, HardSwish and
// binary arithmetic kernels, and elementwise_ew_decl_amd64.go, their Go declarations. Run it
// with `go generate` in this folder.
//
// The kernels are described in the kasm IR by package internal/ewasm; this program only prints
// them. The tests run the same descriptions in the kasm interpreter (elementwise_ew_kasm_test.go),
// so what is printed here is what was tested.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/ewasm"
)

func main() {
	out := flag.String("o", "elementwise_ew_amd64.s", "output file")
	decl := flag.String("decl", "elementwise_ew_decl_amd64.go", "output file for the Go declarations")
	flag.Parse()
	err := os.WriteFile(*out, ewasm.AsmFile().Bytes(), 0o644)
	if err == nil {
		err = os.WriteFile(*decl, ewasm.Decl(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ewgen:", err)
		os.Exit(1)
	}
}

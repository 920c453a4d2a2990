//go:build ignore

// winogen writes conv_winograd_avx512_amd64.s, the AVX-512 Winograd transforms, and
// conv_winograd_avx512_decl_amd64.go, their Go declarations. Run it with `go generate` in this
// folder.
//
// The kernels are described in the kasm IR by package internal/winoasm; this program only prints
// them. The tests run the same descriptions in the kasm interpreter (conv_winograd_kasm_test.go),
// so what is printed here is what was tested.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/winoasm"
)

func main() {
	out := flag.String("o", "conv_winograd_avx512_amd64.s", "output file")
	decl := flag.String("decl", "conv_winograd_avx512_decl_amd64.go", "output file for the Go declarations")
	flag.Parse()
	err := os.WriteFile(*out, winoasm.AVX512File().Bytes(), 0o644)
	if err == nil {
		err = os.WriteFile(*decl, winoasm.AVX512Decl(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "winogen:", err)
		os.Exit(1)
	}
}

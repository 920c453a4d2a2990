//go:build ignore

// poolgen writes pool2d_avx512_amd64.s, the AVX-512 pooling plane kernels, and
// pool2d_avx512_decl_amd64.go, their Go declarations. Run it with `go generate` in this folder.
//
// The kernels are described in the kasm IR by package internal/poolasm; this program only prints
// them. The tests run the same descriptions in the kasm interpreter (pool2d_max_kasm_test.go,
// pool2d_avg_kasm_test.go), so what is printed here is what was tested.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/poolasm"
)

func main() {
	out := flag.String("o", "pool2d_avx512_amd64.s", "output file")
	decl := flag.String("decl", "pool2d_avx512_decl_amd64.go", "output file for the Go declarations")
	flag.Parse()
	err := os.WriteFile(*out, poolasm.AsmFile().Bytes(), 0o644)
	if err == nil {
		err = os.WriteFile(*decl, poolasm.Decl(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "poolgen:", err)
		os.Exit(1)
	}
}

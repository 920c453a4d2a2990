//go:build ignore

// asmgen writes gemm_amd64.s: the AVX2+FMA micro-kernels and B-panel packer for the MR x NR tile
// shape given (it must match MR and NR in gemm.go), and kernels_amd64.go, their Go declarations.
// Run it with `go generate` in this folder.
//
// The kernels are described in the kasm IR by package gemmasm; this program only prints them.
// The tests build the same descriptions and run them in the kasm interpreter, so what is printed
// here is what was tested (see "Adding a kernel" in doc.go).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm/internal/gemmasm"
)

func main() {
	mr := flag.Int("mr", 6, "rows of the micro-tile")
	nr := flag.Int("nr", 16, "columns of the micro-tile (a multiple of 8)")
	out := flag.String("o", "gemm_amd64.s", "output file")
	decl := flag.String("decl", "kernels_amd64.go", "output file for the Go declarations")
	flag.Parse()
	s := gemmasm.Shape{MR: *mr, NR: *nr}
	f, err := s.File()
	if err == nil {
		err = os.WriteFile(*out, f.Bytes(), 0o644)
	}
	if err == nil {
		err = os.WriteFile(*decl, s.Decl(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "asmgen:", err)
		os.Exit(1)
	}
}

//go:build ignore

// asmgen writes gemm_amd64.s: the AVX2+FMA micro-kernels and B-panel packer for the MR x NR tile
// shape given (it must match MR in gemm.go and the NR of the level's Kernels), and
// kernels_amd64.go, their Go declarations; with -lanes 16, the AVX-512 ones
// (gemm_avx512_amd64.s, kernels_avx512_amd64.go).
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
	nr := flag.Int("nr", 16, "columns of the micro-tile (a multiple of -lanes)")
	lanes := flag.Int("lanes", 8, "float32 lanes per vector register: 8 (AVX2, ymm) or 16 (AVX-512, zmm)")
	seg := flag.Int("seg", 32, "lanes of the packer's segment masks (gemm.MaxNR)")
	bcst := flag.Bool("bcst", false, "AVX-512 only: FMAs broadcast A from memory (VFMADD231PS.BCST)")
	out := flag.String("o", "gemm_amd64.s", "output file")
	decl := flag.String("decl", "kernels_amd64.go", "output file for the Go declarations")
	flag.Parse()
	s := gemmasm.Shape{MR: *mr, NR: *nr, Lanes: *lanes, SegLanes: *seg, Bcst: *bcst}
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

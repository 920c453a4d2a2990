package gemm

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// Kernels is the code of one instruction-set level (see package isa): the micro-kernels, the
// in-place micro-kernel, the matrix-vector kernel and the B packer. There is one immutable
// Kernels per level, built at start-up; a Job and a Rows take theirs in Init, so that a caller
// holding the kernels of another level (a test comparing levels) runs that level's code
// throughout, with no global switch.
//
// The fields are called once per register tile or packed panel, never per element, so the
// indirect calls cost nothing measurable.
type Kernels struct {
	level  isa.Level          // the level whose code this is (AVX2 also serves the avx512 level)
	kern   [NR / 8]kernelFunc // kern[i] computes the first 8*(i+1) columns of a tile
	direct directFunc         // kern[NR/8-1] reading B rows in place
	gemv   gemvFunc           // one row panel times a vector
	// packAsm selects packAVX2 over packGo. It is a flag, not a func value: through a func value
	// the segment array that Rows.Pack builds on its stack would escape, one heap allocation
	// per Pack (see packRows).
	packAsm bool
}

// goTable is the portable code, which defines what the others compute.
var goTable = Kernels{level: isa.Generic, kern: goKernels(), direct: kernGoDirect, gemv: gemvGo}

// active is the table of the level this process runs at (isa.Selected), chosen once.
var active = KernelsFor(isa.Selected().Level)

// KernelsFor returns the kernels of level l: those of l.Code(), since a level without kernels of
// its own (avx512, for now) runs those of the level below. It panics when l is above what this
// CPU and build support (isa.Selected().Max): the caller asked for instructions the CPU lacks.
func KernelsFor(l isa.Level) *Kernels {
	if l > isa.Selected().Max {
		panic("gemm: kernels of level " + l.String() + " requested on a " + isa.Selected().Max.String() + " machine")
	}
	if l.Code() == isa.AVX2 && avx2Table != nil {
		return avx2Table
	}
	return &goTable
}

// orActive returns k, or the process's kernels when k is nil.
func orActive(k *Kernels) *Kernels {
	if k == nil {
		return active
	}
	return k
}

// Level returns the level whose code k runs: isa.AVX2 for the avx512 level (no AVX-512
// kernels exist yet).
func (k *Kernels) Level() isa.Level { return k.level }

package gemm

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// Kernels is the code of one instruction-set level (see package isa): the micro-kernels, the
// in-place micro-kernel, the matrix-vector kernel and the B packer, and the B panel width they
// share (NR). There is one immutable Kernels per level, built at start-up; a Job and a Rows take
// theirs in Init, so that a caller holding the kernels of another level (a test comparing
// levels) runs that level's code throughout, with no global switch.
//
// The fields are called once per register tile or packed panel, never per element, so the
// indirect calls cost nothing measurable.
type Kernels struct {
	level  isa.Level  // the level whose code this is
	mr     int        // tile rows: A is packed in panels of mr rows (PackA)
	nr     int        // B panel width: the columns of a packed panel and of a full tile
	step   int        // the lanes of a vector register: edge[i] computes up to step*(i+1) columns
	full   kernelFunc // the micro-kernel of the whole mr x nr tile
	edge   []edgeFunc // nr/step edge kernels, for the last, partial column panel
	direct directFunc // the full kernel reading B rows in place
	gemv   gemvFunc   // one row panel (mr rows) times a vector; nil: the narrowest kernel
	// pack selects the B packer. It is a value, not a func: through a func value the segment
	// array that Rows.Pack builds on its stack would escape, one heap allocation per Pack (see
	// packRows).
	pack packer
	// notes says which of this level's kernels are another level's code ("" when none).
	notes string
}

// packer names a B packer (see packRows).
type packer uint8

const (
	packerGo packer = iota
	packerAVX2
	packerAVX512
)

// goTable is the portable code, which defines what the others compute. Its panel width is that
// of the avx2 kernels, so that the two levels split products identically.
var goTable = Kernels{level: isa.Generic, mr: 4, nr: 24, step: 8, full: goFull(4, 24), edge: goEdges(4, 24, 8), direct: kernGoDirect(4, 24), gemv: gemvGo}

// active is the table of the level this process runs at (isa.Selected), chosen once.
var active = KernelsFor(isa.Selected().Level)

// KernelsFor returns the kernels of level l: the highest this build has at or below l. It
// panics when l is above what this CPU and build support (isa.Selected().Max): the caller asked
// for instructions the CPU lacks.
func KernelsFor(l isa.Level) *Kernels { return isa.Pick("gemm", l, &goTable, avx2Table, avx512Table) }

// orActive returns k, or the process's kernels when k is nil.
func orActive(k *Kernels) *Kernels {
	if k == nil {
		return active
	}
	return k
}

// Level returns the level whose code k runs.
func (k *Kernels) Level() isa.Level { return k.level }

// MR returns the rows of k's register tile: the rows per panel of the A that a Job run with k
// multiplies (PackA packs for it).
func (k *Kernels) MR() int { return k.mr }

// NR returns the width of k's B panels: the stride of the panels a BPanel packs for a Job run
// with k (BPanel.PackB's width) and of the rows Rows.Pack writes.
func (k *Kernels) NR() int { return k.nr }

// Notes says which kernels of k are those of a lower level ("" when all are k's own; every
// level's gemm kernels are now its own).
func (k *Kernels) Notes() string { return k.notes }

// Package membudget bounds the memory dnx allocates for tensors whose size a model or an input
// decides: initializers, constant folding (ConstantOfShape, Expand, Pad, Tile, ...), the values of
// the reference interpreter, planned activation arenas and packed weights, training arenas and
// decoded images. Each is sized from shapes first and checked against a Budget before anything
// is allocated, so that a 100-byte model declaring a [65536, 65536] constant, or a small PNG
// declaring 10,000 x 10,000 16-bit pixels, is refused with one line naming what asked for how
// much, instead of taking the machine's memory.
//
// A Budget is a plain value (no global state): the zero value means Default, a fraction of the
// machine's physical memory (or of the cgroup's limit, when lower).
//
//	b := membudget.New(2 << 30)                       // 2 GiB
//	if err := b.Check("node \"c\" (ConstantOfShape) output", tensor.Float32, shape); err != nil {
//		return err // wraps membudget.ErrOverBudget
//	}
//
// ParseSize reads the --max-memory flag's values ("4GiB", "512M", "75%").
package membudget

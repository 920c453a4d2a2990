package ops

import (
	"fmt"
	"math/bits"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// InferChecked runs op.Infer and checks what it returns: every rank at most tensor.MaxRank, and the element count of the known dims of every output at most
// tensor.MaxElements, multiplied without overflow. It is the one place where the shape arithmetic
// of every operator (a Conv's padded size, a Pad's or Tile's output, a Reshape's inferred dim) is
// checked, whichever operator did it: callers (graph import, the planner, the reference
// interpreter, the trainer) name the node in the error.
func InferChecked(op Op, in []*Arg) ([]Type, error) {
	types, err := op.Infer(in)
	if err != nil {
		return nil, err
	}
	for i, t := range types {
		if err := checkType(t); err != nil {
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
	}
	return types, nil
}

// checkType validates the known part of a type's shape.
func checkType(t Type) error {
	if t.Unranked {
		return nil
	}
	if len(t.Shape) > tensor.MaxRank {
		return fmt.Errorf("%w: rank %d exceeds the limit of %d", ErrShape, len(t.Shape), tensor.MaxRank)
	}
	n := uint64(1)
	for _, d := range t.Shape {
		if !d.IsKnown() {
			continue
		}
		hi, lo := bits.Mul64(n, uint64(d.Value))
		if hi != 0 || lo > tensor.MaxElements {
			return fmt.Errorf("%w: %s has more than %d elements", ErrShape, t, uint64(tensor.MaxElements))
		}
		n = lo
	}
	return nil
}

package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Checked runs kernel k of op on in after sizing its outputs: the op's shape inference on the
// actual inputs (their values included, so ConstantOfShape, Expand, Tile, Pad, Reshape and the
// like give their exact output shapes) must fit the budget, output by output, before the kernel
// allocates anything. An output whose size shape inference cannot tell even with every input
// value known (a data-dependent size, such as NonZero's) is checked once the kernel returns:
// such outputs are no larger than a small multiple of their inputs, which were checked when they
// were made. names (may be nil) names the outputs in the errors.
func Checked(b membudget.Budget, k Kernel, op ops.Op, in []*tensor.Tensor, nOut int, names []string) ([]*tensor.Tensor, error) {
	what := func(i int) string {
		if i < len(names) && names[i] != "" {
			return fmt.Sprintf("output %q", names[i])
		}
		return fmt.Sprintf("output %d", i)
	}
	args := make([]*ops.Arg, len(in))
	for i, t := range in {
		if t != nil {
			args[i] = &ops.Arg{Type: ops.TypeOf(t), Const: t}
		}
	}
	types, err := ops.InferChecked(op, args)
	if err != nil {
		return nil, err
	}
	unsized := false
	for i := 0; i < nOut && i < len(types); i++ {
		s, ok := types[i].Static()
		if !ok {
			unsized = true
			continue
		}
		if err := b.Check(what(i), types[i].DType, s); err != nil {
			return nil, err
		}
	}
	out, err := k(op, in, nOut)
	if err != nil || !unsized {
		return out, err
	}
	for i, t := range out {
		if t != nil {
			if err := b.Check(what(i), t.DType, t.Shape); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

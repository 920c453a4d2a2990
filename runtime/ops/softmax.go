package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Softmax is Softmax or LogSoftmax (Log set) over one group of elements at a time:
//
//	softmax(x)_i    = exp(x_i - m) / sum_j exp(x_j - m)
//	logsoftmax(x)_i = x_i - m - log(sum_j exp(x_j - m))
//
// with m = max_j x_j, which changes nothing mathematically and keeps exp from overflowing.
//
// Opsets 1 and 11 coerce X to 2-D at Axis (default 1): a group is one row of
// [prod(dims[:axis]), prod(dims[axis:])], so the sum runs over all trailing dims together.
// From opset 13 a group is the elements along the single dim Axis (default -1).
type Softmax struct {
	Log bool
	// Axis may be negative (counted from the end) and is resolved against the input's rank.
	Axis int
	// Coerce2D is set for opset < 13.
	Coerce2D bool
}

// OpType returns "Softmax" or "LogSoftmax".
func (o *Softmax) OpType() string {
	if o.Log {
		return "LogSoftmax"
	}
	return "Softmax"
}

func decodeSoftmax(log bool) func(n *Node, since int) (Op, error) {
	return func(n *Node, since int) (Op, error) {
		if err := CheckArity(n, 1, 1, 1, 1); err != nil {
			return nil, err
		}
		o := &Softmax{Log: log, Coerce2D: since < 13}
		def := int64(-1)
		if o.Coerce2D {
			def = 1
		}
		axis, err := n.Attrs.Int("axis", def)
		if err != nil {
			return nil, err
		}
		if axis < -tensor.MaxRank || axis > tensor.MaxRank {
			return nil, fmt.Errorf("%w: %s axis %d is out of range", ErrAttr, o.OpType(), axis)
		}
		o.Axis = int(axis)
		return o, nil
	}
}

// Groups splits a shape into the loop extents of the normalisation: outer groups, n elements per
// group and the stride inner between consecutive elements of a group (so element k of group
// (o, i) is at flat index (o*n + k)*inner + i). In the 2-D coercion inner is 1.
func (o *Softmax) Groups(shape tensor.Shape) (outer, n, inner int, err error) {
	r := len(shape)
	extra := 0
	if o.Coerce2D {
		extra = 1 // axis == rank gives [N, 1]: every element is its own group
	}
	axis, err := elementwiseAxis(o.OpType(), int64(o.Axis), r, extra)
	if err != nil {
		return 0, 0, 0, err
	}
	outer, n, inner = 1, 1, 1
	for i, d := range shape {
		switch {
		case i < axis:
			outer *= d
		case i == axis || o.Coerce2D:
			n *= d
		default:
			inner *= d
		}
	}
	return outer, n, inner, nil
}

// Infer checks the axis against X's rank and returns X's type.
func (o *Softmax) Infer(in []*Arg) ([]Type, error) {
	x, err := ewInputType(o.OpType(), in, 0, ewFloatClass)
	if err != nil {
		return nil, err
	}
	if !x.Unranked {
		extra := 0
		if o.Coerce2D {
			extra = 1
		}
		if _, err := elementwiseAxis(o.OpType(), int64(o.Axis), len(x.Shape), extra); err != nil {
			return nil, err
		}
	}
	return []Type{x}, nil
}

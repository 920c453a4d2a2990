package ops

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Shape returns the dims of its input as a 1-D int64 tensor, restricted from opset 15 to the
// dims [Start, End): negative values have the rank added, then both are clamped to [0, rank]; an
// empty range gives an empty tensor.
type Shape struct {
	// Start is the first dim to report (default 0).
	Start int64
	// End is one past the last dim to report (default: the rank, written as math.MaxInt64).
	End int64
}

// OpType returns "Shape".
func (*Shape) OpType() string { return "Shape" }

func decodeShape(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	s := &Shape{End: math.MaxInt64}
	if n.Opset >= 15 {
		var err error
		if s.Start, err = n.Attrs.Int("start", 0); err != nil {
			return nil, err
		}
		if s.End, err = n.Attrs.Int("end", math.MaxInt64); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Range returns the clamped [lo, hi) range of dims reported for an input of the given rank; hi is
// at least lo.
func (s *Shape) Range(rank int) (lo, hi int) {
	clamp := func(v int64) int {
		if v < 0 {
			v += int64(rank)
		}
		return int(min(max(v, 0), int64(rank)))
	}
	lo, hi = clamp(s.Start), clamp(s.End)
	return lo, max(hi, lo)
}

// Infer gives int64[hi-lo] for a ranked input, int64[?] otherwise.
func (s *Shape) Infer(in []*Arg) ([]Type, error) {
	x := inputArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: Shape needs an input", ErrArity)
	}
	if x.Type.Unranked {
		return []Type{{DType: tensor.Int64, Shape: []Dim{Unknown()}}}, nil
	}
	lo, hi := s.Range(x.Type.Rank())
	return []Type{{DType: tensor.Int64, Shape: []Dim{Known(int64(hi - lo))}}}, nil
}

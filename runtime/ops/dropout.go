package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Dropout zeroes each element of X with probability ratio during training and scales the kept
// ones by 1/(1-ratio), so that the expected value is unchanged; outside training Y = X. The
// optional second output is the mask of kept elements.
//
// The versions differ in where the mode and ratio come from:
//   - opset 1 and 6: attributes is_test (default 0, training) and ratio (0.5);
//   - opset 7 to 11: attribute ratio; the op always runs in inference mode here, since the spec
//     leaves the mode to the runtime and dnx runs models for inference;
//   - opset 12 and later: optional inputs 1 (ratio, a float scalar, default 0.5) and
//     2 (training_mode, a bool scalar, default false), and attribute seed.
//
// The mask has X's type (1 kept, 0 dropped) before opset 10 and is bool from opset 10.
type Dropout struct {
	// Ratio is the ratio attribute (opset < 12), or the default used when input 1 is absent.
	Ratio float32
	// Training is the mode for opset < 12, or the default used when input 2 is absent.
	Training bool
	// Seed seeds the kernel's generator in training mode; HasSeed is false when the attribute
	// is absent, in which case kernels use seed 0 so that runs are reproducible.
	Seed    int64
	HasSeed bool
	// MaskBool is true from opset 10, when the mask output is bool rather than X's type.
	MaskBool bool
}

// OpType returns "Dropout".
func (*Dropout) OpType() string { return "Dropout" }

func decodeDropout(n *Node, since int) (Op, error) {
	maxIn := 1
	if since >= 12 {
		maxIn = 3
	}
	if err := CheckArity(n, 1, maxIn, 1, 2); err != nil {
		return nil, err
	}
	o := &Dropout{Ratio: 0.5, MaskBool: since >= 10}
	if since < 12 {
		r, err := n.Attrs.Float("ratio", 0.5)
		if err != nil {
			return nil, err
		}
		if !(r >= 0 && r <= 1) {
			return nil, fmt.Errorf("%w: Dropout ratio must be in [0, 1], got %g", ErrAttr, r)
		}
		o.Ratio = r
	}
	if since < 7 {
		isTest, err := n.Attrs.Int("is_test", 0)
		if err != nil {
			return nil, err
		}
		o.Training = isTest == 0
	}
	if since >= 12 && n.Attrs.Has("seed") {
		s, err := n.Attrs.Int("seed", 0)
		if err != nil {
			return nil, err
		}
		o.Seed, o.HasSeed = s, true
	}
	return o, nil
}

// Infer returns X's type for Y and, for the mask, X's shape with bool (opset 10+) or X's type.
func (o *Dropout) Infer(in []*Arg) ([]Type, error) {
	x, err := ewInputType("Dropout", in, 0, ewFloatClass)
	if err != nil {
		return nil, err
	}
	if r, err := ewOptionalInput("Dropout", in, 1, ewFloatClass); err != nil {
		return nil, err
	} else if r != nil {
		if err := ewCheckScalar("Dropout", 1, r.Type); err != nil {
			return nil, err
		}
	}
	if t, err := ewOptionalInput("Dropout", in, 2, ewBoolClass); err != nil {
		return nil, err
	} else if t != nil {
		if err := ewCheckScalar("Dropout", 2, t.Type); err != nil {
			return nil, err
		}
	}
	mask := x
	if o.MaskBool {
		mask.DType = tensor.Bool
	}
	return []Type{x, mask}, nil
}

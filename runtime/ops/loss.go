package ops

import "fmt"

// LossReduction is how a loss operator combines its per-sample losses.
type LossReduction string

// The reductions of SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss.
const (
	// ReductionNone returns the per-sample losses, shaped like the labels.
	ReductionNone LossReduction = "none"
	// ReductionSum returns their sum.
	ReductionSum LossReduction = "sum"
	// ReductionMean returns sum_i w_i*l_i / sum_i w_i over the samples that are not ignored,
	// with w_i = weight[label_i], or 1 when there are no weights.
	ReductionMean LossReduction = "mean"
)

// NegativeLogLikelihoodLoss is, for input [N, C, d1..dk] of log-probabilities and target
// [N, d1..dk] of class indices c in [0, C):
//
//	loss[n, d] = -input[n, c, d] * w(c)    with c = target[n, d],
//
// w(c) = weight[c] when the optional input weight [C] is given and 1 otherwise, and
// loss[n, d] = 0 where c == IgnoreIndex (HasIgnoreIndex). Reduction (default mean) then combines
// them; see LossReduction.
type NegativeLogLikelihoodLoss struct {
	Reduction      LossReduction
	IgnoreIndex    int64
	HasIgnoreIndex bool
}

// OpType returns "NegativeLogLikelihoodLoss".
func (*NegativeLogLikelihoodLoss) OpType() string { return "NegativeLogLikelihoodLoss" }

// SoftmaxCrossEntropyLoss is NegativeLogLikelihoodLoss applied to log_prob = LogSoftmax(scores)
// over the class axis 1. Its optional second output is log_prob itself.
type SoftmaxCrossEntropyLoss struct {
	Reduction      LossReduction
	IgnoreIndex    int64
	HasIgnoreIndex bool
}

// OpType returns "SoftmaxCrossEntropyLoss".
func (*SoftmaxCrossEntropyLoss) OpType() string { return "SoftmaxCrossEntropyLoss" }

// decodeLossAttrs reads the attributes both loss operators share.
func decodeLossAttrs(n *Node) (LossReduction, int64, bool, error) {
	r, err := n.Attrs.String("reduction", "mean")
	if err != nil {
		return "", 0, false, err
	}
	switch LossReduction(r) {
	case ReductionNone, ReductionSum, ReductionMean:
	default:
		return "", 0, false, fmt.Errorf("%w: %s reduction %q: want none, sum or mean", ErrAttr, n.OpType, r)
	}
	ii, err := n.Attrs.Int("ignore_index", 0)
	if err != nil {
		return "", 0, false, err
	}
	return LossReduction(r), ii, n.Attrs.Has("ignore_index"), nil
}

func decodeNegativeLogLikelihoodLoss(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 2, 3, 1, 1); err != nil {
		return nil, err
	}
	r, ii, has, err := decodeLossAttrs(n)
	if err != nil {
		return nil, err
	}
	return &NegativeLogLikelihoodLoss{Reduction: r, IgnoreIndex: ii, HasIgnoreIndex: has}, nil
}

func decodeSoftmaxCrossEntropyLoss(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 2, 3, 1, 2); err != nil {
		return nil, err
	}
	r, ii, has, err := decodeLossAttrs(n)
	if err != nil {
		return nil, err
	}
	return &SoftmaxCrossEntropyLoss{Reduction: r, IgnoreIndex: ii, HasIgnoreIndex: has}, nil
}

// Infer returns the loss type: the target's shape for ReductionNone, a scalar otherwise.
func (o *NegativeLogLikelihoodLoss) Infer(in []*Arg) ([]Type, error) {
	loss, _, err := inferLoss(o.OpType(), o.Reduction, in)
	if err != nil {
		return nil, err
	}
	return []Type{loss}, nil
}

// Infer returns the loss type (as NegativeLogLikelihoodLoss) and log_prob's, the scores' type.
func (o *SoftmaxCrossEntropyLoss) Infer(in []*Arg) ([]Type, error) {
	loss, scores, err := inferLoss(o.OpType(), o.Reduction, in)
	if err != nil {
		return nil, err
	}
	return []Type{loss, scores}, nil
}

// inferLoss checks input [N, C, d...], target [N, d...] and weight [C] against each other and
// returns the loss type and the input type.
func inferLoss(op string, red LossReduction, in []*Arg) (Type, Type, error) {
	x, err := ewInputType(op, in, 0, ewFloatClass)
	if err != nil {
		return Type{}, Type{}, err
	}
	t, err := ewInputType(op, in, 1, ewIndexClass)
	if err != nil {
		return Type{}, Type{}, err
	}
	w, err := ewOptionalInput(op, in, 2, ewFloatClass)
	if err != nil {
		return Type{}, Type{}, err
	}
	if !x.Unranked && len(x.Shape) < 2 {
		return Type{}, Type{}, fmt.Errorf("%w: %s input must have rank >= 2 ([N, C, ...]), got %s", ErrShape, op, x)
	}
	if w != nil {
		if err := ewSameDType(op, 0, 2, x.DType, w.Type.DType); err != nil {
			return Type{}, Type{}, err
		}
		if !w.Type.Unranked {
			if len(w.Type.Shape) != 1 {
				return Type{}, Type{}, fmt.Errorf("%w: %s weight must be [C], got %s", ErrShape, op, w.Type)
			}
			if !x.Unranked && x.Shape[1].IsKnown() && w.Type.Shape[0].IsKnown() && x.Shape[1].Value != w.Type.Shape[0].Value {
				return Type{}, Type{}, fmt.Errorf("%w: %s weight %s does not match %d classes", ErrShape, op, w.Type, x.Shape[1].Value)
			}
		}
	}
	loss := Type{DType: x.DType, Shape: []Dim{}}
	if red != ReductionNone {
		return loss, x, nil
	}
	switch {
	case x.Unranked && t.Unranked:
		loss = Type{DType: x.DType, Unranked: true}
	case t.Unranked: // target dims are N, d1.. of the input
		loss.Shape = append([]Dim{x.Shape[0]}, x.Shape[2:]...)
	case x.Unranked:
		loss.Shape = append(loss.Shape, t.Shape...)
	default:
		if len(t.Shape) != len(x.Shape)-1 {
			return Type{}, Type{}, fmt.Errorf("%w: %s target %s does not match input %s", ErrShape, op, t, x)
		}
		want := append([]Dim{x.Shape[0]}, x.Shape[2:]...)
		for i, d := range t.Shape {
			e := want[i]
			switch {
			case d.IsKnown() && e.IsKnown() && d.Value != e.Value:
				return Type{}, Type{}, fmt.Errorf("%w: %s target %s does not match input %s", ErrShape, op, t, x)
			case d.IsKnown() || !e.IsKnown() && d.Param != "":
				loss.Shape = append(loss.Shape, d)
			default:
				loss.Shape = append(loss.Shape, e)
			}
		}
	}
	return loss, x, nil
}

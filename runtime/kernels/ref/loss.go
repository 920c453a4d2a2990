package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// nllLossKernel runs NegativeLogLikelihoodLoss. With input X [N, C, d...] viewed as [N, C, D],
// target t [N, d...] viewed as [N, D] and w(c) = weight[c] (1 without weights):
//
//	l[n, d] = -X[n, t[n,d], d] * w(t[n,d])    (0 where t[n,d] == ignore_index)
//
// reduction none returns l shaped like t; sum returns sum l; mean returns
// sum l / sum w(t[n,d]) over the elements not ignored (NaN when every element is ignored).
// Sums are in float64, rounded once. A label outside [0, C) that is not ignored is an error.
func nllLossKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.NegativeLogLikelihoodLoss](op)
	if err != nil {
		return nil, err
	}
	if err := ewRequire(o.OpType(), in, 2); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs(o.OpType(), nOut, 1); err != nil {
		return nil, err
	}
	x := in[0]
	v, err := ewFloat64s(o.OpType(), 0, x)
	if err != nil {
		return nil, err
	}
	loss, err := ewNLL(o.OpType(), v, x, in[1], ewOptional(in, 2), o.Reduction, o.IgnoreIndex, o.HasIgnoreIndex)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{loss}, nil
}

// softmaxCrossEntropyLossKernel runs SoftmaxCrossEntropyLoss: log_prob = LogSoftmax(scores)
// over axis 1 (in float64, see softmaxKernel), then the NegativeLogLikelihoodLoss of log_prob
// (see nllLossKernel). The optional second output is log_prob, rounded to the scores' type.
func softmaxCrossEntropyLossKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.SoftmaxCrossEntropyLoss](op)
	if err != nil {
		return nil, err
	}
	if err := ewRequire(o.OpType(), in, 2); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs(o.OpType(), nOut, 2); err != nil {
		return nil, err
	}
	x := in[0]
	v, err := ewFloat64s(o.OpType(), 0, x)
	if err != nil {
		return nil, err
	}
	if x.Rank() < 2 {
		return nil, fmt.Errorf("ref: %s: %w: scores must be [N, C, ...], got shape %v", o.OpType(), ops.ErrShape, x.Shape)
	}
	ewSoftmaxGroups(v, x.Shape[0], x.Shape[1], x.Len()/max(1, x.Shape[0]*x.Shape[1]), true)
	loss, err := ewNLL(o.OpType(), v, x, in[1], ewOptional(in, 2), o.Reduction, o.IgnoreIndex, o.HasIgnoreIndex)
	if err != nil {
		return nil, err
	}
	outs := []*tensor.Tensor{loss}
	if nOut == 2 {
		outs = append(outs, ewFromFloat64s(x.DType, x.Shape, v))
	}
	return outs, nil
}

// ewNLL computes the negative log-likelihood loss of the log-probabilities logp (x's elements,
// possibly transformed) against target and the optional weight, and returns it in x's type.
func ewNLL(op string, logp []float64, x, target, weight *tensor.Tensor, red ops.LossReduction, ignore int64, hasIgnore bool) (*tensor.Tensor, error) {
	if x.Rank() < 2 {
		return nil, fmt.Errorf("ref: %s: %w: input must be [N, C, ...], got shape %v", op, ops.ErrShape, x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	want := append(tensor.Shape{N}, x.Shape[2:]...)
	if !target.Shape.Equal(want) {
		return nil, fmt.Errorf("ref: %s: %w: target shape %v, want %v for input %v", op, ops.ErrShape, target.Shape, want, x.Shape)
	}
	labels, err := target.Int64s()
	if err != nil {
		return nil, fmt.Errorf("ref: %s: %w: target: %v", op, ops.ErrShape, err)
	}
	var w []float64
	if weight != nil {
		if weight.DType != x.DType || !weight.Shape.Equal(tensor.Shape{C}) {
			return nil, fmt.Errorf("ref: %s: %w: weight is %s%v, want %s[%d]", op, ops.ErrShape, weight.DType, weight.Shape, x.DType, C)
		}
		w = weight.Float64s()
	}
	D := 1
	for _, d := range x.Shape[2:] {
		D *= d
	}
	loss := make([]float64, len(labels))
	sum, wsum := 0.0, 0.0
	for n := 0; n < N; n++ {
		for d := 0; d < D; d++ {
			i := n*D + d
			c := labels[i]
			if hasIgnore && c == ignore {
				continue
			}
			if c < 0 || c >= int64(C) {
				return nil, fmt.Errorf("ref: %s: %w: label %d at element %d is outside [0, %d)", op, ops.ErrShape, c, i, C)
			}
			wc := 1.0
			if w != nil {
				wc = w[c]
			}
			loss[i] = -logp[(n*C+int(c))*D+d] * wc
			sum += loss[i]
			wsum += wc
		}
	}
	switch red {
	case ops.ReductionNone:
		return ewFromFloat64s(x.DType, target.Shape, loss), nil
	case ops.ReductionSum:
		return ewFromFloat64s(x.DType, tensor.Shape{}, []float64{sum}), nil
	case ops.ReductionMean:
		return ewFromFloat64s(x.DType, tensor.Shape{}, []float64{sum / wsum}), nil
	}
	return nil, fmt.Errorf("ref: %s: %w: unknown reduction %q", op, ops.ErrAttr, red)
}

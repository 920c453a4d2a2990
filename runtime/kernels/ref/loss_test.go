package ref

import (
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestNegativeLogLikelihoodLossKernel(t *testing.T) {
	nll := func(r ops.LossReduction) *ops.NegativeLogLikelihoodLoss {
		return &ops.NegativeLogLikelihoodLoss{Reduction: r}
	}
	nllII := func(r ops.LossReduction, ii int64) *ops.NegativeLogLikelihoodLoss {
		return &ops.NegativeLogLikelihoodLoss{Reduction: r, IgnoreIndex: ii, HasIgnoreIndex: true}
	}
	x := ewF32(ewS(2, 3), -1, -2, -3, -4, -5, -6)
	target := ewI64(ewS(2), 0, 2)
	w := ewF32(ewS(3), 0.5, 1, 2)
	ewRunCases(t, []ewCase{
		{name: "none", kernel: nllLossKernel, op: nll(ops.ReductionNone),
			in: []*tensor.Tensor{x, target}, want: []*tensor.Tensor{ewF32(ewS(2), 1, 6)}},
		{name: "sum", kernel: nllLossKernel, op: nll(ops.ReductionSum),
			in: []*tensor.Tensor{x, target}, want: []*tensor.Tensor{ewF32(ewS(), 7)}},
		{name: "mean", kernel: nllLossKernel, op: nll(ops.ReductionMean),
			in: []*tensor.Tensor{x, target}, want: []*tensor.Tensor{ewF32(ewS(), 3.5)}},
		{name: "none weights", kernel: nllLossKernel, op: nll(ops.ReductionNone),
			in: []*tensor.Tensor{x, target, w}, want: []*tensor.Tensor{ewF32(ewS(2), 0.5, 12)}},
		{name: "sum weights", kernel: nllLossKernel, op: nll(ops.ReductionSum),
			in: []*tensor.Tensor{x, target, w}, want: []*tensor.Tensor{ewF32(ewS(), 12.5)}},
		{name: "mean weights divides by weight sum", kernel: nllLossKernel, op: nll(ops.ReductionMean),
			in: []*tensor.Tensor{x, target, w}, want: []*tensor.Tensor{ewF32(ewS(), 5)}},
		{name: "mean ignore counts the rest", kernel: nllLossKernel, op: nllII(ops.ReductionMean, 2),
			in: []*tensor.Tensor{x, target}, want: []*tensor.Tensor{ewF32(ewS(), 1)}},
		{name: "mean weights ignore", kernel: nllLossKernel, op: nllII(ops.ReductionMean, 0),
			in: []*tensor.Tensor{x, target, w}, want: []*tensor.Tensor{ewF32(ewS(), 6)}},
		{name: "none negative ignore index", kernel: nllLossKernel, op: nllII(ops.ReductionNone, -1),
			in: []*tensor.Tensor{x, ewI32(ewS(2), -1, 1)}, want: []*tensor.Tensor{ewF32(ewS(2), 0, 5)}},
		{name: "all ignored mean is NaN", kernel: nllLossKernel, op: nllII(ops.ReductionMean, 1),
			in: []*tensor.Tensor{x, ewI64(ewS(2), 1, 1)}, want: []*tensor.Tensor{ewF32(ewS(), float32(math.NaN()))}},
		{name: "spatial dims", kernel: nllLossKernel, op: nll(ops.ReductionNone),
			in:   []*tensor.Tensor{ewF64(ewS(1, 2, 2), -1, -2, -3, -4), ewI64(ewS(1, 2), 1, 0)},
			want: []*tensor.Tensor{ewF64(ewS(1, 2), 3, 2)}},
		{name: "label out of range", kernel: nllLossKernel, op: nll(ops.ReductionSum),
			in: []*tensor.Tensor{x, ewI64(ewS(2), 0, 3)}, wantErr: ops.ErrShape},
		{name: "negative label not ignored", kernel: nllLossKernel, op: nllII(ops.ReductionSum, 5),
			in: []*tensor.Tensor{x, ewI64(ewS(2), 0, -1)}, wantErr: ops.ErrShape},
		{name: "target shape", kernel: nllLossKernel, op: nll(ops.ReductionSum),
			in: []*tensor.Tensor{x, ewI64(ewS(3), 0, 0, 0)}, wantErr: ops.ErrShape},
		{name: "float target", kernel: nllLossKernel, op: nll(ops.ReductionSum),
			in: []*tensor.Tensor{x, ewF32(ewS(2), 0, 0)}, wantErr: ops.ErrShape},
		{name: "weight shape", kernel: nllLossKernel, op: nll(ops.ReductionSum),
			in: []*tensor.Tensor{x, target, ewF32(ewS(2), 1, 1)}, wantErr: ops.ErrShape},
		{name: "rank 1 input", kernel: nllLossKernel, op: nll(ops.ReductionSum),
			in: []*tensor.Tensor{ewF32(ewS(3), 1, 2, 3), ewI64(ewS(), 0)}, wantErr: ops.ErrShape},
	})
}

func TestSoftmaxCrossEntropyLossKernel(t *testing.T) {
	sce := func(r ops.LossReduction) *ops.SoftmaxCrossEntropyLoss {
		return &ops.SoftmaxCrossEntropyLoss{Reduction: r}
	}
	const rtol, atol = 1e-6, 1e-7
	ln2 := float32(math.Ln2)
	// Along the class axis the pairs (0, 2) and (1, 3) give log-softmax (-a, -b) with
	// a = log(1+e^2) and b = a-2.
	a, b := float32(2.12692801), float32(0.12692801)
	ewRunCases(t, []ewCase{
		{name: "uniform scores", kernel: softmaxCrossEntropyLossKernel, op: sce(ops.ReductionMean), nOut: 2,
			in:   []*tensor.Tensor{ewF32(ewS(1, 2), 0, 0), ewI64(ewS(1), 1)},
			want: []*tensor.Tensor{ewF32(ewS(), ln2), ewF32(ewS(1, 2), -ln2, -ln2)}, rtol: rtol, atol: atol},
		{name: "none", kernel: softmaxCrossEntropyLossKernel, op: sce(ops.ReductionNone),
			in:   []*tensor.Tensor{ewF32(ewS(2, 3), 1, 2, 3, 1, 2, 3), ewI64(ewS(2), 2, 0)},
			want: []*tensor.Tensor{ewF32(ewS(2), 0.40760596, 2.40760596)}, rtol: rtol, atol: atol},
		{name: "spatial sum with log_prob", kernel: softmaxCrossEntropyLossKernel, op: sce(ops.ReductionSum), nOut: 2,
			in:   []*tensor.Tensor{ewF32(ewS(1, 2, 2), 0, 1, 2, 3), ewI64(ewS(1, 2), 1, 0)},
			want: []*tensor.Tensor{ewF32(ewS(), a+b), ewF32(ewS(1, 2, 2), -a, -a, -b, -b)}, rtol: rtol, atol: atol},
		{name: "weights and ignore index", kernel: softmaxCrossEntropyLossKernel,
			op: &ops.SoftmaxCrossEntropyLoss{Reduction: ops.ReductionMean, IgnoreIndex: 0, HasIgnoreIndex: true},
			in: []*tensor.Tensor{ewF64(ewS(3, 2), 0, 0, 0, 0, 5, 5), ewI64(ewS(3), 1, 0, 1), ewF64(ewS(2), 1, 3)},
			// both kept samples have loss ln 2 and weight 3
			want: []*tensor.Tensor{ewF64(ewS(), math.Ln2)}, rtol: 1e-12},
		{name: "float16", kernel: softmaxCrossEntropyLossKernel, op: sce(ops.ReductionSum),
			in:   []*tensor.Tensor{ewT16(ewS(1, 2), 0, 0), ewI32(ewS(1), 0)},
			want: []*tensor.Tensor{ewT16(ewS(), ln2)}},
		{name: "three outputs", kernel: softmaxCrossEntropyLossKernel, op: sce(ops.ReductionSum), nOut: 3,
			in: []*tensor.Tensor{ewF32(ewS(1, 2), 0, 0), ewI64(ewS(1), 0)}, wantErr: ops.ErrArity},
		{name: "rank 1 scores", kernel: softmaxCrossEntropyLossKernel, op: sce(ops.ReductionSum),
			in: []*tensor.Tensor{ewF32(ewS(2), 0, 0), ewI64(ewS(), 0)}, wantErr: ops.ErrShape},
	})
}

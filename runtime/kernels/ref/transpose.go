package ref

import (
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// transposeKernel permutes the dims: out.shape[i] = in.shape[perm[i]] and
// out[i_0, ..., i_(n-1)] = in[j] with j[perm[k]] = i_k. It is one strided copy that walks the
// output in order and the input with the permuted strides instride[perm[k]].
func transposeKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	t, err := opAs[*ops.Transpose](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Transpose", in, 0)
	if err != nil {
		return nil, err
	}
	perm, err := t.Resolve(x.Rank())
	if err != nil {
		return nil, err
	}
	shape := make(tensor.Shape, len(perm))
	inStr := x.Shape.Strides()
	sStr := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = x.Shape[p]
		sStr[i] = inStr[p]
	}
	out, err := mvNew(x.DType, shape)
	if err != nil {
		return nil, err
	}
	if err := mvCopy(out, x, mvBlock{shape: shape, dStr: shape.Strides(), sStr: sStr}); err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

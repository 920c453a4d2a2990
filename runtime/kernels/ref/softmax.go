package ref

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// softmaxKernel runs Softmax and LogSoftmax on float types. For each group x of elements (see
// ops.Softmax.Groups: one row of the 2-D coercion before opset 13, one line along the axis
// after), with m = max_j x_j and s = sum_j exp(x_j - m):
//
//	softmax(x)_i    = exp(x_i - m) / s
//	logsoftmax(x)_i = x_i - m - log(s)
//
// Computation is in float64, rounded once to the input's type.
func softmaxKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.Softmax](op)
	if err != nil {
		return nil, err
	}
	name := o.OpType()
	if err := ewRequire(name, in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs(name, nOut, 1); err != nil {
		return nil, err
	}
	x := in[0]
	v, err := ewFloat64s(name, 0, x)
	if err != nil {
		return nil, err
	}
	outer, n, inner, err := o.Groups(x.Shape)
	if err != nil {
		return nil, fmt.Errorf("ref: %s input %v: %w", name, x.Shape, err)
	}
	ewSoftmaxGroups(v, outer, n, inner, o.Log)
	return []*tensor.Tensor{ewFromFloat64s(x.DType, x.Shape, v)}, nil
}

// ewSoftmaxGroups replaces v, viewed as [outer, n, inner], by its softmax (or log-softmax) over
// the middle dim, in place.
func ewSoftmaxGroups(v []float64, outer, n, inner int, log bool) {
	for o := 0; o < outer; o++ {
		base := o * n * inner
		for i := 0; i < inner; i++ {
			m := math.Inf(-1)
			for k := 0; k < n; k++ {
				m = max(m, v[base+k*inner+i])
			}
			if math.IsInf(m, -1) {
				m = 0 // all -Inf: exp gives 0s and s = 0, as the formula does without the shift
			}
			s := 0.0
			for k := 0; k < n; k++ {
				s += math.Exp(v[base+k*inner+i] - m)
			}
			ls := math.Log(s)
			for k := 0; k < n; k++ {
				p := base + k*inner + i
				if log {
					v[p] = v[p] - m - ls
				} else {
					v[p] = math.Exp(v[p]-m) / s
				}
			}
		}
	}
}

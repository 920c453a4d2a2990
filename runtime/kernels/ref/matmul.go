package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// mmNum is the set of element types the matrix kernels compute in directly. Float16 and bfloat16
// are widened to float32, computed, and rounded back.
type mmNum interface {
	float32 | float64 | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
}

// mmAccumulate adds the product of row-major a [m,k] and b [k,n] to c [m,n]:
// c[i,j] += sum_p a[i,p] * b[p,j]. The loops run in i-p-j order, so the innermost loop streams
// through contiguous rows of b and c. Integer products wrap around like the element type.
func mmAccumulate[T mmNum](c, a, b []T, m, k, n int) {
	for i := 0; i < m; i++ {
		ci := c[i*n : i*n+n]
		ai := a[i*k : i*k+k]
		for p, av := range ai {
			bp := b[p*n : p*n+n]
			ci := ci[:len(bp)]
			for j, bv := range bp {
				ci[j] += av * bv
			}
		}
	}
}

// mmWiden returns the elements of a float16 or bfloat16 tensor as a float32 tensor.
func mmWiden(t *tensor.Tensor) (*tensor.Tensor, error) {
	var out []float32
	switch d := t.Data.(type) {
	case []tensor.F16:
		out = make([]float32, len(d))
		for i, v := range d {
			out[i] = v.Float32()
		}
	case []tensor.BF16:
		out = make([]float32, len(d))
		for i, v := range d {
			out[i] = v.Float32()
		}
	default:
		return nil, fmt.Errorf("ref: widening a %s tensor holding %T", t.DType, t.Data)
	}
	if len(out) != t.Len() {
		return nil, fmt.Errorf("ref: %s tensor of shape %v holds %d elements", t.DType, t.Shape, len(out))
	}
	return tensor.FromSlice(t.Shape, out), nil
}

// mmNarrow rounds a float32 tensor to float16 or bfloat16.
func mmNarrow(t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	src := tensor.Data[float32](t)
	switch dt {
	case tensor.Float16:
		out := make([]tensor.F16, len(src))
		for i, v := range src {
			out[i] = tensor.F16From(v)
		}
		return tensor.FromSlice(t.Shape, out)
	default:
		out := make([]tensor.BF16, len(src))
		for i, v := range src {
			out[i] = tensor.BF16From(v)
		}
		return tensor.FromSlice(t.Shape, out)
	}
}

// mmData returns t's elements as []T, checking the type and the length against the shape.
func mmData[T mmNum](t *tensor.Tensor) ([]T, error) {
	d, ok := t.Data.([]T)
	if !ok {
		var z T
		return nil, fmt.Errorf("ref: %s tensor holds %T, want []%T", t.DType, t.Data, z)
	}
	if len(d) != t.Len() {
		return nil, fmt.Errorf("ref: %s tensor of shape %v holds %d elements", t.DType, t.Shape, len(d))
	}
	return d, nil
}

// matmulKernel is NumPy's matmul: for every batch index b of the broadcast batch shape,
// out[b] = A[b'] · B[b”] (an [M,K] by [K,N] product, accumulated as in mmAccumulate), where b'
// and b” are b with A's and B's size-1 batch dims pinned to 0. A 1-D A is a [1,K] row and a 1-D
// B a [K,1] column, whose added dim the output drops.
func matmulKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	mm, err := opAs[*ops.MatMul](op)
	if err != nil {
		return nil, err
	}
	a, err := mvInput("MatMul", in, 0)
	if err != nil {
		return nil, err
	}
	b, err := mvInput("MatMul", in, 1)
	if err != nil {
		return nil, err
	}
	if a.DType != b.DType {
		return nil, fmt.Errorf("%w: MatMul inputs are %s and %s", ops.ErrShape, a.DType, b.DType)
	}
	d, err := mm.Dims(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	if a.DType == tensor.Float16 || a.DType == tensor.BFloat16 {
		aw, err := mmWiden(a)
		if err != nil {
			return nil, err
		}
		bw, err := mmWiden(b)
		if err != nil {
			return nil, err
		}
		out, err := matmulKernel(op, []*tensor.Tensor{aw, bw}, nOut)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{mmNarrow(out[0], a.DType)}, nil
	}
	var out *tensor.Tensor
	switch a.DType {
	case tensor.Float32:
		out, err = matmulAs[float32](a, b, d)
	case tensor.Float64:
		out, err = matmulAs[float64](a, b, d)
	case tensor.Int8:
		out, err = matmulAs[int8](a, b, d)
	case tensor.Int16:
		out, err = matmulAs[int16](a, b, d)
	case tensor.Int32:
		out, err = matmulAs[int32](a, b, d)
	case tensor.Int64:
		out, err = matmulAs[int64](a, b, d)
	case tensor.Uint8:
		out, err = matmulAs[uint8](a, b, d)
	case tensor.Uint16:
		out, err = matmulAs[uint16](a, b, d)
	case tensor.Uint32:
		out, err = matmulAs[uint32](a, b, d)
	case tensor.Uint64:
		out, err = matmulAs[uint64](a, b, d)
	default:
		return nil, fmt.Errorf("%w: MatMul does not compute on %s", ops.ErrShape, a.DType)
	}
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

// batchStrides returns, for each dim of the broadcast batch shape, the element stride of an
// operand whose own batch dims are own (right-aligned) and whose matrices hold mat elements; a
// broadcast (size-1 or missing) dim gets stride 0.
func batchStrides(batch, own tensor.Shape, mat int) []int {
	st := make([]int, len(batch))
	s := mat
	for i := len(batch) - 1; i >= 0; i-- {
		j := len(own) - len(batch) + i
		if j >= 0 && own[j] != 1 {
			st[i] = s
			s *= own[j]
		}
	}
	return st
}

func matmulAs[T mmNum](a, b *tensor.Tensor, d ops.MatMulDims) (*tensor.Tensor, error) {
	ad, err := mmData[T](a)
	if err != nil {
		return nil, err
	}
	bd, err := mmData[T](b)
	if err != nil {
		return nil, err
	}
	aBatch, bBatch := a.Shape, b.Shape
	if len(aBatch) >= 2 {
		aBatch = aBatch[:len(aBatch)-2]
	} else {
		aBatch = nil
	}
	if len(bBatch) >= 2 {
		bBatch = bBatch[:len(bBatch)-2]
	} else {
		bBatch = nil
	}
	aStr := batchStrides(d.Batch, aBatch, d.M*d.K)
	bStr := batchStrides(d.Batch, bBatch, d.K*d.N)
	out := make([]T, d.Out.Size())
	mn := d.M * d.N
	idx := make([]int, len(d.Batch))
	aOff, bOff := 0, 0
	for bi := 0; bi < d.Batch.Size(); bi++ {
		mmAccumulate(out[bi*mn:(bi+1)*mn], ad[aOff:aOff+d.M*d.K], bd[bOff:bOff+d.K*d.N], d.M, d.K, d.N)
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			aOff += aStr[k]
			bOff += bStr[k]
			if idx[k] < d.Batch[k] {
				break
			}
			aOff -= aStr[k] * d.Batch[k]
			bOff -= bStr[k] * d.Batch[k]
			idx[k] = 0
		}
	}
	return tensor.FromSlice(d.Out, out), nil
}

package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// tensorKernels returns the data-movement, shape and matrix kernels.
func tensorKernels() map[string]Kernel {
	return map[string]Kernel{
		"Concat":          concatKernel,
		"Reshape":         reshapeKernel,
		"Flatten":         flattenKernel,
		"Transpose":       transposeKernel,
		"Squeeze":         squeezeKernel,
		"Unsqueeze":       unsqueezeKernel,
		"Split":           splitKernel,
		"Slice":           sliceKernel,
		"Gather":          gatherKernel,
		"Shape":           shapeKernel,
		"Constant":        constantKernel,
		"ConstantOfShape": constantOfShapeKernel,
		"Gemm":            gemmKernel,
		"MatMul":          matmulKernel,
	}
}

// The data-movement kernels (Concat, Split, Slice, Transpose, Gather, the reshapes) are all
// expressed as one or more strided block copies, so they work for every element type with a single
// switch on the type (mvCopy) and no per-element type dispatch.

// mvBlock describes a strided copy: for every index vector i of shape, element
// dst[dOff + sum(i[d]*dStr[d])] = src[sOff + sum(i[d]*sStr[d])]. Strides may be negative (Slice
// with negative steps) or zero (a broadcast source).
type mvBlock struct {
	shape      []int
	dOff, sOff int
	dStr, sStr []int
}

// simplify drops size-1 dims and merges neighbouring dims that are contiguous in both dst and src,
// so that a plain copy becomes a single run the innermost loop can hand to copy().
func (b mvBlock) simplify() mvBlock {
	s := mvBlock{dOff: b.dOff, sOff: b.sOff}
	for i, n := range b.shape {
		if n == 1 {
			continue
		}
		k := len(s.shape) - 1
		if k >= 0 && s.dStr[k] == b.dStr[i]*n && s.sStr[k] == b.sStr[i]*n {
			s.shape[k] *= n
			s.dStr[k], s.sStr[k] = b.dStr[i], b.sStr[i]
			continue
		}
		s.shape = append(s.shape, n)
		s.dStr = append(s.dStr, b.dStr[i])
		s.sStr = append(s.sStr, b.sStr[i])
	}
	return s
}

// span returns the lowest and highest offsets a strided walk of shape touches from off, or
// ok=false when shape has a zero dim (nothing is touched).
func span(shape, str []int, off int) (lo, hi int, ok bool) {
	lo, hi = off, off
	for d, n := range shape {
		if n == 0 {
			return 0, 0, false
		}
		if step := (n - 1) * str[d]; step > 0 {
			hi += step
		} else {
			lo += step
		}
	}
	return lo, hi, true
}

// mvCopy runs the strided copy b from src into dst, which must have the same element type. It
// checks every offset the copy touches lies inside both tensors, so a planning bug or a tensor
// whose data does not match its shape is an error, not a panic.
func mvCopy(dst, src *tensor.Tensor, b mvBlock) error {
	if dst.DType != src.DType {
		return fmt.Errorf("ref: copying %s data into a %s tensor", src.DType, dst.DType)
	}
	b = b.simplify()
	switch d := dst.Data.(type) {
	case []float32:
		return mvCopyAs(d, src.Data, b)
	case []float64:
		return mvCopyAs(d, src.Data, b)
	case []tensor.F16:
		return mvCopyAs(d, src.Data, b)
	case []tensor.BF16:
		return mvCopyAs(d, src.Data, b)
	case []int8:
		return mvCopyAs(d, src.Data, b)
	case []int16:
		return mvCopyAs(d, src.Data, b)
	case []int32:
		return mvCopyAs(d, src.Data, b)
	case []int64:
		return mvCopyAs(d, src.Data, b)
	case []uint8:
		return mvCopyAs(d, src.Data, b)
	case []uint16:
		return mvCopyAs(d, src.Data, b)
	case []uint32:
		return mvCopyAs(d, src.Data, b)
	case []uint64:
		return mvCopyAs(d, src.Data, b)
	case []bool:
		return mvCopyAs(d, src.Data, b)
	case []string:
		return mvCopyAs(d, src.Data, b)
	}
	return fmt.Errorf("ref: cannot move data of a %s tensor holding %T", dst.DType, dst.Data)
}

func mvCopyAs[T tensor.Elem](dst []T, src any, b mvBlock) error {
	s, ok := src.([]T)
	if !ok {
		return fmt.Errorf("ref: source data is %T, want %T", src, dst)
	}
	dlo, dhi, ok := span(b.shape, b.dStr, b.dOff)
	if !ok {
		return nil
	}
	slo, shi, _ := span(b.shape, b.sStr, b.sOff)
	if dlo < 0 || dhi >= len(dst) || slo < 0 || shi >= len(s) {
		return fmt.Errorf("ref: strided copy out of bounds (dst [%d,%d] of %d, src [%d,%d] of %d)",
			dlo, dhi, len(dst), slo, shi, len(s))
	}
	mvCopyT(dst, s, b)
	return nil
}

// mvCopyT is the copy loop: an odometer over all dims but the last, and the last dim as one copy()
// when both sides are contiguous there, an element loop otherwise.
func mvCopyT[T any](dst, src []T, b mvBlock) {
	n := len(b.shape)
	if n == 0 {
		dst[b.dOff] = src[b.sOff]
		return
	}
	inner, di, si := b.shape[n-1], b.dStr[n-1], b.sStr[n-1]
	idx := make([]int, n-1)
	dOff, sOff := b.dOff, b.sOff
	for {
		if di == 1 && si == 1 {
			copy(dst[dOff:dOff+inner], src[sOff:sOff+inner])
		} else {
			d, s := dOff, sOff
			for j := 0; j < inner; j++ {
				dst[d] = src[s]
				d += di
				s += si
			}
		}
		k := n - 2
		for ; k >= 0; k-- {
			idx[k]++
			dOff += b.dStr[k]
			sOff += b.sStr[k]
			if idx[k] < b.shape[k] {
				break
			}
			dOff -= b.dStr[k] * b.shape[k]
			sOff -= b.sStr[k] * b.shape[k]
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// mvNew allocates a zeroed tensor of a shape the caller has validated.
func mvNew(dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, error) {
	if !dt.Supported() {
		return nil, fmt.Errorf("ref: cannot allocate a %s tensor", dt)
	}
	return tensor.New(dt, shape), nil
}

// mvReshaped returns a copy of x's elements, in order, with the given shape of the same size.
func mvReshaped(x *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	if shape.Size() != x.Len() {
		return nil, fmt.Errorf("ref: reshaping %v to %v changes the element count", x.Shape, shape)
	}
	out, err := mvNew(x.DType, shape)
	if err != nil {
		return nil, err
	}
	n := x.Len()
	return out, mvCopy(out, x, mvBlock{shape: []int{n}, dStr: []int{1}, sStr: []int{1}})
}

// mvInput returns the required input i, or an error naming the operator.
func mvInput(op string, in []*tensor.Tensor, i int) (*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, fmt.Errorf("%w: %s input %d is missing", ops.ErrArity, op, i)
	}
	return in[i], nil
}

// mvOptional returns input i, or nil when it is absent.
func mvOptional(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i >= len(in) {
		return nil
	}
	return in[i]
}

// mvInts reads an integer list input (shape, axes, starts, ...) of input i.
func mvInts(op string, in []*tensor.Tensor, i int) ([]int64, error) {
	t, err := mvInput(op, in, i)
	if err != nil {
		return nil, err
	}
	v, err := ops.IntsOf(t)
	if err != nil {
		return nil, fmt.Errorf("%s input %d: %w", op, i, err)
	}
	return v, nil
}

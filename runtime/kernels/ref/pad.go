package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// padKernel runs Pad on every element type dnx holds. Per axis, with begin pad b and end pad e,
// the input is first cropped by the negative counts (keeping L elements from max(0,-b)), then
// output coordinate j reads cropped element k = j - max(b,0) when 0 <= k < L and otherwise
//
//	constant: the constant value (Pad-2's value attribute, Pad-11's optional input, default 0)
//	edge:     element clamp(k, 0, L-1)
//	reflect:  k folded into [0, L) by mirroring around the end elements without repeating them
//	          (period 2(L-1); L == 1 reads element 0), as numpy.pad does for any pad size
//	wrap:     element k mod L
func padKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	p, err := opAs[*ops.Pad](op)
	if err != nil {
		return nil, err
	}
	x, err := nnInput("Pad", in, 0)
	if err != nil {
		return nil, err
	}
	var pads, axes *tensor.Tensor
	if p.StaticPads == nil {
		if pads, err = nnInput("Pad", in, 1); err != nil {
			return nil, err
		}
		if p.HasAxesInput {
			axes = nnOptional(in, 3)
		}
	}
	rank := x.Rank()
	full, err := p.FullPads(rank, pads, axes)
	if err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	outShape, err := p.PadShape(x.Shape, full)
	if err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	fill, err := padFill(p, x.DType, nnOptional(in, 2))
	if err != nil {
		return nil, err
	}
	idx := padIndex(x.Shape, outShape, full, p.Mode)
	var y *tensor.Tensor
	switch x.DType {
	case tensor.Float32:
		y = padGather[float32](x, fill, idx, outShape)
	case tensor.Float64:
		y = padGather[float64](x, fill, idx, outShape)
	case tensor.Float16:
		y = padGather[tensor.F16](x, fill, idx, outShape)
	case tensor.BFloat16:
		y = padGather[tensor.BF16](x, fill, idx, outShape)
	case tensor.Int8:
		y = padGather[int8](x, fill, idx, outShape)
	case tensor.Int16:
		y = padGather[int16](x, fill, idx, outShape)
	case tensor.Int32:
		y = padGather[int32](x, fill, idx, outShape)
	case tensor.Int64:
		y = padGather[int64](x, fill, idx, outShape)
	case tensor.Uint8:
		y = padGather[uint8](x, fill, idx, outShape)
	case tensor.Uint16:
		y = padGather[uint16](x, fill, idx, outShape)
	case tensor.Uint32:
		y = padGather[uint32](x, fill, idx, outShape)
	case tensor.Uint64:
		y = padGather[uint64](x, fill, idx, outShape)
	case tensor.Bool:
		y = padGather[bool](x, fill, idx, outShape)
	case tensor.String:
		y = padGather[string](x, fill, idx, outShape)
	default:
		return nil, fmt.Errorf("ref: Pad does not support %s", x.DType)
	}
	return []*tensor.Tensor{y}, nil
}

// padFill returns the constant as a one-element tensor of type dt, or nil for the zero value.
func padFill(p *ops.Pad, dt tensor.DType, value *tensor.Tensor) (*tensor.Tensor, error) {
	if p.Mode != ops.PadConstant {
		return nil, nil
	}
	if p.StaticPads != nil {
		if p.Value == 0 {
			return nil, nil
		}
		if !dt.IsFloat() {
			return nil, fmt.Errorf("ref: Pad value %g needs a float input, got %s", p.Value, dt)
		}
		return nnFloatsLike(dt, tensor.Shape{}, []float64{float64(p.Value)})
	}
	if !p.HasValueInput || value == nil {
		return nil, nil
	}
	if value.DType != dt {
		return nil, fmt.Errorf("ref: Pad constant_value is %s, data is %s", value.DType, dt)
	}
	if value.Len() != 1 {
		return nil, fmt.Errorf("ref: Pad constant_value must hold one element, got shape %v", value.Shape)
	}
	return value, nil
}

// padIndex returns, for each output element in row-major order, the flat index of the input
// element it copies, or -1 for the constant.
func padIndex(in, out tensor.Shape, full []int, mode ops.PadMode) []int {
	if out.Size() == 0 {
		// The per-axis tables below are as long as the output's dims: an empty output with one
		// huge dim (a zero batch padded by 2^28) must not allocate them.
		return nil
	}
	rank := len(in)
	strides := in.Strides()
	// src[a][j] is the input offset along axis a (times its stride) read by output coordinate j,
	// or -1.
	src := make([][]int, rank)
	for a := 0; a < rank; a++ {
		b, e := full[a], full[rank+a]
		start := max(0, -b)
		L := in[a] - start - max(0, -e)
		lead := max(b, 0)
		src[a] = make([]int, out[a])
		for j := range src[a] {
			k := j - lead
			if k < 0 || k >= L {
				switch mode {
				case ops.PadConstant:
					src[a][j] = -1
					continue
				case ops.PadEdge:
					k = min(max(k, 0), L-1)
				case ops.PadReflect:
					if L == 1 {
						k = 0
						break
					}
					period := 2 * (L - 1)
					k = ((k % period) + period) % period
					if k >= L {
						k = period - k
					}
				case ops.PadWrap:
					k = ((k % L) + L) % L
				}
			}
			src[a][j] = (start + k) * strides[a]
		}
	}
	idx := make([]int, out.Size())
	coord := make([]int, rank)
	for i := range idx {
		off := 0
		for a := 0; a < rank; a++ {
			s := src[a][coord[a]]
			if s < 0 {
				off = -1
				break
			}
			off += s
		}
		idx[i] = off
		for a := rank - 1; a >= 0; a-- {
			coord[a]++
			if coord[a] < out[a] {
				break
			}
			coord[a] = 0
		}
	}
	return idx
}

func padGather[T tensor.Elem](x, fill *tensor.Tensor, idx []int, shape tensor.Shape) *tensor.Tensor {
	src := tensor.Data[T](x)
	var f T
	if fill != nil {
		f = tensor.Data[T](fill)[0]
	}
	out := make([]T, len(idx))
	for i, j := range idx {
		if j < 0 {
			out[i] = f
		} else {
			out[i] = src[j]
		}
	}
	return tensor.FromSlice(shape, out)
}

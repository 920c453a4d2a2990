package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// reduceMeanKernel runs ReduceMean: Y[j] = (1/K) * sum of the K elements of X that map to output
// position j (those agreeing with j on every kept dim; K is the product of the reduced dims).
// Float types sum in float64 and round once; integer types sum in int64 (uint64 for unsigned,
// wrapping on overflow) and truncate the quotient toward zero. An integer mean over an empty
// set is an error; a float one is NaN.
func reduceMeanKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.ReduceMean](op)
	if err != nil {
		return nil, err
	}
	if err := ewRequire("ReduceMean", in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs("ReduceMean", nOut, 1); err != nil {
		return nil, err
	}
	x := in[0]
	var axes *tensor.Tensor
	if o.AxesInput {
		axes = ewOptional(in, 1)
		if axes != nil && axes.Rank() > 1 {
			return nil, fmt.Errorf("ref: ReduceMean: %w: axes must be 1-D, got shape %v", ops.ErrShape, axes.Shape)
		}
	}
	reduced, noop, err := o.Reduced(x.Rank(), axes)
	if err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	if noop {
		return []*tensor.Tensor{x.Clone()}, nil
	}
	outShape, target, count := ewReduceMap(x.Shape, reduced, o.KeepDims)
	nOutElems := outShape.Size()
	var data any
	switch d := x.Data.(type) {
	case []int8:
		data, err = ewMeanInt(d, target, nOutElems, count)
	case []int16:
		data, err = ewMeanInt(d, target, nOutElems, count)
	case []int32:
		data, err = ewMeanInt(d, target, nOutElems, count)
	case []int64:
		data, err = ewMeanInt(d, target, nOutElems, count)
	case []uint8:
		data, err = ewMeanUint(d, target, nOutElems, count)
	case []uint16:
		data, err = ewMeanUint(d, target, nOutElems, count)
	case []uint32:
		data, err = ewMeanUint(d, target, nOutElems, count)
	case []uint64:
		data, err = ewMeanUint(d, target, nOutElems, count)
	default:
		if !x.DType.IsFloat() {
			return nil, ewTypeError("ReduceMean", 0, x.DType)
		}
		sum := make([]float64, nOutElems)
		for i, v := range x.Float64s() {
			sum[target[i]] += v
		}
		for j := range sum {
			sum[j] /= float64(count)
		}
		return []*tensor.Tensor{ewFromFloat64s(x.DType, outShape, sum)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ref: ReduceMean: %w", err)
	}
	return []*tensor.Tensor{{DType: x.DType, Shape: outShape, Data: data}}, nil
}

// ewReduceMap returns the output shape of a reduction over the dims marked in reduced, the
// output flat index of every input element, and the number of input elements per output element.
func ewReduceMap(shape tensor.Shape, reduced []bool, keepDims bool) (out tensor.Shape, target []int, count int) {
	out = tensor.Shape{}
	keptShape := make(tensor.Shape, len(shape)) // shape with reduced dims set to 1
	count = 1
	for i, d := range shape {
		keptShape[i] = d
		if reduced[i] {
			keptShape[i] = 1
			count *= d
			if keepDims {
				out = append(out, 1)
			}
			continue
		}
		out = append(out, d)
	}
	st := ewBroadcastStrides(keptShape, shape) // 0 along reduced dims
	target = make([]int, shape.Size())
	idx := make([]int, len(shape))
	off := 0
	for i := range target {
		target[i] = off
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			off += st[d]
			if idx[d] < shape[d] {
				break
			}
			off -= st[d] * shape[d]
			idx[d] = 0
		}
	}
	return out, target, count
}

// ewMeanInt averages signed integers into nOut outputs, summing in int64.
func ewMeanInt[T int8 | int16 | int32 | int64](d []T, target []int, nOut, count int) ([]T, error) {
	if count == 0 && nOut > 0 {
		return nil, fmt.Errorf("%w: integer mean over an empty set", ops.ErrShape)
	}
	sum := make([]int64, nOut)
	for i, v := range d {
		sum[target[i]] += int64(v)
	}
	return ewMap(sum, func(s int64) T { return T(s / int64(count)) }), nil
}

// ewMeanUint averages unsigned integers into nOut outputs, summing in uint64.
func ewMeanUint[T uint8 | uint16 | uint32 | uint64](d []T, target []int, nOut, count int) ([]T, error) {
	if count == 0 && nOut > 0 {
		return nil, fmt.Errorf("%w: integer mean over an empty set", ops.ErrShape)
	}
	sum := make([]uint64, nOut)
	for i, v := range d {
		sum[target[i]] += uint64(v)
	}
	return ewMap(sum, func(s uint64) T { return T(s / uint64(count)) }), nil
}

package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// nnKernels returns the kernels of Conv, BatchNormalization, the pooling operators and Pad.
func nnKernels() map[string]Kernel {
	return map[string]Kernel{
		"Conv":               convKernel,
		"BatchNormalization": batchNormKernel,
		"AveragePool":        averagePoolKernel,
		"MaxPool":            maxPoolKernel,
		"GlobalAveragePool":  globalAveragePoolKernel,
		"GlobalMaxPool":      globalMaxPoolKernel,
		"Pad":                padKernel,
	}
}

// nnFloat is the element types the floating-point NN kernels compute in directly.
type nnFloat interface{ float32 | float64 }

// nnInput returns in[i], or an error naming the op when the input is absent.
func nnInput(op string, in []*tensor.Tensor, i int) (*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, fmt.Errorf("ref: %s: input %d is missing", op, i)
	}
	return in[i], nil
}

// nnOptional returns in[i], or nil when the optional input is absent.
func nnOptional(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// nnWiden converts a float16 or bfloat16 tensor to float32 so that the float kernels can run it;
// other tensors are returned unchanged. nnNarrow converts a result back.
func nnWiden(t *tensor.Tensor) *tensor.Tensor {
	if t == nil || (t.DType != tensor.Float16 && t.DType != tensor.BFloat16) {
		return t
	}
	out := make([]float32, t.Len())
	for i, v := range t.Float64s() {
		out[i] = float32(v)
	}
	return tensor.FromSlice(t.Shape, out)
}

// nnNarrow converts a float32 result back to dt when dt is float16 or bfloat16.
func nnNarrow(t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	switch dt {
	case tensor.Float16:
		src := tensor.Data[float32](t)
		out := make([]tensor.F16, len(src))
		for i, v := range src {
			out[i] = tensor.F16From(v)
		}
		return tensor.FromSlice(t.Shape, out)
	case tensor.BFloat16:
		src := tensor.Data[float32](t)
		out := make([]tensor.BF16, len(src))
		for i, v := range src {
			out[i] = tensor.BF16From(v)
		}
		return tensor.FromSlice(t.Shape, out)
	}
	return t
}

// nnFloatsLike returns a tensor of float type dt (any float dnx holds) with the given values.
func nnFloatsLike(dt tensor.DType, shape tensor.Shape, v []float64) (*tensor.Tensor, error) {
	switch dt {
	case tensor.Float32, tensor.Float16, tensor.BFloat16:
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return nnNarrow(tensor.FromSlice(shape, f), dt), nil
	case tensor.Float64:
		return tensor.FromSlice(shape, append([]float64(nil), v...)), nil
	}
	return nil, fmt.Errorf("ref: expected a float tensor type, got %s", dt)
}

// nnShape3 pads spatial sizes to three dims by prepending ones, so that the 1-D, 2-D and 3-D
// cases run through one triple loop.
func nnShape3(v []int, fill int) [3]int {
	var out [3]int
	k := 3 - len(v)
	for i := range out {
		if i < k {
			out[i] = fill
		} else {
			out[i] = v[i-k]
		}
	}
	return out
}

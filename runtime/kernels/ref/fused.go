package ref

import (
	"fmt"
	"math"
	"slices"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// fusedKernels returns the kernels of dnx's internal fused operators (domain ops.DomainDNX).
func fusedKernels() map[string]Kernel {
	return map[string]Kernel{"FusedConv": fusedConvKernel, "FusedAveragePool": fusedAveragePoolKernel, "SiLU": siluKernel}
}

// siluKernel runs SiLU: Y = X * sigmoid(X) on float types, the sigmoid as sigmoidKernel computes
// it.
func siluKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	if _, err := opAs[*ops.SiLU](op); err != nil {
		return nil, err
	}
	return ewUnaryFloat("SiLU", in, nOut, func(v float64) float64 {
		if v >= 0 {
			return v / (1 + math.Exp(-v))
		}
		e := math.Exp(v)
		return v * e / (1 + e)
	})
}

// fusedConvKernel runs FusedConv by composing the reference kernels: the prologue, per input
// channel c,
//
//	X'[n,c,...] = PreScale[c] * X[n,c,...] + PreShift[c],  then X' = max(X', 0) if PreRelu
//
// computed in float64 into a temporary of X's type; then convKernel on (X', W, B), whose zero
// padding therefore pads the normalized values; then arithKernel's Add of the residual Z (input
// 3) when there is one; then the activation's own reference kernel (activationKernel). It is the
// oracle for fused CPU kernels, not a fast path: the temporaries are exactly what fusion avoids.
func fusedConvKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	f, err := opAs[*ops.FusedConv](op)
	if err != nil {
		return nil, err
	}
	if nOut != 1 {
		return nil, fmt.Errorf("ref: FusedConv has 1 output, asked for %d", nOut)
	}
	x, err := nnInput("FusedConv", in, 0)
	if err != nil {
		return nil, err
	}
	if f.HasPrologue() {
		if x, err = fusedPrologue("FusedConv", f.PreScale, f.PreShift, f.PreRelu, x); err != nil {
			return nil, err
		}
	}
	convIn := append([]*tensor.Tensor{x}, in[1:min(len(in), 3)]...)
	out, err := convKernel(&f.Conv, convIn, 1)
	if err != nil {
		return nil, fmt.Errorf("ref: FusedConv: %w", err)
	}
	if f.Residual {
		if len(in) < 4 || in[3] == nil {
			return nil, fmt.Errorf("ref: FusedConv has a residual but input 3 is absent")
		}
		if !slices.Equal(in[3].Shape, out[0].Shape) {
			return nil, fmt.Errorf("ref: FusedConv residual has shape %v, Y has %v", in[3].Shape, out[0].Shape)
		}
		if out, err = arithKernel(&ops.Arith{Kind: ops.ArithAdd}, []*tensor.Tensor{out[0], in[3]}, 1); err != nil {
			return nil, fmt.Errorf("ref: FusedConv residual: %w", err)
		}
	}
	if f.Post.Kind != ops.ActNone {
		op, k, err := activationKernel(f.Post)
		if err != nil {
			return nil, fmt.Errorf("ref: FusedConv: %w", err)
		}
		if out, err = k(op, out, 1); err != nil {
			return nil, fmt.Errorf("ref: FusedConv %s: %w", f.Post.Kind, err)
		}
	}
	return out, nil
}

// activationKernel returns the operator an epilogue activation stands for and its reference
// kernel, so that a fused epilogue computes exactly what the separate operator would.
func activationKernel(a ops.Activation) (ops.Op, Kernel, error) {
	switch a.Kind {
	case ops.ActRelu:
		return &ops.Relu{}, reluKernel, nil
	case ops.ActClip:
		return &ops.Clip{Min: a.Alpha, Max: a.Beta, HasMin: true, HasMax: true}, clipKernel, nil
	case ops.ActLeakyRelu:
		return &ops.LeakyRelu{Alpha: a.Alpha}, leakyReluKernel, nil
	case ops.ActHardSigmoid:
		return &ops.HardSigmoid{Alpha: a.Alpha, Beta: a.Beta}, hardSigmoidKernel, nil
	case ops.ActHardSwish:
		return &ops.HardSwish{}, hardSwishKernel, nil
	case ops.ActSigmoid:
		return &ops.Sigmoid{}, sigmoidKernel, nil
	case ops.ActSiLU:
		return &ops.SiLU{}, siluKernel, nil
	}
	return nil, nil, fmt.Errorf("activation %v has no kernel", a.Kind)
}

// fusedAveragePoolKernel runs FusedAveragePool as the prologue (see fusedConvKernel) into a
// temporary, then averagePoolKernel.
func fusedAveragePoolKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	f, err := opAs[*ops.FusedAveragePool](op)
	if err != nil {
		return nil, err
	}
	if nOut != 1 {
		return nil, fmt.Errorf("ref: FusedAveragePool has 1 output, asked for %d", nOut)
	}
	x, err := nnInput("FusedAveragePool", in, 0)
	if err != nil {
		return nil, err
	}
	if f.HasPrologue() {
		if x, err = fusedPrologue("FusedAveragePool", f.PreScale, f.PreShift, f.PreRelu, x); err != nil {
			return nil, err
		}
	}
	out, err := averagePoolKernel(&f.Pool, []*tensor.Tensor{x}, 1)
	if err != nil {
		return nil, fmt.Errorf("ref: FusedAveragePool: %w", err)
	}
	return out, nil
}

// fusedPrologue returns a new tensor holding a fused operator's prologue applied to x (see
// fusedConvKernel). float16 and bfloat16 go through float32 and back, as the other NN kernels do.
func fusedPrologue(op string, scale, shift []float32, relu bool, x *tensor.Tensor) (*tensor.Tensor, error) {
	if len(x.Shape) < 2 {
		return nil, fmt.Errorf("ref: %s: %w: X must have rank >= 2, got shape %v", op, ops.ErrShape, x.Shape)
	}
	C := x.Shape[1]
	if len(scale) != len(shift) || (scale != nil && len(scale) != C) {
		return nil, fmt.Errorf("ref: %s: %w: X has %d channels, the prologue has %d scales and %d shifts",
			op, ops.ErrShape, C, len(scale), len(shift))
	}
	inner := 1
	for _, d := range x.Shape[2:] {
		inner *= d
	}
	dt := x.DType
	xw := nnWiden(x)
	y := tensor.New(xw.DType, x.Shape)
	switch xw.DType {
	case tensor.Float32:
		fusedPrologueTyped(tensor.Data[float32](xw), tensor.Data[float32](y), x.Shape[0], C, inner, scale, shift, relu)
	case tensor.Float64:
		fusedPrologueTyped(tensor.Data[float64](xw), tensor.Data[float64](y), x.Shape[0], C, inner, scale, shift, relu)
	default:
		return nil, fmt.Errorf("ref: %s does not support %s inputs", op, dt)
	}
	return nnNarrow(y, dt), nil
}

func fusedPrologueTyped[T nnFloat](x, y []T, N, C, inner int, scale, shift []float32, relu bool) {
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			a, b := 1.0, 0.0
			if scale != nil {
				a, b = float64(scale[c]), float64(shift[c])
			}
			off := (n*C + c) * inner
			src, dst := x[off:][:inner], y[off:][:inner]
			for i, v := range src {
				r := a*float64(v) + b
				if relu {
					r = max(r, 0) // NaN stays NaN, as in reluKernel
				}
				dst[i] = T(r)
			}
		}
	}
}

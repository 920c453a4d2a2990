package ref

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// batchNormKernel runs BatchNormalization on float32 and float64 X (float16 and bfloat16 through
// float32); the four per-channel inputs may have any float type. In inference mode, per channel c,
//
//	Y = (X - mean[c]) * scale[c] / sqrt(var[c] + eps) + B[c]
//
// with the per-channel factor computed in float64. In training mode mean and var are replaced by
// the batch statistics over N and the spatial dims, computed in float64 in two passes
//
//	mu[c] = sum X[:,c,...] / m,  sigma2[c] = sum (X[:,c,...] - mu[c])^2 / m   (biased)
//
// and the outputs are Y, running_mean = mean*momentum + mu*(1-momentum), running_var =
// var*momentum + sigma2*(1-momentum), then (opsets before 14) saved_mean = mu and saved_var =
// sigma2. The statistics outputs have input_mean's type.
func batchNormKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	bn, err := opAs[*ops.BatchNormalization](op)
	if err != nil {
		return nil, err
	}
	var ts [5]*tensor.Tensor
	for i := range ts {
		if ts[i], err = nnInput("BatchNormalization", in, i); err != nil {
			return nil, err
		}
		if !ts[i].DType.IsFloat() {
			return nil, fmt.Errorf("ref: BatchNormalization input %d is %s, want a float type", i, ts[i].DType)
		}
	}
	x := ts[0]
	C, inner, err := bn.BNShapes(x.Shape, ts[1].Shape, ts[2].Shape, ts[3].Shape, ts[4].Shape)
	if err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	if nOut < 1 || nOut > 5 {
		return nil, fmt.Errorf("ref: BatchNormalization has 1 to 5 outputs, asked for %d", nOut)
	}
	scale, bias, mean, vr := ts[1].Float64s(), ts[2].Float64s(), ts[3].Float64s(), ts[4].Float64s()
	N := x.Shape[0]
	dt := x.DType
	xw := nnWiden(x)
	y := tensor.New(xw.DType, x.Shape)
	var mu, sigma2 []float64
	switch xw.DType {
	case tensor.Float32:
		mu, sigma2 = bnRun(tensor.Data[float32](xw), tensor.Data[float32](y), N, C, inner, scale, bias, mean, vr, float64(bn.Epsilon), bn.Training)
	case tensor.Float64:
		mu, sigma2 = bnRun(tensor.Data[float64](xw), tensor.Data[float64](y), N, C, inner, scale, bias, mean, vr, float64(bn.Epsilon), bn.Training)
	default:
		return nil, fmt.Errorf("ref: BatchNormalization does not support %s X", dt)
	}
	outs := []*tensor.Tensor{nnNarrow(y, dt)}
	if nOut == 1 {
		return outs, nil
	}
	// Outside training the statistics do not move: the running outputs equal the inputs.
	mom := float64(bn.Momentum)
	runMean, runVar := append([]float64(nil), mean...), append([]float64(nil), vr...)
	if bn.Training {
		for c := 0; c < C; c++ {
			runMean[c] = mean[c]*mom + mu[c]*(1-mom)
			runVar[c] = vr[c]*mom + sigma2[c]*(1-mom)
		}
	} else {
		mu, sigma2 = mean, vr
	}
	statType := ts[3].DType
	for _, v := range [][]float64{runMean, runVar, mu, sigma2}[:nOut-1] {
		t, err := nnFloatsLike(statType, tensor.Shape{C}, v)
		if err != nil {
			return nil, fmt.Errorf("ref: BatchNormalization: %w", err)
		}
		outs = append(outs, t)
	}
	return outs, nil
}

// bnRun normalizes x into y ([N, C, inner] row-major) and, in training mode, returns the batch
// mean and biased variance it used.
func bnRun[T nnFloat](x, y []T, N, C, inner int, scale, bias, mean, vr []float64, eps float64, training bool) (mu, sigma2 []float64) {
	if training {
		mu, sigma2 = make([]float64, C), make([]float64, C)
		m := float64(N * inner)
		for c := 0; c < C; c++ {
			var s float64
			for n := 0; n < N; n++ {
				for _, v := range x[(n*C+c)*inner:][:inner] {
					s += float64(v)
				}
			}
			mu[c] = s / m
			var q float64
			for n := 0; n < N; n++ {
				for _, v := range x[(n*C+c)*inner:][:inner] {
					d := float64(v) - mu[c]
					q += d * d
				}
			}
			sigma2[c] = q / m
		}
		mean, vr = mu, sigma2
	}
	for c := 0; c < C; c++ {
		a := scale[c] / math.Sqrt(vr[c]+eps)
		m, b := mean[c], bias[c]
		for n := 0; n < N; n++ {
			off := (n*C + c) * inner
			src, dst := x[off:][:inner], y[off:][:inner]
			for i, v := range src {
				dst[i] = T((float64(v)-m)*a + b)
			}
		}
	}
	return mu, sigma2
}

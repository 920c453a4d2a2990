package ref

import (
	"fmt"
	"math/rand/v2"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// dropoutSeedStream is the second PCG seed word; any fixed value works, it only has to be the
// same on every run so that a seed gives one mask.
const dropoutSeedStream = 0x5eed_d40b_0a7c_2e11

// dropoutKernel runs Dropout. Outside training, or with ratio 0:
//
//	Y = X, mask = true (or 1 in X's type before opset 10)
//
// In training mode with ratio r > 0, u_i is drawn uniformly from [0, 1) and
//
//	mask_i = u_i >= r,  Y_i = X_i * mask_i / (1 - r)
//
// (all zeros when r = 1). The u_i come from a PCG generator seeded with the seed attribute
// (0 when absent), so a given seed always gives the same mask; the stream is not NumPy's. The
// ratio and training mode come from inputs 1 and 2 when present (opset 12+), from the op
// otherwise.
func dropoutKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.Dropout](op)
	if err != nil {
		return nil, err
	}
	if err := ewRequire("Dropout", in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs("Dropout", nOut, 2); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, ewTypeError("Dropout", 0, x.DType)
	}
	ratio, training := float64(o.Ratio), o.Training
	if r := ewOptional(in, 1); r != nil {
		if !r.DType.IsFloat() || r.Len() != 1 {
			return nil, fmt.Errorf("ref: Dropout: %w: ratio must be a float scalar, got %s%v", ops.ErrShape, r.DType, r.Shape)
		}
		ratio = r.Float64s()[0]
	}
	if t := ewOptional(in, 2); t != nil {
		if t.DType != tensor.Bool || t.Len() != 1 {
			return nil, fmt.Errorf("ref: Dropout: %w: training_mode must be a bool scalar, got %s%v", ops.ErrShape, t.DType, t.Shape)
		}
		training = tensor.Data[bool](t)[0]
	}
	if !(ratio >= 0 && ratio <= 1) {
		return nil, fmt.Errorf("ref: Dropout: %w: ratio %g is outside [0, 1]", ops.ErrShape, ratio)
	}
	keep := make([]bool, x.Len())
	var y *tensor.Tensor
	if !training || ratio == 0 {
		for i := range keep {
			keep[i] = true
		}
		y = x.Clone()
	} else {
		rng := rand.New(rand.NewPCG(uint64(o.Seed), dropoutSeedStream))
		v := x.Float64s()
		scale := 1 / (1 - ratio)
		for i := range v {
			keep[i] = rng.Float64() >= ratio
			if keep[i] {
				v[i] *= scale
			} else {
				v[i] = 0
			}
		}
		y = ewFromFloat64s(x.DType, x.Shape, v)
	}
	outs := []*tensor.Tensor{y}
	if nOut == 2 {
		if o.MaskBool {
			outs = append(outs, ewLike(x, tensor.Bool, keep))
		} else {
			m := ewMap(keep, func(k bool) float64 {
				if k {
					return 1
				}
				return 0
			})
			outs = append(outs, ewFromFloat64s(x.DType, x.Shape, m))
		}
	}
	return outs, nil
}

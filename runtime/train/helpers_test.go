package train

import (
	"math/rand/v2"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// randomBatch returns a N(0,1) batch of n images of shape chw and n labels below classes.
func randomBatch(seed uint64, n int, chw []int, classes int) (*tensor.Tensor, []int64) {
	r := rand.New(rand.NewPCG(seed, 1))
	shape := append(tensor.Shape{n}, chw...)
	x := tensor.New(tensor.Float32, shape)
	for i := range tensor.Data[float32](x) {
		tensor.Data[float32](x)[i] = float32(r.NormFloat64())
	}
	labels := make([]int64, n)
	for i := range labels {
		labels[i] = int64(r.IntN(classes))
	}
	return x, labels
}

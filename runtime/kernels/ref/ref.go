package ref

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Kernel runs one decoded op. in has one entry per node input position (nil for an absent optional
// input); the kernel returns nOut freshly allocated outputs (nOut is the number of outputs the node
// declares, which may be fewer than the op can produce). It never modifies its inputs.
type Kernel func(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error)

// Kernels returns the reference kernel of every operator, keyed by ONNX op type. The map is new on
// each call; callers may extend it.
func Kernels() map[string]Kernel {
	all := map[string]Kernel{}
	for _, family := range []func() map[string]Kernel{nnKernels, elementwiseKernels, tensorKernels, fusedKernels} {
		for k, v := range family() {
			all[k] = v
		}
	}
	return all
}

// opAs returns op as T (a pointer type such as *ops.Conv) or an error naming both types; kernels
// use it to reach their typed attributes.
func opAs[T ops.Op](op ops.Op) (T, error) {
	t, ok := op.(T)
	if !ok {
		var z T
		return z, fmt.Errorf("ref: kernel for %T got a %T", z, op)
	}
	return t, nil
}

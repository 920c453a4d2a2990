package passes

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// FuseConvActivation turns Conv -> Relu into one FusedConv with PostRelu, so the ReLU is applied
// while the convolution's output is still in registers instead of in a second pass over memory.
// It applies when the Conv (or a FusedConv without PostRelu) has the Relu as the only reader of
// its output, which is not a graph output. The FusedConv keeps the Conv's node name and takes the
// Relu's output name.
type FuseConvActivation struct{}

// Name returns "FuseConvActivation".
func (FuseConvActivation) Name() string { return "FuseConvActivation" }

// Run implements Pass.
func (FuseConvActivation) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(relu *graph.Node) (bool, error) {
		if _, ok := relu.Op.(*ops.Relu); !ok || ops.NormalizeDomain(relu.Domain) != "" {
			return false, nil
		}
		y := relu.Inputs[0]
		conv := y.Producer
		if conv == nil || !soleReader(g, y, relu) || conv.Outputs[0] != y || !y.Type.DType.IsFloat() {
			return false, nil
		}
		c, fused := convLike(conv)
		if c == nil {
			return false, nil
		}
		f := &ops.FusedConv{Conv: *c, PostRelu: true}
		if fused != nil {
			if fused.PostRelu {
				return false, nil
			}
			*f = *fused
			f.PostRelu = true
		}
		setFused(conv, f)
		return true, absorb(g, y, relu)
	})
}

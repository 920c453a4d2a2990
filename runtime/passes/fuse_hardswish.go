package passes

import (
	"math"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// FuseHardSwish turns HardSigmoid(x, alpha=1/6, beta=0.5) -> Mul(x, h) (either operand order),
// which is how PyTorch exports nn.Hardswish below opset 14 (MobileNetV3's activation), into one
// HardSwish node: x is read once and the gate never reaches memory. It applies when the Mul is
// the HardSigmoid output's only reader (not a graph output) and multiplies it by the
// HardSigmoid's own input; a squeeze-and-excitation gate (HardSigmoid of one value, Mul of
// another) is left alone. HardSwish computes x*max(0, min(1, x/6 + 0.5)), the same function up
// to the rounding of 1/6 (about 1e-7 relative). The node keeps the HardSigmoid's name and takes
// the Mul's output name; it is ONNX's HardSwish (opset 14), so the result runs on dnx, which has
// the operator at every opset, and is not meant for graph.Export at an older opset.
type FuseHardSwish struct{}

// Name returns "FuseHardSwish".
func (FuseHardSwish) Name() string { return "FuseHardSwish" }

// Run implements Pass.
func (FuseHardSwish) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(mul *graph.Node) (bool, error) {
		m, ok := mul.Op.(*ops.Arith)
		if !ok || m.Kind != ops.ArithMul || m.Legacy || ops.NormalizeDomain(mul.Domain) != "" || len(mul.Inputs) != 2 || len(mul.Outputs) != 1 {
			return false, nil
		}
		for i := range 2 {
			h, x := mul.Inputs[i], mul.Inputs[1-i]
			if h == nil || x == nil || h.Producer == nil {
				continue
			}
			hs := h.Producer
			op, ok := hs.Op.(*ops.HardSigmoid)
			if !ok || ops.NormalizeDomain(hs.Domain) != "" || len(hs.Inputs) != 1 || hs.Inputs[0] != x {
				continue
			}
			if math.Abs(float64(op.Alpha)-1.0/6) > 1e-6 || op.Beta != 0.5 {
				continue
			}
			if !soleReader(g, h, mul) || !h.Type.DType.IsFloat() {
				continue
			}
			hs.Op, hs.OpType, hs.Domain, hs.Opset, hs.Attrs = &ops.HardSwish{}, "HardSwish", "", max(hs.Opset, 14), ops.Attributes{}
			return true, absorb(g, h, mul)
		}
		return false, nil
	})
}

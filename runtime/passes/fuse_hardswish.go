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
	return fuseSelfGate(g, func(n *graph.Node) bool {
		op, ok := n.Op.(*ops.HardSigmoid)
		return ok && math.Abs(float64(op.Alpha)-1.0/6) <= 1e-6 && op.Beta == 0.5
	}, func(n *graph.Node) {
		n.Op, n.OpType, n.Domain, n.Opset, n.Attrs = &ops.HardSwish{}, "HardSwish", "", max(n.Opset, 14), ops.Attributes{}
	})
}

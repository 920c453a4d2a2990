package passes

import (
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// FuseSiLU turns Sigmoid(x) -> Mul(x, s) (either operand order), which is how PyTorch exports
// nn.SiLU (x * sigmoid(x): EfficientNet's activation), into one dnx-domain SiLU node, so that x
// is read once and the sigmoid's output never reaches memory. It applies when the Mul is the
// Sigmoid output's only reader (that output is not a graph output) and multiplies it by the
// Sigmoid's own input. The SiLU keeps the Sigmoid's node name and takes the Mul's output name.
type FuseSiLU struct{}

// Name returns "FuseSiLU".
func (FuseSiLU) Name() string { return "FuseSiLU" }

// Run implements Pass.
func (FuseSiLU) Run(g *graph.Graph) (bool, error) {
	return fuseSelfGate(g, func(n *graph.Node) bool {
		_, ok := n.Op.(*ops.Sigmoid)
		return ok
	}, func(n *graph.Node) { setDNX(n, &ops.SiLU{}, ops.Attributes{}) })
}

// fuseSelfGate finds gate(x) -> Mul(x, gate(x)) (either operand order), where isGate accepts the
// gate node (of the default domain, one input), the Mul is the gate output's only reader (that
// output is not a graph output) and multiplies it by the gate's own input: become then rewrites
// the gate node into the fused operator, which takes the Mul's output; the node keeps its name.
// FuseSiLU and FuseHardSwish are this rewrite with different gates.
func fuseSelfGate(g *graph.Graph, isGate func(n *graph.Node) bool, become func(n *graph.Node)) (bool, error) {
	return forEachNode(g, func(mul *graph.Node) (bool, error) {
		m, ok := mul.Op.(*ops.Arith)
		if !ok || m.Kind != ops.ArithMul || m.Legacy || ops.NormalizeDomain(mul.Domain) != "" || len(mul.Inputs) != 2 || len(mul.Outputs) != 1 {
			return false, nil
		}
		for i := range 2 {
			s, x := mul.Inputs[i], mul.Inputs[1-i]
			if s == nil || x == nil || s.Producer == nil {
				continue
			}
			gate := s.Producer
			if ops.NormalizeDomain(gate.Domain) != "" || len(gate.Inputs) != 1 || gate.Inputs[0] != x || !isGate(gate) {
				continue
			}
			if !soleReader(g, s, mul) || !s.Type.DType.IsFloat() {
				continue
			}
			become(gate)
			return true, absorb(g, s, mul)
		}
		return false, nil
	})
}

package opset

// hardSwishAlpha and hardSwishBeta are the HardSigmoid attributes of ONNX's function body of
// HardSwish: HardSwish(X) = X * HardSigmoid(X, alpha=1/6, beta=0.5).
const (
	hardSwishAlpha = float32(1.0 / 6)
	hardSwishBeta  = float32(0.5)
)

// hardSwish converts HardSwish below opset 14, where it does not exist, into its function body:
// the node becomes HardSigmoid(X, alpha=1/6, beta=0.5) into a fresh value, followed by
// Mul(X, that). PyTorch exports nn.Hardswish the same way below 14. The results may differ from
// HardSwish in the last bit: HardSigmoid multiplies by the float32 nearest 1/6 where dnx's
// HardSwish divides by 6. Upward, the pair is left as it is (both operators exist at 14).
func hardSwish(c *converter, n *node) error {
	if c.to >= 14 {
		return nil
	}
	base := n.base()
	x, y := n.input(0), n.Output[0]
	gate := c.fresh(base + "_gate")
	n.OpType = strPtr("HardSigmoid")
	n.Output[0] = gate
	n.Attribute = nil // HardSwish has no attributes
	n.setAttr(floatAttr("alpha", hardSwishAlpha))
	n.setAttr(floatAttr("beta", hardSwishBeta))
	n.post = append(n.post, c.newNode(base, "Mul", []string{x, gate}, []string{y}))
	return nil
}

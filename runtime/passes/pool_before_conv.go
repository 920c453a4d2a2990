package passes

import (
	"slices"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// PoolBeforePointwiseConv swaps a pointwise (1x1) convolution and the AveragePool that reads it:
//
//	X -> Conv 1x1 (W, B) -> AveragePool -> Z   becomes   X -> AveragePool -> Conv 1x1 (W, B) -> Z
//
// Both compute, at each output position, the same weighted sum: a 1x1 convolution is an affine
// map of each pixel's channels, and an average pool without padding is a convex combination of
// pixels (its weights sum to 1, partial ceil_mode windows included), so the pool of the map is the
// map of the pool, bias included. The convolution then runs over the pooled pixels only. This is
// DenseNet's transition layer, BN -> ReLU -> Conv 1x1 -> AveragePool 2x2: a quarter of the
// convolution's multiply-adds go away (about 8% of DenseNet-121's) for a pool over the
// convolution's input channels instead of its output channels.
//
// It applies to a Conv (standard domain) or a FusedConv without a ReLU epilogue (a prologue moves
// with the input into a FusedAveragePool) whose kernel is all ones, with unit strides and no
// padding, whose output is read only by an AveragePool (standard domain) with zero padding and
// auto_pad NOTSET or VALID whose strides shrink the image (a stride above 1), neither
// intermediate being a graph output. Float rounding differs from the original order by a few ulps.
// The pool's output keeps its name (now produced by the convolution).
type PoolBeforePointwiseConv struct{}

// Name returns "PoolBeforePointwiseConv".
func (PoolBeforePointwiseConv) Name() string { return "PoolBeforePointwiseConv" }

// Run implements Pass.
func (PoolBeforePointwiseConv) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(conv *graph.Node) (bool, error) {
		c, fused := convLike(conv)
		if c == nil || (fused != nil && (fused.Post.Kind != ops.ActNone || fused.Residual)) || !pointwise(conv, c) {
			return false, nil
		}
		y := onlyOutput(conv)
		if y == nil || len(y.Consumers) != 1 || g.IsOutput(y) {
			return false, nil
		}
		pool := y.Consumers[0]
		ap, ok := pool.Op.(*ops.AveragePool)
		if !ok || ops.NormalizeDomain(pool.Domain) != "" || pool.Inputs[0] != y || !unpadded(&ap.Window) || !shrinks(&ap.Window) {
			return false, nil
		}
		z := onlyOutput(pool)
		if z == nil {
			return false, nil
		}
		x := conv.Inputs[0]
		// The pool reads X and produces y; the convolution reads y and produces z.
		if err := g.SetInput(pool, 0, x); err != nil {
			return false, err
		}
		pool.Outputs[0], conv.Outputs[0] = y, z
		y.Producer, z.Producer = pool, conv
		if err := g.SetInput(conv, 0, y); err != nil {
			return false, err
		}
		if fused != nil && fused.HasPrologue() {
			// The prologue applies to X, which the pool now reads.
			setFusedPool(pool, &ops.FusedAveragePool{Pool: *ap, PreScale: fused.PreScale, PreShift: fused.PreShift, PreRelu: fused.PreRelu})
			fused.PreScale, fused.PreShift, fused.PreRelu = nil, nil, false
			setFused(conv, fused)
		}
		i, j := slices.Index(g.Nodes, conv), slices.Index(g.Nodes, pool)
		g.Nodes[i], g.Nodes[j] = pool, conv
		// y now has X's channels at the pooled size: the pipeline re-infers types after the
		// round; until then nothing reads y's shape.
		y.Type = ops.Type{DType: y.Type.DType, Unranked: true}
		return true, nil
	})
}

// pointwise reports whether the convolution n is 1x1 with unit strides and no padding, so it maps
// each pixel on its own.
func pointwise(n *graph.Node, c *ops.Conv) bool {
	w := input(n, 1)
	if w == nil || w.Type.Unranked || w.Type.Rank() < 3 {
		return false
	}
	for _, d := range w.Type.Shape[2:] {
		if !d.IsKnown() || d.Value != 1 {
			return false
		}
	}
	for _, s := range c.Strides {
		if s != 1 {
			return false
		}
	}
	return unpadded(&c.Window)
}

// unpadded reports whether a window adds no padding.
func unpadded(w *ops.Window) bool {
	if w.AutoPad != ops.AutoPadNotSet && w.AutoPad != ops.AutoPadValid && w.AutoPad != "" {
		return false
	}
	for _, p := range w.Pads {
		if p != 0 {
			return false
		}
	}
	return true
}

// shrinks reports whether a pooling window has a stride above 1, so the pooled image is smaller.
func shrinks(w *ops.Window) bool {
	for _, s := range w.Strides {
		if s > 1 {
			return true
		}
	}
	return false
}

// setFusedPool turns n (an AveragePool node) into the FusedAveragePool f, keeping its name,
// inputs and outputs.
func setFusedPool(n *graph.Node, f *ops.FusedAveragePool) {
	setDNX(n, f, ops.FusedAveragePoolAttrs(n.Attrs, f))
}

package passes

import (
	"strings"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// FoldConvBN folds an inference BatchNormalization into the Conv that feeds it. With
// a[m] = gamma[m] / sqrt(var[m] + eps) per output channel m,
//
//	W'[m,...] = W[m,...] * a[m]
//	b'[m]     = (b[m] - mean[m]) * a[m] + beta[m]      (b = 0 when the Conv has no bias)
//
// so Conv(X, W', b') = BN(Conv(X, W, b)) and the BN's pass over the tensor disappears. In DenseNet
// that is the stem norm0 after conv0 and every bottleneck norm2 after conv1 (the PyTorch exporter
// already does this unless asked not to, as in the training exports).
//
// It applies when the BN is in inference mode with one output and constant parameters, the Conv
// is a standard Conv with constant float32 or float64 weights (and bias, if any), and the Conv's
// output has the BN as its only reader and is not a graph output. The folded Conv takes the BN's
// output name. New weights replace the old initializer's tensor when this Conv is its only reader,
// and go into a new initializer otherwise; the BN's parameters are left for DeadCodeElimination.
// The Conv's attributes do not change, so the result exports as standard ONNX.
type FoldConvBN struct{}

// Name returns "FoldConvBN".
func (FoldConvBN) Name() string { return "FoldConvBN" }

// Run implements Pass.
func (FoldConvBN) Run(g *graph.Graph) (bool, error) {
	return forEachNode(g, func(bn *graph.Node) (bool, error) {
		if _, ok := bn.Op.(*ops.BatchNormalization); !ok || ops.NormalizeDomain(bn.Domain) != "" {
			return false, nil
		}
		y := bn.Inputs[0]
		conv := y.Producer
		if conv == nil || !soleReader(g, y, bn) || conv.Outputs[0] != y {
			return false, nil
		}
		op, ok := conv.Op.(*ops.Conv)
		if !ok || ops.NormalizeDomain(conv.Domain) != "" {
			return false, nil
		}
		w, b := conv.Inputs[1], input(conv, 2)
		if !w.IsConst() || !isFloat32or64(w.Const.DType) || len(w.Const.Shape) < 1 {
			return false, nil
		}
		M := w.Const.Shape[0]
		if b != nil && (!b.IsConst() || b.Const.DType != w.Const.DType || len(b.Const.Shape) != 1 || b.Const.Shape[0] != M) {
			return false, nil
		}
		a, shift, ok := bnAffine(bn, M)
		if !ok {
			return false, nil
		}

		// W' and b' in float64, written back in W's type.
		wv := w.Const.Float64s()
		per := len(wv) / max(M, 1)
		for m := 0; m < M; m++ {
			for i := m * per; i < (m+1)*per; i++ {
				wv[i] *= a[m]
			}
		}
		bv := make([]float64, M)
		if b != nil {
			copy(bv, b.Const.Float64s())
		}
		for m := range bv {
			bv[m] = bv[m]*a[m] + shift[m] // (b - mean)*a + beta
		}
		newW := floatTensor(w.Const.DType, w.Const.Shape, wv)
		newB := floatTensor(w.Const.DType, []int{M}, bv)

		if err := setConst(g, conv, 1, w, newW, w.Name+"_bnfold"); err != nil {
			return false, err
		}
		if err := setConst(g, conv, 2, b, newB, biasName(w.Name)); err != nil {
			return false, err
		}
		folded := *op
		folded.HasBias = true
		conv.Op = &folded
		return true, absorb(g, y, bn)
	})
}

// setConst makes input i of n hold t: in place when old is an initializer that only n reads,
// otherwise in a new initializer named after base.
func setConst(g *graph.Graph, n *graph.Node, i int, old *graph.Value, t *tensor.Tensor, base string) error {
	if old != nil && old.IsConst() && len(old.Consumers) == 1 && old.Consumers[0] == n && !g.IsOutput(old) {
		old.Const = t
		old.Type = ops.TypeOf(t)
		return nil
	}
	v, err := g.AddInitializer(g.UniqueName(base), t)
	if err != nil {
		return err
	}
	return g.SetInput(n, i, v)
}

// biasName derives a bias initializer name from a weight's: "conv0.weight" gives "conv0.bias".
func biasName(weight string) string {
	if s, ok := strings.CutSuffix(weight, ".weight"); ok {
		return s + ".bias"
	}
	return weight + "_bias"
}

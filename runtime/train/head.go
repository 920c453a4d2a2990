package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ReplaceHead gives g's classifier a new output size: the Gemm that computes the first graph
// output (possibly through Identity or Dropout) gets a fresh weight and bias for classes outputs,
// initialized as torch.nn.Linear does (both uniform in [-1/sqrt(F), 1/sqrt(F)] for F input
// features), from a generator seeded with seed. The initializers keep their names and layouts
// (weight [classes, F] with transB=1, [F, classes] otherwise; the bias [classes] or
// [1, classes]), and the graph's types are inferred again. g is modified in place.
func ReplaceHead(g *graph.Graph, classes int, seed int64) error {
	if classes < 1 {
		return fmt.Errorf("%w: %d classes", ErrOptions, classes)
	}
	if len(g.Outputs) == 0 {
		return fmt.Errorf("%w: the graph has no outputs", ErrGraph)
	}
	v := g.Outputs[0]
	for v.Producer != nil && (v.Producer.OpType == "Identity" || v.Producer.OpType == "Dropout") && len(v.Producer.Inputs) > 0 {
		v = v.Producer.Inputs[0]
	}
	n := v.Producer
	if n == nil || n.OpType != "Gemm" || ops.NormalizeDomain(n.Domain) != "" {
		return fmt.Errorf("%w: the first output %q is not computed by a Gemm classifier", ErrGraph, g.Outputs[0].Name)
	}
	op := n.Op.(*ops.Gemm)
	w := n.Inputs[1]
	if !w.IsConst() || w.Const.DType != tensor.Float32 || w.Const.Rank() != 2 || len(w.Consumers) != 1 {
		return fmt.Errorf("%w: classifier %s: its weight must be a float32 matrix initializer used only there", ErrGraph, n)
	}
	features := w.Const.Shape[1]
	shape := tensor.Shape{classes, features}
	if !op.TransB {
		features = w.Const.Shape[0]
		shape = tensor.Shape{features, classes}
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x6865616420726e67))
	bound := 1 / math.Sqrt(float64(features))
	uniform := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32((2*r.Float64() - 1) * bound)
		}
		return s
	}
	newW := tensor.FromSlice(shape, uniform(classes*features))
	var newB *tensor.Tensor
	if len(n.Inputs) > 2 && n.Inputs[2] != nil {
		b := n.Inputs[2]
		if !b.IsConst() || b.Const.DType != tensor.Float32 || len(b.Consumers) != 1 || b.Const.Len() != w.Const.Len()/features {
			return fmt.Errorf("%w: classifier %s: its bias must be a float32 initializer of one value per class, used only there", ErrGraph, n)
		}
		bs := tensor.Shape{classes}
		if b.Const.Rank() == 2 {
			bs = tensor.Shape{1, classes}
		}
		newB = tensor.FromSlice(bs, uniform(classes))
	}
	w.Const, w.Type = newW, ops.TypeOf(newW)
	if newB != nil {
		b := n.Inputs[2]
		b.Const, b.Type = newB, ops.TypeOf(newB)
	}
	if err := g.InferTypes(); err != nil {
		return fmt.Errorf("replace head: %w", err)
	}
	return nil
}

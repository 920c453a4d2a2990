package passes

import (
	"math"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// This file holds the rewrite steps and checks the passes share.

// bypass removes n, whose output out carries the same tensor as its input in: out's readers read
// in instead. When out is a graph output its name must survive, so in takes it; that is possible
// only when in is an internal node output (not a graph input, initializer or graph output), and
// otherwise bypass declines with (false, nil).
func bypass(g *graph.Graph, n *graph.Node, in, out *graph.Value) (bool, error) {
	keepName := ""
	if g.IsOutput(out) {
		if in.Producer == nil || g.IsOutput(in) {
			return false, nil
		}
		keepName = out.Name
	}
	g.ReplaceValue(out, in)
	if err := g.RemoveNode(n); err != nil {
		return false, err
	}
	if keepName != "" {
		if err := g.RenameValue(in, keepName); err != nil {
			return false, err
		}
	}
	return true, nil
}

// absorb removes succ, a one-output node whose work has just been merged into the producer of v
// (its input): succ's readers and graph-output role move to v, which takes succ's output name
// and type, so the names the rest of the graph sees do not change. The caller has checked that
// succ is v's only reader and that v is not a graph output.
func absorb(g *graph.Graph, v *graph.Value, succ *graph.Node) error {
	out := succ.Outputs[0]
	name, typ := out.Name, out.Type
	g.ReplaceValue(out, v)
	if err := g.RemoveNode(succ); err != nil {
		return err
	}
	if err := g.RenameValue(v, name); err != nil {
		return err
	}
	v.Type = typ
	return nil
}

// soleReader reports whether n is v's only reader (at one input position) and v is not a graph
// output, so that v may disappear into a fusion.
func soleReader(g *graph.Graph, v *graph.Value, n *graph.Node) bool {
	return v != nil && len(v.Consumers) == 1 && v.Consumers[0] == n && !g.IsOutput(v)
}

// onlyOutput returns n's output 0 when every other output position is absent, else nil.
func onlyOutput(n *graph.Node) *graph.Value {
	if len(n.Outputs) == 0 {
		return nil
	}
	for _, v := range n.Outputs[1:] {
		if v != nil {
			return nil
		}
	}
	return n.Outputs[0]
}

// input returns n's input i, or nil when it is absent.
func input(n *graph.Node, i int) *graph.Value {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return nil
}

// isFloat32or64 reports whether dt is a type the folding arithmetic writes back exactly.
func isFloat32or64(dt tensor.DType) bool { return dt == tensor.Float32 || dt == tensor.Float64 }

// constFloats returns the values of a constant float vector of length n, or nil.
func constFloats(v *graph.Value, n int) []float64 {
	if v == nil || !v.IsConst() || !v.Const.DType.IsFloat() || len(v.Const.Shape) != 1 || v.Const.Shape[0] != n {
		return nil
	}
	return v.Const.Float64s()
}

// bnAffine returns, for an inference BatchNormalization node with constant parameters over c
// channels, the per-channel affine map it computes, y = a[c]*x + b[c] with
//
//	a = scale / sqrt(var + eps),  b = B - mean * a
//
// in float64. It returns ok = false when the node trains, has more than one output, has
// non-constant or mis-shaped parameters, or when a or b is not finite.
func bnAffine(bn *graph.Node, c int) (a, b []float64, ok bool) {
	op, isBN := bn.Op.(*ops.BatchNormalization)
	if !isBN || op.Training || onlyOutput(bn) == nil || len(bn.Inputs) != 5 {
		return nil, nil, false
	}
	scale, beta := constFloats(bn.Inputs[1], c), constFloats(bn.Inputs[2], c)
	mean, vr := constFloats(bn.Inputs[3], c), constFloats(bn.Inputs[4], c)
	if scale == nil || beta == nil || mean == nil || vr == nil {
		return nil, nil, false
	}
	a, b = make([]float64, c), make([]float64, c)
	eps := float64(op.Epsilon)
	for i := range a {
		a[i] = scale[i] / math.Sqrt(vr[i]+eps)
		b[i] = beta[i] - mean[i]*a[i]
		if !finite(a[i]) || !finite(b[i]) || !finite(float64(float32(a[i]))) || !finite(float64(float32(b[i]))) {
			return nil, nil, false
		}
	}
	return a, b, true
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// floatTensor returns a float32 or float64 tensor of the given shape holding v.
func floatTensor(dt tensor.DType, shape tensor.Shape, v []float64) *tensor.Tensor {
	if dt == tensor.Float64 {
		return tensor.FromSlice(shape.Clone(), append([]float64(nil), v...))
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensor.FromSlice(shape.Clone(), f)
}

// toFloat32s narrows v for FusedConv's prologue fields.
func toFloat32s(v []float64) []float32 {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return f
}

// convLike returns the Conv inside n when n is a standard Conv or a FusedConv, with the FusedConv
// (nil for a plain Conv).
func convLike(n *graph.Node) (*ops.Conv, *ops.FusedConv) {
	switch op := n.Op.(type) {
	case *ops.Conv:
		if ops.NormalizeDomain(n.Domain) == "" {
			return op, nil
		}
	case *ops.FusedConv:
		if n.Domain == ops.DomainDNX {
			return &op.Conv, op
		}
	}
	return nil, nil
}

// setFused turns n (a Conv or FusedConv node) into the FusedConv f, keeping its name, inputs and
// outputs; its attributes become Conv's plus f's (ops.FusedConvAttrs).
func setFused(n *graph.Node, f *ops.FusedConv) {
	setDNX(n, f, ops.FusedConvAttrs(n.Attrs, f))
}

// setDNX makes n the dnx-domain operator op with attributes attrs (which describe op fully, so
// that decoding the node again gives op back).
func setDNX(n *graph.Node, op ops.Op, attrs ops.Attributes) {
	n.Op = op
	n.OpType = op.OpType()
	n.Domain = ops.DomainDNX
	n.Opset = 1
	n.Attrs = attrs
}

// constValue returns v's tensor when it is known before running: an initializer, or the output of
// a Constant node (which FoldConstants would turn into one). It returns nil otherwise.
func constValue(v *graph.Value) *tensor.Tensor {
	if v == nil {
		return nil
	}
	if v.IsConst() {
		return v.Const
	}
	if p := v.Producer; p != nil && ops.NormalizeDomain(p.Domain) == "" {
		if c, ok := p.Op.(*ops.Constant); ok && c.Value != nil {
			return c.Value
		}
	}
	return nil
}

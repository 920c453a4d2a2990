package plan

import (
	"fmt"
	"math"
	"slices"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// RowIndependent reports whether g computes row i of every output's first dim from row i of its
// inputs' first dim alone: every input has the same symbolic first dim (the batch), every node
// that reads a value carrying it maps rows to rows (convolutions, pooling, element-wise
// operators, reshapes that keep the first dim, ...) without touching the first dim, and every
// output comes out of such nodes. Such a graph can run a batch as independent parts
// (device.Lanes) with the same result per row. When it is not, why names the input, output or
// node that decides it.
//
// The analysis is conservative: an operator it does not know, an axis or shape it cannot read at
// this point (an input that is neither a constant nor followed from a Shape), or a value computed
// from the batch's size anywhere but as the first entry of a Reshape's shape makes the graph not
// row-independent, and its batches then run whole.
//
// types, when not nil, are the graph's types at concrete input shapes (Infer): the analysis then
// knows dims the symbolic types leave open, such as those after a Reshape whose shape is
// computed from a Shape (ShuffleNet's channel shuffle).
func RowIndependent(g *graph.Graph, types *Types) (ok bool, why string) {
	if _, why := BatchDim(g); why != "" {
		return false, why
	}
	a := &rowsAnalysis{rowed: map[*graph.Value]bool{}, sizes: map[*graph.Value][]int64{}, types: types}
	for _, v := range g.Inputs {
		a.rowed[v] = true
	}
	for _, n := range g.Nodes {
		rowedIn, sizesIn := false, false
		for _, v := range n.Inputs {
			rowedIn = rowedIn || (v != nil && a.rowed[v])
			sizesIn = sizesIn || (v != nil && a.sizes[v] != nil)
		}
		var err error
		switch {
		case rowedIn:
			err = a.rowRule(n)
		case sizesIn:
			err = a.sizeRule(n)
		default:
			// Computed from constants alone: the same in every part.
			continue
		}
		if err != nil {
			return false, fmt.Sprintf("%s: %v", n, err)
		}
	}
	for _, v := range g.Outputs {
		// Every rule above keeps the batch as the first dim of what it marks rowed.
		if !a.rowed[v] {
			return false, fmt.Sprintf("output %q does not come from the batch", v.Name)
		}
	}
	return true, ""
}

// BatchDim returns the symbolic first dim all of g's inputs share (the batch), or why there is
// none: an input of rank 0, a fixed or unnamed first dim, or inputs whose first dims differ.
func BatchDim(g *graph.Graph) (name, why string) {
	for _, v := range g.Inputs {
		t := v.Type
		switch {
		case t.Unranked || len(t.Shape) == 0:
			return "", fmt.Sprintf("input %q has no first dim", v.Name)
		case t.Shape[0].Param == "":
			return "", fmt.Sprintf("the first dim of input %q is not symbolic", v.Name)
		case name == "":
			name = t.Shape[0].Param
		case t.Shape[0].Param != name:
			return "", fmt.Sprintf("the first dim of input %q is %q, not %q", v.Name, t.Shape[0].Param, name)
		}
	}
	if name == "" {
		return "", "the graph has no inputs"
	}
	return name, ""
}

// Entries of a batch-size value (rowsAnalysis.sizes) that are not known integers.
const (
	symBatch   = math.MinInt64     // the batch's size
	symUnknown = math.MinInt64 + 1 // computed from the batch's size, or not known
)

// rowsAnalysis is RowIndependent's state: which values carry the batch in their first dim
// (rowed), and which are integers computed from the shape of such values (sizes: PyTorch
// exports x.view(x.size(0), -1) as Shape, Gather, Unsqueeze, Concat and Reshape), element by
// element: a known integer, symBatch or symUnknown. A lane of k rows computes every size with k
// for the batch, so a size may only end up where that is right: as the first entry of a
// Reshape's shape, or known.
type rowsAnalysis struct {
	rowed map[*graph.Value]bool
	sizes map[*graph.Value][]int64
	types *Types // concrete types, or nil
}

// typ returns v's type: its concrete one when the analysis has them, else the graph's.
func (a *rowsAnalysis) typ(v *graph.Value) ops.Type {
	if a.types != nil {
		if t, ok := a.types.Type[v]; ok {
			return t
		}
	}
	return v.Type
}

// rowRule returns nil when node n, some of whose inputs carry the batch in their first dim,
// maps rows to rows (its outputs then carry it too; Shape's are sizes), else why not.
func (a *rowsAnalysis) rowRule(n *graph.Node) error {
	if op, ok := n.Op.(*ops.Shape); ok {
		return a.shapeOf(n, op)
	}
	for _, v := range n.Inputs {
		if v != nil && a.sizes[v] != nil && !a.sizeInput(n, v) {
			return fmt.Errorf("reads %q, computed from the batch's size, where it may change the result", v.Name)
		}
	}
	if err := a.rowCheck(n); err != nil {
		return err
	}
	for _, v := range n.Outputs {
		if v != nil {
			a.rowed[v] = true
		}
	}
	return nil
}

// rowCheck returns nil when node n, some of whose inputs carry the batch in their first dim,
// maps rows to rows, else why not.
func (a *rowsAnalysis) rowCheck(n *graph.Node) error {
	rowed := a.rowed
	in := func(i int) *graph.Value {
		if i < len(n.Inputs) {
			return n.Inputs[i]
		}
		return nil
	}
	// only says that inputs other than those listed must not carry the batch.
	only := func(idx ...int) error {
		for i, v := range n.Inputs {
			if v != nil && rowed[v] && !slices.Contains(idx, i) {
				return fmt.Errorf("input %d (%q) carries the batch where the operator expects weights", i, v.Name)
			}
		}
		if v := in(idx[0]); v == nil || !rowed[v] {
			return fmt.Errorf("input %d does not carry the batch", idx[0])
		}
		return nil
	}
	rank := func(v *graph.Value) int {
		if v == nil || a.typ(v).Unranked {
			return -1
		}
		return len(a.typ(v).Shape)
	}
	// axisOK says an axis attribute (of input 0's rank) is not the batch's.
	axisOK := func(axis int64) error { return noBatchAxis([]int64{axis}, rank(in(0))) }
	switch op := n.Op.(type) {
	case *ops.Conv, *ops.AveragePool, *ops.FusedAveragePool, *ops.GlobalAveragePool, *ops.GlobalMaxPool:
		return only(0)
	case *ops.FusedConv:
		if op.Residual {
			return only(0, len(n.Inputs)-1)
		}
		return only(0)
	case *ops.MaxPool:
		if op.NumOutputs > 1 {
			return fmt.Errorf("its indices count across the batch")
		}
		return only(0)
	case *ops.BatchNormalization:
		if op.Training {
			return fmt.Errorf("training mode averages over the batch")
		}
		return only(0)
	case *ops.Dropout:
		if op.Training {
			return fmt.Errorf("training mode")
		}
		return only(0)
	case *ops.Clip, *ops.Cast, *ops.Identity:
		return only(0)
	case *ops.Concat:
		for _, v := range n.Inputs {
			if v != nil && !rowed[v] {
				return fmt.Errorf("input %q does not carry the batch", v.Name)
			}
		}
		return axisOK(op.Axis)
	case *ops.Flatten:
		if err := only(0); err != nil {
			return err
		}
		return axisOK(op.Axis)
	case *ops.Softmax:
		if err := only(0); err != nil {
			return err
		}
		return axisOK(int64(op.Axis))
	case *ops.Transpose:
		if err := only(0); err != nil {
			return err
		}
		if len(op.Perm) == 0 || op.Perm[0] != 0 {
			return fmt.Errorf("moves the batch dim")
		}
		return nil
	case *ops.Split:
		if err := only(0); err != nil {
			return err
		}
		return axisOK(op.Axis)
	case *ops.Gather:
		if err := only(0); err != nil {
			return err
		}
		return axisOK(op.Axis)
	case *ops.Gemm:
		if err := only(0); err != nil {
			return err
		}
		if op.TransA {
			return fmt.Errorf("transposes the batch")
		}
		if c := in(2); c != nil && rank(c) == 2 && !a.dimIs(c, 0, 1) {
			return fmt.Errorf("C has rows of its own")
		}
		return nil
	case *ops.MatMul:
		if err := only(0); err != nil {
			return err
		}
		if rank(in(0)) < 2 || rank(in(1)) > 2 {
			return fmt.Errorf("batched product")
		}
		return nil
	case *ops.Squeeze:
		return a.axesOK(n, op.Axes, op.AxesFromInput, rank(in(0)), only)
	case *ops.Unsqueeze:
		return a.axesOK(n, op.Axes, op.AxesFromInput, rank(n.Outputs[0]), only)
	case *ops.ReduceMean:
		if err := only(0); err != nil {
			return err
		}
		axes, ok := a.ints(op.Axes, op.AxesInput, in(1))
		if !ok || len(axes) == 0 {
			return fmt.Errorf("axes not known, or all")
		}
		return noBatchAxis(axes, rank(in(0)))
	case *ops.Slice:
		if err := only(0); err != nil {
			return err
		}
		var axes []int64
		if op.FromInputs {
			if in(3) == nil {
				return fmt.Errorf("slices the batch (no axes)")
			}
			var ok bool
			if axes, ok = a.ints(nil, true, in(3)); !ok {
				return fmt.Errorf("axes not constant")
			}
		} else if axes = op.Axes; axes == nil {
			return fmt.Errorf("slices the batch (no axes)")
		}
		return noBatchAxis(axes, rank(in(0)))
	case *ops.Pad:
		if err := only(0); err != nil {
			return err
		}
		pads := op.StaticPads
		if pads == nil {
			if op.HasAxesInput {
				return fmt.Errorf("pad axes input not supported here")
			}
			var ok bool
			if pads, ok = a.ints(nil, true, in(1)); !ok {
				return fmt.Errorf("pads not constant")
			}
		}
		r := rank(in(0))
		if r < 1 || len(pads) != 2*r || pads[0] != 0 || pads[r] != 0 {
			return fmt.Errorf("pads the batch dim")
		}
		return nil
	case *ops.Reshape:
		return a.reshapeOK(n, op)
	}
	if elementwise(n) {
		return a.broadcastOK(n)
	}
	return fmt.Errorf("%s is not known to keep batch rows apart", n.OpType)
}

// elementwise reports operators that compute each element from the same element of their
// (broadcast) inputs.
func elementwise(n *graph.Node) bool {
	switch n.Op.(type) {
	case *ops.Arith, *ops.LeakyRelu, *ops.HardSigmoid:
		return true
	}
	switch n.OpType {
	case "Relu", "Sigmoid", "HardSwish", "SiLU":
		return true
	}
	return false
}

// broadcastOK checks an element-wise node: every input that carries the batch has the output's
// rank (its first dim is the output's), and every other input broadcasts along the batch (lower
// rank, or a first dim of 1).
func (a *rowsAnalysis) broadcastOK(n *graph.Node) error {
	rowed := a.rowed
	if a, ok := n.Op.(*ops.Arith); ok && a.Legacy && a.HasAxis {
		return fmt.Errorf("legacy broadcast with an axis")
	}
	out := n.Outputs[0]
	if out == nil || a.typ(out).Unranked {
		return fmt.Errorf("output rank unknown")
	}
	r := len(a.typ(out).Shape)
	for i, v := range n.Inputs {
		if v == nil {
			continue
		}
		if a.typ(v).Unranked {
			return fmt.Errorf("input %d rank unknown", i)
		}
		vr := len(a.typ(v).Shape)
		if rowed[v] {
			if vr != r {
				return fmt.Errorf("input %d carries the batch at rank %d of %d", i, vr, r)
			}
		} else if vr == r && !a.dimIs(v, 0, 1) {
			return fmt.Errorf("input %d (%q) has rows of its own", i, v.Name)
		}
	}
	return nil
}

// axesOK checks Squeeze and Unsqueeze: their axes (of rank r) leave the first dim alone.
func (a *rowsAnalysis) axesOK(n *graph.Node, attr []int64, fromInput bool, r int, only func(...int) error) error {
	if err := only(0); err != nil {
		return err
	}
	var in1 *graph.Value
	if len(n.Inputs) > 1 {
		in1 = n.Inputs[1]
	}
	axes, ok := a.ints(attr, fromInput, in1)
	if !ok || len(axes) == 0 {
		return fmt.Errorf("axes not known, or all")
	}
	return noBatchAxis(axes, r)
}

// noBatchAxis returns nil when no axis of axes (of a value of rank r; negative ones count from
// the end) is the batch's, axis 0.
func noBatchAxis(axes []int64, r int) error {
	if r < 1 {
		return fmt.Errorf("input rank unknown")
	}
	for _, ax := range axes {
		if ax < 0 {
			ax += int64(r)
		}
		if ax == 0 {
			return fmt.Errorf("works along the batch (axis 0)")
		}
	}
	return nil
}

// reshapeOK accepts a reshape to a constant shape whose first entry keeps the batch: 0 (copy
// the input's), or -1 with the other entries making exactly one input row.
func (a *rowsAnalysis) reshapeOK(n *graph.Node, op *ops.Reshape) error {
	if len(n.Inputs) > 1 && n.Inputs[1] != nil && a.rowed[n.Inputs[1]] {
		return fmt.Errorf("its shape comes from the batch")
	}
	var in1 *graph.Value
	if len(n.Inputs) > 1 {
		in1 = n.Inputs[1]
	}
	shape, ok := a.ints(op.Shape, op.ShapeFromInput, in1)
	if !ok || len(shape) == 0 {
		return fmt.Errorf("shape not constant")
	}
	if !known(shape[1:]) {
		return fmt.Errorf("shape entries after the first come from the batch's size")
	}
	switch {
	case shape[0] == 0 && !op.AllowZero:
		return nil
	case shape[0] == -1 || shape[0] == symBatch:
		// -1 keeps the batch when the other entries make exactly one input row; the batch's
		// own size keeps it when they make one row or one of them is -1.
		x := a.typ(n.Inputs[0])
		if x.Unranked || len(x.Shape) == 0 {
			return fmt.Errorf("input rank unknown")
		}
		if shape[0] == symBatch && slices.Contains(shape[1:], -1) {
			return nil
		}
		row := int64(1)
		for _, d := range x.Shape[1:] {
			if d.Value < 0 {
				return fmt.Errorf("input row size unknown")
			}
			row *= d.Value
		}
		got := int64(1)
		for _, d := range shape[1:] {
			if d <= 0 {
				return fmt.Errorf("shape %v leaves the row size open", shape)
			}
			got *= d
		}
		if got != row {
			return fmt.Errorf("shape %v does not keep rows of %d", shape, row)
		}
		return nil
	}
	return fmt.Errorf("shape %v fixes the first dim", shape)
}

// ints returns attr, or with fromInput the integers of v: an initializer's, or a size's entries
// (which may be symBatch or symUnknown).
func (a *rowsAnalysis) ints(attr []int64, fromInput bool, v *graph.Value) ([]int64, bool) {
	if !fromInput {
		return attr, attr != nil
	}
	if v == nil {
		return nil, false
	}
	if e := a.sizes[v]; e != nil {
		return e, true
	}
	if a.types != nil {
		if t := a.types.Known[v]; t != nil {
			return tensorInt64s(t)
		}
	}
	if !v.IsConst() {
		return nil, false
	}
	return tensorInt64s(v.Const)
}

// tensorInt64s returns the integers of an int64 or int32 tensor.
func tensorInt64s(t *tensor.Tensor) ([]int64, bool) {
	switch t.DType {
	case tensor.Int64:
		return slices.Clone(tensor.Data[int64](t)), true
	case tensor.Int32:
		var out []int64
		for _, x := range tensor.Data[int32](t) {
			out = append(out, int64(x))
		}
		return out, true
	}
	return nil, false
}

// dimIs reports whether v's dim i is known to be size.
func (a *rowsAnalysis) dimIs(v *graph.Value, i int, size int64) bool {
	t := a.typ(v)
	return !t.Unranked && i < len(t.Shape) && t.Shape[i].Value == size
}

// known reports whether every entry is a known integer.
func known(xs []int64) bool {
	for _, x := range xs {
		if x == symBatch || x == symUnknown {
			return false
		}
	}
	return true
}

// sizeInput reports whether node n, which maps batch rows, may read the size v: as a Reshape's
// shape (checked by reshapeOK), or when every entry is known, as a constant.
func (a *rowsAnalysis) sizeInput(n *graph.Node, v *graph.Value) bool {
	if _, ok := n.Op.(*ops.Reshape); ok && len(n.Inputs) > 1 && n.Inputs[1] == v {
		return true
	}
	return known(a.sizes[v])
}

// shapeOf makes the output of Shape on a value carrying the batch a size.
func (a *rowsAnalysis) shapeOf(n *graph.Node, op *ops.Shape) error {
	x := a.typ(n.Inputs[0])
	if x.Unranked {
		return fmt.Errorf("input rank unknown")
	}
	r := int64(len(x.Shape))
	clamp := func(i int64) int64 {
		if i < 0 {
			i += r
		}
		return min(max(i, 0), r)
	}
	lo, hi := clamp(op.Start), clamp(op.End)
	e := []int64{}
	for i := lo; i < hi; i++ {
		switch d := x.Shape[i].Value; {
		case i == 0:
			e = append(e, symBatch)
		case d >= 0:
			e = append(e, d)
		default:
			e = append(e, symUnknown)
		}
	}
	a.sizes[n.Outputs[0]] = e
	return nil
}

// sizeRule follows integer arithmetic on sizes (and constants): Gather, Unsqueeze, Squeeze,
// Concat, Cast, Identity, Slice along their only axis, and Add, Sub, Mul, Div, whose result is
// symUnknown wherever it involves the batch's size. Anything else reading a size is refused.
func (a *rowsAnalysis) sizeRule(n *graph.Node) error {
	arg := func(i int) ([]int64, bool) {
		if i >= len(n.Inputs) || n.Inputs[i] == nil {
			return nil, false
		}
		return a.ints(nil, true, n.Inputs[i])
	}
	x, ok := arg(0)
	if !ok {
		return fmt.Errorf("input 0 is not an integer size or constant")
	}
	var out []int64
	switch op := n.Op.(type) {
	case *ops.Identity, *ops.Cast, *ops.Squeeze, *ops.Unsqueeze:
		out = x
	case *ops.Gather:
		idx, ok := arg(1)
		if !ok || !known(idx) || op.Axis != 0 {
			return fmt.Errorf("gathers a size with indices that are not constant")
		}
		for _, i := range idx {
			if i < 0 {
				i += int64(len(x))
			}
			if i < 0 || i >= int64(len(x)) {
				return fmt.Errorf("index %d out of a size of %d", i, len(x))
			}
			out = append(out, x[i])
		}
	case *ops.Concat:
		for i := range n.Inputs {
			e, ok := arg(i)
			if !ok {
				return fmt.Errorf("input %d is not an integer size or constant", i)
			}
			out = append(out, e...)
		}
	case *ops.Slice:
		if !op.FromInputs || len(n.Inputs) > 4 {
			return fmt.Errorf("slices a size in a form not followed here")
		}
		st, ok1 := arg(1)
		en, ok2 := arg(2)
		if !ok1 || !ok2 || len(st) != 1 || len(en) != 1 || !known(st) || !known(en) {
			return fmt.Errorf("slices a size with bounds that are not constant")
		}
		l := int64(len(x))
		b, e := st[0], en[0]
		if b < 0 {
			b += l
		}
		if e < 0 {
			e += l
		}
		b, e = min(max(b, 0), l), min(max(e, 0), l)
		out = append([]int64{}, x[b:max(b, e)]...)
	case *ops.Arith:
		y, ok := arg(1)
		if !ok || (len(x) != len(y) && len(x) != 1 && len(y) != 1) {
			return fmt.Errorf("arithmetic on sizes of %d and %d entries", len(x), len(y))
		}
		isFloat := a.typ(n.Outputs[0]).DType == tensor.Float32 || a.typ(n.Outputs[0]).DType == tensor.Float64
		for i := range max(len(x), len(y)) {
			p, q := x[min(i, len(x)-1)], y[min(i, len(y)-1)]
			if !known([]int64{p, q}) {
				out = append(out, symUnknown)
				continue
			}
			var r int64
			switch op.Kind {
			case ops.ArithAdd:
				r = p + q
			case ops.ArithSub:
				r = p - q
			case ops.ArithMul:
				r = p * q
			case ops.ArithDiv:
				if q == 0 || (isFloat && p%q != 0) {
					r = symUnknown
				} else {
					r = p / q
				}
			}
			out = append(out, r)
		}
	default:
		return fmt.Errorf("%s of a value computed from the batch's size", n.OpType)
	}
	if out == nil {
		out = []int64{}
	}
	for _, v := range n.Outputs {
		if v != nil {
			a.sizes[v] = out
		}
	}
	return nil
}

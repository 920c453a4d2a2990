package plan

import (
	"fmt"
	"slices"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// RowIndependent reports whether g computes row i of every output's first dim from row i of its
// inputs' first dim alone: every input and output has the same symbolic first dim (the batch),
// and every node that reads a value carrying it either maps rows to rows (convolutions, pooling,
// element-wise operators, reshapes that keep the first dim, ...) or does not touch the first
// dim. Such a graph can run a batch as independent parts (device.Lanes) with the same result
// per row. When it is not, why names the input, output or node that decides it.
//
// The analysis is conservative: an operator it does not know, an axis or shape it cannot read at
// this point (an input that is not a constant), or a value computed from the batch's size (Shape)
// makes the graph not row-independent, and its batches then run whole.
func RowIndependent(g *graph.Graph) (ok bool, why string) {
	batch := ""
	// firstDim checks that v's first dim is the batch's symbol (the first input's, named batch).
	firstDim := func(v *graph.Value) string {
		t := v.Type
		switch {
		case t.Unranked || len(t.Shape) == 0:
			return fmt.Sprintf("value %q has no first dim", v.Name)
		case t.Shape[0].Param == "":
			return fmt.Sprintf("the first dim of %q is not symbolic", v.Name)
		case batch == "":
			batch = t.Shape[0].Param
		case t.Shape[0].Param != batch:
			return fmt.Sprintf("the first dim of %q is %q, not %q", v.Name, t.Shape[0].Param, batch)
		}
		return ""
	}
	for _, v := range g.Inputs {
		if why := firstDim(v); why != "" {
			return false, why
		}
	}
	if batch == "" {
		return false, "the graph has no inputs"
	}
	rowed := map[*graph.Value]bool{}
	for _, v := range g.Inputs {
		rowed[v] = true
	}
	for _, n := range g.Nodes {
		carries := false
		for _, v := range n.Inputs {
			carries = carries || (v != nil && rowed[v])
		}
		if !carries {
			// Computed from constants alone: the same in every part.
			continue
		}
		if err := rowRule(n, rowed); err != nil {
			return false, fmt.Sprintf("%s: %v", n, err)
		}
		for _, v := range n.Outputs {
			if v != nil {
				rowed[v] = true
			}
		}
	}
	for _, v := range g.Outputs {
		if !rowed[v] {
			return false, fmt.Sprintf("output %q does not come from the batch", v.Name)
		}
		if why := firstDim(v); why != "" {
			return false, why
		}
	}
	return true, ""
}

// rowRule returns nil when node n, some of whose inputs carry the batch in their first dim,
// maps rows to rows (its outputs then carry it too), else why not.
func rowRule(n *graph.Node, rowed map[*graph.Value]bool) error {
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
		if v == nil || v.Type.Unranked {
			return -1
		}
		return len(v.Type.Shape)
	}
	// axisOK says an axis attribute (of input 0's rank) is not the batch's.
	axisOK := func(axis int64) error {
		r := int64(rank(in(0)))
		if r < 1 {
			return fmt.Errorf("input rank unknown")
		}
		if axis < 0 {
			axis += r
		}
		if axis == 0 {
			return fmt.Errorf("works along the batch (axis 0)")
		}
		return nil
	}
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
		if c := in(2); c != nil && rank(c) == 2 && !dimIs(c, 0, 1) {
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
		return axesOK(n, op.Axes, op.AxesFromInput, rank(in(0)), only)
	case *ops.Unsqueeze:
		return axesOK(n, op.Axes, op.AxesFromInput, rank(n.Outputs[0]), only)
	case *ops.ReduceMean:
		if err := only(0); err != nil {
			return err
		}
		axes, ok := constInts(op.Axes, op.AxesInput, in(1))
		if !ok || len(axes) == 0 {
			return fmt.Errorf("axes not known, or all")
		}
		for _, a := range axes {
			if err := axisOK(a); err != nil {
				return err
			}
		}
		return nil
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
			if axes, ok = constInts(nil, true, in(3)); !ok {
				return fmt.Errorf("axes not constant")
			}
		} else if axes = op.Axes; axes == nil {
			return fmt.Errorf("slices the batch (no axes)")
		}
		for _, a := range axes {
			if err := axisOK(a); err != nil {
				return err
			}
		}
		return nil
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
			if pads, ok = constInts(nil, true, in(1)); !ok {
				return fmt.Errorf("pads not constant")
			}
		}
		r := rank(in(0))
		if r < 1 || len(pads) != 2*r || pads[0] != 0 || pads[r] != 0 {
			return fmt.Errorf("pads the batch dim")
		}
		return nil
	case *ops.Reshape:
		return reshapeOK(n, op, rowed)
	case *ops.Shape:
		return fmt.Errorf("reads the batch's size")
	}
	if elementwise(n) {
		return broadcastOK(n, rowed)
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
func broadcastOK(n *graph.Node, rowed map[*graph.Value]bool) error {
	if a, ok := n.Op.(*ops.Arith); ok && a.Legacy && a.HasAxis {
		return fmt.Errorf("legacy broadcast with an axis")
	}
	out := n.Outputs[0]
	if out == nil || out.Type.Unranked {
		return fmt.Errorf("output rank unknown")
	}
	r := len(out.Type.Shape)
	for i, v := range n.Inputs {
		if v == nil {
			continue
		}
		if v.Type.Unranked {
			return fmt.Errorf("input %d rank unknown", i)
		}
		vr := len(v.Type.Shape)
		if rowed[v] {
			if vr != r {
				return fmt.Errorf("input %d carries the batch at rank %d of %d", i, vr, r)
			}
		} else if vr == r && !dimIs(v, 0, 1) {
			return fmt.Errorf("input %d (%q) has rows of its own", i, v.Name)
		}
	}
	return nil
}

// axesOK checks Squeeze and Unsqueeze: their axes (of rank r) leave the first dim alone.
func axesOK(n *graph.Node, attr []int64, fromInput bool, r int, only func(...int) error) error {
	if err := only(0); err != nil {
		return err
	}
	var in1 *graph.Value
	if len(n.Inputs) > 1 {
		in1 = n.Inputs[1]
	}
	axes, ok := constInts(attr, fromInput, in1)
	if !ok || len(axes) == 0 || r < 1 {
		return fmt.Errorf("axes not known, or all")
	}
	for _, a := range axes {
		if a < 0 {
			a += int64(r)
		}
		if a == 0 {
			return fmt.Errorf("works along the batch (axis 0)")
		}
	}
	return nil
}

// reshapeOK accepts a reshape to a constant shape whose first entry keeps the batch: 0 (copy
// the input's), or -1 with the other entries making exactly one input row.
func reshapeOK(n *graph.Node, op *ops.Reshape, rowed map[*graph.Value]bool) error {
	if len(n.Inputs) > 1 && n.Inputs[1] != nil && rowed[n.Inputs[1]] {
		return fmt.Errorf("its shape comes from the batch")
	}
	var in1 *graph.Value
	if len(n.Inputs) > 1 {
		in1 = n.Inputs[1]
	}
	shape, ok := constInts(op.Shape, op.ShapeFromInput, in1)
	if !ok || len(shape) == 0 {
		return fmt.Errorf("shape not constant")
	}
	switch {
	case shape[0] == 0 && !op.AllowZero:
		return nil
	case shape[0] == -1:
		x := n.Inputs[0].Type
		if x.Unranked || len(x.Shape) == 0 {
			return fmt.Errorf("input rank unknown")
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

// constInts returns attr, or with fromInput the integers of v when it is an initializer.
func constInts(attr []int64, fromInput bool, v *graph.Value) ([]int64, bool) {
	if !fromInput {
		return attr, attr != nil
	}
	if v == nil || !v.IsConst() || v.Const.DType != tensor.Int64 {
		return nil, false
	}
	return slices.Clone(tensor.Data[int64](v.Const)), true
}

// dimIs reports whether v's dim i is known to be size.
func dimIs(v *graph.Value, i int, size int64) bool {
	return !v.Type.Unranked && i < len(v.Type.Shape) && v.Type.Shape[i].Value == size
}

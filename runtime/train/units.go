package train

import (
	"fmt"
	"strings"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// TrainableOp describes one operator the trainer differentiates: its ONNX op type (default
// domain) and what of it is supported.
type TrainableOp struct {
	Op   string
	Note string // the limits on the operator, or what training does with it; "" when none
}

// Trainables returns the operators the trainer differentiates, in the order the error for an
// unsupported operator lists them. The slice is a copy: changing it changes nothing here.
func Trainables() []TrainableOp {
	out := make([]TrainableOp, len(trainables))
	for i, tr := range trainables {
		out[i] = TrainableOp{Op: tr.op, Note: tr.note}
	}
	return out
}

// trainable is one entry of the table of trainable operators.
type trainable struct {
	op   string // ONNX op type, default domain
	note string
	// params are the input positions whose float32 initializers are trained parameters (unless
	// Options.Freeze excludes them); BatchNormalization's running statistics are not among them.
	params []int
	// build makes the unit of node c.base.node, whose decoded op is of the type build expects.
	build func(p *plan, c *unitCtx) (unit, error)
}

// unitCtx is what a trainable's build receives from newUnit.
type unitCtx struct {
	t        *Trainer
	k        device.TrainingKernels // makes the convolutions and pools (see compile)
	base     unitBase
	absorbed map[*graph.Node]bool // nodes merged into an earlier unit (BatchNormalization-ReLU)
	id       func(*graph.Value) (int, error)
}

// trainables is the one list of the operators the trainer differentiates: newUnit builds units
// from it, findParams finds parameters with it, and Trainables, the package documentation and
// the error for an unsupported operator read it. An operator added here needs a unit (forward
// and backward), a reference backward kernel in refgrad, and the tests that check both.
var trainables = []trainable{
	{op: "Conv", params: []int{1, 2}, note: "2-D, any stride, padding, dilation and group; weights and bias are initializers",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.Conv) (unit, error) { return p.newConv(c.t, c.k, c.base, op) })},
	{op: "BatchNormalization", params: []int{1, 2}, note: "batch statistics in Step, running statistics (inputs 3 and 4, not trained) in Evaluate",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.BatchNormalization) (unit, error) {
			return p.newBN(c.t, c.base, op, c.absorbed, c.id)
		})},
	{op: "Relu",
		build: unitOf(func(p *plan, c *unitCtx, _ *ops.Relu) (unit, error) { return p.newRelu(c.base) })},
	{op: "Concat", note: "of activations; channel axis for images",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.Concat) (unit, error) { return p.newConcat(c.base, op) })},
	{op: "AveragePool", note: "2-D",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.AveragePool) (unit, error) {
			return p.newPool(c.k, c.base, &op.Window, false, op.CountIncludePad)
		})},
	{op: "MaxPool", note: "2-D",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.MaxPool) (unit, error) {
			return p.newPool(c.k, c.base, &op.Window, true, false)
		})},
	{op: "GlobalAveragePool",
		build: unitOf(func(p *plan, c *unitCtx, _ *ops.GlobalAveragePool) (unit, error) { return p.newGAP(c.base) })},
	{op: "Gemm", params: []int{0, 1, 2},
		build: unitOf(func(p *plan, c *unitCtx, op *ops.Gemm) (unit, error) { return p.newGemm(c.base, op) })},
	{op: "Flatten",
		build: unitOf(func(p *plan, c *unitCtx, _ *ops.Flatten) (unit, error) { return p.newReshape(c.base) })},
	{op: "Reshape",
		build: unitOf(func(p *plan, c *unitCtx, _ *ops.Reshape) (unit, error) { return p.newReshape(c.base) })},
	{op: "Add", params: []int{0, 1}, note: "with broadcasting",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.Arith) (unit, error) {
			if op.Kind != ops.ArithAdd { // Arith also decodes Sub, Mul and Div
				return nil, fmt.Errorf("%w: %s cannot be trained; of the arithmetic operators only Add can", ops.ErrUnsupportedOp, op.OpType())
			}
			return p.newAdd(c.base)
		})},
	{op: "Pad", note: "constant mode, constant pads",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.Pad) (unit, error) { return p.newPad(c.base, op) })},
	{op: "Identity",
		build: unitOf(func(p *plan, c *unitCtx, _ *ops.Identity) (unit, error) { return p.newAlias(c.base) })},
	{op: "Dropout", note: "inverted dropout at the node's ratio in Step, the identity in Evaluate",
		build: unitOf(func(p *plan, c *unitCtx, op *ops.Dropout) (unit, error) { return p.newDropout(c.t, c.base, op) })},
}

// unitOf adapts a unit constructor that takes the decoded op as its concrete type T to a
// trainable's build; a node whose op is not a T (a decoder the table does not know) is refused
// as unsupported. newUnit names the node in the errors.
func unitOf[T ops.Op](f func(p *plan, c *unitCtx, op T) (unit, error)) func(*plan, *unitCtx) (unit, error) {
	return func(p *plan, c *unitCtx) (unit, error) {
		op, ok := c.base.node.Op.(T)
		if !ok {
			var want T
			return nil, fmt.Errorf("%w: decoded as %T, training expects %T", ops.ErrUnsupportedOp, c.base.node.Op, want)
		}
		return f(p, c, op)
	}
}

// lookupTrainable returns the table entry of a default-domain op type, or nil.
func lookupTrainable(opType string) *trainable {
	for i := range trainables {
		if trainables[i].op == opType {
			return &trainables[i]
		}
	}
	return nil
}

// unsupportedOp is the error for a node the trainer cannot differentiate; it lists the table.
func unsupportedOp(n *graph.Node) error {
	return fmt.Errorf("%w: %s cannot be trained (supported: %s)", ops.ErrUnsupportedOp, n, trainableList())
}

// trainableList returns the table's op types, comma-separated.
func trainableList() string {
	names := make([]string, len(trainables))
	for i, tr := range trainables {
		names[i] = tr.op
	}
	return strings.Join(names, ", ")
}

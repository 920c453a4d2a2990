package opset

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// The opsets Convert handles.
const (
	// MinTarget and MaxTarget bound the target opset.
	MinTarget = 11
	MaxTarget = 21
	// MinSource and MaxSource bound the model's own default-domain opset. Versions 22 to 25 only
	// widened the element types of the operators dnx implements (and added Cast's round_mode), so
	// a model at those opsets converts down when it uses types the target accepts.
	MinSource = 11
	MaxSource = 25
)

var (
	// ErrUnconvertible is wrapped by every error about a node that has no exact equivalent at the
	// target opset, and about a model outside the supported opsets.
	ErrUnconvertible = errors.New("cannot convert")
)

// minIRVersion gives the lowest IR version that may import each default-domain opset, as the
// ONNX release table pairs them (opset 11: IR 6, 12-14: 7, 15-18: 8, 19-20: 9, 21: 10).
func minIRVersion(opset int) int64 {
	switch {
	case opset <= 11:
		return 6
	case opset <= 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	}
	return 10
}

// Convert returns a copy of m whose default-domain operators are rewritten to opset target
// (MinTarget..MaxTarget), with opset_import set to target and ir_version raised to what target
// needs. m itself is not modified. m's default-domain opset must lie in MinSource..MaxSource.
//
// Errors wrap ErrUnconvertible for nodes that cannot be expressed exactly at the target (the
// message names the node, the operator and the reason) and ops.ErrUnsupportedOp for operators
// dnx does not implement. Nodes of other domains are kept unchanged.
func Convert(m *onnxpb.ModelProto, target int) (*onnxpb.ModelProto, error) {
	if m == nil || m.GetGraph() == nil {
		return nil, fmt.Errorf("convert opset: %w: model has no graph", ErrUnconvertible)
	}
	if target < MinTarget || target > MaxTarget {
		return nil, fmt.Errorf("convert opset: %w: target opset %d is outside %d..%d", ErrUnconvertible, target, MinTarget, MaxTarget)
	}
	from, imported := defaultOpset(m)
	if imported && (from < MinSource || from > MaxSource) {
		return nil, fmt.Errorf("convert opset %d to %d: %w: the model's default-domain opset %d is outside %d..%d",
			from, target, ErrUnconvertible, from, MinSource, MaxSource)
	}
	out := proto.Clone(m).(*onnxpb.ModelProto)
	if imported && from != target {
		if err := checkFunctions(out); err != nil {
			return nil, fmt.Errorf("convert opset %d to %d: %w", from, target, err)
		}
		c := newConverter(out, from, target)
		if err := c.run(); err != nil {
			return nil, fmt.Errorf("convert opset %d to %d: %w", from, target, err)
		}
	}
	setDefaultOpset(out, target)
	if ir := minIRVersion(target); out.GetIrVersion() < ir {
		out.IrVersion = proto.Int64(ir)
	}
	return out, nil
}

// defaultOpset returns the model's default-domain opset and whether the model imports it.
func defaultOpset(m *onnxpb.ModelProto) (int, bool) {
	for _, o := range m.GetOpsetImport() {
		if ops.NormalizeDomain(o.GetDomain()) == "" {
			return int(o.GetVersion()), true
		}
	}
	return 0, false
}

// setDefaultOpset points the default domain's opset_import entry (either spelling) at v, adding
// the entry when the model has none.
func setDefaultOpset(m *onnxpb.ModelProto, v int) {
	for _, o := range m.GetOpsetImport() {
		if ops.NormalizeDomain(o.GetDomain()) == "" {
			o.Version = proto.Int64(int64(v))
			return
		}
	}
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(""), Version: proto.Int64(int64(v))})
}

// checkFunctions refuses model-local functions that import the default domain: their bodies
// would need the same rewrites, with their own opset_import, and dnx does not run them anyway.
func checkFunctions(m *onnxpb.ModelProto) error {
	for _, f := range m.GetFunctions() {
		for _, o := range f.GetOpsetImport() {
			if ops.NormalizeDomain(o.GetDomain()) == "" {
				return fmt.Errorf("%w: model-local function %q (domain %q) uses the default domain; functions are not converted",
					ErrUnconvertible, f.GetName(), f.GetDomain())
			}
		}
	}
	return nil
}

// run converts every default-domain node of the main graph, then removes the constants that the
// rewrites left unused.
func (c *converter) run() error {
	rules := opRules()
	var nodes []*onnxpb.NodeProto
	for i, np := range c.g.GetNode() {
		if ops.NormalizeDomain(np.GetDomain()) != "" {
			nodes = append(nodes, np)
			continue
		}
		n := &node{NodeProto: np, index: i}
		r, ok := rules[np.GetOpType()]
		if !ok {
			return fmt.Errorf("%s: %w: %s is not an operator dnx implements, so it cannot be converted",
				n, ops.ErrUnsupportedOp, np.GetOpType())
		}
		if len(np.GetOutput()) == 0 || np.GetOutput()[0] == "" {
			return c.refuse(n, "the node has no first output")
		}
		if c.to < r.since {
			return c.refuse(n, "%s does not exist before opset %d", np.GetOpType(), r.since)
		}
		// Types are checked before the rewrite, while the node's inputs are still the values
		// whose types are known (a rewrite may feed it from new helper nodes).
		if err := c.checkTypes(n, r); err != nil {
			return err
		}
		if r.rewrite != nil {
			if err := r.rewrite(c, n); err != nil {
				return err
			}
		}
		nodes = append(nodes, n.pre...)
		nodes = append(nodes, n.NodeProto)
		nodes = append(nodes, n.post...)
	}
	c.g.Node = nodes
	c.g.Initializer = append(c.g.Initializer, c.newInits...)
	c.removeUnused()
	return nil
}

// refuse returns an ErrUnconvertible error about node n.
func (c *converter) refuse(n *node, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrUnconvertible, n, fmt.Sprintf(format, args...))
}

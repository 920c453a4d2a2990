package opset

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// converter holds one conversion: the model copy being rewritten and what the rules need to know
// about its values.
type converter struct {
	m        *onnxpb.ModelProto
	g        *onnxpb.GraphProto
	from, to int

	types     map[string]ops.Type // value name -> type, where inference or the model knows it
	kinds     map[string]string   // value name -> "sequence", "optional", ... for declared non-tensor values
	inits     map[string]*onnxpb.TensorProto
	overrides map[string]bool              // initializers also listed in graph.input: feedable, so not constants
	producer  map[string]*onnxpb.NodeProto // value name -> the node that outputs it
	uses      map[string]int               // value name -> node inputs (any graph depth) + graph outputs naming it
	names     map[string]bool              // every value and node name in use, for fresh names
	detached  []string                     // values a rewrite stopped using: removed when unused
	newInits  []*onnxpb.TensorProto        // initializers the rewrites created
	counter   int                          // suffix source for fresh names
}

// node is a default-domain node being converted, with the helper nodes a rewrite puts before and
// after it.
type node struct {
	*onnxpb.NodeProto
	index     int
	pre, post []*onnxpb.NodeProto
}

// String names the node for messages: its name, or its position and first output when unnamed.
func (n *node) String() string {
	if n.GetName() != "" {
		return fmt.Sprintf("node %q (%s)", n.GetName(), n.GetOpType())
	}
	out := ""
	if len(n.Output) > 0 {
		out = fmt.Sprintf(", output %q", n.Output[0])
	}
	return fmt.Sprintf("node #%d (%s%s)", n.index, n.GetOpType(), out)
}

func newConverter(m *onnxpb.ModelProto, from, to int) *converter {
	g := m.GetGraph()
	c := &converter{
		m: m, g: g, from: from, to: to,
		inits:     map[string]*onnxpb.TensorProto{},
		overrides: map[string]bool{},
		producer:  map[string]*onnxpb.NodeProto{},
		uses:      map[string]int{},
		names:     map[string]bool{},
	}
	for _, t := range g.GetInitializer() {
		c.inits[t.GetName()] = t
	}
	// From IR 4 an initializer that is also a graph input is only a default: the caller may feed
	// another value, so it is not a constant. IR 3 listed every initializer as an input.
	if m.GetIrVersion() >= 4 {
		for _, vi := range g.GetInput() {
			if c.inits[vi.GetName()] != nil {
				c.overrides[vi.GetName()] = true
			}
		}
	}
	for _, np := range g.GetNode() {
		for _, o := range np.GetOutput() {
			if o != "" {
				c.producer[o] = np
			}
		}
	}
	for _, vi := range g.GetOutput() {
		c.uses[vi.GetName()]++
	}
	collectNames(g, c.names, c.uses, true)
	c.types = inferTypes(m)
	c.kinds = declaredKinds(g)
	return c
}

// collectNames records every value and node name of g and its subgraphs in names and, when
// count is set, every node input in uses (subgraph nodes may name outer values implicitly).
func collectNames(g *onnxpb.GraphProto, names map[string]bool, uses map[string]int, count bool) {
	add := func(s string) {
		if s != "" {
			names[s] = true
		}
	}
	for _, vi := range g.GetInput() {
		add(vi.GetName())
	}
	for _, vi := range g.GetOutput() {
		add(vi.GetName())
	}
	for _, vi := range g.GetValueInfo() {
		add(vi.GetName())
	}
	for _, t := range g.GetInitializer() {
		add(t.GetName())
	}
	for _, sp := range g.GetSparseInitializer() {
		add(sp.GetValues().GetName())
	}
	for _, np := range g.GetNode() {
		add(np.GetName())
		for _, in := range np.GetInput() {
			add(in)
			if count && in != "" {
				uses[in]++
			}
		}
		for _, o := range np.GetOutput() {
			add(o)
		}
		for _, a := range np.GetAttribute() {
			if a.GetG() != nil {
				collectNames(a.GetG(), names, uses, count)
			}
			for _, sg := range a.GetGraphs() {
				collectNames(sg, names, uses, count)
			}
		}
	}
}

// fresh returns a name based on base that no value or node of the model uses, and reserves it.
func (c *converter) fresh(base string) string {
	if base == "" {
		base = "opset"
	}
	for {
		c.counter++
		name := base + "_" + strconv.Itoa(c.counter)
		if !c.names[name] {
			c.names[name] = true
			return name
		}
	}
}

// base returns a stem for names derived from node n: its name, else its first output.
func (n *node) base() string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.Output) > 0 && n.Output[0] != "" {
		return n.Output[0]
	}
	return n.GetOpType()
}

// input returns n's input i, or "" when it is absent.
func (n *node) input(i int) string {
	if i < len(n.Input) {
		return n.Input[i]
	}
	return ""
}

// setInput makes value name n's input i, padding absent inputs with "".
func (c *converter) setInput(n *node, i int, name string) {
	for len(n.Input) <= i {
		n.Input = append(n.Input, "")
	}
	if old := n.Input[i]; old != "" {
		c.release(old)
	}
	n.Input[i] = name
	if name != "" {
		c.uses[name]++
	}
}

// dropInput removes n's input i (making it absent) and trims trailing absent inputs.
func (c *converter) dropInput(n *node, i int) {
	if i >= len(n.Input) {
		return
	}
	if old := n.Input[i]; old != "" {
		c.release(old)
	}
	n.Input[i] = ""
	for len(n.Input) > 0 && n.Input[len(n.Input)-1] == "" {
		n.Input = n.Input[:len(n.Input)-1]
	}
}

// release records that one use of value name went away; removeUnused deletes it if it was a
// constant that nothing uses any more.
func (c *converter) release(name string) {
	c.uses[name]--
	c.detached = append(c.detached, name)
}

// removeUnused deletes the initializers and Constant nodes the rewrites detached from their last
// consumer. Values that were unused before the conversion are left alone.
func (c *converter) removeUnused() {
	deadInit := map[string]bool{}
	deadNode := map[*onnxpb.NodeProto]bool{}
	for _, name := range c.detached {
		if c.uses[name] > 0 {
			continue
		}
		if c.inits[name] != nil {
			deadInit[name] = true
			continue
		}
		if p := c.producer[name]; p != nil && isConstantNode(p) {
			deadNode[p] = true
		}
	}
	if len(deadInit) == 0 && len(deadNode) == 0 {
		return
	}
	dead := map[string]bool{}
	var inits []*onnxpb.TensorProto
	for _, t := range c.g.Initializer {
		if deadInit[t.GetName()] {
			dead[t.GetName()] = true
			continue
		}
		inits = append(inits, t)
	}
	c.g.Initializer = inits
	var nodes []*onnxpb.NodeProto
	for _, np := range c.g.Node {
		if deadNode[np] {
			dead[np.Output[0]] = true
			continue
		}
		nodes = append(nodes, np)
	}
	c.g.Node = nodes
	c.g.Input = dropValueInfos(c.g.Input, dead)
	c.g.ValueInfo = dropValueInfos(c.g.ValueInfo, dead)
}

func dropValueInfos(list []*onnxpb.ValueInfoProto, dead map[string]bool) []*onnxpb.ValueInfoProto {
	var out []*onnxpb.ValueInfoProto
	for _, vi := range list {
		if !dead[vi.GetName()] {
			out = append(out, vi)
		}
	}
	return out
}

// isConstantNode reports whether np is a default-domain Constant node with one output.
func isConstantNode(np *onnxpb.NodeProto) bool {
	return np.GetOpType() == "Constant" && ops.NormalizeDomain(np.GetDomain()) == "" && len(np.GetOutput()) == 1
}

// constant returns the value of name when it is a constant: a non-overridable initializer or the
// output of a Constant node. ok is false for anything else; err reports a constant that cannot be
// read (external data, a type dnx does not hold).
func (c *converter) constant(name string) (t *tensor.Tensor, ok bool, err error) {
	if name == "" {
		return nil, false, nil
	}
	if tp := c.inits[name]; tp != nil {
		if c.overrides[name] {
			return nil, false, nil
		}
		t, err := onnx.DecodeTensor(tp, "")
		if err != nil {
			return nil, true, fmt.Errorf("initializer %q: %w", name, err)
		}
		return t, true, nil
	}
	p := c.producer[name]
	if p == nil || !isConstantNode(p) {
		return nil, false, nil
	}
	t, err = constantNodeValue(p)
	if err != nil {
		return nil, true, fmt.Errorf("Constant node output %q: %w", name, err)
	}
	return t, true, nil
}

// constantNodeValue decodes the one value attribute of a Constant node.
func constantNodeValue(np *onnxpb.NodeProto) (*tensor.Tensor, error) {
	for _, a := range np.GetAttribute() {
		switch a.GetName() {
		case "value":
			return onnx.DecodeTensor(a.GetT(), "")
		case "value_int":
			return tensor.Scalar(a.GetI()), nil
		case "value_ints":
			v := append([]int64{}, a.GetInts()...)
			return tensor.FromSlice(tensor.Shape{len(v)}, v), nil
		case "value_float":
			return tensor.Scalar(a.GetF()), nil
		case "value_floats":
			v := append([]float32{}, a.GetFloats()...)
			return tensor.FromSlice(tensor.Shape{len(v)}, v), nil
		}
	}
	return nil, fmt.Errorf("no value, value_int(s) or value_float(s) attribute")
}

// constInts returns the integer values of input i of n when it is a constant. ok is false when the
// input is computed at run time. An absent input gives (nil, false, nil).
func (c *converter) constInts(n *node, i int) (vals []int64, ok bool, err error) {
	t, ok, err := c.constant(n.input(i))
	if !ok || err != nil {
		return nil, ok, err
	}
	vals, err = t.Int64s()
	if err != nil {
		return nil, true, fmt.Errorf("input %d %q: %w", i, n.input(i), err)
	}
	return append([]int64{}, vals...), true, nil
}

// addInt64s adds a 1-D int64 initializer holding vals and returns its fresh name.
func (c *converter) addInt64s(base string, vals []int64) string {
	name := c.fresh(base)
	c.newInits = append(c.newInits, &onnxpb.TensorProto{
		Name:      proto.String(name),
		DataType:  proto.Int32(int32(tensor.Int64)),
		Dims:      []int64{int64(len(vals))},
		Int64Data: append([]int64{}, vals...),
	})
	return name
}

// addFloat32 adds a scalar float32 initializer and returns its fresh name.
func (c *converter) addFloat32(base string, v float32) string {
	name := c.fresh(base)
	c.newInits = append(c.newInits, &onnxpb.TensorProto{
		Name:      proto.String(name),
		DataType:  proto.Int32(int32(tensor.Float32)),
		FloatData: []float32{v},
	})
	return name
}

// newNode returns a default-domain node with a fresh name derived from base.
func (c *converter) newNode(base, opType string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	for _, in := range inputs {
		if in != "" {
			c.uses[in]++
		}
	}
	return &onnxpb.NodeProto{
		Name:      proto.String(c.fresh(base + "_" + opType)),
		OpType:    proto.String(opType),
		Domain:    proto.String(""),
		Input:     inputs,
		Output:    outputs,
		Attribute: attrs,
	}
}

// rank returns the rank of value name when it is known.
func (c *converter) rank(name string) (int, bool) {
	t, ok := c.types[name]
	if !ok || t.Unranked {
		return 0, false
	}
	return len(t.Shape), true
}

// dims returns the dims of value name when its rank is known.
func (c *converter) dims(name string) ([]ops.Dim, bool) {
	t, ok := c.types[name]
	if !ok || t.Unranked {
		return nil, false
	}
	return t.Shape, true
}

// dtype returns the element type of value name, or Undefined when unknown.
func (c *converter) dtype(name string) tensor.DType {
	return c.types[name].DType
}

// Attribute helpers. ONNX attributes are looked up by name; a node holds each at most once.

func (n *node) attr(name string) *onnxpb.AttributeProto {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func (n *node) hasAttr(name string) bool { return n.attr(name) != nil }

func (n *node) delAttr(name string) {
	var out []*onnxpb.AttributeProto
	for _, a := range n.Attribute {
		if a.GetName() != name {
			out = append(out, a)
		}
	}
	n.Attribute = out
}

func (n *node) setAttr(a *onnxpb.AttributeProto) {
	n.delAttr(a.GetName())
	n.Attribute = append(n.Attribute, a)
}

// getInt returns an INT attribute's value, or def when absent.
func (n *node) getInt(name string, def int64) int64 {
	if a := n.attr(name); a != nil {
		return a.GetI()
	}
	return def
}

func intsAttr(name string, v []int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: append([]int64{}, v...)}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func floatAttr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func tensorAttr(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// used reports whether value name is consumed by a node or is a graph output.
func (c *converter) used(name string) bool { return name != "" && c.uses[name] > 0 }

// normAxis maps axis onto [0, rank): a negative axis counts from the back.
func normAxis(axis int64, rank int) (int, error) {
	a := axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	return int(a), nil
}

func strPtr(s string) *string { return proto.String(s) }

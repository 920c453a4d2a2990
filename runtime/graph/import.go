package graph

import (
	"container/heap"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ErrInvalidGraph is wrapped by every structural error: dangling or duplicate names, cycles,
// unsupported value types.
var ErrInvalidGraph = errors.New("invalid graph")

// ErrUnsupportedOpset is wrapped by the error about a model whose default-domain (ai.onnx) opset
// lies outside ops.MinOpset..ops.MaxOpset.
var ErrUnsupportedOpset = errors.New("unsupported opset")

// Load reads an ONNX file and imports it with the default operator registry. External data is
// resolved relative to the file's folder.
//
// Loading holds three copies of the weights at different times: the file's bytes, the parsed
// protobuf, and the decoded tensors. Load collects garbage between the stages so that at most two
// are alive at once and the memory of the dropped ones is reused by what follows (weight packing),
// which keeps the process's peak RSS near twice the weights instead of four times.
func Load(path string) (*Graph, error) {
	m, err := onnx.ReadModelFile(path)
	if err != nil {
		return nil, err
	}
	runtime.GC() // the file's bytes
	g, err := Import(m, filepath.Dir(path), ops.Default())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m = nil
	runtime.GC() // the protobuf
	return g, nil
}

// Import builds a Graph from a model. baseDir is the folder external data is resolved against
// ("" refuses external data). The default-domain opset must lie in ops.MinOpset..ops.MaxOpset,
// and every node must be supported by reg at the model's opset.
func Import(m *onnxpb.ModelProto, baseDir string, reg *ops.Registry) (*Graph, error) {
	gp := m.GetGraph()
	if gp == nil {
		return nil, fmt.Errorf("%w: model has no graph", ErrInvalidGraph)
	}
	g := &Graph{
		Name:            gp.GetName(),
		IRVersion:       m.GetIrVersion(),
		ProducerName:    m.GetProducerName(),
		ProducerVersion: m.GetProducerVersion(),
		Domain:          m.GetDomain(),
		ModelVersion:    m.GetModelVersion(),
		DocString:       m.GetDocString(),
		GraphDocString:  gp.GetDocString(),
		Opsets:          map[string]int{},
		values:          map[string]*Value{},
	}
	// A repeated key keeps its first place and its last value (see metadata.go). The index map
	// keeps this linear however many entries a file holds; SetMetadata's scan would not.
	at := map[string]int{}
	for _, p := range m.GetMetadataProps() {
		if i, dup := at[p.GetKey()]; dup {
			g.metadata[i].Value = p.GetValue()
			continue
		}
		at[p.GetKey()] = len(g.metadata)
		g.metadata = append(g.metadata, MetadataProp{Key: p.GetKey(), Value: p.GetValue()})
	}
	for _, o := range m.GetOpsetImport() {
		d, v := ops.NormalizeDomain(o.GetDomain()), o.GetVersion()
		// Outside the range the decoders know, Lookup would quietly decode a newer opset with an
		// older Schema, whose meaning may differ. Checked as int64, before the conversion to int.
		if d == "" && (v < ops.MinOpset || v > ops.MaxOpset) {
			return nil, fmt.Errorf("%w: default-domain opset %d (dnx supports %d to %d)",
				ErrUnsupportedOpset, v, ops.MinOpset, ops.MaxOpset)
		}
		g.Opsets[d] = int(v)
	}
	if len(m.GetOpsetImport()) == 0 {
		g.Opsets[""] = 1 // IR version 1-2 models without opset_import mean opset 1
	}
	if len(gp.GetSparseInitializer()) > 0 {
		return nil, fmt.Errorf("%w: sparse initializers are not supported", ErrInvalidGraph)
	}

	// Initializers first: in IR 3 models they are repeated in graph.input, and then they are
	// constants, not inputs to feed.
	for i, tp := range gp.GetInitializer() {
		name := tp.GetName()
		if name == "" {
			return nil, fmt.Errorf("%w: initializer %d has no name", ErrInvalidGraph, i)
		}
		if g.values[name] != nil {
			return nil, fmt.Errorf("%w: initializer %q is defined twice", ErrInvalidGraph, name)
		}
		t, err := onnx.DecodeTensor(tp, baseDir)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", name, err)
		}
		v := &Value{Name: name, Type: ops.TypeOf(t), Const: t}
		g.values[name] = v
		g.Initializers = append(g.Initializers, v)
	}
	g.inputTypes = map[*Value]ops.Type{}
	for _, vi := range gp.GetInput() {
		name := vi.GetName()
		if name == "" {
			return nil, fmt.Errorf("%w: a graph input has no name", ErrInvalidGraph)
		}
		if v := g.values[name]; v != nil {
			if v.IsConst() {
				continue
			}
			return nil, fmt.Errorf("%w: graph input %q is listed twice", ErrInvalidGraph, name)
		}
		typ, err := typeFromProto(vi.GetType())
		if err != nil {
			return nil, fmt.Errorf("graph input %q: %w", name, err)
		}
		v := &Value{Name: name, Type: typ}
		g.values[name] = v
		g.Inputs = append(g.Inputs, v)
		g.inputTypes[v] = typ
	}

	// Nodes: create every output value first so that inputs can be resolved whatever the file
	// order; then sort.
	nodes := make([]*Node, len(gp.GetNode()))
	for i, np := range gp.GetNode() {
		n := &Node{
			Name:      np.GetName(),
			OpType:    np.GetOpType(),
			Domain:    ops.NormalizeDomain(np.GetDomain()),
			DocString: np.GetDocString(),
		}
		if n.OpType == "" {
			return nil, fmt.Errorf("%w: node %d (%q) has no op_type", ErrInvalidGraph, i, n.Name)
		}
		opset, ok := g.Opsets[n.Domain]
		if !ok {
			return nil, fmt.Errorf("%s: domain %q is not imported by the model (opset_import)", n, np.GetDomain())
		}
		n.Opset = opset
		attrs, err := decodeAttrs(np.GetAttribute(), baseDir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		n.Attrs = attrs
		for _, out := range np.GetOutput() {
			if out == "" {
				n.Outputs = append(n.Outputs, nil)
				continue
			}
			if prev := g.values[out]; prev != nil {
				return nil, fmt.Errorf("%w: %s output %q is already defined (%s)", ErrInvalidGraph, n, out, describe(prev))
			}
			v := &Value{Name: out, Producer: n}
			g.values[out] = v
			n.Outputs = append(n.Outputs, v)
		}
		nodes[i] = n
	}
	for i, np := range gp.GetNode() {
		n := nodes[i]
		for k, in := range np.GetInput() {
			if in == "" {
				n.Inputs = append(n.Inputs, nil)
				continue
			}
			v := g.values[in]
			if v == nil {
				return nil, fmt.Errorf("%w: %s input %d %q is not a graph input, initializer or node output", ErrInvalidGraph, n, k, in)
			}
			n.Inputs = append(n.Inputs, v)
			v.Consumers = append(v.Consumers, n)
		}
	}
	sorted, err := topoSort(nodes)
	if err != nil {
		return nil, err
	}
	g.Nodes = sorted

	for _, vi := range gp.GetOutput() {
		v := g.values[vi.GetName()]
		if v == nil {
			return nil, fmt.Errorf("%w: graph output %q is not produced by any node or input", ErrInvalidGraph, vi.GetName())
		}
		g.Outputs = append(g.Outputs, v)
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("%w: graph has no outputs", ErrInvalidGraph)
	}

	for _, n := range g.Nodes {
		present := make([]bool, len(n.Inputs))
		for i, v := range n.Inputs {
			present[i] = v != nil
		}
		op, err := reg.Decode(&ops.Node{
			Name: n.Name, OpType: n.OpType, Domain: n.Domain, Opset: n.Opset,
			Attrs: n.Attrs, Inputs: present, NumOutputs: len(n.Outputs),
		})
		if err != nil {
			return nil, err
		}
		n.Op = op
	}

	declared := map[string]*onnxpb.TypeProto{}
	for _, vi := range gp.GetValueInfo() {
		declared[vi.GetName()] = vi.GetType()
	}
	for _, vi := range gp.GetOutput() {
		declared[vi.GetName()] = vi.GetType()
	}
	g.declared = declared
	if err := g.inferTypes(); err != nil {
		return nil, err
	}
	return g, nil
}

// describe says where a value comes from, for duplicate-name errors.
func describe(v *Value) string {
	switch {
	case v.Producer != nil:
		return "by " + v.Producer.String()
	case v.IsConst():
		return "as an initializer"
	}
	return "as a graph input"
}

// inferTypes runs every node's inference in topological order. Where inference leaves a dim
// unknown and the model declares it (value_info, graph outputs), the declared dim is used.
func (g *Graph) inferTypes() error {
	declared := g.declared
	// Values known at import: initializers and Constant node outputs, so that inference of the
	// ops that read them (Pad's pads, Reshape's shape, ...) can be exact.
	known := map[*Value]*tensor.Tensor{}
	for _, n := range g.Nodes {
		args := make([]*ops.Arg, len(n.Inputs))
		for i, v := range n.Inputs {
			if v != nil {
				c := v.Const
				if c == nil {
					c = known[v]
				}
				args[i] = &ops.Arg{Type: v.Type, Const: c}
			}
		}
		if c, ok := n.Op.(*ops.Constant); ok && len(n.Outputs) == 1 && n.Outputs[0] != nil && c.Value != nil {
			known[n.Outputs[0]] = c.Value
		}
		types, err := ops.InferChecked(n.Op, args)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if len(types) < len(n.Outputs) {
			return fmt.Errorf("%s: inference gave %d output types for %d outputs", n, len(types), len(n.Outputs))
		}
		for i, v := range n.Outputs {
			if v == nil {
				continue
			}
			v.Type = types[i]
			if tp, ok := declared[v.Name]; ok {
				if d, err := typeFromProto(tp); err == nil {
					v.Type = mergeTypes(v.Type, d)
				}
			}
		}
	}
	return nil
}

// mergeTypes fills what inference left unknown from a declared type.
func mergeTypes(inferred, decl ops.Type) ops.Type {
	if inferred.DType == tensor.Undefined {
		inferred.DType = decl.DType
	}
	if decl.Unranked {
		return inferred
	}
	if inferred.Unranked {
		inferred.Unranked = false
		inferred.Shape = append([]ops.Dim(nil), decl.Shape...)
		return inferred
	}
	if len(inferred.Shape) != len(decl.Shape) {
		return inferred
	}
	out := append([]ops.Dim(nil), inferred.Shape...)
	for i := range out {
		if !out[i].IsKnown() && out[i].Param == "" {
			out[i] = decl.Shape[i]
		}
	}
	inferred.Shape = out
	return inferred
}

// typeFromProto converts a value type. Only tensor types are supported.
func typeFromProto(tp *onnxpb.TypeProto) (ops.Type, error) {
	tt := tp.GetTensorType()
	if tt == nil {
		kind := "missing"
		switch {
		case tp.GetSequenceType() != nil:
			kind = "sequence"
		case tp.GetOptionalType() != nil:
			kind = "optional"
		case tp.GetMapType() != nil:
			kind = "map"
		case tp.GetSparseTensorType() != nil:
			kind = "sparse tensor"
		}
		return ops.Type{}, fmt.Errorf("%w: %s value types are not supported", ErrInvalidGraph, kind)
	}
	dt := tensor.DType(tt.GetElemType())
	if !dt.Supported() {
		return ops.Type{}, fmt.Errorf("%w: element type %s is not supported", ErrInvalidGraph, dt)
	}
	t := ops.Type{DType: dt}
	if tt.Shape == nil {
		t.Unranked = true
		return t, nil
	}
	dims := tt.GetShape().GetDim()
	if len(dims) > tensor.MaxRank {
		return ops.Type{}, fmt.Errorf("%w: rank %d exceeds %d", tensor.ErrShape, len(dims), tensor.MaxRank)
	}
	t.Shape = make([]ops.Dim, len(dims))
	for i, d := range dims {
		switch v := d.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			if v.DimValue < 0 {
				return ops.Type{}, fmt.Errorf("%w: dim %d is negative (%d)", tensor.ErrShape, i, v.DimValue)
			}
			t.Shape[i] = ops.Known(v.DimValue)
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			t.Shape[i] = ops.Symbolic(v.DimParam)
		default:
			t.Shape[i] = ops.Unknown()
		}
	}
	return t, nil
}

// decodeAttrs converts attribute protos; graph- and sparse-valued attributes are refused.
func decodeAttrs(list []*onnxpb.AttributeProto, baseDir string) (ops.Attributes, error) {
	attrs := ops.Attributes{}
	for _, a := range list {
		name := a.GetName()
		if name == "" {
			return nil, fmt.Errorf("%w: attribute with no name", ErrInvalidGraph)
		}
		if _, dup := attrs[name]; dup {
			return nil, fmt.Errorf("%w: attribute %q is given twice", ErrInvalidGraph, name)
		}
		if a.GetRefAttrName() != "" {
			return nil, fmt.Errorf("attribute %q: references (ref_attr_name) are only valid in functions", name)
		}
		typ := a.GetType()
		if typ == onnxpb.AttributeProto_UNDEFINED {
			typ = guessAttrType(a) // IR version 1 models may omit the type
		}
		var v ops.Attribute
		switch typ {
		case onnxpb.AttributeProto_FLOAT:
			v = ops.Attribute{Kind: ops.AttrFloat, Float: a.GetF()}
		case onnxpb.AttributeProto_INT:
			v = ops.Attribute{Kind: ops.AttrInt, Int: a.GetI()}
		case onnxpb.AttributeProto_STRING:
			v = ops.Attribute{Kind: ops.AttrString, String: string(a.GetS())}
		case onnxpb.AttributeProto_FLOATS:
			v = ops.Attribute{Kind: ops.AttrFloats, Floats: a.GetFloats()}
		case onnxpb.AttributeProto_INTS:
			v = ops.Attribute{Kind: ops.AttrInts, Ints: a.GetInts()}
		case onnxpb.AttributeProto_STRINGS:
			ss := make([]string, len(a.GetStrings()))
			for i, s := range a.GetStrings() {
				ss[i] = string(s)
			}
			v = ops.Attribute{Kind: ops.AttrStrings, Strings: ss}
		case onnxpb.AttributeProto_TENSOR:
			t, err := onnx.DecodeTensor(a.GetT(), baseDir)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", name, err)
			}
			v = ops.Attribute{Kind: ops.AttrTensor, Tensor: t}
		default:
			return nil, fmt.Errorf("attribute %q: %s attributes are not supported", name, typ)
		}
		attrs[name] = v
	}
	return attrs, nil
}

func guessAttrType(a *onnxpb.AttributeProto) onnxpb.AttributeProto_AttributeType {
	switch {
	case a.F != nil:
		return onnxpb.AttributeProto_FLOAT
	case a.I != nil:
		return onnxpb.AttributeProto_INT
	case a.S != nil:
		return onnxpb.AttributeProto_STRING
	case a.T != nil:
		return onnxpb.AttributeProto_TENSOR
	case len(a.Floats) > 0:
		return onnxpb.AttributeProto_FLOATS
	case len(a.Ints) > 0:
		return onnxpb.AttributeProto_INTS
	case len(a.Strings) > 0:
		return onnxpb.AttributeProto_STRINGS
	}
	return onnxpb.AttributeProto_UNDEFINED
}

// topoSort orders nodes so every node follows the producers of its inputs, keeping file order
// where the file is already sorted. A cycle is an error naming one node on it.
func topoSort(nodes []*Node) ([]*Node, error) {
	index := make(map[*Node]int, len(nodes))
	for i, n := range nodes {
		index[n] = i
	}
	indeg := make([]int, len(nodes))
	for i, n := range nodes {
		for _, v := range n.Inputs {
			if v != nil && v.Producer != nil {
				indeg[i]++
			}
		}
	}
	ready := &intHeap{}
	for i, d := range indeg {
		if d == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]*Node, 0, len(nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		n := nodes[i]
		out = append(out, n)
		for _, v := range n.Outputs {
			if v == nil {
				continue
			}
			// Consumers has one entry per input position reading v, as indeg counted.
			for _, c := range v.Consumers {
				j := index[c]
				indeg[j]--
				if indeg[j] == 0 {
					heap.Push(ready, j)
				}
			}
		}
	}
	if len(out) != len(nodes) {
		for i, d := range indeg {
			if d > 0 {
				return nil, fmt.Errorf("%w: %s is on a cycle (or depends on one)", ErrInvalidGraph, nodes[i])
			}
		}
	}
	return out, nil
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

package graph

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// ErrNotExportable is wrapped by Export's errors about graphs that have no standard ONNX form,
// such as graphs holding dnx's internal fused operators.
var ErrNotExportable = errors.New("graph cannot be exported as ONNX")

// Export converts g back into an ONNX model, the inverse of Import: the same IR version, opset
// imports, producer, model domain and version, doc strings (model, graph and nodes),
// metadata_props in g.Metadata order, graph name, inputs, outputs and node order, each node with
// its Attrs as they stand (passes that change a node's meaning keep Attrs in step), initializers
// encoded with onnx.EncodeTensor in g.Initializers order. Inputs and outputs carry their current
// types (symbolic dims by name); intermediate values get a value_info entry only where the
// imported file declared one, so that a re-import infers what this import did.
//
// A graph with a node of dnx's internal domain (ops.DomainDNX, such as FusedConv) is refused with
// an error wrapping ErrNotExportable that names the node: those ops are not ONNX. Export runs
// Validate first and reports a corrupt graph as such. The graph is not modified; the model shares
// no memory with it except attribute tensors' encodings, which are fresh copies too.
func Export(g *Graph) (*onnxpb.ModelProto, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, n := range g.Nodes {
		if ops.NormalizeDomain(n.Domain) == ops.DomainDNX {
			return nil, fmt.Errorf("export: %w: %s is dnx's internal operator (domain %q), not standard ONNX; export the graph before fusing (passes.Portable)",
				ErrNotExportable, n, n.Domain)
		}
	}
	m := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(g.IRVersion),
		ProducerName:    proto.String(g.ProducerName),
		ProducerVersion: proto.String(g.ProducerVersion),
		Domain:          optString(g.Domain),
		DocString:       optString(g.DocString),
	}
	if g.ModelVersion != 0 {
		m.ModelVersion = proto.Int64(g.ModelVersion)
	}
	for _, p := range g.metadata {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(p.Key), Value: proto.String(p.Value)})
	}
	if g.IRVersion == 0 {
		m.IrVersion = proto.Int64(irVersionFor(g.Opsets[""]))
	}
	domains := make([]string, 0, len(g.Opsets))
	for d := range g.Opsets {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(d), Version: proto.Int64(int64(g.Opsets[d]))})
	}

	gp := &onnxpb.GraphProto{Name: proto.String(g.Name), DocString: optString(g.GraphDocString)}
	for _, v := range g.Initializers {
		tp, err := onnx.EncodeTensor(v.Const, v.Name)
		if err != nil {
			return nil, fmt.Errorf("export: initializer %q: %w", v.Name, err)
		}
		gp.Initializer = append(gp.Initializer, tp)
	}
	for _, v := range g.Inputs {
		gp.Input = append(gp.Input, valueInfoOf(v))
	}
	if m.GetIrVersion() < 4 {
		// Before IR 4 every initializer must also be listed as a graph input.
		for _, v := range g.Initializers {
			gp.Input = append(gp.Input, valueInfoOf(v))
		}
	}
	for _, v := range g.Outputs {
		gp.Output = append(gp.Output, valueInfoOf(v))
	}
	for _, n := range g.Nodes {
		np := &onnxpb.NodeProto{OpType: proto.String(n.OpType)}
		if n.Name != "" {
			np.Name = proto.String(n.Name)
		}
		if d := n.Domain; d != "" {
			np.Domain = proto.String(d)
		}
		np.DocString = optString(n.DocString)
		for _, v := range n.Inputs {
			np.Input = append(np.Input, nameOrEmpty(v))
		}
		for _, v := range n.Outputs {
			np.Output = append(np.Output, nameOrEmpty(v))
		}
		attrs, err := encodeAttrs(n.Attrs)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %w", n, err)
		}
		np.Attribute = attrs
		gp.Node = append(gp.Node, np)
		for _, v := range n.Outputs {
			if v == nil || g.IsOutput(v) {
				continue
			}
			if _, ok := g.declared[v.Name]; ok {
				gp.ValueInfo = append(gp.ValueInfo, valueInfoOf(v))
			}
		}
	}
	m.Graph = gp
	return m, nil
}

// irVersionFor returns the IR version ONNX releases paired with a default-domain opset, for graphs
// that carry none (built rather than imported).
func irVersionFor(opset int) int64 {
	var ir int64
	switch {
	case opset <= 8:
		ir = 3
	case opset == 9:
		ir = 4
	case opset == 10:
		ir = 5
	case opset == 11:
		ir = 6
	case opset <= 14:
		ir = 7
	case opset <= 18:
		ir = 8
	case opset <= 20:
		ir = 9
	case opset <= 22:
		ir = 10
	default:
		ir = 11
	}
	return min(ir, onnx.MaxIRVersion)
}

// optString returns nil for "", so that an absent description stays absent in the file instead
// of becoming an empty field: a model without doc strings exports to the same bytes as before.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

func nameOrEmpty(v *Value) string {
	if v == nil {
		return ""
	}
	return v.Name
}

// valueInfoOf describes v's current type: an unranked type has no shape, an unknown dim neither a
// value nor a name.
func valueInfoOf(v *Value) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(v.Type.DType))}
	if !v.Type.Unranked {
		shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
		for _, d := range v.Type.Shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case d.IsKnown():
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
			case d.Param != "":
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
			}
			shape.Dim = append(shape.Dim, dim)
		}
		tt.Shape = shape
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(v.Name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}},
	}
}

// encodeAttrs converts decoded attributes back to protos, sorted by name so that the same graph
// always gives the same bytes.
func encodeAttrs(attrs ops.Attributes) ([]*onnxpb.AttributeProto, error) {
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*onnxpb.AttributeProto, 0, len(names))
	for _, name := range names {
		a := attrs[name]
		ap := &onnxpb.AttributeProto{Name: proto.String(name)}
		var typ onnxpb.AttributeProto_AttributeType
		switch a.Kind {
		case ops.AttrFloat:
			typ, ap.F = onnxpb.AttributeProto_FLOAT, proto.Float32(a.Float)
		case ops.AttrInt:
			typ, ap.I = onnxpb.AttributeProto_INT, proto.Int64(a.Int)
		case ops.AttrString:
			typ, ap.S = onnxpb.AttributeProto_STRING, []byte(a.String)
		case ops.AttrFloats:
			typ, ap.Floats = onnxpb.AttributeProto_FLOATS, slices.Clone(a.Floats)
		case ops.AttrInts:
			typ, ap.Ints = onnxpb.AttributeProto_INTS, slices.Clone(a.Ints)
		case ops.AttrStrings:
			typ = onnxpb.AttributeProto_STRINGS
			for _, s := range a.Strings {
				ap.Strings = append(ap.Strings, []byte(s))
			}
		case ops.AttrTensor:
			tp, err := onnx.EncodeTensor(a.Tensor, "")
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", name, err)
			}
			typ, ap.T = onnxpb.AttributeProto_TENSOR, tp
		default:
			return nil, fmt.Errorf("attribute %q has unknown kind %s", name, a.Kind)
		}
		ap.Type = typ.Enum()
		out = append(out, ap)
	}
	return out, nil
}

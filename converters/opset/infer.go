package opset

import (
	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// inferTypes returns what is known of the type of each value of m's main graph: the types the
// model declares, refined by dnx's own inference where the model imports. Import runs on a pruned
// copy (see importable), so that nodes of other domains and external data do not stop it.
func inferTypes(m *onnxpb.ModelProto) map[string]ops.Type {
	types := declaredTypes(m.GetGraph())
	pm := importable(m)
	if pm == nil {
		return types
	}
	g, err := graph.Import(pm, "", ops.Default())
	if err != nil {
		return types
	}
	for _, v := range g.Values() {
		t := v.Type
		if t.DType == tensor.Undefined && !t.Unranked && t.Shape == nil {
			continue
		}
		if d, ok := types[v.Name]; ok && t.Unranked && !d.Unranked {
			t.Shape, t.Unranked = d.Shape, false
		}
		types[v.Name] = t
	}
	return types
}

// declaredTypes reads the types written in the model: graph inputs, outputs and value_info,
// initializers, and Constant node values.
func declaredTypes(g *onnxpb.GraphProto) map[string]ops.Type {
	types := map[string]ops.Type{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetValueInfo(), g.GetOutput()} {
		for _, vi := range list {
			if t, ok := typeOf(vi.GetType()); ok {
				types[vi.GetName()] = t
			}
		}
	}
	for _, tp := range g.GetInitializer() {
		types[tp.GetName()] = tensorProtoType(tp)
	}
	for _, np := range g.GetNode() {
		if !isConstantNode(np) {
			continue
		}
		if t, err := constantNodeValue(np); err == nil {
			types[np.Output[0]] = ops.TypeOf(t)
		} else if a := np.GetAttribute(); len(a) == 1 && a[0].GetT() != nil {
			types[np.Output[0]] = tensorProtoType(a[0].GetT())
		}
	}
	return types
}

// tensorProtoType is the type a TensorProto declares: its element type and dims.
func tensorProtoType(tp *onnxpb.TensorProto) ops.Type {
	dims := make([]ops.Dim, len(tp.GetDims()))
	for i, d := range tp.GetDims() {
		dims[i] = ops.Known(d)
	}
	return ops.Type{DType: tensor.DType(tp.GetDataType()), Shape: dims}
}

// typeOf converts a declared tensor type; other value kinds are not known.
func typeOf(tp *onnxpb.TypeProto) (ops.Type, bool) {
	tt := tp.GetTensorType()
	if tt == nil {
		return ops.Type{}, false
	}
	t := ops.Type{DType: tensor.DType(tt.GetElemType())}
	if tt.Shape == nil {
		t.Unranked = true
		return t, true
	}
	for _, d := range tt.GetShape().GetDim() {
		switch v := d.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			t.Shape = append(t.Shape, ops.Known(v.DimValue))
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			t.Shape = append(t.Shape, ops.Symbolic(v.DimParam))
		default:
			t.Shape = append(t.Shape, ops.Unknown())
		}
	}
	if t.Shape == nil {
		t.Shape = []ops.Dim{}
	}
	return t, true
}

// importable returns a model that graph.Import can take even when m has nodes of other domains
// or external data: external initializers become graph inputs of their declared type, nodes of
// other domains are dropped (their outputs become inputs when the model declares their types),
// and so are the nodes that depend on a value nobody can type. It returns nil when nothing is
// left to infer.
func importable(m *onnxpb.ModelProto) *onnxpb.ModelProto {
	g := m.GetGraph()
	declared := map[string]*onnxpb.TypeProto{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetValueInfo(), g.GetOutput()} {
		for _, vi := range list {
			if vi.GetType().GetTensorType() != nil {
				declared[vi.GetName()] = vi.GetType()
			}
		}
	}
	pg := &onnxpb.GraphProto{Name: g.Name, ValueInfo: g.GetValueInfo()}
	avail := map[string]bool{}
	external := map[string]bool{}
	for _, tp := range g.GetInitializer() {
		if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			external[tp.GetName()] = true
			pg.Input = append(pg.Input, valueInfo(tp.GetName(), tensorTypeProto(tp)))
		} else {
			pg.Initializer = append(pg.Initializer, tp)
		}
		avail[tp.GetName()] = true
	}
	for _, vi := range g.GetInput() {
		if !external[vi.GetName()] {
			pg.Input = append(pg.Input, vi)
			avail[vi.GetName()] = true
		}
	}
	for _, np := range g.GetNode() {
		keep := ops.NormalizeDomain(np.GetDomain()) == ""
		for _, in := range np.GetInput() {
			if in != "" && !avail[in] {
				keep = false
			}
		}
		for _, a := range np.GetAttribute() {
			if a.GetG() != nil || len(a.GetGraphs()) > 0 {
				keep = false
			}
		}
		if keep {
			pg.Node = append(pg.Node, np)
			for _, o := range np.GetOutput() {
				avail[o] = o != ""
			}
			continue
		}
		for _, o := range np.GetOutput() {
			if tp := declared[o]; tp != nil && o != "" {
				pg.Input = append(pg.Input, valueInfo(o, tp))
				avail[o] = true
			}
		}
	}
	for _, vi := range g.GetOutput() {
		if avail[vi.GetName()] {
			pg.Output = append(pg.Output, vi)
		}
	}
	if len(pg.Output) == 0 {
		// Import needs an output; any produced value (or input) does for inference.
		switch {
		case len(pg.Node) > 0 && len(pg.Node[len(pg.Node)-1].GetOutput()) > 0:
			pg.Output = append(pg.Output, &onnxpb.ValueInfoProto{Name: proto.String(pg.Node[len(pg.Node)-1].GetOutput()[0])})
		case len(pg.Input) > 0:
			pg.Output = append(pg.Output, &onnxpb.ValueInfoProto{Name: pg.Input[0].Name})
		default:
			return nil
		}
	}
	return &onnxpb.ModelProto{IrVersion: m.IrVersion, OpsetImport: m.GetOpsetImport(), Graph: pg}
}

func valueInfo(name string, tp *onnxpb.TypeProto) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: tp}
}

// tensorTypeProto is the TypeProto of a TensorProto's declared element type and dims.
func tensorTypeProto(tp *onnxpb.TensorProto) *onnxpb.TypeProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range tp.GetDims() {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
		ElemType: proto.Int32(tp.GetDataType()),
		Shape:    shape,
	}}}
}

// declaredKinds returns the values the model declares with a type other than a tensor, by kind.
func declaredKinds(g *onnxpb.GraphProto) map[string]string {
	kinds := map[string]string{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetValueInfo(), g.GetOutput()} {
		for _, vi := range list {
			switch tp := vi.GetType(); {
			case tp.GetSequenceType() != nil:
				kinds[vi.GetName()] = "sequence"
			case tp.GetOptionalType() != nil:
				kinds[vi.GetName()] = "optional"
			case tp.GetMapType() != nil:
				kinds[vi.GetName()] = "map"
			case tp.GetSparseTensorType() != nil:
				kinds[vi.GetName()] = "sparse tensor"
			}
		}
	}
	return kinds
}

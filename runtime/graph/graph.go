package graph

import (
	"fmt"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"sort"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Value is one tensor in the graph: a graph input, an initializer (Const set, no Producer), or a
// node output.
type Value struct {
	Name      string
	Type      ops.Type
	Const     *tensor.Tensor // initializer value, nil otherwise
	Producer  *Node          // nil for graph inputs and initializers
	Consumers []*Node
}

// IsConst reports whether v is an initializer.
func (v *Value) IsConst() bool { return v.Const != nil && v.Producer == nil }

// Node is one operator application.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Opset   int
	Attrs   ops.Attributes
	Op      ops.Op
	Inputs  []*Value // nil entries are absent optional inputs
	Outputs []*Value // nil entries are absent optional outputs
	// DocString is the node's doc_string, kept so that an export describes its nodes as the
	// file did. A pass that rewrites a node in place keeps it; a removed node's is dropped.
	DocString string
}

// Graph is a model: its values, nodes in topological order, fed inputs and outputs, and the
// model-level fields that describe it without changing what it computes.
//
// The descriptive fields (producer, Domain, ModelVersion, the doc strings and the metadata) are
// filled by Import, copied by Clone, left alone by every pass, and written back by Export, so a
// model keeps its class names, normalisation and provenance through any rewrite. Callers set the
// plain fields directly and the metadata with SetMetadata and DeleteMetadata (see metadata.go).
type Graph struct {
	Name            string // graph.name
	IRVersion       int64
	ProducerName    string
	ProducerVersion string
	// Domain is the model's namespace (ModelProto.domain, reverse-DNS such as "org.example"), not
	// an operator domain.
	Domain string
	// ModelVersion is ModelProto.model_version, the model author's own version number; 0 means
	// none and is not written.
	ModelVersion int64
	// DocString is ModelProto.doc_string, the model's description (dnx build writes its Config
	// there); GraphDocString is GraphProto.doc_string.
	DocString      string
	GraphDocString string
	Opsets         map[string]int // domain ("" = ai.onnx) -> version
	Nodes          []*Node
	Inputs         []*Value // fed by the caller, in the model's graph.input order
	Outputs        []*Value
	Initializers   []*Value // in file order
	values         map[string]*Value
	declared       map[string]*onnxpb.TypeProto // value_info and output types from the file
	inputTypes     map[*Value]ops.Type          // graph input types as declared in the file
	// metadata is ModelProto.metadata_props in file order, one entry per key. It is reached only
	// through the methods in metadata.go, which keep the keys distinct.
	metadata []MetadataProp
}

// Value returns the value named name, or nil.
func (g *Graph) Value(name string) *Value { return g.values[name] }

// Values returns every value, sorted by name.
func (g *Graph) Values() []*Value {
	out := make([]*Value, 0, len(g.values))
	for _, v := range g.values {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// OpHistogram counts nodes per op type.
func (g *Graph) OpHistogram() map[string]int {
	h := map[string]int{}
	for _, n := range g.Nodes {
		h[n.OpType]++
	}
	return h
}

// String describes a node for error messages: its name and op type.
func (n *Node) String() string {
	if n.Name == "" {
		return fmt.Sprintf("%s node", n.OpType)
	}
	return fmt.Sprintf("node %q (%s)", n.Name, n.OpType)
}

// OutputNames returns the names of n's outputs ("" for an absent one).
func (n *Node) OutputNames() []string {
	names := make([]string, len(n.Outputs))
	for i, v := range n.Outputs {
		if v != nil {
			names[i] = v.Name
		}
	}
	return names
}

// SetInputShapes fixes the shapes of some graph inputs (for example batch 1 for a MAC count) and
// re-runs type inference over the whole graph. Each shape must fit the input's type as declared
// in the file, so it can be called again with another batch size.
func (g *Graph) SetInputShapes(shapes map[string]tensor.Shape) error {
	for name, shape := range shapes {
		v := g.values[name]
		if v == nil || v.Producer != nil || v.IsConst() {
			return fmt.Errorf("the model has no input %q", name)
		}
		if err := g.CheckInputShape(v, shape); err != nil {
			return err
		}
		v.Type = ops.Type{DType: v.Type.DType, Shape: ops.DimsOf(shape)}
	}
	return g.inferTypes()
}

// CheckInputShape reports an error unless shape fits the type graph input v has as declared in
// the file: the same rank, and every known dim equal.
func (g *Graph) CheckInputShape(v *Value, shape tensor.Shape) error {
	decl, ok := g.inputTypes[v]
	if !ok {
		decl = v.Type
	}
	if !decl.Unranked && len(decl.Shape) != len(shape) {
		return fmt.Errorf("input %q: shape %v does not fit %s", v.Name, shape, decl)
	}
	for i, d := range decl.Shape {
		if d.IsKnown() && d.Value != int64(shape[i]) {
			return fmt.Errorf("input %q: shape %v does not fit %s", v.Name, shape, decl)
		}
	}
	return nil
}

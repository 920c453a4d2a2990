package ops

import (
	"errors"
	"fmt"
	"sort"
)

// Sentinel errors, checkable with errors.Is. Errors from Decode and Infer wrap one of them.
var (
	// ErrUnsupportedOp: no Schema for this (domain, op type, opset).
	ErrUnsupportedOp = errors.New("unsupported operator")
	// ErrAttr: an attribute is missing, of the wrong kind, or out of range.
	ErrAttr = errors.New("bad attribute")
	// ErrShape: input shapes or types do not fit the operator.
	ErrShape = errors.New("shape mismatch")
	// ErrArity: wrong number of inputs or outputs.
	ErrArity = errors.New("wrong number of inputs or outputs")
)

// Node is what a decoder sees of one graph node.
type Node struct {
	Name   string
	OpType string
	Domain string // "" for the default ONNX domain
	Opset  int    // the version of Domain the model imports
	Attrs  Attributes
	// Inputs has one entry per input position; false marks an absent optional input ("").
	Inputs     []bool
	NumOutputs int
}

// Op is one decoded operator instance. Concrete types (Conv, BatchNormalization, ...) carry the
// typed attributes; kernels switch on the concrete type.
type Op interface {
	// OpType returns the ONNX op type, such as "Conv".
	OpType() string
	// Infer returns one Type per node output from the inputs' types (in[i] is nil for an absent
	// optional input). It reports shape or type mismatches as errors wrapping ErrShape.
	Infer(in []*Arg) ([]Type, error)
}

// Schema decodes one operator from opset version Since up to (excluding) the Since of the next
// Schema registered for the same domain and op type.
type Schema struct {
	Domain string
	OpType string
	Since  int
	Decode func(n *Node) (Op, error)
}

// The default-domain (ai.onnx) opsets dnx decodes. The schemas reach back to opset 1, old forms
// included (Reshape-1's shape attribute, BatchNormalization-1's is_test); an operator implemented
// only from a later version is refused by Lookup, which names that version. MaxOpset is the opset
// of ONNX 1.20 (IR 13), the newest whose operator changes dnx has reviewed. Lookup alone would
// decode a newer opset with the newest older Schema, which is wrong wherever that opset changed
// the operator, so graph.Import refuses default-domain opsets outside the range.
const (
	MinOpset = 1
	MaxOpset = 25
)

// Registry finds the Schema for a node. Build one with NewRegistry; it holds no global state.
type Registry struct {
	schemas map[string][]Schema // key: domain + "\x00" + op type; sorted by Since
}

// NormalizeDomain maps the two spellings of the default domain, "" and "ai.onnx", to "".
func NormalizeDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// NewRegistry returns a registry of the given schemas.
func NewRegistry(schemas ...Schema) *Registry {
	r := &Registry{schemas: map[string][]Schema{}}
	for _, s := range schemas {
		k := NormalizeDomain(s.Domain) + "\x00" + s.OpType
		r.schemas[k] = append(r.schemas[k], s)
	}
	for _, list := range r.schemas {
		sort.Slice(list, func(i, j int) bool { return list[i].Since < list[j].Since })
	}
	return r
}

// Default returns a registry with every operator dnx implements.
func Default() *Registry {
	var all []Schema
	for _, family := range [](func() []Schema){nnSchemas, elementwiseSchemas, tensorSchemas, fusedSchemas} {
		all = append(all, family()...)
	}
	return NewRegistry(all...)
}

// Lookup returns the newest schema for (domain, opType) whose Since is at or below opset.
func (r *Registry) Lookup(domain, opType string, opset int) (Schema, error) {
	domain = NormalizeDomain(domain)
	list := r.schemas[domain+"\x00"+opType]
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Since <= opset {
			return list[i], nil
		}
	}
	d := domain
	if d == "" {
		d = "ai.onnx"
	}
	if len(list) > 0 {
		return Schema{}, fmt.Errorf("%w: %s (domain %q) at opset %d; dnx implements it from opset %d",
			ErrUnsupportedOp, opType, d, opset, list[0].Since)
	}
	return Schema{}, fmt.Errorf("%w: %s (domain %q, opset %d)", ErrUnsupportedOp, opType, d, opset)
}

// Supports reports whether the registry has any schema for (domain, opType).
func (r *Registry) Supports(domain, opType string) bool {
	return len(r.schemas[NormalizeDomain(domain)+"\x00"+opType]) > 0
}

// Decode looks up n's schema and decodes it. Errors name the node and the op.
func (r *Registry) Decode(n *Node) (Op, error) {
	s, err := r.Lookup(n.Domain, n.OpType, n.Opset)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", n.Name, err)
	}
	op, err := s.Decode(n)
	if err != nil {
		return nil, fmt.Errorf("node %q (%s): %w", n.Name, n.OpType, err)
	}
	return op, nil
}

// CheckArity reports an ErrArity error unless n has between minIn and maxIn input positions and
// between minOut and maxOut outputs. Decoders call it first.
func CheckArity(n *Node, minIn, maxIn, minOut, maxOut int) error {
	if len(n.Inputs) < minIn || len(n.Inputs) > maxIn {
		return fmt.Errorf("%w: %s takes %d to %d inputs, got %d", ErrArity, n.OpType, minIn, maxIn, len(n.Inputs))
	}
	for i := 0; i < minIn; i++ {
		if !n.Inputs[i] {
			return fmt.Errorf("%w: %s input %d is required", ErrArity, n.OpType, i)
		}
	}
	if n.NumOutputs < minOut || n.NumOutputs > maxOut {
		return fmt.Errorf("%w: %s has %d to %d outputs, got %d", ErrArity, n.OpType, minOut, maxOut, n.NumOutputs)
	}
	return nil
}

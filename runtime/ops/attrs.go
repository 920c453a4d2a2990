package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// AttrKind is the type of an attribute value, as ONNX's AttributeProto.AttributeType.
type AttrKind int

// The attribute kinds dnx decodes. Graph-valued attributes (If, Loop) are not supported by any dnx
// op and are rejected at import.
const (
	AttrFloat AttrKind = iota + 1
	AttrInt
	AttrString
	AttrTensor
	AttrFloats
	AttrInts
	AttrStrings
)

func (k AttrKind) String() string {
	switch k {
	case AttrFloat:
		return "float"
	case AttrInt:
		return "int"
	case AttrString:
		return "string"
	case AttrTensor:
		return "tensor"
	case AttrFloats:
		return "floats"
	case AttrInts:
		return "ints"
	case AttrStrings:
		return "strings"
	}
	return fmt.Sprintf("attrkind(%d)", int(k))
}

// Attribute is one decoded node attribute; only the field that Kind names is set.
type Attribute struct {
	Kind    AttrKind
	Float   float32
	Int     int64
	String  string
	Tensor  *tensor.Tensor
	Floats  []float32
	Ints    []int64
	Strings []string
}

// Attributes maps attribute names to values. The getters return the default when the attribute is
// absent and an error wrapping ErrAttr when it is present with the wrong kind.
type Attributes map[string]Attribute

func (a Attributes) get(name string, want AttrKind) (Attribute, bool, error) {
	v, ok := a[name]
	if !ok {
		return v, false, nil
	}
	if v.Kind != want {
		return v, false, fmt.Errorf("%w: attribute %q is %s, want %s", ErrAttr, name, v.Kind, want)
	}
	return v, true, nil
}

// Has reports whether the attribute is present.
func (a Attributes) Has(name string) bool { _, ok := a[name]; return ok }

// Int returns an int attribute or def.
func (a Attributes) Int(name string, def int64) (int64, error) {
	v, ok, err := a.get(name, AttrInt)
	if !ok {
		return def, err
	}
	return v.Int, nil
}

// Float returns a float attribute or def.
func (a Attributes) Float(name string, def float32) (float32, error) {
	v, ok, err := a.get(name, AttrFloat)
	if !ok {
		return def, err
	}
	return v.Float, nil
}

// String returns a string attribute or def.
func (a Attributes) String(name string, def string) (string, error) {
	v, ok, err := a.get(name, AttrString)
	if !ok {
		return def, err
	}
	return v.String, nil
}

// Ints returns an ints attribute or def (not copied).
func (a Attributes) Ints(name string, def []int64) ([]int64, error) {
	v, ok, err := a.get(name, AttrInts)
	if !ok {
		return def, err
	}
	return v.Ints, nil
}

// Floats returns a floats attribute or def (not copied).
func (a Attributes) Floats(name string, def []float32) ([]float32, error) {
	v, ok, err := a.get(name, AttrFloats)
	if !ok {
		return def, err
	}
	return v.Floats, nil
}

// Tensor returns a tensor attribute or nil.
func (a Attributes) Tensor(name string) (*tensor.Tensor, error) {
	v, ok, err := a.get(name, AttrTensor)
	if !ok {
		return nil, err
	}
	return v.Tensor, nil
}

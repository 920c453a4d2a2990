package opset

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// typeSet is a set of element types, one bit per ONNX data type code.
type typeSet uint64

func setOf(ds ...tensor.DType) typeSet {
	var s typeSet
	for _, d := range ds {
		s |= 1 << uint(d)
	}
	return s
}

func (s typeSet) has(d tensor.DType) bool { return d >= 0 && d < 64 && s&(1<<uint(d)) != 0 }

// The type groups the operator versions add, as ONNX's type constraints list them.
var (
	floats    = setOf(tensor.Float16, tensor.Float32, tensor.Float64)
	bf16      = setOf(tensor.BFloat16)
	wideInts  = setOf(tensor.Int32, tensor.Int64, tensor.Uint32, tensor.Uint64)
	smallInts = setOf(tensor.Int8, tensor.Int16, tensor.Uint8, tensor.Uint16)
	allInts   = wideInts | smallInts
	signed    = setOf(tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64)
	boolean   = setOf(tensor.Bool)
	str       = setOf(tensor.String)
	complexes = setOf(tensor.Complex64, tensor.Complex128)
	float8    = setOf(tensor.Float8E4M3FN, tensor.Float8E4M3FNUZ, tensor.Float8E5M2, tensor.Float8E5M2FNUZ)
	int4      = setOf(tensor.Int4, tensor.Uint4)
	float4    = setOf(tensor.Float4E2M1)
	e8m0      = setOf(tensor.Float8E8M0)
	int2      = setOf(tensor.Int2, tensor.Uint2)
	// allTypes is ONNX's all_tensor_types before bfloat16: every IR-4 type.
	allTypes = floats | allInts | boolean | str | complexes
)

// typeStep says that from opset since an operator also accepts the types in adds.
type typeStep struct {
	since int
	adds  typeSet
}

// typeRule is the element-type constraint of an operator across versions: the set at a version
// is the union of the steps at or below it. inputs lists the input positions it constrains.
type typeRule struct {
	inputs []int
	steps  []typeStep
}

func (r typeRule) allows(d tensor.DType, opset int) bool {
	for _, s := range r.steps {
		if s.since <= opset && s.adds.has(d) {
			return true
		}
	}
	return false
}

// since returns the first opset at which r allows d, or 0 if none does.
func (r typeRule) since(d tensor.DType) int {
	first := 0
	for _, s := range r.steps {
		if s.adds.has(d) && (first == 0 || s.since < first) {
			first = s.since
		}
	}
	return first
}

// steps builds a type rule over the given inputs.
func steps(inputs []int, ss ...typeStep) typeRule { return typeRule{inputs: inputs, steps: ss} }

// The newer bit widths arrive together on the operators that move data without computing:
// float8 (19 or 21), int4/uint4 (21), float4e2m1 (23), float8e8m0 (24), int2/uint2 (25).
func newBitWidths(float8Since int) []typeStep {
	return []typeStep{{float8Since, float8}, {21, int4}, {23, float4}, {24, e8m0}, {25, int2}}
}

// dataMovement is the rule of the type-agnostic operators (Identity, Reshape, Squeeze, ...):
// every IR-4 type, bfloat16 from 13, and the newer bit widths from the given float8 version
// (0: never, within the opsets Convert knows).
func dataMovement(float8Since int) typeRule {
	ss := []typeStep{{1, allTypes}, {13, bf16}}
	if float8Since > 0 {
		ss = append(ss, newBitWidths(float8Since)...)
	}
	return steps([]int{0}, ss...)
}

// checkTypes refuses node n when the element type of a constrained input (or, for Cast and the
// constant producers, of its attribute) is not accepted by n's operator at the target opset.
// Types nobody knows are not checked.
func (c *converter) checkTypes(n *node, r opRule) error {
	check := func(d tensor.DType, what string) error {
		if d == tensor.Undefined || r.types.allows(d, c.to) {
			return nil
		}
		if s := r.types.since(d); s > c.to {
			return c.refuse(n, "%s is %s, which %s accepts only from opset %d", what, d, n.GetOpType(), s)
		}
		return c.refuse(n, "%s is %s, which %s does not accept at opset %d", what, d, n.GetOpType(), c.to)
	}
	// Identity passes sequences from 14 and optionals from 16; no other operator here takes
	// anything but tensors.
	if k := c.kinds[n.input(0)]; k != "" {
		need := map[string]int{"sequence": 14, "optional": 16}[k]
		if n.GetOpType() != "Identity" || need == 0 {
			return c.refuse(n, "input 0 %q is a %s, which %s does not take", n.input(0), k, n.GetOpType())
		}
		if c.to < need {
			return c.refuse(n, "input 0 %q is a %s, which Identity takes only from opset %d", n.input(0), k, need)
		}
	}
	for _, i := range r.types.inputs {
		if in := n.input(i); in != "" {
			if err := check(c.dtype(in), fmt.Sprintf("input %d %q", i, in)); err != nil {
				return err
			}
		}
	}
	switch n.GetOpType() {
	case "Cast":
		if a := n.attr("to"); a != nil {
			return check(tensor.DType(a.GetI()), "the target type (to)")
		}
	case "Constant":
		if a := n.attr("value"); a != nil && a.GetT() != nil {
			return check(tensor.DType(a.GetT().GetDataType()), "the value")
		}
		if a := n.attr("sparse_value"); a != nil && a.GetSparseTensor() != nil {
			return check(tensor.DType(a.GetSparseTensor().GetValues().GetDataType()), "the sparse value")
		}
	case "ConstantOfShape":
		d := tensor.Float32 // the default value is a float32 zero
		if a := n.attr("value"); a != nil && a.GetT() != nil {
			d = tensor.DType(a.GetT().GetDataType())
		}
		return check(d, "the value")
	}
	return nil
}

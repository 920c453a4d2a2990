package ops

import (
	"fmt"
	"strings"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Cast converts every element of X to the type To. The conversions, which follow the spec and
// NumPy where the spec is silent, are:
//   - float to float rounds to nearest, ties to even (float64 to float16/bfloat16 rounds once);
//   - float to integer truncates toward zero; NaN gives 0 and values beyond the target's range
//     saturate to its minimum or maximum (the spec leaves both undefined, C's cast is undefined);
//   - integer to integer keeps the low bits (two's complement wrap-around, as C and NumPy);
//   - integer to float rounds to nearest;
//   - to bool: x != 0 (NaN gives true); from bool: 1 or 0;
//   - string to number parses plain and scientific notation and the case-insensitive literals
//     "INF", "+INF", "-INF" and "NaN"; a string that is not a number is an error;
//   - number to string formats floats in the shortest form that reads back to the same value
//     ("INF", "-INF" and "NaN" for the special values), integers in decimal, bools as
//     "True"/"False" (NumPy's astype(str)).
//
// dnx holds no float8, float4, int4/uint4 or int2/uint2 tensors, so casts to or from them are
// reported as unsupported. Saturate (opset 19, default true) only concerns float8 targets and is
// kept for round-tripping.
type Cast struct {
	To       tensor.DType
	Saturate bool
}

// OpType returns "Cast".
func (*Cast) OpType() string { return "Cast" }

// ewONNXTypeNames maps TensorProto.DataType enum names (Cast-1's string `to`) to dtypes.
var ewONNXTypeNames = map[string]tensor.DType{
	"FLOAT": tensor.Float32, "UINT8": tensor.Uint8, "INT8": tensor.Int8, "UINT16": tensor.Uint16,
	"INT16": tensor.Int16, "INT32": tensor.Int32, "INT64": tensor.Int64, "STRING": tensor.String,
	"BOOL": tensor.Bool, "FLOAT16": tensor.Float16, "DOUBLE": tensor.Float64, "UINT32": tensor.Uint32,
	"UINT64": tensor.Uint64, "COMPLEX64": tensor.Complex64, "COMPLEX128": tensor.Complex128,
	"BFLOAT16": tensor.BFloat16, "FLOAT8E4M3FN": tensor.Float8E4M3FN, "FLOAT8E4M3FNUZ": tensor.Float8E4M3FNUZ,
	"FLOAT8E5M2": tensor.Float8E5M2, "FLOAT8E5M2FNUZ": tensor.Float8E5M2FNUZ, "UINT4": tensor.Uint4,
	"INT4": tensor.Int4, "FLOAT4E2M1": tensor.Float4E2M1, "FLOAT8E8M0": tensor.Float8E8M0,
	"UINT2": tensor.Uint2, "INT2": tensor.Int2,
}

func decodeCast(n *Node, since int) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	a, ok := n.Attrs["to"]
	if !ok {
		return nil, fmt.Errorf("%w: Cast needs attribute \"to\"", ErrAttr)
	}
	var to tensor.DType
	switch a.Kind {
	case AttrInt: // opset 6 and later; accepted at opset 1 too
		if a.Int <= int64(tensor.Undefined) || a.Int > int64(tensor.Int2) { // ONNX's codes are 1 to 26
			return nil, fmt.Errorf("%w: Cast to %d: not an ONNX data type", ErrAttr, a.Int)
		}
		to = tensor.DType(a.Int)
	case AttrString: // opset 1 to 5 name the type
		d, ok := ewONNXTypeNames[strings.ToUpper(a.String)]
		if !ok {
			return nil, fmt.Errorf("%w: Cast to %q: not an ONNX data type", ErrAttr, a.String)
		}
		to = d
	default:
		return nil, fmt.Errorf("%w: Cast attribute \"to\" is %s, want int", ErrAttr, a.Kind)
	}
	if !to.Supported() {
		return nil, fmt.Errorf("%w: Cast to %s is not supported", ErrUnsupportedOp, to)
	}
	sat, err := n.Attrs.Int("saturate", 1)
	if err != nil {
		return nil, err
	}
	return &Cast{To: to, Saturate: sat != 0}, nil
}

// Infer returns X's shape with element type To.
func (o *Cast) Infer(in []*Arg) ([]Type, error) {
	if len(in) < 1 || in[0] == nil {
		return nil, fmt.Errorf("%w: Cast input 0 is required", ErrArity)
	}
	x := in[0].Type
	if x.DType != tensor.Undefined && !x.DType.Supported() {
		return nil, fmt.Errorf("%w: Cast from %s is not supported", ErrUnsupportedOp, x.DType)
	}
	x.DType = o.To
	return []Type{x}, nil
}

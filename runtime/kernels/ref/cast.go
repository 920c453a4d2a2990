package ref

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// castKernel runs Cast: Y[i] = convert(X[i]) to the type op.To, by the rules of ops.Cast:
// float to float rounds to nearest even once; float to integer truncates toward zero, with NaN
// giving 0 and out-of-range values saturating; integer to integer wraps; to bool is x != 0;
// strings are parsed and formatted in decimal (ParseFloat/FormatFloat).
func castKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	o, err := opAs[*ops.Cast](op)
	if err != nil {
		return nil, err
	}
	if err := ewRequire("Cast", in, 1); err != nil {
		return nil, err
	}
	if err := ewCheckOutputs("Cast", nOut, 1); err != nil {
		return nil, err
	}
	x, to := in[0], o.To
	if !x.DType.Supported() {
		return nil, fmt.Errorf("ref: Cast from %s: %w", x.DType, ops.ErrUnsupportedOp)
	}
	if !to.Supported() {
		return nil, fmt.Errorf("ref: Cast to %s: %w", to, ops.ErrUnsupportedOp)
	}
	if x.DType == to {
		return []*tensor.Tensor{x.Clone()}, nil
	}
	var data any
	switch d := x.Data.(type) {
	case []string:
		data, err = castFromStrings(d, to)
	case []bool:
		if to == tensor.String {
			data = ewMap(d, func(b bool) string {
				if b {
					return "True"
				}
				return "False"
			})
			break
		}
		data = castFromInt64s(ewMap(d, func(b bool) int64 {
			if b {
				return 1
			}
			return 0
		}), to)
	case []int8:
		data = castFromInt64s(ewWidenInt(d), to)
	case []int16:
		data = castFromInt64s(ewWidenInt(d), to)
	case []int32:
		data = castFromInt64s(ewWidenInt(d), to)
	case []int64:
		data = castFromInt64s(d, to)
	case []uint8:
		data = castFromUint64s(ewWidenUint(d), to)
	case []uint16:
		data = castFromUint64s(ewWidenUint(d), to)
	case []uint32:
		data = castFromUint64s(ewWidenUint(d), to)
	case []uint64:
		data = castFromUint64s(d, to)
	default: // float types, exactly widened
		data = castFromFloat64s(x.Float64s(), to, x.DType == tensor.Float64)
	}
	if err != nil {
		return nil, fmt.Errorf("ref: Cast %s to %s: %w", x.DType, to, err)
	}
	return []*tensor.Tensor{ewLike(x, to, data)}, nil
}

// ewWidenInt converts signed integers to int64, exactly.
func ewWidenInt[T int8 | int16 | int32](d []T) []int64 {
	return ewMap(d, func(v T) int64 { return int64(v) })
}

// ewWidenUint converts unsigned integers to uint64, exactly.
func ewWidenUint[T uint8 | uint16 | uint32](d []T) []uint64 {
	return ewMap(d, func(v T) uint64 { return uint64(v) })
}

// castFromFloat64s converts float values to the slice type of to. wide reports a float64 source,
// whose shortest decimal form is formatted with 64-bit precision.
func castFromFloat64s(v []float64, to tensor.DType, wide bool) any {
	switch to {
	case tensor.Float32, tensor.Float64, tensor.Float16, tensor.BFloat16:
		return ewFromFloat64s(to, tensor.Shape{len(v)}, v).Data
	case tensor.Int8:
		return ewMap(v, ewFloatToInt[int8]())
	case tensor.Int16:
		return ewMap(v, ewFloatToInt[int16]())
	case tensor.Int32:
		return ewMap(v, ewFloatToInt[int32]())
	case tensor.Int64:
		return ewMap(v, ewFloatToInt[int64]())
	case tensor.Uint8:
		return ewMap(v, ewFloatToInt[uint8]())
	case tensor.Uint16:
		return ewMap(v, ewFloatToInt[uint16]())
	case tensor.Uint32:
		return ewMap(v, ewFloatToInt[uint32]())
	case tensor.Uint64:
		return ewMap(v, ewFloatToInt[uint64]())
	case tensor.Bool:
		return ewMap(v, func(f float64) bool { return f != 0 }) // NaN != 0
	case tensor.String:
		bits := 32
		if wide {
			bits = 64
		}
		return ewMap(v, func(f float64) string { return ewFormatFloat(f, bits) })
	}
	return nil // unreachable: to is Supported
}

// ewFormatFloat formats f in the shortest decimal form that reads back to the same value at the
// given precision, with ONNX's spellings of the special values.
func ewFormatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "INF"
	case math.IsInf(f, -1):
		return "-INF"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// ewIntElem is the set of integer element types.
type ewIntElem interface {
	int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
}

// ewFloatToInt returns the float-to-T conversion: truncation toward zero, NaN to 0, and
// saturation to T's minimum and maximum outside its range.
func ewFloatToInt[T ewIntElem]() func(float64) T {
	var zero T
	bits := 0
	for one := T(1); one != 0; one <<= 1 {
		bits++
	}
	signed := ^zero < zero
	minV, maxV := zero, ^zero
	lo, hi := 0.0, math.Ldexp(1, bits) // hi is exclusive: 2^bits is not representable
	if signed {
		minV = T(1) << (bits - 1)
		maxV = ^minV
		lo, hi = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)
	}
	return func(f float64) T {
		switch {
		case math.IsNaN(f):
			return 0
		case f <= lo:
			return minV
		case f >= hi:
			return maxV
		}
		return T(math.Trunc(f))
	}
}

// castFromInt64s converts signed integers (and bools as 0/1) to the slice type of to.
func castFromInt64s(v []int64, to tensor.DType) any {
	switch to {
	case tensor.Float32:
		return ewMap(v, func(i int64) float32 { return float32(i) })
	case tensor.Float64:
		return ewMap(v, func(i int64) float64 { return float64(i) })
	case tensor.Float16:
		return ewMap(v, func(i int64) tensor.F16 { return ewF16(float64(i)) })
	case tensor.BFloat16:
		return ewMap(v, func(i int64) tensor.BF16 { return ewBF16(float64(i)) })
	case tensor.String:
		return ewMap(v, func(i int64) string { return strconv.FormatInt(i, 10) })
	case tensor.Bool:
		return ewMap(v, func(i int64) bool { return i != 0 })
	}
	return ewIntToInt(v, to)
}

// castFromUint64s converts unsigned integers to the slice type of to.
func castFromUint64s(v []uint64, to tensor.DType) any {
	switch to {
	case tensor.Float32:
		return ewMap(v, func(i uint64) float32 { return float32(i) })
	case tensor.Float64:
		return ewMap(v, func(i uint64) float64 { return float64(i) })
	case tensor.Float16:
		return ewMap(v, func(i uint64) tensor.F16 { return ewF16(float64(i)) })
	case tensor.BFloat16:
		return ewMap(v, func(i uint64) tensor.BF16 { return ewBF16(float64(i)) })
	case tensor.String:
		return ewMap(v, func(i uint64) string { return strconv.FormatUint(i, 10) })
	case tensor.Bool:
		return ewMap(v, func(i uint64) bool { return i != 0 })
	}
	return ewIntToInt(v, to)
}

// ewIntToInt converts integers to the integer type to, keeping the low bits (wrap-around).
func ewIntToInt[S int64 | uint64](v []S, to tensor.DType) any {
	switch to {
	case tensor.Int8:
		return ewMap(v, func(i S) int8 { return int8(i) })
	case tensor.Int16:
		return ewMap(v, func(i S) int16 { return int16(i) })
	case tensor.Int32:
		return ewMap(v, func(i S) int32 { return int32(i) })
	case tensor.Int64:
		return ewMap(v, func(i S) int64 { return int64(i) })
	case tensor.Uint8:
		return ewMap(v, func(i S) uint8 { return uint8(i) })
	case tensor.Uint16:
		return ewMap(v, func(i S) uint16 { return uint16(i) })
	case tensor.Uint32:
		return ewMap(v, func(i S) uint32 { return uint32(i) })
	case tensor.Uint64:
		return ewMap(v, func(i S) uint64 { return uint64(i) })
	}
	return nil // unreachable: callers handle every other type
}

// castFromStrings parses strings into the slice type of to. Floats accept plain and scientific
// notation and the case-insensitive literals INF, +INF, -INF and NaN; integers accept decimal
// integers, or a float that is then truncated; bools accept true/false (any case) or a number.
// Anything else is an error naming the offending element.
func castFromStrings(v []string, to tensor.DType) (any, error) {
	bad := func(i int, s string) error {
		return fmt.Errorf("%w: element %d, %q, is not a %s", ops.ErrShape, i, s, to)
	}
	switch {
	case to.IsFloat():
		bits := 64
		if to == tensor.Float32 {
			bits = 32 // parse straight to float32: rounding through float64 first can differ
		}
		f := make([]float64, len(v))
		for i, s := range v {
			x, err := strconv.ParseFloat(strings.TrimSpace(s), bits)
			if err != nil && !ewIsRangeErr(err) {
				return nil, bad(i, s)
			}
			f[i] = x
		}
		return castFromFloat64s(f, to, false), nil
	case to == tensor.Bool:
		out := make([]bool, len(v))
		for i, s := range v {
			t := strings.TrimSpace(s)
			switch strings.ToLower(t) {
			case "true":
				out[i] = true
				continue
			case "false":
				continue
			}
			x, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return nil, bad(i, s)
			}
			out[i] = x != 0
		}
		return out, nil
	}
	signed := to == tensor.Int8 || to == tensor.Int16 || to == tensor.Int32 || to == tensor.Int64
	ints := make([]int64, len(v))
	uints := make([]uint64, len(v))
	toInt64, toUint64 := ewFloatToInt[int64](), ewFloatToInt[uint64]()
	for i, s := range v {
		t := strings.TrimSpace(s)
		var err error
		if signed {
			ints[i], err = strconv.ParseInt(t, 10, 64)
		} else {
			uints[i], err = strconv.ParseUint(t, 10, 64)
		}
		if err == nil {
			continue
		}
		x, ferr := strconv.ParseFloat(t, 64) // "100.5" gives 100, as the spec suggests
		if ferr != nil && !ewIsRangeErr(ferr) {
			return nil, bad(i, s)
		}
		ints[i], uints[i] = toInt64(x), toUint64(x)
	}
	if signed {
		return ewIntToInt(ints, to), nil
	}
	return ewIntToInt(uints, to), nil
}

// ewIsRangeErr reports a strconv range error, whose value (±Inf or 0) is still the right result.
func ewIsRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

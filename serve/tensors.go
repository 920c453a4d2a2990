package serve

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/dnx-ml/dnx"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/serve/inferencepb"
)

// The protocol's datatype names and dnx's element types. BYTES (strings) is listed so that its
// name is known, but no numeric model takes it and it has no fixed-size encoding.
var datatypes = []struct {
	name  string
	dtype dnx.DType
}{
	{"BOOL", dnx.Bool}, {"UINT8", dnx.Uint8}, {"UINT16", dnx.Uint16}, {"UINT32", dnx.Uint32},
	{"UINT64", dnx.Uint64}, {"INT8", dnx.Int8}, {"INT16", dnx.Int16}, {"INT32", dnx.Int32},
	{"INT64", dnx.Int64}, {"FP16", dnx.Float16}, {"FP32", dnx.Float32}, {"FP64", dnx.Float64},
	{"BF16", dnx.BFloat16}, {"BYTES", dnx.String},
}

// datatypeName returns the protocol's name of d ("FP32").
func datatypeName(d dnx.DType) string {
	for _, t := range datatypes {
		if t.dtype == d {
			return t.name
		}
	}
	return d.String()
}

// parseDatatype returns the element type the protocol's name s stands for.
func parseDatatype(s string) (dnx.DType, bool) {
	for _, t := range datatypes {
		if t.name == s {
			return t.dtype, true
		}
	}
	return dnx.Undefined, false
}

// elementCount returns the number of elements of shape, refusing negative dims and counts whose
// bytes would overflow.
func elementCount(shape []int64, size int) (int, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape[%d] is %d", i, d)
		}
		if d != 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	if size > 0 && n > math.MaxInt32/int64(size) {
		return 0, fmt.Errorf("shape %v has too many bytes", shape)
	}
	return int(n), nil
}

// jsonDataToBytes converts a JSON "data" value (a flat or nested array of numbers, or of
// booleans for BOOL) holding n elements of type d into the little-endian raw encoding. It parses
// the numbers itself rather than through encoding/json's []any, which would allocate one
// interface per element of an image. raw has already been checked to be valid JSON.
func jsonDataToBytes(raw []byte, d dnx.DType, n int) ([]byte, error) {
	size := d.ByteSize()
	if size == 0 {
		return nil, fmt.Errorf("datatype %s is not supported (numeric tensors only)", datatypeName(d))
	}
	out := make([]byte, 0, n*size)
	count := 0
	le := binary.LittleEndian
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case '[', ']', ',', ' ', '\t', '\n', '\r':
			i++
			continue
		case '{', '"':
			return nil, fmt.Errorf("element %d is not a number", count)
		}
		j := i
		for j < len(raw) && raw[j] != ',' && raw[j] != ']' && raw[j] != ' ' && raw[j] != '\t' && raw[j] != '\n' && raw[j] != '\r' {
			j++
		}
		tok := string(raw[i:j])
		i = j
		if count == n {
			return nil, fmt.Errorf("holds more than the shape's %d elements", n)
		}
		var err error
		switch d {
		case dnx.Bool:
			switch tok {
			case "true":
				out = append(out, 1)
			case "false":
				out = append(out, 0)
			default:
				err = fmt.Errorf("%q is not a boolean", tok)
			}
		case dnx.Float32:
			var f float64
			if f, err = strconv.ParseFloat(tok, 32); err == nil {
				out = le.AppendUint32(out, math.Float32bits(float32(f)))
			}
		case dnx.Float64:
			var f float64
			if f, err = strconv.ParseFloat(tok, 64); err == nil {
				out = le.AppendUint64(out, math.Float64bits(f))
			}
		case dnx.Float16, dnx.BFloat16:
			var f float64
			if f, err = strconv.ParseFloat(tok, 32); err == nil {
				out = le.AppendUint16(out, half(d, float32(f)))
			}
		case dnx.Int8, dnx.Int16, dnx.Int32, dnx.Int64:
			var v int64
			if v, err = strconv.ParseInt(tok, 10, 8*size); err == nil {
				out = appendUint(out, uint64(v), size)
			}
		default: // unsigned
			var v uint64
			if v, err = strconv.ParseUint(tok, 10, 8*size); err == nil {
				out = appendUint(out, v, size)
			}
		}
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok {
				err = fmt.Errorf("%q is not a valid %s value (%v)", tok, datatypeName(d), ne.Err)
			}
			return nil, fmt.Errorf("element %d: %w", count, err)
		}
		count++
	}
	if count != n {
		return nil, fmt.Errorf("holds %d elements, the shape needs %d", count, n)
	}
	return out, nil
}

// appendUint appends the low size bytes of v, little-endian.
func appendUint(dst []byte, v uint64, size int) []byte {
	for k := 0; k < size; k++ {
		dst = append(dst, byte(v>>(8*k)))
	}
	return dst
}

// half returns the 16-bit pattern of f as float16 or bfloat16, rounded to nearest even by the
// runtime's own conversions, so that JSON and raw inputs round alike.
func half(d dnx.DType, f float32) uint16 {
	if d == dnx.BFloat16 {
		return uint16(tensor.BF16From(f))
	}
	return uint16(tensor.F16From(f))
}

// appendJSONData appends the elements of raw (n little-endian elements of type d) to dst as a
// flat JSON array. Floats are written in the shortest form that reads back to the same value of
// their type, so a client parsing them as that type gets the server's bits exactly. JSON has no
// NaN or infinities: those are written as the strings "NaN", "Infinity", "-Infinity", as
// Python's json module reads them back.
func appendJSONData(dst []byte, d dnx.DType, raw []byte) []byte {
	le := binary.LittleEndian
	size := d.ByteSize()
	dst = append(dst, '[')
	for i := 0; i+size <= len(raw); i += size {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch d {
		case dnx.Bool:
			dst = strconv.AppendBool(dst, raw[i] != 0)
		case dnx.Float32:
			dst = appendFloat(dst, float64(math.Float32frombits(le.Uint32(raw[i:]))), 32)
		case dnx.Float64:
			dst = appendFloat(dst, math.Float64frombits(le.Uint64(raw[i:])), 64)
		case dnx.Float16, dnx.BFloat16:
			dst = appendHalf(dst, d, le.Uint16(raw[i:]))
		case dnx.Int8:
			dst = strconv.AppendInt(dst, int64(int8(raw[i])), 10)
		case dnx.Int16:
			dst = strconv.AppendInt(dst, int64(int16(le.Uint16(raw[i:]))), 10)
		case dnx.Int32:
			dst = strconv.AppendInt(dst, int64(int32(le.Uint32(raw[i:]))), 10)
		case dnx.Int64:
			dst = strconv.AppendInt(dst, int64(le.Uint64(raw[i:])), 10)
		case dnx.Uint8:
			dst = strconv.AppendUint(dst, uint64(raw[i]), 10)
		case dnx.Uint16:
			dst = strconv.AppendUint(dst, uint64(le.Uint16(raw[i:])), 10)
		case dnx.Uint32:
			dst = strconv.AppendUint(dst, uint64(le.Uint32(raw[i:])), 10)
		case dnx.Uint64:
			dst = strconv.AppendUint(dst, le.Uint64(raw[i:]), 10)
		}
	}
	return append(dst, ']')
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendHalf writes a float16 or bfloat16 value in the fewest digits that read back (rounded to
// the same type) to the same bits: 0.0001 rather than its exact 0.000100016594.
func appendHalf(dst []byte, d dnx.DType, h uint16) []byte {
	f := halfToFloat32(d, h)
	if f != f || math.IsInf(float64(f), 0) {
		return appendFloat(dst, float64(f), 32)
	}
	for prec := 1; prec < 9; prec++ {
		s := strconv.AppendFloat(nil, float64(f), 'g', prec, 32)
		if v, err := strconv.ParseFloat(string(s), 32); err == nil && half(d, float32(v)) == h {
			return append(dst, s...)
		}
	}
	return appendFloat(dst, float64(f), 32)
}

// halfToFloat32 widens a float16 or bfloat16 bit pattern (exactly).
func halfToFloat32(d dnx.DType, h uint16) float32 {
	if d == dnx.BFloat16 {
		return tensor.BF16(h).Float32()
	}
	return tensor.F16(h).Float32()
}

// contentsToBytes converts the typed contents of a gRPC input tensor (n elements of type d)
// into the little-endian raw encoding. FP16 and BF16 have no typed field in the protocol and
// must come as raw_input_contents.
func contentsToBytes(c *inferencepb.InferTensorContents, d dnx.DType, n int) ([]byte, error) {
	size := d.ByteSize()
	if size == 0 {
		return nil, fmt.Errorf("datatype %s is not supported (numeric tensors only)", datatypeName(d))
	}
	out := make([]byte, 0, n*size)
	le := binary.LittleEndian
	check := func(field string, got int) error {
		if got != n {
			return fmt.Errorf("contents.%s holds %d elements, the shape needs %d", field, got, n)
		}
		return nil
	}
	switch d {
	case dnx.Bool:
		if err := check("bool_contents", len(c.GetBoolContents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetBoolContents() {
			b := byte(0)
			if v {
				b = 1
			}
			out = append(out, b)
		}
	case dnx.Float32:
		if err := check("fp32_contents", len(c.GetFp32Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetFp32Contents() {
			out = le.AppendUint32(out, math.Float32bits(v))
		}
	case dnx.Float64:
		if err := check("fp64_contents", len(c.GetFp64Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetFp64Contents() {
			out = le.AppendUint64(out, math.Float64bits(v))
		}
	case dnx.Int8, dnx.Int16, dnx.Int32:
		if err := check("int_contents", len(c.GetIntContents())); err != nil {
			return nil, err
		}
		lo, hi := int64(-1)<<(8*size-1), int64(1)<<(8*size-1)-1
		for k, v := range c.GetIntContents() {
			if int64(v) < lo || int64(v) > hi {
				return nil, fmt.Errorf("contents.int_contents[%d] = %d is out of range for %s", k, v, datatypeName(d))
			}
			out = appendUint(out, uint64(v), size)
		}
	case dnx.Int64:
		if err := check("int64_contents", len(c.GetInt64Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetInt64Contents() {
			out = le.AppendUint64(out, uint64(v))
		}
	case dnx.Uint8, dnx.Uint16, dnx.Uint32:
		if err := check("uint_contents", len(c.GetUintContents())); err != nil {
			return nil, err
		}
		hi := uint64(1)<<(8*size) - 1
		for k, v := range c.GetUintContents() {
			if uint64(v) > hi {
				return nil, fmt.Errorf("contents.uint_contents[%d] = %d is out of range for %s", k, v, datatypeName(d))
			}
			out = appendUint(out, uint64(v), size)
		}
	case dnx.Uint64:
		if err := check("uint64_contents", len(c.GetUint64Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetUint64Contents() {
			out = le.AppendUint64(out, v)
		}
	default:
		return nil, fmt.Errorf("datatype %s has no typed contents field: send it in raw_input_contents", datatypeName(d))
	}
	return out, nil
}

package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// DecodeTensor converts tp to a tensor. It accepts every encoding ONNX defines for the element
// types dnx holds (see the package documentation): raw_data, the typed fields, and external data,
// which is resolved relative to baseDir ("" refuses external data).
//
// Nothing is allocated from a header field alone. The dims pass tensor.CheckShape, and the bytes
// or elements actually present must match the count the dims imply before the result is built.
// Errors name the tensor and wrap ErrCorrupt, ErrExternalData, ErrUnsupportedType, or
// ErrUnsupported for segmented tensors (and tensor.ErrShape for bad dims).
func DecodeTensor(tp *onnxpb.TensorProto, baseDir string) (*tensor.Tensor, error) {
	if tp == nil {
		return nil, fmt.Errorf("%w: nil TensorProto", ErrCorrupt)
	}
	t, err := decodeTensor(tp, baseDir)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	return t, nil
}

func decodeTensor(tp *onnxpb.TensorProto, baseDir string) (*tensor.Tensor, error) {
	dt := tensor.DType(tp.GetDataType())
	if dt == tensor.Undefined {
		return nil, fmt.Errorf("%w: data_type is not set", ErrCorrupt)
	}
	if !dt.Supported() {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedType, dt)
	}
	if tp.GetSegment() != nil {
		return nil, fmt.Errorf("%w: segmented tensor", ErrUnsupported)
	}
	shape, err := tensor.CheckShape(tp.GetDims())
	if err != nil {
		return nil, fmt.Errorf("%w: dims: %w", ErrCorrupt, err)
	}
	n := shape.Size()
	field, count, err := typedField(tp, dt)
	if err != nil {
		return nil, err
	}
	raw := tp.GetRawData()
	switch tp.GetDataLocation() {
	case onnxpb.TensorProto_DEFAULT:
		if len(tp.GetExternalData()) > 0 {
			return nil, fmt.Errorf("%w: external_data entries on a tensor whose data_location is DEFAULT", ErrExternalData)
		}
	case onnxpb.TensorProto_EXTERNAL:
		if len(raw) > 0 || field != "" {
			return nil, fmt.Errorf("%w: data_location is EXTERNAL but the tensor also holds inline data", ErrCorrupt)
		}
		if dt == tensor.String {
			return nil, fmt.Errorf("%w: string tensors cannot be stored externally", ErrExternalData)
		}
		raw, err = readExternal(tp, baseDir, int64(n)*int64(dt.ByteSize()))
		if err != nil {
			return nil, err
		}
		return fromRaw(dt, shape, raw)
	default:
		return nil, fmt.Errorf("%w: unknown data_location %d", ErrCorrupt, tp.GetDataLocation())
	}
	switch {
	case len(raw) > 0 && field != "":
		return nil, fmt.Errorf("%w: both raw_data and %s hold data", ErrCorrupt, field)
	case len(raw) > 0 && dt == tensor.String:
		return nil, fmt.Errorf("%w: a string tensor cannot use raw_data", ErrCorrupt)
	case len(raw) > 0 || field == "" && dt != tensor.String:
		// raw_data, or no payload at all, which is right only for zero elements.
		return fromRaw(dt, shape, raw)
	}
	if count != n {
		return nil, fmt.Errorf("%w: %s has %d elements, but dims %v need %d", ErrCorrupt, fieldFor(dt), count, shape, n)
	}
	return fromTyped(tp, dt, shape)
}

// typedField returns the name and element count of the typed repeated field that holds tp's
// values ("" and 0 when all are empty), or an error when a field other than the one ONNX assigns
// to dt holds data.
func typedField(tp *onnxpb.TensorProto, dt tensor.DType) (string, int, error) {
	fields := [...]struct {
		name string
		n    int
	}{
		{"float_data", len(tp.GetFloatData())},
		{"int32_data", len(tp.GetInt32Data())},
		{"string_data", len(tp.GetStringData())},
		{"int64_data", len(tp.GetInt64Data())},
		{"double_data", len(tp.GetDoubleData())},
		{"uint64_data", len(tp.GetUint64Data())},
	}
	want := fieldFor(dt)
	for _, f := range fields {
		if f.n == 0 {
			continue
		}
		if f.name != want {
			return "", 0, fmt.Errorf("%w: %s holds data, but %s tensors keep their values in %s", ErrCorrupt, f.name, dt, want)
		}
		return f.name, f.n, nil
	}
	return "", 0, nil
}

// fieldFor names the typed field ONNX assigns to dt (onnx.proto's comments on TensorProto).
func fieldFor(dt tensor.DType) string {
	switch dt {
	case tensor.Float32:
		return "float_data"
	case tensor.Int32, tensor.Int16, tensor.Int8, tensor.Uint16, tensor.Uint8, tensor.Bool,
		tensor.Float16, tensor.BFloat16:
		return "int32_data"
	case tensor.String:
		return "string_data"
	case tensor.Int64:
		return "int64_data"
	case tensor.Float64:
		return "double_data"
	case tensor.Uint32, tensor.Uint64:
		return "uint64_data"
	}
	return ""
}

// fromRaw decodes little-endian raw bytes, which must be exactly what shape needs.
func fromRaw(dt tensor.DType, shape tensor.Shape, raw []byte) (*tensor.Tensor, error) {
	n := shape.Size()
	if want := int64(n) * int64(dt.ByteSize()); int64(len(raw)) != want {
		return nil, fmt.Errorf("%w: %d bytes of data, but dims %v of %s need %d", ErrCorrupt, len(raw), shape, dt, want)
	}
	var data any
	switch dt {
	case tensor.Float32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		data = out
	case tensor.Float64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		data = out
	case tensor.Float16:
		data = le16[tensor.F16](raw, n)
	case tensor.BFloat16:
		data = le16[tensor.BF16](raw, n)
	case tensor.Int16:
		data = le16[int16](raw, n)
	case tensor.Uint16:
		data = le16[uint16](raw, n)
	case tensor.Int32:
		data = le32[int32](raw, n)
	case tensor.Uint32:
		data = le32[uint32](raw, n)
	case tensor.Int64:
		data = le64[int64](raw, n)
	case tensor.Uint64:
		data = le64[uint64](raw, n)
	case tensor.Int8:
		out := make([]int8, n)
		for i, b := range raw {
			out[i] = int8(b)
		}
		data = out
	case tensor.Uint8:
		data = append(make([]uint8, 0, n), raw...)
	case tensor.Bool:
		out := make([]bool, n)
		for i, b := range raw {
			out[i] = b != 0
		}
		data = out
	case tensor.String: // only reached with zero elements
		data = make([]string, n)
	default:
		return nil, fmt.Errorf("%w %s", ErrUnsupportedType, dt)
	}
	return &tensor.Tensor{DType: dt, Shape: shape, Data: data}, nil
}

func le16[T ~uint16 | ~int16](raw []byte, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = T(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return out
}

func le32[T ~uint32 | ~int32](raw []byte, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = T(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func le64[T ~uint64 | ~int64](raw []byte, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = T(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return out
}

// fromTyped decodes the typed field ONNX assigns to dt, whose element count the caller has checked
// against the shape. int32_data values must fit the narrower type they stand for (float16 and bfloat16 are stored
// as 16-bit patterns, accepted either zero- or sign-extended).
func fromTyped(tp *onnxpb.TensorProto, dt tensor.DType, shape tensor.Shape) (*tensor.Tensor, error) {
	n := shape.Size()
	var data any
	var err error
	switch dt {
	case tensor.Float32:
		data = clone(tp.GetFloatData())
	case tensor.Float64:
		data = clone(tp.GetDoubleData())
	case tensor.Int64:
		data = clone(tp.GetInt64Data())
	case tensor.Int32:
		data = clone(tp.GetInt32Data())
	case tensor.Uint64:
		data = clone(tp.GetUint64Data())
	case tensor.Uint32:
		out := make([]uint32, n)
		for i, v := range tp.GetUint64Data() {
			if v > math.MaxUint32 {
				return nil, fmt.Errorf("%w: uint64_data[%d] = %d does not fit uint32", ErrCorrupt, i, v)
			}
			out[i] = uint32(v)
		}
		data = out
	case tensor.Int8:
		data, err = narrow[int8](tp.GetInt32Data(), math.MinInt8, math.MaxInt8, dt)
	case tensor.Int16:
		data, err = narrow[int16](tp.GetInt32Data(), math.MinInt16, math.MaxInt16, dt)
	case tensor.Uint8:
		data, err = narrow[uint8](tp.GetInt32Data(), 0, math.MaxUint8, dt)
	case tensor.Uint16:
		data, err = narrow[uint16](tp.GetInt32Data(), 0, math.MaxUint16, dt)
	case tensor.Float16:
		data, err = narrow[tensor.F16](tp.GetInt32Data(), math.MinInt16, math.MaxUint16, dt)
	case tensor.BFloat16:
		data, err = narrow[tensor.BF16](tp.GetInt32Data(), math.MinInt16, math.MaxUint16, dt)
	case tensor.Bool:
		out := make([]bool, n)
		for i, v := range tp.GetInt32Data() {
			out[i] = v != 0 // as numpy's astype(bool)
		}
		data = out
	case tensor.String:
		out := make([]string, n)
		for i, s := range tp.GetStringData() {
			out[i] = string(s)
		}
		data = out
	default:
		return nil, fmt.Errorf("%w %s", ErrUnsupportedType, dt)
	}
	if err != nil {
		return nil, err
	}
	return &tensor.Tensor{DType: dt, Shape: shape, Data: data}, nil
}

func clone[T any](s []T) []T { return append(make([]T, 0, len(s)), s...) }

// narrow converts int32_data values in [lo, hi] to T, keeping the low bits.
func narrow[T ~int8 | ~int16 | ~uint8 | ~uint16](src []int32, lo, hi int32, dt tensor.DType) ([]T, error) {
	out := make([]T, len(src))
	for i, v := range src {
		if v < lo || v > hi {
			return nil, fmt.Errorf("%w: int32_data[%d] = %d is out of range for %s", ErrCorrupt, i, v, dt)
		}
		out[i] = T(v)
	}
	return out, nil
}

// EncodeTensor converts t to a TensorProto named name: raw_data (little-endian) for fixed-size
// types, string_data for strings. It reports an error when t is inconsistent (Data's Go type does
// not match DType, or its length does not match Shape).
func EncodeTensor(t *tensor.Tensor, name string) (*onnxpb.TensorProto, error) {
	if err := checkTensor(t); err != nil {
		return nil, fmt.Errorf("encode tensor %q: %w", name, err)
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	tp := &onnxpb.TensorProto{
		Name:     proto.String(name),
		DataType: proto.Int32(int32(t.DType)),
		Dims:     dims,
	}
	var raw []byte
	switch d := t.Data.(type) {
	case []float32:
		raw = make([]byte, 4*len(d))
		for i, v := range d {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	case []float64:
		raw = make([]byte, 8*len(d))
		for i, v := range d {
			binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
		}
	case []tensor.F16:
		raw = put16(d)
	case []tensor.BF16:
		raw = put16(d)
	case []int16:
		raw = put16(d)
	case []uint16:
		raw = put16(d)
	case []int32:
		raw = put32(d)
	case []uint32:
		raw = put32(d)
	case []int64:
		raw = put64(d)
	case []uint64:
		raw = put64(d)
	case []int8:
		raw = make([]byte, len(d))
		for i, v := range d {
			raw[i] = byte(v)
		}
	case []uint8:
		raw = clone(d)
	case []bool:
		raw = make([]byte, len(d))
		for i, v := range d {
			if v {
				raw[i] = 1
			}
		}
	case []string:
		tp.StringData = make([][]byte, len(d))
		for i, s := range d {
			tp.StringData[i] = []byte(s)
		}
		return tp, nil
	}
	tp.RawData = raw
	return tp, nil
}

func put16[T ~uint16 | ~int16](s []T) []byte {
	raw := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	return raw
}

func put32[T ~uint32 | ~int32](s []T) []byte {
	raw := make([]byte, 4*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(v))
	}
	return raw
}

func put64[T ~uint64 | ~int64](s []T) []byte {
	raw := make([]byte, 8*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return raw
}

// checkTensor reports whether t is a well-formed tensor of a type dnx holds.
func checkTensor(t *tensor.Tensor) error {
	if t == nil {
		return errors.New("nil tensor")
	}
	if !t.DType.Supported() {
		return fmt.Errorf("%w %s", ErrUnsupportedType, t.DType)
	}
	return t.Check()
}

// ReadTensorFile reads a file holding one serialized TensorProto (as the test_data_set_*/*.pb
// files of ONNX's backend tests) and decodes it with DecodeTensor, resolving external data
// relative to the file's directory. It returns the tensor and the TensorProto's name.
func ReadTensorFile(path string) (*tensor.Tensor, string, error) {
	data, err := readFileCapped(path)
	if err != nil {
		return nil, "", fmt.Errorf("read tensor %s: %w", path, err)
	}
	tp := new(onnxpb.TensorProto)
	if err := proto.Unmarshal(data, tp); err != nil {
		return nil, "", fmt.Errorf("read tensor %s: %w: parse TensorProto: %w", path, ErrCorrupt, err)
	}
	t, err := DecodeTensor(tp, filepath.Dir(path))
	if err != nil {
		return nil, "", fmt.Errorf("read tensor %s: %w", path, err)
	}
	return t, tp.GetName(), nil
}

// WriteTensorFile encodes t with EncodeTensor and writes it to path atomically (WriteFileAtomic).
func WriteTensorFile(path string, t *tensor.Tensor, name string) error {
	tp, err := EncodeTensor(t, name)
	if err != nil {
		return fmt.Errorf("write tensor %s: %w", path, err)
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(tp)
	if err != nil {
		return fmt.Errorf("write tensor %s: %w", path, err)
	}
	if len(data) > MaxProtoSize {
		return fmt.Errorf("write tensor %s: %d bytes exceeds the protobuf limit of %d bytes", path, len(data), MaxProtoSize)
	}
	if err := WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("write tensor %s: %w", path, err)
	}
	return nil
}

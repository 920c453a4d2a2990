package dnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// This file holds what a model server needs beyond the rest of the API: tensors of every numeric
// element type built from and written to the little-endian bytes wire protocols carry (ONNX
// raw_data, the Open Inference Protocol's binary tensors), and the rows of a batch taken back
// apart, so that requests run together can be answered one by one.

// ByteSize returns the size in bytes of one element of d in the little-endian raw encoding that
// TensorFromBytes reads and Tensor.AppendBytes writes, or 0 for String and unknown types, which
// have no fixed-size encoding.
func (d DType) ByteSize() int { return tensor.DType(d).ByteSize() }

// TensorFromBytes returns a tensor of element type d and the given shape whose elements are
// decoded from raw: the row-major elements, little-endian, with no padding (bools as one byte,
// non-zero meaning true; float16 and bfloat16 as their 16-bit patterns). raw must hold exactly
// the shape's element count times d.ByteSize() bytes. Errors match ErrInput.
func TensorFromBytes(d DType, shape []int, raw []byte) (*Tensor, error) {
	size := d.ByteSize()
	if size == 0 {
		return nil, fmt.Errorf("dnx: tensor from bytes: %w: element type %s has no fixed-size encoding", ErrInput, d)
	}
	s, err := tensor.CheckShape(int64s(shape))
	if err != nil {
		return nil, fmt.Errorf("dnx: tensor from bytes: %w: %w", ErrInput, err)
	}
	n := s.Size()
	if n > math.MaxInt/size || n*size != len(raw) {
		return nil, fmt.Errorf("dnx: tensor from bytes: %w: %s %v takes %d bytes, got %d", ErrInput, d, s, n*size, len(raw))
	}
	t := tensor.New(tensor.DType(d), s)
	le := binary.LittleEndian
	switch v := t.Data.(type) {
	case []float32:
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case []float64:
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
	case []tensor.F16:
		for i := range v {
			v[i] = tensor.F16(le.Uint16(raw[2*i:]))
		}
	case []tensor.BF16:
		for i := range v {
			v[i] = tensor.BF16(le.Uint16(raw[2*i:]))
		}
	case []int8:
		for i := range v {
			v[i] = int8(raw[i])
		}
	case []uint8:
		copy(v, raw)
	case []bool:
		for i := range v {
			v[i] = raw[i] != 0
		}
	case []int16:
		for i := range v {
			v[i] = int16(le.Uint16(raw[2*i:]))
		}
	case []uint16:
		for i := range v {
			v[i] = le.Uint16(raw[2*i:])
		}
	case []int32:
		for i := range v {
			v[i] = int32(le.Uint32(raw[4*i:]))
		}
	case []uint32:
		for i := range v {
			v[i] = le.Uint32(raw[4*i:])
		}
	case []int64:
		for i := range v {
			v[i] = int64(le.Uint64(raw[8*i:]))
		}
	case []uint64:
		for i := range v {
			v[i] = le.Uint64(raw[8*i:])
		}
	default:
		return nil, fmt.Errorf("dnx: tensor from bytes: %w: element type %s", ErrInput, d)
	}
	return wrapTensor(t), nil
}

// AppendBytes appends t's elements to dst in the encoding TensorFromBytes reads and returns the
// extended slice. A string tensor is an error (matching ErrInput): it has no fixed-size encoding.
func (t *Tensor) AppendBytes(dst []byte) ([]byte, error) {
	if t == nil || t.t == nil {
		return dst, fmt.Errorf("dnx: tensor bytes: %w: nil tensor", ErrInput)
	}
	le := binary.LittleEndian
	switch v := t.t.Data.(type) {
	case []float32:
		for _, x := range v {
			dst = le.AppendUint32(dst, math.Float32bits(x))
		}
	case []float64:
		for _, x := range v {
			dst = le.AppendUint64(dst, math.Float64bits(x))
		}
	case []tensor.F16:
		for _, x := range v {
			dst = le.AppendUint16(dst, uint16(x))
		}
	case []tensor.BF16:
		for _, x := range v {
			dst = le.AppendUint16(dst, uint16(x))
		}
	case []int8:
		for _, x := range v {
			dst = append(dst, byte(x))
		}
	case []uint8:
		dst = append(dst, v...)
	case []bool:
		for _, x := range v {
			b := byte(0)
			if x {
				b = 1
			}
			dst = append(dst, b)
		}
	case []int16:
		for _, x := range v {
			dst = le.AppendUint16(dst, uint16(x))
		}
	case []uint16:
		for _, x := range v {
			dst = le.AppendUint16(dst, x)
		}
	case []int32:
		for _, x := range v {
			dst = le.AppendUint32(dst, uint32(x))
		}
	case []uint32:
		for _, x := range v {
			dst = le.AppendUint32(dst, x)
		}
	case []int64:
		for _, x := range v {
			dst = le.AppendUint64(dst, uint64(x))
		}
	case []uint64:
		for _, x := range v {
			dst = le.AppendUint64(dst, x)
		}
	default:
		return dst, fmt.Errorf("dnx: tensor bytes: %w: element type %s has no fixed-size encoding", ErrInput, t.DType())
	}
	return dst, nil
}

// Rows returns a copy of rows [start, end) of t's first dimension: the inverse of Batch, which
// a server uses to hand each request of a batched run its own part of the outputs. Errors match
// ErrInput.
func (t *Tensor) Rows(start, end int) (*Tensor, error) {
	if t == nil || t.t == nil {
		return nil, fmt.Errorf("dnx: rows: %w: nil tensor", ErrInput)
	}
	if len(t.t.Shape) == 0 {
		return nil, fmt.Errorf("dnx: rows: %w: tensor is a scalar", ErrInput)
	}
	if start < 0 || end < start || end > t.t.Shape[0] {
		return nil, fmt.Errorf("dnx: rows: %w: rows [%d, %d) of a tensor of %d", ErrInput, start, end, t.t.Shape[0])
	}
	shape := append(tensor.Shape{end - start}, t.t.Shape[1:]...)
	row := 1
	for _, d := range t.t.Shape[1:] {
		row *= d
	}
	out := tensor.New(t.t.DType, shape)
	lo, hi := start*row, end*row
	switch d := out.Data.(type) {
	case []float32:
		copy(d, t.t.Data.([]float32)[lo:hi])
	case []float64:
		copy(d, t.t.Data.([]float64)[lo:hi])
	case []tensor.F16:
		copy(d, t.t.Data.([]tensor.F16)[lo:hi])
	case []tensor.BF16:
		copy(d, t.t.Data.([]tensor.BF16)[lo:hi])
	case []int8:
		copy(d, t.t.Data.([]int8)[lo:hi])
	case []int16:
		copy(d, t.t.Data.([]int16)[lo:hi])
	case []int32:
		copy(d, t.t.Data.([]int32)[lo:hi])
	case []int64:
		copy(d, t.t.Data.([]int64)[lo:hi])
	case []uint8:
		copy(d, t.t.Data.([]uint8)[lo:hi])
	case []uint16:
		copy(d, t.t.Data.([]uint16)[lo:hi])
	case []uint32:
		copy(d, t.t.Data.([]uint32)[lo:hi])
	case []uint64:
		copy(d, t.t.Data.([]uint64)[lo:hi])
	case []bool:
		copy(d, t.t.Data.([]bool)[lo:hi])
	case []string:
		copy(d, t.t.Data.([]string)[lo:hi])
	default:
		return nil, fmt.Errorf("dnx: rows: %w: element type %s", ErrInput, t.DType())
	}
	return wrapTensor(out), nil
}

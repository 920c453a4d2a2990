package tensor

import (
	"errors"
	"fmt"
	"math"
	"reflect"
)

// Limits on shapes that come from user input. They bound what a model or tensor file can make dnx
// allocate; a legitimate CNN is far below both.
const (
	// MaxRank is the largest rank dnx accepts.
	MaxRank = 16
	// MaxElements is the largest element count of one tensor (2^32, 16 GiB of float32).
	MaxElements = 1 << 32
)

// ErrShape is wrapped by every error about an invalid or oversized shape.
var ErrShape = errors.New("invalid shape")

// Shape is a list of dimension sizes, outermost first. A rank-0 (scalar) shape is empty.
type Shape []int

// Size returns the number of elements of s (1 for a scalar). It assumes s passed CheckShape.
func (s Shape) Size() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether s and t have the same rank and dims.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s that shares no memory with it.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// Strides returns the row-major element strides of s.
func (s Shape) Strides() []int {
	st := make([]int, len(s))
	n := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = n
		n *= s[i]
	}
	return st
}

// String formats s as [2 3 224 224].
func (s Shape) String() string { return fmt.Sprint([]int(s)) }

// CheckShape validates a shape that comes from user input: no negative dims, rank at most MaxRank,
// element count at most MaxElements (computed without overflow).
func CheckShape(dims []int64) (Shape, error) {
	if len(dims) > MaxRank {
		return nil, fmt.Errorf("%w: rank %d exceeds the limit of %d", ErrShape, len(dims), MaxRank)
	}
	s := make(Shape, len(dims))
	n := int64(1)
	for i, d := range dims {
		if d < 0 {
			return nil, fmt.Errorf("%w: dim %d is negative (%d)", ErrShape, i, d)
		}
		if d > 0 && n > MaxElements/d {
			return nil, fmt.Errorf("%w: %v has more than %d elements", ErrShape, dims, int64(MaxElements))
		}
		n *= d
		s[i] = int(d)
	}
	if n > MaxElements {
		return nil, fmt.Errorf("%w: %v has more than %d elements", ErrShape, dims, int64(MaxElements))
	}
	return s, nil
}

// Tensor is a dense row-major array. Data holds the slice type that DType names (see the package
// documentation); len(Data) == Shape.Size() always.
type Tensor struct {
	DType DType
	Shape Shape
	Data  any
}

// Elem is the set of Go element types a Tensor can hold.
type Elem interface {
	float32 | float64 | F16 | BF16 | int8 | int16 | int32 | int64 |
		uint8 | uint16 | uint32 | uint64 | bool | string
}

// DTypeOf returns the DType whose Data slice holds T.
func DTypeOf[T Elem]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case F16:
		return Float16
	case BF16:
		return BFloat16
	case int8:
		return Int8
	case int16:
		return Int16
	case int32:
		return Int32
	case int64:
		return Int64
	case uint8:
		return Uint8
	case uint16:
		return Uint16
	case uint32:
		return Uint32
	case uint64:
		return Uint64
	case bool:
		return Bool
	case string:
		return String
	}
	panic("tensor: unreachable element type")
}

// New returns a zero-filled tensor. It panics if d is not Supported or shape has a negative dim:
// shapes from user input go through CheckShape first.
func New(d DType, shape Shape) *Tensor {
	n := 1
	for _, x := range shape {
		if x < 0 {
			panic("tensor: negative dim in New")
		}
		n *= x
	}
	var data any
	switch d {
	case Float32:
		data = make([]float32, n)
	case Float64:
		data = make([]float64, n)
	case Float16:
		data = make([]F16, n)
	case BFloat16:
		data = make([]BF16, n)
	case Int8:
		data = make([]int8, n)
	case Int16:
		data = make([]int16, n)
	case Int32:
		data = make([]int32, n)
	case Int64:
		data = make([]int64, n)
	case Uint8:
		data = make([]uint8, n)
	case Uint16:
		data = make([]uint16, n)
	case Uint32:
		data = make([]uint32, n)
	case Uint64:
		data = make([]uint64, n)
	case Bool:
		data = make([]bool, n)
	case String:
		data = make([]string, n)
	default:
		panic("tensor: New with unsupported dtype " + d.String())
	}
	return &Tensor{DType: d, Shape: shape.Clone(), Data: data}
}

// FromSlice wraps data (not copied) as a tensor of the given shape. It panics if the lengths differ.
func FromSlice[T Elem](shape Shape, data []T) *Tensor {
	if shape.Size() != len(data) {
		panic(fmt.Sprintf("tensor: FromSlice: shape %v needs %d elements, got %d", shape, shape.Size(), len(data)))
	}
	return &Tensor{DType: DTypeOf[T](), Shape: shape.Clone(), Data: data}
}

// Scalar returns a rank-0 tensor holding v.
func Scalar[T Elem](v T) *Tensor { return FromSlice(Shape{}, []T{v}) }

// Data returns t's elements as []T. It panics if t does not hold T: callers check DType first.
func Data[T Elem](t *Tensor) []T {
	d, ok := t.Data.([]T)
	if !ok {
		var z T
		panic(fmt.Sprintf("tensor: Data[%T] on a %s tensor", z, t.DType))
	}
	return d
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return t.Shape.Size() }

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.Shape) }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: t.Shape.Clone()}
	switch d := t.Data.(type) {
	case []float32:
		c.Data = append([]float32(nil), d...)
	case []float64:
		c.Data = append([]float64(nil), d...)
	case []F16:
		c.Data = append([]F16(nil), d...)
	case []BF16:
		c.Data = append([]BF16(nil), d...)
	case []int8:
		c.Data = append([]int8(nil), d...)
	case []int16:
		c.Data = append([]int16(nil), d...)
	case []int32:
		c.Data = append([]int32(nil), d...)
	case []int64:
		c.Data = append([]int64(nil), d...)
	case []uint8:
		c.Data = append([]uint8(nil), d...)
	case []uint16:
		c.Data = append([]uint16(nil), d...)
	case []uint32:
		c.Data = append([]uint32(nil), d...)
	case []uint64:
		c.Data = append([]uint64(nil), d...)
	case []bool:
		c.Data = append([]bool(nil), d...)
	case []string:
		c.Data = append([]string(nil), d...)
	default:
		panic("tensor: Clone of a tensor with no data")
	}
	return c
}

// Rows returns rows [lo, hi) of t's first dim as a tensor sharing t's data. It panics when t
// has no first dim or the rows are out of range.
func (t *Tensor) Rows(lo, hi int) *Tensor {
	if len(t.Shape) == 0 || lo < 0 || hi < lo || hi > t.Shape[0] {
		panic(fmt.Sprintf("tensor: Rows(%d, %d) of %v", lo, hi, t.Shape))
	}
	shape := t.Shape.Clone()
	shape[0] = hi - lo
	per := shape[1:].Size()
	// Any element type: Data is one of Elem's slice types, which reflect slices alike.
	d := reflect.ValueOf(t.Data)
	if d.Kind() != reflect.Slice {
		panic("tensor: Rows of a tensor with no data")
	}
	return &Tensor{DType: t.DType, Shape: shape, Data: d.Slice3(lo*per, hi*per, hi*per).Interface()}
}

// Reshaped returns a tensor sharing t's data with another shape of the same size.
func (t *Tensor) Reshaped(shape Shape) *Tensor {
	if shape.Size() != t.Len() {
		panic(fmt.Sprintf("tensor: Reshaped %v to %v changes the size", t.Shape, shape))
	}
	return &Tensor{DType: t.DType, Shape: shape.Clone(), Data: t.Data}
}

// Float64s returns t's elements converted to float64, for comparisons and printing. Bool is 0/1;
// String panics.
func (t *Tensor) Float64s() []float64 {
	out := make([]float64, t.Len())
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []float64:
		copy(out, d)
	case []F16:
		for i, v := range d {
			out[i] = float64(v.Float32())
		}
	case []BF16:
		for i, v := range d {
			out[i] = float64(v.Float32())
		}
	case []int8:
		conv(out, d)
	case []int16:
		conv(out, d)
	case []int32:
		conv(out, d)
	case []int64:
		conv(out, d)
	case []uint8:
		conv(out, d)
	case []uint16:
		conv(out, d)
	case []uint32:
		conv(out, d)
	case []uint64:
		conv(out, d)
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	default:
		panic("tensor: Float64s of a " + t.DType.String() + " tensor")
	}
	return out
}

func conv[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](out []float64, in []T) {
	for i, v := range in {
		out[i] = float64(v)
	}
}

// Int64s returns t's elements as int64 for the integer types (shape arithmetic); it reports an
// error for any other type.
func (t *Tensor) Int64s() ([]int64, error) {
	switch d := t.Data.(type) {
	case []int64:
		return d, nil
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected an int64 or int32 tensor, got %s", t.DType)
}

// nan reports whether f is NaN; kept here so comparisons read clearly.
func nan(f float64) bool { return math.IsNaN(f) }

// Check reports an error unless t is consistent: a supported DType, Data of exactly the slice
// type that DType names, a valid shape, and len(Data) == Shape.Size(). Encoders call it before
// trusting a tensor that came from outside their package.
func (t *Tensor) Check() error {
	if t == nil {
		return errors.New("nil tensor")
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	if _, err := CheckShape(dims); err != nil {
		return err
	}
	n, dt := -1, Undefined
	switch d := t.Data.(type) {
	case []float32:
		n, dt = len(d), Float32
	case []float64:
		n, dt = len(d), Float64
	case []F16:
		n, dt = len(d), Float16
	case []BF16:
		n, dt = len(d), BFloat16
	case []int8:
		n, dt = len(d), Int8
	case []int16:
		n, dt = len(d), Int16
	case []int32:
		n, dt = len(d), Int32
	case []int64:
		n, dt = len(d), Int64
	case []uint8:
		n, dt = len(d), Uint8
	case []uint16:
		n, dt = len(d), Uint16
	case []uint32:
		n, dt = len(d), Uint32
	case []uint64:
		n, dt = len(d), Uint64
	case []bool:
		n, dt = len(d), Bool
	case []string:
		n, dt = len(d), String
	default:
		return fmt.Errorf("data of Go type %T is not a tensor slice", t.Data)
	}
	if dt != t.DType {
		return fmt.Errorf("dtype %s, but data is %T", t.DType, t.Data)
	}
	if n != t.Shape.Size() {
		return fmt.Errorf("%w: shape %v needs %d elements, data has %d", ErrShape, t.Shape, t.Shape.Size(), n)
	}
	return nil
}

package dnx

import (
	"fmt"
	"io"
	"slices"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// DType is a tensor element type. The values are ONNX's TensorProto.DataType codes, which are
// part of the ONNX standard and will not change.
//
// It is a type of this package rather than an alias of the runtime's so that the internal tensor
// package can change (device buffers are planned) without changing this API.
type DType int32

// The element types a Tensor can hold, with their ONNX codes (written out so that the codes are
// visible here; a test checks them against the runtime's).
const (
	Undefined DType = 0
	Float32   DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Uint16    DType = 4
	Int16     DType = 5
	Int32     DType = 6
	Int64     DType = 7
	String    DType = 8
	Bool      DType = 9
	Float16   DType = 10
	Float64   DType = 11
	Uint32    DType = 12
	Uint64    DType = 13
	BFloat16  DType = 16
)

// String returns the lower-case name of d ("float32"), or "dtype(N)" for an unknown code.
func (d DType) String() string { return tensor.DType(d).String() }

// Tensor is an immutable dense array: an element type, a shape (outermost dimension first) and
// the elements in row-major order.
//
// Immutability is what makes sharing safe: one Tensor can be fed to many concurrent Runs, and a
// Run's outputs share nothing a caller can change. The constructors therefore copy the caller's
// slice and the accessors return copies; a copy costs far less than running a model on it.
type Tensor struct {
	t *tensor.Tensor
}

// NewTensor returns a float32 tensor of the given shape holding a copy of data, which must have
// exactly as many elements as the shape implies (the product of the dims; 1 for a scalar with
// an empty shape). Errors match ErrInput.
func NewTensor(shape []int, data []float32) (*Tensor, error) {
	return newTensor(shape, data)
}

// NewInt64Tensor returns an int64 tensor of the given shape holding a copy of data (see
// NewTensor). Models with integer inputs (token ids, class indices) take these.
func NewInt64Tensor(shape []int, data []int64) (*Tensor, error) {
	return newTensor(shape, data)
}

func newTensor[T tensor.Elem](shape []int, data []T) (*Tensor, error) {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	s, err := tensor.CheckShape(dims)
	if err != nil {
		return nil, wrapf(fmt.Errorf("%w: %w", ErrInput, err), "new tensor")
	}
	if n := s.Size(); n != len(data) {
		return nil, wrapf(fmt.Errorf("%w: shape %v holds %d elements, got %d", ErrInput, s, n, len(data)), "new tensor")
	}
	return &Tensor{tensor.FromSlice(s, slices.Clone(data))}, nil
}

// wrapTensor wraps a tensor nobody else will modify.
func wrapTensor(t *tensor.Tensor) *Tensor { return &Tensor{t} }

// DType returns the element type (Undefined for a nil or zero Tensor).
func (t *Tensor) DType() DType {
	if t == nil || t.t == nil {
		return Undefined
	}
	return DType(t.t.DType)
}

// Shape returns a copy of the shape (nil for a scalar, and for a nil or zero Tensor).
func (t *Tensor) Shape() []int {
	if t == nil || t.t == nil || len(t.t.Shape) == 0 {
		return nil
	}
	return slices.Clone([]int(t.t.Shape))
}

// Len returns the number of elements.
func (t *Tensor) Len() int {
	if t == nil || t.t == nil {
		return 0
	}
	return t.t.Len()
}

// String describes t as `float32 [1 5]` (not its elements).
func (t *Tensor) String() string {
	if t == nil || t.t == nil {
		return "<nil tensor>"
	}
	return fmt.Sprintf("%s %v", t.DType(), t.t.Shape)
}

// Float32s returns a copy of the elements as float32. Float16, bfloat16 and float64 tensors are
// converted (exactly, except float64 which is rounded); other element types are an error, since
// converting integers or booleans to floats is rarely what the caller meant.
func (t *Tensor) Float32s() ([]float32, error) {
	if t == nil || t.t == nil {
		return nil, fmt.Errorf("dnx: %w: nil tensor", ErrInput)
	}
	switch t.t.DType {
	case tensor.Float32:
		return slices.Clone(tensor.Data[float32](t.t)), nil
	case tensor.Float16, tensor.BFloat16, tensor.Float64:
		f := t.t.Float64s()
		out := make([]float32, len(f))
		for i, v := range f {
			out[i] = float32(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("dnx: %w: tensor is %s, not a floating-point type", ErrInput, t.t.DType)
}

// Int64s returns a copy of the elements as int64, converting every integer type; float and
// boolean tensors are an error.
func (t *Tensor) Int64s() ([]int64, error) {
	if t == nil || t.t == nil {
		return nil, fmt.Errorf("dnx: %w: nil tensor", ErrInput)
	}
	if !t.t.DType.IsInt() {
		return nil, fmt.Errorf("dnx: %w: tensor is %s, not an integer type", ErrInput, t.t.DType)
	}
	return t.t.Int64s()
}

// Batch stacks tensors of the same element type and shape [1, ...] or [n_i, ...] along their
// first dimension: Batch of [1,3,H,W] images gives [N,3,H,W], the form Session.Run and
// Trainer.Step take. The result holds copies.
func Batch(ts ...*Tensor) (*Tensor, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("dnx: batch: %w: no tensors", ErrInput)
	}
	var first *tensor.Tensor
	n := 0
	for i, t := range ts {
		if t == nil || t.t == nil {
			return nil, fmt.Errorf("dnx: batch: %w: tensor %d is nil", ErrInput, i)
		}
		if len(t.t.Shape) == 0 {
			return nil, fmt.Errorf("dnx: batch: %w: tensor %d is a scalar", ErrInput, i)
		}
		if i == 0 {
			first = t.t
		} else if t.t.DType != first.DType || !t.t.Shape[1:].Equal(first.Shape[1:]) {
			return nil, fmt.Errorf("dnx: batch: %w: tensor %d is %s, tensor 0 is %s (only the first dim may differ)", ErrInput, i, t, ts[0])
		}
		n += t.t.Shape[0]
	}
	shape := append(tensor.Shape{n}, first.Shape[1:]...)
	if _, err := tensor.CheckShape(int64s(shape)); err != nil {
		return nil, fmt.Errorf("dnx: batch: %w: %w", ErrInput, err)
	}
	out := tensor.New(first.DType, shape)
	off := 0
	for _, t := range ts {
		off += copyInto(out, off, t.t)
	}
	return wrapTensor(out), nil
}

// copyInto copies src's elements into dst starting at element off and returns how many it
// copied. dst and src have the same DType.
func copyInto(dst *tensor.Tensor, off int, src *tensor.Tensor) int {
	switch d := dst.Data.(type) {
	case []float32:
		return copy(d[off:], src.Data.([]float32))
	case []float64:
		return copy(d[off:], src.Data.([]float64))
	case []tensor.F16:
		return copy(d[off:], src.Data.([]tensor.F16))
	case []tensor.BF16:
		return copy(d[off:], src.Data.([]tensor.BF16))
	case []int8:
		return copy(d[off:], src.Data.([]int8))
	case []int16:
		return copy(d[off:], src.Data.([]int16))
	case []int32:
		return copy(d[off:], src.Data.([]int32))
	case []int64:
		return copy(d[off:], src.Data.([]int64))
	case []uint8:
		return copy(d[off:], src.Data.([]uint8))
	case []uint16:
		return copy(d[off:], src.Data.([]uint16))
	case []uint32:
		return copy(d[off:], src.Data.([]uint32))
	case []uint64:
		return copy(d[off:], src.Data.([]uint64))
	case []bool:
		return copy(d[off:], src.Data.([]bool))
	case []string:
		return copy(d[off:], src.Data.([]string))
	}
	panic("dnx: copyInto: unknown tensor data type") // unreachable: every Elem is listed
}

func int64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// LoadNPY reads a NumPy .npy file (little-endian numeric or boolean array in C order, as
// numpy.save writes by default). The tensor keeps the file's element type: a float16 array
// stays float16 (Float32s converts it). Errors name the file and match ErrInput for a file that
// is not a usable .npy array.
func LoadNPY(path string) (*Tensor, error) {
	t, err := npy.ReadFile(path)
	if err != nil {
		return nil, wrapf(err, "load npy")
	}
	return wrapTensor(t), nil
}

// SaveNPY writes t to path as a .npy file that numpy.load reads, atomically (see Model.Save).
// BFloat16 and string tensors have no NumPy dtype and are refused.
func SaveNPY(path string, t *Tensor) error {
	if t == nil || t.t == nil {
		return fmt.Errorf("dnx: save npy %s: %w: nil tensor", path, ErrInput)
	}
	b, err := npy.Marshal(t.t)
	if err != nil {
		return wrapf(err, "save npy %s", path)
	}
	if err := onnx.WriteFileAtomic(path, b, 0o644); err != nil {
		return wrapf(err, "save npy")
	}
	return nil
}

// Normalization holds the per-channel (R, G, B) mean and standard deviation that image pixels,
// scaled to [0, 1], are normalized with: x' = (x - Mean[c]) / Std[c]. It must be the one the
// model was trained with (Preset.Normalization for dnx's presets, ImageNetNormalization for
// torchvision's ImageNet models). The zero value means no normalization: pixels in [0, 1].
type Normalization struct {
	Mean, Std [3]float32
}

// ImageNetNormalization returns the statistics every torchvision ImageNet classifier is trained
// with: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
func ImageNetNormalization() Normalization {
	n := imageio.ImageNet()
	return Normalization{Mean: n.Mean, Std: n.Std}
}

// internal returns n in imageio's form, with the zero value meaning std 1.
func (n Normalization) internal() (imageio.Normalization, error) {
	if n == (Normalization{}) {
		n.Std = [3]float32{1, 1, 1}
	}
	for c, s := range n.Std {
		if !(s > 0) {
			return imageio.Normalization{}, fmt.Errorf("%w: Normalization.Std[%d] is %v, want > 0", ErrOptions, c, s)
		}
	}
	return imageio.Normalization{Mean: n.Mean, Std: n.Std}, nil
}

// LoadImage reads a PNG or JPEG file and turns it into a float32 [1, 3, height, width] tensor
// with torchvision's evaluation preprocessing: resize the shorter side to
// round(max(height, width) * 256/224), crop the centre, scale to [0, 1], normalize with norm.
// Batch stacks several into one input. Image dimensions are checked before the pixels are
// decoded, so a small file declaring a huge image is refused (ErrInput).
func LoadImage(path string, height, width int, norm Normalization) (*Tensor, error) {
	n, err := norm.internal()
	if err != nil {
		return nil, fmt.Errorf("dnx: load image %s: %w", path, err)
	}
	t, err := imageio.LoadFile(path, height, width, n)
	if err != nil {
		return nil, wrapf(err, "load image")
	}
	return wrapTensor(t), nil
}

// DecodeImage is LoadImage for an image read from r.
func DecodeImage(r io.Reader, height, width int, norm Normalization) (*Tensor, error) {
	n, err := norm.internal()
	if err != nil {
		return nil, fmt.Errorf("dnx: decode image: %w", err)
	}
	img, err := imageio.Decode(r)
	if err != nil {
		return nil, wrapf(err, "decode image")
	}
	t, err := imageio.Preprocess(img, height, width, n)
	if err != nil {
		return nil, wrapf(err, "decode image")
	}
	return wrapTensor(t), nil
}

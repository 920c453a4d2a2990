package pytorch

import (
	"fmt"
	"math/big"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// storageDTypes maps torch's typed storage classes to element types. Complex and quantized
// storages are absent: no DenseNet state_dict holds them.
var storageDTypes = map[string]tensor.DType{
	"FloatStorage":    tensor.Float32,
	"DoubleStorage":   tensor.Float64,
	"HalfStorage":     tensor.Float16,
	"BFloat16Storage": tensor.BFloat16,
	"LongStorage":     tensor.Int64,
	"IntStorage":      tensor.Int32,
	"ShortStorage":    tensor.Int16,
	"CharStorage":     tensor.Int8,
	"ByteStorage":     tensor.Uint8,
	"BoolStorage":     tensor.Bool,
}

// storageRef is a storage a persistent id names: the record key of its bytes, its element type
// and length. base is the element offset into the record of a legacy-format storage view.
type storageRef struct {
	key   string
	dtype tensor.DType
	numel int64
	base  int64
}

// tensorRef is a tensor as _rebuild_tensor_v2 describes it: a strided view of a storage. Its
// values are read only once the state_dict has been picked out of the checkpoint, so tensors of
// an optimizer state next to it are never loaded.
type tensorRef struct {
	storage *storageRef
	offset  int64
	size    []int64
	stride  []int64
}

// parseStoragePID validates the persistent id ('storage', <torch.XStorage>, key, location, numel)
// that torch.save writes for each storage (the legacy format appends view metadata, returned as
// rest) and returns the storage it names.
func parseStoragePID(pid any, withView bool) (ref *storageRef, view any, err error) {
	t, ok := pid.(pyTuple)
	n := 5
	if withView {
		n = 6
	}
	if !ok || len(t) != n {
		return nil, nil, fmt.Errorf("persistent id is a %s of %d items, want a %d-tuple ('storage', type, key, location, numel%s)",
			typeName(pid), tupleLen(pid), n, map[bool]string{true: ", view", false: ""}[withView])
	}
	if s, ok := t[0].(string); !ok || s != "storage" {
		return nil, nil, fmt.Errorf("persistent id of kind %v, want 'storage'", t[0])
	}
	g, ok := t[1].(*pyGlobal)
	if !ok || g.module != "torch" {
		return nil, nil, fmt.Errorf("storage type is a %s, want a torch storage class", typeName(t[1]))
	}
	dt, ok := storageDTypes[g.name]
	if !ok {
		return nil, nil, fmt.Errorf("storage type torch.%s is not supported", g.name)
	}
	key, ok := t[2].(string)
	if !ok {
		return nil, nil, fmt.Errorf("storage key is a %s, want a str", typeName(t[2]))
	}
	if _, ok := t[3].(string); !ok {
		return nil, nil, fmt.Errorf("storage location is a %s, want a str", typeName(t[3]))
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, nil, fmt.Errorf("storage %q has element count %v", key, t[4])
	}
	ref = &storageRef{key: key, dtype: dt, numel: numel}
	if withView {
		view = t[5]
	}
	return ref, view, nil
}

func tupleLen(v any) int {
	if t, ok := v.(pyTuple); ok {
		return len(t)
	}
	return 0
}

// newTensorRef checks the arguments of _rebuild_tensor_v2 (storage, storage_offset, size, stride).
func newTensorRef(storage, offset, size, stride any) (*tensorRef, error) {
	s, ok := storage.(*storageRef)
	if !ok {
		return nil, fmt.Errorf("storage argument is a %s", typeName(storage))
	}
	off, ok := offset.(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("storage offset %v is not a non-negative int", offset)
	}
	sz, err := intTuple(size, "size")
	if err != nil {
		return nil, err
	}
	st, err := intTuple(stride, "stride")
	if err != nil {
		return nil, err
	}
	if len(sz) != len(st) {
		return nil, fmt.Errorf("size %v and stride %v differ in rank", sz, st)
	}
	return &tensorRef{storage: s, offset: off, size: sz, stride: st}, nil
}

// intTuple converts a tuple of non-negative ints (torch.Size or a stride).
func intTuple(v any, what string) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s is a %s, want a tuple", what, typeName(v))
	}
	if len(t) > tensor.MaxRank {
		return nil, fmt.Errorf("%s has rank %d, more than %d", what, len(t), tensor.MaxRank)
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			if b, isBig := x.(*big.Int); isBig {
				return nil, fmt.Errorf("%s[%d] = %s is out of range", what, i, b)
			}
			return nil, fmt.Errorf("%s[%d] is %v (%s), want a non-negative int", what, i, x, typeName(x))
		}
		out[i] = n
	}
	return out, nil
}

// maxBroadcast bounds the element count of a view larger than its storage.
const maxBroadcast = 1 << 24

// materialize copies the elements tensor t views out of its storage's little-endian bytes raw
// (the whole record; the view starts at element base+offset) into a dense row-major tensor.
// Element (i0, ..., ik) of the view is storage element base + offset + sum_j i_j*stride_j; every
// element touched must lie inside the storage, which is checked before anything is copied.
func materialize(t *tensorRef, raw []byte) (*tensor.Tensor, error) {
	s := t.storage
	es := int64(s.dtype.ByteSize())
	shape, err := tensor.CheckShape(t.size)
	if err != nil {
		return nil, err
	}
	numel := int64(len(raw)) / es
	if s.base < 0 || s.numel < 0 || s.base > numel || s.numel > numel-s.base {
		return nil, fmt.Errorf("storage view [%d, %d) exceeds its %d-element record", s.base, s.base+s.numel, numel)
	}
	n := int64(shape.Size())
	// A view holds at most as many elements as its storage unless it repeats elements (stride
	// 0, as expand() makes). Such a view of a tiny storage could ask for gigabytes, so its dense
	// copy is capped.
	if n > s.numel && n > maxBroadcast {
		return nil, fmt.Errorf("view of %d elements repeats the %d-element storage; more than %d elements is refused",
			n, s.numel, maxBroadcast)
	}
	if n > 0 {
		// last = offset + sum (size_j-1)*stride_j must be < s.numel; checked term by term so
		// that nothing overflows.
		last := t.offset
		if last >= s.numel {
			return nil, fmt.Errorf("storage offset %d is outside the %d-element storage", t.offset, s.numel)
		}
		for j, d := range t.size {
			if d <= 1 || t.stride[j] == 0 {
				continue
			}
			if (s.numel-1-last)/(d-1) < t.stride[j] {
				return nil, fmt.Errorf("view (offset %d, size %v, stride %v) reaches past the %d-element storage",
					t.offset, t.size, t.stride, s.numel)
			}
			last += (d - 1) * t.stride[j]
		}
	}
	start := s.base + t.offset
	out := make([]byte, n*es)
	if contiguous(t.size, t.stride) {
		copy(out, raw[start*es:(start+n)*es])
	} else {
		gather(out, raw, start, t.size, t.stride, es)
	}
	tp := &onnxpb.TensorProto{DataType: int32Ptr(int32(s.dtype)), Dims: t.size, RawData: out}
	return onnx.DecodeTensor(tp, "")
}

func int32Ptr(v int32) *int32 { return &v }

// contiguous reports whether stride is the row-major stride of size (dims of size 1 may have
// any stride).
func contiguous(size, stride []int64) bool {
	want := int64(1)
	for j := len(size) - 1; j >= 0; j-- {
		if size[j] != 1 && stride[j] != want {
			return false
		}
		want *= size[j]
	}
	return true
}

// gather copies a strided view into dst in row-major order, es bytes per element, walking the
// multi-index like an odometer.
func gather(dst, raw []byte, start int64, size, stride []int64, es int64) {
	idx := make([]int64, len(size))
	src := start
	for o := int64(0); o < int64(len(dst)); o += es {
		copy(dst[o:o+es], raw[src*es:(src+1)*es])
		for j := len(size) - 1; j >= 0; j-- {
			idx[j]++
			src += stride[j]
			if idx[j] < size[j] {
				break
			}
			src -= idx[j] * stride[j]
			idx[j] = 0
		}
	}
}

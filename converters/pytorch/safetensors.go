package pytorch

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// maxSafetensorsHeader is the header size limit of the safetensors specification (100 MB).
const maxSafetensorsHeader = 100_000_000

// safetensorsDTypes maps safetensors dtype names to element types.
var safetensorsDTypes = map[string]tensor.DType{
	"F64": tensor.Float64, "F32": tensor.Float32, "F16": tensor.Float16, "BF16": tensor.BFloat16,
	"I64": tensor.Int64, "I32": tensor.Int32, "I16": tensor.Int16, "I8": tensor.Int8,
	"U64": tensor.Uint64, "U32": tensor.Uint32, "U16": tensor.Uint16, "U8": tensor.Uint8,
	"BOOL": tensor.Bool,
}

// safetensorsEntry is one tensor of a safetensors header.
type safetensorsEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// ReadSafetensors reads a .safetensors file: an 8-byte little-endian header length N, N bytes of
// JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// data, each tensor dense, row-major and little-endian at [begin, end) relative to the end of the
// header. Every shape and offset is validated (end within the file, end-begin equal to the size
// the dtype and shape imply) before any tensor is allocated.
func ReadSafetensors(r io.ReaderAt, size int64) (StateDict, error) {
	var lenBuf [8]byte
	if size < 8 {
		return nil, fmt.Errorf("%w: safetensors file of %d bytes has no header", ErrFormat, size)
	}
	if m, err := r.ReadAt(lenBuf[:], 0); m < len(lenBuf) {
		return nil, fmt.Errorf("%w: safetensors header: %w", ErrFormat, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxSafetensorsHeader || n > uint64(size-8) {
		return nil, fmt.Errorf("%w: safetensors header length %d exceeds the %d-byte file (or the %d-byte limit)",
			ErrFormat, n, size, maxSafetensorsHeader)
	}
	hdr := make([]byte, n)
	if m, err := r.ReadAt(hdr, 8); m < len(hdr) {
		return nil, fmt.Errorf("%w: safetensors header: %w", ErrFormat, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("%w: safetensors header is not a JSON object: %w", ErrFormat, err)
	}
	dataStart := 8 + int64(n)
	dataLen := uint64(size - dataStart)
	names := make([]string, 0, len(raw))
	entries := map[string]safetensorsEntry{}
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e safetensorsEntry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: safetensors tensor %q: %w", ErrFormat, name, err)
		}
		dt, ok := safetensorsDTypes[e.DType]
		if !ok {
			return nil, fmt.Errorf("%w: safetensors tensor %q has unsupported dtype %q", ErrFormat, name, e.DType)
		}
		shape, err := tensor.CheckShape(e.Shape)
		if err != nil {
			return nil, fmt.Errorf("%w: safetensors tensor %q: %w", ErrFormat, name, err)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] > e.DataOffsets[1] || e.DataOffsets[1] > dataLen {
			return nil, fmt.Errorf("%w: safetensors tensor %q has data_offsets %v outside the %d data bytes",
				ErrFormat, name, e.DataOffsets, dataLen)
		}
		if want := uint64(shape.Size()) * uint64(dt.ByteSize()); e.DataOffsets[1]-e.DataOffsets[0] != want {
			return nil, fmt.Errorf("%w: safetensors tensor %q: data_offsets %v hold %d bytes, but %s %v needs %d",
				ErrFormat, name, e.DataOffsets, e.DataOffsets[1]-e.DataOffsets[0], e.DType, e.Shape, want)
		}
		names = append(names, name)
		entries[name] = e
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: safetensors file holds no tensors", ErrStateDict)
	}
	slices.Sort(names)
	sd := make(StateDict, len(names))
	for _, name := range names {
		e := entries[name]
		buf := make([]byte, e.DataOffsets[1]-e.DataOffsets[0])
		if m, err := r.ReadAt(buf, dataStart+int64(e.DataOffsets[0])); m < len(buf) {
			return nil, fmt.Errorf("%w: safetensors tensor %q: %w", ErrFormat, name, err)
		}
		tp := &onnxpb.TensorProto{DataType: int32Ptr(int32(safetensorsDTypes[e.DType])), Dims: e.Shape, RawData: buf}
		t, err := onnx.DecodeTensor(tp, "")
		if err != nil {
			return nil, fmt.Errorf("%w: safetensors tensor %q: %w", ErrFormat, name, err)
		}
		sd[name] = t
	}
	return sd, nil
}

package pytorch

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"strings"

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
// header. Every entry is validated before any tensor is allocated: end not before begin and
// within the data, end-begin equal to the size the dtype and shape imply, and, as the format
// requires, the ranges sorted by offset tiling the whole data buffer (see checkSafetensorsLayout).
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
	// Entries are checked in name order so that, of several bad ones, the same is always reported.
	names := make([]string, 0, len(raw))
	for name := range raw {
		if name != "__metadata__" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	entries := make(map[string]safetensorsEntry, len(names))
	for _, name := range names {
		var e safetensorsEntry
		dec := json.NewDecoder(bytes.NewReader(raw[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: safetensors tensor %q: %w", ErrFormat, name, err)
		}
		dt, ok := safetensorsDTypes[e.DType]
		if !ok {
			return nil, fmt.Errorf("%w: safetensors tensor %q has unsupported dtype %q", ErrFormat, name, e.DType)
		}
		if _, err := tensor.CheckShape(e.Shape); err != nil {
			return nil, fmt.Errorf("%w: safetensors tensor %q: %w", ErrFormat, name, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("%w: safetensors tensor %q has data_offsets %v, not [begin, end]", ErrFormat, name, e.DataOffsets)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if end < begin {
			return nil, fmt.Errorf("%w: safetensors tensor %q has data_offsets [%d, %d], which end before they begin",
				ErrFormat, name, begin, end)
		}
		if end > dataLen {
			return nil, fmt.Errorf("%w: safetensors tensor %q has data_offsets [%d, %d] outside the %d data bytes",
				ErrFormat, name, begin, end, dataLen)
		}
		want, ok := safetensorsByteLen(e.Shape, dt.ByteSize())
		if !ok || end-begin != want {
			return nil, fmt.Errorf("%w: safetensors tensor %q: data_offsets [%d, %d] hold %d bytes, but %s %v needs %s",
				ErrFormat, name, begin, end, end-begin, e.DType, e.Shape, byteLenString(want, ok))
		}
		entries[name] = e
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: safetensors file holds no tensors", ErrStateDict)
	}
	if err := checkSafetensorsLayout(names, entries, dataLen); err != nil {
		return nil, err
	}
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

// safetensorsByteLen returns elemSize times the product of dims (all non-negative), or false if
// that overflows a uint64. tensor.CheckShape already bounds the element count, but it converts
// dims to int, which is 32 bits on some platforms; this product depends only on the header.
func safetensorsByteLen(dims []int64, elemSize int) (uint64, bool) {
	n := uint64(elemSize)
	for _, d := range dims {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// byteLenString formats a size from safetensorsByteLen for an error message.
func byteLenString(n uint64, ok bool) string {
	if !ok {
		return "more than 2^64 bytes"
	}
	return strconv.FormatUint(n, 10)
}

// checkSafetensorsLayout applies the rule of the safetensors specification (and of its reference
// reader's Metadata::validate) to ranges already known to lie within the data: sorted by
// (begin, end), each range must begin where the previous one ended, starting at 0, and the last
// must end at the end of the data. So no two tensors share bytes (one weight would silently read
// another's) and no bytes lie outside every tensor (the reference reader refuses such files).
// The header's key order carries no meaning: JSON objects are unordered, and the reference reader
// also sorts by offset first, since writers have laid tensors out in different orders (by name,
// by dtype alignment). Ties are broken by name, so errors are deterministic.
func checkSafetensorsLayout(names []string, entries map[string]safetensorsEntry, dataLen uint64) error {
	order := slices.Clone(names)
	slices.SortFunc(order, func(a, b string) int {
		ea, eb := entries[a].DataOffsets, entries[b].DataOffsets
		if c := cmp.Compare(ea[0], eb[0]); c != 0 {
			return c
		}
		if c := cmp.Compare(ea[1], eb[1]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	prev := ""       // the tensor whose range ends at pos (names may be "", so i == 0 marks the start)
	pos := uint64(0) // the end of the bytes covered so far
	for i, name := range order {
		begin, end := entries[name].DataOffsets[0], entries[name].DataOffsets[1]
		switch {
		case begin < pos && end > begin:
			return fmt.Errorf("%w: safetensors tensors %q (data_offsets %s) and %q (data_offsets %s) overlap",
				ErrFormat, prev, offsetsString(entries[prev]), name, offsetsString(entries[name]))
		case begin < pos:
			return fmt.Errorf("%w: safetensors tensor %q (data_offsets %s) lies inside tensor %q (data_offsets %s)",
				ErrFormat, name, offsetsString(entries[name]), prev, offsetsString(entries[prev]))
		case begin > pos && i == 0:
			return fmt.Errorf("%w: safetensors data bytes [%d, %d) before tensor %q (data_offsets %s) belong to no tensor",
				ErrFormat, pos, begin, name, offsetsString(entries[name]))
		case begin > pos:
			return fmt.Errorf("%w: safetensors data bytes [%d, %d) between tensors %q (data_offsets %s) and %q (data_offsets %s) belong to no tensor",
				ErrFormat, pos, begin, prev, offsetsString(entries[prev]), name, offsetsString(entries[name]))
		}
		prev, pos = name, end
	}
	if pos != dataLen {
		return fmt.Errorf("%w: safetensors data bytes [%d, %d) after tensor %q (data_offsets %s) belong to no tensor",
			ErrFormat, pos, dataLen, prev, offsetsString(entries[prev]))
	}
	return nil
}

// offsetsString formats an entry's data_offsets as the header spells them.
func offsetsString(e safetensorsEntry) string {
	return fmt.Sprintf("[%d, %d]", e.DataOffsets[0], e.DataOffsets[1])
}

// Package npy reads and writes NumPy's .npy array files (format versions 1.0, 2.0 and 3.0).
//
// A .npy file is the magic string "\x93NUMPY", a major and a minor version byte, the header length
// (uint16 little-endian in version 1, uint32 in versions 2 and 3), and the header: a Python dict
// literal such as
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//
// padded with spaces and a newline so that the data starts at a multiple of 64 bytes. The raw
// element data follows.
//
// dnx supports little-endian (or byte-order-free) numeric and boolean arrays in C order:
//
//	f2 f4 f8   i1 i2 i4 i8   u1 u2 u4 u8   b1
//
// Files are user input: the header is capped at MaxHeaderLen bytes, the shape goes through
// tensor.CheckShape, and the data length must match the shape exactly before anything is
// allocated for the array.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/dnx-ml/dnx/internal/filekind"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// MaxHeaderLen is the largest header (the dict literal and its padding) Read accepts. Version 1
// cannot exceed it; versions 2 and 3 could declare up to 4 GiB.
const MaxHeaderLen = 64 << 10

// magic starts every .npy file.
const magic = "\x93NUMPY"

// ErrFormat is wrapped by every error about a file that is not a valid .npy file.
var ErrFormat = errors.New("invalid .npy data")

// ErrUnsupported is wrapped by errors about valid .npy files dnx cannot represent: big-endian or
// structured dtypes, Fortran order, or a tensor type NumPy has no dtype for.
var ErrUnsupported = errors.New("unsupported .npy array")

// descrs maps each supported DType to its NumPy type string without the byte-order character.
var descrs = map[tensor.DType]string{
	tensor.Float16: "f2", tensor.Float32: "f4", tensor.Float64: "f8",
	tensor.Int8: "i1", tensor.Int16: "i2", tensor.Int32: "i4", tensor.Int64: "i8",
	tensor.Uint8: "u1", tensor.Uint16: "u2", tensor.Uint32: "u4", tensor.Uint64: "u8",
	tensor.Bool: "b1",
}

// header is the decoded dict of a .npy header.
type header struct {
	descr   string
	fortran bool
	shape   []int64
}

// ReadFile reads the .npy file at path. The file's size is checked against its header before the
// data is read. Errors name the file.
func ReadFile(path string) (*tensor.Tensor, error) {
	t, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

func readFile(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s, not a regular file", filekind.Of(st.Mode()))
	}
	h, hlen, err := readHeader(f)
	if err != nil {
		return nil, err
	}
	dt, shape, err := h.resolve()
	if err != nil {
		return nil, err
	}
	want := int64(shape.Size()) * int64(dt.ByteSize())
	if got := st.Size() - int64(hlen); got != want {
		return nil, fmt.Errorf("%w: shape %v of %s needs %d data bytes, the file has %d", ErrFormat, shape, dt, want, got)
	}
	data := make([]byte, want)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("%w: read %d data bytes: %w", ErrFormat, want, err)
	}
	return decodeData(dt, shape, data), nil
}

// Read decodes one .npy array from r, reading r to its end: bytes after the array are an error.
// Memory grows with the bytes actually read, never with the sizes the header declares.
func Read(r io.Reader) (*tensor.Tensor, error) {
	h, _, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	dt, shape, err := h.resolve()
	if err != nil {
		return nil, err
	}
	want := int64(shape.Size()) * int64(dt.ByteSize())
	// Read at most one byte more than needed, so that trailing bytes are detected without
	// trusting the declared size for the allocation.
	data, err := io.ReadAll(io.LimitReader(r, want+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read data: %w", ErrFormat, err)
	}
	if int64(len(data)) != want {
		more := ""
		if int64(len(data)) > want {
			more = " or more"
		}
		return nil, fmt.Errorf("%w: shape %v of %s needs %d data bytes, got %d%s", ErrFormat, shape, dt, want, len(data), more)
	}
	return decodeData(dt, shape, data), nil
}

// Unmarshal decodes a whole .npy file held in memory.
func Unmarshal(data []byte) (*tensor.Tensor, error) { return Read(bytes.NewReader(data)) }

// readHeader reads the magic, the version, the header length and the header, and parses it. It
// returns the total number of bytes before the data.
func readHeader(r io.Reader) (header, int, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return header{}, 0, fmt.Errorf("%w: file too short for the magic string: %w", ErrFormat, err)
	}
	if string(pre[:6]) != magic {
		return header{}, 0, fmt.Errorf("%w: bad magic string %q (want %q)", ErrFormat, pre[:6], magic)
	}
	major, minor := pre[6], pre[7]
	var hlen, pos int
	switch major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return header{}, 0, fmt.Errorf("%w: truncated header length: %w", ErrFormat, err)
		}
		hlen, pos = int(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return header{}, 0, fmt.Errorf("%w: truncated header length: %w", ErrFormat, err)
		}
		n := binary.LittleEndian.Uint32(l[:])
		if n > MaxHeaderLen {
			return header{}, 0, fmt.Errorf("%w: header length %d exceeds the limit of %d bytes", ErrFormat, n, MaxHeaderLen)
		}
		hlen, pos = int(n), 12
	default:
		return header{}, 0, fmt.Errorf("%w: format version %d.%d (dnx reads 1.0, 2.0 and 3.0)", ErrUnsupported, major, minor)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return header{}, 0, fmt.Errorf("%w: truncated header (%d bytes declared): %w", ErrFormat, hlen, err)
	}
	// Version 1 and 2 headers are latin-1, version 3 UTF-8; the keys and values dnx accepts are
	// ASCII either way, so the text is parsed byte by byte.
	h, err := parseHeader(string(buf))
	if err != nil {
		return header{}, 0, fmt.Errorf("%w: header %q: %w", ErrFormat, truncate(string(buf), 120), err)
	}
	return h, pos + hlen, nil
}

// resolve checks the header's dtype, order and shape.
func (h header) resolve() (tensor.DType, tensor.Shape, error) {
	dt, err := parseDescr(h.descr)
	if err != nil {
		return 0, nil, err
	}
	if h.fortran {
		return 0, nil, fmt.Errorf("%w: Fortran-order (column-major) arrays are not supported; save a C-order array (numpy.ascontiguousarray)", ErrUnsupported)
	}
	shape, err := tensor.CheckShape(h.shape)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return dt, shape, nil
}

// parseDescr maps a NumPy type string such as "<f4" or "|u1" to a DType.
func parseDescr(d string) (tensor.DType, error) {
	if d == "" {
		return 0, fmt.Errorf("%w: empty descr", ErrFormat)
	}
	order, code := d[0], d[1:]
	switch order {
	case '<', '|', '=', '>':
	default:
		order, code = '=', d // NumPy accepts "f4" without a byte-order character
	}
	for dt, c := range descrs {
		if c != code {
			continue
		}
		if dt.ByteSize() > 1 && order != '<' {
			if order == '>' {
				return 0, fmt.Errorf("%w: big-endian dtype %q; save a little-endian array (astype('<%s'))", ErrUnsupported, d, code)
			}
			return 0, fmt.Errorf("%w: dtype %q has no explicit byte order; dnx reads little-endian ('<%s')", ErrUnsupported, d, code)
		}
		return dt, nil
	}
	return 0, fmt.Errorf("%w: dtype %q (dnx reads f2, f4, f8, i1-i8, u1-u8 and b1)", ErrUnsupported, d)
}

// decodeData converts little-endian bytes to a tensor; len(data) matches shape and dt.
func decodeData(dt tensor.DType, shape tensor.Shape, data []byte) *tensor.Tensor {
	n := shape.Size()
	le := binary.LittleEndian
	var out any
	switch dt {
	case tensor.Float32:
		out = convert(data, n, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) })
	case tensor.Float64:
		out = convert(data, n, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
	case tensor.Float16:
		out = convert(data, n, 2, func(b []byte) tensor.F16 { return tensor.F16(le.Uint16(b)) })
	case tensor.Int8:
		out = convert(data, n, 1, func(b []byte) int8 { return int8(b[0]) })
	case tensor.Int16:
		out = convert(data, n, 2, func(b []byte) int16 { return int16(le.Uint16(b)) })
	case tensor.Int32:
		out = convert(data, n, 4, func(b []byte) int32 { return int32(le.Uint32(b)) })
	case tensor.Int64:
		out = convert(data, n, 8, func(b []byte) int64 { return int64(le.Uint64(b)) })
	case tensor.Uint8:
		out = convert(data, n, 1, func(b []byte) uint8 { return b[0] })
	case tensor.Uint16:
		out = convert(data, n, 2, le.Uint16)
	case tensor.Uint32:
		out = convert(data, n, 4, le.Uint32)
	case tensor.Uint64:
		out = convert(data, n, 8, le.Uint64)
	case tensor.Bool:
		out = convert(data, n, 1, func(b []byte) bool { return b[0] != 0 })
	}
	return &tensor.Tensor{DType: dt, Shape: shape, Data: out}
}

func convert[T any](data []byte, n, size int, f func([]byte) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = f(data[i*size : i*size+size])
	}
	return out
}

// Marshal encodes t as a .npy file: format version 1.0 (2.0 when the header does not fit 64 KiB,
// which takes a rank far above tensor.MaxRank), C order, little-endian. BFloat16 and String
// tensors have no NumPy dtype and are refused.
func Marshal(t *tensor.Tensor) ([]byte, error) {
	code, ok := descrs[t.DType]
	if !ok {
		return nil, fmt.Errorf("%w: NumPy has no dtype for %s tensors", ErrUnsupported, t.DType)
	}
	if err := t.Check(); err != nil {
		return nil, err
	}
	order := "<"
	if t.DType.ByteSize() == 1 {
		order = "|"
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := "(" + strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	shape += ")"
	dict := fmt.Sprintf("{'descr': '%s%s', 'fortran_order': False, 'shape': %s, }", order, code, shape)

	// Pad with spaces and end with '\n' so the data starts at a multiple of 64 bytes.
	major, pre := byte(1), 10
	if len(dict)+1+pre > 0xffff {
		major, pre = 2, 12
	}
	total := (pre + len(dict) + 1 + 63) / 64 * 64
	hdr := dict + strings.Repeat(" ", total-pre-len(dict)-1) + "\n"

	var buf bytes.Buffer
	buf.Grow(total + t.Len()*t.DType.ByteSize())
	buf.WriteString(magic)
	buf.WriteByte(major)
	buf.WriteByte(0)
	if major == 1 {
		binary.Write(&buf, binary.LittleEndian, uint16(len(hdr)))
	} else {
		binary.Write(&buf, binary.LittleEndian, uint32(len(hdr)))
	}
	buf.WriteString(hdr)
	encodeData(&buf, t)
	return buf.Bytes(), nil
}

// Write encodes t with Marshal and writes it to w.
func Write(w io.Writer, t *tensor.Tensor) error {
	data, err := Marshal(t)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// encodeData appends t's elements in little-endian order; t.Check() passed, so
// the switch covers every case that reaches it.
func encodeData(buf *bytes.Buffer, t *tensor.Tensor) {
	le := binary.LittleEndian
	b := make([]byte, 0, t.Len()*t.DType.ByteSize())
	switch d := t.Data.(type) {
	case []float32:
		for _, v := range d {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	case []float64:
		for _, v := range d {
			b = le.AppendUint64(b, math.Float64bits(v))
		}
	case []tensor.F16:
		for _, v := range d {
			b = le.AppendUint16(b, uint16(v))
		}
	case []int8:
		for _, v := range d {
			b = append(b, byte(v))
		}
	case []int16:
		for _, v := range d {
			b = le.AppendUint16(b, uint16(v))
		}
	case []int32:
		for _, v := range d {
			b = le.AppendUint32(b, uint32(v))
		}
	case []int64:
		for _, v := range d {
			b = le.AppendUint64(b, uint64(v))
		}
	case []uint8:
		b = append(b, d...)
	case []uint16:
		for _, v := range d {
			b = le.AppendUint16(b, v)
		}
	case []uint32:
		for _, v := range d {
			b = le.AppendUint32(b, v)
		}
	case []uint64:
		for _, v := range d {
			b = le.AppendUint64(b, v)
		}
	case []bool:
		for _, v := range d {
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	buf.Write(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

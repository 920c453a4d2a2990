package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// npyFile assembles a version-1 .npy file from a header dict (padded as NumPy pads it) and data.
func npyFile(dict string, data []byte) []byte {
	total := (10 + len(dict) + 1 + 63) / 64 * 64
	hdr := dict + strings.Repeat(" ", total-10-len(dict)-1) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	b.Write(data)
	return b.Bytes()
}

func TestRoundTripEveryDType(t *testing.T) {
	tests := []struct {
		name  string
		descr string
		t     *tensor.Tensor
	}{
		{"f4", "<f4", tensor.FromSlice(tensor.Shape{2, 3}, []float32{0, -1.5, float32(math.Inf(1)), 3.25, math.MaxFloat32, math.SmallestNonzeroFloat32})},
		{"f8", "<f8", tensor.FromSlice(tensor.Shape{3}, []float64{math.Pi, -0.0, 1e300})},
		{"f2", "<f2", tensor.FromSlice(tensor.Shape{2}, []tensor.F16{tensor.F16From(1.5), tensor.F16From(-65504)})},
		{"i1", "|i1", tensor.FromSlice(tensor.Shape{3}, []int8{-128, 0, 127})},
		{"i2", "<i2", tensor.FromSlice(tensor.Shape{2}, []int16{-32768, 32767})},
		{"i4", "<i4", tensor.FromSlice(tensor.Shape{2}, []int32{math.MinInt32, 7})},
		{"i8", "<i8", tensor.FromSlice(tensor.Shape{1, 2}, []int64{math.MinInt64, math.MaxInt64})},
		{"u1", "|u1", tensor.FromSlice(tensor.Shape{2, 2}, []uint8{0, 1, 254, 255})},
		{"u2", "<u2", tensor.FromSlice(tensor.Shape{1}, []uint16{65535})},
		{"u4", "<u4", tensor.FromSlice(tensor.Shape{2}, []uint32{0, math.MaxUint32})},
		{"u8", "<u8", tensor.FromSlice(tensor.Shape{2}, []uint64{1, math.MaxUint64})},
		{"b1", "|b1", tensor.FromSlice(tensor.Shape{3}, []bool{true, false, true})},
		{"scalar", "<f4", tensor.Scalar(float32(2.5))},
		{"empty", "<i8", tensor.FromSlice(tensor.Shape{0, 4}, []int64{})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Marshal(tc.t)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) < 10 || (10+int(binary.LittleEndian.Uint16(data[8:10])))%64 != 0 {
				t.Errorf("data does not start at a multiple of 64 bytes")
			}
			if !bytes.Contains(data, []byte("'descr': '"+tc.descr+"'")) {
				t.Errorf("header %q does not declare %s", data[10:], tc.descr)
			}
			got, err := Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			if got.DType != tc.t.DType || !got.Shape.Equal(tc.t.Shape) || !reflect.DeepEqual(got.Data, tc.t.Data) {
				t.Errorf("round trip: got %s %v %v, want %s %v %v", got.DType, got.Shape, got.Data, tc.t.DType, tc.t.Shape, tc.t.Data)
			}
			// The same through a file.
			path := filepath.Join(t.TempDir(), "a.npy")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err = ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Data, tc.t.Data) {
				t.Errorf("ReadFile: got %v, want %v", got.Data, tc.t.Data)
			}
		})
	}
}

// TestNumPyBytes pins the exact bytes NumPy's np.save writes for float32 [[0,1,2],[3,4,5]].
func TestNumPyBytes(t *testing.T) {
	x := tensor.FromSlice(tensor.Shape{2, 3}, []float32{0, 1, 2, 3, 4, 5})
	var want bytes.Buffer
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
	want.WriteString("\x93NUMPY\x01\x00\x76\x00") // header length 118 = 128 - 10
	want.WriteString(dict + strings.Repeat(" ", 118-len(dict)-1) + "\n")
	for _, v := range []float32{0, 1, 2, 3, 4, 5} {
		binary.Write(&want, binary.LittleEndian, v)
	}
	got, err := Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("Marshal:\n got %q\nwant %q", got, want.Bytes())
	}
	var w bytes.Buffer
	if err := Write(&w, x); err != nil || !bytes.Equal(w.Bytes(), want.Bytes()) {
		t.Errorf("Write: %v, %q", err, w.Bytes())
	}
	if one, _ := Marshal(tensor.FromSlice(tensor.Shape{3}, []int8{1, 2, 3})); !bytes.Contains(one, []byte("'shape': (3,), }")) {
		t.Errorf("rank-1 shape must be written as (3,): %q", one)
	}
}

// TestHeaderVariants reads headers NumPy or other writers produce that Marshal never does.
func TestHeaderVariants(t *testing.T) {
	f4 := func(vs ...float32) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, vs)
		return b.Bytes()
	}
	tests := []struct {
		name string
		file []byte
		want tensor.Shape
	}{
		{"key order", npyFile(`{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}`, f4(1, 2)), tensor.Shape{2}},
		{"double quotes", npyFile(`{"descr": "<f4", "fortran_order": False, "shape": (1, 1)}`, f4(1)), tensor.Shape{1, 1}},
		{"python2 longs", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }`, f4(1, 2)), tensor.Shape{2, 1}},
		{"scalar", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (), }`, f4(7)), tensor.Shape{}},
		{"no byte order", npyFile(`{'descr': 'u1', 'fortran_order': False, 'shape': (1,), }`, []byte{9}), tensor.Shape{1}},
		{"version 2", func() []byte {
			b := npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }`, f4(3))
			// Re-frame as version 2.0 with a 4-byte length.
			hl := binary.LittleEndian.Uint16(b[8:10])
			out := append([]byte("\x93NUMPY\x02\x00"), binary.LittleEndian.AppendUint32(nil, uint32(hl))...)
			return append(out, b[10:]...)
		}(), tensor.Shape{1}},
		{"version 3", func() []byte {
			b := npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }`, f4(3))
			hl := binary.LittleEndian.Uint16(b[8:10])
			out := append([]byte("\x93NUMPY\x03\x00"), binary.LittleEndian.AppendUint32(nil, uint32(hl))...)
			return append(out, b[10:]...)
		}(), tensor.Shape{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Unmarshal(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Shape.Equal(tc.want) {
				t.Errorf("shape %v, want %v", got.Shape, tc.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	ok := `{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }`
	data8 := make([]byte, 8)
	tests := []struct {
		name    string
		file    []byte
		want    error
		message string
	}{
		{"empty", nil, ErrFormat, "too short"},
		{"bad magic", append([]byte("\x93NUMPZ\x01\x00"), npyFile(ok, data8)[8:]...), ErrFormat, "magic"},
		{"version 4", append([]byte("\x93NUMPY\x04\x00"), npyFile(ok, data8)[8:]...), ErrUnsupported, "version 4.0"},
		{"truncated header", npyFile(ok, data8)[:40], ErrFormat, "truncated header"},
		{"huge v2 header", []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f{"), ErrFormat, "exceeds the limit"},
		{"truncated data", npyFile(ok, data8[:7]), ErrFormat, "needs 8 data bytes, got 7"},
		{"trailing data", npyFile(ok, make([]byte, 9)), ErrFormat, "got 9 or more"},
		{"fortran order", npyFile(`{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }`, data8), ErrUnsupported, "Fortran"},
		{"big endian", npyFile(`{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }`, data8), ErrUnsupported, "big-endian"},
		{"native multibyte", npyFile(`{'descr': '=f4', 'fortran_order': False, 'shape': (2,), }`, data8), ErrUnsupported, "byte order"},
		{"unicode dtype", npyFile(`{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }`, data8), ErrUnsupported, "<U4"},
		{"object dtype", npyFile(`{'descr': '|O', 'fortran_order': False, 'shape': (2,), }`, data8), ErrUnsupported, "|O"},
		{"structured", npyFile(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }`, data8), ErrUnsupported, "structured"},
		{"huge shape", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }`, data8), tensor.ErrShape, "elements"},
		{"overflowing dim", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }`, data8), ErrFormat, "out of range"},
		{"negative dim", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }`, data8), ErrFormat, "non-negative"},
		{"rank 17", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }`, data8), tensor.ErrShape, "rank 17"},
		{"int not tuple", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (2), }`, data8), ErrFormat, "not a tuple"},
		{"missing key", npyFile(`{'descr': '<f4', 'shape': (2,), }`, data8), ErrFormat, "fortran_order"},
		{"extra key", npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}`, data8), ErrFormat, "unexpected key"},
		{"duplicate key", npyFile(`{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}`, data8), ErrFormat, "twice"},
		{"not a dict", npyFile(`['descr']`, data8), ErrFormat, "dict"},
		{"unterminated", npyFile(`{'descr': '<f4`, data8), ErrFormat, "unterminated"},
		{"garbage after", npyFile(ok+" x", data8), ErrFormat, "after the dict"},
		{"bad bool", npyFile(`{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }`, data8), ErrFormat, "True or False"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.file)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q: want %v containing %q", err, tc.want, tc.message)
			}
			// ReadFile must agree.
			path := filepath.Join(t.TempDir(), "bad.npy")
			os.WriteFile(path, tc.file, 0o644)
			if _, err := ReadFile(path); err == nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadFile error %v: want %v naming the file", err, tc.want)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	for _, x := range []*tensor.Tensor{
		tensor.FromSlice(tensor.Shape{1}, []tensor.BF16{1}),
		tensor.FromSlice(tensor.Shape{1}, []string{"a"}),
		{DType: tensor.Float32, Shape: tensor.Shape{3}, Data: []float32{1}}, // inconsistent
	} {
		if _, err := Marshal(x); err == nil {
			t.Errorf("Marshal(%s %v) succeeded", x.DType, x.Shape)
		}
	}
}

func TestReadFileErrors(t *testing.T) {
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.npy")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadFile(t.TempDir()); err == nil {
		t.Error("directory: no error")
	}
}

func FuzzReadNPY(f *testing.F) {
	for _, x := range []*tensor.Tensor{
		tensor.FromSlice(tensor.Shape{2, 3}, []float32{0, 1, 2, 3, 4, 5}),
		tensor.FromSlice(tensor.Shape{2}, []bool{true, false}),
		tensor.Scalar(int64(3)),
	} {
		b, _ := Marshal(x)
		f.Add(b)
	}
	f.Add(npyFile(`{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }`, make([]byte, 8)))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{'shape': (9999999999,"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := Unmarshal(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same tensor.
		b, err := Marshal(x)
		if err != nil {
			t.Fatalf("decoded %s %v but cannot re-encode: %v", x.DType, x.Shape, err)
		}
		y, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Marshal(y)
		if err != nil || !bytes.Equal(b, c) || !y.Shape.Equal(x.Shape) || y.DType != x.DType {
			t.Fatalf("re-encoding is not stable: %v", err)
		}
	})
}

package onnx

import (
	"errors"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// with applies f to p and returns p, to build test protos in one expression.
func with(p *onnxpb.TensorProto, f func(*onnxpb.TensorProto)) *onnxpb.TensorProto {
	f(p)
	return p
}

// TestDecodeEncodings decodes hand-built protos in every encoding ONNX defines for every element
// type dnx holds, and compares the result exactly.
func TestDecodeEncodings(t *testing.T) {
	f16one, f16negtwo := tensor.F16From(1), tensor.F16From(-2)
	bf16one, bf16negtwo := tensor.BF16From(1), tensor.BF16From(-2)
	tests := []struct {
		name string
		in   *onnxpb.TensorProto
		want *tensor.Tensor
	}{
		// raw_data, little-endian.
		{"raw float32", with(tp("a", tensor.Float32, 2), func(p *onnxpb.TensorProto) { p.RawData = []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0} }),
			tensor.FromSlice(tensor.Shape{2}, []float32{1, -2})},
		{"raw float64", with(tp("a", tensor.Float64, 1), func(p *onnxpb.TensorProto) { p.RawData = []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f} }),
			tensor.FromSlice(tensor.Shape{1}, []float64{1})},
		{"raw float16", with(tp("a", tensor.Float16, 2), func(p *onnxpb.TensorProto) { p.RawData = []byte{0x00, 0x3c, 0x00, 0xc0} }),
			tensor.FromSlice(tensor.Shape{2}, []tensor.F16{f16one, f16negtwo})},
		{"raw bfloat16", with(tp("a", tensor.BFloat16, 2), func(p *onnxpb.TensorProto) { p.RawData = []byte{0x80, 0x3f, 0x00, 0xc0} }),
			tensor.FromSlice(tensor.Shape{2}, []tensor.BF16{bf16one, bf16negtwo})},
		{"raw int8", with(tp("a", tensor.Int8, 3), func(p *onnxpb.TensorProto) { p.RawData = []byte{0x7f, 0x80, 0xff} }),
			tensor.FromSlice(tensor.Shape{3}, []int8{127, -128, -1})},
		{"raw uint8", with(tp("a", tensor.Uint8, 2), func(p *onnxpb.TensorProto) { p.RawData = []byte{0, 255} }),
			tensor.FromSlice(tensor.Shape{2}, []uint8{0, 255})},
		{"raw int16", with(tp("a", tensor.Int16, 2), func(p *onnxpb.TensorProto) { p.RawData = []byte{0x01, 0x02, 0x00, 0x80} }),
			tensor.FromSlice(tensor.Shape{2}, []int16{0x0201, math.MinInt16})},
		{"raw uint16", with(tp("a", tensor.Uint16, 1), func(p *onnxpb.TensorProto) { p.RawData = []byte{0xff, 0xff} }),
			tensor.FromSlice(tensor.Shape{1}, []uint16{math.MaxUint16})},
		{"raw int32", with(tp("a", tensor.Int32, 1), func(p *onnxpb.TensorProto) { p.RawData = []byte{0xfe, 0xff, 0xff, 0xff} }),
			tensor.FromSlice(tensor.Shape{1}, []int32{-2})},
		{"raw uint32", with(tp("a", tensor.Uint32, 1), func(p *onnxpb.TensorProto) { p.RawData = []byte{1, 2, 3, 4} }),
			tensor.FromSlice(tensor.Shape{1}, []uint32{0x04030201})},
		{"raw int64", with(tp("a", tensor.Int64, 1), func(p *onnxpb.TensorProto) { p.RawData = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }),
			tensor.FromSlice(tensor.Shape{1}, []int64{-1})},
		{"raw uint64", with(tp("a", tensor.Uint64, 1), func(p *onnxpb.TensorProto) { p.RawData = []byte{1, 0, 0, 0, 0, 0, 0, 0x80} }),
			tensor.FromSlice(tensor.Shape{1}, []uint64{1<<63 | 1})},
		{"raw bool", with(tp("a", tensor.Bool, 3), func(p *onnxpb.TensorProto) { p.RawData = []byte{0, 1, 2} }),
			tensor.FromSlice(tensor.Shape{3}, []bool{false, true, true})},
		{"raw scalar", with(tp("a", tensor.Float32), func(p *onnxpb.TensorProto) { p.RawData = []byte{0, 0, 0x80, 0x3f} }),
			tensor.FromSlice(tensor.Shape{}, []float32{1})},
		{"raw 2x3", with(tp("a", tensor.Uint8, 2, 3), func(p *onnxpb.TensorProto) { p.RawData = []byte{1, 2, 3, 4, 5, 6} }),
			tensor.FromSlice(tensor.Shape{2, 3}, []uint8{1, 2, 3, 4, 5, 6})},
		// Zero elements need no payload.
		{"empty float32", tp("a", tensor.Float32, 0, 3), tensor.FromSlice(tensor.Shape{0, 3}, []float32{})},
		{"empty string", tp("a", tensor.String, 0), tensor.FromSlice(tensor.Shape{0}, []string{})},
		// Typed fields.
		{"float_data", with(tp("a", tensor.Float32, 2), func(p *onnxpb.TensorProto) { p.FloatData = []float32{1.5, -3} }),
			tensor.FromSlice(tensor.Shape{2}, []float32{1.5, -3})},
		{"double_data", with(tp("a", tensor.Float64, 2), func(p *onnxpb.TensorProto) { p.DoubleData = []float64{1e300, -3} }),
			tensor.FromSlice(tensor.Shape{2}, []float64{1e300, -3})},
		{"int64_data", with(tp("a", tensor.Int64, 2), func(p *onnxpb.TensorProto) { p.Int64Data = []int64{math.MinInt64, 7} }),
			tensor.FromSlice(tensor.Shape{2}, []int64{math.MinInt64, 7})},
		{"int32_data int32", with(tp("a", tensor.Int32, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{math.MinInt32, 7} }),
			tensor.FromSlice(tensor.Shape{2}, []int32{math.MinInt32, 7})},
		{"int32_data int16", with(tp("a", tensor.Int16, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{-32768, 32767} }),
			tensor.FromSlice(tensor.Shape{2}, []int16{-32768, 32767})},
		{"int32_data int8", with(tp("a", tensor.Int8, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{-128, 127} }),
			tensor.FromSlice(tensor.Shape{2}, []int8{-128, 127})},
		{"int32_data uint16", with(tp("a", tensor.Uint16, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{0, 65535} }),
			tensor.FromSlice(tensor.Shape{2}, []uint16{0, 65535})},
		{"int32_data uint8", with(tp("a", tensor.Uint8, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{0, 255} }),
			tensor.FromSlice(tensor.Shape{2}, []uint8{0, 255})},
		{"int32_data bool", with(tp("a", tensor.Bool, 3), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{0, 1, 5} }),
			tensor.FromSlice(tensor.Shape{3}, []bool{false, true, true})},
		{"int32_data float16 bits", with(tp("a", tensor.Float16, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{int32(f16one), int32(f16negtwo)} }),
			tensor.FromSlice(tensor.Shape{2}, []tensor.F16{f16one, f16negtwo})},
		{"int32_data float16 sign-extended bits", with(tp("a", tensor.Float16, 1), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{int32(int16(f16negtwo))} }),
			tensor.FromSlice(tensor.Shape{1}, []tensor.F16{f16negtwo})},
		{"int32_data bfloat16 bits", with(tp("a", tensor.BFloat16, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{int32(bf16one), int32(bf16negtwo)} }),
			tensor.FromSlice(tensor.Shape{2}, []tensor.BF16{bf16one, bf16negtwo})},
		{"uint64_data uint32", with(tp("a", tensor.Uint32, 2), func(p *onnxpb.TensorProto) { p.Uint64Data = []uint64{0, math.MaxUint32} }),
			tensor.FromSlice(tensor.Shape{2}, []uint32{0, math.MaxUint32})},
		{"uint64_data uint64", with(tp("a", tensor.Uint64, 1), func(p *onnxpb.TensorProto) { p.Uint64Data = []uint64{math.MaxUint64} }),
			tensor.FromSlice(tensor.Shape{1}, []uint64{math.MaxUint64})},
		{"string_data", with(tp("a", tensor.String, 2), func(p *onnxpb.TensorProto) { p.StringData = [][]byte{[]byte("héllo"), {}} }),
			tensor.FromSlice(tensor.Shape{2}, []string{"héllo", ""})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Decode both the message and its wire form, as a file would hold it.
			back := new(onnxpb.TensorProto)
			if err := proto.Unmarshal(mustMarshal(t, tc.in), back); err != nil {
				t.Fatal(err)
			}
			for _, p := range []*onnxpb.TensorProto{tc.in, back} {
				got, err := DecodeTensor(p, "")
				if err != nil {
					t.Fatalf("DecodeTensor: %v", err)
				}
				if !bitsEqual(got, tc.want) {
					t.Fatalf("got %s %v %v, want %s %v %v", got.DType, got.Shape, got.Data, tc.want.DType, tc.want.Shape, tc.want.Data)
				}
			}
		})
	}
}

// roundTripTensors holds one tensor of every element type with edge values (NaN, -0, infinities,
// subnormals, integer extremes).
func roundTripTensors() []*tensor.Tensor {
	return []*tensor.Tensor{
		tensor.FromSlice(tensor.Shape{2, 3}, []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(-1)), math.SmallestNonzeroFloat32, math.MaxFloat32}),
		tensor.FromSlice(tensor.Shape{4}, []float64{math.Copysign(0, -1), math.NaN(), math.Inf(1), math.SmallestNonzeroFloat64}),
		tensor.FromSlice(tensor.Shape{4}, []tensor.F16{0x0001, 0x7c00, 0x7e00, 0x8000}),
		tensor.FromSlice(tensor.Shape{3}, []tensor.BF16{0x0001, 0xff80, 0x7fc0}),
		tensor.FromSlice(tensor.Shape{3}, []int8{math.MinInt8, 0, math.MaxInt8}),
		tensor.FromSlice(tensor.Shape{3}, []int16{math.MinInt16, 0, math.MaxInt16}),
		tensor.FromSlice(tensor.Shape{3}, []int32{math.MinInt32, 0, math.MaxInt32}),
		tensor.FromSlice(tensor.Shape{3}, []int64{math.MinInt64, 0, math.MaxInt64}),
		tensor.FromSlice(tensor.Shape{2}, []uint8{0, math.MaxUint8}),
		tensor.FromSlice(tensor.Shape{2}, []uint16{0, math.MaxUint16}),
		tensor.FromSlice(tensor.Shape{2}, []uint32{0, math.MaxUint32}),
		tensor.FromSlice(tensor.Shape{2}, []uint64{0, math.MaxUint64}),
		tensor.FromSlice(tensor.Shape{1, 3}, []bool{true, false, true}),
		tensor.FromSlice(tensor.Shape{3}, []string{"", "dnx", "\x00\xff"}),
		tensor.Scalar[float32](3.5),
		tensor.FromSlice(tensor.Shape{2, 0}, []int64{}),
	}
}

// TestEncodeDecodeRoundTrip encodes, serializes, parses and decodes a tensor of every type, in
// memory and through WriteTensorFile/ReadTensorFile; values must come back bit for bit.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, want := range roundTripTensors() {
		t.Run(want.DType.String()+want.Shape.String(), func(t *testing.T) {
			p, err := EncodeTensor(want, "x")
			if err != nil {
				t.Fatal(err)
			}
			if want.DType != tensor.String && len(p.GetStringData())+len(p.GetFloatData())+len(p.GetInt32Data())+len(p.GetInt64Data()) != 0 {
				t.Errorf("fixed-size type encoded in a typed field, want raw_data")
			}
			back := new(onnxpb.TensorProto)
			if err := proto.Unmarshal(mustMarshal(t, p), back); err != nil {
				t.Fatal(err)
			}
			got, err := DecodeTensor(back, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(got, want) {
				t.Fatalf("in memory: got %v, want %v", got.Data, want.Data)
			}

			path := filepath.Join(dir, want.DType.String()+".pb")
			if err := WriteTensorFile(path, want, "file"); err != nil {
				t.Fatal(err)
			}
			got, name, err := ReadTensorFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if name != "file" || !bitsEqual(got, want) {
				t.Fatalf("through a file: got %q %v, want %q %v", name, got.Data, "file", want.Data)
			}
		})
	}
}

// TestEncodeErrors checks that inconsistent tensors are refused instead of encoded.
func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   *tensor.Tensor
	}{
		{"nil", nil},
		{"dtype mismatch", &tensor.Tensor{DType: tensor.Float64, Shape: tensor.Shape{1}, Data: []float32{1}}},
		{"length mismatch", &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{3}, Data: []float32{1}}},
		{"negative dim", &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{-1}, Data: []float32{}}},
		{"unsupported dtype", &tensor.Tensor{DType: tensor.Float8E4M3FN, Shape: tensor.Shape{1}, Data: []uint8{1}}},
		{"no data", &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeTensor(tc.in, "bad"); err == nil {
				t.Fatal("EncodeTensor succeeded, want an error")
			}
		})
	}
}

// TestDecodeErrors feeds malformed and unsupported tensors. Each must fail with the right
// sentinel, name the tensor, and allocate little (nothing sized from the header).
func TestDecodeErrors(t *testing.T) {
	raw := func(dt tensor.DType, b []byte, dims ...int64) *onnxpb.TensorProto {
		return with(tp("bad", dt, dims...), func(p *onnxpb.TensorProto) { p.RawData = b })
	}
	tests := []struct {
		name string
		in   *onnxpb.TensorProto
		want error
	}{
		{"huge dims", raw(tensor.Float32, []byte{1, 2, 3, 4}, 1<<40, 1<<40), tensor.ErrShape},
		{"huge dims no data", tp("bad", tensor.Float32, 1<<31, 1<<31), tensor.ErrShape},
		{"huge element count in range", tp("bad", tensor.Float64, 1<<16, 1<<16), ErrCorrupt},
		{"negative dim", raw(tensor.Float32, []byte{1, 2, 3, 4}, -1), tensor.ErrShape},
		{"rank too high", tp("bad", tensor.Float32, make([]int64, 17)...), tensor.ErrShape},
		{"raw shorter", raw(tensor.Float32, []byte{1, 2, 3}, 1), ErrCorrupt},
		{"raw longer", raw(tensor.Float32, []byte{1, 2, 3, 4, 5}, 1), ErrCorrupt},
		{"raw for empty", raw(tensor.Int8, []byte{1}, 0), ErrCorrupt},
		{"no payload", tp("bad", tensor.Float32, 2), ErrCorrupt},
		{"no data_type", raw(tensor.Undefined, []byte{1}, 1), ErrCorrupt},
		{"raw string", raw(tensor.String, []byte{1}, 1), ErrCorrupt},
		{"float_data short", with(tp("bad", tensor.Float32, 3), func(p *onnxpb.TensorProto) { p.FloatData = []float32{1} }), ErrCorrupt},
		{"float_data long", with(tp("bad", tensor.Float32, 1), func(p *onnxpb.TensorProto) { p.FloatData = []float32{1, 2} }), ErrCorrupt},
		{"string_data short", with(tp("bad", tensor.String, 2), func(p *onnxpb.TensorProto) { p.StringData = [][]byte{{'a'}} }), ErrCorrupt},
		{"wrong typed field", with(tp("bad", tensor.Float32, 1), func(p *onnxpb.TensorProto) { p.Int64Data = []int64{1} }), ErrCorrupt},
		{"float_data for float16", with(tp("bad", tensor.Float16, 1), func(p *onnxpb.TensorProto) { p.FloatData = []float32{1} }), ErrCorrupt},
		{"raw and typed", with(tp("bad", tensor.Float32, 1), func(p *onnxpb.TensorProto) { p.FloatData = []float32{1}; p.RawData = []byte{0, 0, 0, 0} }), ErrCorrupt},
		{"int8 out of range", with(tp("bad", tensor.Int8, 1), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{128} }), ErrCorrupt},
		{"uint8 negative", with(tp("bad", tensor.Uint8, 1), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{-1} }), ErrCorrupt},
		{"int16 out of range", with(tp("bad", tensor.Int16, 1), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{40000} }), ErrCorrupt},
		{"uint16 out of range", with(tp("bad", tensor.Uint16, 1), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{65536} }), ErrCorrupt},
		{"float16 bits out of range", with(tp("bad", tensor.Float16, 1), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{1 << 16} }), ErrCorrupt},
		{"uint32 out of range", with(tp("bad", tensor.Uint32, 1), func(p *onnxpb.TensorProto) { p.Uint64Data = []uint64{1 << 32} }), ErrCorrupt},
		{"unknown data_location", with(raw(tensor.Uint8, []byte{1}, 1), func(p *onnxpb.TensorProto) { p.DataLocation = onnxpb.TensorProto_DataLocation(7).Enum() }), ErrCorrupt},
		{"external entries on inline tensor", with(raw(tensor.Uint8, []byte{1}, 1), func(p *onnxpb.TensorProto) {
			p.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("w.bin")}}
		}), ErrExternalData},
		{"segment", with(raw(tensor.Uint8, []byte{1}, 1), func(p *onnxpb.TensorProto) { p.Segment = &onnxpb.TensorProto_Segment{} }), ErrUnsupported},
		{"unknown dtype code", raw(tensor.DType(99), []byte{1}, 1), ErrUnsupportedType},
		{"negative dtype code", raw(tensor.DType(-3), []byte{1}, 1), ErrUnsupportedType},
	}
	for _, dt := range []tensor.DType{tensor.Complex64, tensor.Complex128, tensor.Float8E4M3FN, tensor.Float8E4M3FNUZ,
		tensor.Float8E5M2, tensor.Float8E5M2FNUZ, tensor.Uint4, tensor.Int4, tensor.Float4E2M1, tensor.Float8E8M0,
		tensor.Uint2, tensor.Int2} {
		tests = append(tests, struct {
			name string
			in   *onnxpb.TensorProto
			want error
		}{"unsupported " + dt.String(), raw(dt, []byte{1, 2}, 2), ErrUnsupportedType})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			allocated := bytesAllocated(func() { _, err = DecodeTensor(tc.in, t.TempDir()) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
			if want := `tensor "bad"`; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %s", err, want)
			}
			if allocated > 1<<20 {
				t.Errorf("allocated %d bytes to reject the tensor", allocated)
			}
		})
	}
	if _, err := DecodeTensor(nil, ""); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeTensor(nil): %v, want ErrCorrupt", err)
	}
}

// bytesAllocated returns the bytes f allocated on the heap.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadTensorFileErrors checks file-level failures: missing, truncated, bit-flipped, a
// directory. They must name the file and never panic.
func TestReadTensorFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pb")
	if err := WriteTensorFile(good, tensor.FromSlice(tensor.Shape{2, 2}, []float32{1, 2, 3, 4}), "x"); err != nil {
		t.Fatal(err)
	}
	data, err := readFileCapped(good)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "trunc.pb")
	if err := WriteFileAtomic(trunc, data[:len(data)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{trunc, filepath.Join(dir, "missing.pb"), dir} {
		if _, _, err := ReadTensorFile(path); err == nil {
			t.Errorf("ReadTensorFile(%s) succeeded, want an error", path)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the file", err)
		}
	}
	// Every single-bit flip must give a tensor or an error, never a panic.
	for i := range len(data) * 8 {
		b := append([]byte(nil), data...)
		b[i/8] ^= 1 << (i % 8)
		p := new(onnxpb.TensorProto)
		if proto.Unmarshal(b, p) == nil {
			DecodeTensor(p, "")
		}
	}
}

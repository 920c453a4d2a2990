package onnx

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// fuzzTensorSeeds returns small valid TensorProtos in several encodings, built in code.
func fuzzTensorSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, x := range roundTripTensors() {
		p, err := EncodeTensor(x, "seed")
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, mustMarshal(t, p))
	}
	typed := []*onnxpb.TensorProto{
		with(tp("f", tensor.Float32, 2), func(p *onnxpb.TensorProto) { p.FloatData = []float32{1, 2} }),
		with(tp("i", tensor.Int8, 2), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{-1, 2} }),
		with(tp("h", tensor.Float16, 1), func(p *onnxpb.TensorProto) { p.Int32Data = []int32{0x3c00} }),
		with(tp("u", tensor.Uint32, 1), func(p *onnxpb.TensorProto) { p.Uint64Data = []uint64{7} }),
		with(tp("d", tensor.Float64, 1), func(p *onnxpb.TensorProto) { p.DoubleData = []float64{0.5} }),
		with(tp("l", tensor.Int64, 1), func(p *onnxpb.TensorProto) { p.Int64Data = []int64{-9} }),
		extTensor([]int64{2}, "location", "w.bin", "offset", "0", "length", "8"),
	}
	for _, p := range typed {
		seeds = append(seeds, mustMarshal(t, p))
	}
	return seeds
}

// FuzzReadModel parses arbitrary bytes as a model and decodes every initializer. Nothing may
// panic, and external data must be refused (there is no base directory).
func FuzzReadModel(f *testing.F) {
	f.Add(mustMarshal(f, tinyModel()))
	m := tinyModel()
	for _, s := range fuzzTensorSeeds(f) {
		p := new(onnxpb.TensorProto)
		if err := proto.Unmarshal(s, p); err != nil {
			f.Fatal(err)
		}
		m.Graph.Initializer = append(m.Graph.Initializer, p)
	}
	f.Add(mustMarshal(f, m))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadModel(data)
		if err != nil {
			return
		}
		for _, p := range m.GetGraph().GetInitializer() {
			x, err := DecodeTensor(p, "")
			if err == nil && p.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
				t.Fatalf("external tensor %q decoded without a base directory", p.GetName())
			}
			if err == nil {
				checkDecoded(t, x)
			}
		}
	})
}

// FuzzDecodeTensor parses arbitrary bytes as a TensorProto and decodes it. A successful decode
// must give a consistent tensor that re-encodes and decodes to the same bits.
func FuzzDecodeTensor(f *testing.F) {
	for _, s := range fuzzTensorSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := new(onnxpb.TensorProto)
		if proto.Unmarshal(data, p) != nil {
			return
		}
		x, err := DecodeTensor(p, "")
		if err != nil {
			return
		}
		checkDecoded(t, x)
		enc, err := EncodeTensor(x, p.GetName())
		if err != nil {
			t.Fatalf("re-encoding a decoded tensor: %v", err)
		}
		y, err := DecodeTensor(enc, "")
		if err != nil {
			t.Fatalf("decoding a re-encoded tensor: %v", err)
		}
		if x.DType != tensor.Bool && !bitsEqual(x, y) { // bool: nonzero bytes become 1
			t.Fatalf("round trip changed the tensor")
		}
	})
}

// checkDecoded verifies the Tensor invariants: a supported dtype whose slice type matches, and
// len(Data) == Shape.Size().
func checkDecoded(t *testing.T, x *tensor.Tensor) {
	t.Helper()
	if err := checkTensor(x); err != nil {
		t.Fatalf("decoded tensor is inconsistent: %v", err)
	}
}

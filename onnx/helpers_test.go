package onnx

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// sharedDir returns the shared test data directory (env DNX_SHARED, default ../../shared from this
// package, i.e. ../shared from the repository root), or skips the test when it is absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("DNX_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Skipf("shared test data not found at %s (set DNX_SHARED to its location)", dir)
	}
	return dir
}

// bitsEqual reports whether a and b have the same dtype, shape and element bit patterns (so NaN
// equals the same NaN, and -0 differs from +0).
func bitsEqual(a, b *tensor.Tensor) bool {
	if a.DType != b.DType || !a.Shape.Equal(b.Shape) {
		return false
	}
	switch x := a.Data.(type) {
	case []float32:
		y, ok := b.Data.([]float32)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	case []float64:
		y, ok := b.Data.([]float64)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Data, b.Data)
}

// tp builds a TensorProto header; callers add the payload.
func tp(name string, dt tensor.DType, dims ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(dt)), Dims: dims}
}

// tinyModel returns a small valid model: Y = MatMul(X, W) with a float32 initializer W and an
// int64 initializer in int64_data.
func tinyModel() *onnxpb.ModelProto {
	w := tp("W", tensor.Float32, 2, 2)
	w.FloatData = []float32{1, 2, 3, 4}
	s := tp("shape", tensor.Int64, 2)
	s.Int64Data = []int64{2, 2}
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("dnx-test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("tiny"),
			Initializer: []*onnxpb.TensorProto{w, s},
			Node: []*onnxpb.NodeProto{{
				Name: proto.String("mm"), OpType: proto.String("MatMul"),
				Input: []string{"X", "W"}, Output: []string{"Y"},
			}},
			Input:  []*onnxpb.ValueInfoProto{{Name: proto.String("X")}},
			Output: []*onnxpb.ValueInfoProto{{Name: proto.String("Y")}},
		},
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

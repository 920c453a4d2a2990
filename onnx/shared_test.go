package onnx

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// notTensorFiles are the backend tests whose .pb files hold SequenceProto or OptionalProto.
var notTensorFiles = []string{"test_identity_sequence", "test_identity_opt"}

// TestSharedTensorFiles decodes every genuine TensorProto file under the shared data: the reference
// models' test data and ONNX's backend tests. Each must decode (or be a type dnx refuses with
// ErrUnsupportedType), and re-encoding must give back the original raw_data bytes.
func TestSharedTensorFiles(t *testing.T) {
	dir := sharedDir(t)
	var files []string
	for _, pat := range []string{
		"models/*/test_data_set_0/*.pb",
		"models/*/*.pb",
		"models/*/*/*.pb",
		"onnx-tests/*/*/test_data_set_0/*.pb",
	} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	files = slices.Compact(files)
	decoded, unsupported := 0, 0
	for _, f := range files {
		if slices.Contains(notTensorFiles, filepath.Base(filepath.Dir(filepath.Dir(f)))) {
			continue
		}
		got, name, err := ReadTensorFile(f)
		if errors.Is(err, ErrUnsupportedType) {
			unsupported++
			continue
		}
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		decoded++
		// Re-encoding must reproduce the file's payload exactly.
		data, err := readFileCapped(f)
		if err != nil {
			t.Fatal(err)
		}
		orig := new(onnxpb.TensorProto)
		if err := proto.Unmarshal(data, orig); err != nil {
			t.Fatal(err)
		}
		enc, err := EncodeTensor(got, name)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !bytes.Equal(enc.GetRawData(), orig.GetRawData()) || !slices.Equal(enc.GetDims(), orig.GetDims()) {
			t.Errorf("%s: re-encoding changed the raw data or dims", f)
		}
	}
	t.Logf("%d tensor files decoded, %d refused as unsupported types", decoded, unsupported)
	if decoded < 1000 {
		t.Errorf("only %d tensor files decoded; expected well over 1000", decoded)
	}
}

// TestSharedModels reads every model under the shared data and decodes all its initializers and
// constant tensors (node attributes, also inside subgraphs). A deterministic re-marshal must parse
// back to an equal model.
func TestSharedModels(t *testing.T) {
	dir := sharedDir(t)
	var files []string
	for _, pat := range []string{"models/*/*.onnx", "onnx-tests/*/*/model.onnx"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 400 {
		t.Fatalf("found only %d models under %s", len(files), dir)
	}
	tensors, unsupported := 0, 0
	for _, f := range files {
		m, err := ReadModelFile(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		start := time.Now()
		for _, tp := range modelTensors(m.GetGraph()) {
			_, err := DecodeTensor(tp, filepath.Dir(f))
			switch {
			case errors.Is(err, ErrUnsupportedType):
				unsupported++
			case err != nil:
				t.Errorf("%s: %v", f, err)
			default:
				tensors++
			}
		}
		if strings.Contains(f, "densenet121") {
			t.Logf("%s: decoded %d initializers in %v", f, len(m.GetGraph().GetInitializer()), time.Since(start))
		}
		data, err := MarshalModel(m)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		back, err := ReadModel(data)
		if err != nil || !proto.Equal(m, back) {
			t.Errorf("%s: re-marshalled model does not read back equal (err %v)", f, err)
		}
	}
	t.Logf("%d models, %d tensors decoded, %d refused as unsupported types", len(files), tensors, unsupported)
}

// modelTensors lists the initializers of g and the tensors in its nodes' attributes, recursively.
func modelTensors(g *onnxpb.GraphProto) []*onnxpb.TensorProto {
	out := slices.Clone(g.GetInitializer())
	for _, n := range g.GetNode() {
		for _, a := range n.GetAttribute() {
			if a.GetT() != nil {
				out = append(out, a.GetT())
			}
			out = append(out, a.GetTensors()...)
			if a.GetG() != nil {
				out = append(out, modelTensors(a.GetG())...)
			}
			for _, sg := range a.GetGraphs() {
				out = append(out, modelTensors(sg)...)
			}
		}
	}
	return out
}

// BenchmarkDecodeDenseNet121 decodes every initializer of the 32 MB DenseNet-121 reference model.
func BenchmarkDecodeDenseNet121(b *testing.B) {
	path := filepath.Join(sharedDir(b), "models", "densenet121", "model.onnx")
	m, err := ReadModelFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, tp := range m.GetGraph().GetInitializer() {
			if _, err := DecodeTensor(tp, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReadModelDenseNet121 parses and validates the 32 MB DenseNet-121 reference model.
func BenchmarkReadModelDenseNet121(b *testing.B) {
	path := filepath.Join(sharedDir(b), "models", "densenet121", "model.onnx")
	for b.Loop() {
		if _, err := ReadModelFile(path); err != nil {
			b.Fatal(err)
		}
	}
}

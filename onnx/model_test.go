package onnx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// TestReadModelValid reads the in-code tiny model and decodes its initializers.
func TestReadModelValid(t *testing.T) {
	m, err := ReadModel(mustMarshal(t, tinyModel()))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, tinyModel()) {
		t.Fatal("model read back differs")
	}
	for _, p := range m.GetGraph().GetInitializer() {
		if _, err := DecodeTensor(p, ""); err != nil {
			t.Error(err)
		}
	}
}

// TestReadModelInvalid checks the structural validation and the parse errors.
func TestReadModelInvalid(t *testing.T) {
	edit := func(f func(m *onnxpb.ModelProto)) []byte {
		m := tinyModel()
		f(m)
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	opset := func(domain string, v int64) *onnxpb.OperatorSetIdProto {
		return &onnxpb.OperatorSetIdProto{Domain: proto.String(domain), Version: proto.Int64(v)}
	}
	valid := mustMarshal(t, tinyModel())
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"ir_version 99", edit(func(m *onnxpb.ModelProto) { m.IrVersion = proto.Int64(99) }), ErrIRVersion, "ir_version 99"},
		{"ir_version 2", edit(func(m *onnxpb.ModelProto) { m.IrVersion = proto.Int64(2) }), ErrIRVersion, "ir_version 2"},
		{"ir_version missing", edit(func(m *onnxpb.ModelProto) { m.IrVersion = nil }), ErrIRVersion, "ir_version 0"},
		{"no graph", edit(func(m *onnxpb.ModelProto) { m.Graph = nil }), ErrCorrupt, "no graph"},
		{"no opset_import", edit(func(m *onnxpb.ModelProto) { m.OpsetImport = nil }), ErrCorrupt, "opset_import"},
		{"negative opset", edit(func(m *onnxpb.ModelProto) { m.OpsetImport[0].Version = proto.Int64(-1) }), ErrCorrupt, "negative version"},
		{"duplicate domain", edit(func(m *onnxpb.ModelProto) {
			m.OpsetImport = append(m.OpsetImport, opset("ai.onnx", 12))
		}), ErrCorrupt, "twice"},
		{"truncated", valid[:len(valid)-5], ErrCorrupt, "parse"},
		{"garbage", []byte{0xff, 0xff, 0xff, 0xff, 0xff}, ErrCorrupt, "parse"},
		{"empty", nil, ErrCorrupt, "no graph"},
		{"a TensorProto", mustMarshal(t, &onnxpb.TensorProto{Dims: []int64{2}, DataType: proto.Int32(1)}), ErrCorrupt, "no graph"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadModel(tc.data)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one wrapping %v and mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
	// A second domain is fine.
	if _, err := ReadModel(edit(func(m *onnxpb.ModelProto) {
		m.OpsetImport = append(m.OpsetImport, opset("ai.onnx.preview.training", 1))
	})); err != nil {
		t.Errorf("two domains: %v", err)
	}
}

// TestReadModelBitFlips flips every bit of a small model and truncates it at every length: each
// variant must read and decode or fail with an error, never panic.
func TestReadModelBitFlips(t *testing.T) {
	valid := mustMarshal(t, tinyModel())
	try := func(b []byte) {
		m, err := ReadModel(b)
		if err != nil {
			return
		}
		for _, p := range m.GetGraph().GetInitializer() {
			DecodeTensor(p, "")
		}
	}
	for i := range len(valid) * 8 {
		b := bytes.Clone(valid)
		b[i/8] ^= 1 << (i % 8)
		try(b)
	}
	for n := range len(valid) {
		try(valid[:n])
	}
}

// TestReadModelFile covers the file wrapper: errors name the file, oversized files are refused
// from their size alone, and a written model reads back equal.
func TestReadModelFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.onnx")
	if err := WriteModelFile(path, tinyModel()); err != nil {
		t.Fatal(err)
	}
	m, err := ReadModelFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, tinyModel()) {
		t.Fatal("model read back differs")
	}

	huge := filepath.Join(dir, "huge.onnx")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: its size exceeds the limit without using disk space.
	if err := f.Truncate(MaxProtoSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var herr error
	if n := bytesAllocated(func() { _, herr = ReadModelFile(huge) }); n > 1<<20 {
		t.Errorf("allocated %d bytes to refuse an oversized file", n)
	}
	if !errors.Is(herr, ErrCorrupt) || !strings.Contains(herr.Error(), huge) {
		t.Errorf("oversized file: %v", herr)
	}

	trunc := filepath.Join(dir, "trunc.onnx")
	data := mustMarshal(t, tinyModel())
	if err := os.WriteFile(trunc, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{trunc, filepath.Join(dir, "missing.onnx"), dir} {
		if _, err := ReadModelFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("ReadModelFile(%s): error %v, want one naming the file", p, err)
		}
	}
}

// TestMarshalModelDeterministic checks that marshalling is repeatable and refuses nil.
func TestMarshalModelDeterministic(t *testing.T) {
	m := tinyModel()
	m.MetadataProps = []*onnxpb.StringStringEntryProto{{Key: proto.String("b"), Value: proto.String("2")}, {Key: proto.String("a"), Value: proto.String("1")}}
	a, err := MarshalModel(m)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := MarshalModel(proto.Clone(m).(*onnxpb.ModelProto))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("MarshalModel is not deterministic")
		}
	}
	if _, err := MarshalModel(nil); err == nil {
		t.Error("MarshalModel(nil) succeeded")
	}
	if err := WriteModelFile(filepath.Join(t.TempDir(), "nil.onnx"), nil); err == nil {
		t.Error("WriteModelFile(nil) succeeded")
	}
}

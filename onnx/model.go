package onnx

import (
	"errors"
	"fmt"
	"github.com/dnx-ml/dnx/internal/filekind"
	"io"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// Limits on what ReadModel accepts.
const (
	// MinIRVersion is the oldest IR version dnx reads: IR 3 (ONNX 1.0) introduced opset_import.
	MinIRVersion = 3
	// MaxIRVersion is the newest IR version dnx knows (onnx.proto's IR_VERSION).
	MaxIRVersion = int64(onnxpb.Version_IR_VERSION)
	// MaxProtoSize is the largest serialized message dnx reads or writes: protobuf encodes sizes
	// as signed 32-bit integers, so no conforming reader accepts more. Larger models must keep
	// their weights in external data files.
	MaxProtoSize = 1<<31 - 1
)

// ReadModelFile reads and validates the ModelProto in the file at path (see ReadModel). The file's
// size is checked before anything is read. External data is not loaded: pass filepath.Dir(path) as
// DecodeTensor's baseDir for that. Errors name the file.
func ReadModelFile(path string) (*onnxpb.ModelProto, error) {
	data, err := readFileCapped(path)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	m, err := ReadModel(data)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	return m, nil
}

// ReadModel parses a serialized ModelProto and validates its structure: a graph is present, the
// ir_version lies in MinIRVersion..MaxIRVersion, and opset_import is non-empty with non-negative
// versions and no domain listed twice. It neither decodes tensors nor resolves external data.
func ReadModel(data []byte) (*onnxpb.ModelProto, error) {
	if len(data) > MaxProtoSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the protobuf limit of %d bytes", ErrCorrupt, len(data), MaxProtoSize)
	}
	m := new(onnxpb.ModelProto)
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%w: parse ModelProto: %w", ErrCorrupt, err)
	}
	if err := validateModel(m); err != nil {
		return nil, err
	}
	return m, nil
}

// validateModel checks what ReadModel promises. The graph's contents are the importer's business.
func validateModel(m *onnxpb.ModelProto) error {
	// The graph is checked first: bytes that merely happen to parse (another message type) have
	// none, and "no graph" says more about them than a strange ir_version would.
	if m.GetGraph() == nil {
		return fmt.Errorf("%w: model has no graph (not an ONNX model?)", ErrCorrupt)
	}
	ir := m.GetIrVersion()
	if ir < MinIRVersion || ir > MaxIRVersion {
		return fmt.Errorf("%w: ir_version %d is outside the supported range %d..%d", ErrIRVersion, ir, MinIRVersion, MaxIRVersion)
	}
	ops := m.GetOpsetImport()
	if len(ops) == 0 {
		return fmt.Errorf("%w: model (IR %d) has no opset_import", ErrCorrupt, ir)
	}
	seen := make(map[string]bool, len(ops))
	for i, op := range ops {
		d := op.GetDomain()
		if d == "ai.onnx" { // the default domain's two spellings
			d = ""
		}
		if op.GetVersion() < 0 {
			return fmt.Errorf("%w: opset_import %d (domain %q) has negative version %d", ErrCorrupt, i, op.GetDomain(), op.GetVersion())
		}
		if seen[d] {
			return fmt.Errorf("%w: opset_import lists domain %q twice", ErrCorrupt, op.GetDomain())
		}
		seen[d] = true
	}
	return nil
}

// MarshalModel serializes m deterministically (map entries sorted), so the same model always
// gives the same bytes. It refuses results over MaxProtoSize, which no reader would accept.
func MarshalModel(m *onnxpb.ModelProto) ([]byte, error) {
	if m == nil {
		return nil, errors.New("marshal model: nil ModelProto")
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal model: %w", err)
	}
	if len(data) > MaxProtoSize {
		return nil, fmt.Errorf("marshal model: %d bytes exceeds the protobuf limit of %d bytes", len(data), MaxProtoSize)
	}
	return data, nil
}

// WriteModelFile serializes m with MarshalModel and writes it to path with WriteFileAtomic, so a
// failed write leaves any existing file at path as it was.
func WriteModelFile(path string, m *onnxpb.ModelProto) error {
	data, err := MarshalModel(m)
	if err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	return nil
}

// readFileCapped reads a whole regular file of at most MaxProtoSize bytes. The size comes from
// Stat, before any buffer is allocated; a file that grows while being read is refused.
func readFileCapped(path string) ([]byte, error) {
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
	if st.Size() > MaxProtoSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the protobuf limit of %d bytes", ErrCorrupt, st.Size(), MaxProtoSize)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %d bytes: %w", len(data), err)
	}
	var probe [1]byte
	if n, _ := f.Read(probe[:]); n != 0 {
		return nil, errors.New("file grew while reading")
	}
	return data, nil
}

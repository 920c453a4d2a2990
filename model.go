package dnx

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// Model is an ONNX model loaded into dnx: its graph with decoded weights, and the model-level
// fields (metadata, doc string) that travel with it when it is saved again.
//
// A Model is immutable, so one Model can back any number of Sessions and Trainers at once: each
// of them works on its own copy of what it changes. WithMetadata returns a new Model instead of
// modifying this one.
type Model struct {
	// g holds the weights and the model-level fields (metadata, doc strings, producer), which
	// runtime/graph carries through import, clone and export.
	g *graph.Graph
}

// LoadFile reads the ONNX model at path. Tensors stored as external data are read from files
// next to it (their locations must stay inside the model's folder); this is the only loader that
// supports external data, because the others have no folder to resolve locations against.
//
// Errors name the file; a file that is not a model dnx can load matches ErrInvalidModel or
// ErrUnsupported, a missing file fs.ErrNotExist.
func LoadFile(path string) (*Model, error) {
	m, err := onnx.ReadModelFile(path)
	if err != nil {
		return nil, wrapf(err, "load model")
	}
	// The file's bytes are garbage now; collecting them before the weights are decoded keeps a
	// large model's peak memory near two copies of its weights instead of three (as graph.Load).
	runtime.GC()
	model, err := fromProto(m, filepath.Dir(path))
	if err != nil {
		return nil, wrapf(err, "load model %s", path)
	}
	runtime.GC() // the protobuf
	return model, nil
}

// LoadBytes decodes an ONNX model held in memory. A model with external data is refused
// (ErrInvalidModel): bytes have no folder to read it from; use LoadFile.
func LoadBytes(data []byte) (*Model, error) {
	m, err := onnx.ReadModel(data)
	if err != nil {
		return nil, wrapf(err, "load model")
	}
	model, err := fromProto(m, "")
	if err != nil {
		return nil, wrapf(err, "load model")
	}
	return model, nil
}

// LoadReader reads an ONNX model from r to its end and decodes it as LoadBytes does (external
// data is refused). At most onnx.MaxProtoSize bytes (2 GiB) are read, the most any ONNX reader
// accepts in one message.
func LoadReader(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, onnx.MaxProtoSize+1))
	if err != nil {
		return nil, wrapf(err, "load model")
	}
	if len(data) > onnx.MaxProtoSize {
		return nil, wrapf(fmt.Errorf("%w: more than %d bytes, the protobuf limit (keep large weights in external data and use LoadFile)",
			onnx.ErrCorrupt, onnx.MaxProtoSize), "load model")
	}
	return LoadBytes(data)
}

// fromProto imports m (external data resolved against baseDir, "" for none). A metadata key the
// file repeats (which ONNX's checker forbids) keeps its first place and its last value
// (runtime/graph), so that Metadata and Marshal agree and a saved model has distinct keys.
func fromProto(m *onnxpb.ModelProto, baseDir string) (*Model, error) {
	g, err := graph.Import(m, baseDir, ops.Default())
	if err != nil {
		return nil, err
	}
	return &Model{g: g}, nil
}

// Inputs describes the tensors Session.Run needs, in the model's order. Initializers are not
// inputs, even in old models that list them as such.
func (m *Model) Inputs() []ValueInfo { return valueInfos(m.g.Inputs) }

// Outputs describes the tensors Session.Run returns, in the model's order. Their types are the
// ones dnx inferred, so dims the file left out are filled in where the inputs determine them.
func (m *Model) Outputs() []ValueInfo { return valueInfos(m.g.Outputs) }

// Opset returns the version of the default (ai.onnx) operator set the model declares.
func (m *Model) Opset() int { return m.g.Opsets[""] }

// Metadata returns the model's metadata_props as a map (a fresh copy; for a key repeated in
// the file, its last value). Models dnx builds record their architecture under "dnx.densenet.*",
// fine-tuned models their class names under "labels".
func (m *Model) Metadata() map[string]string { return m.g.MetadataMap() }

// WithMetadata returns a model that shares m's weights and carries m's metadata updated with kv:
// each key is set to its value, or removed when the value is "". m is unchanged. Keys keep their
// place; new keys follow in sorted order, so the saved bytes do not depend on map iteration.
func (m *Model) WithMetadata(kv map[string]string) (*Model, error) {
	g, err := m.g.Clone(ops.Default()) // shares the constant tensors
	if err != nil {
		return nil, wrapf(err, "copy model")
	}
	setMetadata(g, kv)
	return &Model{g: g}, nil
}

// setMetadata sets each key of kv in g's metadata, or deletes it when its value is "", in key
// order (new keys are appended, so the order must not depend on map iteration).
func setMetadata(g *graph.Graph, kv map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if kv[k] == "" {
			g.DeleteMetadata(k)
		} else {
			g.SetMetadata(k, kv[k])
		}
	}
}

// proto converts m back into an ONNX ModelProto.
func (m *Model) proto() (*onnxpb.ModelProto, error) { return graph.Export(m.g) }

// Marshal encodes m as ONNX bytes. The encoding is deterministic: the same model always gives
// the same bytes. Weights are written inline (no external data), so models over 2 GiB cannot be
// marshalled.
func (m *Model) Marshal() ([]byte, error) {
	p, err := m.proto()
	if err != nil {
		return nil, wrapf(err, "marshal model")
	}
	b, err := onnx.MarshalModel(p)
	if err != nil {
		return nil, wrapf(err, "marshal model")
	}
	return b, nil
}

// Save writes m to path as an ONNX file, atomically: readers see the old file or the complete
// new one, never a partial write, and a failed Save leaves an existing file untouched. The file
// gets mode 0644.
func (m *Model) Save(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := onnx.WriteFileAtomic(path, b, 0o644); err != nil {
		return wrapf(err, "save model")
	}
	return nil
}

// ValueInfo describes one input or output of a model: its name, element type and shape.
type ValueInfo struct {
	Name  string
	DType DType
	// Shape has one Dim per dimension, outermost first. It is nil when even the rank is unknown
	// (Ranked is then false).
	Shape  []Dim
	Ranked bool
}

// String formats v as `input float32 [batch 3 224 224]`.
func (v ValueInfo) String() string {
	if !v.Ranked {
		return fmt.Sprintf("%s %s [...]", v.Name, v.DType)
	}
	parts := make([]string, len(v.Shape))
	for i, d := range v.Shape {
		parts[i] = d.String()
	}
	return fmt.Sprintf("%s %s [%s]", v.Name, v.DType, strings.Join(parts, " "))
}

// Dim is one dimension of a declared shape: a fixed size, or a symbolic dim whose size the
// caller picks at run time (such as "batch"). Every input dim with the same Name must have the
// same size within one Run.
type Dim struct {
	// Size is the fixed size, or -1 when the dim is symbolic or unknown.
	Size int
	// Name is the symbolic name ("batch"); "" for a fixed dim or an anonymous unknown one.
	Name string
}

// Fixed reports whether d has a fixed size.
func (d Dim) Fixed() bool { return d.Size >= 0 }

// String returns the size, the name, or "?" for an anonymous unknown dim.
func (d Dim) String() string {
	switch {
	case d.Fixed():
		return strconv.Itoa(d.Size)
	case d.Name != "":
		return d.Name
	}
	return "?"
}

// valueInfos describes graph values with this package's types.
func valueInfos(vs []*graph.Value) []ValueInfo {
	out := make([]ValueInfo, len(vs))
	for i, v := range vs {
		info := ValueInfo{Name: v.Name, DType: DType(v.Type.DType), Ranked: !v.Type.Unranked}
		if info.Ranked {
			info.Shape = make([]Dim, len(v.Type.Shape))
			for k, d := range v.Type.Shape {
				info.Shape[k] = Dim{Size: -1, Name: d.Param}
				if d.IsKnown() {
					info.Shape[k] = Dim{Size: int(d.Value)}
				}
			}
		}
		out[i] = info
	}
	return out
}

package cli

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// loadedModel is a model file as the commands that run or describe it need it: the graph, and
// what the import leaves out of it.
type loadedModel struct {
	g *graph.Graph
	// external lists the external data files the model reads, as paths: inputs that no output
	// may overwrite.
	external []fileArg
}

// loadModel reads and imports the ONNX model at path, as graph.Load does (the graph keeps the
// model's metadata), keeping the names of its external data files. Errors name the file.
func loadModel(path string) (*loadedModel, error) {
	m, err := onnx.ReadModelFile(path)
	if err != nil {
		return nil, err
	}
	lm := &loadedModel{external: externalFiles(m, path)}
	runtime.GC() // the file's bytes: a large model's peak memory is then the protobuf and the graph
	if lm.g, err = graph.Import(m, filepath.Dir(path), ops.Default()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m = nil
	runtime.GC() // the protobuf
	return lm, nil
}

// externalFiles returns the external data files of the initializers and Constant values of the
// model at path, resolved against its folder as the importer resolves them, each once.
func externalFiles(m *onnxpb.ModelProto, path string) []fileArg {
	var out []fileArg
	seen := map[string]bool{}
	add := func(t *onnxpb.TensorProto) {
		if t.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return
		}
		for _, kv := range t.GetExternalData() {
			if kv.GetKey() != "location" || seen[kv.GetValue()] {
				continue
			}
			seen[kv.GetValue()] = true
			out = append(out, fileArg{flag: path + "'s external data", path: filepath.Join(filepath.Dir(path), kv.GetValue())})
		}
	}
	for _, t := range m.GetGraph().GetInitializer() {
		add(t)
	}
	for _, n := range m.GetGraph().GetNode() {
		for _, a := range n.GetAttribute() {
			add(a.GetT())
		}
	}
	return out
}

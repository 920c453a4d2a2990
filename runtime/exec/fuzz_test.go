package exec

import (
	"context"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// FuzzImportRun feeds arbitrary bytes through the whole load path (decode, import, decode every
// attribute, infer every type, compile) and, when that succeeds, runs the model on zeros. Whatever
// the bytes, the result must be an error or outputs, never a panic.
func FuzzImportRun(f *testing.F) {
	// A DenseNet-BC small enough that one run costs microseconds even with the fuzzer's
	// coverage instrumentation: every DenseNet op, 8x8 input.
	cfg := builders.Config{Growth: 2, Blocks: []int{1, 1}, InitFeatures: 4, BNSize: 2, Compression: 0.5,
		Stem: builders.StemCIFAR, Classes: 3, InputSize: 8}
	for _, inference := range []bool{false, true} {
		m, err := builders.Build(cfg, builders.BuildOptions{Seed: 1, Inference: inference})
		if err != nil {
			f.Fatal(err)
		}
		b, err := onnx.MarshalModel(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	reg := ops.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnx.ReadModel(data)
		if err != nil {
			return
		}
		g, err := graph.Import(m, "", reg)
		if err != nil {
			return
		}
		s, err := New(g)
		if err != nil {
			return
		}
		defer s.Close() // each Session owns its cpu.Workers
		inputs := make([]*tensor.Tensor, len(g.Inputs))
		total := 0
		for i, v := range g.Inputs {
			if v.Type.Unranked || !v.Type.DType.Supported() {
				return
			}
			shape := make(tensor.Shape, len(v.Type.Shape))
			for k, d := range v.Type.Shape {
				shape[k] = 1
				if d.IsKnown() {
					shape[k] = int(d.Value)
				}
			}
			total += shape.Size()
			if total > 1<<16 {
				return // keep each fuzz run cheap
			}
			inputs[i] = tensor.New(v.Type.DType, shape)
		}
		_, _ = s.Run(context.Background(), inputs)
	})
}

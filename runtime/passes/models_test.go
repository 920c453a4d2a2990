package passes

import (
	"flag"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// keepExport, when set, names a folder where TestExportFinetuneTiny writes the exported model and
// its input and expected logits, for checking it with ONNX Runtime (shared/tools/ort).
var keepExport = flag.String("keep-export", "", "folder to write the exported finetune_tiny model into")

// convCount is the number of convolutions, fused or not.
func convCount(h map[string]int) int { return h["Conv"] + h["FusedConv"] }

// TestInferencePipelineOnModels runs Inference() on the shared PyTorch exports and checks the op
// histogram and the logits against the unoptimized graph and against PyTorch.
func TestInferencePipelineOnModels(t *testing.T) {
	const in0, out0 = "test_data_set_0/input_0.pb", "test_data_set_0/output_0.pb"
	cases := []struct {
		dir, model, input, output string
		slow                      bool
	}{
		{"densenet_tiny", "model.onnx", in0, out0, false},
		{"finetune_tiny", "model_before.onnx", "x.pb", "logits_before_eval.pb", false},
		{"densenet_bc100_k12_cifar", "model.onnx", in0, out0, false},
		{"densenet121", "model.onnx", in0, out0, true},
	}
	for _, c := range cases {
		t.Run(c.dir+"/"+c.model, func(t *testing.T) {
			if c.slow && testing.Short() {
				t.Skip("densenet121 with reference kernels is slow; skipped in -short mode")
			}
			dir := testenv.Shared(t, filepath.Join("models", c.dir))
			g, err := graph.Load(filepath.Join(dir, c.model))
			if err != nil {
				t.Fatal(err)
			}
			x, _, err := onnx.ReadTensorFile(filepath.Join(dir, c.input))
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := onnx.ReadTensorFile(filepath.Join(dir, c.output))
			if err != nil {
				t.Fatal(err)
			}
			feeds := map[string]*tensor.Tensor{g.Inputs[0].Name: x}
			outName := g.Outputs[0].Name
			before := runRef(t, g, feeds)[outName]
			hist0 := g.OpHistogram()

			changed, err := Inference().Run(g)
			if err != nil {
				t.Fatal(err)
			}
			if !changed {
				t.Fatal("Inference() changed nothing")
			}
			if err := g.Validate(); err != nil {
				t.Fatal(err)
			}
			hist := g.OpHistogram()
			t.Logf("ops before %v", hist0)
			t.Logf("ops after  %v", hist)
			for _, op := range []string{"Pad", "Constant", "Identity"} {
				if hist[op] != 0 {
					t.Errorf("%d %s nodes remain", hist[op], op)
				}
			}
			for _, n := range g.Nodes {
				if _, ok := n.Op.(*ops.Concat); ok && len(n.Inputs) < 2 {
					t.Errorf("%s has %d inputs", n, len(n.Inputs))
				}
				if _, ok := n.Op.(*ops.BatchNormalization); ok {
					// Only norm5 may stay: BN -> Relu -> GlobalAveragePool.
					r := n.Outputs[0].Consumers
					if len(r) != 1 || r[0].OpType != "Relu" || len(r[0].Outputs[0].Consumers) != 1 ||
						r[0].Outputs[0].Consumers[0].OpType != "GlobalAveragePool" {
						t.Errorf("%s remains outside the final BN -> Relu -> GlobalAveragePool", n)
					}
				}
			}
			if hist["BatchNormalization"] != 1 {
				t.Errorf("%d BatchNormalization nodes remain, want 1 (norm5)", hist["BatchNormalization"])
			}
			// Every transition's pool moved before its 1x1 convolution and took the BN-ReLU.
			if hist["AveragePool"] != 0 || hist["FusedAveragePool"] != hist0["AveragePool"] {
				t.Errorf("%d AveragePool and %d FusedAveragePool after, want 0 and %d (one per transition)",
					hist["AveragePool"], hist["FusedAveragePool"], hist0["AveragePool"])
			}
			if convCount(hist) != convCount(hist0) {
				t.Errorf("%d convolutions after, %d before", convCount(hist), convCount(hist0))
			}
			if g.Outputs[0].Name != outName {
				t.Errorf("output renamed to %q, want %q", g.Outputs[0].Name, outName)
			}
			after := runRef(t, g, feeds)[outName]
			if err := tensor.AllClose(after, before, 0, 1e-4); err != nil {
				t.Errorf("optimized vs original graph: %v", err)
			}
			if err := tensor.AllClose(after, want, 0, tensor.PyTorchAtol); err != nil {
				t.Errorf("optimized graph vs PyTorch: %v", err)
			}
			t.Logf("max |optimized - original| = %.3g, max |optimized - PyTorch| = %.3g",
				tensor.MaxAbsDiff(after, before), tensor.MaxAbsDiff(after, want))
		})
	}
}

// TestPortableFinetuneTiny runs Portable() on the unfolded training export: the four Conv -> BN pairs
// fold, the model exports as standard ONNX, and the re-imported model reproduces PyTorch's logits.
func TestPortableFinetuneTiny(t *testing.T) {
	dir := testenv.Shared(t, "models/finetune_tiny")
	g, err := graph.Load(filepath.Join(dir, "model_before.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := onnx.ReadTensorFile(filepath.Join(dir, "x.pb"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := onnx.ReadTensorFile(filepath.Join(dir, "logits_before_eval.pb"))
	if err != nil {
		t.Fatal(err)
	}
	hist0 := g.OpHistogram()
	if _, err := Portable().Run(g); err != nil {
		t.Fatal(err)
	}
	hist := g.OpHistogram()
	if got, want := hist0["BatchNormalization"]-hist["BatchNormalization"], 4; got != want {
		t.Errorf("folded %d BatchNormalization nodes, want %d (ops before %v, after %v)", got, want, hist0, hist)
	}
	for _, op := range []string{"FusedConv", "Pad", "Constant"} {
		if hist[op] != 0 {
			t.Errorf("%d %s nodes after Portable()", hist[op], op)
		}
	}
	if hist["Conv"] != hist0["Conv"] {
		t.Errorf("%d Conv nodes after, %d before", hist["Conv"], hist0["Conv"])
	}

	m, err := graph.Export(g)
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.MarshalModel(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := onnx.ReadModel(data)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := graph.Import(m2, "", ops.Default())
	if err != nil {
		t.Fatalf("re-import: %v", err)
	}
	if fmt.Sprint(g2.OpHistogram()) != fmt.Sprint(hist) {
		t.Errorf("re-imported ops %v, want %v", g2.OpHistogram(), hist)
	}
	got := runRef(t, g2, map[string]*tensor.Tensor{g2.Inputs[0].Name: x})[g2.Outputs[0].Name]
	if err := tensor.AllClose(got, want, 0, tensor.PyTorchAtol); err != nil {
		t.Errorf("exported model vs PyTorch: %v", err)
	}
	t.Logf("exported %d bytes; max |exported - PyTorch| = %.3g", len(data), tensor.MaxAbsDiff(got, want))

	if *keepExport != "" {
		if err := onnx.WriteModelFile(filepath.Join(*keepExport, "finetune_tiny_export.onnx"), m); err != nil {
			t.Fatal(err)
		}
	}
}

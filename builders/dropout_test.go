package builders

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestBuildDropout checks where Build puts Dropout nodes: with DropRate > 0, one per dense layer
// in the training form, reading the layer's last conv and feeding the concatenations, with the
// ratio encoded for the opset (attribute before 12, a Constant input from 12) and no
// training_mode input; none in the inference form or with DropRate 0. The initializers stay the
// state_dict, and a runtime passes the nodes through: the logits are bit-identical to the model
// built without dropout.
func TestBuildDropout(t *testing.T) {
	bottleneck := tinyConfig() // BC: the dropout follows conv2
	plain := Config{Growth: 3, Blocks: []int{2, 1}, InitFeatures: 5, Compression: 1, Stem: StemImageNet, Classes: 4, InputSize: 40}
	tests := []struct {
		name      string
		cfg       Config
		drop      float64
		opset     int
		inference bool
		want      int // Dropout nodes
	}{
		{"BC opset 13", bottleneck, 0.2, 13, false, 4},
		{"BC opset 11 attribute", bottleneck, 0.2, 11, false, 4},
		{"BC opset 12", bottleneck, 0.35, 12, false, 4},
		{"BC opset 21", bottleneck, 0.5, 21, false, 4},
		{"plain ImageNet stem", plain, 0.1, 13, false, 3},
		{"plain opset 11", plain, 0.1, 11, false, 3},
		{"inference form", bottleneck, 0.2, 13, true, 0},
		{"drop rate 0", bottleneck, 0, 13, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DropRate = tc.drop
			opts := BuildOptions{Seed: 5, Opset: tc.opset, Inference: tc.inference}
			m, err := Build(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			checkWellFormed(t, m)
			base, err := Build(tc.cfg, opts) // DropRate 0
			if err != nil {
				t.Fatal(err)
			}
			if got := opCounts(m)["Dropout"]; got != tc.want {
				t.Fatalf("%d Dropout nodes, want %d", got, tc.want)
			}
			checkDropouts(t, m, float32(tc.drop), tc.opset)
			// Nothing else changes: the same nodes besides Dropout and its Constant ratio, and the
			// same initializers, so the state_dict round trip is unaffected.
			others := opCounts(m)
			delete(others, "Dropout")
			if tc.opset >= 12 {
				if others["Constant"] != tc.want {
					t.Errorf("%d Constant nodes, want one ratio per Dropout (%d)", others["Constant"], tc.want)
				}
				delete(others, "Constant")
			}
			if !maps.Equal(others, opCounts(base)) {
				t.Errorf("other ops %v, without dropout %v", others, opCounts(base))
			}
			if !maps.EqualFunc(initializers(t, m), initializers(t, base), func(a, b *tensor.Tensor) bool { return sameBits(a, b) }) {
				t.Error("the initializers differ from the model without dropout")
			}
			if tc.want == 0 {
				return
			}
			x := randomInput(9, 2, cfg.InputSize)
			for _, mode := range []exec.Options{{Reference: true}, {}} {
				got, want := runModel(t, importModel(t, m), x, mode), runModel(t, importModel(t, base), x, mode)
				if !sameBits(got, want) {
					t.Errorf("reference=%v: logits differ from the model without dropout (max |diff| %g)", mode.Reference, tensor.MaxAbsDiff(got, want))
				}
			}
		})
	}
}

// checkDropouts checks every Dropout node of m: it sits in a dense layer, reads that layer's last
// conv, is read by Concat nodes only, and has ratio r encoded as opset requires.
func checkDropouts(t *testing.T, m *onnxpb.ModelProto, r float32, opset int) {
	t.Helper()
	producer := map[string]*onnxpb.NodeProto{}
	readers := map[string][]string{}
	for _, n := range m.Graph.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
		for _, in := range n.Input {
			readers[in] = append(readers[in], n.GetOpType())
		}
	}
	for _, n := range m.Graph.Node {
		if n.GetOpType() != "Dropout" {
			continue
		}
		name := n.GetName()
		layer := strings.TrimSuffix(name, "/Dropout")
		if !strings.Contains(layer, "/denselayer") || layer == name {
			t.Errorf("Dropout %s is not named after a dense layer", name)
		}
		conv := producer[n.Input[0]]
		if conv.GetOpType() != "Conv" || !strings.HasPrefix(conv.GetName(), layer+"/conv") {
			t.Errorf("%s reads %s, want its layer's conv", name, conv.GetName())
		}
		if len(n.Output) != 1 || len(readers[n.Output[0]]) == 0 {
			t.Fatalf("%s: outputs %v read by %v", name, n.Output, readers[n.Output[0]])
		}
		for _, op := range readers[n.Output[0]] {
			if op != "Concat" {
				t.Errorf("%s is read by a %s, want only the block's concatenations", name, op)
			}
		}
		var got float32
		if opset < 12 {
			if len(n.Input) != 1 || len(n.Attribute) != 1 || n.Attribute[0].GetName() != "ratio" {
				t.Fatalf("opset %d: %s has inputs %v and attributes %v, want x and a ratio attribute", opset, name, n.Input, n.Attribute)
			}
			got = n.Attribute[0].GetF()
		} else {
			// Two inputs: no training_mode, so ONNX runtimes run the node in inference mode.
			if len(n.Input) != 2 || len(n.Attribute) != 0 {
				t.Fatalf("opset %d: %s has inputs %v and attributes %v, want x and a ratio input", opset, name, n.Input, n.Attribute)
			}
			c := producer[n.Input[1]]
			if c.GetOpType() != "Constant" || len(c.Attribute) != 1 || c.Attribute[0].GetName() != "value" {
				t.Fatalf("%s ratio comes from %v", name, c)
			}
			v, err := onnx.DecodeTensor(c.Attribute[0].GetT(), "")
			if err != nil {
				t.Fatal(err)
			}
			if v.DType != tensor.Float32 || len(v.Shape) != 0 {
				t.Fatalf("%s ratio is %s%v, want a float32 scalar", name, v.DType, v.Shape)
			}
			got = tensor.Data[float32](v)[0]
		}
		if math.Float32bits(got) != math.Float32bits(r) {
			t.Errorf("%s ratio %g, want %g", name, got, r)
		}
	}
}

// TestBuildDropoutNames pins the names and the order of the nodes around the first dense layer's
// Dropout, in the exporter's style: the layer's conv2, the ratio, the Dropout, the next layer's
// Concat.
func TestBuildDropoutNames(t *testing.T) {
	cfg := tinyConfig()
	cfg.DropRate = 0.2
	m, err := Build(cfg, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const layer = "/features/denseblock1/denselayer1"
	want := []string{layer + "/conv2/Conv", layer + "/Constant", layer + "/Dropout", "/features/denseblock1/denselayer2/Concat"}
	var got []string
	for _, n := range m.Graph.Node {
		if slices.Contains(want, n.GetName()) {
			got = append(got, n.GetName())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("nodes in order %v, want %v", got, want)
	}
}

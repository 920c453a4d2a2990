package exec

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestPyTorchParity runs the shared PyTorch 1.13 exports on their stored input and compares the
// logits with PyTorch's within tensor.PyTorchAtol, at the exported batch (2) and at other batch
// sizes built from the stored rows, since the batch axis is symbolic.
func TestPyTorchParity(t *testing.T) {
	const in0, out0 = "test_data_set_0/input_0.pb", "test_data_set_0/output_0.pb"
	cases := []struct {
		name                 string
		model, input, output string  // paths inside the case folder
		batches              [][]int // rows of the stored input to stack into one run
	}{
		{"densenet_tiny", "model.onnx", in0, out0, [][]int{{0, 1}, {1}, {0, 1, 0}, {1, 1, 0, 0, 1}}},
		{"densenet_bc100_k12_cifar", "model.onnx", in0, out0, [][]int{{0, 1}, {1}, {1, 0, 1}}},
		{"densenet_bc100_k12_cifar_train", "model.onnx", in0, out0, [][]int{{0, 1}, {1, 0, 0}}},
		{"densenet_bc190_k12_cifar_train", "model.onnx", in0, out0, [][]int{{0, 1}}},
		{"finetune_tiny", "model_before.onnx", "x.pb", "logits_before_eval.pb", [][]int{{0, 1, 2, 3, 4, 5, 6, 7}, {7, 0}}},
		{"finetune_tiny", "model_before_evalfold.onnx", "x.pb", "logits_before_eval.pb", [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}},
		{"finetune_tiny", "model_after.onnx", "x.pb", "logits_after_eval.pb", [][]int{{0, 1, 2, 3, 4, 5, 6, 7}, {3}}},
		{"densenet121", "model.onnx", in0, out0, [][]int{{0, 1}, {1}}},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+c.model, func(t *testing.T) {
			if c.name == "densenet121" && testing.Short() {
				t.Skip("densenet121 with reference kernels is slow; skipped in -short mode")
			}
			dir := testenv.Shared(t, filepath.Join("models", c.name))
			g, err := graph.Load(filepath.Join(dir, c.model))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := New(g, Options{Reference: true})
			if err != nil {
				t.Fatal(err)
			}
			planned, err := New(g, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer planned.Close()
			in, _, err := onnx.ReadTensorFile(filepath.Join(dir, c.input))
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := onnx.ReadTensorFile(filepath.Join(dir, c.output))
			if err != nil {
				t.Fatal(err)
			}
			for _, rows := range c.batches {
				exp := stackRows(want, rows)
				for _, mode := range []struct {
					name string
					s    *Session
				}{{"reference", ref}, {"planned", planned}} {
					x := stackRows(in, rows)
					if mode.s == planned {
						if _, err := planned.Plan([]tensor.Shape{x.Shape}); err != nil {
							t.Fatalf("batch %v: the model was not planned: %v", rows, err)
						}
					}
					got, err := mode.s.Run(context.Background(), []*tensor.Tensor{x})
					if err != nil {
						t.Fatalf("%s, batch %v: %v", mode.name, rows, err)
					}
					if err := tensor.AllClose(got[0], exp, 0, tensor.PyTorchAtol); err != nil {
						t.Errorf("%s, batch %v: %v", mode.name, rows, err)
					}
					t.Logf("%s, batch %d (rows %v): max |dnx - PyTorch| = %.3g", mode.name, len(rows), rows, tensor.MaxAbsDiff(got[0], exp))
				}
			}
		})
	}
}

// stackRows builds a float32 tensor whose batch rows are the given rows of t.
func stackRows(t *tensor.Tensor, rows []int) *tensor.Tensor {
	src := tensor.Data[float32](t)
	per := t.Len() / t.Shape[0]
	shape := append(tensor.Shape{len(rows)}, t.Shape[1:]...)
	out := make([]float32, 0, len(rows)*per)
	for _, r := range rows {
		out = append(out, src[r*per:(r+1)*per]...)
	}
	return tensor.FromSlice(shape, out)
}

package opset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestDenseNetTiny converts the shared opset-13 DenseNet to every opset from 11 to 21 and back,
// and requires dnx's outputs to stay bit-identical at each step.
func TestDenseNetTiny(t *testing.T) {
	dir := testenv.Shared(t, "models/densenet_tiny")
	m, err := onnx.ReadModelFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := onnx.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	torch, _, err := onnx.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	from := opsetOf(m)
	in := []*tensor.Tensor{x}
	want := run(t, m, in)
	// Sanity: the unconverted model matches PyTorch (the parity tests own the tolerance).
	if err := tensor.AllClose(want[0], torch, 0, 1e-4); err != nil {
		t.Fatalf("unconverted model vs PyTorch: %v", err)
	}
	for target := MinTarget; target <= MaxTarget; target++ {
		t.Run(strconv.Itoa(target), func(t *testing.T) {
			out, err := convert(t, m, target)
			if err != nil {
				t.Fatal(err)
			}
			// The model is written and read back, as the CLI does.
			data, err := onnx.MarshalModel(out)
			if err != nil {
				t.Fatal(err)
			}
			if out, err = onnx.ReadModel(data); err != nil {
				t.Fatal(err)
			}
			sameOutputs(t, "converted", run(t, out, in), want)
			back, err := convert(t, out, from)
			if err != nil {
				t.Fatalf("back to %d: %v", from, err)
			}
			sameOutputs(t, "converted back", run(t, back, in), want)
		})
	}
}

// TestDenseNetFamily converts every shared DenseNet export to opsets 11 and 21. PyTorch's
// DenseNet graphs use no operator whose form changed in 11..21, so only the header may change;
// the CIFAR models are also run (bit-identical outputs).
func TestDenseNetFamily(t *testing.T) {
	for _, name := range []string{"densenet121", "densenet_bc100_k12_cifar", "densenet_bc100_k12_cifar_train", "densenet_bc190_k12_cifar_train"} {
		t.Run(name, func(t *testing.T) {
			dir := testenv.Shared(t, filepath.Join("models", name))
			m, err := onnx.ReadModelFile(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			var in, want []*tensor.Tensor
			numeric := name == "densenet_bc100_k12_cifar" || name == "densenet_bc100_k12_cifar_train"
			if numeric {
				x, _, err := onnx.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
				if err != nil {
					t.Fatal(err)
				}
				in = []*tensor.Tensor{x}
				want = run(t, m, in)
			}
			for _, target := range []int{MinTarget, MaxTarget} {
				out, err := convert(t, m, target)
				if err != nil {
					t.Fatalf("to %d: %v", target, err)
				}
				if !proto.Equal(out.Graph, m.Graph) {
					t.Errorf("to %d: the graph changed", target)
				}
				if numeric {
					sameOutputs(t, fmt.Sprintf("to %d", target), run(t, out, in), want)
				}
			}
		})
	}
}

// nodeSample is the sample of ONNX node tests (opsets 11 to 25) converted to every target.
var nodeSample = []string{
	"test_squeeze", "test_squeeze_negative_axes",
	"test_unsqueeze_axis_0", "test_unsqueeze_negative_axes", "test_unsqueeze_unsorted_axes", "test_unsqueeze_three_axes",
	"test_reduce_mean_default_axes_keepdims_example", "test_reduce_mean_default_axes_keepdims_random",
	"test_reduce_mean_do_not_keepdims_example", "test_reduce_mean_keepdims_random",
	"test_reduce_mean_negative_axes_keepdims_example", "test_reduce_mean_negative_axes_keepdims_random",
	"test_softmax_axis_0", "test_softmax_axis_1", "test_softmax_axis_2", "test_softmax_default_axis",
	"test_softmax_negative_axis", "test_softmax_example", "test_softmax_large_number",
	"test_logsoftmax_axis_0", "test_logsoftmax_axis_1", "test_logsoftmax_default_axis", "test_logsoftmax_negative_axis",
	"test_constant_pad", "test_constant_pad_axes", "test_constant_pad_negative_axes", "test_edge_pad", "test_reflect_pad", "test_wrap_pad",
	"test_reshape_allowzero_reordered", "test_reshape_reordered_all_dims", "test_reshape_zero_dim", "test_reshape_negative_dim",
	"test_shape", "test_shape_start_1", "test_shape_end_1", "test_shape_start_1_end_negative_1", "test_shape_clip_start",
	"test_shape_clip_end", "test_shape_start_greater_than_end", "test_shape_start_negative_1",
	"test_dropout_default", "test_dropout_default_mask", "test_dropout_default_mask_ratio", "test_dropout_default_ratio",
	"test_dropout_default_old", "test_dropout_random_old", "test_training_dropout_zero_ratio", "test_training_dropout_zero_ratio_mask",
	"test_batchnorm_epsilon", "test_batchnorm_example", "test_batchnorm_epsilon_training_mode", "test_batchnorm_example_training_mode",
	"test_cast_FLOAT_to_FLOAT16", "test_cast_FLOAT_to_DOUBLE", "test_cast_FLOAT_to_BFLOAT16", "test_cast_BFLOAT16_to_FLOAT",
	"test_averagepool_2d_dilations", "test_averagepool_2d_ceil", "test_averagepool_2d_ceil_last_window_starts_on_pad",
	"test_averagepool_3d_dilations_small", "test_maxpool_2d_uint8", "test_maxpool_2d_dilations", "test_maxpool_with_argmax_2d_precomputed_pads",
	"test_clip_default_int8_min", "test_clip_splitbounds", "test_add_uint8", "test_div_int32_trunc", "test_mul_bcast",
	"test_constant", "test_flatten_axis1", "test_transpose_default", "test_identity", "test_gather_0", "test_concat_3d_axis_negative_2",
	"test_gemm_default_scalar_bias", "test_matmul_2d", "test_conv_with_strides_padding", "test_globalaveragepool",
	"test_relu", "test_leakyrelu", "test_sigmoid", "test_nllloss_NC", "test_sce_mean_3d", "test_sce_mean_3d_expanded",
}

// nodeRefusals lists the conversions of the frozen sample (auxiliary inputs made constants) that
// must be refused: test -> (first opset that accepts, message fragment). Every other conversion
// must succeed.
var nodeRefusals = map[string]struct {
	okFrom int
	reason string
}{
	"test_nllloss_NC":                       {12, "does not exist before opset 12"},
	"test_sce_mean_3d":                      {12, "does not exist before opset 12"},
	"test_sce_mean_3d_expanded":             {12, "does not exist before opset 12"},
	"test_cast_FLOAT_to_BFLOAT16":           {13, "bfloat16"},
	"test_cast_BFLOAT16_to_FLOAT":           {13, "bfloat16"},
	"test_maxpool_2d_uint8":                 {12, "uint8, which MaxPool accepts only from opset 12"},
	"test_clip_default_int8_min":            {12, "int8, which Clip accepts only from opset 12"},
	"test_add_uint8":                        {14, "uint8, which Add accepts only from opset 14"},
	"test_averagepool_2d_dilations":         {19, "AveragePool has dilations only from opset 19"},
	"test_averagepool_3d_dilations_small":   {19, "AveragePool has dilations only from opset 19"},
	"test_wrap_pad":                         {19, `mode "wrap" exists only from opset 19`},
	"test_reshape_allowzero_reordered":      {14, "holds a 0"},
	"test_training_dropout_zero_ratio":      {12, "training_mode is true"},
	"test_training_dropout_zero_ratio_mask": {12, "training_mode is true"},
}

// TestONNXNodeTests converts a sample of ONNX's node tests to every opset from 11 to 21 in two
// forms: as stored, where auxiliary inputs (axes, pads, ratio, ...) are fed at run time and so
// must be refused wherever they would have to become attributes; and frozen, with every input
// but the first made an initializer from the test data, which must convert everywhere except the
// listed refusals. Converted models must reproduce the expected outputs (ONNX's tolerances) and
// dnx's own outputs on the unconverted model (exactly).
func TestONNXNodeTests(t *testing.T) {
	root := testenv.Shared(t, "onnx-tests/node")
	var converted, refused int
	for _, name := range nodeSample {
		dir := filepath.Join(root, name)
		m, err := onnx.ReadModelFile(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		inputs := readNumbered(t, filepath.Join(dir, "test_data_set_0"), "input")
		want := readNumbered(t, filepath.Join(dir, "test_data_set_0"), "output")
		frozen, frozenIn := freeze(t, m, inputs)
		for target := MinTarget; target <= MaxTarget; target++ {
			t.Run(name+"/"+strconv.Itoa(target), func(t *testing.T) {
				// As stored: success, or a clear refusal.
				if out, err := convert(t, m, target); err == nil {
					checkNodeTest(t, m, out, inputs, want)
					converted++
				} else if !errors.Is(err, ErrUnconvertible) {
					t.Fatalf("as stored: %v", err)
				} else {
					refused++
					t.Logf("as stored: %v", err)
				}
				// Frozen.
				out, err := convert(t, frozen, target)
				r, listed := nodeRefusals[name]
				if listed && target < r.okFrom {
					wantRefusal(t, err, r.reason)
					refused++
					return
				}
				if err != nil {
					t.Fatalf("frozen: %v", err)
				}
				checkNodeTest(t, frozen, out, frozenIn, want)
				dump(t, fmt.Sprintf("%s_to_%d", name, target), out, frozenIn, want)
				converted++
			})
		}
	}
	t.Logf("%d tests x %d targets x 2 forms: %d converted and passed, %d refused", len(nodeSample), MaxTarget-MinTarget+1, converted, refused)
}

// checkNodeTest runs the converted model: its outputs must match the test's expected outputs
// within ONNX's tolerances and dnx's outputs for the original model exactly.
func checkNodeTest(t *testing.T, orig, out *onnxpb.ModelProto, inputs, want []*tensor.Tensor) {
	t.Helper()
	got := run(t, out, inputs)
	if len(got) != len(want) {
		t.Fatalf("%d outputs, want %d", len(got), len(want))
	}
	for k := range want {
		if err := tensor.AllClose(got[k], want[k], tensor.ONNXRtol, tensor.ONNXAtol); err != nil {
			t.Errorf("output %d vs expected: %v\n%s", k, err, describe(out))
		}
	}
	sameOutputs(t, "converted vs unconverted", got, run(t, orig, inputs))
}

// freeze returns a copy of m whose graph inputs after the first are initializers holding the
// test's values, and the inputs still to feed.
func freeze(t *testing.T, m *onnxpb.ModelProto, inputs []*tensor.Tensor) (*onnxpb.ModelProto, []*tensor.Tensor) {
	t.Helper()
	f := proto.Clone(m).(*onnxpb.ModelProto)
	g := f.Graph
	if len(g.Input) != len(inputs) {
		t.Fatalf("model has %d inputs, test data %d", len(g.Input), len(inputs))
	}
	for k := 1; k < len(inputs); k++ {
		tp, err := onnx.EncodeTensor(inputs[k], g.Input[k].GetName())
		if err != nil {
			t.Fatal(err)
		}
		g.Initializer = append(g.Initializer, tp)
	}
	if len(inputs) == 0 {
		return f, nil
	}
	g.Input = g.Input[:1]
	return f, inputs[:1]
}

// readNumbered reads prefix_0.pb, prefix_1.pb, ... from dir.
func readNumbered(t *testing.T, dir, prefix string) []*tensor.Tensor {
	t.Helper()
	var out []*tensor.Tensor
	for k := 0; ; k++ {
		p := filepath.Join(dir, prefix+"_"+strconv.Itoa(k)+".pb")
		if _, err := os.Stat(p); err != nil {
			return out
		}
		x, _, err := onnx.ReadTensorFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, x)
	}
}

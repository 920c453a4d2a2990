package plan

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/device/cpudev"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/passes"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// oneNode imports the graph x -> op(x, w) -> y, where x is a float32 input of shape xs and w
// (when wShape is not nil) a constant of ones, or a second graph input when wInput is set.
func oneNode(t *testing.T, op string, xs, wShape []int, wInput bool, attrs ...*onnxpb.AttributeProto) *graph.Graph {
	t.Helper()
	g := &onnxpb.GraphProto{Name: proto.String(op), Input: []*onnxpb.ValueInfoProto{floatInfo("x", xs)}}
	in := []string{"x"}
	switch {
	case wShape != nil && wInput:
		g.Input = append(g.Input, floatInfo("w", wShape))
		in = append(in, "w")
	case wShape != nil:
		w := tensor.New(tensor.Float32, tensor.Shape(wShape))
		for i := range tensor.Data[float32](w) {
			tensor.Data[float32](w)[i] = 1
		}
		tp, err := onnx.EncodeTensor(w, "w")
		if err != nil {
			t.Fatal(err)
		}
		g.Initializer = append(g.Initializer, tp)
		in = append(in, "w")
	}
	return importNode(t, g, op, in, attrs)
}

// floatInfo declares a float32 graph input of static shape dims.
func floatInfo(name string, dims []int) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: shape}}}}
}

// importNode completes g (its inputs and initializers set) with one node "n" of op reading in
// and writing the graph output "y", and imports it at opset 13.
func importNode(t *testing.T, g *onnxpb.GraphProto, op string, in []string, attrs []*onnxpb.AttributeProto) *graph.Graph {
	t.Helper()
	g.Output = []*onnxpb.ValueInfoProto{{Name: proto.String("y")}}
	g.Node = []*onnxpb.NodeProto{{Name: proto.String("n"), OpType: proto.String(op), Input: in, Output: []string{"y"}, Attribute: attrs}}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
	gr, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	return gr
}

func ints(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// TestStepsKernel checks that Steps names the kernel each node actually gets, the level its code
// runs at, and, for a reference step, why it is not fast.
func TestStepsKernel(t *testing.T) {
	level := isa.Selected().Level.Code().String() // GEMM, pooling and 3x3 depthwise rows run the selected level
	generic := isa.Generic.String()
	pad1 := ints("pads", 1, 1, 1, 1)
	cases := []struct {
		name       string
		g          func(t *testing.T) *graph.Graph
		kernel     string
		isa        string
		why        string // a substring of Why (reference steps)
		outShape   tensor.Shape
		extraShape []tensor.Shape // shapes of further graph inputs
	}{
		{"1x1 conv", func(t *testing.T) *graph.Graph {
			return oneNode(t, "Conv", []int{1, 8, 8, 8}, []int{4, 8, 1, 1}, false)
		},
			"gemm-1x1", level, "", tensor.Shape{1, 4, 8, 8}, nil},
		{"3x3 conv on 2 channels", func(t *testing.T) *graph.Graph {
			return oneNode(t, "Conv", []int{1, 2, 16, 16}, []int{4, 2, 3, 3}, false, pad1)
		}, "gemm-direct", level, "", tensor.Shape{1, 4, 16, 16}, nil},
		{"3x3 conv, 16 tiles of 4x4", func(t *testing.T) *graph.Graph {
			return oneNode(t, "Conv", []int{1, 8, 16, 16}, []int{8, 8, 3, 3}, false, pad1)
		}, "winograd-f2x2", level, "", tensor.Shape{1, 8, 16, 16}, nil},
		{"3x3 conv, 64 tiles of 4x4", func(t *testing.T) *graph.Graph {
			return oneNode(t, "Conv", []int{1, 16, 32, 32}, []int{16, 16, 3, 3}, false, pad1)
		}, "winograd-f4x4", level, "", tensor.Shape{1, 16, 32, 32}, nil},
		{"strided conv", func(t *testing.T) *graph.Graph {
			return oneNode(t, "Conv", []int{1, 8, 16, 16}, []int{4, 8, 3, 3}, false, pad1, ints("strides", 2, 2))
		}, "implicit-gemm", level, "", tensor.Shape{1, 4, 8, 8}, nil},
		{"depthwise conv", func(t *testing.T) *graph.Graph {
			return oneNode(t, "Conv", []int{1, 8, 16, 16}, []int{8, 1, 3, 3}, false, pad1, intAttr("group", 8))
		}, "depthwise", level, "", tensor.Shape{1, 8, 16, 16}, nil}, // 3x3 rows run the selected level
		{"conv of computed weights", func(t *testing.T) *graph.Graph {
			return oneNode(t, "Conv", []int{1, 8, 8, 8}, []int{4, 8, 1, 1}, true)
		}, KernelReference, "", "weights are not a constant", tensor.Shape{1, 4, 8, 8}, []tensor.Shape{{4, 8, 1, 1}}},
		{"max pool", func(t *testing.T) *graph.Graph {
			return oneNode(t, "MaxPool", []int{1, 4, 8, 8}, nil, false, ints("kernel_shape", 3, 3), ints("strides", 2, 2), pad1)
		}, "maxpool", level, "", tensor.Shape{1, 4, 4, 4}, nil},
		{"1-D max pool", func(t *testing.T) *graph.Graph {
			return oneNode(t, "MaxPool", []int{1, 4, 8}, nil, false, ints("kernel_shape", 2))
		}, KernelReference, "", "3-D", tensor.Shape{1, 4, 7}, nil},
		{"2x2 average pool", func(t *testing.T) *graph.Graph {
			return oneNode(t, "AveragePool", []int{1, 4, 8, 8}, nil, false, ints("kernel_shape", 2, 2), ints("strides", 2, 2))
		}, "avgpool-2x2", level, "", tensor.Shape{1, 4, 4, 4}, nil},
		{"3x3 average pool", func(t *testing.T) *graph.Graph {
			return oneNode(t, "AveragePool", []int{1, 4, 8, 8}, nil, false, ints("kernel_shape", 3, 3))
		}, "avgpool", generic, "", tensor.Shape{1, 4, 6, 6}, nil},
		{"relu", func(t *testing.T) *graph.Graph { return oneNode(t, "Relu", []int{2, 3}, nil, false) },
			"relu", generic, "", tensor.Shape{2, 3}, nil},
		{"flatten", func(t *testing.T) *graph.Graph { return oneNode(t, "Flatten", []int{2, 3, 4}, nil, false) },
			KernelAlias, "", "", tensor.Shape{2, 12}, nil},
		{"operator without a fast kernel", func(t *testing.T) *graph.Graph { return oneNode(t, "Softmax", []int{2, 3}, nil, false) },
			KernelReference, "", "no fast kernel for Softmax", tensor.Shape{2, 3}, nil},
	}
	dev := cpudev.New(cpudev.Config{Threads: 1})
	defer dev.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g(t)
			shapes := []tensor.Shape{shapeOf(g.Inputs[0])}
			shapes = append(shapes, tc.extraShape...)
			p, err := Compile(g, shapes, dev, membudget.Budget{})
			if err != nil {
				t.Fatal(err)
			}
			steps := p.Steps()
			if len(steps) != 1 {
				t.Fatalf("%d steps, want 1: %+v", len(steps), steps)
			}
			s := steps[0]
			if s.Node != "n" || s.Kernel != tc.kernel || s.ISA != tc.isa || s.Fast() != (tc.kernel != KernelReference) {
				t.Errorf("got node %q kernel %q isa %q fast %v, want node \"n\" kernel %q isa %q", s.Node, s.Kernel, s.ISA, s.Fast(), tc.kernel, tc.isa)
			}
			if (tc.why == "") != (s.Why == "") || !strings.Contains(s.Why, tc.why) {
				t.Errorf("why %q, want one containing %q", s.Why, tc.why)
			}
			if len(s.Outputs) != 1 || s.Outputs[0].Name != "y" || !s.Outputs[0].Shape.Equal(tc.outShape) ||
				!s.Outputs[0].InArena || s.Outputs[0].Bytes != 4*int64(tc.outShape.Size()) {
				t.Errorf("outputs %+v, want y %v in the arena, %d bytes", s.Outputs, tc.outShape, 4*tc.outShape.Size())
			}
		})
	}
}

// shapeOf returns a graph input's declared (static) shape.
func shapeOf(v *graph.Value) tensor.Shape {
	s := make(tensor.Shape, len(v.Type.Shape))
	for i, d := range v.Type.Shape {
		s[i] = int(d.Value)
	}
	return s
}

// TestStepsDenseNet describes the plan of a built DenseNet after the inference passes: one step
// per node, every concatenation in place, every pre-activation BN-ReLU fused into the convolution
// or pool that reads it, nothing on the reference path, and every output inside the arena.
func TestStepsDenseNet(t *testing.T) {
	preset, err := models.Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	m, err := builders.Build(preset.Config, builders.BuildOptions{Seed: 1, Inference: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Inference().Run(g); err != nil {
		t.Fatal(err)
	}
	dev := cpudev.New(cpudev.Config{Threads: 2})
	defer dev.Close()
	for _, batch := range []int{1, 3} {
		t.Run(fmt.Sprint("batch ", batch), func(t *testing.T) {
			in := shapeOf(g.Inputs[0])
			in[0] = batch
			p, err := Compile(g, []tensor.Shape{in}, dev, membudget.Budget{})
			if err != nil {
				t.Fatal(err)
			}
			steps, arena := p.Steps(), p.Stats().ArenaBytes
			if len(steps) != len(g.Nodes) {
				t.Fatalf("%d steps for %d nodes", len(steps), len(g.Nodes))
			}
			kernels := map[string]int{}
			for i, s := range steps {
				kernels[s.Kernel]++
				if s.Node != g.Nodes[i].Name {
					t.Errorf("step %d is node %q, want %q", i, s.Node, g.Nodes[i].Name)
				}
				if !s.Fast() {
					t.Errorf("step %d (%s %s) runs the reference kernel: %s", i, s.Op, s.Node, s.Why)
				}
				if s.Op == "Concat" && s.Kernel != KernelConcatInPlace {
					t.Errorf("step %d (%s) is %q, want %q", i, s.Node, s.Kernel, KernelConcatInPlace)
				}
				if strings.HasSuffix(s.Op, "FusedConv") && s.Prologue != "bn-relu" && s.Epilogue != "relu" {
					t.Errorf("step %d (%s) fuses nothing: prologue %q epilogue %q", i, s.Node, s.Prologue, s.Epilogue)
				}
				for _, o := range s.Outputs {
					if o.InArena && (o.Offset < 0 || o.Bytes <= 0 || o.Offset+o.Bytes > arena) && o.BatchStride == 0 {
						t.Errorf("step %d output %q at [%d, %d) outside the %d-byte arena", i, o.Name, o.Offset, o.Offset+o.Bytes, arena)
					}
					if o.BatchStride != 0 && (batch == 1 || o.Offset+int64(batch-1)*o.BatchStride+o.Bytes/int64(batch) > arena) {
						t.Errorf("step %d output %q: batch stride %d at offset %d in a %d-byte arena", i, o.Name, o.BatchStride, o.Offset, arena)
					}
				}
			}
			// DenseNet-BC: each dense layer's bottleneck is 1x1 with the concatenation's BN-ReLU
			// as its prologue; the transitions' pools come before their 1x1 convolutions.
			for _, k := range []string{"gemm-1x1", KernelConcatInPlace, "avgpool-2x2"} {
				if kernels[k] == 0 {
					t.Errorf("no %q step; kernels: %v", k, kernels)
				}
			}
		})
	}
}

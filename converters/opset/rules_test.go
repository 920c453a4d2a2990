package opset

import (
	"fmt"
	"testing"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ruleCase is one conversion: a model built at from, converted to to, whose converted form
// check inspects. The test then runs both models on the same random inputs and requires
// bit-identical outputs, converts the result back to from, and requires that again.
type ruleCase struct {
	name     string
	from, to int
	build    func(t *testing.T, opset int) *onnxpb.ModelProto
	check    func(t *testing.T, m *onnxpb.ModelProto)
	noReturn bool // the converted model does not convert back (the test then skips that step)
	// atol is how far outputs may be from the source model's (0: bit-identical), for rewrites
	// into operators that round differently (HardSwish as HardSigmoid and Mul).
	atol float64
}

func f32(dims ...int64) (tensor.DType, []int64) { return tensor.Float32, dims }

// Models used by several cases.

func squeezeModel(op string, axesAsInput bool, axes []int64, dims ...int64) func(*testing.T, int) *onnxpb.ModelProto {
	return func(t *testing.T, opset int) *onnxpb.ModelProto {
		b := newModel(t, opset).input("x", tensor.Float32, dims...).output("y")
		switch {
		case axes == nil:
			b.node(op, ins("x"), ins("y"))
		case axesAsInput:
			b.ints("axes", axes...).node(op, ins("x", "axes"), ins("y"))
		default:
			b.node(op, ins("x"), ins("y"), intsAttr("axes", axes))
		}
		return b.build()
	}
}

func softmaxModel(op string, axis *int64, dims ...int64) func(*testing.T, int) *onnxpb.ModelProto {
	return func(t *testing.T, opset int) *onnxpb.ModelProto {
		var attrs []*onnxpb.AttributeProto
		if axis != nil {
			attrs = append(attrs, intAttr("axis", *axis))
		}
		return newModel(t, opset).input("x", tensor.Float32, dims...).output("y").
			node(op, ins("x"), ins("y"), attrs...).build()
	}
}

func i64(v int64) *int64 { return &v }

// hasAttrInts checks that node op carries attribute name with the given ints.
func hasAttrInts(t *testing.T, m *onnxpb.ModelProto, op, name string, want ...int64) {
	t.Helper()
	a := getAttr(findNode(t, m, op), name)
	if a == nil {
		t.Fatalf("%s has no %s attribute: %s", op, name, describe(m))
	}
	if !equalInts(a.GetInts(), want) {
		t.Errorf("%s %s = %v, want %v", op, name, a.GetInts(), want)
	}
}

func hasAttrInt(t *testing.T, m *onnxpb.ModelProto, op, name string, want int64) {
	t.Helper()
	a := getAttr(findNode(t, m, op), name)
	if a == nil {
		t.Fatalf("%s has no %s attribute: %s", op, name, describe(m))
	}
	if a.GetI() != want {
		t.Errorf("%s %s = %d, want %d", op, name, a.GetI(), want)
	}
}

func noAttr(t *testing.T, m *onnxpb.ModelProto, op string, names ...string) {
	t.Helper()
	n := findNode(t, m, op)
	for _, name := range names {
		if getAttr(n, name) != nil {
			t.Errorf("%s still has attribute %s", op, name)
		}
	}
}

// inputIsInts checks that input i of node op is an initializer holding want.
func inputIsInts(t *testing.T, m *onnxpb.ModelProto, op string, i int, want ...int64) {
	t.Helper()
	n := findNode(t, m, op)
	if i >= len(n.Input) || n.Input[i] == "" {
		t.Fatalf("%s has no input %d: %s", op, i, describe(m))
	}
	for _, tp := range m.GetGraph().GetInitializer() {
		if tp.GetName() == n.Input[i] {
			v, err := onnx.DecodeTensor(tp, "")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := v.Int64s(); v.DType != tensor.Int64 || !equalInts(got, want) {
				t.Errorf("%s input %d = %v (%s), want int64 %v", op, i, got, v.DType, want)
			}
			return
		}
	}
	t.Errorf("%s input %d %q is not an initializer", op, i, n.Input[i])
}

func numInputs(t *testing.T, m *onnxpb.ModelProto, op string, want int) {
	t.Helper()
	if got := len(findNode(t, m, op).Input); got != want {
		t.Errorf("%s has %d inputs, want %d: %s", op, got, want, describe(m))
	}
}

func noInits(t *testing.T, m *onnxpb.ModelProto) {
	t.Helper()
	if n := len(m.GetGraph().GetInitializer()); n != 0 {
		t.Errorf("%d initializers left, want none: %v", n, initNames(m))
	}
}

func wantOps(want string) func(*testing.T, *onnxpb.ModelProto) {
	return func(t *testing.T, m *onnxpb.ModelProto) {
		t.Helper()
		if got := nodeOps(m); got != want {
			t.Errorf("ops %s, want %s", got, want)
		}
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func all(checks ...func(*testing.T, *onnxpb.ModelProto)) func(*testing.T, *onnxpb.ModelProto) {
	return func(t *testing.T, m *onnxpb.ModelProto) {
		t.Helper()
		for _, c := range checks {
			c(t, m)
		}
	}
}

func ruleCases() []ruleCase {
	return []ruleCase{
		// Squeeze / Unsqueeze: axes attribute <-> input at 13.
		{name: "Squeeze/attr->input", from: 11, to: 13, build: squeezeModel("Squeeze", false, []int64{1, -1}, 2, 1, 3, 1),
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "Squeeze", "axes")
				inputIsInts(t, m, "Squeeze", 1, 1, -1)
			}},
		{name: "Squeeze/input->attr", from: 13, to: 11, build: squeezeModel("Squeeze", true, []int64{1, 3}, 2, 1, 3, 1),
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				hasAttrInts(t, m, "Squeeze", "axes", 1, 3)
				numInputs(t, m, "Squeeze", 1)
				noInits(t, m)
			}},
		{name: "Squeeze/no-axes-down", from: 21, to: 12, build: squeezeModel("Squeeze", false, nil, 1, 3, 1),
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "Squeeze", "axes")
				numInputs(t, m, "Squeeze", 1)
			}},
		{name: "Squeeze/no-axes-up", from: 11, to: 21, build: squeezeModel("Squeeze", false, nil, 1, 3, 1),
			check: func(t *testing.T, m *onnxpb.ModelProto) { numInputs(t, m, "Squeeze", 1) }},
		{name: "Unsqueeze/attr->input", from: 12, to: 21, build: squeezeModel("Unsqueeze", false, []int64{0, -1}, 2, 3),
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "Unsqueeze", "axes")
				inputIsInts(t, m, "Unsqueeze", 1, 0, -1)
			}},
		{name: "Unsqueeze/input->attr", from: 17, to: 11, build: squeezeModel("Unsqueeze", true, []int64{3, 0}, 2, 3),
			check: func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInts(t, m, "Unsqueeze", "axes", 3, 0); noInits(t, m) }},
		{name: "Unsqueeze/constant-node-axes", from: 13, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).output("y").
					node("Constant", nil, ins("axes"), intsAttr("value_ints", []int64{1})).
					node("Unsqueeze", ins("x", "axes"), ins("y")).build()
			},
			check: all(wantOps("Unsqueeze"), func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInts(t, m, "Unsqueeze", "axes", 1) })},
		{name: "Squeeze/shared-axes", from: 13, to: 12,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				// The axes initializer also feeds a Reshape-free consumer: it must stay.
				return newModel(t, opset).input("x", tensor.Float32, 2, 1, 3).output("y", "z").ints("axes", 1).
					node("Squeeze", ins("x", "axes"), ins("y")).
					node("Identity", ins("axes"), ins("z")).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				hasAttrInts(t, m, "Squeeze", "axes", 1)
				if !initNames(m)["axes"] {
					t.Errorf("axes initializer was removed although Identity still uses it")
				}
			}},

		// ReduceMean: axes attribute <-> input at 18, noop_with_empty_axes.
		{name: "ReduceMean/attr->input", from: 13, to: 18,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3, 4).output("y").
					node("ReduceMean", ins("x"), ins("y"), intsAttr("axes", []int64{1, -1}), intAttr("keepdims", 0)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "ReduceMean", "axes")
				inputIsInts(t, m, "ReduceMean", 1, 1, -1)
				hasAttrInt(t, m, "ReduceMean", "keepdims", 0)
			}},
		{name: "ReduceMean/input->attr", from: 18, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3, 4).output("y").ints("axes", 2).
					node("ReduceMean", ins("x", "axes"), ins("y")).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInts(t, m, "ReduceMean", "axes", 2); noInits(t, m) }},
		{name: "ReduceMean/all-axes", from: 21, to: 13,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).output("y").
					node("ReduceMean", ins("x"), ins("y")).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "ReduceMean", "axes")
				numInputs(t, m, "ReduceMean", 1)
			}},
		{name: "ReduceMean/noop->Identity", from: 18, to: 17, noReturn: true,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).output("y").
					node("ReduceMean", ins("x"), ins("y"), intAttr("noop_with_empty_axes", 1)).build()
			},
			check: wantOps("Identity")},

		// Split: split attribute <-> input at 13, num_outputs at 18.
		{name: "Split/attr->input", from: 11, to: 13,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 5).output("a", "b").
					node("Split", ins("x"), ins("a", "b"), intAttr("axis", 1), intsAttr("split", []int64{2, 3})).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "Split", "split")
				inputIsInts(t, m, "Split", 1, 2, 3)
			}},
		{name: "Split/input->attr", from: 13, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 4, 2).output("a", "b").ints("s", 1, 3).
					node("Split", ins("x", "s"), ins("a", "b")).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInts(t, m, "Split", "split", 1, 3); noInits(t, m) }},
		{name: "Split/equal->num_outputs", from: 11, to: 18,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 6).output("a", "b", "c").
					node("Split", ins("x"), ins("a", "b", "c"), intAttr("axis", -1)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				hasAttrInt(t, m, "Split", "num_outputs", 3)
				numInputs(t, m, "Split", 1)
			}},
		{name: "Split/uneven-num_outputs->input", from: 18, to: 13, noReturn: true,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 5, 2).output("a", "b").
					node("Split", ins("x"), ins("a", "b"), intAttr("num_outputs", 2)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "Split", "num_outputs")
				inputIsInts(t, m, "Split", 1, 3, 2)
			}},
		{name: "Split/uneven-num_outputs->attr", from: 21, to: 12, noReturn: true,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 7).output("a", "b", "c").
					node("Split", ins("x"), ins("a", "b", "c"), intAttr("axis", 1), intAttr("num_outputs", 3)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInts(t, m, "Split", "split", 3, 3, 1) }},
		{name: "Split/even-num_outputs-down", from: 18, to: 17,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 6).output("a", "b").
					node("Split", ins("x"), ins("a", "b"), intAttr("num_outputs", 2)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "Split", "num_outputs", "split")
				numInputs(t, m, "Split", 1)
			}},

		// Softmax / LogSoftmax: 2-D coercion <-> single axis at 13.
		{name: "Softmax/up-last-axis", from: 11, to: 13, build: softmaxModel("Softmax", i64(2), 2, 3, 4),
			check: all(wantOps("Softmax"), func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInt(t, m, "Softmax", "axis", 2) })},
		{name: "Softmax/up-default-axis-rank2", from: 11, to: 13, build: softmaxModel("Softmax", nil, 3, 5),
			check: all(wantOps("Softmax"), func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInt(t, m, "Softmax", "axis", 1) })},
		{name: "Softmax/up-trailing-ones", from: 11, to: 21, build: softmaxModel("Softmax", i64(1), 2, 3, 1, 1),
			check: all(wantOps("Softmax"), func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInt(t, m, "Softmax", "axis", 1) })},
		{name: "Softmax/up-wrapped", from: 11, to: 13, build: softmaxModel("Softmax", i64(1), 2, 3, 4),
			check: wantOps("Flatten,Shape,Softmax,Reshape")},
		{name: "LogSoftmax/up-wrapped-symbolic", from: 12, to: 18, build: softmaxModel("LogSoftmax", i64(0), -1, 3, 4),
			check: wantOps("Flatten,Shape,LogSoftmax,Reshape")},
		{name: "Softmax/up-axis-minus-one", from: 11, to: 16, build: softmaxModel("Softmax", i64(-1), -1, 3, 4),
			check: all(wantOps("Softmax"), func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInt(t, m, "Softmax", "axis", -1) })},
		{name: "Softmax/down-default-axis", from: 13, to: 11, build: softmaxModel("Softmax", nil, 2, 3, 4),
			check: all(wantOps("Softmax"), func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInt(t, m, "Softmax", "axis", -1) })},
		{name: "Softmax/down-trailing-ones", from: 13, to: 12, build: softmaxModel("Softmax", i64(1), 2, 3, 1),
			check: all(wantOps("Softmax"), func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInt(t, m, "Softmax", "axis", 1) })},
		{name: "LogSoftmax/down-wrapped", from: 13, to: 11, build: softmaxModel("LogSoftmax", i64(1), 2, 3, 4),
			check: all(wantOps("Transpose,LogSoftmax,Transpose"), func(t *testing.T, m *onnxpb.ModelProto) {
				hasAttrInts(t, m, "Transpose", "perm", 0, 2, 1)
			})},
		{name: "Softmax/down-wrapped-symbolic", from: 21, to: 12, build: softmaxModel("Softmax", i64(-3), -1, 3, 4, 2),
			check: func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInts(t, m, "Transpose", "perm", 0, 2, 3, 1) }},

		// Dropout: ratio attribute <-> input at 12.
		{name: "Dropout/ratio-up", from: 11, to: 12,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).output("y", "mask").
					node("Dropout", ins("x"), ins("y", "mask"), floatAttr("ratio", 0.25)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "Dropout", "ratio")
				numInputs(t, m, "Dropout", 2)
			}},
		{name: "Dropout/ratio-down", from: 13, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).output("y").
					init("r", tensor.Scalar(float32(0.3))).init("train", tensor.Scalar(false)).
					node("Dropout", ins("x", "r", "train"), ins("y"), intAttr("seed", 3)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				numInputs(t, m, "Dropout", 1)
				noAttr(t, m, "Dropout", "seed")
				if a := getAttr(findNode(t, m, "Dropout"), "ratio"); a == nil || a.GetF() != 0.3 {
					t.Errorf("ratio attribute %v, want 0.3", a)
				}
				noInits(t, m)
			}},

		{name: "Dropout/mask-down", from: 22, to: 11, noReturn: true,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).output("y", "mask").
					node("Dropout", ins("x"), ins("y", "mask")).build()
			},
			check: wantOps("Dropout,Shape,ConstantOfShape")},

		// BatchNormalization: training_mode at 14.
		{name: "BatchNormalization/training-up", from: 13, to: 14, build: bnModel(3, false),
			check: func(t *testing.T, m *onnxpb.ModelProto) { hasAttrInt(t, m, "BatchNormalization", "training_mode", 1) }},
		{name: "BatchNormalization/saved-stats-dropped", from: 12, to: 15, build: bnModel(5, false), noReturn: true,
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				if n := len(findNode(t, m, "BatchNormalization").Output); n != 3 {
					t.Errorf("%d outputs, want 3", n)
				}
			}},
		{name: "BatchNormalization/training-down-adds-outputs", from: 15, to: 13, build: bnModel(1, true), noReturn: true,
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				n := findNode(t, m, "BatchNormalization")
				noAttr(t, m, "BatchNormalization", "training_mode")
				if len(n.Output) != 5 || n.Output[1] == "" || n.Output[4] == "" {
					t.Errorf("outputs %q, want Y and four named statistics", n.Output)
				}
			}},
		{name: "BatchNormalization/inference", from: 11, to: 21, build: bnModel(1, false),
			check: func(t *testing.T, m *onnxpb.ModelProto) { noAttr(t, m, "BatchNormalization", "training_mode") }},

		// Reshape allowzero (14), Shape start/end (15).
		{name: "Reshape/allowzero-constant-shape", from: 14, to: 13, noReturn: true,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 6).output("y").ints("s", 3, -1).
					node("Reshape", ins("x", "s"), ins("y"), intAttr("allowzero", 1)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) { noAttr(t, m, "Reshape", "allowzero") }},
		{name: "Shape/start-end->Slice", from: 15, to: 13, noReturn: true,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3, 4, 5).output("y").
					node("Shape", ins("x"), ins("y"), intAttr("start", 1), intAttr("end", -1)).build()
			},
			check: all(wantOps("Shape,Slice"), func(t *testing.T, m *onnxpb.ModelProto) { noAttr(t, m, "Shape", "start", "end") })},
		{name: "Shape/negative-start", from: 21, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3, 4).output("y").
					node("Shape", ins("x"), ins("y"), intAttr("start", -2)).build()
			},
			check: wantOps("Shape,Slice")},

		// Pad axes (18).
		{name: "Pad/axes->full-pads", from: 18, to: 13, noReturn: true,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 1, 2, 3, 4).output("y").
					ints("pads", 1, 0, 2, 3).ints("axes", -1, 2).init("v", tensor.Scalar(float32(1.5))).
					node("Pad", ins("x", "pads", "v", "axes"), ins("y")).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				numInputs(t, m, "Pad", 3)
				inputIsInts(t, m, "Pad", 1, 0, 0, 0, 1, 0, 0, 3, 2)
				if initNames(m)["axes"] || initNames(m)["pads"] {
					t.Errorf("unused axes/pads initializers left: %v", initNames(m))
				}
			}},
		{name: "Pad/reflect-no-axes", from: 19, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 3, 4).output("y").ints("pads", 1, 2, 1, 0).
					node("Pad", ins("x", "pads"), ins("y"), strAttr("mode", "reflect")).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) { inputIsInts(t, m, "Pad", 1, 1, 2, 1, 0) }},

		// Constant value_* (12).
		{name: "Constant/value_ints->value", from: 13, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).output("y", "z").
					node("Constant", nil, ins("y"), intsAttr("value_ints", []int64{4, 5, 6})).
					node("Constant", nil, ins("z"), floatAttr("value_float", 2.5)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				for _, n := range m.GetGraph().GetNode() {
					if len(n.Attribute) != 1 || n.Attribute[0].GetName() != "value" {
						t.Errorf("Constant %s has attributes %v, want value only", n.GetName(), n.Attribute)
					}
				}
			}},

		// Cast saturate (19), AveragePool dilations (19).
		{name: "Cast/saturate-dropped", from: 19, to: 18,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 2, 3).output("y").
					node("Cast", ins("x"), ins("y"), intAttr("to", int64(tensor.Float16)), intAttr("saturate", 1)).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) { noAttr(t, m, "Cast", "saturate") }},
		{name: "AveragePool/unit-dilations-dropped", from: 19, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 1, 2, 5, 5).output("y").
					node("AveragePool", ins("x"), ins("y"), intsAttr("kernel_shape", []int64{2, 2}),
						intsAttr("dilations", []int64{1, 1}), intAttr("ceil_mode", 1), intsAttr("strides", []int64{2, 2})).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				noAttr(t, m, "AveragePool", "dilations")
				hasAttrInt(t, m, "AveragePool", "ceil_mode", 1)
			}},

		// HardSigmoid keeps its form; HardSwish (14) becomes X * HardSigmoid(X, 1/6, 0.5) below 14.
		{name: "HardSigmoid/attrs-kept", from: 11, to: 21, build: hardModel("HardSigmoid", floatAttr("alpha", 0.3), floatAttr("beta", 0.4)),
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				wantOps("HardSigmoid")(t, m)
				hasAttrFloat(t, m, "HardSigmoid", "alpha", 0.3)
				hasAttrFloat(t, m, "HardSigmoid", "beta", 0.4)
			}},
		{name: "HardSigmoid/defaults-kept", from: 21, to: 11, build: hardModel("HardSigmoid"), check: wantOps("HardSigmoid")},
		{name: "HardSwish/kept-up", from: 14, to: 21, build: hardModel("HardSwish"), check: wantOps("HardSwish")},
		{name: "HardSwish/kept-from-22", from: 22, to: 14, build: hardModel("HardSwish"), check: wantOps("HardSwish"), noReturn: true},
		{name: "HardSwish->HardSigmoid+Mul/14-to-13", from: 14, to: 13, build: hardModel("HardSwish"),
			check: wantHardSwishBody("x", "y"), atol: 1e-6},
		{name: "HardSwish->HardSigmoid+Mul/21-to-11", from: 21, to: 11, build: hardModel("HardSwish"),
			check: wantHardSwishBody("x", "y"), atol: 1e-6},
		{name: "HardSwish->HardSigmoid+Mul/float64", from: 17, to: 12,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float64, 3, 5).output("y").node("HardSwish", ins("x"), ins("y")).build()
			},
			check: wantHardSwishBody("x", "y"), atol: 1e-6},
		{name: "HardSwish->HardSigmoid+Mul/mid-graph", from: 15, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				// x = 3a spans [-6, 6), past both kinks of the gate (x = -3 and 3), which the
				// feeds' [-2, 2) alone would not reach. x and the HardSwish output have a second
				// consumer: the rewrite must keep both uses and the graph output.
				return newModel(t, opset).input("a", tensor.Float32, -1, 4).output("y", "z").
					init("three", tensor.FromSlice(tensor.Shape{}, []float32{3})).
					node("Mul", ins("a", "three"), ins("x")).
					node("HardSwish", ins("x"), ins("y")).
					node("Add", ins("x", "y"), ins("z")).build()
			},
			check: func(t *testing.T, m *onnxpb.ModelProto) {
				wantOps("Mul,HardSigmoid,Mul,Add")(t, m)
				wantHardSwishBody("x", "y")(t, m)
			}, atol: 1e-6},

		// A small network touching several rules at once, with a symbolic batch.
		{name: "Chain", from: 11, to: 21, build: chainModel},

		// Type-only versions keep the node as it is.
		{name: "Add/int32", from: 14, to: 11,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("a", tensor.Int32, 2, 3).input("b", tensor.Int32, 3).output("y").
					node("Add", ins("a", "b"), ins("y")).build()
			},
			check: wantOps("Add")},
		{name: "Loss/SoftmaxCrossEntropy", from: 13, to: 12,
			build: func(t *testing.T, opset int) *onnxpb.ModelProto {
				return newModel(t, opset).input("x", tensor.Float32, 3, 5).input("l", tensor.Int64, 3).output("y", "lp").
					node("SoftmaxCrossEntropyLoss", ins("x", "l"), ins("y", "lp"), strAttr("reduction", "sum")).build()
			},
			check: wantOps("SoftmaxCrossEntropyLoss")},
	}
}

// hardModel is one HardSigmoid or HardSwish node on a [N, 3, 4] float32 input (N symbolic).
func hardModel(op string, attrs ...*onnxpb.AttributeProto) func(*testing.T, int) *onnxpb.ModelProto {
	return func(t *testing.T, opset int) *onnxpb.ModelProto {
		return newModel(t, opset).input("x", tensor.Float32, -1, 3, 4).output("y").node(op, ins("x"), ins("y"), attrs...).build()
	}
}

func hasAttrFloat(t *testing.T, m *onnxpb.ModelProto, op, name string, want float32) {
	t.Helper()
	a := getAttr(findNode(t, m, op), name)
	if a == nil {
		t.Fatalf("%s has no %s attribute: %s", op, name, describe(m))
	}
	if a.GetF() != want {
		t.Errorf("%s %s = %g, want %g", op, name, a.GetF(), want)
	}
}

// wantHardSwishBody checks that HardSwish(x) -> y became g = HardSigmoid(x, 1/6, 0.5) and
// y = Mul(x, g), with no HardSwish left.
func wantHardSwishBody(x, y string) func(*testing.T, *onnxpb.ModelProto) {
	return func(t *testing.T, m *onnxpb.ModelProto) {
		t.Helper()
		for _, n := range m.GetGraph().GetNode() {
			if n.GetOpType() == "HardSwish" {
				t.Fatalf("HardSwish left at opset %d: %s", opsetOf(m), describe(m))
			}
		}
		hs := findNode(t, m, "HardSigmoid")
		var mul *onnxpb.NodeProto
		for _, n := range m.GetGraph().GetNode() {
			if len(n.Output) > 0 && n.Output[0] == y {
				mul = n
			}
		}
		if mul == nil || mul.GetOpType() != "Mul" {
			t.Fatalf("%s is not produced by a Mul: %s", y, describe(m))
		}
		hasAttrFloat(t, m, "HardSigmoid", "alpha", float32(1.0/6))
		hasAttrFloat(t, m, "HardSigmoid", "beta", 0.5)
		if len(hs.Input) != 1 || hs.Input[0] != x {
			t.Errorf("HardSigmoid inputs %v, want [%s]", hs.Input, x)
		}
		if len(mul.Input) != 2 || mul.Input[0] != x || mul.Input[1] != hs.Output[0] || len(mul.Output) != 1 || mul.Output[0] != y {
			t.Errorf("Mul(%v) -> %v, want Mul(%s, %s) -> %s", mul.Input, mul.Output, x, hs.Output[0], y)
		}
	}
}

// bnModel builds BatchNormalization with nOut outputs; training sets training_mode=1 (opset 14+).
func bnModel(nOut int, training bool) func(*testing.T, int) *onnxpb.ModelProto {
	return func(t *testing.T, opset int) *onnxpb.ModelProto {
		outs := []string{"y", "mean", "var", "saved_mean", "saved_var"}[:nOut]
		b := newModel(t, opset).input("x", tensor.Float32, 2, 3, 2, 2).output(outs[:min(nOut, 3)]...).
			init("scale", tensor.FromSlice(tensor.Shape{3}, []float32{1, 0.5, 2})).
			init("bias", tensor.FromSlice(tensor.Shape{3}, []float32{0, 1, -1})).
			init("m", tensor.FromSlice(tensor.Shape{3}, []float32{0.1, -0.2, 0.3})).
			init("v", tensor.FromSlice(tensor.Shape{3}, []float32{1, 2, 0.5}))
		var attrs []*onnxpb.AttributeProto
		if training {
			attrs = append(attrs, intAttr("training_mode", 1))
		}
		return b.node("BatchNormalization", ins("x", "scale", "bias", "m", "v"), outs, attrs...).build()
	}
}

func TestRules(t *testing.T) {
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.build(t, tc.from)
			out, err := convert(t, m, tc.to)
			if err != nil {
				t.Fatalf("convert %d -> %d: %v", tc.from, tc.to, err)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
			in := feeds(t, m, 1)
			want := run(t, m, in)
			same := func(what string, got []*tensor.Tensor) {
				t.Helper()
				if tc.atol == 0 {
					sameOutputs(t, what, got, want)
					return
				}
				for i := range want {
					if err := tensor.AllClose(got[i], want[i], 0, tc.atol); err != nil {
						t.Errorf("%s: output %d: %v", what, i, err)
					}
				}
			}
			same("converted", run(t, out, in))
			dump(t, fmt.Sprintf("%s_%d_to_%d", tc.name, tc.from, tc.to), out, in, want)
			if tc.noReturn {
				return
			}
			back, err := convert(t, out, tc.from)
			if err != nil {
				t.Fatalf("convert back %d -> %d: %v\n%s", tc.to, tc.from, err, describe(out))
			}
			same("converted back", run(t, back, in))
		})
	}
}

// chainModel is Conv, BatchNormalization, Relu, ReduceMean, Squeeze, Unsqueeze, Softmax, Split,
// Dropout, Pad and Concat on a [N,3,4,4] input, all in their opset-11 forms.
func chainModel(t *testing.T, opset int) *onnxpb.ModelProto {
	w := make([]float32, 8*3*3*3)
	for i := range w {
		w[i] = float32(i%7)/7 - 0.4
	}
	ones := func(v float32) *tensor.Tensor {
		return tensor.FromSlice(tensor.Shape{8}, []float32{v, v, v, v, v, v, v, v})
	}
	return newModel(t, opset).input("x", tensor.Float32, -1, 3, 4, 4).output("y").
		init("w", tensor.FromSlice(tensor.Shape{8, 3, 3, 3}, w)).
		init("s", ones(1.5)).init("b", ones(0.1)).init("m", ones(0.2)).init("v", ones(2)).
		ints("pads", 0, 0, 1, 0, 0, 2).
		node("Conv", ins("x", "w"), ins("c"), intsAttr("pads", []int64{1, 1, 1, 1})).
		node("BatchNormalization", ins("c", "s", "b", "m", "v"), ins("bn")).
		node("Relu", ins("bn"), ins("r")).
		node("ReduceMean", ins("r"), ins("rm"), intsAttr("axes", []int64{2, 3})).
		node("Squeeze", ins("rm"), ins("sq"), intsAttr("axes", []int64{2, 3})).
		node("Unsqueeze", ins("sq"), ins("us"), intsAttr("axes", []int64{1})).
		node("Softmax", ins("us"), ins("sm"), intAttr("axis", 1)).
		node("Split", ins("sm"), ins("p", "q"), intAttr("axis", 2), intsAttr("split", []int64{3, 5})).
		node("Dropout", ins("p"), ins("d"), floatAttr("ratio", 0.1)).
		node("Pad", ins("q", "pads"), ins("pq")).
		node("Concat", ins("d", "pq"), ins("y"), intAttr("axis", 2)).build()
}

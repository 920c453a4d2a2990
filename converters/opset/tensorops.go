package opset

import (
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// reshape converts Reshape across opset 14, which added allowzero: with allowzero=1 a 0 in the
// shape means a zero-size dim, while before 14 (and with allowzero=0) it copies the input's dim.
// Downward, allowzero=1 is dropped only when the shape is a constant without zeros.
func reshape(c *converter, n *node) error {
	if !(c.from >= 14 && c.to < 14) || !n.hasAttr("allowzero") {
		return nil
	}
	if n.getInt("allowzero", 0) != 0 {
		shape, ok, err := c.constInts(n, 1)
		if err != nil {
			return c.refuse(n, "shape: %v", err)
		}
		if !ok {
			return c.refuse(n, "allowzero=1 with shape input %q computed at run time: before opset 14 a 0 in it would copy the input's dim instead", n.input(1))
		}
		for _, d := range shape {
			if d == 0 {
				return c.refuse(n, "allowzero=1 and shape %v holds a 0, which before opset 14 copies the input's dim instead", shape)
			}
		}
	}
	n.delAttr("allowzero")
	return nil
}

// shape converts Shape across opset 15, which added start and end (a slice of the shape, clamped
// like Slice). Below 15 a sliced Shape becomes Shape followed by a Slice on axis 0, which clamps
// the same way.
func shape(c *converter, n *node) error {
	if !(c.from >= 15 && c.to < 15) {
		return nil
	}
	start, end := n.getInt("start", 0), n.getInt("end", math.MaxInt64)
	hasEnd := n.hasAttr("end")
	n.delAttr("start")
	n.delAttr("end")
	if start == 0 && !hasEnd {
		return nil
	}
	base := n.base()
	whole := c.fresh(base + "_whole")
	y := n.Output[0]
	n.Output[0] = whole
	starts := c.addInt64s(base+"_start", []int64{start})
	ends := c.addInt64s(base+"_end", []int64{end})
	axes := c.addInt64s(base+"_axes", []int64{0})
	n.post = append(n.post, c.newNode(base, "Slice", []string{whole, starts, ends, axes}, []string{y}))
	return nil
}

// constant converts Constant below opset 12, which only has the value (and sparse_value) tensor
// attributes: value_float(s), value_int(s) and value_string(s) become a value tensor.
func constant(c *converter, n *node) error {
	if c.to >= 12 {
		return nil
	}
	for _, a := range n.Attribute {
		var t *onnxpb.TensorProto
		switch a.GetName() {
		case "value_float":
			t = &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.Float32)), FloatData: []float32{a.GetF()}}
		case "value_floats":
			t = &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.Float32)), Dims: []int64{int64(len(a.GetFloats()))},
				FloatData: append([]float32{}, a.GetFloats()...)}
		case "value_int":
			t = &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.Int64)), Int64Data: []int64{a.GetI()}}
		case "value_ints":
			t = &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.Int64)), Dims: []int64{int64(len(a.GetInts()))},
				Int64Data: append([]int64{}, a.GetInts()...)}
		case "value_string":
			t = &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.String)), StringData: [][]byte{append([]byte{}, a.GetS()...)}}
		case "value_strings":
			t = &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.String)), Dims: []int64{int64(len(a.GetStrings()))}}
			for _, s := range a.GetStrings() {
				t.StringData = append(t.StringData, append([]byte{}, s...))
			}
		default:
			continue
		}
		n.delAttr(a.GetName())
		n.setAttr(tensorAttr("value", t))
		return nil
	}
	return nil
}

// cast converts Cast: saturate (19) only applies to float8 targets and round_mode (24) only to
// float8e8m0, types the type check refuses before those opsets, so both are dropped below them.
func cast(c *converter, n *node) error {
	if c.to < 19 {
		n.delAttr("saturate")
	}
	if c.to < 24 {
		n.delAttr("round_mode")
	}
	return nil
}

// averagePool converts AveragePool across opset 19, which added dilations: below it only
// dilations of 1 (the default) can be expressed.
func averagePool(c *converter, n *node) error {
	if !(c.from >= 19 && c.to < 19) {
		return nil
	}
	if a := n.attr("dilations"); a != nil {
		for _, d := range a.GetInts() {
			if d != 1 {
				return c.refuse(n, "dilations %v: AveragePool has dilations only from opset 19", a.GetInts())
			}
		}
		n.delAttr("dilations")
	}
	return nil
}

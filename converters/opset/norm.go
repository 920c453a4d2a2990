package opset

import (
	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// batchNormalization converts BatchNormalization across opset 14, where the training_mode
// attribute replaced "five outputs means training" and the outputs saved_mean and saved_var
// (3 and 4) went away. Types: before 15, scale and B have X's type; before 14, input_mean
// and input_var do too.
func batchNormalization(c *converter, n *node) error {
	if c.to < 15 {
		x := c.dtype(n.input(0))
		last := 2
		if c.to < 14 {
			last = 4
		}
		for i := 1; i <= last; i++ {
			if d := c.dtype(n.input(i)); x != tensor.Undefined && d != tensor.Undefined && d != x {
				need := 15 // scale and B
				if i > 2 {
					need = 14 // input_mean and input_var
				}
				return c.refuse(n, "input %d %q is %s while X is %s; before opset %d they must match", i, n.input(i), d, x, need)
			}
		}
	}
	const v = 14
	switch {
	case c.from < v && c.to >= v:
		if len(n.Output) > 3 {
			for _, o := range n.Output[3:] {
				if c.used(o) {
					return c.refuse(n, "output %q (saved_mean or saved_var) is used, and from opset 14 the operator has no such output", o)
				}
			}
			n.Output = n.Output[:3]
		}
		if len(n.Output) > 1 {
			n.setAttr(intAttr("training_mode", 1))
		}
	case c.from >= v && c.to < v:
		training := n.getInt("training_mode", 0) != 0
		n.delAttr("training_mode")
		if !training {
			if len(n.Output) > 1 {
				return c.refuse(n, "training_mode=0 with %d outputs: before opset 14 more than one output means training", len(n.Output))
			}
			return nil
		}
		// Before 14 the outputs decide the mode, and BatchNormalization-9 takes exactly one or
		// five: name the statistics the model left out (dnx fills saved_mean and saved_var with
		// the batch mean and variance).
		for len(n.Output) < 5 {
			n.Output = append(n.Output, "")
		}
		for i, suffix := range []string{"", "_running_mean", "_running_var", "_saved_mean", "_saved_var"} {
			if i > 0 && n.Output[i] == "" {
				n.Output[i] = c.fresh(n.base() + suffix)
			}
		}
	}
	return nil
}

// dropout converts Dropout across opset 12, where the ratio attribute became input 1 and the
// optional input 2 training_mode appeared. Before 12 the operator has no training mode (runtimes
// run it as an identity), so a node that trains, or might, is refused below 12; the seed and a
// ratio computed at run time only matter in training and are dropped. The mask output, which
// before 12 has no specified value outside training, is computed as an all-true tensor.
func dropout(c *converter, n *node) error {
	const v = 12
	switch {
	case c.from < v && c.to >= v:
		if a := n.attr("ratio"); a != nil {
			c.setInput(n, 1, c.addFloat32(n.base()+"_ratio", a.GetF()))
			n.delAttr("ratio")
		}
	case c.from >= v && c.to < v:
		if in := n.input(2); in != "" {
			t, ok, err := c.constant(in)
			if err != nil {
				return c.refuse(n, "training_mode: %v", err)
			}
			if !ok {
				return c.refuse(n, "training_mode input %q is computed at run time, and before opset 12 Dropout has no training mode", in)
			}
			if t.DType == tensor.String || t.Len() != 1 {
				return c.refuse(n, "training_mode input %q is not a scalar", in)
			}
			if t.Float64s()[0] != 0 {
				return c.refuse(n, "training_mode is true, and before opset 12 Dropout has no training mode")
			}
			c.dropInput(n, 2)
		}
		if in := n.input(1); in != "" {
			// Outside training the ratio changes nothing (Y = X, the mask is all true): a ratio
			// computed at run time is dropped, a constant one kept as the attribute.
			t, ok, err := c.constant(in)
			if err == nil && ok && t.DType != tensor.String && t.Len() == 1 {
				n.setAttr(floatAttr("ratio", float32(t.Float64s()[0])))
			}
			c.dropInput(n, 1)
		}
		n.delAttr("seed")
		if len(n.Output) > 1 && n.Output[1] != "" {
			// Before 12 the mask outside training is left to the runtime (ONNX Runtime returns all
			// false); from 12 it is all true. Compute it explicitly: ConstantOfShape(Shape(X), true).
			base, mask := n.base(), n.Output[1]
			shape := c.fresh(base + "_shape")
			n.Output = n.Output[:1]
			trueValue := &onnxpb.TensorProto{DataType: proto.Int32(int32(tensor.Bool)), Dims: []int64{1}, RawData: []byte{1}}
			n.post = append(n.post,
				c.newNode(base, "Shape", []string{n.input(0)}, []string{shape}),
				c.newNode(base, "ConstantOfShape", []string{shape}, []string{mask}, tensorAttr("value", trueValue)))
		}
	}
	return nil
}

package opset

import "github.com/dnx-ml/dnx/runtime/ops"

// softmax converts Softmax and LogSoftmax across opset 13. Before 13 the input is coerced to 2-D
// at axis (default 1) and each row [prod(dims[:axis]), prod(dims[axis:])] is normalized, so the
// group runs over every trailing dim; from 13 the group is the single dim axis (default -1).
//
// The two agree when the group is the same set of elements: the axis is the last dim, or every
// dim of the coerced region but one is 1 (then that one is the single axis). Otherwise the node is
// wrapped so that it normalizes the same groups in the same order, which keeps the results
// bit-identical:
//
//	upward:   Y = Reshape(Softmax13(Flatten(X, axis), axis=1), Shape(X))
//	downward: Y = Transpose(Softmax11(Transpose(X, perm), axis=r-1), perm^-1)
//
// where perm moves the axis last. The downward wrap needs X's rank.
func softmax(c *converter, n *node) error {
	const v = 13
	switch {
	case c.from < v && c.to >= v:
		return softmaxUp(c, n)
	case c.from >= v && c.to < v:
		return softmaxDown(c, n)
	}
	return nil
}

func softmaxUp(c *converter, n *node) error {
	x := n.input(0)
	axis := n.getInt("axis", 1)
	if axis == -1 {
		n.setAttr(intAttr("axis", -1))
		return nil
	}
	if dims, ok := c.dims(x); ok {
		if a, err := normAxis(axis, len(dims)); err == nil {
			if k, ok := singleAxis(dims[a:]); ok {
				n.setAttr(intAttr("axis", int64(a+k)))
				return nil
			}
		}
	}
	base := n.base()
	flat, shape, out := c.fresh(base+"_2d"), c.fresh(base+"_shape"), c.fresh(base+"_rows")
	y := n.Output[0]
	n.pre = append(n.pre,
		c.newNode(base, "Flatten", []string{x}, []string{flat}, intAttr("axis", axis)),
		c.newNode(base, "Shape", []string{x}, []string{shape}))
	c.setInput(n, 0, flat)
	n.Output[0] = out
	n.setAttr(intAttr("axis", 1))
	// Reshape keeps allowzero=0, which every target has, so that the result converts back down.
	// A 0 in Shape(X) then copies a dim of the 2-D rows: for a zero-size X this either gives
	// the same empty shape or fails at run time, never other values.
	n.post = append(n.post, c.newNode(base, "Reshape", []string{out, shape}, []string{y}))
	return nil
}

// singleAxis returns the position in region of the only dim that may differ from 1, when all the
// others are known to be 1 (a region of ones gives 0).
func singleAxis(region []ops.Dim) (int, bool) {
	k := -1
	for i, d := range region {
		if d.IsKnown() && d.Value == 1 {
			continue
		}
		if k >= 0 {
			return 0, false
		}
		k = i
	}
	if k < 0 {
		k = 0
	}
	return k, true
}

func softmaxDown(c *converter, n *node) error {
	x := n.input(0)
	axis := n.getInt("axis", -1)
	if axis == -1 {
		// The coerced region of axis -1 is the last dim alone. The attribute must be written:
		// the old default is 1.
		n.setAttr(intAttr("axis", -1))
		return nil
	}
	dims, ok := c.dims(x)
	if !ok {
		return c.refuse(n, "axis %d: the input's rank is unknown, and before opset 13 the operator normalizes over every dim from the axis on", axis)
	}
	r := len(dims)
	a, err := normAxis(axis, r)
	if err != nil {
		return c.refuse(n, "%v", err)
	}
	if trailingOnes(dims[a+1:]) {
		n.setAttr(intAttr("axis", int64(a)))
		return nil
	}
	perm := make([]int64, 0, r)
	for i := 0; i < r; i++ {
		if i != a {
			perm = append(perm, int64(i))
		}
	}
	perm = append(perm, int64(a))
	inv := make([]int64, r)
	for i, p := range perm {
		inv[p] = int64(i)
	}
	base := n.base()
	moved, out := c.fresh(base+"_last"), c.fresh(base+"_moved")
	y := n.Output[0]
	n.pre = append(n.pre, c.newNode(base, "Transpose", []string{x}, []string{moved}, intsAttr("perm", perm)))
	c.setInput(n, 0, moved)
	n.Output[0] = out
	n.setAttr(intAttr("axis", int64(r-1)))
	n.post = append(n.post, c.newNode(base, "Transpose", []string{out}, []string{y}, intsAttr("perm", inv)))
	return nil
}

// trailingOnes reports whether every dim is known to be 1.
func trailingOnes(dims []ops.Dim) bool {
	for _, d := range dims {
		if !d.IsKnown() || d.Value != 1 {
			return false
		}
	}
	return true
}

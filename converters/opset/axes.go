package opset

// Squeeze, Unsqueeze (13) and ReduceMean (18) moved their axes attribute to an int64 input.

// squeeze moves the axes of Squeeze and Unsqueeze between the attribute (before 13) and input 1
// (from 13). Squeeze without axes removes every size-1 dim in both forms.
func squeeze(c *converter, n *node) error {
	const v = 13
	switch {
	case c.from < v && c.to >= v:
		if a := n.attr("axes"); a != nil {
			// An empty list (Squeeze: every size-1 dim) is best left out, as the input is optional.
			if len(a.GetInts()) > 0 {
				c.setInput(n, 1, c.addInt64s(n.base()+"_axes", a.GetInts()))
			}
			n.delAttr("axes")
		}
	case c.from >= v && c.to < v:
		return axesInputToAttr(c, n, 1, v)
	}
	return nil
}

// axesInputToAttr moves a constant axes input i of n to the axes attribute. An absent input gives
// no attribute, and so does an empty one: both mean "every axis" (Squeeze: every size-1 dim).
func axesInputToAttr(c *converter, n *node, i, since int) error {
	if n.input(i) == "" {
		return nil
	}
	axes, ok, err := c.constInts(n, i)
	if err != nil {
		return c.refuse(n, "axes: %v", err)
	}
	if !ok {
		return c.refuse(n, "axes input %q is computed at run time, but before opset %d axes is an attribute and must be known now",
			n.input(i), since)
	}
	c.dropInput(n, i)
	if len(axes) > 0 {
		n.setAttr(intsAttr("axes", axes))
	}
	return nil
}

// reduceMean moves ReduceMean's axes between the attribute (before 18) and input 1 (from 18).
// From 18, noop_with_empty_axes=1 with no axes makes the node an identity; older versions reduce
// over every axis when none are given, so such a node becomes Identity.
func reduceMean(c *converter, n *node) error {
	const v = 18
	switch {
	case c.from < v && c.to >= v:
		if a := n.attr("axes"); a != nil {
			if len(a.GetInts()) > 0 {
				c.setInput(n, 1, c.addInt64s(n.base()+"_axes", a.GetInts()))
			}
			n.delAttr("axes")
		}
	case c.from >= v && c.to < v:
		noop := n.getInt("noop_with_empty_axes", 0) != 0
		n.delAttr("noop_with_empty_axes")
		if err := axesInputToAttr(c, n, 1, v); err != nil {
			return err
		}
		if noop && !n.hasAttr("axes") {
			n.OpType = strPtr("Identity")
			n.Attribute = nil
		}
	}
	return nil
}

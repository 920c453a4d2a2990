package opset

// split converts Split: its sizes moved from the split attribute to input 1 at 13, and from 18 an
// equal split states its part count in num_outputs, where the last part may be smaller when the
// axis does not divide evenly (before 18 the parts had to be equal).
func split(c *converter, n *node) error {
	parts := len(n.Output)
	switch {
	case c.from < 13 && c.to >= 13:
		if a := n.attr("split"); a != nil {
			c.setInput(n, 1, c.addInt64s(n.base()+"_split", a.GetInts()))
			n.delAttr("split")
		}
	case c.from >= 13 && c.to < 13 && n.input(1) != "":
		sizes, ok, err := c.constInts(n, 1)
		if err != nil {
			return c.refuse(n, "split: %v", err)
		}
		if !ok {
			return c.refuse(n, "split input %q is computed at run time, but before opset 13 the sizes are an attribute and must be known now", n.input(1))
		}
		c.dropInput(n, 1)
		n.setAttr(intsAttr("split", sizes))
	}
	explicit := n.input(1) != "" || n.hasAttr("split")
	switch {
	case c.to >= 18 && !explicit && !n.hasAttr("num_outputs"):
		n.setAttr(intAttr("num_outputs", int64(parts)))
	case c.to < 18 && n.hasAttr("num_outputs"):
		n.delAttr("num_outputs")
		sizes, err := c.uneven(n, parts)
		if err != nil {
			return err
		}
		if sizes == nil {
			// Even, or the axis size is unknown: then the older equal split is the same when the
			// size divides, and fails at run time (rather than giving other values) when not.
			return nil
		}
		if c.to >= 13 {
			c.setInput(n, 1, c.addInt64s(n.base()+"_split", sizes))
		} else {
			n.setAttr(intsAttr("split", sizes))
		}
	}
	return nil
}

// uneven returns Split-18's part sizes when the axis size is known and does not divide by parts:
// ceil(size/parts) each, the last one smaller. It returns nil when the split is even or the size
// unknown.
func (c *converter) uneven(n *node, parts int) ([]int64, error) {
	dims, ok := c.dims(n.input(0))
	if !ok {
		return nil, nil
	}
	axis, err := normAxis(n.getInt("axis", 0), len(dims))
	if err != nil {
		return nil, c.refuse(n, "%v", err)
	}
	d := dims[axis]
	if !d.IsKnown() || d.Value%int64(parts) == 0 {
		return nil, nil
	}
	chunk := (d.Value + int64(parts) - 1) / int64(parts)
	last := d.Value - chunk*int64(parts-1)
	if last < 0 {
		return nil, c.refuse(n, "axis size %d cannot be cut into %d parts of %d", d.Value, parts, chunk)
	}
	sizes := make([]int64, parts)
	for i := range sizes {
		sizes[i] = chunk
	}
	sizes[parts-1] = last
	return sizes, nil
}

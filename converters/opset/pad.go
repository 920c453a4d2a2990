package opset

// pad converts Pad: from 18 an optional axes input (3) says which dims pads covers; below 18 pads
// must cover every dim, so a constant axes is expanded into full-rank pads (zeros elsewhere),
// which needs the input's rank and constant pads. The wrap mode exists from 19.
func pad(c *converter, n *node) error {
	if a := n.attr("mode"); a != nil && string(a.GetS()) == "wrap" && c.to < 19 {
		return c.refuse(n, "mode \"wrap\" exists only from opset 19")
	}
	if !(c.from >= 18 && c.to < 18) || n.input(3) == "" {
		return nil
	}
	axes, ok, err := c.constInts(n, 3)
	if err != nil {
		return c.refuse(n, "axes: %v", err)
	}
	if !ok {
		return c.refuse(n, "axes input %q is computed at run time; before opset 18 pads must name every dim", n.input(3))
	}
	pads, ok, err := c.constInts(n, 1)
	if err != nil {
		return c.refuse(n, "pads: %v", err)
	}
	if !ok {
		return c.refuse(n, "pads input %q is computed at run time, so it cannot be widened to every dim as opset %d needs", n.input(1), c.to)
	}
	r, ok := c.rank(n.input(0))
	if !ok {
		return c.refuse(n, "the input's rank is unknown, so pads for axes %v cannot be widened to every dim as opset %d needs", axes, c.to)
	}
	if len(pads) != 2*len(axes) {
		return c.refuse(n, "pads has %d values for %d axes, want %d", len(pads), len(axes), 2*len(axes))
	}
	full := make([]int64, 2*r)
	seen := make([]bool, r)
	for i, ax := range axes {
		a, err := normAxis(ax, r)
		if err != nil {
			return c.refuse(n, "axes: %v", err)
		}
		if seen[a] {
			return c.refuse(n, "axes %v names dim %d twice", axes, a)
		}
		seen[a] = true
		full[a], full[r+a] = pads[i], pads[len(axes)+i]
	}
	c.setInput(n, 1, c.addInt64s(n.base()+"_pads", full))
	c.dropInput(n, 3)
	return nil
}

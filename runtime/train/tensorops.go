package train

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// storedCM reports whether v's data (as run.data returns it) is channel-major: activations,
// inputs and constants of rank >= 3 are; parameters keep their row-major ONNX layout.
func (v *val) storedCM() bool {
	return v.cm && v.kind != vParam && v.kind != vStat
}

// logicalOffset returns the storage offset of row-major index j of v's data.
func (v *val) logicalOffset(j int) int {
	if !v.storedCM() {
		return j
	}
	return v.offsetOf(j)
}

// concatUnit joins its inputs along an axis. In the memory-efficient mode a channel
// concatenation whose inputs the planner laid out contiguously is a view: nothing to copy
// forward, nothing to split backward (the inputs' gradients are slices of the output's).
type concatUnit struct {
	unitBase
	xs   []int
	y    int
	axis int
	view bool
}

func (p *plan) newConcat(base unitBase, op *ops.Concat) (unit, error) {
	u := &concatUnit{unitBase: base, xs: base.in, y: base.out[0]}
	y := p.vals[u.y]
	r := len(y.shape)
	u.axis = int(op.Axis)
	if u.axis < 0 {
		u.axis += r
	}
	if u.axis < 0 || u.axis >= r {
		return nil, fmt.Errorf("%w: Concat axis %d for rank %d", ops.ErrShape, op.Axis, r)
	}
	if y.cm && u.axis != 1 {
		return nil, fmt.Errorf("%w: only channel concatenation (axis 1) of images can be trained, got axis %d", ops.ErrUnsupportedOp, op.Axis)
	}
	for _, x := range u.xs {
		if x < 0 || p.vals[x].kind == vParam || p.vals[x].kind == vStat {
			return nil, fmt.Errorf("%w: Concat of a parameter cannot be trained", ops.ErrUnsupportedOp)
		}
	}
	return u, nil
}

// channelMajor reports whether u concatenates channel-major activations along channels.
func (u *concatUnit) channelMajor(p *plan) bool {
	if !p.vals[u.y].cm {
		return false
	}
	for _, x := range u.xs {
		if k := p.vals[x].kind; k != vAct {
			return false
		}
	}
	return true
}

// parts calls fn for each input with the ranges of the input's data and of the output's that
// correspond: blocks of length ln at src offset xo and dst offset yo.
func (u *concatUnit) parts(p *plan, fn func(i, xo, yo, ln int)) {
	y := p.vals[u.y]
	if y.cm {
		off := 0
		for i, x := range u.xs {
			fn(i, 0, off, p.vals[x].size)
			off += p.vals[x].size
		}
		return
	}
	outer, inner := 1, 1
	for _, d := range y.shape[:u.axis] {
		outer *= d
	}
	for _, d := range y.shape[u.axis+1:] {
		inner *= d
	}
	total := y.shape[u.axis]
	off := 0
	for i, x := range u.xs {
		k := p.vals[x].shape[u.axis]
		for o := 0; o < outer; o++ {
			fn(i, o*k*inner, (o*total+off)*inner, k*inner)
		}
		off += k
	}
}

func (u *concatUnit) forward(r *run) error {
	if u.view {
		return nil
	}
	y := r.data(u.y)
	u.parts(r.p, func(i, xo, yo, ln int) {
		copy(y[yo:yo+ln], r.data(u.xs[i])[xo:xo+ln])
	})
	return nil
}

func (u *concatUnit) backward(r *run) error {
	if u.view {
		return nil
	}
	dy := r.gradOut(u.y)
	if dy == nil {
		return nil
	}
	dxs := make([][]float32, len(u.xs))
	accs := make([]bool, len(u.xs))
	for i, x := range u.xs {
		if r.p.vals[x].needGrad && dxs[i] == nil {
			dxs[i], accs[i] = r.gradIn(x)
			// An input listed twice receives both slices: the second adds.
			for j := i + 1; j < len(u.xs); j++ {
				if u.xs[j] == x {
					dxs[j], accs[j] = dxs[i], true
				}
			}
		}
	}
	u.parts(r.p, func(i, xo, yo, ln int) {
		if dxs[i] != nil {
			accumulate(dxs[i][xo:xo+ln], dy[yo:yo+ln], accs[i])
		}
	})
	return nil
}

// aliasUnit is Identity or a Dropout of ratio 0 (see dropoutUnit): its output shares the
// input's storage and gradient.
type aliasUnit struct {
	unitBase
	x, y int
}

func (p *plan) newAlias(base unitBase) (unit, error) {
	u := &aliasUnit{unitBase: base, x: base.in[0], y: base.out[0]}
	if _, err := p.act(u.x, base.node.OpType+" input", 0, 8); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *aliasUnit) forward(*run) error  { return nil }
func (u *aliasUnit) backward(*run) error { return nil }

// reshapeUnit is Flatten or Reshape: the same elements in the same logical (row-major) order
// under another shape, moved between the two storage layouts when their ranks differ.
type reshapeUnit struct {
	unitBase
	x, y int
}

func (p *plan) newReshape(base unitBase) (unit, error) {
	u := &reshapeUnit{unitBase: base, x: base.in[0], y: base.out[0]}
	x, err := p.act(u.x, base.node.OpType+" input", 0, 8)
	if err != nil {
		return nil, err
	}
	if x.size != p.vals[u.y].size {
		return nil, fmt.Errorf("%w: %s of %v into %v", ops.ErrShape, base.node.OpType, x.shape, p.vals[u.y].shape)
	}
	return u, nil
}

func (u *reshapeUnit) forward(r *run) error {
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	x, y := r.data(u.x), r.data(u.y)
	if !xv.storedCM() && !yv.storedCM() {
		copy(y, x)
		return nil
	}
	for j := 0; j < xv.size; j++ {
		y[yv.logicalOffset(j)] = x[xv.logicalOffset(j)]
	}
	return nil
}

func (u *reshapeUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil || !r.p.vals[u.x].needGrad {
		return nil
	}
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	dx, acc := r.gradIn(u.x)
	for j := 0; j < xv.size; j++ {
		d := dy[yv.logicalOffset(j)]
		o := xv.logicalOffset(j)
		if acc {
			d += dx[o]
		}
		dx[o] = d
	}
	return nil
}

// addUnit is Add with numpy broadcasting. Equal shapes in the same layout add element by
// element; broadcasting walks the output's logical indices.
type addUnit struct {
	unitBase
	a, b, y int
	same    bool
}

func (p *plan) newAdd(base unitBase) (unit, error) {
	u := &addUnit{unitBase: base, a: base.in[0], b: base.in[1], y: base.out[0]}
	for _, i := range []int{u.a, u.b} {
		if p.vals[i].cdata == nil && p.vals[i].kind == vConst {
			return nil, fmt.Errorf("%w: Add of a non-float constant", ops.ErrUnsupportedOp)
		}
	}
	a, b, y := p.vals[u.a], p.vals[u.b], p.vals[u.y]
	u.same = a.shape.Equal(y.shape) && b.shape.Equal(y.shape) && a.storedCM() == y.storedCM() && b.storedCM() == y.storedCM()
	return u, nil
}

// index maps the output's logical index j to the storage offset of input v under broadcasting.
func broadcastOffset(v, y *val, j int) int {
	r := len(y.shape)
	lead := r - len(v.shape)
	k, stride := 0, 1
	// Walk y's dims from the last; the input's logical index accumulates its own dims.
	for d := r - 1; d >= 0; d-- {
		idx := j % y.shape[d]
		j /= y.shape[d]
		if d >= lead {
			vd := v.shape[d-lead]
			if vd != 1 {
				k += idx * stride
			}
			stride *= vd
		}
	}
	return v.logicalOffset(k)
}

func (u *addUnit) forward(r *run) error {
	a, b, y := r.data(u.a), r.data(u.b), r.data(u.y)
	if u.same {
		for i := range y {
			y[i] = a[i] + b[i]
		}
		return nil
	}
	av, bv, yv := r.p.vals[u.a], r.p.vals[u.b], r.p.vals[u.y]
	for j := 0; j < yv.size; j++ {
		y[yv.logicalOffset(j)] = a[broadcastOffset(av, yv, j)] + b[broadcastOffset(bv, yv, j)]
	}
	return nil
}

func (u *addUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil {
		return nil
	}
	yv := r.p.vals[u.y]
	for _, in := range []int{u.a, u.b} {
		if !r.p.vals[in].needGrad {
			continue
		}
		dx, acc := r.gradIn(in)
		if u.same {
			accumulate(dx, dy, acc)
			continue
		}
		if !acc {
			clear(dx)
		}
		xv := r.p.vals[in]
		for j := 0; j < yv.size; j++ {
			dx[broadcastOffset(xv, yv, j)] += dy[yv.logicalOffset(j)]
		}
	}
	return nil
}

// padUnit is a constant-mode Pad with pads known when planning (negative pads crop).
type padUnit struct {
	unitBase
	x, y  int
	pads  []int
	value float32
}

func (p *plan) newPad(base unitBase, op *ops.Pad) (unit, error) {
	u := &padUnit{unitBase: base, x: base.in[0], y: base.out[0], value: op.Value}
	x, err := p.act(u.x, "Pad input", 1, 8)
	if err != nil {
		return nil, err
	}
	if op.Mode != ops.PadConstant {
		return nil, fmt.Errorf("%w: Pad mode %q cannot be trained (only constant)", ops.ErrUnsupportedOp, op.Mode)
	}
	constIn := func(i int) (*tensor.Tensor, error) {
		if i >= len(base.in) || base.in[i] < 0 {
			return nil, nil
		}
		v := p.vals[base.in[i]]
		if v.kind != vConst {
			return nil, fmt.Errorf("%w: Pad input %d is computed; training needs it constant", ops.ErrUnsupportedOp, i)
		}
		return v.konst, nil
	}
	pads, err := constIn(1)
	if err != nil {
		return nil, err
	}
	axes, err := constIn(3)
	if err != nil {
		return nil, err
	}
	if !op.HasAxesInput {
		axes = nil
	}
	if u.pads, err = op.FullPads(len(x.shape), pads, axes); err != nil {
		return nil, err
	}
	if cv, err := constIn(2); err != nil {
		return nil, err
	} else if cv != nil && op.HasValueInput && cv.Len() == 1 {
		u.value = float32(cv.Float64s()[0])
	}
	return u, nil
}

// source returns the logical index of x that output logical index j reads, or -1 for padding.
func (u *padUnit) source(x, y *val, j int) int {
	r := len(y.shape)
	k, stride := 0, 1
	for d := r - 1; d >= 0; d-- {
		idx := j%y.shape[d] - u.pads[d]
		j /= y.shape[d]
		if idx < 0 || idx >= x.shape[d] {
			return -1
		}
		k += idx * stride
		stride *= x.shape[d]
	}
	return k
}

func (u *padUnit) forward(r *run) error {
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	x, y := r.data(u.x), r.data(u.y)
	for j := 0; j < yv.size; j++ {
		v := u.value
		if k := u.source(xv, yv, j); k >= 0 {
			v = x[xv.logicalOffset(k)]
		}
		y[yv.logicalOffset(j)] = v
	}
	return nil
}

func (u *padUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil || !r.p.vals[u.x].needGrad {
		return nil
	}
	xv, yv := r.p.vals[u.x], r.p.vals[u.y]
	dx, acc := r.gradIn(u.x)
	if !acc {
		clear(dx)
	}
	for j := 0; j < yv.size; j++ {
		if k := u.source(xv, yv, j); k >= 0 {
			dx[xv.logicalOffset(k)] += dy[yv.logicalOffset(j)]
		}
	}
	return nil
}

package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Conv is the ONNX Conv operator (opsets 1, 11 and 22 share one meaning): inputs X [N,C,D1..Dn],
// W [M,C/Group,k1..kn] and an optional bias B [M]; output Y [N,M,o1..on].
//
//	Y[n,m,o] = B[m] + sum_{c in group(m)} sum_k W[m,c,k] * X[n, g*C/Group + c, o*s + k*d - padBegin]
//
// where group(m) = m / (M/Group) and terms whose input coordinate falls in the padding are zero.
// When Window.Kernel is nil the kernel size comes from W.
type Conv struct {
	Window
	Group   int
	HasBias bool
}

// OpType returns "Conv".
func (*Conv) OpType() string { return "Conv" }

func decodeConv(n *Node) (Op, error) {
	if err := CheckArity(n, 2, 3, 1, 1); err != nil {
		return nil, err
	}
	w, err := nnWindowAttrs(n, false, 0, 1)
	if err != nil {
		return nil, err
	}
	g, err := n.Attrs.Int("group", 1)
	if err != nil {
		return nil, err
	}
	if g < 1 || g > maxWindowAttr {
		return nil, fmt.Errorf("%w: group = %d, want a positive number", ErrAttr, g)
	}
	return &Conv{Window: w, Group: int(g), HasBias: len(n.Inputs) == 3 && n.Inputs[2]}, nil
}

// ConvShapes checks the concrete shapes of X, W and the optional bias (nil) against the operator
// and returns the resolved window geometry. Kernels call it before touching data.
func (c *Conv) ConvShapes(x, w, b []int, hasBias bool) (*Geometry, error) {
	if len(x) < 3 {
		return nil, fmt.Errorf("%w: Conv X must have rank >= 3 (N,C,D1,...), got shape %v", ErrShape, x)
	}
	if len(w) != len(x) {
		return nil, fmt.Errorf("%w: Conv W has rank %d, X has rank %d", ErrShape, len(w), len(x))
	}
	M, Cg := w[0], w[1]
	if x[1] != Cg*c.Group {
		return nil, fmt.Errorf("%w: Conv X has %d channels, W expects %d x group %d", ErrShape, x[1], Cg, c.Group)
	}
	if M%c.Group != 0 {
		return nil, fmt.Errorf("%w: Conv W has %d output channels, not divisible by group %d", ErrShape, M, c.Group)
	}
	if hasBias && (len(b) != 1 || b[0] != M) {
		return nil, fmt.Errorf("%w: Conv bias has shape %v, want [%d]", ErrShape, b, M)
	}
	kernel := w[2:]
	if c.Kernel != nil {
		for i, k := range c.Kernel {
			if i >= len(kernel) || kernel[i] != k {
				return nil, fmt.Errorf("%w: Conv kernel_shape %v does not match W's spatial dims %v", ErrShape, c.Kernel, kernel)
			}
		}
	}
	return c.Resolve(x[2:], kernel)
}

// Infer implements Op. Y keeps X's batch dim (symbolic or not) and takes M from W; spatial dims
// are computed where the input and kernel sizes are known.
func (c *Conv) Infer(in []*Arg) ([]Type, error) {
	x, w, b := nnArg(in, 0), nnArg(in, 1), nnArg(in, 2)
	if x == nil || w == nil {
		return nil, fmt.Errorf("%w: Conv needs X and W", ErrArity)
	}
	if err := nnSameDType("Conv", x, w, "X", "W"); err != nil {
		return nil, err
	}
	if err := nnSameDType("Conv", x, b, "X", "B"); err != nil {
		return nil, err
	}
	rank := x.Type.Rank()
	if rank < 0 {
		rank = w.Type.Rank()
	}
	if sp := c.Spatial(); rank < 0 && sp >= 0 {
		rank = sp + 2
	}
	if rank < 0 {
		return []Type{{DType: x.Type.DType, Unranked: true}}, nil
	}
	if rank < 3 {
		return nil, fmt.Errorf("%w: Conv X must have rank >= 3 (N,C,D1,...), got %s", ErrShape, x.Type)
	}
	if r := w.Type.Rank(); r >= 0 && r != rank {
		return nil, fmt.Errorf("%w: Conv W %s has rank %d, X has rank %d", ErrShape, w.Type, r, rank)
	}
	if sp := c.Spatial(); sp >= 0 && sp != rank-2 {
		return nil, fmt.Errorf("%w: Conv attributes describe %d spatial dims, X has %d", ErrShape, sp, rank-2)
	}
	xs := nnDimsOrUnknown(x.Type, rank)
	ws := nnDimsOrUnknown(w.Type, rank)
	M, Cg, C := ws[0], ws[1], xs[1]
	if C.IsKnown() && Cg.IsKnown() && C.Value != Cg.Value*int64(c.Group) {
		return nil, fmt.Errorf("%w: Conv X has %d channels, W expects %d x group %d", ErrShape, C.Value, Cg.Value, c.Group)
	}
	if M.IsKnown() && M.Value%int64(c.Group) != 0 {
		return nil, fmt.Errorf("%w: Conv W has %d output channels, not divisible by group %d", ErrShape, M.Value, c.Group)
	}
	if err := nnCheckVector("Conv", "B", b, M); err != nil {
		return nil, err
	}
	kernel := make([]int, rank-2)
	for i := range kernel {
		kernel[i] = -1
		if d := ws[i+2]; d.IsKnown() {
			kernel[i] = int(d.Value)
		}
		if c.Kernel != nil {
			if kernel[i] >= 0 && kernel[i] != c.Kernel[i] {
				return nil, fmt.Errorf("%w: Conv kernel_shape %v does not match W %s", ErrShape, c.Kernel, w.Type)
			}
			kernel[i] = c.Kernel[i]
		}
	}
	spatial, err := c.outDims(xs[2:], kernel)
	if err != nil {
		return nil, fmt.Errorf("Conv: %w", err)
	}
	dt := x.Type.DType
	if dt == tensor.Undefined {
		dt = w.Type.DType
	}
	return []Type{{DType: dt, Shape: append([]Dim{xs[0], M}, spatial...)}}, nil
}

// nnDimsOrUnknown returns t's dims, or rank Unknown dims when t is unranked.
func nnDimsOrUnknown(t Type, rank int) []Dim {
	if !t.Unranked {
		return t.Shape
	}
	d := make([]Dim, rank)
	for i := range d {
		d[i] = Unknown()
	}
	return d
}

package cpu

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/ops"
)

// The epilogue of a convolution past bias and ReLU: the residual of a FusedConv (ResNet's and
// MobileNetV2's Conv -> Add) and any activation other than a ReLU without residual, which the
// GEMM micro-kernels and the Winograd and depthwise kernels apply themselves (ConvSpec.PostRelu).
// It runs on blocks of the output as soon as they are final: the GEMM paths call it per tile
// (gemm.TilePost), the Winograd output transform per segment of rows and the depthwise path per
// output channel, while the block is in cache.

// newPost returns the activation of spec's epilogue as a Unary on the level code, or nil when
// there is none left after PostRelu (normalizeEpilogue has run).
func newPost(spec *ConvSpec, code *kernels) (*Unary, error) {
	a := spec.Post
	var u *Unary
	switch a.Kind {
	case ops.ActNone:
		return nil, nil
	case ops.ActRelu:
		// ReLU after a residual sum: Clip to [0, +Inf] is max(x, 0), NaN included.
		u = &Unary{Func: FuncClip, Lo: 0, Hi: float32(math.Inf(1))}
	case ops.ActClip:
		u = &Unary{Func: FuncClip, Lo: a.Alpha, Hi: a.Beta}
	case ops.ActLeakyRelu:
		u = &Unary{Func: FuncLeakyRelu, Alpha: a.Alpha}
	case ops.ActHardSigmoid:
		u = &Unary{Func: FuncHardSigmoid, Alpha: a.Alpha, Beta: a.Beta}
	case ops.ActHardSwish:
		u = &Unary{Func: FuncHardSwish}
	case ops.ActSigmoid:
		u = &Unary{Func: FuncSigmoid}
	case ops.ActSiLU:
		u = &Unary{Func: FuncSiLU}
	default:
		return nil, fmt.Errorf("%w: conv epilogue activation %v", ops.ErrAttr, a.Kind)
	}
	u.code = code
	u.unaryBlock()
	return u, nil
}

// normalizeEpilogue makes PostRelu the one way a ReLU without a residual is asked for (the
// kernels apply it in registers), and Post the way for everything else: a ReLU after a residual
// must come after the sum, which the kernels' own ReLU would precede.
func normalizeEpilogue(s *ConvSpec) error {
	if s.PostRelu && s.Post.Kind != ops.ActNone && s.Post.Kind != ops.ActRelu {
		return fmt.Errorf("%w: conv has both PostRelu and a %v epilogue", ops.ErrAttr, s.Post.Kind)
	}
	relu := s.PostRelu || s.Post.Kind == ops.ActRelu
	switch {
	case relu && !s.Residual:
		s.PostRelu, s.Post = true, ops.Activation{}
	case relu:
		s.PostRelu, s.Post = false, ops.Activation{Kind: ops.ActRelu}
	}
	return nil
}

// hasTail reports whether the epilogue has work past bias and PostRelu.
func (c *Conv2D) hasTail() bool { return c.post != nil || c.spec.Residual }

// gemmTail reports whether the GEMM paths have a tail to apply: one their micro-kernels do not
// (a Clip without residual they clamp in registers: gemmClamp).
func (c *Conv2D) gemmTail() bool { return c.hasTail() && !c.gemmClamp }

// finishRows applies the residual and the activation to rows r < rows of cols floats at
// dst[off + r*ld:], the residual read at the same positions of res (nil without one).
func (c *Conv2D) finishRows(dst, res []float32, off, rows, cols, ld int) {
	for r := 0; r < rows; r++ {
		o := off + r*ld
		row := dst[o : o+cols]
		if res != nil {
			c.code.binary(FuncAdd, false, row, res[o:o+cols], row)
		}
		if c.post != nil {
			c.post.apply(row, row)
		}
	}
}

// convPost is the gemm.TilePost of one GEMM: dst is the C given to the job, res the residual at
// the same positions (nil without one).
type convPost struct {
	c        *Conv2D
	dst, res []float32
}

// Finish implements gemm.TilePost.
func (p *convPost) Finish(off, rows, cols, ldc int) {
	p.c.finishRows(p.dst, p.res, off, rows, cols, ldc)
}

// itemResidual returns batch item b's residual from channel c0 on (nil without a residual).
func itemResidual(res Image, b, c0, hw int) []float32 {
	if res.Data == nil {
		return nil
	}
	return res.Data[b*res.BatchStride+c0*hw:]
}

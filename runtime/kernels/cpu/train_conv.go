package cpu

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// This file holds the convolution kernels of training (runtime/train). They work on
// channel-major batches: a batch of N images of C channels and H x W pixels stores pixel (y, x)
// of channel c of image n at
//
//	c*stride + n*H*W + y*W + x,   stride >= N*H*W
//
// ("CNHW"). Each channel of the whole batch is then one contiguous row, which suits training:
// a 1x1 convolution of the batch is a single GEMM with N*H*W columns, a channel slice of a dense
// block's buffer (DenseNet's concatenation prefix) is one contiguous range, per-channel batch
// statistics read contiguous memory, and the weight gradient is a GEMM whose depth runs over the
// whole batch.

// Prologue is a per-input-channel map applied to a convolution's input before the product:
//
//	pre_c(x) = x*Scale[c] + Shift[c]   (when Scale is not nil), then max(., 0) when ReLU
//
// Training uses it for the BatchNormalization-ReLU that precedes a convolution: the forward pass
// reads the normalized input without storing it, and the weight gradient recomputes it.
// Zero padding pads pre(x), not x.
type Prologue struct {
	Scale, Shift []float32
	ReLU         bool
}

// ConvCMSpec is the geometry of a ConvCM: a group-1 2-D convolution of a channel-major batch of
// N images, Cin x H x W each, into Cout channels. Strides and dilations of 0 mean 1.
//
// XStride and YStride are the distances between consecutive channels of the input and of the
// output (0: dense, N*H*W and N*OH*OW). Training pads them so that channel rows do not all fall
// into the same cache sets, which they do when N*H*W is a large power of two.
type ConvCMSpec struct {
	N, Cin, H, W           int
	Cout, KH, KW           int
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
	DilationH, DilationW   int
	XStride, YStride       int
}

// ConvCM computes, for a fixed geometry, the three products a training step needs of one
// convolution Y = conv(pre(X), W) + bias on channel-major batches (weights W [Cout, Cin, KH, KW]):
//
//	forward:  Y[m,n,oy,ox]  = bias[m] + sum_{c,kh,kw} W[m,c,kh,kw] * P[c,n,iy,ix]
//	input:    dX[c,n,iy,ix] = sum_{m,kh,kw} W[m,c,kh,kw] * dY[m,n,oy,ox]
//	weights:  dW[m,c,kh,kw] = sum_{n,oy,ox} dY[m,n,oy,ox] * P[c,n,iy,ix]
//
// with iy = oy*StrideH + kh*DilationH - PadT, ix = ox*StrideW + kw*DilationW - PadL, and
// P = pre(X) inside the image, 0 in the padding. Every product runs on the GEMM of
// runtime/kernels/cpu/gemm:
//
//   - forward: C = Y [Cout x N*OH*OW], A = W reordered tap-major (A[m][tap*Cin+c]), B gathered
//     from X by the packer: channel rows for 1x1 convolutions (read in place when there is no
//     prologue), one contiguous run per output row and tap for stride 1, a scalar gather
//     otherwise;
//   - input gradient, stride 1: the same forward machinery on dY with the flipped, transposed
//     weights W'[c][m][kh][kw] = W[m][c][KH-1-kh][KW-1-kw] and pads (K-1)*dilation - pad;
//     strided: C = dcol = W^T dY, then col2im;
//   - weight gradient: C = dW (tap-major columns), A = dY (its channel rows). For 1x1
//     convolutions B[q][c] = pre(X)[c][q] is transposed from X's rows straight into the GEMM's
//     panels; otherwise B is read in place from a zero-padded pixel-major ("NHWC") copy of
//     pre(X) that WeightGrad writes into the caller's staging buffer: for a kernel row kh, the
//     KW*Cin columns (kw, c) of GEMM row q = (n, oy, ox) are one contiguous run of that copy.
//
// A ConvCM keeps offset tables and small buffers, and working memory it may share with other
// ConvCMs (ConvShared); it is not safe for concurrent use.
type ConvCM struct {
	spec       ConvCMSpec
	code       *kernels // the level its kernels run at (active; tests pass others)
	OH, OW     int      // output size
	taps       int
	np, npOut  int     // N*H*W and N*OH*OW
	xs, ys     int     // channel strides of the input and the output
	hp, wp     int     // padded input size (staging)
	offsCh     []int32 // forward B rows: c*xs
	bwd        *ConvCM // stride 1: the convolution that computes dX, nil when strided
	sh         *ConvShared
	job        gemm.Job
	wg         Group
	gather     gatherPanel
	taps2      cmTapPanel
	rows       cmRowsPanel
	stageTask  stageTask
	col2imTask col2imTask
	trans      transPanel
}

// ConvShared is the working memory a ConvCM needs only while one of its methods runs: the
// weights reordered and packed for the GEMM, the tap-major weight gradient, and the output
// gradient and staging offsets of a chunk of output pixels. ConvCMs that never run at the same
// time, such as the layers of a network trained one after the other, can share one (see Share):
// the memory is then the largest layer's instead of the sum over the layers, and a training step
// allocates none of it. A ConvCM without one makes its own.
type ConvShared struct {
	wt, dwt  []float32
	a, chunk *gemm.PackedA // packed weights; a chunk of the output gradient
	offs     []int32
}

// Share makes c use s as its working memory. The ConvCMs that share s must not run
// concurrently.
func (c *ConvCM) Share(s *ConvShared) { c.sh = s }

// work returns c's working memory.
func (c *ConvCM) work() *ConvShared {
	if c.sh == nil {
		c.sh = &ConvShared{}
	}
	return c.sh
}

// NewConvCM checks spec and prepares the offset tables.
func NewConvCM(spec ConvCMSpec) (*ConvCM, error) { return newConvCM(spec, true, active) }

// newConvCM builds a ConvCM whose kernels are code's (tests compare levels); without training it
// serves only Forward (the transposed convolution inside InputGrad).
func newConvCM(spec ConvCMSpec, training bool, code *kernels) (*ConvCM, error) {
	s := spec
	for _, v := range []*int{&s.StrideH, &s.StrideW, &s.DilationH, &s.DilationW} {
		if *v == 0 {
			*v = 1
		}
	}
	switch {
	case s.N <= 0 || s.Cin <= 0 || s.H <= 0 || s.W <= 0 || s.Cout <= 0 || s.KH <= 0 || s.KW <= 0:
		return nil, fmt.Errorf("%w: conv %dx%dx%dx%d -> %d channels, kernel %dx%d", ops.ErrShape, s.N, s.Cin, s.H, s.W, s.Cout, s.KH, s.KW)
	case s.StrideH < 0 || s.StrideW < 0 || s.DilationH < 0 || s.DilationW < 0:
		return nil, fmt.Errorf("%w: conv strides %dx%d, dilations %dx%d", ops.ErrAttr, s.StrideH, s.StrideW, s.DilationH, s.DilationW)
	case s.PadT < 0 || s.PadL < 0 || s.PadB < 0 || s.PadR < 0:
		return nil, fmt.Errorf("%w: conv pads %d,%d,%d,%d", ops.ErrAttr, s.PadT, s.PadL, s.PadB, s.PadR)
	}
	c := &ConvCM{spec: s, code: code, taps: s.KH * s.KW}
	c.hp, c.wp = s.H+s.PadT+s.PadB, s.W+s.PadL+s.PadR
	extH, extW := (s.KH-1)*s.DilationH+1, (s.KW-1)*s.DilationW+1
	if c.hp < extH || c.wp < extW {
		return nil, fmt.Errorf("%w: conv kernel %dx%d (dilated %dx%d) is larger than the padded %dx%d input", ops.ErrShape, s.KH, s.KW, extH, extW, c.hp, c.wp)
	}
	c.OH, c.OW = (c.hp-extH)/s.StrideH+1, (c.wp-extW)/s.StrideW+1
	c.np, c.npOut = s.N*s.H*s.W, s.N*c.OH*c.OW
	c.xs, c.ys = s.XStride, s.YStride
	if c.xs == 0 {
		c.xs = c.np
	}
	if c.ys == 0 {
		c.ys = c.npOut
	}
	if c.xs < c.np || c.ys < c.npOut {
		return nil, fmt.Errorf("%w: conv channel strides %d, %d are below the channel sizes %d, %d", ops.ErrShape, c.xs, c.ys, c.np, c.npOut)
	}
	if int64(c.hp)*int64(c.wp)*int64(s.N)*int64(s.Cin) >= 1<<31 || int64(c.xs)*int64(s.Cin) >= 1<<31 || int64(c.ys)*int64(s.Cout) >= 1<<31 {
		return nil, fmt.Errorf("%w: conv batch too large for 32-bit offsets", ops.ErrShape)
	}
	c.offsCh = make([]int32, s.Cin)
	for i := range c.offsCh {
		c.offsCh[i] = int32(i * c.xs)
	}
	if !training {
		return c, nil
	}
	if s.StrideH == 1 && s.StrideW == 1 {
		pt, pl := (s.KH-1)*s.DilationH-s.PadT, (s.KW-1)*s.DilationW-s.PadL
		pb, pr := (s.KH-1)*s.DilationH-s.PadB, (s.KW-1)*s.DilationW-s.PadR
		if pt >= 0 && pl >= 0 && pb >= 0 && pr >= 0 {
			b, err := newConvCM(ConvCMSpec{N: s.N, Cin: s.Cout, H: c.OH, W: c.OW, Cout: s.Cin, KH: s.KH, KW: s.KW,
				PadT: pt, PadL: pl, PadB: pb, PadR: pr, DilationH: s.DilationH, DilationW: s.DilationW,
				XStride: c.ys, YStride: c.xs}, false, code)
			if err != nil {
				return nil, err
			}
			if b.OH != s.H || b.OW != s.W {
				return nil, fmt.Errorf("cpu: conv input-gradient geometry %dx%d, want %dx%d", b.OH, b.OW, s.H, s.W)
			}
			c.bwd = b
		}
	}
	return c, nil
}

// Spec returns the geometry (strides and dilations of 0 replaced by 1).
func (c *ConvCM) Spec() ConvCMSpec { return c.spec }

// xLen and yLen are the floats an input and an output span.
func (c *ConvCM) xLen() int { return (c.spec.Cin-1)*c.xs + c.np }
func (c *ConvCM) yLen() int { return (c.spec.Cout-1)*c.ys + c.npOut }

// pointwise reports whether the convolution is 1x1, stride 1, unpadded.
func (c *ConvCM) pointwise() bool {
	s := &c.spec
	return s.KH == 1 && s.KW == 1 && s.StrideH == 1 && s.StrideW == 1 && s.PadT == 0 && s.PadL == 0 && s.PadB == 0 && s.PadR == 0
}

// StagingSize returns the floats of the staging buffer WeightGrad needs: the zero-padded
// pixel-major copy of pre(X); 0 for 1x1 convolutions, whose weight gradient reads X directly.
func (c *ConvCM) StagingSize() int {
	if c.pointwise() {
		return 0
	}
	return c.spec.N * c.hp * c.wp * c.spec.Cin
}

// stagedChunk is the most GEMM rows (output pixels) one weight-gradient product over the staging
// copy takes: about 2048 pixels of a few dozen channels stay in L2 while all the column panels
// of the product read them.
const stagedChunk = 2048

// wgradChunk is the most GEMM rows (output pixels) one weight-gradient product takes; larger
// batches are summed chunk by chunk, which bounds the scratch and the packed copy of dY.
const wgradChunk = 16384

// ScratchSize returns the floats of scratch any of the three products needs on threads threads.
func (c *ConvCM) ScratchSize(threads int) int {
	threads = max(threads, 1)
	s := &c.spec
	n := gemm.ScratchSize(c.taps*s.Cin, c.npOut, threads)
	n = max(n, gemm.ScratchSize(min(c.npOut, wgradChunk), s.KW*s.Cin, threads))
	if c.bwd != nil {
		n = max(n, c.bwd.ScratchSize(threads))
	} else {
		// Strided input gradient: one item's dcol, then the GEMM scratch.
		item := c.OH * c.OW
		n = max(n, c.taps*s.Cin*item+gemm.ScratchSize(s.Cout, item, threads))
	}
	return n
}

func (c *ConvCM) checkPrologue(pre *Prologue) error {
	if pre == nil || pre.Scale == nil {
		if pre != nil && pre.Shift != nil {
			return fmt.Errorf("%w: conv prologue has a shift without a scale", ops.ErrAttr)
		}
		return nil
	}
	if len(pre.Scale) < c.spec.Cin || len(pre.Shift) < c.spec.Cin {
		return fmt.Errorf("%w: conv prologue has %d scales and %d shifts for %d channels", ops.ErrShape, len(pre.Scale), len(pre.Shift), c.spec.Cin)
	}
	return nil
}

// packWeights returns W [Cout, Cin, KH, KW] packed as the GEMM's A, tap-major:
// A[m][tap*Cin+c] = W[m][c][tap].
// The packed matrix lives in c's working memory (ConvShared) until the next packing.
func (c *ConvCM) packWeights(w []float32) *gemm.PackedA {
	s := &c.spec
	sh := c.work()
	k := c.taps * s.Cin
	if c.taps == 1 {
		sh.a = gemm.PackAInto(c.code.gemm, sh.a, s.Cout, k, w, k)
		return sh.a
	}
	sh.wt = growF32(sh.wt, s.Cout*k)
	for m := 0; m < s.Cout; m++ {
		for ci := 0; ci < s.Cin; ci++ {
			for t := 0; t < c.taps; t++ {
				sh.wt[m*k+t*s.Cin+ci] = w[(m*s.Cin+ci)*c.taps+t]
			}
		}
	}
	sh.a = gemm.PackAInto(c.code.gemm, sh.a, s.Cout, k, sh.wt, k)
	return sh.a
}

// Forward computes Y (+)= conv(pre(X), W) + bias over the batch: x is [Cin][N][H][W] (channels
// XStride apart), y is [Cout][N][OH][OW] (channels YStride apart), w is [Cout][Cin][KH][KW]; pre and bias may be nil. With acc the result is
// added to y. scratch must hold ScratchSize(workers threads) floats.
func (c *ConvCM) Forward(workers *Workers, x []float32, pre *Prologue, w, bias, y []float32, acc bool, scratch []float32) error {
	s := &c.spec
	if len(x) < c.xLen() || len(y) < c.yLen() || len(w) < s.Cout*s.Cin*c.taps || (bias != nil && len(bias) < s.Cout) {
		return fmt.Errorf("%w: conv forward: x %d, y %d, w %d floats for %+v", ops.ErrShape, len(x), len(y), len(w), *s)
	}
	if err := c.checkPrologue(pre); err != nil {
		return err
	}
	return c.forward(workers, x, pre, c.packWeights(w), bias, y, acc, scratch)
}

// forward runs the forward product with the weights already packed tap-major.
func (c *ConvCM) forward(workers *Workers, x []float32, pre *Prologue, a *gemm.PackedA, bias, y []float32, acc bool, scratch []float32) error {
	s := &c.spec
	var scale, shift []float32
	relu := false
	if pre != nil {
		scale, shift, relu = pre.Scale, pre.Shift, pre.ReLU
	}
	var b gemm.BPanel
	switch {
	case c.pointwise():
		if err := c.rows.rows.Init(c.code.gemm, x, c.offsCh, scale, shift, relu); err != nil {
			return fmt.Errorf("cpu: conv: %w", err)
		}
		b = &c.rows
	case s.StrideH == 1 && s.StrideW == 1:
		if err := c.taps2.rows.Init(c.code.gemm, x, c.offsCh, scale, shift, relu); err != nil {
			return fmt.Errorf("cpu: conv: %w", err)
		}
		c.taps2.c = c
		b = &c.taps2
	default:
		c.gather = gatherPanel{c: c, x: x, scale: scale, shift: shift, relu: relu}
		b = &c.gather
	}
	threads := 1
	if workers != nil {
		threads = workers.Threads()
	}
	ep := gemm.Epilogue{Bias: bias, Accumulate: acc}
	if err := c.job.Init(c.code.gemm, a, b, c.npOut, y, c.ys, ep, scratch, threads); err != nil {
		return fmt.Errorf("cpu: conv forward: %w", err)
	}
	parallel(workers, &c.job, c.job.Slots(), 1, &c.wg)
	return nil
}

// InputGrad computes dX (+)= the gradient of the input: dy is [Cout][N][OH][OW], dx is
// [Cin][N][H][W]. With acc the gradient is added to dx.
func (c *ConvCM) InputGrad(workers *Workers, dy, w, dx []float32, acc bool, scratch []float32) error {
	s := &c.spec
	if len(dy) < c.yLen() || len(dx) < c.xLen() || len(w) < s.Cout*s.Cin*c.taps {
		return fmt.Errorf("%w: conv input gradient: dy %d, dx %d, w %d floats for %+v", ops.ErrShape, len(dy), len(dx), len(w), *s)
	}
	if c.bwd != nil {
		return c.inputGradChannels(workers, dy, w, dx, 0, s.Cin, acc, scratch)
	}
	sh := c.work()
	// Strided: per batch item, dcol [Cin*taps][OH*OW] = W^T dY_n, then col2im into dX.
	k := c.taps * s.Cin
	sh.wt = growF32(sh.wt, k*s.Cout)
	for m := 0; m < s.Cout; m++ {
		for r := 0; r < k; r++ {
			sh.wt[r*s.Cout+m] = w[m*k+r] // row r = ci*taps + t
		}
	}
	sh.a = gemm.PackAInto(c.code.gemm, sh.a, k, s.Cout, sh.wt, s.Cout)
	a := sh.a
	item := c.OH * c.OW
	dcol := scratch[:k*item]
	gs := scratch[k*item:]
	if !acc {
		zeroRange(workers, dx[:c.xLen()], &c.wg)
	}
	threads := 1
	if workers != nil {
		threads = workers.Threads()
	}
	if cap(sh.offs) < s.Cout {
		sh.offs = make([]int32, s.Cout)
	}
	offs := sh.offs[:s.Cout]
	for n := 0; n < s.N; n++ {
		for m := range offs {
			offs[m] = int32(m*c.ys + n*item)
		}
		if err := c.rows.rows.Init(c.code.gemm, dy, offs, nil, nil, false); err != nil {
			return fmt.Errorf("cpu: conv: %w", err)
		}
		if err := c.job.Init(c.code.gemm, a, &c.rows, item, dcol, item, gemm.Epilogue{}, gs, threads); err != nil {
			return fmt.Errorf("cpu: conv input gradient: %w", err)
		}
		parallel(workers, &c.job, c.job.Slots(), 1, &c.wg)
		c.col2imTask = col2imTask{c: c, dcol: dcol, dx: dx, n: n}
		parallel(workers, &c.col2imTask, s.Cin, 1, &c.wg)
	}
	return nil
}

// SplitsInputGrad reports whether InputGradChannels can compute the input gradient a range of
// channels at a time: for stride-1 convolutions, whose input gradient is a convolution too.
func (c *ConvCM) SplitsInputGrad() bool { return c.bwd != nil }

// InputGradChannels computes input channels c0 .. c1-1 of dX (+)= the gradient of the input (see
// InputGrad) into dx, which holds them from its start, XStride apart: dx[(c-c0)*XStride + ...].
// Each channel is a row of its own in the product, so the values are those of InputGrad bit for
// bit. A caller that consumes the gradient channel range by channel range, such as the backward
// pass of a BatchNormalization before the convolution, needs memory for one range only.
// Strided convolutions (SplitsInputGrad false) are not supported.
func (c *ConvCM) InputGradChannels(workers *Workers, dy, w, dx []float32, c0, c1 int, acc bool, scratch []float32) error {
	s := &c.spec
	if c.bwd == nil {
		return fmt.Errorf("%w: conv input gradient by channels of a strided convolution", ops.ErrUnsupportedOp)
	}
	if c0 < 0 || c1 > s.Cin || c0 >= c1 {
		return fmt.Errorf("%w: conv input gradient of channels [%d, %d) of %d", ops.ErrShape, c0, c1, s.Cin)
	}
	if len(dy) < c.yLen() || len(dx) < (c1-c0-1)*c.xs+c.np || len(w) < s.Cout*s.Cin*c.taps {
		return fmt.Errorf("%w: conv input gradient: dy %d, dx %d, w %d floats for channels [%d, %d) of %+v", ops.ErrShape, len(dy), len(dx), len(w), c0, c1, *s)
	}
	return c.inputGradChannels(workers, dy, w, dx, c0, c1, acc, scratch)
}

// inputGradChannels computes channels [c0, c1) of a stride-1 input gradient as the forward
// product of the transposed convolution c.bwd, whose A rows are W'[c][m][tap'] =
// W[m][c][taps-1-tap'], packed tap-major.
func (c *ConvCM) inputGradChannels(workers *Workers, dy, w, dx []float32, c0, c1 int, acc bool, scratch []float32) error {
	s := &c.spec
	sh := c.work()
	k := c.taps * s.Cout
	sh.wt = growF32(sh.wt, (c1-c0)*k)
	for ci := c0; ci < c1; ci++ {
		row := sh.wt[(ci-c0)*k : (ci-c0+1)*k]
		for m := 0; m < s.Cout; m++ {
			for t := 0; t < c.taps; t++ {
				row[t*s.Cout+m] = w[(m*s.Cin+ci)*c.taps+(c.taps-1-t)]
			}
		}
	}
	sh.a = gemm.PackAInto(c.code.gemm, sh.a, c1-c0, k, sh.wt, k)
	return c.bwd.forward(workers, dy, nil, sh.a, nil, dx, acc, scratch)
}

// GradA is the output gradient dY of a ConvCM packed as the A operand of its weight-gradient
// products, one packed matrix per chunk of output pixels.
type GradA struct {
	c      *ConvCM
	chunks []*gemm.PackedA
}

// chunk returns the output pixels per weight-gradient product.
func (c *ConvCM) chunk() int {
	if c.pointwise() {
		return wgradChunk
	}
	return stagedChunk
}

// PackGrad packs dy ([Cout][N][OH][OW], channels YStride apart) for WeightGrad. It only reads dy
// and c's geometry, so it may run on another goroutine while c computes the input gradient: the
// packing is a serial copy, and overlapping it with a parallel product keeps every thread busy.
func (c *ConvCM) PackGrad(dy []float32) (*GradA, error) { return c.PackGradInto(nil, dy) }

// PackGradInto is PackGrad reusing the memory of reuse (nil, or a GradA of any ConvCM that is no
// longer needed): a backward pass packs one layer's gradient at a time, so one GradA can serve
// every layer and, once it has grown to the largest layer's chunks, the steps allocate nothing
// for it. Chunk i reuses the i-th chunk reuse ever held, also when the last layer packed into it
// had fewer chunks: layers with many small chunks (staged) and few large ones (1x1) alternate.
func (c *ConvCM) PackGradInto(reuse *GradA, dy []float32) (*GradA, error) {
	if len(dy) < c.yLen() {
		return nil, fmt.Errorf("%w: conv output gradient has %d floats, want %d", ops.ErrShape, len(dy), c.yLen())
	}
	g := reuse
	if g == nil {
		g = &GradA{}
	}
	g.c = c
	chunk := c.chunk()
	i := 0
	for q0 := 0; q0 < c.npOut; q0 += chunk {
		if i < cap(g.chunks) {
			g.chunks = g.chunks[:i+1] // the slots past len keep their matrices for reuse
		} else {
			g.chunks = append(g.chunks, nil)
		}
		g.chunks[i] = gemm.PackAInto(c.code.gemm, g.chunks[i], c.spec.Cout, min(chunk, c.npOut-q0), dy[q0:], c.ys)
		i++
	}
	g.chunks = g.chunks[:i]
	return g, nil
}

// WeightGrad computes dW (+)= the gradient of the weights [Cout][Cin][KH][KW] from the input x
// (with its prologue, as in Forward) and dy, packed by PackGrad (nil: WeightGrad packs dy itself,
// one chunk of output pixels at a time, into working memory the size of a chunk; the result is
// the same). stage must hold StagingSize() floats; it receives the padded pixel-major copy of
// pre(X).
func (c *ConvCM) WeightGrad(workers *Workers, x []float32, pre *Prologue, dy []float32, ga *GradA, dw []float32, acc bool, stage, scratch []float32) error {
	s := &c.spec
	if len(x) < c.xLen() || len(dw) < s.Cout*s.Cin*c.taps || len(stage) < c.StagingSize() || (ga != nil && ga.c != c) || (ga == nil && len(dy) < c.yLen()) {
		return fmt.Errorf("%w: conv weight gradient: x %d, dy %d, dw %d, stage %d floats for %+v", ops.ErrShape, len(x), len(dy), len(dw), len(stage), *s)
	}
	if err := c.checkPrologue(pre); err != nil {
		return err
	}
	threads := 1
	if workers != nil {
		threads = workers.Threads()
	}
	if c.pointwise() {
		return c.weightGradPointwise(workers, x, pre, dy, ga, dw, acc, scratch, threads)
	}
	c.stage(workers, x, pre, stage)
	k := c.taps * s.Cin
	sh := c.work()
	sh.dwt = growF32(sh.dwt, s.Cout*k)
	// Taps are grouped per kernel row when the columns (kw, c) of a row are contiguous in the
	// staging copy (dilation 1 along W), else one GEMM per tap.
	cols, group := s.Cin, 1
	if s.DilationW == 1 {
		cols, group = s.KW*s.Cin, s.KW
	}
	chunk := c.chunk()
	for i, q0 := 0, 0; q0 < c.npOut; i, q0 = i+1, q0+chunk {
		qn := min(chunk, c.npOut-q0)
		a := c.gradChunk(ga, dy, i, q0, qn)
		offs := c.pixelOffsets(q0, qn)
		for t := 0; t < c.taps; t += group {
			kh, kw := t/s.KW, t%s.KW
			shift := ((kh*s.DilationH)*c.wp + kw*s.DilationW) * s.Cin
			c.rows.rows = gemm.Rows{}
			if err := c.rows.rows.Init(c.code.gemm, stage[shift:], offs, nil, nil, false); err != nil {
				return fmt.Errorf("cpu: conv: %w", err)
			}
			ep := gemm.Epilogue{Accumulate: q0 > 0}
			if err := c.job.Init(c.code.gemm, a, &c.rows, cols, sh.dwt[t*s.Cin:], k, ep, scratch, threads); err != nil {
				return fmt.Errorf("cpu: conv weight gradient: %w", err)
			}
			parallel(workers, &c.job, c.job.Slots(), 1, &c.wg)
		}
	}
	for m := 0; m < s.Cout; m++ {
		for ci := 0; ci < s.Cin; ci++ {
			dst := dw[(m*s.Cin+ci)*c.taps:][:c.taps]
			for t := range dst {
				v := sh.dwt[m*k+t*s.Cin+ci]
				if acc {
					v += dst[t]
				}
				dst[t] = v
			}
		}
	}
	return nil
}

// gradChunk returns chunk i of the output gradient, pixels q0 .. q0+qn-1, packed as the A of a
// weight-gradient product: ga's when there is one, else dy's packed now into c's working memory
// (PackGrad packs the same chunks the same way).
func (c *ConvCM) gradChunk(ga *GradA, dy []float32, i, q0, qn int) *gemm.PackedA {
	if ga != nil {
		return ga.chunks[i]
	}
	sh := c.work()
	sh.chunk = gemm.PackAInto(c.code.gemm, sh.chunk, c.spec.Cout, qn, dy[q0:], c.ys)
	return sh.chunk
}

// pixelOffsets returns, in c's working memory, the offsets in the staging copy of the top-left
// taps of output pixels q0 .. q0+qn-1, the rows of a weight-gradient product: pixel
// q = (n, oy, ox) starts at ((n*hp + oy*StrideH)*wp + ox*StrideW)*Cin. They are computed per
// chunk, a few thousand integers next to a product of as many rows, rather than kept per layer.
func (c *ConvCM) pixelOffsets(q0, qn int) []int32 {
	sh := c.work()
	if cap(sh.offs) < qn {
		sh.offs = make([]int32, qn)
	}
	offs := sh.offs[:qn]
	s := &c.spec
	plane := c.OH * c.OW
	n, r := q0/plane, q0%plane
	oy, ox := r/c.OW, r%c.OW
	for j := range offs {
		offs[j] = int32(((n*c.hp+oy*s.StrideH)*c.wp + ox*s.StrideW) * s.Cin)
		if ox++; ox == c.OW {
			ox = 0
			if oy++; oy == c.OH {
				oy = 0
				n++
			}
		}
	}
	return offs
}

// weightGradPointwise computes the weight gradient of a 1x1 convolution, dW = dY * pre(X)^T,
// with the transposing packer: B[q][c] = pre_c(X[c][q]) is gathered from X's channel rows
// straight into the GEMM's panels, so no staging copy is written.
func (c *ConvCM) weightGradPointwise(workers *Workers, x []float32, pre *Prologue, dy []float32, ga *GradA, dw []float32, acc bool, scratch []float32, threads int) error {
	s := &c.spec
	c.trans = transPanel{code: c.code, x: x, np: c.xs, cin: s.Cin}
	if pre != nil {
		c.trans.scale, c.trans.shift, c.trans.relu = pre.Scale, pre.Shift, pre.ReLU
	}
	for i, q0 := 0, 0; q0 < c.npOut; i, q0 = i+1, q0+wgradChunk {
		a := c.gradChunk(ga, dy, i, q0, min(wgradChunk, c.npOut-q0))
		c.trans.q0 = q0
		ep := gemm.Epilogue{Accumulate: acc || q0 > 0}
		if err := c.job.Init(c.code.gemm, a, &c.trans, s.Cin, dw, s.Cin, ep, scratch, threads); err != nil {
			return fmt.Errorf("cpu: conv weight gradient: %w", err)
		}
		parallel(workers, &c.job, c.job.Slots(), 1, &c.wg)
	}
	return nil
}

// transPanel is the B of a 1x1 weight gradient: B[k][col] = pre_col(X[col][q0 + k]), i.e. the
// transpose of X's channel rows, packed 8 channels at a time.
type transPanel struct {
	code         *kernels
	x            []float32
	np, cin, q0  int
	scale, shift []float32
	relu         bool
}

// PackB implements gemm.BPanel.
func (p *transPanel) PackB(dst []float32, width, k0, k1, n0, nr int) {
	n := k1 - k0
	var sc, sh [stageBlock]float32
	for j := 0; j < nr; j += stageBlock {
		cnt := min(stageBlock, nr-j)
		for i := range stageBlock {
			sc[i], sh[i] = 1, 0
			if i < cnt && p.scale != nil {
				sc[i], sh[i] = p.scale[n0+j+i], p.shift[n0+j+i]
			}
		}
		src := p.x[(n0+j)*p.np+p.q0+k0:]
		p.code.stage(dst[j:], width, src, p.np, cnt, n, sc, sh, p.relu)
		if cnt == stageBlock {
			continue
		}
		for k := 0; k < n; k++ {
			clear(dst[k*width+j+cnt : k*width+j+stageBlock])
		}
	}
	for j := (nr + stageBlock - 1) / stageBlock * stageBlock; j < width; j += stageBlock {
		for k := 0; k < n; k++ {
			clear(dst[k*width+j:][:stageBlock])
		}
	}
}

// stage writes stage[((n*hp + PadT + y)*wp + PadL + x)*Cin + c] = pre_c(x[c][n][y][x]) and zeros
// in the padding ring.
func (c *ConvCM) stage(workers *Workers, x []float32, pre *Prologue, stage []float32) {
	c.stageTask = stageTask{c: c, x: x, stage: stage}
	if pre != nil {
		c.stageTask.scale, c.stageTask.shift, c.stageTask.relu = pre.Scale, pre.Shift, pre.ReLU
	}
	parallel(workers, &c.stageTask, c.spec.N*c.hp, 4, &c.wg)
}

// stageTask fills padded rows [lo, hi) (row r = n*hp + py) of the staging copy.
type stageTask struct {
	c            *ConvCM
	x, stage     []float32
	scale, shift []float32
	relu         bool
}

// stageBlock is the number of channels the transposition handles at once: each pixel then
// receives stageBlock consecutive floats.
const stageBlock = 8

// Do implements Task.
func (t *stageTask) Do(lo, hi int) {
	c := t.c
	s := &c.spec
	cin, hw := s.Cin, s.H*s.W
	rowLen := c.wp * cin
	for r := lo; r < hi; r++ {
		n, py := r/c.hp, r%c.hp
		dst := t.stage[r*rowLen : (r+1)*rowLen]
		y := py - s.PadT
		if y < 0 || y >= s.H {
			clear(dst)
			continue
		}
		clear(dst[:s.PadL*cin])
		clear(dst[(s.PadL+s.W)*cin:])
		body := dst[s.PadL*cin : (s.PadL+s.W)*cin]
		base := n*hw + y*s.W
		c0 := 0
		var sc, sh [stageBlock]float32
		for ; c0+stageBlock <= cin; c0 += stageBlock {
			if t.scale != nil {
				copy(sc[:], t.scale[c0:c0+stageBlock])
				copy(sh[:], t.shift[c0:c0+stageBlock])
			} else {
				sc, sh = [stageBlock]float32{1, 1, 1, 1, 1, 1, 1, 1}, [stageBlock]float32{}
			}
			c.code.stage(body[c0:], cin, t.x[c0*c.xs+base:], c.xs, stageBlock, s.W, sc, sh, t.relu)
		}
		if c0 < cin {
			for i := range sc {
				sc[i], sh[i] = 1, 0
				if c0+i < cin && t.scale != nil {
					sc[i], sh[i] = t.scale[c0+i], t.shift[c0+i]
				}
			}
			c.code.stage(body[c0:], cin, t.x[c0*c.xs+base:], c.xs, cin-c0, s.W, sc, sh, t.relu)
		}
	}
}

// col2imTask adds one batch item's dcol [Cin*taps][OH*OW] into dX, channel by channel.
type col2imTask struct {
	c        *ConvCM
	dcol, dx []float32
	n        int
}

// Do implements Task over input channels [lo, hi).
func (t *col2imTask) Do(lo, hi int) {
	c := t.c
	s := &c.spec
	item := c.OH * c.OW
	for ci := lo; ci < hi; ci++ {
		plane := t.dx[ci*c.xs+t.n*s.H*s.W:][:s.H*s.W]
		for tap := 0; tap < c.taps; tap++ {
			kh, kw := tap/s.KW, tap%s.KW
			row := t.dcol[(ci*c.taps+tap)*item:][:item]
			for oy := 0; oy < c.OH; oy++ {
				iy := oy*s.StrideH + kh*s.DilationH - s.PadT
				if iy < 0 || iy >= s.H {
					continue
				}
				for ox := 0; ox < c.OW; ox++ {
					ix := ox*s.StrideW + kw*s.DilationW - s.PadL
					if ix < 0 || ix >= s.W {
						continue
					}
					plane[iy*s.W+ix] += row[oy*c.OW+ox]
				}
			}
		}
	}
}

// cmRowsPanel is the BPanel of 1x1 products: B[k][col] = pre_k(Src[Offs[k] + col]). Without a
// prologue the micro-kernel reads the rows in place (gemm.DirectB).
type cmRowsPanel struct {
	rows gemm.Rows
}

// PackB implements gemm.BPanel.
func (p *cmRowsPanel) PackB(dst []float32, width, k0, k1, n0, nr int) {
	p.rows.Pack(dst, k0, k1, []gemm.Segment{{Lo: 0, Hi: nr, Base: n0}})
}

// DirectRows lets the GEMM read B in place when the rows have no prologue.
func (p *cmRowsPanel) DirectRows() *gemm.Rows { return &p.rows }

// cmTapPanel is the BPanel of stride-1 convolutions: B row k = tap*Cin + c, column
// q = (n, oy, ox) is pre_c(X[c, n, oy + kh*DilationH - PadT, ox + kw*DilationW - PadL]) (0 outside
// the image). For each tap the panel's lanes split into one run per output row they cover,
// clipped to the columns whose input pixel exists.
type cmTapPanel struct {
	c    *ConvCM
	rows gemm.Rows // Src: x; Offs[c] = c*N*H*W; the prologue
}

// PackB implements gemm.BPanel.
func (p *cmTapPanel) PackB(dst []float32, width, k0, k1, n0, nr int) {
	c := p.c
	s := &c.spec
	cin := s.Cin
	plane := c.OH * c.OW
	hw := s.H * s.W
	for k := k0; k < k1; {
		tap, c0 := k/cin, k%cin
		c1 := min(cin, c0+k1-k)
		dy := tap/s.KW*s.DilationH - s.PadT
		dx := tap%s.KW*s.DilationW - s.PadL
		var segs [gemm.MaxNR]gemm.Segment
		ns := 0
		for lane := 0; lane < nr; {
			q := n0 + lane
			n, r := q/plane, q%plane
			oy, ox := r/c.OW, r%c.OW
			end := min(nr, lane+c.OW-ox) // lanes [lane, end) are output row oy of image n from column ox
			if iy := oy + dy; iy >= 0 && iy < s.H {
				lo := max(lane, lane-ox-dx)
				hi := min(end, lane+s.W-ox-dx)
				if lo < hi {
					segs[ns] = gemm.Segment{Lo: lo, Hi: hi, Base: n*hw + iy*s.W + ox + dx - lane}
					ns++
				}
			}
			lane = end
		}
		p.rows.Pack(dst[(k-k0)*width:], c0, c1, segs[:ns])
		k += c1 - c0
	}
}

// gatherPanel is the BPanel of strided convolutions: the same B as cmTapPanel, gathered one
// element at a time.
type gatherPanel struct {
	c            *ConvCM
	x            []float32
	scale, shift []float32
	relu         bool
}

// PackB implements gemm.BPanel.
func (p *gatherPanel) PackB(dst []float32, width, k0, k1, n0, nr int) {
	c := p.c
	s := &c.spec
	plane := c.OH * c.OW
	hw := s.H * s.W
	for k := k0; k < k1; k++ {
		tap, ci := k/s.Cin, k%s.Cin
		kh, kw := tap/s.KW, tap%s.KW
		row := dst[(k-k0)*width:][:width]
		src := p.x[ci*c.xs:][:c.np]
		var a, b float32 = 1, 0
		if p.scale != nil {
			a, b = p.scale[ci], p.shift[ci]
		}
		for j := range row {
			if j >= nr {
				row[j] = 0
				continue
			}
			q := n0 + j
			n, r := q/plane, q%plane
			oy, ox := r/c.OW, r%c.OW
			iy := oy*s.StrideH + kh*s.DilationH - s.PadT
			ix := ox*s.StrideW + kw*s.DilationW - s.PadL
			if iy < 0 || iy >= s.H || ix < 0 || ix >= s.W {
				row[j] = 0
				continue
			}
			v := src[n*hw+iy*s.W+ix]
			if p.scale != nil {
				v = v*a + b
			}
			if p.relu && v < 0 {
				v = 0
			}
			row[j] = v
		}
	}
}

func growF32(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// zeroTask clears a slice in parallel chunks.
type zeroTask struct{ s []float32 }

// Do implements Task over blocks of 4096 floats.
func (t *zeroTask) Do(lo, hi int) {
	clear(t.s[lo*4096 : min(len(t.s), hi*4096)])
}

func zeroRange(workers *Workers, s []float32, wg *Group) {
	t := &zeroTask{s: s}
	parallel(workers, t, (len(s)+4095)/4096, 16, wg)
}

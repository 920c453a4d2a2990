package cpu

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// ConvSpec describes a 2-D convolution with a fused prologue and epilogue:
//
//	Y[n,m,oy,ox] = post(Bias[m] + sum_{c in group(m)} sum_{kh,kw} W[m,c,kh,kw] * P[n,c,iy,ix])
//	iy = oy*StrideH + kh*DilationH - PadT,  ix = ox*StrideW + kw*DilationW - PadL
//	P[n,c,iy,ix] = pre_c(X[n,c,iy,ix]) inside X, 0 in the padding
//	pre_c(x) = x*PreScale[c] + PreShift[c] (when given), then max(., 0) when PreRelu
//	post(y) = max(y, 0) when PostRelu; Post(y + Z[n,m,oy,ox]) with a Residual Z (RunResidual),
//	          Post(y) with a Post activation; y otherwise
//
// The prologue is an unfolded BatchNormalization-ReLU that feeds the convolution (DenseNet's
// norm-relu-conv); padding is applied after it, so padded taps contribute exactly 0. Strides,
// dilations and Group of 0 mean 1.
type ConvSpec struct {
	Cin, Cout              int
	KH, KW                 int
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
	DilationH, DilationW   int
	Group                  int
	Weights                []float32 // [Cout, Cin/Group, KH, KW]
	Bias                   []float32 // [Cout] or nil
	PreScale, PreShift     []float32 // [Cin] each, or both nil
	PreRelu                bool
	PostRelu               bool
	// Residual: RunResidual's Z, of the output's shape, is added after the bias.
	Residual bool
	// Post is applied last (after the residual). A ReLU may be given here or as PostRelu.
	Post ops.Activation
}

// convPath is the algorithm a Conv2D uses.
type convPath int

const (
	// pathPointwise: 1x1, stride 1, no padding. The GEMM's B is the input itself (channel planes
	// as rows), packed with the prologue applied.
	pathPointwise convPath = iota
	// pathDirect: stride 1, any kernel, padding and dilation; GEMM row k = tap*Cg + c (the
	// weights are reordered tap-major). Run picks one of two algorithms per input size:
	//
	// Unpadded (runDirect): implicit GEMM straight from the input. Row k reads channel plane c
	// shifted by the tap, so each panel is one contiguous run per output row, and padding is the
	// lanes the packer's masks leave out.
	//
	// Padded (runPadded): each batch item is copied, prologue applied, into a zero-padded buffer
	// with rows wq = W+PadL+PadR floats apart; the GEMM runs over "flat" output columns
	// n = oy*wq + ox, for which every B row is one contiguous run of that buffer, so the
	// micro-kernel reads B in place with no packing (gemm.DirectB). The wq-OW columns per row
	// past the output width are computed and dropped when the result is copied out. This is
	// faster unless those wasted columns are many (narrow images).
	//
	// 3x3 convolutions (one group, no dilation) run in Winograd form instead where that is
	// faster (Conv2D.wino, conv_winograd.go).
	pathDirect
	// pathImplicit: strided convolutions. Each batch item is first copied, prologue applied, into
	// a zero-padded buffer split by stride phase; every kernel tap then reads a contiguous run of
	// that buffer per output row, and the GEMM's B packer gathers the im2col panel from it.
	pathImplicit
	// pathDepthwise: one input channel per group. Direct loops over the same padded buffer: a
	// GEMM would waste most of its MR-row tiles.
	pathDepthwise
)

// Conv2D is a convolution prepared for repeated runs: weights packed per group, path chosen.
// Run may be called concurrently.
type Conv2D struct {
	spec   ConvSpec
	code   *kernels // the level its kernels run at (active; tests pass others)
	cg, mg int      // input and output channels per group
	kg     int      // GEMM depth per group: cg*KH*KW
	path   convPath
	padded int             // pathDirect: 0 chooses per input size, 1 forces runPadded, -1 runDirect
	a      []*gemm.PackedA // per group (GEMM paths); see packed
	w      []float32       // weights as given (depthwise path)
	wino   *winograd       // pathDirect: the Winograd form, used where it is faster (conv_winograd.go), or nil
	post   *Unary          // the epilogue's activation past PostRelu, or nil (conv_epilogue.go)
	// dwClamp bounds the depthwise path's outputs in its kernels (ReLU, ReLU6).
	dwClamp dwClamp
	// gemmClamp: a Clip (ReLU6) without residual, which the GEMM micro-kernels apply in their
	// registers (gemm.Epilogue.Clamp) where the GEMM writes the output; the Winograd path still
	// applies post as a tail.
	gemmClamp bool
	// packA packs a on first use where a Winograd form exists: most such convolutions only ever
	// run it, and a second packed copy of their weights would be dead memory (8 MiB of
	// DenseNet-121's peak RSS).
	packA sync.Once

	mu   sync.Mutex
	free []*convState
}

// NewConv2D checks spec and packs its weights.
func NewConv2D(spec ConvSpec) (*Conv2D, error) {
	return newConv2D(spec, -1, active)
}

// newConv2D is NewConv2D with the path forced when path >= 0 (tests and benchmarks compare
// paths; the forced path must suit the spec) and the kernels of code (tests compare levels).
func newConv2D(spec ConvSpec, path convPath, code *kernels) (*Conv2D, error) {
	s := spec
	for _, v := range []*int{&s.StrideH, &s.StrideW, &s.DilationH, &s.DilationW, &s.Group} {
		if *v == 0 {
			*v = 1
		}
	}
	switch {
	case s.Cin <= 0 || s.Cout <= 0 || s.KH <= 0 || s.KW <= 0:
		return nil, fmt.Errorf("%w: conv with %d->%d channels, kernel %dx%d", ops.ErrAttr, s.Cin, s.Cout, s.KH, s.KW)
	case s.StrideH < 0 || s.StrideW < 0 || s.DilationH < 0 || s.DilationW < 0 || s.Group < 0:
		return nil, fmt.Errorf("%w: conv strides %dx%d, dilations %dx%d, group %d", ops.ErrAttr, s.StrideH, s.StrideW, s.DilationH, s.DilationW, s.Group)
	case s.PadT < 0 || s.PadL < 0 || s.PadB < 0 || s.PadR < 0:
		return nil, fmt.Errorf("%w: conv pads %d,%d,%d,%d", ops.ErrAttr, s.PadT, s.PadL, s.PadB, s.PadR)
	case s.Cin%s.Group != 0 || s.Cout%s.Group != 0:
		return nil, fmt.Errorf("%w: conv %d->%d channels not divisible by group %d", ops.ErrShape, s.Cin, s.Cout, s.Group)
	}
	if err := normalizeEpilogue(&s); err != nil {
		return nil, err
	}
	c := &Conv2D{spec: s, code: code, cg: s.Cin / s.Group, mg: s.Cout / s.Group}
	var err error
	if c.post, err = newPost(&s, code); err != nil {
		return nil, err
	}
	c.kg = c.cg * s.KH * s.KW
	if len(s.Weights) != s.Cout*c.kg {
		return nil, fmt.Errorf("%w: conv weights have %d values, want %dx%dx%dx%d", ops.ErrShape, len(s.Weights), s.Cout, c.cg, s.KH, s.KW)
	}
	if s.Bias != nil && len(s.Bias) != s.Cout {
		return nil, fmt.Errorf("%w: conv bias has %d values, want %d", ops.ErrShape, len(s.Bias), s.Cout)
	}
	if (s.PreScale == nil) != (s.PreShift == nil) {
		return nil, fmt.Errorf("%w: conv prologue needs both scale and shift", ops.ErrAttr)
	}
	if s.PreScale != nil && (len(s.PreScale) != s.Cin || len(s.PreShift) != s.Cin) {
		return nil, fmt.Errorf("%w: conv prologue has %d scales and %d shifts for %d channels", ops.ErrShape, len(s.PreScale), len(s.PreShift), s.Cin)
	}
	switch {
	case s.KH == 1 && s.KW == 1 && s.StrideH == 1 && s.StrideW == 1 && s.PadT == 0 && s.PadL == 0 && s.PadB == 0 && s.PadR == 0:
		c.path = pathPointwise
	case c.cg == 1:
		c.path = pathDepthwise
	case s.StrideH == 1 && s.StrideW == 1:
		c.path = pathDirect
	default:
		c.path = pathImplicit
	}
	c.dwClamp = dwNoClamp
	if c.path == pathDepthwise {
		// The depthwise kernels bound their outputs in registers: ReLU, and Clip (ReLU6) when
		// no residual comes before it; then there is no tail to apply.
		switch {
		case s.PostRelu:
			c.dwClamp.lo = 0
		case !s.Residual && s.Post.Kind == ops.ActClip:
			c.dwClamp, c.post = dwClamp{s.Post.Alpha, s.Post.Beta}, nil
		}
	}
	c.gemmClamp = c.path != pathDepthwise && !s.Residual && s.Post.Kind == ops.ActClip
	if path >= 0 {
		c.path = path
	}
	if c.path == pathDirect && path < 0 {
		c.wino = winogradFor(c)
	}
	if c.wino == nil {
		c.packed()
	}
	return c, nil
}

// packed returns the packed weights, packing them on first use.
func (c *Conv2D) packed() []*gemm.PackedA {
	c.packA.Do(c.pack)
	return c.a
}

// pack lays out the weights for c.path.
func (c *Conv2D) pack() {
	s := &c.spec
	switch c.path {
	case pathDepthwise:
		c.w = s.Weights
	case pathDirect:
		// A[m][tap*Cg + c] = W[m][c][tap].
		taps := s.KH * s.KW
		wt := make([]float32, len(s.Weights))
		for m := 0; m < s.Cout; m++ {
			for ci := 0; ci < c.cg; ci++ {
				for t := 0; t < taps; t++ {
					wt[m*c.kg+t*c.cg+ci] = s.Weights[(m*c.cg+ci)*taps+t]
				}
			}
		}
		c.packWeights(wt)
	default:
		c.packWeights(s.Weights)
	}
}

func (c *Conv2D) packWeights(w []float32) {
	c.a = make([]*gemm.PackedA, c.spec.Group)
	for g := range c.a {
		c.a[g] = gemm.PackA(c.code.gemm, c.mg, c.kg, w[g*c.mg*c.kg:], c.kg)
	}
}

// Algorithm names the algorithm Run takes for a batch of n h x w images on threads threads:
// "gemm-1x1" (pointwise: the input is the GEMM's B), "winograd-f2x2" or "winograd-f4x4",
// "gemm-direct" (stride 1, implicit GEMM straight from the input), "gemm-direct-padded" (stride 1
// over a zero-padded copy, B read in place), "implicit-gemm" (strided: im2col panels gathered
// from a padded, phase-split copy) or "depthwise". Like Run's own choice, it depends on the input
// size and threads as well as the spec, so a plan describes its steps with the sizes it runs.
func (c *Conv2D) Algorithm(n, h, w, threads int) string {
	threads = max(threads, 1)
	if c.useWinograd(n, h, w, threads) {
		if c.wino.pick(n, h, w, threads).m == 4 {
			return "winograd-f4x4"
		}
		return "winograd-f2x2"
	}
	switch c.path {
	case pathPointwise:
		return "gemm-1x1"
	case pathDepthwise:
		return "depthwise"
	case pathDirect:
		if c.usePadded(h, w) {
			return "gemm-direct-padded"
		}
		return "gemm-direct"
	}
	return "implicit-gemm"
}

// Level returns the instruction-set level whose code Run executes: that of the GEMM
// micro-kernels and Winograd transforms it was built with (an avx512 process runs the avx2
// ones); on the depthwise path, that of the row kernels (dwRows), which take every kernel size,
// stride and dilation, and of the channel kernels (dwChans) that run strides 1 and 2 without
// dilation where the level has them.
func (c *Conv2D) Level() isa.Level {
	return c.code.level
}

// OutputSize returns the output height and width for an h x w input (either is < 1 when the
// padded input is smaller than the dilated kernel).
func (c *Conv2D) OutputSize(h, w int) (oh, ow int) {
	s := &c.spec
	oh = (h+s.PadT+s.PadB-(s.KH-1)*s.DilationH-1)/s.StrideH + 1
	ow = (w+s.PadL+s.PadR-(s.KW-1)*s.DilationW-1)/s.StrideW + 1
	if h+s.PadT+s.PadB < (s.KH-1)*s.DilationH+1 {
		oh = 0
	}
	if w+s.PadL+s.PadR < (s.KW-1)*s.DilationW+1 {
		ow = 0
	}
	return oh, ow
}

// padGeom is the layout of the padded, phase-split copy of one batch item: channel c, phase
// (py, px) of the stride, row i, column j holds padded input pixel (py + i*StrideH,
// px + j*StrideW), i.e. X pixel (py + i*StrideH - PadT, px + j*StrideW - PadL).
type padGeom struct {
	hq, wq int // rows and columns of one phase plane
	chan_  int // floats per channel: StrideH*StrideW*hq*wq
}

func (c *Conv2D) padGeom(h, w int) padGeom {
	s := &c.spec
	hp, wp := h+s.PadT+s.PadB, w+s.PadL+s.PadR
	g := padGeom{hq: (hp + s.StrideH - 1) / s.StrideH, wq: (wp + s.StrideW - 1) / s.StrideW}
	g.chan_ = s.StrideH * s.StrideW * g.hq * g.wq
	return g
}

// ScratchSize returns the floats of scratch Run needs for a batch of n h x w images on Workers of
// threads threads.
func (c *Conv2D) ScratchSize(n, h, w, threads int) int {
	threads = c.runThreads(n, h, w, threads)
	if c.useWinograd(n, h, w, threads) {
		return c.wino.scratchSize(n, h, w, threads)
	}
	if c.batchParallel(n, threads) {
		return threads * c.itemScratch(h, w, 1)
	}
	return c.itemScratch(h, w, threads)
}

// itemScratch returns the floats of scratch one batch item needs when its GEMMs run on threads
// worker slots.
func (c *Conv2D) itemScratch(h, w, threads int) int {
	oh, ow := c.OutputSize(h, w)
	if c.path == pathDepthwise {
		// A padded copy of one channel (and a flat output plane) per chunk, no more.
		return c.dwChunks(oh, ow, threads) * c.dwScratch(h, w)
	}
	size := 0
	if c.path == pathImplicit || c.usePadded(h, w) {
		size = c.spec.Cin * c.padGeom(h, w).chan_
	}
	if c.usePadded(h, w) {
		size += c.mg * c.flatN(h, w)
	}
	return size + gemm.ScratchSize(c.kg, oh*ow, threads)
}

// batchParallel reports whether a batch of n runs one item per thread at a time (each item's
// GEMMs on one thread) rather than spreading each item's GEMMs over all threads: for batches that
// split evenly, or large enough for the imbalance at the end not to matter, that avoids a
// fork-join per GEMM and the cost of cutting small images into tiles.
func (c *Conv2D) batchParallel(n, threads int) bool {
	return threads > 1 && n >= threads && (n%threads == 0 || n >= 3*threads)
}

// parallelMinMACs is the least work, in multiply-adds, a convolution splits over threads: below
// it Run does everything on the calling goroutine. Handing half of a loop to a worker costs a
// few microseconds when the worker is polling and 50-70 us when it has gone to sleep (between
// the requests of a server, say), against ~5 us for 256K multiply-adds on one core: a model of
// such convolutions (densenet_tiny: 56K each) ran 78 us a run on 1 thread and 110 us on 2.
const parallelMinMACs = 256 << 10

// runThreads returns the threads a Run over n h x w inputs uses when given threads: 1 below
// parallelMinMACs.
func (c *Conv2D) runThreads(n, h, w, threads int) int {
	oh, ow := c.OutputSize(h, w)
	if int64(n)*int64(c.spec.Cout)*int64(c.kg)*int64(max(oh, 0))*int64(max(ow, 0)) < parallelMinMACs {
		return 1
	}
	return max(threads, 1)
}

// convState is the mutable state of one Run, recycled through Conv2D.free so that steady-state
// runs do not allocate.
type convState struct {
	offs    []int32 // GEMM row k -> offset of its first element in the B source
	offsH   int     // input size offs was built for
	offsW   int
	padded  bool         // offs are runPadded's
	workers []convWorker // one per thread in batch-parallel runs; workers[0] otherwise
	batch   batchTask
	wg      Group
}

// convWorker is what one thread needs to run batch items.
type convWorker struct {
	job   gemm.Job
	panel convPanel
	tap   tapPanel
	pad   paddedPanel
	unpad unpadTask
	prep  prepTask
	dw    depthwiseTask
	// dwPlan is the depthwise channel path's tables, rebuilt in place by each Run.
	dwPlan dwPlan
	wg     Group
	err    error
	// res is the run's residual (Data nil without one); b the batch item being computed.
	res  Image
	b    int
	post convPost
}

func (c *Conv2D) getState() *convState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.free); n > 0 {
		st := c.free[n-1]
		c.free = c.free[:n-1]
		return st
	}
	return &convState{}
}

func (c *Conv2D) putState(st *convState) {
	st.batch = batchTask{}
	c.mu.Lock()
	c.free = append(c.free, st)
	c.mu.Unlock()
}

// Run computes out = conv(in). out may be a channel slice of a larger buffer (its batch stride is
// then larger than C*H*W) and must not overlap in. workers may be nil: the work then runs on the
// calling goroutine. scratch must hold ScratchSize(in.N, in.H, in.W, workers.Threads()) floats.
// A convolution with a Residual runs with RunResidual.
func (c *Conv2D) Run(workers *Workers, in, out Image, scratch []float32) error {
	return c.RunResidual(workers, in, Image{}, out, scratch)
}

// RunResidual is Run with the residual res (an image of out's shape, which must overlap neither in
// nor out) added to the output before the Post activation. res must be empty (Image{}) unless the
// spec has a Residual.
func (c *Conv2D) RunResidual(workers *Workers, in, res, out Image, scratch []float32) error {
	s := &c.spec
	switch {
	case s.Residual && res.Data == nil:
		return fmt.Errorf("%w: conv has a residual input but none was given", ops.ErrShape)
	case !s.Residual && res.Data != nil:
		return fmt.Errorf("%w: conv has no residual input but one was given", ops.ErrShape)
	case res.Data != nil:
		if err := res.Check(); err != nil {
			return fmt.Errorf("conv residual: %w", err)
		}
		if res.N != out.N || res.C != out.C || res.H != out.H || res.W != out.W {
			return fmt.Errorf("%w: conv residual is %dx%dx%dx%d, output %dx%dx%dx%d", ops.ErrShape, res.N, res.C, res.H, res.W, out.N, out.C, out.H, out.W)
		}
	}
	if err := in.Check(); err != nil {
		return fmt.Errorf("conv input: %w", err)
	}
	if err := out.Check(); err != nil {
		return fmt.Errorf("conv output: %w", err)
	}
	oh, ow := c.OutputSize(in.H, in.W)
	if in.C != s.Cin || out.C != s.Cout || out.N != in.N || out.H != oh || out.W != ow || oh < 1 || ow < 1 {
		return fmt.Errorf("%w: conv %d->%d channels, kernel %dx%d: input %dx%dx%dx%d, output %dx%dx%dx%d (want %dx%d spatial)",
			ops.ErrShape, s.Cin, s.Cout, s.KH, s.KW, in.N, in.C, in.H, in.W, out.N, out.C, out.H, out.W, oh, ow)
	}
	if pg := c.padGeom(in.H, in.W); in.C*max(in.H*in.W, pg.chan_) > math.MaxInt32 {
		return fmt.Errorf("%w: conv input %dx%dx%d is too large (GEMM offsets are 32-bit)", ops.ErrShape, in.C, in.H, in.W)
	}
	threads := 1
	if workers != nil {
		threads = workers.Threads()
	}
	if need := c.ScratchSize(in.N, in.H, in.W, threads); len(scratch) < need {
		return fmt.Errorf("cpu: conv scratch has %d floats, needs %d", len(scratch), need)
	}
	if c.runThreads(in.N, in.H, in.W, threads) == 1 {
		// Too little work to pay for a hand-off: run it all here (the algorithms and the sums
		// do not depend on the threads).
		workers, threads = nil, 1
	}
	if c.useWinograd(in.N, in.H, in.W, threads) {
		return c.wino.run(workers, in, res, out, scratch, threads)
	}
	st := c.getState()
	defer c.putState(st)
	if len(st.workers) < threads {
		st.workers = make([]convWorker, threads)
	}
	for i := range st.workers[:threads] {
		st.workers[i].res = res
	}
	c.setOffsets(st, in.H, in.W)
	if c.batchParallel(in.N, threads) {
		st.batch = batchTask{c: c, st: st, in: in, out: out, scratch: scratch, per: c.itemScratch(in.H, in.W, 1)}
		workers.Run(&st.batch, threads, 1, &st.wg)
		for i := range st.workers[:threads] {
			if err := st.workers[i].err; err != nil {
				st.workers[i].err = nil
				return err
			}
		}
		return nil
	}
	for b := 0; b < in.N; b++ {
		if err := c.runItem(workers, st, &st.workers[0], in, out, b, scratch, threads); err != nil {
			return err
		}
	}
	return nil
}

// batchTask runs batch items on worker slots (Do's items are slots): each slot takes items from
// a shared counter and runs them alone, with its own worker state and part of the scratch.
type batchTask struct {
	c       *Conv2D
	st      *convState
	in, out Image
	scratch []float32
	per     int // scratch floats per slot
	next    atomic.Int64
}

// Do implements Task.
func (t *batchTask) Do(lo, hi int) {
	for slot := lo; slot < hi; slot++ {
		w := &t.st.workers[slot]
		sc := t.scratch[slot*t.per : (slot+1)*t.per]
		for {
			b := int(t.next.Add(1) - 1)
			if b >= t.in.N {
				break
			}
			if err := t.c.runItem(nil, t.st, w, t.in, t.out, b, sc, 1); err != nil && w.err == nil {
				w.err = err
			}
		}
	}
}

// runItem computes batch item b, its GEMMs spread over threads slots of workers.
func (c *Conv2D) runItem(workers *Workers, st *convState, w *convWorker, in, out Image, b int, scratch []float32, threads int) error {
	w.b = b
	switch c.path {
	case pathPointwise:
		return c.runPointwise(workers, st, w, in, out, b, scratch, threads)
	case pathDepthwise:
		c.runDepthwise(workers, w, in, out, b, scratch, threads)
		return nil
	case pathDirect:
		if c.usePadded(in.H, in.W) {
			return c.runPadded(workers, st, w, in, out, b, scratch, threads)
		}
		return c.runDirect(workers, st, w, in, out, b, scratch, threads)
	}
	return c.runImplicit(workers, st, w, in, out, b, scratch, threads)
}

// setOffsets fills st.offs, the offset of each GEMM row's source, for an h x w input (unless it
// already holds them).
func (c *Conv2D) setOffsets(st *convState, h, w int) {
	s := &c.spec
	padded := c.usePadded(h, w)
	if st.offsH == h && st.offsW == w && st.padded == padded && st.offs != nil {
		return
	}
	st.offsH, st.offsW, st.padded = h, w, padded
	pg := c.padGeom(h, w)
	switch {
	case c.path == pathPointwise || (c.path == pathDirect && !padded):
		// Row k (= c for pointwise; tap*Cg + c for pathDirect, which adds the tap shift while
		// packing) starts at channel plane c.
		st.offs = growInt32(st.offs, c.cg)
		for k := range st.offs {
			st.offs[k] = int32(k * h * w)
		}
	case c.path == pathDirect:
		// Row k = tap*Cg + c, as the weights are packed, in the padded copy.
		st.offs = growInt32(st.offs, c.kg)
		for tap := 0; tap < s.KH*s.KW; tap++ {
			kh, kw := tap/s.KW, tap%s.KW
			for ci := 0; ci < c.cg; ci++ {
				st.offs[tap*c.cg+ci] = int32(ci*pg.chan_ + kh*s.DilationH*pg.wq + kw*s.DilationW)
			}
		}
	case c.path == pathImplicit:
		// Row k = (c, kh, kw) in the phase-split padded copy.
		st.offs = growInt32(st.offs, c.kg)
		k := 0
		plane := pg.hq * pg.wq
		for ci := 0; ci < c.cg; ci++ {
			for kh := 0; kh < s.KH; kh++ {
				for kw := 0; kw < s.KW; kw++ {
					dy, dx := kh*s.DilationH, kw*s.DilationW
					phase := (dy%s.StrideH)*s.StrideW + dx%s.StrideW
					st.offs[k] = int32(ci*pg.chan_ + phase*plane + (dy/s.StrideH)*pg.wq + dx/s.StrideW)
					k++
				}
			}
		}
	default:
		st.offs = st.offs[:0]
	}
}

// parallel runs t over n items on workers (inline when workers is nil).
func parallel(workers *Workers, t Task, n, grain int, wg *Group) {
	if workers == nil {
		if n > 0 {
			t.Do(0, n)
		}
		return
	}
	workers.Run(t, n, grain, wg)
}

// epilogue returns what group g's GEMM applies in its micro-kernels: the bias, ReLU, and a Clip
// (ReLU6) without residual (gemmClamp; it commutes with runPadded's copy out).
func (c *Conv2D) epilogue(g int) gemm.Epilogue {
	ep := gemm.Epilogue{ReLU: c.spec.PostRelu}
	if c.spec.Bias != nil {
		ep.Bias = c.spec.Bias[g*c.mg : (g+1)*c.mg]
	}
	if c.gemmClamp {
		ep.Clamp, ep.Lo, ep.Hi = true, c.spec.Post.Alpha, c.spec.Post.Beta
	}
	return ep
}

// gemmItem runs the GEMM of group g for one batch item w.b: C (output channels of the group, n
// columns, rows ldc apart) = A_g * B, with B packed by bp. When C is the output itself (n = ldc =
// OH*OW: isOutput, not runPadded's flat buffer), the epilogue's tail (residual, activation) is applied to
// each block as the GEMM finishes it.
func (c *Conv2D) gemmItem(workers *Workers, w *convWorker, g int, bp gemm.BPanel, dst []float32, n, ldc int, scratch []float32, threads int, isOutput bool) error {
	ep := c.epilogue(g)
	if c.gemmTail() && isOutput {
		w.post = convPost{c: c, dst: dst, res: itemResidual(w.res, w.b, g*c.mg, n)}
		ep.Post = &w.post
	}
	if err := w.job.Init(c.code.gemm, c.packed()[g], bp, n, dst, ldc, ep, scratch, threads); err != nil {
		return fmt.Errorf("cpu: conv: %w", err)
	}
	parallel(workers, &w.job, w.job.Slots(), 1, &w.wg)
	return nil
}

// prologue returns the prologue's scale and shift for the input channels of group g.
func (c *Conv2D) prologue(g int) (scale, shift []float32) {
	s := &c.spec
	if s.PreScale == nil {
		return nil, nil
	}
	return s.PreScale[g*c.cg : (g+1)*c.cg], s.PreShift[g*c.cg : (g+1)*c.cg]
}

func (c *Conv2D) runPointwise(workers *Workers, st *convState, w *convWorker, in, out Image, b int, scratch []float32, threads int) error {
	s := &c.spec
	hw := in.H * in.W
	w.panel = convPanel{ow: hw, wq: hw}
	for g := 0; g < s.Group; g++ {
		src := in.Data[b*in.BatchStride+g*c.cg*hw : b*in.BatchStride+(g+1)*c.cg*hw]
		scale, shift := c.prologue(g)
		if err := w.panel.rows.Init(c.code.gemm, src, st.offs, scale, shift, s.PreRelu); err != nil {
			return fmt.Errorf("cpu: conv: %w", err)
		}
		dst := out.Data[b*out.BatchStride+g*c.mg*hw:]
		if err := c.gemmItem(workers, w, g, &w.panel, dst, hw, hw, scratch, threads, true); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conv2D) runImplicit(workers *Workers, st *convState, w *convWorker, in, out Image, b int, scratch []float32, threads int) error {
	s := &c.spec
	pg := c.padGeom(in.H, in.W)
	oh, ow := out.H, out.W
	padded := scratch[:s.Cin*pg.chan_]
	gs := scratch[len(padded):]
	w.panel = convPanel{ow: ow, wq: pg.wq}
	c.prepare(workers, w, in, b, pg, padded)
	for g := 0; g < s.Group; g++ {
		src := padded[g*c.cg*pg.chan_ : (g+1)*c.cg*pg.chan_]
		if err := w.panel.rows.Init(c.code.gemm, src, st.offs, nil, nil, false); err != nil {
			return fmt.Errorf("cpu: conv: %w", err)
		}
		dst := out.Data[b*out.BatchStride+g*c.mg*oh*ow:]
		if err := c.gemmItem(workers, w, g, &w.panel, dst, oh*ow, oh*ow, gs, threads, true); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conv2D) runDirect(workers *Workers, st *convState, w *convWorker, in, out Image, b int, scratch []float32, threads int) error {
	s := &c.spec
	hw := in.H * in.W
	ohw := out.H * out.W
	w.tap = tapPanel{c: c, h: in.H, w: in.W, ow: out.W}
	for g := 0; g < s.Group; g++ {
		src := in.Data[b*in.BatchStride+g*c.cg*hw : b*in.BatchStride+(g+1)*c.cg*hw]
		scale, shift := c.prologue(g)
		if err := w.tap.rows.Init(c.code.gemm, src, st.offs, scale, shift, s.PreRelu); err != nil {
			return fmt.Errorf("cpu: conv: %w", err)
		}
		dst := out.Data[b*out.BatchStride+g*c.mg*ohw:]
		if err := c.gemmItem(workers, w, g, &w.tap, dst, ohw, ohw, scratch, threads, true); err != nil {
			return err
		}
	}
	return nil
}

// tapPanel is the BPanel of pathDirect: B row k = tap*Cg + c, column n = oy*ow + ox is
//
//	pre_c(X[c, oy + kh*DilationH - PadT, ox + kw*DilationW - PadL])  (0 outside X)
//
// with (kh, kw) = (tap / KW, tap % KW). For each tap the panel's lanes split into one run per
// output row, clipped to the columns whose input pixel exists; the rest is padding.
type tapPanel struct {
	c        *Conv2D
	rows     gemm.Rows // Src: the group's input channels; Offs[c] = c*h*w
	h, w, ow int
}

// PackB implements gemm.BPanel.
func (p *tapPanel) PackB(dst []float32, width, k0, k1, n0, nr int) {
	s := &p.c.spec
	cg := p.c.cg
	for k := k0; k < k1; {
		tap, c0 := k/cg, k%cg
		c1 := min(cg, c0+k1-k)
		dy := tap/s.KW*s.DilationH - s.PadT
		dx := tap%s.KW*s.DilationW - s.PadL
		var segs [gemm.MaxNR]gemm.Segment
		ns := 0
		for lane := 0; lane < nr; {
			n := n0 + lane
			oy, ox := n/p.ow, n%p.ow
			end := min(nr, lane+p.ow-ox) // lanes [lane, end) are output row oy from column ox
			if iy := oy + dy; iy >= 0 && iy < p.h {
				// Lane l reads input column ox + (l-lane) + dx; keep those inside [0, w).
				lo := max(lane, lane-ox-dx)
				hi := min(end, lane+p.w-ox-dx)
				if lo < hi {
					segs[ns] = gemm.Segment{Lo: lo, Hi: hi, Base: iy*p.w + ox - lane + dx}
					ns++
				}
			}
			lane = end
		}
		p.rows.Pack(dst[(k-k0)*width:], c0, c1, segs[:ns])
		k += c1 - c0
	}
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

// convPanel is the BPanel of both GEMM paths: column n = oy*ow + ox of B row k is
// rows.Src[offs[k] + oy*wq + ox], so a panel is one contiguous run per output row it covers.
type convPanel struct {
	rows   gemm.Rows
	ow, wq int
}

// PackB implements gemm.BPanel.
func (p *convPanel) PackB(dst []float32, width, k0, k1, n0, nr int) {
	var segs [gemm.MaxNR]gemm.Segment
	if p.ow == p.wq {
		segs[0] = gemm.Segment{Lo: 0, Hi: nr, Base: n0}
		p.rows.Pack(dst, k0, k1, segs[:1])
		return
	}
	ns := 0
	for lane := 0; lane < nr; {
		n := n0 + lane
		oy, ox := n/p.ow, n%p.ow
		hi := min(nr, lane+p.ow-ox)
		// Column n sits at oy*wq + ox = oy*(wq-ow) + n; lane j of the panel is column n0+j.
		segs[ns] = gemm.Segment{Lo: lane, Hi: hi, Base: oy*(p.wq-p.ow) + n0}
		ns++
		lane = hi
	}
	p.rows.Pack(dst, k0, k1, segs[:ns])
}

// DirectRows implements gemm.DirectB. When the output rows are as wide as the rows they read
// (ow == wq: a pointwise convolution, or a 1x1 stride-2 one over its phase plane), B row k is one
// run, Src[offs[k] + n], and without a prologue (gemm.Job.Init checks) the micro-kernel reads
// the full panels in place: MobileNetV2's and EfficientNet's 1x1 convolutions (no prologue once
// BatchNormalization is folded) spent 12% of the model packing B.
func (p *convPanel) DirectRows() *gemm.Rows {
	if p.ow != p.wq {
		return nil
	}
	return &p.rows
}

// prepTask fills the padded, phase-split copy of one batch item, channel by channel.
type prepTask struct {
	c      *Conv2D
	src    []float32 // the batch item, C*H*W
	h, w   int
	pg     padGeom
	padded []float32
}

func (c *Conv2D) prepare(workers *Workers, w *convWorker, in Image, b int, pg padGeom, padded []float32) {
	w.prep = prepTask{c: c, src: in.Item(b), h: in.H, w: in.W, pg: pg, padded: padded}
	grain := max(1, 4096/max(pg.chan_, 1))
	parallel(workers, &w.prep, c.spec.Cin, grain, &w.wg)
}

// Do implements Task over channels [lo, hi).
func (t *prepTask) Do(lo, hi int) {
	s := &t.c.spec
	hw := t.h * t.w
	// A phase (py, px) of the stride that no tap reads is not copied: a 1x1 stride-2 convolution
	// (ResNet's shortcut) reads one phase of four, and copying all four made its input copy cost
	// several times its GEMM. Its plane stays unwritten; the GEMM's rows never point into it.
	var usedY, usedX [8]bool
	if s.StrideH > len(usedY) || s.StrideW > len(usedX) {
		for i := range usedY {
			usedY[i], usedX[i] = true, true
		}
	} else {
		for kh := 0; kh < s.KH; kh++ {
			usedY[(kh*s.DilationH)%s.StrideH] = true
		}
		for kw := 0; kw < s.KW; kw++ {
			usedX[(kw*s.DilationW)%s.StrideW] = true
		}
	}
	// A horizontal stride of 2 with both column phases read and no prologue (the 3x3 stride-2
	// stems and downsampling convolutions) splits each input row into its two phase rows in one
	// pass of the level's dwSplit, as the depthwise fill does (fill2): the strided scalar copy
	// was 30% of MobileNetV2's stem (3 -> 32 channels, 224x224) on one thread.
	split := s.StrideW == 2 && s.PreScale == nil && !s.PreRelu && usedX[0] && usedX[1]
	var sp splitCols
	if split {
		sp, split = splitColsOf(t.w, s.PadL, t.pg.wq)
	}
	for ch := lo; ch < hi; ch++ {
		x := t.src[ch*hw : (ch+1)*hw]
		dst := t.padded[ch*t.pg.chan_ : (ch+1)*t.pg.chan_]
		var scale, shift float32 = 1, 0
		affine := s.PreScale != nil
		if affine {
			scale, shift = s.PreScale[ch], s.PreShift[ch]
		}
		relu := s.PreRelu
		plane := t.pg.hq * t.pg.wq
		for py := 0; py < s.StrideH; py++ {
			if split {
				if py >= len(usedY) || usedY[py] {
					t.splitPhaseRows(dst[py*2*plane:(py+1)*2*plane], x, py, sp)
				}
				continue
			}
			for px := 0; px < s.StrideW; px++ {
				if py < len(usedY) && px < len(usedX) && (!usedY[py] || !usedX[px]) {
					continue
				}
				pl := dst[(py*s.StrideW+px)*plane : (py*s.StrideW+px+1)*plane]
				for i := 0; i < t.pg.hq; i++ {
					row := pl[i*t.pg.wq : (i+1)*t.pg.wq]
					y := py + i*s.StrideH - s.PadT
					if y < 0 || y >= t.h {
						zero(row)
						continue
					}
					xr := x[y*t.w : (y+1)*t.w]
					// Columns j with 0 <= px + j*sw - PadL < w hold data.
					j0 := max(0, (s.PadL-px+s.StrideW-1)/s.StrideW)
					j1 := min(t.pg.wq, (t.w+s.PadL-px+s.StrideW-1)/s.StrideW)
					if j1 < j0 {
						j1 = j0
					}
					zero(row[:j0])
					zero(row[j1:])
					ix := px + j0*s.StrideW - s.PadL
					if s.StrideW == 1 {
						seg := row[j0:j1]
						prologueRow(seg, xr[ix:ix+len(seg)], scale, shift, affine, relu)
						continue
					}
					if !affine && !relu {
						// The usual case (a depthwise layer after a separate activation): a
						// strided gather, without the prologue's branches. A row with no data
						// columns (j0 == j1: padding wider than the image) reads nothing, and
						// ix may then lie past the row.
						if j1 > j0 {
							stridedCopy(row[j0:j1], xr[ix:], s.StrideW)
						}
						continue
					}
					for j := j0; j < j1; j++ {
						v := xr[ix]
						if affine {
							v = v*scale + shift
						}
						if relu && v < 0 {
							v = 0
						}
						row[j] = v
						ix += s.StrideW
					}
				}
			}
		}
	}
}

// splitCols is the geometry of splitting the rows of an image w wide, padded by padL on the
// left, into the two column phases of a horizontal stride of 2 (padded rows wq wide): phase px
// holds image pixels in columns [j0[px], j1[px]), starting at input column ix[px]. first is the
// phase whose first pixel comes first in the input row.
type splitCols struct {
	j0, j1, ix [2]int
	first      int
}

// splitColsOf returns the split geometry, and false when one pass cannot split a row: a phase
// without pixels, or first pixels that are not adjacent.
func splitColsOf(w, padL, wq int) (splitCols, bool) {
	var sc splitCols
	for px := 0; px < 2; px++ {
		sc.j0[px], sc.j1[px], sc.ix[px] = dwCols(w, padL, 2, wq, px)
		if sc.j0[px] == sc.j1[px] {
			return sc, false
		}
	}
	if d := sc.ix[1] - sc.ix[0]; d != 1 && d != -1 {
		return sc, false
	}
	if sc.ix[1] < sc.ix[0] {
		sc.first = 1
	}
	return sc, true
}

// splitPhaseRows writes the rows of vertical phase py of both column phases of one channel x
// (phases: the two planes of dst, hq x wq each), padding zeroed.
func (t *prepTask) splitPhaseRows(dst, x []float32, py int, sc splitCols) {
	s := &t.c.spec
	wq := t.pg.wq
	plane := t.pg.hq * wq
	pl := [2][]float32{dst[:plane], dst[plane : 2*plane]}
	f, o := sc.first, 1-sc.first
	for i := 0; i < t.pg.hq; i++ {
		r0, r1 := pl[0][i*wq:(i+1)*wq], pl[1][i*wq:(i+1)*wq]
		y := py + i*s.StrideH - s.PadT
		if y < 0 || y >= t.h {
			zero(r0)
			zero(r1)
			continue
		}
		rows := [2][]float32{r0, r1}
		for px, r := range rows {
			zero(r[:sc.j0[px]])
			zero(r[sc.j1[px]:])
		}
		xr := x[y*t.w+sc.ix[f] : (y+1)*t.w]
		t.c.code.dwSplit(rows[f][sc.j0[f]:sc.j1[f]], rows[o][sc.j0[o]:sc.j1[o]], xr)
	}
}

// stridedCopy sets dst[j] = src[j*stride] (stride >= 2), four at a time.
func stridedCopy(dst, src []float32, stride int) {
	if len(dst) == 0 {
		return
	}
	src = src[:(len(dst)-1)*stride+1]
	if stride == 2 {
		for len(dst) >= 4 && len(src) >= 8 {
			dst[0], dst[1], dst[2], dst[3] = src[0], src[2], src[4], src[6]
			dst, src = dst[4:], src[8:]
		}
	}
	for j := range dst {
		dst[j] = src[j*stride]
	}
}

// zero clears s with a plain loop: the rows here are short (often one or two pad columns), where
// a call to the runtime's memclr costs more than the stores.
func zero(s []float32) {
	for i := 0; i < len(s); i++ {
		s[i] = 0
	}
}

// prologueRow sets dst[i] = pre(x[i]).
func prologueRow(dst, x []float32, scale, shift float32, affine, relu bool) {
	x = x[:len(dst)]
	switch {
	case affine && relu:
		for i, v := range x {
			v = v*scale + shift
			if v < 0 {
				v = 0
			}
			dst[i] = v
		}
	case affine:
		for i, v := range x {
			dst[i] = v*scale + shift
		}
	case relu:
		for i, v := range x {
			if v < 0 {
				v = 0
			}
			dst[i] = v
		}
	default:
		for i := 0; i < len(x); i++ { // not copy: rows are short, see zero
			dst[i] = x[i]
		}
	}
}

package cpu

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
)

// winograd is the Winograd form F(m x m, 3 x 3) of a 3x3, stride-1, undilated, ungrouped
// convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015). Each
// output tile of m x m pixels is computed from the alpha x alpha input patch (alpha = m + 2)
// that covers it:
//
//	Y_tile[mo] = A^T ( sum_c U[mo][c] ⊙ V[c] ) A,    U[mo][c] = G g[mo][c] G^T,    V[c] = B^T d[c] B
//
// with g the 3x3 kernel, d the patch (prologue applied, 0 in the padding) and ⊙ the element-wise
// product. Summing over c for a fixed position (i, j) of the alpha x alpha products is a matrix
// product, so the convolution becomes alpha^2 independent GEMMs
//
//	M[i,j] (Cout x tiles) = U[i,j] (Cout x Cin) * V[i,j] (Cin x tiles)
//
// with U packed once, here, and the bias and ReLU applied by the output transform. A GEMM does
// alpha^2/m^2 multiplications per output pixel and channel pair instead of 9: 4 for F(2x2) and
// 2.25 for F(4x4), against 9 for the direct convolution.
//
// # Numerics
//
// F(2x2) (points 0, 1, -1) has transforms of 0 and ±1 entries and is about as accurate as the
// direct convolution. F(4x4) (points 0, ±1, ±2) has entries up to 8 in A and 5 in B and loses about
// one decimal digit: on random DenseNet-121 layers the error stays near 1e-6 relative to the
// magnitude sum(|pre(x)|*|w|), within the kernels' 1e-4 tolerance (conv_winograd_test.go).
//
// # Work split
//
// The tiles of all batch items are numbered g = (b*tilesY + ty)*tilesX + tx and cut into chunks of
// at most nt tiles. A worker slot takes chunks from a shared counter and does all of a chunk in its
// own scratch: the input transform into V (alpha^2 x Cin x ldv), the alpha^2 GEMMs into M
// (alpha^2 x Cout x ldv), then the output transform into the output image. There is one parallel
// loop per Run, and a chunk's V (about 256 KiB) stays in L2 between its transform and its GEMMs.
// When the tiles make a single chunk and there are several threads (one image of 14x14 or 7x7),
// each slot does the chunk's input transform itself, into its own V, and the GEMMs and the output
// transform for its range of output channels: one parallel loop, and no V that crosses between
// the cores. The input transform is repeated on each core, which costs less than the hand-over:
// a first design that split the transform by input channels into a shared V, then the GEMMs in a
// second loop, ran DenseNet-121's 7x7 layers (128 -> 32) in 78 us on 2 threads against 38 us on 1.
type winograd struct {
	c *Conv2D
	// forms[0] is F(2x2, 3x3), forms[1] F(4x4, 3x3); each packs its weights on first use.
	forms [2]winoForm
	// force, for tests and benchmarks: 2 or 4 always uses that form, -1 never, 0 decides by size.
	force int

	mu   sync.Mutex
	free []*winoState
}

// winoForm is one tile size of a winograd.
type winoForm struct {
	c        *Conv2D
	m, alpha int
	// maxTiles is the largest chunk, in tiles; nr the B panel width of c's GEMM kernels, which
	// the chunks are cut to.
	maxTiles, nr int
	once         sync.Once
	u            []*gemm.PackedA // alpha^2 transformed weight matrices, Cout x Cin each
}

// The Winograd transform matrices (Lavin & Gray): B^T (alpha x alpha), G (alpha x 3) and A^T
// (m x alpha) for F(2x2, 3x3) (points 0, 1, -1) and F(4x4, 3x3) (points 0, 1, -1, 2, -2). Only the
// weight transform multiplies by them; the input and output transforms
// (conv_winograd_xform.go, conv_winograd_amd64.s) are written out with their coefficients, and
// TestWinogradTransforms checks them against these.
var (
	winoBT2 = [][]float64{
		{1, 0, -1, 0},
		{0, 1, 1, 0},
		{0, -1, 1, 0},
		{0, 1, 0, -1},
	}
	winoG2 = [][]float64{
		{1, 0, 0},
		{0.5, 0.5, 0.5},
		{0.5, -0.5, 0.5},
		{0, 0, 1},
	}
	winoBT4 = [][]float64{
		{4, 0, -5, 0, 1, 0},
		{0, -4, -4, 1, 1, 0},
		{0, 4, -4, -1, 1, 0},
		{0, -2, -1, 2, 1, 0},
		{0, 2, -1, -2, 1, 0},
		{0, 4, 0, -5, 0, 1},
	}
	winoG4 = [][]float64{
		{1.0 / 4, 0, 0},
		{-1.0 / 6, -1.0 / 6, -1.0 / 6},
		{-1.0 / 6, 1.0 / 6, -1.0 / 6},
		{1.0 / 24, 1.0 / 12, 1.0 / 6},
		{1.0 / 24, -1.0 / 12, 1.0 / 6},
		{0, 0, 1},
	}
	winoAT2 = [][]float64{
		{1, 1, 1, 0},
		{0, 1, -1, -1},
	}
	winoAT4 = [][]float64{
		{1, 1, 1, 1, 1, 0},
		{0, 1, -1, 2, -2, 0},
		{0, 1, 1, 4, 4, 0},
		{0, 1, -1, 8, -8, 1},
	}
)

// winogradEligible reports whether spec (defaults filled in) is a convolution the Winograd path
// computes: 3x3, stride 1, no dilation, one group.
func winogradEligible(s *ConvSpec) bool {
	return s.KH == 3 && s.KW == 3 && s.StrideH == 1 && s.StrideW == 1 &&
		s.DilationH == 1 && s.DilationW == 1 && s.Group == 1
}

// winogradFor returns the Winograd forms of c, or nil when c's spec has none.
func winogradFor(c *Conv2D) *winograd {
	if !winogradEligible(&c.spec) {
		return nil
	}
	return newWinograd(c)
}

// useWinograd reports whether Run takes the Winograd path for n h x w images on threads threads.
func (c *Conv2D) useWinograd(n, h, w, threads int) bool {
	return c.wino != nil && c.wino.pick(n, h, w, threads) != nil
}

// newWinograd returns the Winograd forms of c, not packed yet.
func newWinograd(c *Conv2D) *winograd {
	w := &winograd{c: c}
	for i, m := range []int{2, 4} {
		nr := c.code.gemm.NR()
		w.forms[i] = winoForm{c: c, m: m, alpha: m + 2, maxTiles: winoMaxTiles(m, c.spec.Cin, nr), nr: nr}
	}
	return w
}

// form returns the F(m x m) form of w.
func (w *winograd) form(m int) *winoForm {
	if m == 2 {
		return &w.forms[0]
	}
	return &w.forms[1]
}

// pack transforms and packs the weights of f, once; concurrent Runs wait for the first.
func (f *winoForm) pack() {
	f.once.Do(f.packNow)
}

// packNow computes U[i,j][mo][ci] = sum_{a,b} G[i][a] g[mo][ci][a][b] G[j][b], in float64 rounded
// once, and packs each of the alpha^2 matrices.
func (f *winoForm) packNow() {
	s := &f.c.spec
	alpha := f.alpha
	gApply := winoG2Apply
	if f.m == 4 {
		gApply = winoG4Apply
	}
	pairs := s.Cout * s.Cin
	u := make([]float32, alpha*alpha*pairs)
	var tmp, row [3][6]float64
	for pr := 0; pr < pairs; pr++ {
		k := (*[9]float32)(s.Weights[pr*9:])
		for b := 0; b < 3; b++ { // column b of G g
			tmp[b] = gApply(float64(k[b]), float64(k[3+b]), float64(k[6+b]))
		}
		for i := range alpha { // row i of (G g) G^T
			row[0] = gApply(tmp[0][i], tmp[1][i], tmp[2][i])
			for j := range alpha {
				u[(i*alpha+j)*pairs+pr] = float32(row[0][j])
			}
		}
	}
	f.u = make([]*gemm.PackedA, alpha*alpha)
	for p := range f.u {
		f.u[p] = gemm.PackA(f.c.code.gemm, s.Cout, s.Cin, u[p*pairs:], s.Cin)
	}
}

// winoG2Apply returns G x for F(2x2) (winoG2) in the first 4 entries.
func winoG2Apply(x0, x1, x2 float64) (y [6]float64) {
	y[0] = x0
	y[1] = 0.5 * (x0 + x1 + x2)
	y[2] = 0.5 * (x0 - x1 + x2)
	y[3] = x2
	return y
}

// winoG4Apply returns G x for F(4x4) (winoG4).
func winoG4Apply(x0, x1, x2 float64) (y [6]float64) {
	y[0] = x0 / 4
	y[1] = -(x0 + x1 + x2) / 6
	y[2] = -(x0 - x1 + x2) / 6
	y[3] = x0/24 + x1/12 + x2/6
	y[4] = x0/24 - x1/12 + x2/6
	y[5] = x2
	return y
}

// winoMaxTiles returns the largest chunk for F(m x m) with cin input channels: as many NR-column
// panels as keep V (alpha^2 * cin * tiles floats) near 256 KiB, half of L2, where the chunk's
// GEMMs find it, and at least one. On DenseNet-121 (cin 128) and CIFAR DenseNet-BC (cin 48)
// shapes chunks of 24, 48, 96 and 192 tiles measured within noise of each other; small chunks
// share out better between threads.
func winoMaxTiles(m, cin, nr int) int {
	alpha := m + 2
	t := (64 << 10) / max(alpha*alpha*cin, 1)
	return max(1, t/nr) * nr
}

// winoOutScratch is the scratch of the output transform (kernels.winoOut).
const winoOutScratch = 192

// winoGeom is the tiling of one Run.
type winoGeom struct {
	oh, ow         int
	tilesY, tilesX int
	tiles          int // N * tilesY * tilesX
	nt             int // tiles per chunk (a multiple of 8), but the last, which has 1..nt+7
	ntPad          int // most GEMM columns of a chunk (winoGemmCols)
	chunks         int
	slots          int // worker slots: min(threads, chunks), or the split's
	// split: the tiles make one chunk and there are several threads, so each slot transforms the
	// whole chunk's input and computes a range of the output channels.
	split      bool
	ldv        int // row stride of V and M
	psV, psM   int // stride of the transform positions in V and M
	wt         int // row stride of the transform rows
	slotFloats int
}

func (f *winoForm) geom(n, h, wd, threads int) winoGeom {
	s := &f.c.spec
	var g winoGeom
	g.oh, g.ow = f.c.OutputSize(h, wd)
	g.tilesY = (g.oh + f.m - 1) / f.m
	g.tilesX = (g.ow + f.m - 1) / f.m
	g.tiles = n * g.tilesY * g.tilesX
	threads = max(threads, 1)
	// Chunks of maxTiles, but at least one per thread when each gets winoMinChunk tiles; then as
	// even as whole 8-tile vector groups allow.
	g.chunks = max(1, (g.tiles+f.maxTiles-1)/f.maxTiles)
	if g.chunks < threads {
		g.chunks = max(1, min(threads, g.tiles/winoMinChunk))
	}
	g.nt = (g.tiles + g.chunks - 1) / g.chunks
	g.nt = (g.nt + 7) &^ 7
	g.chunks = (g.tiles + g.nt - 1) / g.nt
	// A last chunk of fewer than 8 tiles joins the one before: its GEMMs' partial panel is then
	// cheap (see winoGemmCols), where a chunk of its own costs alpha^2 more GEMM calls.
	last := g.tiles - (g.chunks-1)*g.nt
	if g.chunks > 1 && last < 8 {
		g.chunks--
		last += g.nt
	}
	g.slots = min(threads, g.chunks)
	g.ntPad = max(winoGemmCols(min(g.nt, g.tiles), f.nr), winoGemmCols(last, f.nr))
	if g.chunks == 1 && threads > 1 {
		g.split = true
		g.slots = min(threads, (s.Cout+f.c.code.gemm.MR()-1)/f.c.code.gemm.MR())
	}
	// Rows of V and M 32-byte aligned for the vector stores, with room for the transforms'
	// overrun of up to 7 tiles past a row segment, not a multiple of 256 bytes apart (the GEMM
	// reads Cin of them per column panel); positions 64 bytes off a multiple of 128: position p
	// then starts at p*64*odd mod 4096, so the alpha^2 streams the transforms write and read never
	// alias modulo 4 KiB (measured: the row pass ran 3x slower with 40 KiB between positions).
	g.ldv = g.ntPad + 8
	if g.ldv%64 == 0 {
		g.ldv += 8
	}
	g.psV = winoPosStride(s.Cin * g.ldv)
	g.psM = winoPosStride(s.Cout * g.ldv)
	a := f.alpha
	// Transform rows: alpha input rows of m*(tilesX+NR+8)+4 floats (room for the vector
	// transforms to run over the end of a row segment and, in a chunk's last segment, over the
	// zero tiles up to the panel's end), m output rows, and a row of zeros.
	g.wt = f.m*(g.tilesX+f.nr+8) + 4
	g.slotFloats = (a+f.m+1)*g.wt + winoOutScratch + gemm.ScratchSize(s.Cin, g.ntPad, 1) + 16 + a*a*(g.psV+g.psM)
	return g
}

// winoMinChunk is the fewest tiles in a chunk that is split off for another thread: fewer leave
// most of the chunk's GEMM panel empty (see winoGemmCols).
const winoMinChunk = 16

// winoGemmCols returns the columns of the GEMMs of a chunk of k tiles. They run over whole
// NR-column panels, padding the last with tiles of zeros (which the input transform writes),
// unless it has at most 8 tiles: the micro-kernel reads full panels of V in place, where the
// partial panel's B is packed and computed by an edge kernel. Measured on 128 -> 32 channels
// (nr = 24), when the partial panel was still merged into C element by element by scalar Go:
// the 16 tiles of a 14x14 image ran 2x faster padded to 24 than as a partial panel; at 8 tiles
// or fewer the narrow 8-column kernel won. (The edge kernels now write C directly, masked; the
// threshold has not been measured again since.)
// nr is the panel width of the GEMM kernels (Kernels.NR).
func winoGemmCols(k, nr int) int {
	switch r := k % nr; {
	case r > 8:
		return k - r + nr
	case r == 1:
		// A one-column edge would run the matrix-vector kernel, whose sums round differently from
		// the micro-kernels': a tile's result would then depend on where the batch's chunking puts
		// it. One zero tile more makes it a two-column edge, run by an edge kernel.
		return k + 1
	}
	return k
}

// winoPosStride returns the smallest stride >= n that is 16 modulo 32 floats.
func winoPosStride(n int) int {
	return n + (48-n%32)%32
}

// scratchSize returns the floats of scratch run needs.
func (w *winograd) scratchSize(n, h, wd, threads int) int {
	f := w.pick(n, h, wd, threads)
	if f == nil {
		return 0
	}
	g := f.geom(n, h, wd, threads)
	return g.slots * g.slotFloats
}

// pick returns the form a Run of n h x w images on threads threads uses, or nil for the direct
// convolution (see winoChoice).
func (w *winograd) pick(n, h, wd, threads int) *winoForm {
	switch w.force {
	case 0:
	case 2, 4:
		return w.form(w.force)
	default:
		return nil
	}
	oh, ow := w.c.OutputSize(h, wd)
	// The form is chosen for one image whatever n: the forms and the direct convolution round
	// differently, and an image's result must not depend on the batch it runs in (dnx serve's
	// dynamic batching stacks requests; serve.TestBatchInvariance). The tiles of a batch still
	// share the chunks and GEMMs (see winoGemmCols for the columns at a chunk's edge).
	// The threads are those of one image's Run, so that the choice is the same in every batch.
	if m := winoChoice(1, oh, ow, w.c.spec.Cin, w.c.spec.Cout, w.c.runThreads(1, h, wd, threads), w.c.code.gemm.NR()); m > 0 {
		return w.form(m)
	}
	return nil
}

// winoChoice returns the tile size m of the Winograd form to use for n oh x ow outputs of a
// cin -> cout convolution on threads threads with GEMM panels nr columns wide, or 0 for the
// direct convolution.
//
// Measured on this project's AVX2 machine (Zen 3, one thread; BenchmarkConvWinograd and more
// shapes; speedup over the direct convolution, F(2x2) / F(4x4)):
//
//	128->32  56x56 n=1  2.8  / 4.2     48->12 32x32 n=64  2.0  / 2.7     64->64 10x10 n=1  1.20 / 0.94
//	128->32  28x28 n=1  2.4  / 3.2     48->12 16x16 n=64  1.6  / 1.9     64->64 12x12 n=1  1.28 / 1.14
//	128->32  14x14 n=1  1.56 / 1.75    48->12  8x8  n=64  1.7  / 1.9     64->64 20x20 n=1  1.54 / 1.58
//	128->32   7x7  n=1  1.36 / 0.74    48->12 32x32 n=1   2.5  / 3.2    256->256 14x14 n=1 1.59 / 1.53
//	128->32   7x7  n=2  1.29 / 1.19    48->12 16x16 n=1   2.1  / 2.4     16->16 32x32 n=8  2.0  / 2.8
//	128->32   7x7  n=4  1.60 / 1.76    48->12  8x8  n=1   1.10 / 0.58     4->4  32x32 n=8  2.0  / 2.7
//	128->32  14x14 n=8  1.8  / 2.1     48->12  8x8  n=8   1.54 / 1.56    12->48 16x16 n=8  1.23 / 1.35
//	128->32   7x7  n=8  2.1  / 2.5      3->16 32x32 n=8   0.62 / 0.86
//
// F(4x4) does 44% fewer multiplications than F(2x2) but wins only when its tiles fill the GEMMs'
// 24-column panels, and its transformed weights are 4 times the kernel's where F(2x2)'s are 1.8
// times: on one 14x14 image (16 tiles) the two measured the same inside DenseNet-121, where the
// weights come from memory, so F(4x4) starts at 32 tiles (F(2x2)'s 49 then make 2 chunks, and
// DenseNet-121 holds 8 MiB less). F(2x2) wins over the direct convolution from 16 tiles. With 3 input channels the transforms cost more than they save.
//
// F(2x2) tiles that make a single chunk (winoMaxTiles) on several threads would be shared by
// output channels, each thread repeating the input transform. The direct convolution, which
// splits its output pixels, measured faster there on 2 threads (avx512 level, Zen 5;
// BenchmarkConvWinograd, BenchmarkConvResNetAlgorithms): 7x7 128 -> 32 (DenseNet-121) 36-42 us
// against 80, 7x7 512 -> 512 (ResNet) 1.12-1.19 ms against 1.33-1.67 ms, where the transformed
// weights (16/9 of the kernel's) come from memory at batch 1. On 1 thread F(2x2) stays faster
// there (38 against 45 us). F(4x4) needs 32 tiles, so its single chunks are 20x20 to 24x24
// images; they keep the split (not measured otherwise).
func winoChoice(n, oh, ow, cin, cout, threads, nr int) int {
	if cin < 4 || min(oh, ow) < 6 {
		return 0
	}
	t4 := n * ((oh + 3) / 4) * ((ow + 3) / 4)
	t2 := n * ((oh + 1) / 2) * ((ow + 1) / 2)
	switch {
	case t4 >= 2*winoMinChunk:
		return 4
	case t2 >= winoMinChunk && threads > 1 && t2 <= winoMaxTiles(2, cin, nr):
		return 0
	case t2 >= winoMinChunk:
		return 2
	}
	return 0
}

// winoState is the mutable state of one Run, recycled through winograd.free.
type winoState struct {
	offs  []int32 // GEMM row c -> c*ldv
	task  winoTask
	slots []winoSlot
	wg    Group
}

// winoSlot is what one worker slot needs.
type winoSlot struct {
	job   gemm.Job
	panel paddedPanel
	u     gemm.PackedA // the rows of a transformed weight matrix this slot multiplies
	err   error
}

func (w *winograd) getState() *winoState {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.free); n > 0 {
		st := w.free[n-1]
		w.free = w.free[:n-1]
		return st
	}
	return &winoState{}
}

func (w *winograd) putState(st *winoState) {
	st.task = winoTask{}
	w.mu.Lock()
	w.free = append(w.free, st)
	w.mu.Unlock()
}

// run computes out = conv(in) (shapes and scratch already checked by Conv2D.Run).
func (w *winograd) run(workers *Workers, in, res, out Image, scratch []float32, threads int) error {
	s := &w.c.spec
	f := w.pick(in.N, in.H, in.W, threads)
	f.pack()
	g := f.geom(in.N, in.H, in.W, threads)
	st := w.getState()
	defer w.putState(st)
	st.offs = growInt32(st.offs, s.Cin)
	for ci := range st.offs {
		st.offs[ci] = int32(ci * g.ldv)
	}
	if len(st.slots) < g.slots {
		st.slots = make([]winoSlot, g.slots)
	}
	st.task = winoTask{f: f, st: st, g: g, in: in, out: out, res: res, scratch: scratch}
	if workers == nil || g.slots == 1 {
		st.task.Do(0, g.slots)
	} else {
		workers.Run(&st.task, g.slots, 1, &st.wg)
	}
	for i := range st.slots[:g.slots] {
		if err := st.slots[i].err; err != nil {
			st.slots[i].err = nil
			return err
		}
	}
	return nil
}

// winoTask runs worker slots (Do's items); each takes chunks from a shared counter.
type winoTask struct {
	f       *winoForm
	st      *winoState
	g       winoGeom
	in, out Image
	res     Image // the residual (Data nil without one)
	scratch []float32
	next    atomic.Int64
}

// Do implements Task.
func (t *winoTask) Do(lo, hi int) {
	panels := (t.f.c.spec.Cout + t.f.c.code.gemm.MR() - 1) / t.f.c.code.gemm.MR()
	for slot := lo; slot < hi; slot++ {
		sl := &t.st.slots[slot]
		sc := t.scratch[slot*t.g.slotFloats : (slot+1)*t.g.slotFloats]
		if t.g.split {
			q0, q1 := share(panels, t.g.slots, slot)
			if err := t.f.chunk(t, sl, sc, 0, t.g.tiles, q0, q1); err != nil && sl.err == nil {
				sl.err = err
			}
			continue
		}
		for {
			ch := int(t.next.Add(1) - 1)
			if ch >= t.g.chunks {
				break
			}
			g0, g1 := ch*t.g.nt, (ch+1)*t.g.nt
			if ch == t.g.chunks-1 {
				g1 = t.g.tiles // the last chunk may have up to 7 more
			}
			if err := t.f.chunk(t, sl, sc, g0, g1, 0, panels); err != nil && sl.err == nil {
				sl.err = err
			}
		}
	}
}

// chunk computes the output tiles [g0, g1) of the output channels of row panels [q0, q1) of U in
// the slot's own scratch sc.
func (f *winoForm) chunk(t *winoTask, sl *winoSlot, sc []float32, g0, g1, q0, q1 int) error {
	s := &f.c.spec
	g := &t.g
	a2 := f.alpha * f.alpha
	sc = align64(sc)
	v := sc[:a2*g.psV]
	mm := sc[len(v) : len(v)+a2*g.psM]
	rows, os, gs := f.slotScratch(g, sc[len(v)+len(mm):])
	f.inputTransform(t.in, g, v, rows, g0, g1, 0, s.Cin)
	if err := f.products(sl, t.st.offs, g, v, mm, gs, winoGemmCols(g1-g0, f.nr), q0, q1); err != nil {
		return err
	}
	mr := f.c.code.gemm.MR()
	f.outputTransform(t.out, t.res, g, mm, rows, os, g0, g1, q0*mr, min(s.Cout, q1*mr))
	return nil
}

// slotScratch cuts a slot's transform rows, output-transform scratch and GEMM scratch from sc.
func (f *winoForm) slotScratch(g *winoGeom, sc []float32) (rows, os, gs []float32) {
	rows = sc[:(f.alpha+f.m+1)*g.wt]
	os = sc[len(rows) : len(rows)+winoOutScratch]
	return rows, os, sc[len(rows)+len(os):]
}

// inputTransform fills V (v) for tiles [g0, g1) and input channels [c0, c1), one row segment
// (tiles of one tile row) at a time; the last one also fills the tiles up to the end of the last
// GEMM panel with zeros.
func (f *winoForm) inputTransform(in Image, g *winoGeom, v, rows []float32, g0, g1, c0, c1 int) {
	perItem := g.tilesY * g.tilesX
	nt := winoGemmCols(g1-g0, f.nr)
	for gi := g0; gi < g1; {
		b, tt := gi/perItem, gi%perItem
		ty, tx := tt/g.tilesX, tt%g.tilesX
		nseg := min(g1-gi, g.tilesX-tx)
		nrow := nseg
		if gi+nseg == g1 {
			nrow += nt - (g1 - g0)
		}
		f.inputSegment(in, b, ty, tx, nseg, nrow, v[gi-g0:], g.psV, g.ldv, rows, g.wt, c0, c1)
		gi += nseg
	}
}

// products computes the alpha^2 GEMMs M[p] = U[p] V[p] over nt columns for the output channels
// of row panels [q0, q1) of U.
func (f *winoForm) products(sl *winoSlot, offs []int32, g *winoGeom, v, mm, gs []float32, nt, q0, q1 int) error {
	s := &f.c.spec
	for p := 0; p < f.alpha*f.alpha; p++ {
		if err := sl.panel.rows.Init(f.c.code.gemm, v[p*g.psV:p*g.psV+s.Cin*g.ldv], offs, nil, nil, false); err != nil {
			return fmt.Errorf("cpu: winograd conv: %w", err)
		}
		sl.u = f.u[p].RowPanels(q0, q1)
		if err := sl.job.Init(f.c.code.gemm, &sl.u, &sl.panel, nt, mm[p*g.psM+q0*f.c.code.gemm.MR()*g.ldv:], g.ldv, gemm.Epilogue{}, gs, 1); err != nil {
			return fmt.Errorf("cpu: winograd conv: %w", err)
		}
		sl.job.Do(0, sl.job.Slots())
	}
	return nil
}

// outputTransform writes the output pixels of tiles [g0, g1) and output channels [mo0, mo1), the
// epilogue's tail applied (res: the residual, Data nil without one).
func (f *winoForm) outputTransform(out, res Image, g *winoGeom, mm, rows, os []float32, g0, g1, mo0, mo1 int) {
	perItem := g.tilesY * g.tilesX
	for gi := g0; gi < g1; {
		b, tt := gi/perItem, gi%perItem
		ty, tx := tt/g.tilesX, tt%g.tilesX
		nseg := min(g1-gi, g.tilesX-tx)
		f.outputSegment(out, res, b, ty, tx, nseg, mm[gi-g0:], g.psM, g.ldv, rows, g.wt, os, mo0, mo1)
		gi += nseg
	}
}

// share returns part i of n items split into parts nearly equal contiguous ranges.
func share(n, parts, i int) (lo, hi int) {
	return n * i / parts, n * (i + 1) / parts
}

// align64 returns the tail of s that starts on a 64-byte boundary (s must have 16 floats spare).
func align64(s []float32) []float32 {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return s[(64-addr%64)%64/4:]
}

// inputSegment transforms the input patches of tiles (ty, tx .. tx+n-1) of batch item b, for
// input channels [c0, c1), into V[p][ci][j] = v[p*ps + ci*ldv + j], j = 0..n-1 (p = i*alpha + k,
// the transform position), and sets V[p][ci][j] = 0 for j = n..nrow-1. rows is scratch for alpha+m+1 rows of wt floats: the
// transform rows, then a row of zeros.
//
// For each channel the transform runs in two passes over rows: first down the columns,
// T_i[u] = sum_r B^T[i][r] d_r[u] for the alpha input rows d_r of the tile row (prologue applied,
// 0 outside the input), then along each T_i, V[i*alpha+k][tile] = sum_s B^T[k][s] T_i[m*tile+s].
func (f *winoForm) inputSegment(in Image, b, ty, tx, n, nrow int, v []float32, ps, ldv int, rows []float32, wt, c0, c1 int) {
	s := &f.c.spec
	m, alpha := f.m, f.alpha
	hw := in.H * in.W
	item := in.Data[b*in.BatchStride:][:s.Cin*hw]
	// Columns u of the T rows are padded columns m*tx + u, input columns m*tx + u - PadL; those in
	// [ulo, uhi) exist. The others are 0 in every T row (the transform of zeros) for every
	// channel: the column pass writes [ulo, uhi) only. That includes the columns of tiles n..nrow-1
	// and those the vector row pass reads past them (up to a multiple of 8 tiles).
	width := m*nrow + 2
	if nrow > n {
		width = min(wt, m*((nrow+7)&^7)+4)
	}
	ulo := max(0, s.PadL-m*tx)
	uhi := min(m*n+2, in.W+s.PadL-m*tx)
	if uhi < ulo {
		uhi = ulo
	}
	for i := 0; i < alpha; i++ {
		tr := rows[i*wt : i*wt+width]
		zero(tr[:ulo])
		zero(tr[uhi:])
	}
	zeros := rows[(alpha+m)*wt:][:wt]
	zero(zeros[:uhi-ulo])
	x0 := m*tx + ulo - s.PadL // input column of u = ulo
	// Offset in a channel plane of input row r of the tile row at column x0 (-1 outside the input).
	var off [6]int
	for r := 0; r < alpha; r++ {
		off[r] = -1
		if iy := m*ty + r - s.PadT; iy >= 0 && iy < in.H {
			off[r] = iy*in.W + x0
		}
	}
	f.c.code.winoInput(f, item, hw, off, zeros, ulo, uhi-ulo, nrow, v, ps, ldv, rows, wt, c0, c1)
}

// winoInputGo is the transform of inputSegment for channels [c0, c1) of batch item item (Cin
// planes of hw floats) in Go: off[r] is the offset of input row r in a plane (-1 outside the
// input), nu the columns of input from column ulo of the T rows (rows, wt floats apart), zeros
// a row of at least nu zeros, n the tiles, and v, ps, ldv where V goes (channel c at
// v[c*ldv:]).
func winoInputGo(f *winoForm, item []float32, hw int, off [6]int, zeros []float32, ulo, nu, n int, v []float32, ps, ldv int, rows []float32, wt, c0, c1 int) {
	s := &f.c.spec
	m, alpha := f.m, f.alpha
	var xr [6][]float32
	var scale, shift [6]float32
	for ci := c0; ci < c1; ci++ {
		if nu > 0 {
			var sc, sh float32 = 1, 0
			if s.PreScale != nil {
				sc, sh = s.PreScale[ci], s.PreShift[ci]
			}
			for r := 0; r < alpha; r++ {
				if off[r] < 0 {
					// A row of padding: zeros, with a prologue of 0*x + 0.
					xr[r] = zeros[:nu]
					scale[r], shift[r] = 0, 0
					continue
				}
				xr[r] = item[ci*hw+off[r] : ci*hw+off[r]+nu]
				scale[r], shift[r] = sc, sh
			}
			winoInColsGo(m, rows[ulo:], wt, &xr, nu, &scale, &shift, s.PreRelu)
		}
		winoInRowsGo(m, rows, wt, n, v[ci*ldv:], ps)
	}
}

// outputSegment transforms M[p][mo][j] = mm[p*ps + mo*ldv + j] of tiles (ty, tx .. tx+n-1) of batch
// item b, for output channels [mo0, mo1), into the output: first along each row of the alpha x alpha tile,
// S_i[q] = sum_k A^T[q][k] M[i*alpha+k], then down, Y[y][q] = post(bias + sum_i A^T[y][i] S_i[q]),
// written into m rows of scratch (tiles side by side) and copied into the output, clipped to its
// size.
func (f *winoForm) outputSegment(out, res Image, b, ty, tx, n int, mm []float32, ps, ldv int, rows []float32, wt int, os []float32, mo0, mo1 int) {
	s := &f.c.spec
	m := f.m
	ohw := out.H * out.W
	item := out.Data[b*out.BatchStride:][:s.Cout*ohw]
	tail := f.c.hasTail()
	resItem := itemResidual(res, b, 0, ohw)
	ox0 := m * tx
	cols := min(m*n, out.W-ox0)
	nrows := min(m, out.H-m*ty)
	for mo := mo0; mo < mo1; mo++ {
		var bias float32
		if s.Bias != nil {
			bias = s.Bias[mo]
		}
		f.c.code.winoOut(m, mm[mo*ldv:], ps, n, rows, wt, bias, s.PostRelu, os)
		dst := item[mo*ohw:]
		for y := 0; y < nrows; y++ {
			oy := m*ty + y
			copy(dst[oy*out.W+ox0:oy*out.W+ox0+cols], rows[y*wt:y*wt+cols])
		}
		if tail {
			// The residual and activation while the segment's rows are in cache.
			f.c.finishRows(item, resItem, mo*ohw+m*ty*out.W+ox0, nrows, cols, out.W)
		}
	}
}

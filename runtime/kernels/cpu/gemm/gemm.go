package gemm

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Tile sizes. The rows of the register tile, MR, and the width of the B panels, NR, is a property of a level's
// Kernels (Kernels.NR): 24 for the generic and avx2 levels (4x24: 12 ymm accumulators, 3 B loads
// and 4 broadcasts per k, measured on par with 6x16 and wasting no rows on the 32-, 64- and
// 128-row weight matrices of DenseNet), 32 for avx512 (8x32: 16 zmm accumulators, twice the
// columns per instruction). MR is 4 at the generic and avx2 levels and 8 at avx512 (Kernels.MR),
// so A is packed for the level that multiplies it (PackA takes the Kernels). MaxMR and MaxNR are the largest, which sizes scratch and the fixed arrays that
// must hold a panel row of any level. KC is the depth of the B panel kept in L1 (KC*NR*4 bytes:
// 24 KiB at NR = 24, 32 KiB at 32, within the 48 KiB L1 of the cores that run AVX-512).
const (
	MaxMR = 8
	MaxNR = 32
	KC    = 256
)

// ErrArgs reports inconsistent GEMM arguments (sizes, leading dimensions, short slices).
var ErrArgs = errors.New("gemm: bad arguments")

// PackedA is an M x K matrix stored as ceil(M/MR) panels of MR rows: element (m, k) is at
// data[(p*K + k)*MR + i] with p = m/MR, i = m%MR, so the micro-kernel reads MR consecutive floats
// per step of k. Rows past M in the last panel are zero.
type PackedA struct {
	M, K int
	mr   int // the rows per panel: the MR of the Kernels it was packed for
	data []float32
}

// MR returns the rows per panel of p (the MR of the Kernels PackA was given).
func (p *PackedA) MR() int { return p.mr }

// PackA packs the row-major m x k matrix a (row i at a[i*lda:]) for the kernels code (nil: those
// of the level this process runs at), in panels of code.MR() rows; a Job must multiply it with
// kernels of that MR. It panics when a is too short or lda < k: the sizes come from validated
// weight shapes, so that is a programming error.
func PackA(code *Kernels, m, k int, a []float32, lda int) *PackedA {
	return PackAInto(code, nil, m, k, a, lda)
}

// PackAInto is PackA reusing p's memory when it is large enough (p may be nil): operands packed
// on every call, such as a training step's output gradients, then cost no allocation.
func PackAInto(code *Kernels, p *PackedA, m, k int, a []float32, lda int) *PackedA {
	MR := orActive(code).mr
	if m < 0 || k < 0 || lda < k || (m > 0 && k > 0 && len(a) < (m-1)*lda+k) {
		panic(fmt.Sprintf("gemm: PackA(%d, %d, len %d, lda %d): bad arguments", m, k, len(a), lda))
	}
	panels := (m + MR - 1) / MR
	size := panels * k * MR
	if p == nil || cap(p.data) < size {
		p = &PackedA{data: make([]float32, size)}
	}
	p.M, p.K, p.mr, p.data = m, k, MR, p.data[:size]
	clear(p.data[(m/MR)*k*MR:]) // rows past M in the last panel must be zero
	for i := 0; i < m && k > 0; i++ {
		row := a[i*lda : i*lda+k]
		dst := p.data[(i/MR)*k*MR+i%MR:]
		for kk, v := range row {
			dst[kk*MR] = v
		}
	}
	return p
}

// RowPanels returns rows [q0*MR, min(M, q1*MR)) of p (MR = p.MR()), row panels q0..q1-1, as a PackedA that
// shares p's memory (a value, so that holding it costs no allocation). It panics unless
// 0 <= q0 <= q1 <= ceil(M/MR).
func (p *PackedA) RowPanels(q0, q1 int) PackedA {
	MR := p.mr
	if q0 < 0 || q1 < q0 || q1 > (p.M+MR-1)/MR {
		panic(fmt.Sprintf("gemm: RowPanels(%d, %d) of %d rows", q0, q1, p.M))
	}
	return PackedA{M: min(p.M, q1*MR) - q0*MR, K: p.K, mr: MR, data: p.data[q0*p.K*MR : q1*p.K*MR]}
}

// BPanel supplies the B matrix (K x N) of a product panel by panel. PackB writes rows [k0, k1)
// and columns [n0, n0+nr) of B as dst[(k-k0)*width + j] = B[k][n0+j] for j < nr; lanes
// nr <= j < width must be finite (0 is best): their results are computed and discarded. width
// is the panel width of the Job's kernels (Kernels.NR), and len(dst) is (k1-k0)*width. PackB is
// called concurrently from several worker slots, with distinct dst.
type BPanel interface {
	PackB(dst []float32, width, k0, k1, n0, nr int)
}

// DirectB is a BPanel whose rows can also be read in place: B[k][n] = r.Src[r.Offs[k] + n] for
// r = DirectRows(), with no prologue (r.Scale nil, r.ReLU false). The driver then lets the
// micro-kernel read full panels (Kernels.NR columns) straight from Src and calls PackB only for the last,
// partial panel. A convolution over a zero-padded copy of its input uses this to skip the im2col
// gather altogether.
type DirectB interface {
	BPanel
	DirectRows() *Rows
}

// Epilogue says what happens to a finished element of C:
//
//	C[m][n] = act(sum + (C[m][n] if Accumulate) + Bias[m])
//
// with act = max(x, 0) when ReLU (NaN stays NaN), the identity otherwise; then, when Clamp,
// x = Lo > x ? Lo : x and x = Hi < x ? Hi : x (ReLU6 and Clip, in the micro-kernels' registers;
// NaN stays NaN). Bias may be nil. Post, when not nil, is then called on each block of C as soon
// as it is final, while it is still in cache (a residual sum or an activation the micro-kernels
// do not apply).
type Epilogue struct {
	Bias       []float32
	ReLU       bool
	Accumulate bool
	Clamp      bool
	Lo, Hi     float32
	Post       TilePost
}

// TilePost finishes blocks of C. Finish(off, rows, cols, ldc) is called once the rows r < rows
// of cols floats at C[off + r*ldc] (C as given to Job.Init) hold their final values, after the
// bias and ReLU; every element of C is in exactly one such block. Calls come from the worker
// slots, concurrently, for disjoint blocks.
type TilePost interface {
	Finish(off, rows, cols, ldc int)
}

// micro-kernel flags.
const (
	flagCarry = 1 << iota // add the tile already in C
	flagBias              // add bias[i] to row i
	flagReLU              // max(x, 0)
	flagClamp             // clamp to [bias[MR], bias[MR+1]]: the bias block has MR+2 floats
)

// kernelFunc computes the MR x NR tile (NR: its Kernels' panel width; edgeFunc is the same for
// the first columns of it) T = sum_{k<kc} a[k*MR+i] * b[k*NR+j], then T += c (flagCarry),
// T += bias[i] (flagBias), T = max(T, 0) (flagReLU), the clamp (flagClamp), and stores
// c[i*ldc+j] = T[i][j].
type kernelFunc func(kc int, a, b, c *float32, ldc int, bias *float32, flags int)

// slotFloats is the scratch of one worker slot: a K x NR panel of B (the full depth is needed for
// a one-column panel, see gemvPanel), an MR x NR tile, a bias block of MR+2 floats (the clamp's, see
// flagClamp), and room to align the first two to 64 bytes. It is sized for MaxNR and MaxMR, so
// that the scratch a caller sizes does not depend on the level that uses it.
func slotFloats(k int) int {
	return max(k, 1)*MaxNR + MaxMR*MaxNR + (MaxMR + 2) + 2*16
}

// ScratchSize returns the number of floats of scratch a Job over K = k, N = n needs when run by
// threads worker slots.
func ScratchSize(k, n, threads int) int {
	return max(threads, 1) * slotFloats(k)
}

// Job is one prepared product C = A*B split into tiles for parallel workers. Init prepares it;
// Do(lo, hi) then runs worker slots lo..hi-1, and the product is complete once slots
// 0..Slots()-1 have all returned, whichever goroutines ran them and in whatever grouping (a
// cpu.Workers: workers.Run(job, job.Slots(), 1, &wg)). A Job may be reused for another product after
// that; it must not be copied once used.
type Job struct {
	a       *PackedA
	b       BPanel
	n       int
	c       []float32
	ldc     int
	ep      Epilogue
	scratch []float32
	// The code of the Kernels given to Init, copied into the Job, which every tile already
	// reads: a call costs one load and one indirect call, per tile.
	mr, nr, step int                 // the tile rows, the panel width, the lanes of a vector register
	full         kernelFunc          // the whole tile
	edges        [MaxNR / 8]edgeFunc // edges[i] computes up to step*(i+1) columns (see edgeFunc)
	direct       *Rows               // B read in place (see DirectB), or nil
	kdirect      directFunc
	kgemv        gemvFunc // single-column products (a batch-1 Linear layer); nil: the narrowest kernel

	slots              int
	mBlocks, nGroups   int
	mPerBlock, nPerGrp int // MR-panels per row block, NR-panels per column group
	kStep              int
	next               atomic.Int64
}

// Init prepares j for C (rows at c[m*ldc:], n columns) = A * B with epilogue ep, using threads
// worker slots, scratch of at least ScratchSize(a.K, n, threads) floats and the kernels code
// (nil: those of the level this process runs at, isa.Selected).
func (j *Job) Init(code *Kernels, a *PackedA, b BPanel, n int, c []float32, ldc int, ep Epilogue, scratch []float32, threads int) error {
	if a == nil || b == nil {
		return fmt.Errorf("%w: nil A or B", ErrArgs)
	}
	kern := orActive(code)
	m, k := a.M, a.K
	if n < 0 || ldc < n {
		return fmt.Errorf("%w: n = %d, ldc = %d", ErrArgs, n, ldc)
	}
	if m > 0 && n > 0 && len(c) < (m-1)*ldc+n {
		return fmt.Errorf("%w: C has %d floats, %dx%d with ldc %d needs %d", ErrArgs, len(c), m, n, ldc, (m-1)*ldc+n)
	}
	if ep.Bias != nil && len(ep.Bias) < m {
		return fmt.Errorf("%w: bias has %d values for %d rows", ErrArgs, len(ep.Bias), m)
	}
	if a.mr != kern.mr {
		return fmt.Errorf("%w: A is packed in %d-row panels for kernels of %d rows", ErrArgs, a.mr, kern.mr)
	}
	threads = max(threads, 1)
	if len(scratch) < ScratchSize(k, n, threads) {
		return fmt.Errorf("%w: scratch has %d floats, need %d", ErrArgs, len(scratch), ScratchSize(k, n, threads))
	}
	*j = Job{a: a, b: b, n: n, c: c, ldc: ldc, ep: ep, scratch: scratch, mr: kern.mr, nr: kern.nr, step: kern.step, full: kern.full, kdirect: kern.direct, kgemv: kern.gemv}
	copy(j.edges[:], kern.edge)
	NR, MR := j.nr, j.mr
	if d, ok := b.(DirectB); ok {
		r := d.DirectRows()
		if r != nil && r.Scale == nil && !r.ReLU && len(r.Offs) == k && k > 0 && n > 0 {
			if r.minOff < 0 || r.maxOff+n > len(r.Src) {
				return fmt.Errorf("%w: direct B rows read [%d, %d) of %d floats", ErrArgs, r.minOff, r.maxOff+n, len(r.Src))
			}
			j.direct = r
		}
	}
	nP := (n + NR - 1) / NR
	mP := (m + MR - 1) / MR
	// Column groups are the unit of work: several per slot so that a slow thread does not hold
	// the others up. With fewer column panels than two per thread, that cannot balance: then
	// each slot takes one row block of A (an equal share) with every column, packing all of B
	// itself. Smaller tiles there measured slower (at NR = 24): every row block repacks B, and the partial
	// last panel (49 = 24+24+1 columns at 7x7) makes tiles of very unequal cost (m=128, k=1024,
	// n=49 on 2 threads: 9 tiles 0.19 ms, no faster than 1 thread; 2 row blocks 0.11 ms).
	j.nGroups, j.mBlocks = 1, 1
	if threads > 1 {
		j.nGroups = min(nP, 8*threads)
		if nP < 2*threads {
			j.nGroups, j.mBlocks = 1, min(mP, threads)
		}
	}
	j.nPerGrp = (nP + j.nGroups - 1) / max(j.nGroups, 1)
	if j.nPerGrp > 0 {
		j.nGroups = (nP + j.nPerGrp - 1) / j.nPerGrp
	}
	j.mPerBlock = (mP + j.mBlocks - 1) / max(j.mBlocks, 1)
	if j.mPerBlock > 0 {
		j.mBlocks = (mP + j.mPerBlock - 1) / j.mPerBlock
	}
	// K blocks of equal depth, at most KC.
	if k > 0 {
		nk := (k + KC - 1) / KC
		j.kStep = (k + nk - 1) / nk
	}
	j.slots = min(threads, max(j.nGroups*j.mBlocks, 1))
	if m == 0 || n == 0 {
		j.slots = 0
	}
	return nil
}

// Slots returns the number of worker slots to run (Do(0, Slots()) in total). It is 0 when C is
// empty.
func (j *Job) Slots() int { return j.slots }

// Do runs worker slots [lo, hi). Each slot takes tiles until none is left.
func (j *Job) Do(lo, hi int) {
	per := slotFloats(j.a.K)
	items := int64(j.nGroups * j.mBlocks)
	for s := lo; s < hi && s < j.slots; s++ {
		ws := j.scratch[s*per : (s+1)*per]
		bb := align64(ws)
		ct := align64(bb[max(j.a.K, 1)*j.nr:])
		cb := ct[j.mr*j.nr:][:j.mr+2]
		ct = ct[:j.mr*j.nr]
		bb = bb[:max(j.a.K, 1)*j.nr]
		for {
			it := j.next.Add(1) - 1
			if it >= items {
				break
			}
			j.tile(int(it)%j.mBlocks, int(it)/j.mBlocks, bb, ct, cb)
		}
	}
}

// align64 returns the tail of s that starts on a 64-byte boundary (s must have 16 floats spare).
func align64(s []float32) []float32 {
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	skip := int((64 - addr%64) % 64 / 4)
	return s[skip:]
}

// tile computes row block mb of column group ng; bb, ct and cb are the slot's B panel, tile and
// bias block.
func (j *Job) tile(mb, ng int, bb, ct, cb []float32) {
	m, k, NR, MR := j.a.M, j.a.K, j.nr, j.mr
	q0 := mb * j.mPerBlock
	q1 := min((m+MR-1)/MR, q0+j.mPerBlock)
	p0 := ng * j.nPerGrp
	p1 := min((j.n+NR-1)/NR, p0+j.nPerGrp)
	if k == 0 {
		for p := p0; p < p1; p++ {
			n0 := p * NR
			j.finishZeroK(q0*MR, min(m, q1*MR), n0, min(NR, j.n-n0))
		}
		j.finishTile(q0, q1, p0, p1)
		return
	}
	for p := p0; p < p1; p++ {
		n0 := p * NR
		nr := min(NR, j.n-n0)
		if nr == 1 && j.kgemv != nil {
			j.gemvPanel(q0, q1, n0, bb, ct)
		} else {
			j.panel(q0, q1, n0, nr, bb, ct, cb)
		}
	}
	j.finishTile(q0, q1, p0, p1)
}

// finishTile calls the epilogue's Post on the tile of row panels [q0, q1) and column panels
// [p0, p1), now final and still in cache: once per tile, not per panel, so that each call's
// rows are as long as the tile (the Post's per-row cost is a function call).
func (j *Job) finishTile(q0, q1, p0, p1 int) {
	if j.ep.Post == nil {
		return
	}
	m0, n0 := q0*j.mr, p0*j.nr
	j.ep.Post.Finish(m0*j.ldc+n0, min(j.a.M, q1*j.mr)-m0, min(j.n, p1*j.nr)-n0, j.ldc)
}

// panel computes rows [q0*MR, q1*MR) ∩ [0, M) of the nr <= NR columns at n0, K block by K
// block: each block's B panel is packed (or, for a full panel of a DirectB, read in place) and
// stays in L1 while the row panels of A sweep over it, the micro-kernels writing straight into
// C except for a partial last row panel (see target). A full panel runs the full kernel; the
// last, partial one (nr < NR) the edge kernel of as many vector registers as hold real
// columns, under the lane mask of the rest. Both take the flags and bias block of blockFlags
// and target, and the edge kernels compute their columns exactly as the full kernel does, so
// that a column rounds the same whichever panel it falls in (Winograd's GEMMs and the
// convolutions put an image's columns in different panels at different batch sizes).
func (j *Job) panel(q0, q1, n0, nr int, bb, ct, cb []float32) {
	m, k, NR, MR := j.a.M, j.a.K, j.nr, j.mr
	direct := j.direct != nil && nr == NR
	var edge edgeFunc
	var mask *int32
	if nr < NR {
		w := (nr + j.step - 1) / j.step // vector registers per row that hold real columns
		edge, mask = j.edges[w-1], &edgeMask[16-(nr-j.step*(w-1))]
	}
	for k0 := 0; k0 < k; k0 += j.kStep {
		k1 := min(k, k0+j.kStep)
		if !direct {
			j.b.PackB(bb[:(k1-k0)*NR], NR, k0, k1, n0, nr)
		}
		flags := j.blockFlags(k0, k1, cb)
		for q := q0; q < q1; q++ {
			m0 := q * MR
			ap := &j.a.data[(q*k+k0)*MR]
			// A full row panel writes C, with the bias read in place unless the clamp's bias
			// block is needed: inline, as the kernels may run only a few dozen k steps
			// (a 1x1 convolution over 24 channels).
			var c, bias *float32
			ldc := j.ldc
			if m0+MR <= m && flags&flagClamp == 0 {
				c = &j.c[m0*j.ldc+n0]
				if flags&flagBias != 0 {
					bias = &j.ep.Bias[m0]
				}
			} else {
				c, ldc, bias = j.target(m0, n0, nr, k0, flags, ct, cb)
			}
			switch {
			case direct:
				j.kdirect(k1-k0, ap, &j.direct.Src[n0], &j.direct.Offs[k0], c, ldc, bias, flags)
			case edge != nil:
				edge(k1-k0, ap, &bb[0], c, ldc, bias, flags, mask)
			default:
				j.full(k1-k0, ap, &bb[0], c, ldc, bias, flags)
			}
			if k1 == k && m0+MR > m {
				j.partialOut(ct, m0, n0, nr)
			}
		}
	}
}

// edgeMask holds the lane masks of the edge kernels: &edgeMask[16-r] is the mask of the first
// r lanes of a vector register (r <= 16 lanes at avx512, r <= 8 at avx2 and generic).
var edgeMask = [32]int32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}

// gemvPanel computes a last column panel of one column (at n0) as matrix-vector products, which
// the narrowest edge kernel would do at 1/8 (or 1/16) of its speed: B is packed for the whole
// depth and the packed column (stride NR) compacted in place into x; each row panel's product
// goes through the tile ct and merge. Its sums round differently from the kernels': callers
// whose columns can move between panels (Winograd's tiles) keep one-column edges out
// (winoGemmCols).
func (j *Job) gemvPanel(q0, q1, n0 int, bb, ct []float32) {
	m, k, NR, MR := j.a.M, j.a.K, j.nr, j.mr
	for k0 := 0; k0 < k; k0 += j.kStep {
		k1 := min(k, k0+j.kStep)
		j.b.PackB(bb[k0*NR:k1*NR], NR, k0, k1, n0, 1)
	}
	for kk := 1; kk < k; kk++ {
		bb[kk] = bb[kk*NR]
	}
	x := bb[:k]
	for q := q0; q < q1; q++ {
		m0 := q * MR
		j.kgemv(k, j.a.data[q*k*MR:], x, ct[:MR])
		for i := MR - 1; i > 0; i-- {
			ct[i*NR] = ct[i]
		}
		j.merge(ct, m0, min(MR, m-m0), n0, 1)
	}
}

// blockFlags returns the micro-kernel flags of K block [k0, k1): the carry on every block but
// the first (and on the first too when accumulating), then on the last the bias, ReLU and clamp
// (whose bounds it writes into the bias block cb). Every panel, full or edge, and every row
// panel, full or partial, uses these flags, so that an element of C rounds the same wherever
// it is computed.
func (j *Job) blockFlags(k0, k1 int, cb []float32) int {
	flags := 0
	if k0 > 0 || j.ep.Accumulate {
		flags |= flagCarry
	}
	if k1 == j.a.K {
		if j.ep.Bias != nil {
			flags |= flagBias
		}
		if j.ep.ReLU {
			flags |= flagReLU
		}
		if j.ep.Clamp {
			flags |= flagClamp
			cb[j.mr], cb[j.mr+1] = j.ep.Lo, j.ep.Hi
		}
	}
	return flags
}

// target returns where the micro-kernel computing the row panel at m0 (nr columns at n0) for the
// K block at k0 writes, and its bias block. A full row panel writes C; its bias is read in place
// (or from cb, copied there with the clamp's bounds). A partial one (m0+MR > M) writes the tile
// ct, which holds its rows of C for the carry of an accumulating first block, and whose biases
// are copied into cb, padded with zeros (the kernels read MR of them): partialOut then copies
// the real rows out once the last K block is done.
func (j *Job) target(m0, n0, nr, k0, flags int, ct, cb []float32) (c *float32, ldc int, bias *float32) {
	MR, NR := j.mr, j.nr
	rows := min(MR, j.a.M-m0)
	if rows == MR {
		switch {
		case flags&flagClamp != 0:
			if flags&flagBias != 0 {
				copy(cb[:MR], j.ep.Bias[m0:m0+MR])
			}
			bias = &cb[0]
		case flags&flagBias != 0:
			bias = &j.ep.Bias[m0]
		}
		return &j.c[m0*j.ldc+n0], j.ldc, bias
	}
	if k0 == 0 && flags&flagCarry != 0 {
		for i := 0; i < rows; i++ {
			copy(ct[i*NR:i*NR+nr], j.c[(m0+i)*j.ldc+n0:])
		}
	}
	if flags&(flagBias|flagClamp) != 0 {
		clear(cb[:MR])
		if flags&flagBias != 0 {
			copy(cb[:rows], j.ep.Bias[m0:])
		}
		bias = &cb[0]
	}
	return &ct[0], NR, bias
}

// partialOut copies the real rows of the partial row panel at m0, finished in ct by target's
// kernels, to C (nr columns at n0).
func (j *Job) partialOut(ct []float32, m0, n0, nr int) {
	for i := 0; i < j.a.M-m0; i++ {
		copy(j.c[(m0+i)*j.ldc+n0:][:nr], ct[i*j.nr:])
	}
}

// merge applies the epilogue to the mr x nr corner of tile t (row stride j.nr) and stores it in
// C at (m0, n0).
func (j *Job) merge(t []float32, m0, mr, n0, nr int) {
	NR := j.nr
	for i := 0; i < mr; i++ {
		row := j.c[(m0+i)*j.ldc+n0:][:nr]
		src := t[i*NR:][:nr]
		var b float32
		if j.ep.Bias != nil {
			b = j.ep.Bias[m0+i]
		}
		for x, v := range src {
			if j.ep.Accumulate {
				v += row[x]
			}
			if j.ep.Bias != nil {
				v += b
			}
			if j.ep.ReLU && v < 0 {
				v = 0
			}
			if j.ep.Clamp {
				if j.ep.Lo > v {
					v = j.ep.Lo
				}
				if j.ep.Hi < v {
					v = j.ep.Hi
				}
			}
			row[x] = v
		}
	}
}

// finishZeroK applies the epilogue to C when K = 0 (the sum is empty).
func (j *Job) finishZeroK(m0, m1, n0, nr int) {
	var zero [MaxMR * MaxNR]float32
	for m := m0; m < m1; m += j.mr {
		j.merge(zero[:], m, min(j.mr, m1-m), n0, nr)
	}
}

// Run computes C = A*B on the calling goroutine alone: a Job with one slot, with the process's
// kernels. It is meant for small products and tests; scratch must hold ScratchSize(a.K, n, 1)
// floats.
func Run(a *PackedA, b BPanel, n int, c []float32, ldc int, ep Epilogue, scratch []float32) error {
	var j Job
	if err := j.Init(nil, a, b, n, c, ldc, ep, scratch, 1); err != nil {
		return err
	}
	j.Do(0, j.Slots())
	return nil
}

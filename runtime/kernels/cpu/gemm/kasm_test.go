package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm/internal/gemmasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// The tests in this file run the kernels of gemm_amd64.s as the generator describes them
// (package gemmasm) in the kasm interpreter, on every machine and in every build: the kernels'
// logic is checked against the Go kernels even where the CPU cannot run the assembly. Where it
// can, the assembly runs on the same inputs and must agree with the interpreter bit for bit,
// which checks the printing and the interpreter's semantics.

// packFunc is the type of packAVX2 and packAVX512 (packGo takes the panel width first).
type packFunc func(dst, src *float32, offs *int32, k int, segs *segment, nseg int, scale, shift *float32, flags int)

// tileFile is one generated file: the shape it was generated with and where it and its Go
// declarations are.
type tileFile struct {
	shape     gemmasm.Shape
	asm, decl string
}

// tiles are the shapes of the assembly files (see the go:generate lines in doc.go): the 4x24
// AVX2 kernels (avx2Table) and the 8x32 AVX-512 ones (avx512Table).
var tiles = []tileFile{
	{gemmasm.Shape{MR: 4, NR: 24, Lanes: 8, SegLanes: MaxNR}, "gemm_amd64.s", "kernels_amd64.go"},
	{gemmasm.Shape{MR: 8, NR: 32, Lanes: 16, SegLanes: MaxNR}, "gemm_avx512_amd64.s", "kernels_avx512_amd64.go"},
}

// tile is the AVX2 shape, which the planted-bug test mutates.
var tile = tiles[0].shape

// TestGeneratedFileMatchesIR: the assembly files are what the IR prints, so what the
// interpreter runs is what the assembler assembles (a stale file fails here, with `go generate`
// as the fix).
func TestGeneratedFileMatchesIR(t *testing.T) {
	for _, tf := range tiles {
		f, err := tf.shape.File()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			path string
			want []byte
		}{{tf.asm, f.Bytes()}, {tf.decl, tf.shape.Decl()}} {
			got, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(c.want) {
				t.Errorf("%s differs from what the IR prints: run go generate", c.path)
			}
		}
	}
}

// buf is a test slice with spare capacity: the interpreter maps exactly its length, so that a
// kernel reading one float too far faults, while the assembly gets a pointer that is valid even
// when the length is 0.
func buf(r *rand.Rand, n int) []float32 {
	s := make([]float32, n, n+16)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func ptr[T any](s []T) *T { return &s[:cap(s)][0] }

// bitsEqual returns an error at the first element where got and want differ in their bits.
func bitsEqual(what string, got, want []float32) error {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return fmt.Errorf("%s: element %d = %g (%#x), want %g (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
	return nil
}

// close returns an error unless got and want agree within the rounding of unfused arithmetic.
func closeTo(what string, got, want []float32) error {
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) || math.Abs(g-w) > 1e-5*(1+math.Abs(w)) {
			return fmt.Errorf("%s: element %d = %g, want %g", what, i, g, w)
		}
	}
	return nil
}

// kernRef is kernGoWidth (w columns) or kernGoDirect with every multiply-add fused, as VFMADD231PS
// computes it: the interpreter and the hardware must match it bit for bit. rows(k) is row k of B.
func kernRef(MR, w, kc int, a []float32, rows func(k int) []float32, c []float32, ldc int, bias []float32, flags int) {
	var t [MaxMR][MaxNR]float32
	for k := 0; k < kc; k++ {
		row := rows(k)
		for i := 0; i < MR; i++ {
			for j := 0; j < w; j++ {
				t[i][j] = kasm.FMA32(a[k*MR+i], row[j], t[i][j])
			}
		}
	}
	for i := 0; i < MR; i++ {
		for j := 0; j < w; j++ {
			v := t[i][j]
			if flags&flagCarry != 0 {
				v += c[i*ldc+j]
			}
			if flags&flagBias != 0 {
				v += bias[i]
			}
			if flags&flagReLU != 0 && v < 0 {
				v = 0
			}
			if flags&flagClamp != 0 {
				if bias[MR] > v {
					v = bias[MR]
				}
				if bias[MR+1] < v {
					v = bias[MR+1]
				}
			}
			c[i*ldc+j] = v
		}
	}
}

// kernCase is one micro-kernel call of tile s: the full kernel (w = NR/Lanes registers per row),
// or with edge the edge kernel of w registers per row computing s.Lanes*(w-1)+rem columns (rem
// lanes of the last register, 1 <= rem <= Lanes); kc steps, flags, and for the direct kernel
// the row offsets (relative to b, in floats).
type kernCase struct {
	s            gemmasm.Shape
	w, kc, flags int
	edge         bool
	rem          int
	direct       bool
	offs         []int32
}

func (c kernCase) String() string {
	switch {
	case c.direct:
		return fmt.Sprintf("%s direct kc=%d flags=%d offs=%v", c.s.ISA(), c.kc, c.flags, c.offs)
	case c.edge:
		return fmt.Sprintf("%s edge w=%d cols=%d kc=%d flags=%d", c.s.ISA(), c.s.Lanes*c.w, c.cols(), c.kc, c.flags)
	}
	return fmt.Sprintf("%s full kc=%d flags=%d", c.s.ISA(), c.kc, c.flags)
}

// cols returns the columns of C the case computes.
func (c kernCase) cols() int {
	if c.edge {
		return c.s.Lanes*(c.w-1) + c.rem
	}
	return c.s.Lanes * c.w
}

// name returns the name of the case's kernel in the generated file.
func (c kernCase) name() string {
	switch {
	case c.direct:
		return c.s.DirectName()
	case c.edge:
		return c.s.EdgeName(c.w)
	}
	return c.s.KernelName()
}

// laneMask returns the edge kernels' mask of the first rem of lanes lanes (as edgeMask holds it),
// with spare capacity so that the assembly may be given a pointer to it.
func laneMask(rem, lanes int) []int32 {
	m := make([]int32, lanes, lanes+16)
	copy(m, edgeMask[16-rem:])
	return m
}

// hwKernels is the assembly of one generated file: the full kernel, the direct kernel and the
// edge kernels (edge[w-1] has w registers per row).
type hwKernels struct {
	full   kernelFunc
	direct directFunc
	edge   []edgeFunc
}

// kernResult says which comparisons a case made.
type kernResult struct{ hw bool }

// checkKernel runs fn (the IR of the case's kernel) in the interpreter and compares C with the
// fused reference (bit for bit), with kernGo (bit for bit when kc <= 1, where no rounding is
// fused away; within tolerance otherwise) and, when hw is not nil, with the assembly (bit for
// bit).
func checkKernel(r *rand.Rand, fn *kasm.Func, c kernCase, hw *hwKernels) (kernResult, error) {
	NR, MR := c.s.NR, c.s.MR
	ldc := NR + 3
	w := c.cols()
	wb := c.w * c.s.Lanes // the floats of a B row the kernel reads
	a := buf(r, c.kc*MR)
	// The bias block: MR biases, then the clamp's bounds (flagClamp), which the N(0,1) sums cross.
	bias := append(buf(r, MR), -0.5, 0.75)
	// C: the interpreter maps exactly the floats the tile covers, so a store past column w of
	// the last row faults; the columns past w of the other rows must come back unchanged.
	c0 := buf(r, (MR-1)*ldc+w)
	c0[ldc+1] = float32(math.NaN()) // ReLU and the carry must keep a NaN
	var b []float32
	bIdx := 0 // b's element that the kernel's b pointer addresses
	var rows func(k int) []float32
	if c.direct {
		lo, hi := 0, 0
		for _, o := range c.offs[:c.kc] {
			lo, hi = min(lo, int(o)), max(hi, int(o))
		}
		b = buf(r, hi-lo+NR)
		bIdx = -lo
		rows = func(k int) []float32 { return b[bIdx+int(c.offs[k]):] }
	} else {
		// The last row is cut after the wb floats the kernel reads: one reading past them faults.
		b = buf(r, max(c.kc-1, 0)*NR+wb)
		if c.kc == 0 {
			b = b[:0]
		}
		rows = func(k int) []float32 { return b[k*NR:] }
	}

	want := append([]float32(nil), c0...)
	kernRef(MR, w, c.kc, a, rows, want, ldc, bias, c.flags)

	got := append(make([]float32, 0, cap(c0)), c0...)
	var mem kasm.Memory
	m := kasm.Machine{Mem: &mem}
	scribble(r, &m)
	aA, bA := mem.Map("a", kasm.Bytes(a)), mem.Map("b", kasm.Bytes(b))+uint64(4*bIdx)
	cA, biasA := mem.Map("c", kasm.Bytes(got)), mem.Map("bias", kasm.Bytes(bias))
	var err error
	if c.direct {
		offs := c.offs[:c.kc:c.kc]
		oA := mem.Map("offs", kasm.Bytes(offs))
		err = m.Run(fn, uint64(c.kc), aA, bA, oA, cA, uint64(ldc), biasA, uint64(c.flags))
	} else if c.edge {
		mA := mem.Map("mask", kasm.Bytes(laneMask(c.rem, c.s.Lanes)))
		err = m.Run(fn, uint64(c.kc), aA, bA, cA, uint64(ldc), biasA, uint64(c.flags), mA)
	} else {
		err = m.Run(fn, uint64(c.kc), aA, bA, cA, uint64(ldc), biasA, uint64(c.flags))
	}
	if err != nil {
		return kernResult{}, err
	}
	if err := bitsEqual("interpreter vs fused Go", got, want); err != nil {
		return kernResult{}, err
	}

	goC := append(make([]float32, 0, cap(c0)), c0...)
	if c.direct {
		// kernGoDirect writes all NR columns and reads whole rows: give it room.
		full := append(append(make([]float32, 0, MR*ldc), c0...), make([]float32, ldc-w)...)
		kernGoDirectNR(MR, NR, c.kc, ptr(a), &b[:cap(b)][bIdx], ptr(c.offs), &full[0], ldc, &bias[0], c.flags)
		goC = full[:len(c0)]
	} else if c.edge {
		goEdges(MR, NR, c.s.Lanes)[c.w-1](c.kc, ptr(a), ptr(b), ptr(goC), ldc, &bias[0], c.flags, ptr(laneMask(c.rem, c.s.Lanes)))
	} else {
		goFull(MR, NR)(c.kc, ptr(a), ptr(b), ptr(goC), ldc, &bias[0], c.flags)
	}
	cmp := closeTo
	if c.kc <= 1 {
		cmp = bitsEqual
	}
	if err := cmp("interpreter vs kernGo", got, goC); err != nil {
		return kernResult{}, err
	}

	if hw == nil {
		return kernResult{}, nil
	}
	hwC := append(make([]float32, 0, cap(c0)), c0...)
	switch {
	case c.direct:
		hw.direct(c.kc, ptr(a), &b[:cap(b)][bIdx], ptr(c.offs), ptr(hwC), ldc, &bias[0], c.flags)
	case c.edge:
		hw.edge[c.w-1](c.kc, ptr(a), ptr(b), ptr(hwC), ldc, &bias[0], c.flags, ptr(laneMask(c.rem, c.s.Lanes)))
	default:
		hw.full(c.kc, ptr(a), ptr(b), ptr(hwC), ldc, &bias[0], c.flags)
	}
	return kernResult{hw: true}, bitsEqual("interpreter vs hardware", got, hwC)
}

// scribble fills the registers with random bits, as garbage from the caller would: a kernel
// that reads a register before writing it gives wrong results.
func scribble(r *rand.Rand, m *kasm.Machine) {
	for i := range m.GP {
		m.GP[i] = r.Uint64()
	}
	for i := range m.V {
		for j := range m.V[i] {
			m.V[i][j] = r.Uint32()
		}
	}
}

// kernCases returns the calls every kernel is checked on: each width, k = 0 (no loop at all),
// 1..9 (every remainder of the 4-step unrolled loop, with and without a full iteration), 13
// and 33, and every flag combination; the direct kernel also with row offsets that go
// backwards, repeat, and lie before b (negative).
func kernCases(s gemmasm.Shape) []kernCase {
	NR := s.NR
	var cs []kernCase
	kcs := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 33}
	offSets := [][]int32{
		nil, // ascending, NR+5 floats apart
		{-90, 7, 7, 300, -3, 0, 41, 12, -61, 5, 2, 1, 100},
	}
	for _, kc := range kcs {
		for flags := 0; flags < 16; flags++ {
			u := NR / s.Lanes
			cs = append(cs, kernCase{s: s, w: u, kc: kc, flags: flags})
			// Every edge kernel with one column, a full last register, one lane short of it
			// and one more count that varies with kc (so that every count is covered).
			for w := 1; w <= u; w++ {
				rems := []int{1, s.Lanes - 1, s.Lanes, 1 + (kc+flags)%s.Lanes}
				for i, rem := range rems {
					if !slices.Contains(rems[:i], rem) {
						cs = append(cs, kernCase{s: s, w: w, kc: kc, flags: flags, edge: true, rem: rem})
					}
				}
			}
			for _, o := range offSets {
				offs := make([]int32, kc, kc+1) // spare capacity: a valid pointer when kc = 0
				for k := range offs {
					if o == nil {
						offs[k] = int32(k * (NR + 5))
					} else {
						offs[k] = o[k%len(o)] + int32(k/len(o))
					}
				}
				cs = append(cs, kernCase{s: s, w: NR / s.Lanes, kc: kc, flags: flags, direct: true, offs: offs})
			}
		}
	}
	return cs
}

// TestKernelsInterpreted checks every micro-kernel of gemm_amd64.s and gemm_avx512_amd64.s in
// the interpreter (and on the CPU, when it has AVX2, or AVX-512) against the Go kernels.
func TestKernelsInterpreted(t *testing.T) {
	for _, tf := range tiles {
		t.Run(tf.shape.ISA(), func(t *testing.T) { testKernelsInterpreted(t, tf.shape) })
	}
}

func testKernelsInterpreted(t *testing.T, tile gemmasm.Shape) {
	file, err := tile.File()
	if err != nil {
		t.Fatal(err)
	}
	hw, _, hwOK := hwCode(tile)
	if !hwOK {
		hw = nil
	}
	r := rand.New(rand.NewPCG(11, 12))
	ran, hwRan := 0, 0
	for _, c := range kernCases(tile) {
		res, err := checkKernel(r, file.Func(c.name()), c, hw)
		if err != nil {
			t.Fatalf("%s %v: %v", c.name(), c, err)
		}
		ran++
		if res.hw {
			hwRan++
		}
	}
	logChecks(t, tile, "micro-kernel", ran, hwRan)
}

func logChecks(t *testing.T, s gemmasm.Shape, what string, ran, hwRan int) {
	t.Helper()
	if hwRan == 0 {
		t.Logf("%s %d %s cases: interpreter only (this build or CPU has no %s assembly)", s.ISA(), ran, what, s.ISA())
		return
	}
	t.Logf("%s %d %s cases: interpreter + hardware (%d run on the CPU too, bit for bit)", s.ISA(), ran, what, hwRan)
}

// packCase is one packer call of tile s: rows k, the segments (nil: none, every lane padding),
// the prologue flags (1 affine, 2 ReLU).
type packCase struct {
	s     gemmasm.Shape
	k     int
	segs  []Segment
	flags int
}

// packSegs converts segs as Rows.Pack does, returning the segment count the packer is given.
func packSegs(segs []Segment) ([]segment, int) {
	sg := make([]segment, max(len(segs), 1))
	for i, s := range segs {
		sg[i].base = s.Base
		for j := s.Lo; j < s.Hi; j++ {
			sg[i].mask[j] = -1
		}
	}
	return sg, len(sg)
}

// checkPack runs the packer's IR in the interpreter on c and compares the panel with a fused
// reference (bit for bit), with packGo (bit for bit without the affine map, whose multiply-add
// packGo does not fuse) and with the assembly when hw is not nil.
func checkPack(r *rand.Rand, fn *kasm.Func, c packCase, hw packFunc) (kernResult, error) {
	NR := c.s.NR
	// Source rows: offsets that go back and forth. The source ends exactly where the last lane
	// any segment selects does, so a masked load touching an unselected lane past it faults.
	offs := make([]int32, c.k, c.k+16)
	for i := range offs {
		offs[i] = int32((i * 37) % 101)
	}
	end := 0
	for _, o := range offs {
		for _, s := range c.segs {
			if s.Lo < s.Hi {
				end = max(end, int(o)+s.Base+s.Hi)
			}
		}
	}
	src := buf(r, end)
	scale, shift := buf(r, c.k), buf(r, c.k)
	flags := c.flags
	if len(c.segs) == 1 && c.segs[0].Lo == 0 && c.segs[0].Hi == NR {
		flags |= 4
	}
	sg, nseg := packSegs(c.segs)

	want := make([]float32, c.k*NR)
	for i := range c.k {
		for j := 0; j < NR; j++ {
			var v float32
			covered := false
			for _, s := range c.segs {
				if j >= s.Lo && j < s.Hi {
					v, covered = src[int(offs[i])+s.Base+j], true
				}
			}
			if !covered {
				continue
			}
			if flags&1 != 0 {
				v = kasm.FMA32(v, scale[i], shift[i])
			}
			if flags&2 != 0 && v < 0 {
				v = 0
			}
			want[i*NR+j] = v
		}
	}

	got := buf(r, c.k*NR) // garbage the packer must overwrite
	var mem kasm.Memory
	m := kasm.Machine{Mem: &mem}
	scribble(r, &m)
	args := []uint64{
		mem.Map("dst", kasm.Bytes(got)), mem.Map("src", kasm.Bytes(src)), mem.Map("offs", kasm.Bytes(offs)),
		uint64(c.k), mem.Map("segs", kasm.Bytes(sg)), uint64(nseg),
		mem.Map("scale", kasm.Bytes(scale)), mem.Map("shift", kasm.Bytes(shift)), uint64(flags),
	}
	if err := m.Run(fn, args...); err != nil {
		return kernResult{}, err
	}
	if err := bitsEqual("interpreter vs fused Go", got, want); err != nil {
		return kernResult{}, err
	}
	goDst := buf(r, c.k*NR)
	packGo(NR, ptr(goDst), ptr(src), ptr(offs), c.k, &sg[0], nseg, ptr(scale), ptr(shift), flags)
	cmp := bitsEqual
	if flags&1 != 0 {
		cmp = closeTo
	}
	if err := cmp("interpreter vs packGo", got, goDst); err != nil {
		return kernResult{}, err
	}
	if hw == nil {
		return kernResult{}, nil
	}
	hwDst := buf(r, c.k*NR)
	hw(ptr(hwDst), ptr(src), ptr(offs), c.k, &sg[0], nseg, ptr(scale), ptr(shift), flags)
	return kernResult{hw: true}, bitsEqual("interpreter vs hardware", got, hwDst)
}

// packSegSets returns the lane layouts the packer of NR-column panels is checked on: the
// contiguous fast path, panels split over several source rows (across a vector register's
// boundary too), a partial panel (the tail of the last column panel), a single lane, and no
// segment at all (every lane padding).
func packSegSets(NR int) [][]Segment {
	return [][]Segment{
		{{0, NR, 3}},
		{{0, NR, 0}},
		{{0, 5, 10}, {5, NR, 40}},
		{{0, 3, 0}, {3, 9, 20}, {9, 12, 60}},
		{{2, 7, 1}},
		{{0, NR - 1, 80}},
		{{0, 1, 0}},
		{{NR - 1, NR, 0}},
		{{0, 8, 0}, {8, 16, 30}, {16, NR, 70}},
		{{0, 14, 0}, {14, 19, 30}, {19, NR - 2, 70}},
		{{17, 18, 5}, {NR - 3, NR, 9}},
		nil,
	}
}

// TestPackInterpreted checks the B packers of gemm_amd64.s and gemm_avx512_amd64.s in the
// interpreter (and on the CPU, when it has AVX2, or AVX-512) against packGo, for every prologue
// and lane layout.
func TestPackInterpreted(t *testing.T) {
	for _, tf := range tiles {
		t.Run(tf.shape.ISA(), func(t *testing.T) { testPackInterpreted(t, tf.shape) })
	}
}

func testPackInterpreted(t *testing.T, tile gemmasm.Shape) {
	file, err := tile.File()
	if err != nil {
		t.Fatal(err)
	}
	_, hwPack, hwOK := hwCode(tile)
	if !hwOK {
		hwPack = nil
	}
	r := rand.New(rand.NewPCG(13, 14))
	ran, hwRan := 0, 0
	for si, segs := range packSegSets(tile.NR) {
		for _, k := range []int{0, 1, 2, 5} {
			for flags := 0; flags < 4; flags++ {
				c := packCase{s: tile, k: k, segs: segs, flags: flags}
				res, err := checkPack(r, file.Func(tile.PackName()), c, hwPack)
				if err != nil {
					t.Fatalf("segment set %d k=%d flags=%d: %v", si, k, flags, err)
				}
				ran++
				if res.hw {
					hwRan++
				}
			}
		}
	}
	logChecks(t, tile, "packer", ran, hwRan)
}

// gemvRef is the AVX-512 matrix-vector kernel's sum with its multiply-adds fused and its
// accumulators as the kernel keeps them, so that the interpreter and the hardware must match it
// bit for bit: 16 values of k at a time into 8 accumulators of 16 lanes (lanes 0..7 the even k,
// 8..15 the odd k), the pairs and the single k left into accumulator 0, then a tree sum and the
// two halves added.
func gemvRef(k int, a, x []float32) []float32 {
	const MR = gemmasm.GemvRows
	var acc [8][16]float32
	fma := func(j, l, kk int) { acc[j][l] = kasm.FMA32(a[kk*MR+l%MR], x[kk], acc[j][l]) }
	kk := 0
	for ; kk+16 <= k; kk += 16 {
		for j := range 8 {
			for l := range 16 {
				fma(j, l, kk+2*j+l/MR)
			}
		}
	}
	for ; kk+2 <= k; kk += 2 {
		for l := range 16 {
			fma(0, l, kk+l/MR)
		}
	}
	if kk < k {
		for l := range MR {
			fma(0, l, kk)
		}
	}
	for w := 4; w >= 1; w /= 2 {
		for j := range w {
			for l := range 16 {
				acc[j][l] += acc[j+w][l]
			}
		}
	}
	out := make([]float32, MR)
	for i := range out {
		out[i] = acc[0][i] + acc[0][i+MR]
	}
	return out
}

// gemvCloseTo returns an error unless got is the float64 product of the panel a and x within
// the rounding of float32 sums (scaled by the sum of the terms' magnitudes).
func gemvCloseTo(what string, MR, k int, a, x, got []float32) error {
	for i := range MR {
		var s, mag float64
		for kk := range k {
			t := float64(a[kk*MR+i]) * float64(x[kk])
			s, mag = s+t, mag+math.Abs(t)
		}
		if math.Abs(float64(got[i])-s) > 1e-6+1e-5*mag {
			return fmt.Errorf("%s: out[%d] = %g, want %g", what, i, got[i], s)
		}
	}
	return nil
}

// gemvKs are the depths the matrix-vector kernel is checked at: k = 0, every remainder of the
// 16-step loop with and without a full iteration (pairs and the single last k), and the
// classifier's 1024.
func gemvKs() []int {
	var ks []int
	for k := 0; k <= 40; k++ {
		ks = append(ks, k)
	}
	return append(ks, 47, 63, 64, 65, 255, 1024, 1031)
}

// checkGemv runs fn (the IR of the matrix-vector kernel) in the interpreter on a panel of depth
// k, with A, x and out mapped to exactly their floats (a read of A or x past k, or a store past
// out[7], faults), and compares out with gemvRef (bit for bit), with the float64 product, and
// with the assembly hw when it is not nil (bit for bit).
func checkGemv(r *rand.Rand, fn *kasm.Func, k int, hw gemvHW) (kernResult, error) {
	const MR = gemmasm.GemvRows
	a, x := buf(r, k*MR), buf(r, k)
	idx := gemmasm.GemvIndex()
	got := buf(r, MR) // garbage the kernel must overwrite
	var mem kasm.Memory
	m := kasm.Machine{Mem: &mem}
	scribble(r, &m)
	if err := m.Run(fn, uint64(k), mem.Map("a", kasm.Bytes(a)), mem.Map("x", kasm.Bytes(x)),
		mem.Map("idx", kasm.Bytes(idx)), mem.Map("out", kasm.Bytes(got))); err != nil {
		return kernResult{}, err
	}
	if err := bitsEqual("interpreter vs fused Go", got, gemvRef(k, a, x)); err != nil {
		return kernResult{}, err
	}
	if err := gemvCloseTo("interpreter vs float64", MR, k, a, x, got); err != nil {
		return kernResult{}, err
	}
	if hw == nil {
		return kernResult{}, nil
	}
	// The assembly writes out[0..7] and nothing after it.
	hwOut := buf(r, MR+8)
	tail := append([]float32(nil), hwOut[MR:]...)
	hw(k, ptr(a), ptr(x), &idx[0], &hwOut[0])
	if err := bitsEqual("hardware past out[7]", hwOut[MR:], tail); err != nil {
		return kernResult{}, err
	}
	return kernResult{hw: true}, bitsEqual("interpreter vs hardware", got, hwOut[:MR])
}

// TestGemvInterpreted checks the AVX-512 matrix-vector kernel of gemm_avx512_amd64.s in the
// interpreter (and on the CPU, when it has AVX-512) at every depth of gemvKs.
func TestGemvInterpreted(t *testing.T) {
	z := tiles[1].shape
	file, err := z.File()
	if err != nil {
		t.Fatal(err)
	}
	fn := file.Func(z.GemvName())
	if fn == nil {
		t.Fatalf("%s has no %s", tiles[1].asm, z.GemvName())
	}
	hw, _ := hwGemv(z)
	r := rand.New(rand.NewPCG(17, 18))
	ran, hwRan := 0, 0
	for _, k := range gemvKs() {
		res, err := checkGemv(r, fn, k, hw)
		if err != nil {
			t.Fatalf("%s k=%d: %v", z.GemvName(), k, err)
		}
		ran++
		if res.hw {
			hwRan++
		}
	}
	logChecks(t, z, "matrix-vector", ran, hwRan)
}

// TestInterpretedChecksCatchBugs plants one bug at a time in the IR of a kernel and requires
// the checks above to fail: a check that passes on a broken kernel protects nothing.
func TestInterpretedChecksCatchBugs(t *testing.T) {
	// mutate edits the first instruction for which match is true.
	type mutation struct {
		name   string
		kernel string
		match  func(kasm.Inst) bool
		edit   func(*kasm.Inst)
	}
	is := func(s string) func(kasm.Inst) bool { return func(in kasm.Inst) bool { return in.String() == s } }
	// nth matches the n-th instruction (from 1) that prints as s.
	nth := func(s string, n int) func(kasm.Inst) bool {
		seen := 0
		return func(in kasm.Inst) bool {
			if in.String() == s {
				seen++
			}
			return seen == n && in.String() == s
		}
	}
	full := tile.KernelName()
	z := tiles[1].shape // the AVX-512 tile
	muts := []mutation{
		{"tail loop runs k%2 steps", full, is("ANDQ $3, CX"), func(in *kasm.Inst) { in.Args[0] = kasm.Imm(1) }},
		{"unrolled loop skips the 4th k step", full, is("ADDQ $64, AX"), func(in *kasm.Inst) { in.Args[0] = kasm.Imm(80) }},
		{"FMA into the wrong accumulator", full, is("VFMADD231PS Y12, Y15, Y0"), func(in *kasm.Inst) { in.Args[2] = kasm.YReg(1) }},
		{"bias of row 0 on row 1", full, is("VBROADCASTSS 4(R9), Y15"), func(in *kasm.Inst) { in.Args[0] = kasm.At(0, kasm.R9) }},
		{"ReLU drops NaN", full, is("VMAXPS Y3, Y15, Y3"), func(in *kasm.Inst) { in.Args[0], in.Args[1] = in.Args[1], in.Args[0] }},
		{"clamp's floor read as its ceiling", full, is("VBROADCASTSS 16(R9), Y15"), func(in *kasm.Inst) { in.Args[0] = kasm.At(20, kasm.R9) }},
		{"clamp's ceiling drops NaN", full, is("VMINPS Y3, Y15, Y3"), func(in *kasm.Inst) { in.Args[0], in.Args[1] = in.Args[1], in.Args[0] }},
		{"edge kernel stores its last register unmasked", tile.EdgeName(2), is("VMASKMOVPS Y3, Y14, 32(DI)"), func(in *kasm.Inst) {
			*in = kasm.Inst{Op: kasm.VMOVUPS, Args: []kasm.Operand{kasm.YReg(3), kasm.At(32, kasm.DI)}}
		}},
		// Row 3's carry: the lanes past the columns of the last row lie outside C.
		{"edge kernel carries its last register unmasked", tile.EdgeName(3), nth("VMASKMOVPS 64(R8), Y14, Y15", 4), func(in *kasm.Inst) {
			*in = kasm.Inst{Op: kasm.VMOVUPS, Args: []kasm.Operand{kasm.At(64, kasm.R8), kasm.YReg(15)}}
		}},
		{"edge kernel masks its first register", tile.EdgeName(2), is("VMOVUPS Y2, 0(DI)"), func(in *kasm.Inst) {
			*in = kasm.Inst{Op: kasm.VMASKMOVPS, Args: []kasm.Operand{kasm.YReg(2), kasm.YReg(14), kasm.At(0, kasm.DI)}}
		}},
		{"direct kernel reads the next offset", tile.DirectName(), is("MOVLQSX 0(R8), R9"), func(in *kasm.Inst) { in.Args[0] = kasm.At(4, kasm.R8) }},
		{"packer keeps the padding after the affine map", tile.PackName(), is("VANDPS Y3, Y0, Y0"), func(in *kasm.Inst) { in.Op = kasm.VORPS }},
		{"packer loads unselected lanes", tile.PackName(), is("VMASKMOVPS 32(R14), Y15, Y14"), func(in *kasm.Inst) {
			*in = kasm.Inst{Op: kasm.VMOVUPS, Args: []kasm.Operand{kasm.At(32, kasm.R14), kasm.YReg(14)}}
		}},
		// The AVX-512 kernels and packer.
		{"AVX-512 FMA into the wrong accumulator", z.KernelName(), is("VFMADD231PS Z16, Z18, Z0"), func(in *kasm.Inst) { in.Args[2] = kasm.ZReg(1) }},
		{"AVX-512 row 7 multiplied by row 6's A", z.KernelName(), is("VBROADCASTSS 28(AX), Z25"), func(in *kasm.Inst) { in.Args[0] = kasm.At(24, kasm.AX) }},
		{"AVX-512 bias of row 0 on row 1", z.KernelName(), is("VBROADCASTSS 4(R9), Z31"), func(in *kasm.Inst) { in.Args[0] = kasm.At(0, kasm.R9) }},
		{"AVX-512 clamp's ceiling on one accumulator only", z.KernelName(), is("VMINPS Z1, Z31, Z1"), func(in *kasm.Inst) { in.Op = kasm.VMOVUPS; in.Args = []kasm.Operand{in.Args[0], in.Args[2]} }},
		{"AVX-512 16-column edge kernel stores 16 columns too many", z.EdgeName(1), is("VMOVUPS Z3, K1, 0(DI)"), func(in *kasm.Inst) { in.Args[1] = kasm.At(64, kasm.DI) }},
		{"AVX-512 edge kernel stores unselected lanes", z.EdgeName(2), is("VMOVUPS Z3, K1, 64(DI)"), func(in *kasm.Inst) { in.Mask = kasm.Reg{} }},
		{"AVX-512 edge kernel's carry reads unselected lanes", z.EdgeName(2), is("VADDPS 64(R8), Z15, K1, Z15"), func(in *kasm.Inst) { in.Mask = kasm.Reg{} }},
		{"AVX-512 edge kernel's mask shifted by a lane", z.EdgeName(1), is("VMOVUPS 0(R10), Z30"), func(in *kasm.Inst) { in.Args[0] = kasm.At(-4, kasm.R10) }},
		{"AVX-512 edge kernel's bias skips row 5", z.EdgeName(2), is("VBROADCASTSS 20(R9), Z31"), func(in *kasm.Inst) { in.Args[0] = kasm.At(16, kasm.R9) }},
		{"AVX-512 direct kernel skips the second half of a row", z.DirectName(), is("VMOVUPS 64(BX)(R9*4), Z17"), func(in *kasm.Inst) { in.Args[0] = kasm.At(0, kasm.BX).Idx(kasm.R9, 4) }},
		{"AVX-512 packer loads unselected lanes", z.PackName(), is("VMOVUPS 64(R14), K1, Z1"), func(in *kasm.Inst) { in.Mask = kasm.Reg{} }},
		{"AVX-512 packer keeps the padding after the affine map", z.PackName(), is("VMOVUPS.Z Z1, K3, Z1"), func(in *kasm.Inst) { in.Zeroing = false }},
		// The AVX-512 matrix-vector kernel.
		{"gemv spreads x[0..1] where x[2..3] belong", z.GemvName(), is("VPERMPS Z8, Z17, Z25"), func(in *kasm.Inst) { in.Args[1] = kasm.ZReg(16) }},
		{"gemv reduction drops accumulator 7", z.GemvName(), is("VADDPS Z7, Z3, Z3"), func(in *kasm.Inst) { in.Args[0] = kasm.ZReg(6) }},
		{"gemv tail takes half the pairs", z.GemvName(), is("SHRQ $1, BX"), func(in *kasm.Inst) { in.Args[0] = kasm.Imm(2) }},
		{"gemv pair multiplies the odd k by x[k]", z.GemvName(), is("VBROADCASTSS 4(DX), K2, Z8"), func(in *kasm.Inst) { in.Args[0] = kasm.Ptr(kasm.DX) }},
		{"gemv last k reads past the panel", z.GemvName(), is("VFMADD231PS (SI), Z8, K3, Z0"), func(in *kasm.Inst) { in.Mask = kasm.Reg{} }},
		{"gemv last k clears the odd-k lanes", z.GemvName(), is("VFMADD231PS (SI), Z8, K3, Z0"), func(in *kasm.Inst) { in.Zeroing = true }},
		{"gemv adds the halves of the wrong accumulator", z.GemvName(), is("VEXTRACTF64X4 $1, Z0, Y1"), func(in *kasm.Inst) { in.Args[1] = kasm.ZReg(1) }},
	}
	for _, mu := range muts {
		t.Run(strings.ReplaceAll(mu.name, " ", "_"), func(t *testing.T) {
			tile := tile
			if strings.Contains(mu.kernel, "AVX512") {
				tile = z
			}
			file, err := tile.File()
			if err != nil {
				t.Fatal(err)
			}
			fn := file.Func(mu.kernel)
			found := false
			for i := range fn.Body {
				if mu.match(fn.Body[i]) {
					mu.edit(&fn.Body[i])
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("no instruction to mutate in %s", mu.kernel)
			}
			r := rand.New(rand.NewPCG(15, 16))
			if mu.kernel == tile.GemvName() {
				for _, k := range gemvKs() {
					if _, err := checkGemv(r, fn, k, nil); err != nil {
						t.Logf("caught at k=%d: %v", k, err)
						return
					}
				}
				t.Fatal("no matrix-vector check failed")
			}
			if mu.kernel == tile.PackName() {
				for _, segs := range packSegSets(tile.NR) {
					for flags := range 4 {
						if _, err := checkPack(r, fn, packCase{s: tile, k: 3, segs: segs, flags: flags}, nil); err != nil {
							t.Logf("caught: %v", err)
							return
						}
					}
				}
				t.Fatal("no packer check failed")
			}
			for _, c := range kernCases(tile) {
				if c.name() != mu.kernel {
					continue
				}
				if _, err := checkKernel(r, fn, c, nil); err != nil {
					t.Logf("caught by %v: %v", c, err)
					return
				}
			}
			t.Fatal("no kernel check failed")
		})
	}
}

package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa/isatest"
)

// testLevels returns the instruction-set levels this machine runs, logged (isatest.Levels).
func testLevels(t testing.TB) []isa.Level { return isatest.Levels(t) }

// matB is a BPanel over a row-major K x N matrix.
type matB struct {
	b    []float32
	k, n int
}

func (m *matB) PackB(dst []float32, width, k0, k1, n0, nr int) {
	for k := k0; k < k1; k++ {
		row := dst[(k-k0)*width : (k-k0+1)*width]
		for j := range row {
			row[j] = 0
			if j < nr {
				row[j] = m.b[k*m.n+n0+j]
			}
		}
	}
}

// rowsB is a DirectB over rows of a slice.
type rowsB struct{ rows Rows }

func (r *rowsB) PackB(dst []float32, width, k0, k1, n0, nr int) {
	if width != r.rows.NR() {
		panic("rowsB: panel width differs from the rows' kernels")
	}
	r.rows.Pack(dst, k0, k1, []Segment{{0, nr, n0}})
}

func (r *rowsB) DirectRows() *Rows { return &r.rows }

// newRowsB returns a DirectB whose rows are scattered over a slice (in a permuted order), and
// the same matrix as a row-major K x N slice.
func newRowsB(r *rand.Rand, k, n int) (*rowsB, []float32) {
	pitch := n + 3
	src := randSlice(r, k*pitch+5)
	offs := make([]int32, k)
	b := make([]float32, k*n)
	for kk := range offs {
		offs[kk] = int32(((kk*7)%k)*pitch + 2)
		copy(b[kk*n:(kk+1)*n], src[offs[kk]:])
	}
	return (&rowsB{Rows{Src: src, Offs: offs}}).at(nil), b
}

// at returns a copy of r whose packer is code's.
func (r *rowsB) at(code *Kernels) *rowsB {
	c := &rowsB{}
	if err := c.rows.Init(code, r.rows.Src, r.rows.Offs, nil, nil, false); err != nil {
		panic(err)
	}
	return c
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// naive returns the float64 product with epilogue, and per element the sum of magnitudes of the
// terms, which scales the tolerance.
func naive(m, k, n int, a []float32, lda int, b []float32, c []float32, ldc int, ep Epilogue) (want, mag []float64) {
	want, mag = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, g float64
			for kk := 0; kk < k; kk++ {
				t := float64(a[i*lda+kk]) * float64(b[kk*n+j])
				s += t
				g += math.Abs(t)
			}
			if ep.Accumulate {
				s += float64(c[i*ldc+j])
				g += math.Abs(float64(c[i*ldc+j]))
			}
			if ep.Bias != nil {
				s += float64(ep.Bias[i])
				g += math.Abs(float64(ep.Bias[i]))
			}
			if ep.ReLU && s < 0 {
				s = 0
			}
			if ep.Clamp {
				s = math.Min(math.Max(s, float64(ep.Lo)), float64(ep.Hi))
			}
			want[i*n+j], mag[i*n+j] = s, g
		}
	}
	return want, mag
}

// doublePost is a TilePost that doubles the elements of each block it is given.
type doublePost struct{ c []float32 }

func (p *doublePost) Finish(off, rows, cols, ldc int) {
	for r := 0; r < rows; r++ {
		row := p.c[off+r*ldc:][:cols]
		for i := range row {
			row[i] *= 2
		}
	}
}

// runJob runs j's slots on threads goroutines, each taking slots round robin.
func runJob(j *Job, threads int) {
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := t; s < j.Slots(); s += threads {
				j.Do(s, s+1)
			}
		}()
	}
	wg.Wait()
}

func TestGEMMMatchesNaive(t *testing.T) {
	const rtol, atol = 1e-5, 1e-6
	shapes := [][3]int{
		{1, 1, 1}, {1, 1, 17}, {4, 1, 24}, {3, 3, 23}, {5, 5, 25}, {2, 7, 3},
		{4, 1, 32}, {3, 3, 31}, {5, 5, 33}, {8, 1, 32}, {7, 3, 31}, {9, 5, 33}, {8, 17, 64}, {6, 3, 65},
		{15, 19, 40}, {16, 2, 32}, {17, 21, 48}, {24, 5, 1}, {3, 9, 1}, {5, 40, 16}, {5, 40, 17}, {6, 9, 47}, {7, 11, 65},
		{7, 300, 33}, {13, 257, 50}, {32, 1152, 49}, {128, 64, 196}, {37, 513, 16}, {1, 600, 1},
		{64, 147, 100}, {6, 0, 20}, {12, 9, 200}, {100, 31, 7}, {1000, 1024, 1}, {7, 13, 25}, {9, 8, 1}, {5, 7, 1},
	}
	levels := testLevels(t)
	r := rand.New(rand.NewPCG(1, 2))
	for _, sh := range shapes {
		m, k, n := sh[0], sh[1], sh[2]
		lda := k + 3
		a := randSlice(r, max(m*lda, 1))
		b := randSlice(r, k*n)
		direct, bDirect := newRowsB(r, k, n)
		for _, epName := range []string{"plain", "bias", "relu", "bias+relu+acc", "acc", "bias+relu+post", "bias+clamp", "clamp+acc"} {
			var ep Epilogue
			switch epName {
			case "bias+clamp":
				ep = Epilogue{Bias: randSlice(r, m), Clamp: true, Lo: -0.5, Hi: 0.75}
			case "clamp+acc":
				ep = Epilogue{Accumulate: true, Clamp: true, Lo: 0, Hi: 6}
			case "bias+relu+post":
				ep = Epilogue{Bias: randSlice(r, m), ReLU: true}
			case "bias":
				ep.Bias = randSlice(r, m)
			case "relu":
				ep.ReLU = true
			case "bias+relu+acc":
				ep = Epilogue{Bias: randSlice(r, m), ReLU: true, Accumulate: true}
			case "acc":
				ep.Accumulate = true
			}
			for _, level := range levels {
				code := KernelsFor(level)
				pa := PackA(code, m, k, a, lda)
				for threads := 1; threads <= 3; threads++ {
					for _, useDirect := range []bool{false, true} {
						name := fmt.Sprintf("m=%d,k=%d,n=%d/%s/%s/threads=%d/direct=%v", m, k, n, epName, level, threads, useDirect)
						var bp BPanel = &matB{b, k, n}
						bm := b
						if useDirect {
							bp, bm = direct.at(code), bDirect
						}
						ldc := n + 5
						c := randSlice(r, m*ldc)
						c0 := append([]float32(nil), c...)
						want, mag := naive(m, k, n, a, lda, bm, c0, ldc, ep)
						var post *doublePost
						if epName == "bias+relu+post" {
							// Post doubles every element: the result must be twice the product,
							// so each element is finished once, after its final value.
							post = &doublePost{c: c}
							ep.Post = post
							for i := range want {
								want[i], mag[i] = 2*want[i], 2*mag[i]
							}
						}
						var j Job
						scratch := make([]float32, ScratchSize(k, n, threads))
						if err := j.Init(code, pa, bp, n, c, ldc, ep, scratch, threads); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if useDirect && k > 0 && n > 0 && j.direct == nil {
							t.Fatalf("%s: direct B not used", name)
						}
						runJob(&j, threads)
						for i := 0; i < m; i++ {
							for x := 0; x < ldc; x++ {
								got := float64(c[i*ldc+x])
								if x >= n {
									if c[i*ldc+x] != c0[i*ldc+x] {
										t.Fatalf("%s: C[%d][%d] past n changed", name, i, x)
									}
									continue
								}
								w := want[i*n+x]
								if math.Abs(got-w) > atol+rtol*mag[i*n+x] {
									t.Fatalf("%s: C[%d][%d] = %g, want %g", name, i, x, got, w)
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestGEMMErrors(t *testing.T) {
	pa := PackA(nil, 4, 3, make([]float32, 12), 3)
	b := &matB{make([]float32, 15), 3, 5}
	ok := make([]float32, ScratchSize(3, 5, 2))
	tests := []struct {
		name    string
		c       []float32
		ldc     int
		ep      Epilogue
		scratch []float32
	}{
		{"short C", make([]float32, 19), 5, Epilogue{}, ok},
		{"ldc < n", make([]float32, 20), 4, Epilogue{}, ok},
		{"short bias", make([]float32, 20), 5, Epilogue{Bias: []float32{1, 2}}, ok},
		{"short scratch", make([]float32, 20), 5, Epilogue{}, ok[:len(ok)-1]},
	}
	for _, tc := range tests {
		var j Job
		if err := j.Init(nil, pa, b, 5, tc.c, tc.ldc, tc.ep, tc.scratch, 2); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestKernelsAgree runs the micro-kernels of each level against kernGo for every flag
// combination, and its edge kernels against the full one for every column count 1..NR-1: the
// columns an edge kernel computes must be bit for bit those of the full kernel (an element may
// not depend on the panel it falls in), and C past them untouched (for the generic level, the
// first comparison is of kernGo with itself).
func TestKernelsAgree(t *testing.T) {
	for _, level := range testLevels(t) {
		t.Run(level.String(), func(t *testing.T) { kernelsAgree(t, KernelsFor(level)) })
	}
}

func kernelsAgree(t *testing.T, code *Kernels) {
	r := rand.New(rand.NewPCG(3, 4))
	NR, MR := code.nr, code.mr
	for _, kc := range []int{0, 1, 2, 3, 4, 5, 8, 13, 256} {
		a := randSlice(r, max(kc*MR, 1))
		b := randSlice(r, max(kc*NR, 1))
		bias := append(randSlice(r, MR), -0.5, 0.75) // the clamp's bounds after the biases
		for flags := 0; flags < 16; flags++ {
			ldc := NR + 3
			c0 := randSlice(r, MR*ldc)
			c0[ldc+1] = float32(math.NaN())
			c1 := append([]float32(nil), c0...)
			c2 := append([]float32(nil), c0...)
			code.full(kc, &a[0], &b[0], &c1[0], ldc, &bias[0], flags)
			goFull(MR, NR)(kc, &a[0], &b[0], &c2[0], ldc, &bias[0], flags)
			for i := range c1 {
				d := math.Abs(float64(c1[i] - c2[i]))
				if d > 1e-5*(1+math.Abs(float64(c2[i]))) || math.IsNaN(float64(c1[i])) != math.IsNaN(float64(c2[i])) {
					t.Fatalf("kc=%d flags=%d: element %d: %s %g, go %g", kc, flags, i, code.Level(), c1[i], c2[i])
				}
			}
			for nr := 1; nr < NR; nr++ {
				w := (nr + code.step - 1) / code.step
				ce := append([]float32(nil), c0...)
				code.edge[w-1](kc, &a[0], &b[0], &ce[0], ldc, &bias[0], flags, &edgeMask[16-(nr-code.step*(w-1))])
				for i := 0; i < MR; i++ {
					for x := 0; x < ldc; x++ {
						want := c0[i*ldc+x]
						if x < nr {
							want = c1[i*ldc+x]
						}
						if got := ce[i*ldc+x]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("kc=%d flags=%d: %s edge kernel of %d columns: C[%d][%d] = %g, want %g", kc, flags, code.Level(), nr, i, x, got, want)
						}
					}
				}
			}
		}
	}
}

// TestEdgePanelBitIdentical: a column of C must come out bit for bit the same whether it lies in
// a full column panel or in the partial right-edge one (which the edge kernels compute), with
// every epilogue, several K blocks (the carry between them, and the accumulated C on the first),
// and a partial bottom row panel: a convolution's image may not change with the batch it runs
// in. The product over the first nr columns of B (an edge panel of nr < NR columns) is compared
// with the same columns of the product over 2*NR+5 columns (a full panel). One column is left
// out: it runs the matrix-vector kernel, whose sums round differently (see edgePanel).
func TestEdgePanelBitIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, level := range testLevels(t) {
		code := KernelsFor(level)
		NR := code.nr
		for _, sh := range [][2]int{{16, 7}, {13, 300}, {3, 600}} {
			m, k := sh[0], sh[1]
			nBig := 2*NR + 5
			a := randSlice(r, m*k)
			pa := PackA(code, m, k, a, k)
			b := randSlice(r, k*nBig)
			eps := map[string]Epilogue{
				"plain":          {},
				"bias+relu":      {Bias: randSlice(r, m), ReLU: true},
				"acc+bias+clamp": {Accumulate: true, Bias: randSlice(r, m), Clamp: true, Lo: -0.5, Hi: 0.75},
				"acc+relu+post":  {Accumulate: true, ReLU: true},
			}
			for name, ep := range eps {
				run := func(n int, bm []float32, c []float32, ldc int) {
					ep := ep
					if name == "acc+relu+post" {
						ep.Post = &doublePost{c: c}
					}
					var j Job
					if err := j.Init(code, pa, &matB{bm, k, n}, n, c, ldc, ep, make([]float32, ScratchSize(k, n, 1)), 1); err != nil {
						t.Fatal(err)
					}
					runJob(&j, 1)
				}
				c0 := randSlice(r, m*nBig)
				big := append([]float32(nil), c0...)
				run(nBig, b, big, nBig)
				for nr := 2; nr < NR; nr++ {
					bs := make([]float32, k*nr)
					for kk := 0; kk < k; kk++ {
						copy(bs[kk*nr:(kk+1)*nr], b[kk*nBig:])
					}
					small := append([]float32(nil), c0...) // same C, same ldc: columns past nr must stay
					run(nr, bs, small, nBig)
					for i := 0; i < m; i++ {
						for x := 0; x < nBig; x++ {
							want := c0[i*nBig+x]
							if x < nr {
								want = big[i*nBig+x]
							}
							if got := small[i*nBig+x]; math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("%s m=%d k=%d %s: edge panel of %d columns: C[%d][%d] = %g, full panel %g", level, m, k, name, nr, i, x, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestGemvMatchesNaive checks each level's matrix-vector kernel (the gemv of its Kernels, on A
// packed for it) against the float64 product, at depths covering every tail of the kernels'
// loops, with A and x sliced to exactly what a panel holds.
func TestGemvMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, level := range testLevels(t) {
		code := KernelsFor(level)
		if code.gemv == nil {
			t.Errorf("%s: no matrix-vector kernel", level)
			continue
		}
		MR := code.mr
		for _, k := range []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 30, 31, 33, 100, 1024} {
			const m = 19 // two full panels and a partial one at MR = 8, five at MR = 4
			a, x := randSlice(r, m*k), randSlice(r, k)
			pa := PackA(code, m, k, a, k)
			for q := 0; q < (m+MR-1)/MR; q++ {
				out := randSlice(r, MR)
				code.gemv(k, pa.data[q*k*MR:(q+1)*k*MR], x, out)
				for i := range MR {
					var s, mag float64
					if row := q*MR + i; row < m {
						for kk := range k {
							v := float64(a[row*k+kk]) * float64(x[kk])
							s, mag = s+v, mag+math.Abs(v)
						}
					}
					if d := math.Abs(float64(out[i]) - s); d > 1e-6+1e-5*mag {
						t.Fatalf("%s k=%d panel %d: out[%d] = %g, want %g", level, k, q, i, out[i], s)
					}
				}
			}
		}
	}
}

func TestRowsPack(t *testing.T) {
	levels := testLevels(t)
	r := rand.New(rand.NewPCG(5, 6))
	src := randSlice(r, 500)
	offs := []int32{0, 37, 100, 5, 250, 300, 17}
	scale, shift := randSlice(r, len(offs)), randSlice(r, len(offs))
	segSets := func(NR int) [][]Segment {
		return [][]Segment{
			{{0, NR, 3}},
			{{0, 5, 10}, {5, NR, 40}},
			{{0, 3, 0}, {3, 9, 20}, {9, 12, 60}},
			{{2, 7, 1}},
			{},
			{{0, NR - 1, 80}},
		}
	}
	for si := range segSets(24) {
		for _, affine := range []bool{false, true} {
			for _, relu := range []bool{false, true} {
				for _, level := range levels {
					NR := KernelsFor(level).NR()
					segs := segSets(NR)[si]
					var rows Rows
					var sc, sh []float32
					if affine {
						sc, sh = scale, shift
					}
					if err := rows.Init(KernelsFor(level), src, offs, sc, sh, relu); err != nil {
						t.Fatal(err)
					}
					dst := randSlice(r, (len(offs)-1)*NR)
					rows.Pack(dst, 1, len(offs), segs)
					for k := 1; k < len(offs); k++ {
						for j := 0; j < NR; j++ {
							var v float32
							covered := false
							for _, s := range segs {
								if j >= s.Lo && j < s.Hi {
									v, covered = src[int(offs[k])+s.Base+j], true
								}
							}
							if affine && covered {
								v = v*scale[k] + shift[k]
							}
							if relu && v < 0 {
								v = 0
							}
							got := dst[(k-1)*NR+j]
							if math.Abs(float64(got-v)) > 1e-6*(1+math.Abs(float64(v))) {
								t.Fatalf("%s: set %d affine %v relu %v: row %d lane %d = %g, want %g", level, si, affine, relu, k, j, got, v)
							}
						}
					}
				}
			}
		}
	}
}

func TestRowsPackPanicsOutside(t *testing.T) {
	var rows Rows
	if err := rows.Init(nil, make([]float32, 20), []int32{0, 4}, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a segment past the source")
		}
	}()
	rows.Pack(make([]float32, 2*rows.NR()), 0, 2, []Segment{{0, rows.NR(), 2}})
}

// TestRowPanels: a product over a row-panel view equals those rows of the full product, and a
// view outside the matrix panics.
func TestRowPanels(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	MR := active.mr
	m, k, n := 3*MR+1, 37, 30 // four row panels, the last with one row
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	pa := PackA(nil, m, k, a, k)
	full := make([]float32, m*n)
	if err := Run(pa, &matB{b, k, n}, n, full, n, Epilogue{}, make([]float32, ScratchSize(k, n, 1))); err != nil {
		t.Fatal(err)
	}
	for _, q := range [][2]int{{0, 4}, {1, 3}, {2, 4}, {3, 4}, {0, 0}} {
		v := pa.RowPanels(q[0], q[1])
		rows := min(m, q[1]*MR) - q[0]*MR
		if v.M != rows || v.K != k {
			t.Fatalf("RowPanels(%d, %d) is %dx%d, want %dx%d", q[0], q[1], v.M, v.K, rows, k)
		}
		c := make([]float32, max(rows, 0)*n)
		if err := Run(&v, &matB{b, k, n}, n, c, n, Epilogue{}, make([]float32, ScratchSize(k, n, 1))); err != nil {
			t.Fatal(err)
		}
		for i := range c {
			if c[i] != full[q[0]*MR*n+i] {
				t.Fatalf("RowPanels(%d, %d): element %d = %g, want %g", q[0], q[1], i, c[i], full[q[0]*MR*n+i])
			}
		}
	}
	for _, q := range [][2]int{{-1, 1}, {2, 1}, {0, 5}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RowPanels(%d, %d) did not panic", q[0], q[1])
				}
			}()
			pa.RowPanels(q[0], q[1])
		}()
	}
}

//go:build amd64 && !purego

package cpu

import "fmt"

//go:generate go run winogen.go -o conv_winograd_avx512_amd64.s -decl conv_winograd_avx512_decl_amd64.go

// winoIn is the argument block of the assembly input transforms (offsets in
// conv_winograd_amd64.s). For each channel c < cin they compute the column pass (winoInColsGo)
// of the n columns from ulo of T (ldt floats per row; when n < 8, columns n..7 from ulo are set
// to 0), with input row r of channel c at x[r] + c*xstep[r] bytes and the prologue of channel c
// (scale, shift: per channel, or nil for 1 and 0) masked by keep[r], then the row pass
// (winoInRowsGo) of tiles tiles into v + c*ldv floats, position stride ps.
type winoIn struct {
	t            *float32
	ldt          int
	x            [6]*float32
	xstep        [6]int
	keep         [6]uint32
	ulo, n, cin  int
	scale, shift *float32
	relu         int
	tiles        int
	v            *float32
	ps, ldv      int
	mask         [8]int32 // when n < 8: -1 in lanes < n, 0 in the others
	prefetch     int      // non-zero: prefetch the next channel's rows
}

//go:noescape
func winoInput4AVX2(a *winoIn)

//go:noescape
func winoInput2AVX2(a *winoIn)

// The output transforms do ceil(n/8) groups of 8 tiles, so they read and write up to 7 tiles
// past n.

//go:noescape
func winoOut4AVX2(mm *float32, ps, n int, y *float32, ldy int, bias float32, relu int, s *float32)

//go:noescape
func winoOut2AVX2(mm *float32, ps, n int, y *float32, ldy int, bias float32, relu int)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// winoCheck panics unless s holds n floats: the callers derive sizes from checked shapes, so a
// short slice is a programming error, and the assembly must not run past it.
func winoCheck(what string, s []float32, n int) {
	if len(s) < n {
		panic(fmt.Sprintf("cpu: winograd %s: %d floats, need %d", what, len(s), n))
	}
}

// winoInputAsm is winoInputGo in assembly (the arguments are the same): it runs the Go code
// when no input column exists (nu = 0) or when the 8 T-row columns from ulo, which the assembly
// reads and writes, do not fit in the row (they must be in the row and, past nu, padding).
func winoInputAsm(f *winoForm, item []float32, hw int, off [6]int, zeros []float32, ulo, nu, n int, v []float32, ps, ldv int, rows []float32, wt, c0, c1 int) {
	if nu <= 0 || ulo+8 > wt {
		winoInputGo(f, item, hw, off, zeros, ulo, nu, n, v, ps, ldv, rows, wt, c0, c1)
		return
	}
	s := &f.c.spec
	m, alpha := f.m, f.alpha
	n8 := (n + 7) &^ 7
	cin := c1 - c0
	if cin <= 0 {
		return
	}
	item, v = item[c0*hw:], v[c0*ldv:]
	winoCheck("transform rows", rows, (alpha-1)*wt+max(ulo+max(nu, 8), m*n8+4))
	winoCheck("V", v, (alpha*alpha-1)*ps+(cin-1)*ldv+n8)
	winoCheck("zero row", zeros, nu)
	a := winoIn{t: &rows[0], ldt: wt, ulo: ulo, n: nu, cin: cin, relu: boolInt(s.PreRelu), tiles: n, v: &v[0], ps: ps, ldv: ldv}
	for r := 0; r < alpha; r++ {
		if off[r] < 0 {
			a.x[r] = &zeros[0]
			continue
		}
		winoCheck("input", item, (cin-1)*hw+off[r]+nu)
		a.x[r] = &item[off[r]]
		a.xstep[r] = 4 * hw
		a.keep[r] = ^uint32(0)
	}
	if s.PreScale != nil {
		a.scale, a.shift = &s.PreScale[c0], &s.PreShift[c0]
	}
	// Channel planes 4 KiB and more apart are prefetched (measured: 12% faster at 56x56); nearer
	// ones the hardware prefetchers find, and the prefetch loop costs 15% at 16x16.
	if hw >= 1024 {
		a.prefetch = 1
	}
	for i := range a.mask {
		if i < nu {
			a.mask[i] = -1
		}
	}
	if m == 4 {
		winoInput4AVX2(&a)
	} else {
		winoInput2AVX2(&a)
	}
}

// winoOutAsm is winoOutGo, in assembly; it reads mm and writes y up to 7 tiles past n. s is
// scratch for 192 floats.
func winoOutAsm(m int, mm []float32, ps, n int, y []float32, ldy int, bias float32, relu bool, s []float32) {
	if n == 0 {
		return
	}
	alpha := m + 2
	n8 := (n + 7) &^ 7
	winoCheck("output transform input", mm, (alpha*alpha-1)*ps+n8)
	winoCheck("output transform output", y, (m-1)*ldy+m*n8)
	if m == 4 {
		winoCheck("output transform scratch", s, 192)
		winoOut4AVX2(&mm[0], ps, n, &y[0], ldy, bias, boolInt(relu), &s[0])
	} else {
		winoOut2AVX2(&mm[0], ps, n, &y[0], ldy, bias, boolInt(relu))
	}
}

// winoOutAsm512 is winoOutAsm at the avx512 level: F(4x4) rows of more than winoOut4Max2 tiles
// run winoOut4AVX512 (generated from internal/winoasm), 16 tiles per zmm with the last 1..16
// under opmasks, so that it reads and writes exactly the n tiles; F(2x2) and shorter rows run
// the AVX2 kernels. s is scratch for 192 floats, of which the first winoOut4Consts carry the
// kernel's constants.
func winoOutAsm512(m int, mm []float32, ps, n int, y []float32, ldy int, bias float32, relu bool, s []float32) {
	if m != 4 || n <= winoOut4Max2 {
		winoOutAsm(m, mm, ps, n, y, ldy, bias, relu, s)
		return
	}
	winoCheck("output transform input", mm, 35*ps+n)
	winoCheck("output transform output", y, 3*ldy+4*n)
	winoCheck("output transform scratch", s, winoOut4Consts)
	tmask, fmask := winoOut4Masks(n)
	winoOut4Fill(s, bias, relu)
	winoOut4AVX512(&mm[0], ps, n, &y[0], ldy, &s[0], tmask, fmask)
}

// winoOut4Max2 is the longest row of tiles that winoOutAsm512 leaves to winoOut4AVX2. On a
// shared 2-vCPU Zen 5 (AMD EPYC Turin), BenchmarkWinoOutTransform measured the AVX-512 kernel
// faster on DenseNet-121's 56x56 rows (14 tiles: one zmm group against two ymm ones) but slower
// on rows of 2, 4 and 7 tiles (7x7 to 28x28), where one ymm or xmm group holds the row and the
// zmm kernel's masked loads and lane moves buy nothing; its 4- and 8-tile paths are kept, and
// tested, for CPUs where they may measure otherwise.
const winoOut4Max2 = 8

// winoInputAsm512 is winoInputAsm at the avx512 level: the segments winoIn512Use picks run
// winoIn4AVX512 or winoIn2AVX512 (generated from internal/winoasm), 16 columns and 16 tiles per
// zmm, the others winoInputAsm, as do segments whose column loads (16 floats from each input
// row's start, at least) would run past the input. The kernels write V up to 8 tiles past n
// (winoIn512Writes), T rows ulo+16 columns at least.
func winoInputAsm512(f *winoForm, item []float32, hw int, off [6]int, zeros []float32, ulo, nu, n int, v []float32, ps, ldv int, rows []float32, wt, c0, c1 int) {
	if !winoIn512Use(f.m, n) {
		winoInputAsm(f, item, hw, off, zeros, ulo, nu, n, v, ps, ldv, rows, wt, c0, c1)
		return
	}
	winoInput512(f, item, hw, off, zeros, ulo, nu, n, v, ps, ldv, rows, wt, c0, c1)
}

// winoInput512 is winoInputAsm512 for any tile size: the AVX-512 kernel where it can run.
func winoInput512(f *winoForm, item []float32, hw int, off [6]int, zeros []float32, ulo, nu, n int, v []float32, ps, ldv int, rows []float32, wt, c0, c1 int) {
	if nu <= 0 || ulo+16 > wt || !winoIn512Fits(item, hw, off, f.alpha, nu, c1) {
		winoInputAsm(f, item, hw, off, zeros, ulo, nu, n, v, ps, ldv, rows, wt, c0, c1)
		return
	}
	cin := c1 - c0
	if cin <= 0 {
		return
	}
	s := &f.c.spec
	m, alpha := f.m, f.alpha
	item, v = item[c0*hw:], v[c0*ldv:]
	winoCheck("transform rows", rows, winoIn512Reads(m, alpha, wt, ulo, nu, n))
	winoCheck("V", v, (alpha*alpha-1)*ps+(cin-1)*ldv+winoIn512Writes(n))
	// A row of padding reads 16 floats of zeros (the first nu are 0).
	winoCheck("zero row", zeros, max(nu, 16))
	var x [6]*float32
	var keep [6]bool
	for r := range x {
		x[r] = &zeros[0]
		if r < alpha && off[r] >= 0 {
			x[r], keep[r] = &item[off[r]], true
		}
	}
	var b winoIn512
	// Channel planes 4 KiB and more apart are prefetched, as winoInputAsm does.
	winoIn512Fill(&b, m, nu, n, cin, hw, wt, ps, ldv, keep, s.PreScale != nil, s.PreScale != nil || s.PreRelu, s.PreRelu, hw >= 1024)
	scale, shift := &b.one, &b.zero
	if s.PreScale != nil {
		scale, shift = &s.PreScale[c0], &s.PreShift[c0]
	}
	if m == 4 {
		winoIn4AVX512(&rows[ulo], &rows[0], x[0], x[1], x[2], x[3], x[4], x[5], scale, shift, &v[0], &b)
	} else {
		winoIn2AVX512(&rows[ulo], &rows[0], x[0], x[1], x[2], x[3], x[4], x[5], scale, shift, &v[0], &b)
	}
}

// winoIn512Fits reports whether the column pass's loads of channels up to c1 lie in item: they
// read max(nu, 16) floats of each input row (off[r] >= 0) of hw-float planes.
func winoIn512Fits(item []float32, hw int, off [6]int, alpha, nu, c1 int) bool {
	for r := 0; r < alpha; r++ {
		if off[r] >= 0 && (c1-1)*hw+off[r]+max(nu, 16) > len(item) {
			return false
		}
	}
	return true
}

// winoIn512Use reports whether winoInputAsm512 runs the AVX-512 kernel for a segment of n tiles
// of F(m x m): F(4x4) only. On a shared 2-vCPU Zen 5 (AMD EPYC Turin), BenchmarkWinoInTransform
// (and an interleaved A/B of the two levels, minimum of 300 runs) measured winoIn4AVX512 3-11%
// faster than winoInput4AVX2 on DenseNet-121's 56x56 and 28x28 and ResNet-18's 56x56 and 28x28
// convolutions (rows of 14 and 7 tiles), and winoIn2AVX512 the same as winoInput2AVX2 at 14x14
// (7 tiles) and 20% slower at 7x7 (4 tiles, 7 input columns: the per-channel setup outweighs the
// half-empty vectors' savings), so F(2x2) stays AVX2; its kernel is kept, and tested, for CPUs
// where it may measure otherwise.
func winoIn512Use(m, n int) bool { return m == 4 }

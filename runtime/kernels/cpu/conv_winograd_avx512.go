package cpu

import "math"

// The arguments of winoOut4AVX512 (conv_winograd_amd64.go) that the Go side prepares. They are
// in a file of every build because the kasm interpreter tests (conv_winograd_kasm_test.go) run
// the kernel's description everywhere, with the arguments the wrapper would pass.

// winoOut4Consts is the size of winoOut4AVX512's constants block (winoasm.Out4Consts; the
// tests check that winoOut4Fill writes the layout the kernel reads).
const winoOut4Consts = 5

// winoOut4Fill writes the constants block of winoOut4AVX512 (the winoasm.Out4* offsets): the
// bias, the multipliers 2, 4 and 8 of A^T, and the ReLU floor, 0 or -Inf (max(x, -Inf) = x).
func winoOut4Fill(c []float32, bias float32, relu bool) {
	floor := float32(math.Inf(-1))
	if relu {
		floor = 0
	}
	c[0], c[1], c[2], c[3], c[4] = bias, 2, 4, 8, floor
}

// winoOut4Masks returns the opmasks of winoOut4AVX512's last group of 1..16 tiles: a bit per
// tile, and a bit per float of its output rows (4 per tile).
func winoOut4Masks(n int) (tmask, fmask int) {
	rem := n - (n-1)/16*16
	if rem == 16 {
		return 0xFFFF, -1
	}
	return 1<<rem - 1, 1<<(4*rem) - 1
}

// winoIn512 is the argument block of the AVX-512 input transforms winoIn4AVX512 and
// winoIn2AVX512 (winoasm.In, whose In* constants are its byte offsets; the tests check them):
// byte strides, counts, opmasks and constants that winoIn512Fill computes, and three words the
// kernel writes as it goes. It holds no pointers: those are the kernels' arguments. It is in a
// file of every build because the kasm interpreter tests run the kernels' descriptions
// everywhere, with the block the wrapper would pass.
type winoIn512 struct {
	ldt, xstep, nu, cin, tiles, ps, ldv int
	sstep, pro, prefetch                int
	colk, tilek                         int
	rowk                                [6]int
	xoff, soff, voff                    int // the kernel's
	xkeep                               [6]int
	floor, four, mfour, one, zero       float32
	perm                                [16]int32
}

// winoIn512Fill fills b for the transform of cin channels of nu input columns (from column ulo
// of the T rows, wt floats apart) into n tiles of V (ps, ldv), with input planes of hw floats.
// keep[r] is whether input row r exists (else it is padding, 0); scaled whether the prologue has
// a scale and shift per channel (else 1 and 0 from the block), pro whether it runs at all (a
// scale or a ReLU), relu its ReLU.
func winoIn512Fill(b *winoIn512, m, nu, n, cin, hw, wt, ps, ldv int, keep [6]bool, scaled, pro, relu, prefetch bool) {
	*b = winoIn512{ldt: 4 * wt, xstep: 4 * hw, nu: nu, cin: cin, tiles: n, ps: 4 * ps, ldv: 4 * ldv,
		four: 4, mfour: -4, one: 1}
	if scaled {
		b.sstep = 4
	}
	if pro {
		b.pro = 1
	}
	if prefetch {
		b.prefetch = 1
	}
	b.colk = 0xFFFF
	if nu < 16 {
		b.colk = 1<<nu - 1
	}
	for r := 0; r < m+2; r++ {
		if keep[r] {
			b.rowk[r], b.xkeep[r] = b.colk, -1
		}
	}
	b.tilek = 1<<(n%16) - 1 // used when n%16 < 8, not in pair mode (n <= 8)
	if !relu {
		b.floor = float32(math.Inf(-1))
	}
	b.perm = winoIn512Perm(m)
}

// winoIn512Perm is winoasm.InPermFor (the tests check it): the VPERMPS indices that put the row
// pass's tiles in order.
func winoIn512Perm(m int) [16]int32 {
	var p [16]int32
	for j := range p {
		if m == 4 {
			p[j] = int32(4*(j%4) + j/4)
		} else {
			p[j] = int32(4*(j%8/2) + 2*(j/8) + j%2)
		}
	}
	return p
}

// winoIn512Reads returns the floats of the transform rows that the AVX-512 input transform of
// n tiles reads or writes (wt floats apart, nu columns from ulo): the column pass's, at least 16
// columns, and the row pass's loads, which run up to a group of 16 tiles (8 in pair mode, n <=
// 8) past the tiles.
func winoIn512Reads(m, alpha, wt, ulo, nu, n int) int {
	w := 8
	if n > 8 {
		w = (n + 15) &^ 15
	}
	return (alpha-1)*wt + max(ulo+max(nu, 16), m*w+m)
}

// winoIn512Writes returns the tiles of a V row that the AVX-512 input transform of n tiles
// writes: groups of 16 while 8 or more tiles are left, then the last 1..7 exactly; one group of 8
// when n <= 8 (pair mode). That is at most 8 past n, as V's rows have room for (winoGeom.ldv).
func winoIn512Writes(n int) int {
	if n <= 8 {
		return 8
	}
	if r := n % 16; r > 0 && r < 8 {
		return n
	}
	return (n + 15) &^ 15
}

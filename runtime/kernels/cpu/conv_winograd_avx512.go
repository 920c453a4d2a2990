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

//go:build amd64 && !purego

package cpu

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// sigmoidHW returns the assembly kernel called name as the tests call it (x, y, n, c), when
// this CPU runs its level (nil otherwise).
func sigmoidHW(name string) func(x, y []float32, n int, c []float32) {
	k, l := sigmoidAVX2, isa.AVX2
	if name == "sigmoidAVX512" {
		k, l = sigmoidAVX512, isa.AVX512
	}
	if isa.Selected().Max < l {
		return nil
	}
	return func(x, y []float32, n int, c []float32) {
		var xp, yp *float32
		if len(x) > 0 {
			xp, yp = &x[0], &y[0]
		} else {
			// n = 0: the kernel must not touch memory; any valid pointer will do.
			xp, yp = &c[0], &c[0]
		}
		k(xp, yp, n, &c[0])
	}
}

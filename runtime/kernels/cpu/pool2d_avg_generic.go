//go:build !amd64 || purego

package cpu

// avg2x2Row sets dst[k] = (f(r0[2k]) + f(r1[2k]) + f(r0[2k+1]) + f(r1[2k+1])) / 4 for
// k < len(dst), with f(v) = max(v*scale + shift, floor) (no assembly in this build).
func avg2x2Row(_ bool, dst, r0, r1 []float32, scale, shift, floor float32) {
	n := len(dst)
	avg2x2RowGo(dst, r0[:2*n], r1[:2*n], scale, shift, floor)
}

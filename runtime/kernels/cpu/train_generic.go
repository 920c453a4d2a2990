//go:build !amd64 || purego

package cpu

// stage8 writes dst[p*dstStride + c] = act(src[c*srcStride + p]*scale[c] + shift[c]) for 8
// channels c and n pixels p, act = max(., 0) when relu.
func stage8(dst []float32, dstStride int, src []float32, srcStride, n int, scale, shift *[8]float32, relu bool) {
	stage8Go(dst, dstStride, src, srcStride, 0, n, scale, shift, relu)
}

// bnSums returns sum dz and sum dz*x over x and dy, dz = dy where x*a+b > 0 when relu.
func bnSums(x, dy []float32, a, b float32, relu bool) (s1, s2 float64) {
	return bnSumsGo(x, dy[:len(x)], a, b, relu)
}

// bnDX writes (acc: adds) a*dz + cx*(x-m) + c0 into dx, dz = dy where x*a+b > 0 when relu.
func bnDX(x, dy, dx []float32, a, b, cx, c0, m float32, relu, acc bool) {
	bnDXGo(x, dy[:len(x)], dx[:len(x)], a, b, cx, c0, m, relu, acc)
}

// affineRow writes y[i] = act(x[i]*a + b), act = max(., 0) when relu.
func affineRow(x, y []float32, a, b float32, relu bool) { affineRowGo(x, y, a, b, relu) }

// hasTrainAVX2 is false: the portable kernels run.
var hasTrainAVX2 = false

// rowStats returns the mean and biased variance of row, in float64 and two passes.
func rowStats(row []float32) (mean, variance float64) { return rowStatsGo(row) }

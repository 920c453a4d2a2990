package cpu

import "math"

// The portable definitions of training's elementwise kernels; the assembly versions
// (train_amd64.s) compute the same with vector instructions.

// stage8Go is stage8 for pixels [p0, n).
func stage8Go(dst []float32, dstStride int, src []float32, srcStride, p0, n int, scale, shift *[8]float32, relu bool) {
	for p := p0; p < n; p++ {
		d := dst[p*dstStride:][:8]
		for c := range d {
			v := src[c*srcStride+p]*scale[c] + shift[c]
			if relu {
				v = max(v, 0)
			}
			d[c] = v
		}
	}
}

// affineRowGo is affineRow in Go (unfused multiply-add, as the Go packer of purego builds).
func affineRowGo(x, y []float32, a, b float32, relu bool) {
	y = y[:len(x)]
	if relu {
		for i, v := range x {
			y[i] = max(v*a+b, 0)
		}
		return
	}
	for i, v := range x {
		y[i] = v*a + b
	}
}

// bnSumsGo is bnSums in Go.
func bnSumsGo(x, dy []float32, a, b float32, relu bool) (s1, s2 float64) {
	for i, xv := range x {
		d := dy[i]
		if relu {
			d = reluGrad(xv*a+b, d)
		}
		s1 += float64(d)
		s2 += float64(d) * float64(xv)
	}
	return s1, s2
}

// bnDXGo is bnDX in Go.
func bnDXGo(x, dy, dx []float32, a, b, cx, c0, m float32, relu, acc bool) {
	for i, xv := range x {
		d := dy[i]
		if relu {
			d = reluGrad(xv*a+b, d)
		}
		v := a*d + cx*(xv-m) + c0
		if acc {
			v += dx[i]
		}
		dx[i] = v
	}
}

// reluGrad returns d where z > 0 and 0 elsewhere (also for z = -0 and NaN with the sign bit),
// without a branch: the ReLU masks of real activations are close to random, and a mispredicted
// branch per element costs more than the arithmetic.
func reluGrad(z, d float32) float32 {
	zb := int32(math.Float32bits(z))
	keep := uint32(((-zb) & ^zb) >> 31) // all ones exactly when zb > 0
	return math.Float32frombits(math.Float32bits(d) & keep)
}

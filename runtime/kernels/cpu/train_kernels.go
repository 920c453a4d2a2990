package cpu

import "math"

// The portable definitions of training's elementwise kernels; the assembly versions
// (train_amd64.s) compute the same with vector instructions.

// stageGo writes dst[p*dstStride + c] = act(src[c*srcStride + p]*scale[c] + shift[c]) for
// cnt <= 8 channels c and n pixels p, act = max(., 0) when relu: it transposes channel rows
// into pixel-major order with the prologue applied.
func stageGo(dst []float32, dstStride int, src []float32, srcStride, cnt, n int, scale, shift [8]float32, relu bool) {
	for p := 0; p < n; p++ {
		d := dst[p*dstStride:][:cnt]
		for c := range d {
			v := src[c*srcStride+p]*scale[c] + shift[c]
			if relu {
				v = max(v, 0)
			}
			d[c] = v
		}
	}
}

// affineRowGo writes y[i] = act(x[i]*a + b), act = max(., 0) when relu, with an unfused
// multiply-add, as packGo applies a convolution's prologue (both are the generic level's).
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

// bnSumsGo returns sum dz and sum dz*x over x and dy, dz = dy where x*a+b > 0 when relu
// (everywhere otherwise).
func bnSumsGo(x, dy []float32, a, b float32, relu bool) (s1, s2 float64) {
	dy = dy[:len(x)]
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

// bnDXGo writes (acc: adds) a*dz + cx*(x-m) + c0 into dx, dz = dy where x*a+b > 0 when relu
// (everywhere otherwise).
func bnDXGo(x, dy, dx []float32, a, b, cx, c0, m float32, relu, acc bool) {
	dy, dx = dy[:len(x)], dx[:len(x)]
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

//go:build amd64 && !purego

package cpu

import "math"

//go:generate go run dwgen.go -o conv_depthwise_amd64.s -decl conv_depthwise_decl_amd64.go

// dwMask is the tail mask table of the depthwise kernels: 16 lanes of all ones, then 16 of
// zeros; the first k lanes of a vector are selected by the table's lanes from 16-k.
var dwMask = func() (m [32]uint32) {
	for i := range 16 {
		m[i] = 0xFFFFFFFF
	}
	return m
}()

// dw3x3Asm2 is dw3x3Go with the AVX2 kernel (dw3x3AVX2): the same bits.
func dw3x3Asm2(dst, src, w []float32, b float32, relu bool, g dwGeom) {
	dw3x3Call(false, dst, src, w, b, relu, g)
}

// dw3x3Asm512 is dw3x3Go with the AVX-512 kernel (dw3x3AVX512): the same bits.
func dw3x3Asm512(dst, src, w []float32, b float32, relu bool, g dwGeom) {
	dw3x3Call(true, dst, src, w, b, relu, g)
}

// dw3x3Call checks the bounds that dw3x3Go's slicing would check (the kernel reads
// src[base[k] + oy*wq:][:ow] for every tap and row and writes dst[:oh*ow]) and runs the AVX2
// kernel, or the AVX-512 one when wide. The kernels are called directly, not through a func
// value, so that off and c stay on the stack (go:noescape).
func dw3x3Call(wide bool, dst, src, w []float32, b float32, relu bool, g dwGeom) {
	if g.oh <= 0 || g.ow <= 0 {
		return
	}
	if g.base[0] != 0 || g.wq < g.ow {
		panic("cpu: dw3x3: bad geometry")
	}
	last := (g.oh-1)*g.wq + g.ow // one past the last float of a tap with base 0
	var off [9]int
	for i, o := range g.base {
		if o < 0 || o+last > len(src) {
			panic("cpu: dw3x3: input out of range")
		}
		off[i] = 4 * o
	}
	_ = dst[g.oh*g.ow-1]
	var c [12]float32
	copy(c[:9], w[:9])
	c[9] = b
	c[10] = float32(math.Inf(-1))
	if relu {
		c[10] = 0
	}
	if wide {
		dw3x3AVX512(&src[0], &dst[0], g.ow, g.oh, 4*(g.wq-g.ow), &off[0], &c[0], &dwMask[0])
	} else {
		dw3x3AVX2(&src[0], &dst[0], g.ow, g.oh, 4*(g.wq-g.ow), &off[0], &c[0], &dwMask[0])
	}
}

//go:build amd64 && !purego

package cpu

// avg2x2PreAVX2 is avg2x2RowAsm's assembly for n outputs, a positive multiple of 8 (see the .s
// file for the exact summation order).
//
//go:noescape
func avg2x2PreAVX2(dst, r0, r1 *float32, n int, scale, shift, floor, inv float32)

// avg2x2RowAsm is avg2x2RowGo in assembly: dst[k] = (f(r0[2k]) + f(r1[2k]) + f(r0[2k+1]) +
// f(r1[2k+1])) / 4 for k < len(dst), with f(v) = max(v*scale + shift, floor); r0 and r1 hold at
// least 2*len(dst) floats. The last partial vector is computed again overlapping the one before
// (same inputs, same results), and a row shorter than a vector goes through zero-padded copies.
func avg2x2RowAsm(dst, r0, r1 []float32, scale, shift, floor float32) {
	n := len(dst)
	r0, r1 = r0[:2*n], r1[:2*n] // panics, before the assembly runs, if a row is short
	if n == 0 {
		return
	}
	if n < 8 {
		var a, b [16]float32
		var y [8]float32
		copy(a[:], r0)
		copy(b[:], r1)
		avg2x2PreAVX2(&y[0], &a[0], &b[0], 8, scale, shift, floor, 0.25)
		copy(dst, y[:n])
		return
	}
	n8 := n &^ 7
	avg2x2PreAVX2(&dst[0], &r0[0], &r1[0], n8, scale, shift, floor, 0.25)
	if n8 < n {
		avg2x2PreAVX2(&dst[n-8], &r0[2*(n-8)], &r1[2*(n-8)], 8, scale, shift, floor, 0.25)
	}
}

// avg2x2PlaneAsm2 is avg2x2PlaneGo with the AVX2 row kernel, one call per output row.
func avg2x2PlaneAsm2(dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32) {
	avg2x2PlaneRows(avg2x2RowAsm, dst, dp, src, wd, rows, n, scale, shift, floor)
}

// avg2x2PlaneAsm512 is avg2x2PlaneGo with the AVX-512 plane kernel (avg2x2PlaneAVX512), one
// call for the plane; it gives avg2x2RowAsm's bits (same FMA, same summation order). The bounds
// the row loop's slicing checks are checked here, before the assembly runs.
func avg2x2PlaneAsm512(dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32) {
	if rows <= 0 || n <= 0 {
		return
	}
	if dp < n || wd < 2*n {
		avg2x2PlaneRows(avg2x2RowAsm, dst, dp, src, wd, rows, n, scale, shift, floor)
		return
	}
	_ = dst[(rows-1)*dp+n-1]
	_ = src[(2*rows-1)*wd+2*n-1]
	c := [4]float32{scale, shift, floor, 0.25}
	avg2x2PlaneAVX512(&dst[0], &src[0], n, rows, wd, dp, &c[0], &poolTab[0])
}

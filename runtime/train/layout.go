package train

// Layout helpers: values of rank >= 3 are stored channel-major ([C][N][S]), the others
// row-major (see plan).

// offsetOf returns the storage offset of the element at row-major (logical) index j of v.
func (v *val) offsetOf(j int) int {
	if !v.cm {
		return j
	}
	per := v.c * v.s
	n, rem := j/per, j%per
	c, i := rem/v.s, rem%v.s
	return c*v.cs + n*v.s + i
}

// toLayout returns row-major data x of value v in v's storage layout (x itself when they agree).
func toLayout(v *val, x []float32) []float32 {
	if !v.cm || (v.n == 1 && v.cs == v.s) {
		return x
	}
	out := make([]float32, v.size)
	copyToLayout(v, out, x)
	return out
}

// copyToLayout writes row-major data x of value v into dst in v's storage layout.
func copyToLayout(v *val, dst, x []float32) {
	if !v.cm || (v.n == 1 && v.cs == v.s) {
		copy(dst, x)
		return
	}
	for n := 0; n < v.n; n++ {
		for c := 0; c < v.c; c++ {
			copy(dst[c*v.cs+n*v.s:c*v.cs+(n+1)*v.s], x[(n*v.c+c)*v.s:(n*v.c+c+1)*v.s])
		}
	}
}

// transpose writes the cols x rows transpose of the rows x cols matrix src into dst (grown as
// needed) and returns it.
func transpose(src []float32, rows, cols int, dst []float32) []float32 {
	dst = growF32(dst, rows*cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			dst[j*rows+i] = src[i*cols+j]
		}
	}
	return dst
}

// addTransposed writes (acc: adds) the transpose of the rows x cols matrix src into dst.
func addTransposed(src []float32, rows, cols int, dst []float32, acc bool) {
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			v := src[i*cols+j]
			if acc {
				v += dst[j*rows+i]
			}
			dst[j*rows+i] = v
		}
	}
}

func growF32(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// accumulate writes (acc: adds) src into dst.
func accumulate(dst, src []float32, acc bool) {
	if !acc {
		copy(dst, src)
		return
	}
	for i, v := range src {
		dst[i] += v
	}
}

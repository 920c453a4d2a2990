package cpu

// The Winograd input and output transforms in plain Go. They are the specification of the
// assembly versions (conv_winograd_amd64.s) and run where those do not. The coefficients are
// those of winoBT2/winoBT4 and the A^T matrices
//
//	F(2x2): A^T = [1 1 1 0; 0 1 -1 -1]
//	F(4x4): A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
//
// written out with shared subexpressions.

// winoInColsGo computes the first pass of the input transform over n columns:
//
//	t[i*ldt + u] = sum_r B^T[i][r] * pre_r(x[r][u]),  pre_r(v) = v*scale[r] + shift[r], then max(., 0) when relu
//
// for i, r < alpha = m+2 and u < n.
func winoInColsGo(m int, t []float32, ldt int, x *[6][]float32, n int, scale, shift *[6]float32, relu bool) {
	pre := func(r, u int) float32 {
		v := x[r][u]*scale[r] + shift[r]
		if relu && v < 0 {
			v = 0
		}
		return v
	}
	if m == 2 {
		t0, t1, t2, t3 := t[:n], t[ldt:ldt+n], t[2*ldt:2*ldt+n], t[3*ldt:3*ldt+n]
		for u := 0; u < n; u++ {
			d0, d1, d2, d3 := pre(0, u), pre(1, u), pre(2, u), pre(3, u)
			t0[u] = d0 - d2
			t1[u] = d1 + d2
			t2[u] = d2 - d1
			t3[u] = d1 - d3
		}
		return
	}
	t0, t1, t2 := t[:n], t[ldt:ldt+n], t[2*ldt:2*ldt+n]
	t3, t4, t5 := t[3*ldt:3*ldt+n], t[4*ldt:4*ldt+n], t[5*ldt:5*ldt+n]
	for u := 0; u < n; u++ {
		d0, d1, d2, d3, d4, d5 := pre(0, u), pre(1, u), pre(2, u), pre(3, u), pre(4, u), pre(5, u)
		t0[u], t1[u], t2[u], t3[u], t4[u], t5[u] = winoBT4Apply(d0, d1, d2, d3, d4, d5)
	}
}

// winoBT4Apply returns B^T d for F(4x4), d = (d0..d5).
func winoBT4Apply(d0, d1, d2, d3, d4, d5 float32) (t0, t1, t2, t3, t4, t5 float32) {
	a := d4 - 4*d2 // t1, t2 = a ∓ b
	bb := 4*d1 - d3
	c := d4 - d2 // t3, t4 = c ∓ e
	e := 2 * (d1 - d3)
	return 4*d0 - 5*d2 + d4, a - bb, a + bb, c - e, c + e, 4*d1 - 5*d3 + d5
}

// winoInRowsGo computes the second pass of the input transform for n tiles: with the alpha rows
// T_i = t[i*ldt:],
//
//	v[(i*alpha + k)*ps + j] = sum_s B^T[k][s] * T_i[m*j + s]
//
// for i, k < alpha and j < n.
func winoInRowsGo(m int, t []float32, ldt, n int, v []float32, ps int) {
	alpha := m + 2
	for i := 0; i < alpha; i++ {
		ti := t[i*ldt : i*ldt+m*n+2]
		vi := v[i*alpha*ps:]
		if m == 2 {
			v0, v1, v2, v3 := vi[:n], vi[ps:ps+n], vi[2*ps:2*ps+n], vi[3*ps:3*ps+n]
			for j := 0; j < n; j++ {
				d := ti[2*j : 2*j+4]
				v0[j] = d[0] - d[2]
				v1[j] = d[1] + d[2]
				v2[j] = d[2] - d[1]
				v3[j] = d[1] - d[3]
			}
			continue
		}
		v0, v1, v2 := vi[:n], vi[ps:ps+n], vi[2*ps:2*ps+n]
		v3, v4, v5 := vi[3*ps:3*ps+n], vi[4*ps:4*ps+n], vi[5*ps:5*ps+n]
		for j := 0; j < n; j++ {
			d := ti[4*j : 4*j+6]
			v0[j], v1[j], v2[j], v3[j], v4[j], v5[j] = winoBT4Apply(d[0], d[1], d[2], d[3], d[4], d[5])
		}
	}
}

// winoOutGo computes the output transform of n tiles of one output channel: with
// M_p[j] = mm[p*ps + j] for the alpha^2 positions p,
//
//	S_i[q][j] = sum_k A^T[q][k] * M_{i*alpha+k}[j]
//	y[r*ldy + m*j + q] = post(bias + sum_i A^T[r][i] * S_i[q][j]),  post = max(., 0) when relu
//
// for r, q < m and j < n. The last argument, the assembly's scratch, is not used.
func winoOutGo(m int, mm []float32, ps, n int, y []float32, ldy int, bias float32, relu bool, _ []float32) {
	post := func(v float32) float32 {
		v += bias
		if relu && v < 0 {
			v = 0
		}
		return v
	}
	if m == 2 {
		y0, y1 := y[:2*n], y[ldy:ldy+2*n]
		for j := 0; j < n; j++ {
			var s [4][2]float32
			for i := 0; i < 4; i++ {
				p := i * 4 * ps
				m0, m1, m2, m3 := mm[p+j], mm[p+ps+j], mm[p+2*ps+j], mm[p+3*ps+j]
				s[i][0] = m0 + m1 + m2
				s[i][1] = m1 - m2 - m3
			}
			for q := 0; q < 2; q++ {
				y0[2*j+q] = post(s[0][q] + s[1][q] + s[2][q])
				y1[2*j+q] = post(s[1][q] - s[2][q] - s[3][q])
			}
		}
		return
	}
	y0, y1, y2, y3 := y[:4*n], y[ldy:ldy+4*n], y[2*ldy:2*ldy+4*n], y[3*ldy:3*ldy+4*n]
	for j := 0; j < n; j++ {
		var s [6][4]float32
		for i := 0; i < 6; i++ {
			p := i * 6 * ps
			s[i][0], s[i][1], s[i][2], s[i][3] = winoAT4Apply(mm[p+j], mm[p+ps+j], mm[p+2*ps+j], mm[p+3*ps+j], mm[p+4*ps+j], mm[p+5*ps+j])
		}
		for q := 0; q < 4; q++ {
			r0, r1, r2, r3 := winoAT4Apply(s[0][q], s[1][q], s[2][q], s[3][q], s[4][q], s[5][q])
			y0[4*j+q] = post(r0)
			y1[4*j+q] = post(r1)
			y2[4*j+q] = post(r2)
			y3[4*j+q] = post(r3)
		}
	}
}

// winoAT4Apply returns A^T s for F(4x4), s = (s0..s5).
func winoAT4Apply(s0, s1, s2, s3, s4, s5 float32) (r0, r1, r2, r3 float32) {
	a, b := s1+s2, s1-s2
	c, d := s3+s4, s3-s4
	return s0 + a + c, b + 2*d, a + 4*c, b + 8*d + s5
}

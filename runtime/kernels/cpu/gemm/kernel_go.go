package gemm

import "unsafe"

// kernGo is the portable micro-kernel for panels nr columns wide, and the specification of the
// assembly ones: with T[i][j] = sum_{k<kc} a[k*MR+i] * b[k*nr+j] (summed in k order),
//
//	T += c[i*ldc+j]   when flags&flagCarry
//	T += bias[i]      when flags&flagBias
//	T  = max(T, 0)    when flags&flagReLU (NaN stays NaN)
//	T  = lo > T ? lo : T, then hi < T ? hi : T   when flags&flagClamp, with lo = bias[MR] and
//	                  hi = bias[MR+1] (the bias block then has MR+2 floats; NaN stays NaN)
//
// and c[i*ldc+j] = T[i][j] for i < MR, j < nr.
func kernGo(mr, nr, kc int, a, b, c *float32, ldc int, bias *float32, flags int) {
	kernGoWidth(mr, nr, nr, kc, a, b, c, ldc, bias, flags)
}

// goFull returns kernGo for mr x nr tiles as a kernelFunc, the portable counterpart of kernAVX2
// and kernAVX512.
func goFull(mr, nr int) kernelFunc {
	return func(kc int, a, b, c *float32, ldc int, bias *float32, flags int) {
		kernGo(mr, nr, kc, a, b, c, ldc, bias, flags)
	}
}

// edgeFunc is the type of the edge kernels, which compute the last, partial column panel
// straight into C: kernelFunc restricted to the first step*(w-1) columns of the tile (w: the
// kernel's vector registers per row, step their lanes) and the lanes of the next step that
// mask selects (step int32: -1 for a column of C, 0 past them; the selected lanes are a
// prefix). Those columns are computed exactly as the full kernel computes them, and C past them
// is not touched.
type edgeFunc func(kc int, a, b, c *float32, ldc int, bias *float32, flags int, mask *int32)

// goEdges returns the portable edge kernels for panels nr wide, w = 1 .. nr/step registers of
// step lanes: the counterpart of edgeKernelsAVX2 (nr 24, step 8) and edgeKernelsAVX512 (32, 16).
func goEdges(mr, nr, step int) []edgeFunc {
	ks := make([]edgeFunc, nr/step)
	for i := range ks {
		ks[i] = func(kc int, a, b, c *float32, ldc int, bias *float32, flags int, mask *int32) {
			cols := step * i
			for _, m := range unsafe.Slice(mask, step) {
				if m != 0 {
					cols++
				}
			}
			kernGoWidth(mr, nr, cols, kc, a, b, c, ldc, bias, flags)
		}
	}
	return ks
}

// kernGoWidth is kernGo restricted to the first w columns (B rows stay nr floats apart); columns
// w..nr-1 of c are not touched.
func kernGoWidth(MR, nr, w, kc int, a, b, c *float32, ldc int, bias *float32, flags int) {
	var t [MaxMR][MaxNR]float32
	if kc > 0 {
		as := unsafe.Slice(a, kc*MR)
		bs := unsafe.Slice(b, kc*nr)
		for k := 0; k < kc; k++ {
			ak := as[k*MR : k*MR+MR]
			bk := bs[k*nr : k*nr+nr]
			for i := 0; i < MR; i++ {
				av := ak[i]
				ti := &t[i]
				for jj := 0; jj < nr; jj++ {
					ti[jj] += av * bk[jj]
				}
			}
		}
	}
	cs := unsafe.Slice(c, (MR-1)*ldc+w)
	for i := 0; i < MR; i++ {
		row := cs[i*ldc : i*ldc+w]
		for jj := 0; jj < w; jj++ {
			row[jj] = finishGo(MR, i, t[i][jj], row[jj], bias, flags)
		}
	}
}

// finishGo is the epilogue of output row i of the portable kernels: v plus the carry (c, the
// element already in C), the bias, then ReLU and the clamp, as kernGo says.
func finishGo(MR, i int, v, c float32, bias *float32, flags int) float32 {
	if flags&flagCarry != 0 {
		v += c
	}
	if flags&flagBias != 0 {
		v += *(*float32)(unsafe.Add(unsafe.Pointer(bias), 4*i))
	}
	if flags&flagReLU != 0 && v < 0 {
		v = 0
	}
	if flags&flagClamp != 0 {
		lo := *(*float32)(unsafe.Add(unsafe.Pointer(bias), 4*MR))
		hi := *(*float32)(unsafe.Add(unsafe.Pointer(bias), 4*(MR+1)))
		if lo > v {
			v = lo
		}
		if hi < v {
			v = hi
		}
	}
	return v
}

// packGo is the portable B packer for panels nr wide, and the specification of the assembly
// ones: for each row i < k, lane j < nr of dst[i*nr:] is f_i(src[offs[i] + segs[s].base + j]) for the segment s whose
// mask selects lane j, and 0 when no segment does; f_i(v) is v, then v*scale[i] + shift[i] when
// flags&1, then max(v, 0) when flags&2. flags&4 promises a single segment with a full mask.
func packGo(nr int, dst, src *float32, offs *int32, k int, segs *segment, nseg int, scale, shift *float32, flags int) {
	d := unsafe.Slice(dst, k*nr)
	o := unsafe.Slice(offs, k)
	sg := unsafe.Slice(segs, nseg)
	var sc, sh []float32
	if flags&1 != 0 {
		sc, sh = unsafe.Slice(scale, k), unsafe.Slice(shift, k)
	}
	for i := 0; i < k; i++ {
		row := d[i*nr : i*nr+nr]
		var covered [MaxNR]bool
		for s := range sg {
			for j := 0; j < nr; j++ {
				if sg[s].mask[j] != 0 {
					row[j] = *(*float32)(unsafe.Add(unsafe.Pointer(src), 4*(int(o[i])+sg[s].base+j)))
					covered[j] = true
				}
			}
		}
		for j := range row {
			v := row[j]
			if !covered[j] {
				row[j] = 0
				continue
			}
			if flags&1 != 0 {
				v = v*sc[i] + sh[i]
			}
			if flags&2 != 0 && v < 0 {
				v = 0
			}
			row[j] = v
		}
	}
}

// directFunc is the type of kernGoDirect and kernDirectAVX2.
type directFunc func(kc int, a, b *float32, offs *int32, c *float32, ldc int, bias *float32, flags int)

// kernGoDirect returns kernGo for panels nr wide with B read in place: row k of the panel is the
// nr floats at b + offs[k] (offs may be negative relative to b).
func kernGoDirect(mr, nr int) directFunc {
	return func(kc int, a, b *float32, offs *int32, c *float32, ldc int, bias *float32, flags int) {
		kernGoDirectNR(mr, nr, kc, a, b, offs, c, ldc, bias, flags)
	}
}

// kernGoDirectNR is the function kernGoDirect(nr) returns.
func kernGoDirectNR(MR, nr, kc int, a, b *float32, offs *int32, c *float32, ldc int, bias *float32, flags int) {
	var panel [MaxNR]float32
	var t [MaxMR][MaxNR]float32
	if kc > 0 {
		as := unsafe.Slice(a, kc*MR)
		os := unsafe.Slice(offs, kc)
		for k := 0; k < kc; k++ {
			copy(panel[:nr], unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(b), 4*int(os[k]))), nr))
			ak := as[k*MR : k*MR+MR]
			for i := 0; i < MR; i++ {
				av := ak[i]
				for jj := 0; jj < nr; jj++ {
					t[i][jj] += av * panel[jj]
				}
			}
		}
	}
	cs := unsafe.Slice(c, (MR-1)*ldc+nr)
	for i := 0; i < MR; i++ {
		row := cs[i*ldc : i*ldc+nr]
		for jj := range row {
			row[jj] = finishGo(MR, i, t[i][jj], row[jj], bias, flags)
		}
	}
}

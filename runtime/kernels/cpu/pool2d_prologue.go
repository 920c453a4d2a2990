package cpu

// prologuePlane returns the channel plane src with the pooling kernel's prologue applied,
//
//	dst[i] = max(scale*src[i] + shift, 0)   (no max without ReLU; scale 1, shift 0 without affine)
//
// written into buf (grown as needed and returned for reuse). A plane is at most a few tens of KiB
// and stays in cache for the pooling that reads it right after, so this costs far less than
// writing the normalized tensor out and reading it back.
func prologuePlane(buf *[]float32, src []float32, scale, shift float32, affine, relu bool) []float32 {
	if cap(*buf) < len(src) {
		*buf = make([]float32, len(src))
	}
	dst := (*buf)[:len(src)]
	prologueRow(dst, src, scale, shift, affine, relu)
	return dst
}

// hasPrologue reports whether k applies anything to its input before pooling.
func (k *Pool2D) hasPrologue() bool { return k.PreScale != nil || k.PreRelu }

// prologueOf returns channel c's prologue parameters.
func (k *Pool2D) prologueOf(c int) (scale, shift float32, affine bool) {
	if k.PreScale == nil {
		return 1, 0, false
	}
	return k.PreScale[c], k.PreShift[c], true
}

// avg2x2RowGo is the portable kernels.avg2x2Row: dst[k] = (f(r0[2k]) + f(r1[2k]) + f(r0[2k+1]) +
// f(r1[2k+1])) / 4 for k < len(dst), with f(v) = max(v*scale + shift, floor), summed in the
// assembly's order.
func avg2x2RowGo(dst, r0, r1 []float32, scale, shift, floor float32) {
	r0, r1 = r0[:2*len(dst)], r1[:2*len(dst)]
	for k := range dst {
		a := pre1(r0[2*k], scale, shift, floor)
		b := pre1(r1[2*k], scale, shift, floor)
		c := pre1(r0[2*k+1], scale, shift, floor)
		d := pre1(r1[2*k+1], scale, shift, floor)
		dst[k] = ((a + b) + (c + d)) * 0.25
	}
}

// pre1 is max(v*scale + shift, floor), NaN staying NaN.
func pre1(v, scale, shift, floor float32) float32 {
	v = v*scale + shift
	if v < floor {
		return floor
	}
	return v // also NaN: NaN < floor is false
}

// avg2x2Plane pools one plane with a 2x2 window of stride 2 and no padding, whose windows all
// lie inside the image (OutH*2 <= h, OutW*2 <= wd), applying the prologue f to every tap: one
// kernels.avg2x2Plane call for the whole plane (DenseNet-121's last transition has 7-wide rows,
// where a call per row costs as much as the row).
func avg2x2Plane(code *kernels, src, dst []float32, wd int, w *Window2D, scale, shift, floor float32) {
	code.avg2x2Plane(dst, w.OutW, src, wd, w.OutH, w.OutW, scale, shift, floor)
}

// avg2x2PlaneRows is kernels.avg2x2Plane as a loop over the level's row kernel (row, avg2x2Row
// of the generic and avx2 levels): output row r of n floats at dst[r*dp:] from input rows 2r and
// 2r+1 at src[2r*wd:] and src[(2r+1)*wd:].
func avg2x2PlaneRows(row func(dst, r0, r1 []float32, scale, shift, floor float32), dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32) {
	for r := 0; r < rows; r++ {
		row(dst[r*dp:][:n], src[2*r*wd:], src[(2*r+1)*wd:], scale, shift, floor)
	}
}

// avg2x2PlaneGo is the portable kernels.avg2x2Plane (see avg2x2PlaneRows).
func avg2x2PlaneGo(dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32) {
	avg2x2PlaneRows(avg2x2RowGo, dst, dp, src, wd, rows, n, scale, shift, floor)
}

// Algorithm names the row kernels Run uses on an h x wd image: "maxpool", "avgpool-2x2" (the
// 2x2 stride-2 average pool, DenseNet's transition, with any prologue applied per tap; assembly
// at the avx2 and avx512 levels) or "avgpool" (any other average pool, plain Go).
func (k *Pool2D) Algorithm(h, wd int) string {
	switch {
	case k.Max:
		return "maxpool"
	case k.avg2x2Fits(h, wd):
		return "avgpool-2x2"
	}
	return "avgpool"
}

// avg2x2Fits reports whether avg2x2Plane computes k's average pool over an h x wd image.
func (k *Pool2D) avg2x2Fits(h, wd int) bool {
	w := &k.Win
	return !k.Max && w.KH == 2 && w.KW == 2 && w.StrideH == 2 && w.StrideW == 2 && w.DilationH == 1 &&
		w.DilationW == 1 && w.PadT == 0 && w.PadL == 0 && 2*w.OutH <= h && 2*w.OutW <= wd
}

package cpu

import (
	"fmt"
	"math"
	"sync"
)

// Window2D is a resolved 2-D pooling window: kernel, stride, dilation and the padding at the
// top/left (the bottom/right padding is implied by the output size).
type Window2D struct {
	KH, KW               int
	StrideH, StrideW     int
	DilationH, DilationW int
	PadT, PadL           int
	OutH, OutW           int
}

// Pool2D is MaxPool or AveragePool over 2-D images.
//
//	max:     Y[n,c,y,x] = max over taps (i,j) inside the image of X[n,c, y*sh + i*dh - pt, x*sw + j*dw - pl]
//	average: the same sum divided by the number of taps inside the image, or by KH*KW when
//	         CountIncludePad (taps in the end padding that ceil_mode adds beyond the explicit pads
//	         still do not count, as in ONNX's reference)
type Pool2D struct {
	Win             Window2D
	Max             bool
	CountIncludePad bool
	PadB, PadR      int // explicit end pads, for CountIncludePad
	// PreScale, PreShift (one per channel, or both nil) and PreRelu are an average pool's
	// prologue, applied to every input element before pooling: max(PreScale[c]*x + PreShift[c], 0).
	PreScale, PreShift []float32
	PreRelu            bool

	tasks   sync.Pool // of *poolTask: reused so that Run does not allocate
	planes  sync.Pool // of *[]float32: prologue planes, one per running Do (see prologuePlane)
	maxRows sync.Pool // of *[]float32: a worker's max-pool padded rows (see maxRowBuf, maxPlane)
	code    *kernels  // the row kernels' level; nil (a literal Pool2D): the process's (active)
}

type poolTask struct {
	k       *Pool2D
	in, out Image
	wg      Group
}

// Run pools in into out (both may be strided). workers may be nil: the calling goroutine then
// does it all. It is safe for concurrent use.
func (k *Pool2D) Run(workers *Workers, in, out Image) error {
	w := k.Win
	if out.N != in.N || out.C != in.C || out.H != w.OutH || out.W != w.OutW {
		return fmt.Errorf("cpu: pool output %dx%dx%dx%d does not fit input %dx%dx%dx%d", out.N, out.C, out.H, out.W, in.N, in.C, in.H, in.W)
	}
	if (k.PreScale == nil) != (k.PreShift == nil) || (k.PreScale != nil && (len(k.PreScale) != in.C || len(k.PreShift) != in.C)) {
		return fmt.Errorf("cpu: pool prologue has %d scales and %d shifts for %d channels", len(k.PreScale), len(k.PreShift), in.C)
	}
	if k.Max && k.hasPrologue() {
		return fmt.Errorf("cpu: a max pool takes no prologue")
	}
	if err := in.Check(); err != nil {
		return err
	}
	if err := out.Check(); err != nil {
		return err
	}
	t, _ := k.tasks.Get().(*poolTask)
	if t == nil {
		t = &poolTask{}
	}
	t.k, t.in, t.out = k, in, out
	// At least 8 planes, and 16K input floats, per chunk: a hand-off costs more than pooling a
	// few small planes (densenet_tiny's 16-channel 16x16 transition: 15 us on 2 threads, 1 us on
	// one).
	parallel(workers, t, in.N*in.C, max(8, 16384/max(in.H*in.W, 1)), &t.wg)
	t.in, t.out = Image{}, Image{}
	k.tasks.Put(t)
	return nil
}

func (t *poolTask) Do(lo, hi int) {
	k, w := t.k, t.k.Win
	code := orActive(k.code)
	var row []float32
	if k.Max {
		// One buffer of padded rows per Do call (see maxRowBuf): calls run concurrently, and
		// each reuses a buffer from earlier Runs so that steady-state Runs do not allocate.
		buf, _ := k.maxRows.Get().(*[]float32)
		if buf == nil {
			buf = new([]float32)
		}
		defer k.maxRows.Put(buf)
		row = maxRowBuf(buf, t.in.W, &w)
	}
	fits2x2 := k.avg2x2Fits(t.in.H, t.in.W)
	var plane *[]float32
	if k.hasPrologue() && !fits2x2 {
		// Do calls run concurrently: each takes its own plane buffer (see prologuePlane).
		plane, _ = k.planes.Get().(*[]float32)
		if plane == nil {
			plane = new([]float32)
		}
		defer k.planes.Put(plane)
	}
	for p := lo; p < hi; p++ {
		n, c := p/t.in.C, p%t.in.C
		src := t.in.Item(n)[c*t.in.H*t.in.W : (c+1)*t.in.H*t.in.W]
		dst := t.out.Item(n)[c*w.OutH*w.OutW : (c+1)*w.OutH*w.OutW]
		switch {
		case k.Max:
			maxPlane(code, src, dst, row, t.in.H, t.in.W, &w)
		case fits2x2:
			// DenseNet's transition: one pass, the prologue applied to each tap as it is read.
			scale, shift, _ := k.prologueOf(c)
			floor := float32(math.Inf(-1))
			if k.PreRelu {
				floor = 0
			}
			avg2x2Plane(code, src, dst, t.in.W, &w, scale, shift, floor)
		default:
			if k.hasPrologue() {
				scale, shift, affine := k.prologueOf(c)
				src = prologuePlane(plane, src, scale, shift, affine, k.PreRelu)
			}
			avgPlane(src, dst, t.in.H, t.in.W, &w, k.CountIncludePad, k.PadB, k.PadR)
		}
	}
}

// tapRange returns the taps [lo, hi) of a window starting at start (may be negative) that land
// inside [0, size) with dilation d, for kernel extent k.
func tapRange(start, k, d, size int) (int, int) {
	lo := 0
	if start < 0 {
		lo = (-start + d - 1) / d
	}
	hi := k
	if last := size - 1 - start; last < (k-1)*d {
		if last < 0 {
			hi = 0
		} else {
			hi = last/d + 1
		}
	}
	return lo, max(lo, hi)
}

// interior returns the output range [a, b) whose windows (start o*s - pad, extent ext) lie
// inside [0, size).
func interior(out, s, pad, ext, size int) (int, int) {
	a := (pad + s - 1) / s
	b := 0
	if last := size - 1 - ext + pad; last >= 0 {
		b = last/s + 1
	}
	a, b = min(a, out), min(b, out)
	if b < a {
		b = a
	}
	return a, b
}

func avgPlane(src, dst []float32, h, wd int, w *Window2D, countPad bool, padB, padR int) {
	xa, xb := interior(w.OutW, w.StrideW, w.PadL, (w.KW-1)*w.DilationW, wd)
	for oy := 0; oy < w.OutH; oy++ {
		y0 := oy*w.StrideH - w.PadT
		i0, i1 := tapRange(y0, w.KH, w.DilationH, h)
		// taps inside the image plus its explicit padding, for count_include_pad
		pi0, pi1 := tapRange(y0+w.PadT, w.KH, w.DilationH, h+w.PadT+padB)
		out := dst[oy*w.OutW : (oy+1)*w.OutW]
		fullRows := i1-i0 == w.KH
		for ox := range out {
			if fullRows && ox == xa && xb > xa {
				// Every window here lies inside the image: the count is KH*KW in both modes.
				avgInterior(src, out[xa:xb], xa*w.StrideW-w.PadL, y0, wd, w)
				continue
			}
			if fullRows && ox > xa && ox < xb {
				continue
			}
			x0 := ox*w.StrideW - w.PadL
			j0, j1 := tapRange(x0, w.KW, w.DilationW, wd)
			var s float32
			for i := i0; i < i1; i++ {
				row := src[(y0+i*w.DilationH)*wd:]
				for j := j0; j < j1; j++ {
					s += row[x0+j*w.DilationW]
				}
			}
			count := (i1 - i0) * (j1 - j0)
			if countPad {
				pj0, pj1 := tapRange(x0+w.PadL, w.KW, w.DilationW, wd+w.PadL+padR)
				count = (pi1 - pi0) * (pj1 - pj0)
			}
			out[ox] = s / float32(count)
		}
	}
}

// avgInterior averages output columns whose windows lie entirely inside the image, summing the
// taps in the same order as the general path (row by row, left to right) so results match it.
func avgInterior(src, out []float32, x0, y0, wd int, w *Window2D) {
	if w.KH == 2 && w.KW == 2 && w.StrideW == 2 && w.DilationH == 1 && w.DilationW == 1 {
		// DenseNet's transition pool. Same summation order as below; /4 == *0.25 exactly.
		r0 := src[y0*wd+x0:][:2*len(out)]
		r1 := src[(y0+1)*wd+x0:][:2*len(out)]
		for k := range out {
			out[k] = (r0[2*k] + r0[2*k+1] + r1[2*k] + r1[2*k+1]) * 0.25
		}
		return
	}
	inv := float32(w.KH * w.KW)
	s := w.StrideW
	for k := range out {
		var sum float32
		for i := 0; i < w.KH; i++ {
			row := src[(y0+i*w.DilationH)*wd+x0+k*s:]
			row = row[:(w.KW-1)*w.DilationW+1]
			for j := 0; j < w.KW; j++ {
				sum += row[j*w.DilationW]
			}
		}
		out[k] = sum / inv
	}
}

// GlobalPool averages each channel plane: Y[n,c] = mean over h,w of X[n,c,h,w] (GlobalAveragePool,
// and ReduceMean over H and W), each plane summed in float64 by the level's vector kernel
// (kernels.rowSum): a squeeze-and-excitation block pools a whole 112x112x96 activation. Large
// pools split their channels over the workers. A GlobalPool is safe for concurrent Runs; the zero
// value is ready to use.
type GlobalPool struct {
	tasks sync.Pool // of *globalPoolTask
	code  *kernels  // the level its sums run at (nil: active; tests pass others)
}

// Run computes out (H = W = 1) from in. workers may be nil: the calling goroutine then does it all.
func (k *GlobalPool) Run(workers *Workers, in, out Image) error {
	if out.N != in.N || out.C != in.C || out.H*out.W != 1 {
		return fmt.Errorf("cpu: global pool output %dx%dx%dx%d does not fit input %dx%d", out.N, out.C, out.H, out.W, in.N, in.C)
	}
	t, _ := k.tasks.Get().(*globalPoolTask)
	if t == nil {
		t = &globalPoolTask{}
	}
	t.in, t.out, t.hw, t.code = in, out, in.H*in.W, k.code
	// 64K floats or more per chunk: a split of less measured slower on 2 threads than none
	// (DenseNet-121's 1024x7x7: 34 us on one thread, 131 us split in three).
	parallel(workers, t, in.N*in.C, max(1, 65536/max(t.hw, 1)), &t.g)
	t.in, t.out = Image{}, Image{}
	k.tasks.Put(t)
	return nil
}

// globalPoolTask averages planes [lo, hi) of n*C + c.
type globalPoolTask struct {
	in, out Image
	hw      int
	code    *kernels
	g       Group
}

// Do implements Task.
func (t *globalPoolTask) Do(lo, hi int) {
	sum := orActive(t.code).rowSum
	for p := lo; p < hi; p++ {
		n, c := p/t.in.C, p%t.in.C
		src := t.in.Data[n*t.in.BatchStride+c*t.hw:][:t.hw]
		t.out.Data[n*t.out.BatchStride+c] = float32(sum(src) / float64(t.hw))
	}
}

// Affine applies a per-channel affine map, optionally followed by ReLU (inference BatchNorm):
// Y[n,c,i] = relu?(Scale[c]*X[n,c,i] + Shift[c]).
func Affine(in, out Image, scale, shift []float32, relu bool) error {
	if out.N != in.N || out.C != in.C || out.H*out.W != in.H*in.W || len(scale) != in.C || len(shift) != in.C {
		return fmt.Errorf("cpu: affine shapes do not match")
	}
	hw := in.H * in.W
	for n := 0; n < in.N; n++ {
		src, dst := in.Item(n), out.Item(n)
		for c := 0; c < in.C; c++ {
			a, b := scale[c], shift[c]
			s, d := src[c*hw:(c+1)*hw], dst[c*hw:(c+1)*hw]
			if relu {
				for i, v := range s {
					d[i] = max(0, a*v+b)
				}
			} else {
				for i, v := range s {
					d[i] = a*v + b
				}
			}
		}
	}
	return nil
}

// Relu computes Y = max(X, 0) elementwise (NaN stays NaN, as in the reference).
func Relu(in, out Image) {
	per := in.C * in.H * in.W
	for n := 0; n < in.N; n++ {
		s, d := in.Item(n)[:per], out.Item(n)[:per]
		d = d[:len(s)]
		for i, v := range s {
			d[i] = max(v, 0) // branch-free (see Unary's FuncClip); NaN stays NaN
		}
	}
}

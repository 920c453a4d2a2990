package cpudev

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/dnx-ml/dnx/runtime/device"
)

// TestTrainingKernels checks the CPU's training kernels against plain loops, serial and on a
// few threads (chunks then split rows and GEMM panels).
func TestTrainingKernels(t *testing.T) {
	for _, threads := range []int{1, 3} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			k, done := NewTraining(threads)
			defer func() {
				if err := done(); err != nil {
					t.Error(err)
				}
			}()
			checkTrainingKernels(t, k)
		})
	}
}

// TestTrainingKernelsForeign checks that the CPU's convolutions refuse another device's kernels
// and handles instead of misreading them.
func TestTrainingKernelsForeign(t *testing.T) {
	k, done := NewTraining(1)
	defer done()
	if _, err := k.NewConvolution(device.ConvolutionSpec{N: 1, Cin: 1, H: 2, W: 2, Cout: 1, KH: 1, KW: 1}, "workspace"); err == nil {
		t.Error("NewConvolution accepted a foreign workspace")
	}
	c, err := k.NewConvolution(device.ConvolutionSpec{N: 1, Cin: 1, H: 2, W: 2, Cout: 1, KH: 1, KW: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 4)
	if err := c.Forward(foreignKernels{k}, x, device.Prologue{}, []float32{1}, nil, make([]float32, 4), false, nil); err == nil {
		t.Error("Forward ran on foreign kernels")
	}
	if _, err := c.PackGradInto(42, x); err == nil {
		t.Error("PackGradInto accepted a foreign packed gradient")
	}
}

// foreignKernels are some other device's kernels.
type foreignKernels struct{ device.TrainingKernels }

// scratchThreads sizes convolution scratch: more threads than any kernels under test run on
// (device.TrainingKernels does not say how many it has; more scratch is always enough).
const scratchThreads = 64

// checkTrainingKernels checks the kernels k against plain loops. It is written against
// device.TrainingKernels only, so that every device's implementation can run it. Results that
// sum many products are compared with a tolerance relative to the sum of their magnitudes
// (devices may order and fuse the float32 arithmetic differently); element-wise ones exactly.
func checkTrainingKernels(t *testing.T, k device.TrainingKernels) {
	t.Run("Parallel", func(t *testing.T) { checkParallel(t, k) })
	t.Run("ChannelStats", func(t *testing.T) { checkChannelStats(t, k) })
	t.Run("AffineRows", func(t *testing.T) { checkAffineRows(t, k) })
	t.Run("ReluBackward", func(t *testing.T) { checkReluBackward(t, k) })
	t.Run("BatchNormBackward", func(t *testing.T) { checkBatchNormBackward(t, k) })
	t.Run("Convolution", func(t *testing.T) { checkConvolutions(t, k) })
	t.Run("Pool", func(t *testing.T) { checkPools(t, k) })
}

func randF32(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

// closeTo reports whether got is within a relative 1e-5 of want, scaled by mag (the sum of the
// magnitudes of the terms that make want), plus an absolute 1e-6.
func closeTo(got, want, mag float64) bool {
	return math.Abs(got-want) <= 1e-5*mag+1e-6
}

func checkParallel(t *testing.T, k device.TrainingKernels) {
	for _, c := range []struct{ n, grain int }{{0, 1}, {1, 1}, {7, 1}, {1000, 16}, {1000, 5000}} {
		hits := make([]atomic.Int32, c.n)
		k.Parallel(c.n, c.grain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				hits[i].Add(1)
			}
		})
		for i := range hits {
			if h := hits[i].Load(); h != 1 {
				t.Fatalf("n %d grain %d: element %d visited %d times", c.n, c.grain, i, h)
			}
		}
	}
}

func checkChannelStats(t *testing.T, k device.TrainingKernels) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ channels, rowLen, stride int }{{1, 2, 2}, {3, 17, 17}, {5, 100, 103}, {2, 20000, 20003}} {
		x := randF32(r, (c.channels-1)*c.stride+c.rowLen)
		for i := range x {
			x[i] += 3 // a mean large against the deviation
		}
		mean, variance := make([]float64, c.channels), make([]float64, c.channels)
		k.ChannelStats(x, c.channels, c.rowLen, c.stride, mean, variance)
		for ch := 0; ch < c.channels; ch++ {
			row := x[ch*c.stride : ch*c.stride+c.rowLen]
			var m, v float64
			for _, e := range row {
				m += float64(e)
			}
			m /= float64(c.rowLen)
			for _, e := range row {
				v += (float64(e) - m) * (float64(e) - m)
			}
			v /= float64(c.rowLen)
			if !closeTo(mean[ch], m, 4) || !closeTo(variance[ch], v, v) {
				t.Errorf("%+v channel %d: mean %g variance %g, want %g %g", c, ch, mean[ch], variance[ch], m, v)
			}
		}
	}
}

func checkAffineRows(t *testing.T, k device.TrainingKernels) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		channels, rowLen, stride int
		relu                     bool
	}{{1, 1, 1, false}, {3, 17, 20, true}, {4, 1000, 1000, false}, {2, 33, 40, true}} {
		n := (c.channels-1)*c.stride + c.rowLen
		x := randF32(r, n)
		scale, shift := randF32(r, c.channels), randF32(r, c.channels)
		y := make([]float32, n)
		const sentinel = 12345
		for i := range y {
			y[i] = sentinel
		}
		k.AffineRows(x, y, c.channels, c.rowLen, c.stride, scale, shift, c.relu)
		for i := range y {
			ch, j := i/c.stride, i%c.stride
			if j >= c.rowLen {
				if y[i] != sentinel {
					t.Fatalf("%+v: element %d between rows was written", c, i)
				}
				continue
			}
			want := float64(x[i])*float64(scale[ch]) + float64(shift[ch])
			if c.relu {
				want = max(want, 0)
			}
			if !closeTo(float64(y[i]), want, 1) {
				t.Fatalf("%+v: y[%d] = %g, want %g", c, i, y[i], want)
			}
		}
	}
}

func checkReluBackward(t *testing.T, k device.TrainingKernels) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 100, 10000} {
		for _, acc := range []bool{false, true} {
			y, dy, dx := randF32(r, n), randF32(r, n), randF32(r, n)
			for i := range y {
				y[i] = max(y[i], 0)
			}
			y[0] = 0 // the kink: no gradient
			old := append([]float32(nil), dx...)
			k.ReluBackward(y, dy, dx, acc)
			for i := range dx {
				var want float32
				if y[i] > 0 {
					want = dy[i]
				}
				if acc {
					want += old[i]
				}
				if dx[i] != want {
					t.Fatalf("n %d acc %v: dx[%d] = %g, want %g", n, acc, i, dx[i], want)
				}
			}
		}
	}
}

func checkBatchNormBackward(t *testing.T, k device.TrainingKernels) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		channels, rowLen, stride int
		relu, train, acc         bool
	}{{2, 10, 10, true, true, false}, {3, 50, 53, false, true, true}, {4, 30, 30, true, false, false}} {
		n := (c.channels-1)*c.stride + c.rowLen
		x, dy := randF32(r, n), randF32(r, n)
		g := device.BNGradient{Channels: c.channels, RowLen: c.rowLen, RowStride: c.stride,
			Scale: make([]float32, c.channels), Shift: make([]float32, c.channels),
			Mean: make([]float64, c.channels), InvStd: make([]float64, c.channels),
			ReLU: c.relu, Train: c.train, DGamma: make([]float64, c.channels), DBeta: make([]float64, c.channels), AccumulateDX: c.acc}
		for ch := 0; ch < c.channels; ch++ {
			g.Mean[ch] = r.Float64()*0.2 - 0.1
			g.InvStd[ch] = 1 / math.Sqrt(0.3+r.Float64())
			gamma := r.Float64() + 0.5
			g.Scale[ch] = float32(gamma * g.InvStd[ch])
			g.Shift[ch] = float32(r.Float64()*0.4 - 0.2 - g.Mean[ch]*float64(g.Scale[ch]))
		}
		dx := randF32(r, n)
		old := append([]float32(nil), dx...)
		k.BatchNormBackward(g, x, dy, dx)
		m := float64(c.rowLen)
		for ch := 0; ch < c.channels; ch++ {
			row := ch * c.stride
			dz := make([]float64, c.rowLen)
			var dbeta, dgamma, mag float64
			for i := range dz {
				z := float64(x[row+i])*float64(g.Scale[ch]) + float64(g.Shift[ch])
				if !c.relu || z > 0 {
					dz[i] = float64(dy[row+i])
				}
				xhat := (float64(x[row+i]) - g.Mean[ch]) * g.InvStd[ch]
				dbeta += dz[i]
				dgamma += dz[i] * xhat
				mag += math.Abs(dz[i]) * (1 + math.Abs(xhat))
			}
			if !closeTo(g.DBeta[ch], dbeta, mag) || !closeTo(g.DGamma[ch], dgamma, mag) {
				t.Errorf("%+v channel %d: dbeta %g dgamma %g, want %g %g", c, ch, g.DBeta[ch], g.DGamma[ch], dbeta, dgamma)
			}
			a := float64(g.Scale[ch])
			for i := range dz {
				want := a * dz[i]
				if c.train {
					xhat := (float64(x[row+i]) - g.Mean[ch]) * g.InvStd[ch]
					want = a * (dz[i] - dbeta/m - xhat*dgamma/m)
				}
				if c.acc {
					want += float64(old[row+i])
				}
				if !closeTo(float64(dx[row+i]), want, 1+mag/m) {
					t.Fatalf("%+v channel %d: dx[%d] = %g, want %g", c, ch, i, dx[row+i], want)
				}
			}
		}
	}
}

// convCase is a convolution to check, with or without a prologue and a bias.
type convCase struct {
	spec           device.ConvolutionSpec
	prologue, bias bool
}

func (c convCase) String() string {
	s := c.spec
	return fmt.Sprintf("N%d Cin%d %dx%d Cout%d k%dx%d s%d,%d d%d,%d pad %d,%d,%d,%d pre=%v bias=%v",
		s.N, s.Cin, s.H, s.W, s.Cout, s.KH, s.KW, s.StrideH, s.StrideW, s.DilationH, s.DilationW, s.PadT, s.PadL, s.PadB, s.PadR, c.prologue, c.bias)
}

func checkConvolutions(t *testing.T, k device.TrainingKernels) {
	ws := k.NewConvWorkspace() // shared by all cases, as the trainer shares one
	var packed device.PackedGrad
	for _, c := range []convCase{
		{spec: device.ConvolutionSpec{N: 2, Cin: 3, H: 5, W: 5, Cout: 4, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}, prologue: true},
		{spec: device.ConvolutionSpec{N: 2, Cin: 3, H: 6, W: 5, Cout: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1,
			PadT: 1, PadL: 1, PadB: 1, PadR: 1, XStride: 2*6*5 + 3, YStride: 2*6*5 + 5}, prologue: true, bias: true},
		{spec: device.ConvolutionSpec{N: 3, Cin: 2, H: 7, W: 7, Cout: 3, KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1,
			PadT: 1, PadR: 1}, bias: true},
		{spec: device.ConvolutionSpec{N: 1, Cin: 2, H: 8, W: 8, Cout: 2, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 2, DilationW: 2,
			PadT: 2, PadL: 2, PadB: 2, PadR: 2}},
		{spec: device.ConvolutionSpec{N: 4, Cin: 16, H: 9, W: 9, Cout: 8, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1,
			PadT: 1, PadL: 1, PadB: 1, PadR: 1}, prologue: true},
	} {
		t.Run(c.String(), func(t *testing.T) { packed = checkConvolution(t, k, c, ws, packed) })
	}
}

// convRef computes the convolution c with plain loops in float64, on the dense-or-strided
// channel-major layout of device.ConvolutionSpec.
type convRef struct {
	s              device.ConvolutionSpec
	oh, ow, xs, ys int
	pre            device.Prologue
}

func newConvRef(s device.ConvolutionSpec, pre device.Prologue) *convRef {
	c := &convRef{s: s, pre: pre}
	c.oh = (s.H+s.PadT+s.PadB-s.DilationH*(s.KH-1)-1)/s.StrideH + 1
	c.ow = (s.W+s.PadL+s.PadR-s.DilationW*(s.KW-1)-1)/s.StrideW + 1
	c.xs, c.ys = s.XStride, s.YStride
	if c.xs == 0 {
		c.xs = s.N * s.H * s.W
	}
	if c.ys == 0 {
		c.ys = s.N * c.oh * c.ow
	}
	return c
}

func (c *convRef) xLen() int { return (c.s.Cin-1)*c.xs + c.s.N*c.s.H*c.s.W }
func (c *convRef) yLen() int { return (c.s.Cout-1)*c.ys + c.s.N*c.oh*c.ow }

// each calls fn for every product term: input element xi (index into x), output element yi,
// weight wi.
func (c *convRef) each(fn func(xi, yi, wi, ch int)) {
	s := c.s
	for m := 0; m < s.Cout; m++ {
		for n := 0; n < s.N; n++ {
			for oy := 0; oy < c.oh; oy++ {
				for ox := 0; ox < c.ow; ox++ {
					yi := m*c.ys + (n*c.oh+oy)*c.ow + ox
					for ch := 0; ch < s.Cin; ch++ {
						for kh := 0; kh < s.KH; kh++ {
							iy := oy*s.StrideH + kh*s.DilationH - s.PadT
							if iy < 0 || iy >= s.H {
								continue
							}
							for kw := 0; kw < s.KW; kw++ {
								ix := ox*s.StrideW + kw*s.DilationW - s.PadL
								if ix < 0 || ix >= s.W {
									continue
								}
								fn(ch*c.xs+(n*s.H+iy)*s.W+ix, yi, ((m*s.Cin+ch)*s.KH+kh)*s.KW+kw, ch)
							}
						}
					}
				}
			}
		}
	}
}

// p returns pre(x) of channel ch.
func (c *convRef) p(x float32, ch int) float64 {
	v := float64(x)
	if c.pre.Scale != nil {
		v = float64(x*c.pre.Scale[ch] + c.pre.Shift[ch])
	}
	if c.pre.ReLU {
		v = max(v, 0)
	}
	return v
}

func checkConvolution(t *testing.T, k device.TrainingKernels, c convCase, ws device.ConvWorkspace, reuse device.PackedGrad) device.PackedGrad {
	r := rand.New(rand.NewPCG(9, uint64(c.spec.Cin*100+c.spec.KH)))
	s := c.spec
	var pre device.Prologue
	if c.prologue {
		pre = device.Prologue{Scale: randF32(r, s.Cin), Shift: randF32(r, s.Cin), ReLU: true}
	}
	ref := newConvRef(s, pre)
	conv, err := k.NewConvolution(s, ws)
	if err != nil {
		t.Fatal(err)
	}
	if oh, ow := conv.OutSize(); oh != ref.oh || ow != ref.ow {
		t.Fatalf("output %dx%d, want %dx%d", oh, ow, ref.oh, ref.ow)
	}
	if got := conv.Spec(); got.Cin != s.Cin || got.Cout != s.Cout || got.KH != s.KH || got.N != s.N {
		t.Fatalf("Spec() = %+v, want %+v", got, s)
	}
	scratch := make([]float32, conv.ScratchSize(scratchThreads))
	x := randF32(r, ref.xLen())
	w := randF32(r, s.Cout*s.Cin*s.KH*s.KW)
	var bias []float32
	if c.bias {
		bias = randF32(r, s.Cout)
	}

	// Forward.
	y := make([]float32, ref.yLen())
	if err := conv.Forward(k, x, pre, w, bias, y, false, scratch); err != nil {
		t.Fatal(err)
	}
	want, mag := make([]float64, len(y)), make([]float64, len(y))
	ref.each(func(xi, yi, wi, ch int) {
		v := ref.p(x[xi], ch) * float64(w[wi])
		want[yi] += v
		mag[yi] += math.Abs(v)
	})
	forOutputs(ref, func(m, yi int) {
		if bias != nil {
			want[yi] += float64(bias[m])
		}
		if !closeTo(float64(y[yi]), want[yi], mag[yi]+1) {
			t.Fatalf("forward: y[%d] = %g, want %g", yi, y[yi], want[yi])
		}
	})

	// Input gradient, and by channel ranges where the device splits it.
	dy := randF32(r, ref.yLen())
	dx := make([]float32, ref.xLen())
	if err := conv.InputGrad(k, dy, w, dx, false, scratch); err != nil {
		t.Fatal(err)
	}
	wantX, magX := make([]float64, len(dx)), make([]float64, len(dx))
	ref.each(func(xi, yi, wi, _ int) {
		v := float64(w[wi]) * float64(dy[yi])
		wantX[xi] += v
		magX[xi] += math.Abs(v)
	})
	forInputs(ref, func(_, xi int) {
		if !closeTo(float64(dx[xi]), wantX[xi], magX[xi]) {
			t.Fatalf("input gradient: dx[%d] = %g, want %g", xi, dx[xi], wantX[xi])
		}
	})
	if conv.SplitsInputGrad() && s.Cin > 1 {
		part := make([]float32, (s.Cin-2)*ref.xs+s.N*s.H*s.W)
		if err := conv.InputGradChannels(k, dy, w, part, 1, s.Cin, false, scratch); err != nil {
			t.Fatal(err)
		}
		forInputs(ref, func(ch, xi int) {
			if ch >= 1 && part[xi-ref.xs] != dx[xi] {
				t.Fatalf("input gradient of channels [1, %d): element %d is %g, InputGrad's %g", s.Cin, xi, part[xi-ref.xs], dx[xi])
			}
		})
	}

	// Weight gradient, packing dy itself and from PackGradInto (reusing another case's memory):
	// the same numbers, accumulated onto dw.
	dw0 := randF32(r, len(w))
	wantW, magW := make([]float64, len(w)), make([]float64, len(w))
	ref.each(func(xi, yi, wi, ch int) {
		v := float64(dy[yi]) * ref.p(x[xi], ch)
		wantW[wi] += v
		magW[wi] += math.Abs(v)
	})
	stage := make([]float32, conv.StagingSize())
	packed, err := conv.PackGradInto(reuse, dy)
	if err != nil {
		t.Fatal(err)
	}
	var first []float32
	for _, ga := range []device.PackedGrad{nil, packed} {
		dw := append([]float32(nil), dw0...)
		if err := conv.WeightGrad(k, x, pre, dy, ga, dw, true, stage, scratch); err != nil {
			t.Fatal(err)
		}
		for i := range dw {
			if want := wantW[i] + float64(dw0[i]); !closeTo(float64(dw[i]), want, magW[i]+1) {
				t.Fatalf("weight gradient (packed %v): dw[%d] = %g, want %g", ga != nil, i, dw[i], want)
			}
			if first != nil && dw[i] != first[i] {
				t.Fatalf("weight gradient: dw[%d] = %g from a packed gradient, %g packing itself", i, dw[i], first[i])
			}
		}
		first = dw
	}
	return packed
}

// forOutputs calls fn for each output element (not the gaps between channel rows).
func forOutputs(c *convRef, fn func(m, yi int)) {
	for m := 0; m < c.s.Cout; m++ {
		for i := 0; i < c.s.N*c.oh*c.ow; i++ {
			fn(m, m*c.ys+i)
		}
	}
}

// forInputs calls fn for each input element (not the gaps between channel rows).
func forInputs(c *convRef, fn func(ch, xi int)) {
	for ch := 0; ch < c.s.Cin; ch++ {
		for i := 0; i < c.s.N*c.s.H*c.s.W; i++ {
			fn(ch, ch*c.xs+i)
		}
	}
}

func checkPools(t *testing.T, k device.TrainingKernels) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range []device.PoolSpec{
		{KH: 2, KW: 2, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1},
		{KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Max: true},
		{KH: 3, KW: 2, StrideH: 1, StrideW: 2, DilationH: 1, DilationW: 1, PadT: 1, PadB: 1, PadR: 1},
		{KH: 3, KW: 3, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, CountIncludePad: true},
	} {
		const n, ch, h, wd = 3, 2, 7, 8
		s.OutH = (h+s.PadT+s.PadB-s.DilationH*(s.KH-1)-1)/s.StrideH + 1
		s.OutW = (wd+s.PadL+s.PadR-s.DilationW*(s.KW-1)-1)/s.StrideW + 1
		p, err := k.NewPool(s)
		if err != nil {
			t.Fatal(err)
		}
		in := device.Image{Data: randF32(r, (n-1)*(ch*h*wd+5)+ch*h*wd), N: n, C: ch, H: h, W: wd, BatchStride: ch*h*wd + 5}
		out := device.Image{Data: make([]float32, n*ch*s.OutH*s.OutW), N: n, C: ch, H: s.OutH, W: s.OutW, BatchStride: ch * s.OutH * s.OutW}
		if err := p.Forward(k, in, out); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < n; b++ {
			for c := 0; c < ch; c++ {
				plane := in.Data[b*in.BatchStride+c*h*wd:]
				for oy := 0; oy < s.OutH; oy++ {
					for ox := 0; ox < s.OutW; ox++ {
						best, sum, inside, padded := math.Inf(-1), 0.0, 0, 0
						for kh := 0; kh < s.KH; kh++ {
							for kw := 0; kw < s.KW; kw++ {
								iy, ix := oy*s.StrideH+kh*s.DilationH-s.PadT, ox*s.StrideW+kw*s.DilationW-s.PadL
								if iy >= -s.PadT && iy < h+s.PadB && ix >= -s.PadL && ix < wd+s.PadR {
									padded++
								}
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								v := float64(plane[iy*wd+ix])
								best, sum = max(best, v), sum+v
								inside++
							}
						}
						want := best
						if !s.Max {
							want = sum / float64(inside)
							if s.CountIncludePad {
								want = sum / float64(padded)
							}
						}
						got := float64(out.Data[b*out.BatchStride+(c*s.OutH+oy)*s.OutW+ox])
						if !closeTo(got, want, float64(s.KH*s.KW)) {
							t.Fatalf("%+v: item %d channel %d output (%d, %d) = %g, want %g", s, b, c, oy, ox, got, want)
						}
					}
				}
			}
		}
	}
}

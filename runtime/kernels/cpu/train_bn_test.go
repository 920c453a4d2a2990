package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/train/refgrad"
)

// TestBatchNormBackward checks BatchNormBackward, at every level this machine has, against the
// float64 reference gradients, in training and inference, with and without ReLU and
// accumulation, on rows with gaps between them.
func TestBatchNormBackward(t *testing.T) {
	const eps = 1e-5
	levels := testLevels(t)
	for _, tc := range []struct {
		n, c, inner     int
		relu, train, ac bool
		gap             int
	}{
		{4, 5, 9, true, true, false, 0},
		{4, 5, 9, true, true, true, 7},
		{3, 6, 37, true, true, true, 0},
		{2, 3, 16, false, true, false, 0},
		{5, 4, 11, true, false, true, 0},
		{8, 2, 1, false, false, false, 3},
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 9))
			N, C, S := tc.n, tc.c, tc.inner
			x, dy := randFloats(r, N*C*S), randFloats(r, N*C*S)
			gamma, beta := randFloats(r, C), randFloats(r, C)
			xt := f64Tensor(tensor.Shape{N, C, S}, x)
			var mean, variance []float64
			if tc.train {
				mean, variance = refgrad.BatchStats(xt)
			} else {
				mean, variance = make([]float64, C), make([]float64, C)
				for c := range mean {
					mean[c], variance[c] = r.NormFloat64()*0.1, 0.5+r.Float64()
				}
			}
			stride := N*S + tc.gap
			g := &BNGrad{Channels: C, RowLen: N * S, RowStride: stride, Scale: make([]float32, C), Shift: make([]float32, C), Mean: mean,
				InvStd: make([]float64, C), ReLU: tc.relu, Train: tc.train, DGamma: make([]float64, C), DBeta: make([]float64, C), AccumulateDX: tc.ac}
			for c := 0; c < C; c++ {
				g.InvStd[c] = 1 / math.Sqrt(variance[c]+eps)
				g.Scale[c] = float32(float64(gamma[c]) * g.InvStd[c])
				g.Shift[c] = float32(float64(beta[c]) - mean[c]*float64(g.Scale[c]))
			}
			xc := toCMs(x, N, C, S, stride)
			// The gradient reaching the BN output: dy masked by the ReLU on the forward result.
			dz := append([]float32(nil), dy...)
			if tc.relu {
				for i := range dz {
					c := i / S % C
					if x[i]*g.Scale[c]+g.Shift[c] <= 0 {
						dz[i] = 0
					}
				}
			}
			dzt := f64Tensor(tensor.Shape{N, C, S}, dz)
			var dxWant, dgWant, dbWant *tensor.Tensor
			var err error
			gt := f64Tensor(tensor.Shape{C}, gamma)
			if tc.train {
				dxWant, dgWant, dbWant, err = refgrad.BatchNormTrain(xt, gt, eps, dzt)
			} else {
				dxWant, dgWant, dbWant, err = refgrad.BatchNormEval(xt, gt, tensor.FromSlice(tensor.Shape{C}, mean), tensor.FromSlice(tensor.Shape{C}, variance), eps, dzt)
			}
			if err != nil {
				t.Fatal(err)
			}
			workers := NewWorkers(2)
			defer workers.Close()
			want := dxWant.Float64s()
			if tc.ac {
				for i := range want {
					want[i] += 0.5
				}
			}
			for _, level := range levels {
				code := tableFor(level)
				dx := make([]float32, (C-1)*stride+N*S)
				if tc.ac {
					for i := range dx {
						dx[i] = 0.5
					}
				}
				code.batchNormBackward(workers, g, xc, toCMs(dy, N, C, S, stride), dx)
				closeF32(t, level.String()+" dx", fromCMs(dx, N, C, S, stride), want, 1e-5, 1e-4)
				if !tc.ac {
					// In place (dx is dy, as the trainer runs it on a gradient nothing else
					// needs): the same values bit for bit.
					inPlace := toCMs(dy, N, C, S, stride)
					g2 := *g
					g2.DGamma, g2.DBeta = make([]float64, C), make([]float64, C)
					code.batchNormBackward(workers, &g2, xc, inPlace, inPlace)
					for c := 0; c < C; c++ {
						for i := c * stride; i < c*stride+N*S; i++ {
							if math.Float32bits(inPlace[i]) != math.Float32bits(dx[i]) {
								t.Fatalf("%s in place: dx[%d] = %g, want %g", level, i, inPlace[i], dx[i])
							}
						}
					}
				}
				for c := 0; c < C; c++ {
					if math.Abs(g.DGamma[c]-dgWant.Float64s()[c]) > 1e-5 || math.Abs(g.DBeta[c]-dbWant.Float64s()[c]) > 1e-5 {
						t.Errorf("%s channel %d: dgamma %g dbeta %g, want %g %g", level, c, g.DGamma[c], g.DBeta[c], dgWant.Float64s()[c], dbWant.Float64s()[c])
					}
				}
			}
		})
	}
}

// TestChannelKernels checks ChannelStats, AffineRows and ReluBackward at every level this
// machine has.
func TestChannelKernels(t *testing.T) {
	for _, level := range testLevels(t) {
		t.Run(level.String(), func(t *testing.T) { channelKernels(t, tableFor(level)) })
	}
}

func channelKernels(t *testing.T, code *kernels) {
	r := rand.New(rand.NewPCG(5, 5))
	const C, L = 7, 45
	x := randFloats(r, C*L)
	workers := NewWorkers(2)
	defer workers.Close()
	mean, variance := make([]float64, C), make([]float64, C)
	code.channelStats(workers, x, C, L, L, mean, variance)
	wm, wv := refgrad.BatchStats(f64Tensor(tensor.Shape{1, C, L}, x))
	for c := range mean {
		if math.Abs(mean[c]-wm[c]) > 1e-12 || math.Abs(variance[c]-wv[c]) > 1e-12 {
			t.Errorf("channel %d: stats %g %g, want %g %g", c, mean[c], variance[c], wm[c], wv[c])
		}
	}
	scale, shift := randFloats(r, C), randFloats(r, C)
	y := make([]float32, C*L)
	code.affineRows(workers, x, y, C, L, L, scale, shift, true)
	dy, dx := randFloats(r, C*L), make([]float32, C*L)
	ReluBackward(workers, y, dy, dx, false)
	for i := range y {
		v := max(affineRef(code, x[i], scale[i/L], shift[i/L]), 0)
		if !sameUlp(y[i], v) {
			t.Fatalf("AffineRows element %d = %g, want %g", i, y[i], v)
		}
		want := dy[i]
		if y[i] <= 0 {
			want = 0
		}
		if dx[i] != want {
			t.Fatalf("ReluBackward element %d = %g, want %g", i, dx[i], want)
		}
	}
	if reluGrad(float32(math.Copysign(0, -1)), 1) != 0 || reluGrad(0, 1) != 0 || reluGrad(1e-40, 2) != 2 || reluGrad(-3, 2) != 0 {
		t.Error("reluGrad at the edges")
	}
}

// TestStage checks stage, at every level this machine has, for 1 to 8 channels and pixel counts
// around the vector width: the values (to the ulp, see affineRef) and that lanes past cnt are
// not written.
func TestStage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	levels := testLevels(t)
	for _, n := range []int{1, 7, 8, 9, 24, 33, 70} {
		const srcStride, dstStride = 80, 11
		src := randFloats(r, 7*srcStride+n)
		var sc, sh [8]float32
		for i := range sc {
			sc[i], sh[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		for _, level := range levels {
			code := tableFor(level)
			for cnt := 1; cnt <= 8; cnt++ {
				for _, relu := range []bool{false, true} {
					got := make([]float32, (n-1)*dstStride+8)
					want := make([]float32, len(got))
					for i := range got {
						got[i], want[i] = 777, 777
					}
					code.stage(got, dstStride, src, srcStride, cnt, n, sc, sh, relu)
					for p := 0; p < n; p++ {
						for c := 0; c < cnt; c++ {
							v := affineRef(code, src[c*srcStride+p], sc[c], sh[c])
							if relu {
								v = max(v, 0)
							}
							want[p*dstStride+c] = v
						}
					}
					for i := range got {
						if !sameUlp(got[i], want[i]) {
							t.Fatalf("%s n=%d cnt=%d relu=%v: element %d = %g, want %g", level, n, cnt, relu, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// affineRef is x*a+b as code's kernels compute it: with one rounding (FMA) in the assembly
// (up to the rare double rounding of this float64 emulation), with two in the Go code.
func affineRef(code *kernels, x, a, b float32) float32 {
	if code.level != isa.Generic {
		return float32(math.FMA(float64(x), float64(a), float64(b)))
	}
	return x*a + b
}

// sameUlp reports whether a and b differ by at most one unit in the last place: the kernels
// round x*a+b once where the CPU has FMA and twice elsewhere.
func sameUlp(a, b float32) bool {
	if a == b {
		return true
	}
	return math.Abs(float64(a)-float64(b)) <= math.Abs(float64(math.Nextafter32(b, float32(math.Inf(1)))-b))
}

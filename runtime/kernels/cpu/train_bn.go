package cpu

import (
	"math"
)

// This file holds the per-channel kernels of training-mode BatchNormalization and ReLU on
// channel-major data (see train_conv.go): channel c of a batch is the contiguous row
// x[c*rowLen : (c+1)*rowLen]. Rows are independent, so each kernel splits its channels over
// Workers; every row is reduced by one goroutine in a fixed order, so results do not depend on the
// thread count.

// rowTask runs fn over channel ranges.
type rowTask struct {
	fn func(lo, hi int)
}

// Do implements Task.
func (t *rowTask) Do(lo, hi int) { t.fn(lo, hi) }

// forRows calls fn over [0, channels) split on workers, with at least enough rows per chunk to cover
// about 16K elements.
func forRows(workers *Workers, channels, rowLen int, fn func(lo, hi int)) {
	grain := max(1, 16384/max(rowLen, 1))
	var wg Group
	parallel(workers, &rowTask{fn: fn}, channels, grain, &wg)
}

// ChannelStats computes, for each of channels rows of rowLen floats (stride floats apart), the
// mean and the biased variance in float64, in two passes:
//
//	mean[c] = sum_i x[c,i] / rowLen,  variance[c] = sum_i (x[c,i] - mean[c])^2 / rowLen
func ChannelStats(workers *Workers, x []float32, channels, rowLen, stride int, mean, variance []float64) {
	active.channelStats(workers, x, channels, rowLen, stride, mean, variance)
}

// channelStats is ChannelStats with k's row kernel.
func (k *kernels) channelStats(workers *Workers, x []float32, channels, rowLen, stride int, mean, variance []float64) {
	forRows(workers, channels, rowLen, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			mean[c], variance[c] = k.rowStats(x[c*stride : c*stride+rowLen])
		}
	})
}

// rowStatsGo returns the mean and biased variance of row with four float64 accumulators.
// rowSumGo returns the sum of row in float64, in four interleaved partial sums (the first pass
// of rowStatsGo).
func rowSumGo(row []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(row); i += 4 {
		s0 += float64(row[i])
		s1 += float64(row[i+1])
		s2 += float64(row[i+2])
		s3 += float64(row[i+3])
	}
	for ; i < len(row); i++ {
		s0 += float64(row[i])
	}
	return s0 + s1 + s2 + s3
}

func rowStatsGo(row []float32) (mean, variance float64) {
	n := len(row)
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += float64(row[i])
		s1 += float64(row[i+1])
		s2 += float64(row[i+2])
		s3 += float64(row[i+3])
	}
	for ; i < n; i++ {
		s0 += float64(row[i])
	}
	mean = (s0 + s1 + s2 + s3) / float64(n)
	s0, s1, s2, s3 = 0, 0, 0, 0
	i = 0
	for ; i+4 <= n; i += 4 {
		d0, d1 := float64(row[i])-mean, float64(row[i+1])-mean
		d2, d3 := float64(row[i+2])-mean, float64(row[i+3])-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < n; i++ {
		d := float64(row[i]) - mean
		s0 += d * d
	}
	return mean, (s0 + s1 + s2 + s3) / float64(n)
}

// AffineRows writes y[c,i] = act(x[c,i]*scale[c] + shift[c]) with act = max(., 0) when relu: the
// normalization of BatchNormalization (scale = gamma/sqrt(var+eps), shift = beta - mean*scale),
// optionally fused with the ReLU that follows, computed as the GEMM packer computes a prologue
// (one rounding where the CPU has FMA). Rows are stride floats apart in both x and y, which may
// be the same slice.
func AffineRows(workers *Workers, x, y []float32, channels, rowLen, stride int, scale, shift []float32, relu bool) {
	active.affineRows(workers, x, y, channels, rowLen, stride, scale, shift, relu)
}

// affineRows is AffineRows with k's row kernel.
func (k *kernels) affineRows(workers *Workers, x, y []float32, channels, rowLen, stride int, scale, shift []float32, relu bool) {
	forRows(workers, channels, rowLen, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			k.affineRow(x[c*stride:c*stride+rowLen], y[c*stride:c*stride+rowLen], scale[c], shift[c], relu)
		}
	})
}

// BNGrad holds the inputs of BatchNormBackward for rows of channel-major data.
//
// The forward pass computed z = x*Scale[c] + Shift[c] and y = max(z, 0) when ReLU, else y = z,
// normalizing with Mean and InvStd (the batch statistics in training, the running ones
// otherwise), so that Scale = gamma*InvStd. With dz = dy where z > 0 (or everywhere without
// ReLU), xhat = (x - Mean)*InvStd and m = rowLen,
//
//	dbeta[c]  = sum dz
//	dgamma[c] = sum dz*xhat
//	dx        = Scale*(dz - dbeta/m - xhat*dgamma/m)    (Train: the statistics depend on x)
//	dx        = Scale*dz                                (otherwise)
type BNGrad struct {
	Channels, RowLen     int
	RowStride            int       // distance between rows of x, dy and dx (0: RowLen)
	Scale, Shift         []float32 // the forward affine map, per channel
	Mean, InvStd         []float64 // the statistics the forward pass normalized with
	ReLU, Train          bool
	DGamma, DBeta        []float64 // outputs: per-channel sums (overwritten)
	AccumulateDX, SkipDX bool      // add into dx instead of overwriting it; or do not compute dx
}

// BatchNormBackward computes the gradients described by BNGrad from x and dy into dx and
// g.DGamma, g.DBeta. The sums use sum dz*xhat = (sum dz*x - Mean*sum dz)*InvStd, with float32
// products summed exactly in float64. dx may be dy itself (in place) when not accumulating: a
// channel's sums are complete before its dx is written, and each element of dy is read before
// the same element of dx is written.
func BatchNormBackward(workers *Workers, g *BNGrad, x, dy, dx []float32) {
	active.batchNormBackward(workers, g, x, dy, dx)
}

// batchNormBackward is BatchNormBackward with k's row kernels.
func (k *kernels) batchNormBackward(workers *Workers, g *BNGrad, x, dy, dx []float32) {
	L := g.RowLen
	S := g.RowStride
	if S == 0 {
		S = L
	}
	relu := g.ReLU
	forRows(workers, g.Channels, L, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			xs, dys := x[c*S:c*S+L], dy[c*S:c*S+L]
			a, b := g.Scale[c], g.Shift[c]
			mean, inv := g.Mean[c], g.InvStd[c]
			sum1, sxd := k.bnSums(xs, dys, a, b, relu)
			sum2 := (sxd - mean*sum1) * inv // sum dz*xhat
			g.DBeta[c], g.DGamma[c] = sum1, sum2
			if g.SkipDX {
				continue
			}
			// dx = a*dz - a*k1 - a*k2*inv*(x - mean), k1 = sum1/m, k2 = sum2/m, computed as
			// a*dz + cx*(x - m32) + c0 with the mean rounded to float32 (m32) and the rounding
			// folded into c0: x - m32 is exact where x is near the mean, so a channel whose
			// mean is large against its deviation loses no precision to cancellation.
			var cx, c0 float32
			m32 := float32(mean)
			if g.Train {
				m := float64(L)
				k1, k2 := sum1/m, sum2/m
				af := float64(a)
				cxd := -af * k2 * inv
				cx = float32(cxd)
				c0 = float32(-af*k1 + cxd*(float64(m32)-mean))
			}
			k.bnDX(xs, dys, dx[c*S:c*S+L], a, b, cx, c0, m32, relu, g.AccumulateDX)
		}
	})
}

// ReluBackward computes dx (+)= dy where y > 0, else 0 (add when acc).
func ReluBackward(workers *Workers, y, dy, dx []float32, acc bool) {
	n := len(y)
	forRows(workers, (n+4095)/4096, 4096, func(lo, hi int) {
		hi = min(n, hi*4096)
		for i := lo * 4096; i < hi; i++ {
			d := reluGrad(y[i], dy[i])
			if acc {
				d += dx[i]
			}
			dx[i] = d
		}
	})
}

package train

import (
	"fmt"
	"math"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// bnUnit is a BatchNormalization, fused with the ReLU that reads it when that ReLU is its only
// reader. In a training step it normalizes with the batch mean and biased variance and moves the
// running statistics (PyTorch's rule, ONNX's momentum m):
//
//	running_mean = m*running_mean + (1-m)*mean
//	running_var  = m*running_var  + (1-m)*var * n/(n-1)     (unbiased, n = N*spatial)
//
// The new running statistics are committed when the step completes. With FreezeBNStats, and in
// evaluation, it normalizes with the running statistics instead. Either way the forward pass is
// the affine map y = x*scale[c] + shift[c] (then ReLU), whose coefficients convolutions reading a
// virtual output use as their prologue.
type bnUnit struct {
	unitBase
	x, y                     int
	gamma, beta, rmean, rvar int
	relu                     bool
	eps, mom                 float64
	frozen                   bool
	channels, rowLen, stride int  // channel rows of rowLen floats, stride apart
	rowMajor                 bool // rank-2 input [N, C]: transposed around the kernels

	// Per forward pass.
	trained        bool // the pass used batch statistics
	scale, shift   []float32
	mean, invstd   []float64
	bmean, bvar    []float64
	newMean        []float32
	newVar         []float32
	pending        bool
	dgamma, dbeta  []float64
	tmpX, tmpY, tD []float32
	// fused: the convolution reading the virtual output runs this unit's backward pass, channel
	// range by channel range (convUnit.backwardFused).
	fused bool
}

func (p *plan) newBN(t *Trainer, base unitBase, op *ops.BatchNormalization, absorbed map[*graph.Node]bool, id func(*graph.Value) (int, error)) (unit, error) {
	n := base.node
	u := &bnUnit{unitBase: base, x: base.in[0], y: base.out[0], gamma: base.in[1], beta: base.in[2], rmean: base.in[3], rvar: base.in[4],
		eps: float64(op.Epsilon), mom: float64(op.Momentum), frozen: t.opts.FreezeBNStats}
	x, err := p.act(u.x, "BatchNormalization input", 2, 8)
	if err != nil {
		return nil, err
	}
	for i, what := range []string{"scale", "B", "input_mean", "input_var"} {
		v := p.vals[base.in[i+1]]
		if v.kind == vAct || v.kind == vInput {
			return nil, fmt.Errorf("%w: BatchNormalization %s %q is computed; training needs an initializer", ops.ErrUnsupportedOp, what, v.name)
		}
		if len(v.shape) != 1 || v.shape[0] != x.c {
			return nil, fmt.Errorf("%w: BatchNormalization %s has shape %v for %d channels", ops.ErrShape, what, v.shape, x.c)
		}
	}
	u.channels, u.rowLen, u.stride = x.c, x.n*x.s, x.cs
	u.rowMajor = !x.cm
	if u.rowMajor {
		u.stride = u.rowLen // the transposed copy is dense
	}
	// Fuse the ReLU that is the only reader of the output.
	if yv := n.Outputs[0]; len(yv.Consumers) == 1 && !p.g.IsOutput(yv) {
		if r := yv.Consumers[0]; r.OpType == "Relu" && ops.NormalizeDomain(r.Domain) == "" && len(r.Inputs) == 1 && len(r.Outputs) == 1 && r.Outputs[0] != nil {
			ry, err := id(r.Outputs[0])
			if err != nil {
				return nil, err
			}
			u.y, u.relu = ry, true
			u.out = []int{ry}
			absorbed[r] = true
		}
	}
	C := u.channels
	u.scale, u.shift = make([]float32, C), make([]float32, C)
	u.mean, u.invstd = make([]float64, C), make([]float64, C)
	u.bmean, u.bvar = make([]float64, C), make([]float64, C)
	u.newMean, u.newVar = make([]float32, C), make([]float32, C)
	u.dgamma, u.dbeta = make([]float64, C), make([]float64, C)
	u.reads = []int{u.x}
	return u, nil
}

// input returns x as channel rows.
func (u *bnUnit) input(r *run) []float32 {
	x := r.data(u.x)
	if !u.rowMajor {
		return x
	}
	u.tmpX = transpose(x, u.rowLen, u.channels, u.tmpX)
	return u.tmpX
}

func (u *bnUnit) forward(r *run) error {
	C, L := u.channels, u.rowLen
	gamma, beta := r.data(u.gamma), r.data(u.beta)
	u.trained = r.train && !u.frozen
	u.pending = false
	x := u.input(r)
	if u.trained {
		if L < 2 {
			return u.errorf(fmt.Errorf("%w: BatchNormalization in training needs more than one value per channel, got %d", ErrInput, L))
		}
		if u.rowMajor {
			r.k.ChannelStats(x, C, L, L, u.bmean, u.bvar)
		} else {
			r.channelStats(u.x, u.bmean, u.bvar)
		}
		copy(u.mean, u.bmean)
		for c := 0; c < C; c++ {
			u.invstd[c] = 1 / math.Sqrt(u.bvar[c]+u.eps)
		}
		if r.updateStats {
			rm, rv := r.data(u.rmean), r.data(u.rvar)
			unbias := float64(L) / float64(L-1)
			for c := 0; c < C; c++ {
				u.newMean[c] = float32(u.mom*float64(rm[c]) + (1-u.mom)*u.bmean[c])
				u.newVar[c] = float32(u.mom*float64(rv[c]) + (1-u.mom)*u.bvar[c]*unbias)
			}
			u.pending = true
		}
	} else {
		rm, rv := r.data(u.rmean), r.data(u.rvar)
		for c := 0; c < C; c++ {
			u.mean[c] = float64(rm[c])
			u.invstd[c] = 1 / math.Sqrt(float64(rv[c])+u.eps)
		}
	}
	for c := 0; c < C; c++ {
		a := float64(gamma[c]) * u.invstd[c]
		u.scale[c] = float32(a)
		u.shift[c] = float32(float64(beta[c]) - u.mean[c]*a)
	}
	if r.p.vals[u.y].virtual {
		return nil
	}
	if !u.rowMajor {
		r.k.AffineRows(x, r.data(u.y), C, L, u.stride, u.scale, u.shift, u.relu)
		return nil
	}
	u.tmpY = growF32(u.tmpY, C*L)
	r.k.AffineRows(x, u.tmpY, C, L, L, u.scale, u.shift, u.relu)
	transpose(u.tmpY, C, L, r.data(u.y))
	return nil
}

// commit writes the running statistics of the last training forward pass.
func (u *bnUnit) commit(r *run) {
	if !u.pending {
		return
	}
	copy(r.data(u.rmean), u.newMean)
	copy(r.data(u.rvar), u.newVar)
	u.pending = false
}

func (u *bnUnit) backward(r *run) error {
	if u.fused {
		return nil
	}
	dy := r.gradOut(u.y)
	if dy == nil {
		return nil
	}
	x := u.input(r)
	if u.rowMajor {
		u.tD = transpose(dy, u.rowLen, u.channels, u.tD)
		dy = u.tD
	}
	g := device.BNGradient{Channels: u.channels, RowLen: u.rowLen, RowStride: u.stride, Scale: u.scale, Shift: u.shift, Mean: u.mean, InvStd: u.invstd,
		ReLU: u.relu, Train: u.trained, DGamma: u.dgamma, DBeta: u.dbeta}
	var dx, full []float32
	acc := false
	if r.p.vals[u.x].needGrad {
		full, acc = r.gradIn(u.x)
		dx, g.AccumulateDX = full, acc
		if u.rowMajor {
			u.tmpY = growF32(u.tmpY, u.channels*u.rowLen)
			dx, g.AccumulateDX = u.tmpY, false
		}
	} else {
		g.SkipDX = true
	}
	restore := r.breakTies(u, 0, u.channels, x)
	r.k.BatchNormBackward(g, x, dy, dx)
	restore()
	if u.rowMajor && full != nil {
		addTransposed(dx, u.channels, u.rowLen, full, acc)
	}
	u.addParamGrads(r)
	return nil
}

// backwardChannels runs the backward pass of channels [c0, c1) of a channel-major input on x, dy
// and dx, which start at channel c0 (dx nil: no input gradient), leaving those channels' sums in
// dgamma and dbeta.
func (u *bnUnit) backwardChannels(r *run, x, dy, dx []float32, acc bool, c0, c1 int) {
	g := device.BNGradient{Channels: c1 - c0, RowLen: u.rowLen, RowStride: u.stride, Scale: u.scale[c0:c1], Shift: u.shift[c0:c1],
		Mean: u.mean[c0:c1], InvStd: u.invstd[c0:c1], ReLU: u.relu, Train: u.trained, DGamma: u.dgamma[c0:c1], DBeta: u.dbeta[c0:c1],
		AccumulateDX: acc, SkipDX: dx == nil}
	restore := r.breakTies(u, c0, c1-c0, x)
	r.k.BatchNormBackward(g, x, dy, dx)
	restore()
}

// addParamGrads adds the per-channel sums of the backward pass to gamma's and beta's gradients.
func (u *bnUnit) addParamGrads(r *run) {
	if r.p.vals[u.gamma].needGrad {
		dg := r.paramGrad(u.gamma)
		for c, v := range u.dgamma {
			dg[c] += float32(v)
		}
	}
	if r.p.vals[u.beta].needGrad {
		db := r.paramGrad(u.beta)
		for c, v := range u.dbeta {
			db[c] += float32(v)
		}
	}
}

// reluUnit is a ReLU that no BatchNormalization absorbed: y = max(x, 0), dx = dy where y > 0.
type reluUnit struct {
	unitBase
	x, y int
}

func (p *plan) newRelu(base unitBase) (unit, error) {
	u := &reluUnit{unitBase: base, x: base.in[0], y: base.out[0]}
	if _, err := p.act(u.x, "Relu input", 0, 8); err != nil {
		return nil, err
	}
	u.reads = []int{u.y}
	return u, nil
}

func (u *reluUnit) forward(r *run) error {
	x, y := r.data(u.x), r.data(u.y)
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
	return nil
}

func (u *reluUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil || !r.p.vals[u.x].needGrad {
		return nil
	}
	dx, acc := r.gradIn(u.x)
	r.k.ReluBackward(r.data(u.y), dy, dx, acc)
	return nil
}

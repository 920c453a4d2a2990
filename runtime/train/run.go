package train

import (
	"github.com/dnx-ml/dnx/runtime/device"
)

// run is the state of one pass over a plan: the arena, which gradient buffers hold data yet,
// and the batch-statistics cache.
type run struct {
	p           *plan
	k           device.TrainingKernels // the kernels of this pass
	arena       []float32
	train       bool // normalize with batch statistics
	updateStats bool // move the running statistics
	gradInit    []bool
	gen         uint32
	stats       map[int]*statCache
	work        *workspace
	// step is the trainer's step count when the pass started (the number of the step a training
	// pass computes): part of the key of Dropout's masks, so a resumed run draws the same ones.
	step int
	// tieBreak is Trainer.tieBreak (tests only; nil otherwise).
	tieBreak tieBreaker
}

// A tieBreaker may move BatchNormalization inputs that sit on the kink of the ReLU that follows:
// given unit u and the input rows of its channels [c0, c0+n) (stride u.stride apart, as the
// backward kernel reads them), it changes some elements and returns the function that restores
// them. Tests use it to resolve ReLU ties as exact arithmetic does: an element whose exact
// pre-activation is within float32 rounding of 0 gets a mask that depends on the rounding of the
// whole forward pass, so two correct float32 implementations (or PyTorch on 1 and 2 threads) can
// differ there, and with them every gradient upstream (see parity_test.go).
type tieBreaker func(u *bnUnit, c0, n int, x []float32) (restore func())

// breakTies calls the tie breaker, if any, before a BatchNormalization-ReLU backward kernel reads
// x (the rows of channels [c0, c0+n)); the caller runs the returned function once the kernel is
// done.
func (r *run) breakTies(u *bnUnit, c0, n int, x []float32) func() {
	if r.tieBreak == nil || !u.relu {
		return func() {}
	}
	return r.tieBreak(u, c0, n, x)
}

// workspace is the trainer's working memory outside the arena that lasts from pass to pass:
// the convolutions' packed weights and tap-major gradients (shared by all of them, as they run
// one at a time) and the packed output gradients that the weight gradients of one layer after
// another reuse. Kept by the Trainer, it is sized by the largest layer once, so a step allocates
// none of it: per-layer buffers made afresh every step would be garbage the collector lets pile
// up to a sizeable fraction of the arena before it runs.
type workspace struct {
	conv  device.ConvWorkspace // made by the first plan's compilation
	gradA []device.PackedGrad
}

// statCache holds per-channel batch statistics of one buffer, valid for the pass numbered gen.
type statCache struct {
	mean, variance []float64
	gen            []uint32
}

// bufData returns buffer b's arena slice.
func (r *run) bufData(b int) []float32 {
	bf := r.p.bufs[b]
	return r.arena[bf.off : bf.off+bf.size]
}

// optBuf returns buffer b's arena slice, or nil when b < 0.
func (r *run) optBuf(b int) []float32 {
	if b < 0 {
		return nil
	}
	return r.bufData(b)
}

// data returns value id's data in its storage layout.
func (r *run) data(id int) []float32 {
	v := r.p.vals[id]
	switch v.kind {
	case vParam, vStat:
		return v.p.data
	case vConst:
		return v.cdata
	}
	b := r.p.bufs[v.buf]
	return r.arena[b.off+v.off : b.off+v.off+v.size]
}

// paramGrad returns the gradient of parameter value id (zeroed at the start of each step; units
// add into it).
func (r *run) paramGrad(id int) []float32 { return r.p.vals[id].p.grad }

// gradOut returns the gradient of value id for reading, or nil when nothing has written it in
// this step (it is zero).
func (r *run) gradOut(id int) []float32 {
	v := r.p.vals[id]
	if !v.needGrad || v.kind != vAct || v.gbuf < 0 || !r.gradInit[v.gbuf] {
		return nil
	}
	b := r.p.bufs[v.gbuf]
	return r.arena[b.off+v.goff : b.off+v.goff+v.size]
}

// gradIn returns the gradient of value id for writing, and whether the writer must add to it
// (acc) or may overwrite it (it must then write every element). Gradient buffers start each
// step unwritten: the first write of a whole buffer overwrites it, the first write of a part
// clears the buffer first; later writes add. This is what lets views share a block's gradient
// buffer.
func (r *run) gradIn(id int) ([]float32, bool) {
	v := r.p.vals[id]
	if v.kind == vParam {
		return v.p.grad, true
	}
	b := r.p.bufs[v.gbuf]
	s := r.arena[b.off+v.goff : b.off+v.goff+v.size]
	if r.gradInit[v.gbuf] {
		return s, true
	}
	r.gradInit[v.gbuf] = true
	if v.goff == 0 && v.size == b.size {
		return s, false
	}
	clear(r.arena[b.off : b.off+b.size])
	return s, true
}

// channelStats returns the batch mean and biased variance of each channel of channel-major value
// id, computing only the channels that no earlier unit of this pass computed in the same buffer.
func (r *run) channelStats(id int, mean, variance []float64) {
	v := r.p.vals[id]
	x := r.data(id)
	L, cs := v.n*v.s, v.cs
	if v.buf < 0 || r.p.bufs[v.buf].chanLen != cs {
		r.k.ChannelStats(x, v.c, L, cs, mean, variance)
		return
	}
	sc := r.stats[v.buf]
	if sc == nil {
		nch := r.p.bufs[v.buf].size / cs
		sc = &statCache{mean: make([]float64, nch), variance: make([]float64, nch), gen: make([]uint32, nch)}
		r.stats[v.buf] = sc
	}
	c0 := v.off / cs
	for c := 0; c < v.c; {
		if sc.gen[c0+c] == r.gen {
			c++
			continue
		}
		e := c
		for e < v.c && sc.gen[c0+e] != r.gen {
			e++
		}
		r.k.ChannelStats(x[c*cs:], e-c, L, cs, sc.mean[c0+c:c0+e], sc.variance[c0+c:c0+e])
		for i := c; i < e; i++ {
			sc.gen[c0+i] = r.gen
		}
		c = e
	}
	copy(mean, sc.mean[c0:c0+v.c])
	copy(variance, sc.variance[c0:c0+v.c])
}

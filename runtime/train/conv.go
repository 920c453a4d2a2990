package train

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// convUnit is a 2-D Conv on channel-major batches (a device.TrainingConv, run once per group: a
// group's channels are a contiguous slice). When its input is the virtual output of a
// BatchNormalization-ReLU, the convolution reads that unit's input through a prologue in the
// forward pass and recomputes it while staging the input for the weight gradient.
type convUnit struct {
	unitBase
	x, w, b, y int
	group      int
	conv       device.TrainingConv
	pre        *bnUnit // provider of the prologue when x is virtual
	stage      int     // transient buffer for the weight gradient, -1 when not needed
	// prepack: the backward pass packs the whole output gradient for the weight gradient on
	// another goroutine while the input gradient runs (see setPrepack); otherwise the weight
	// gradient packs it chunk by chunk.
	prepack bool
	// fused: the backward pass also runs that of pre, the BatchNormalization-ReLU whose virtual
	// output x is: it computes the gradient of x chunk channels at a time into the transient
	// buffer dz and passes each range on to pre, so the whole gradient of x (as large as the
	// dense block's concatenation at its end) is never stored; with inPlace, it computes it into
	// the gradient of pre's input, and pre runs in place there (see plan.markFused, sizeChunks).
	fused, inPlace bool
	dz             int
	chunk          int
}

// prepackShare bounds the memory of prepacking: a convolution prepacks its output gradient only
// when the packed copy is at most 1/prepackShare of the arena. The copy lives outside the arena
// (one, reused from layer to layer, sized by the largest prepacking layer), and overlapping the
// serial packing with the parallel input gradient is worth a few percent of a step only summed
// over the many layers of a network, while a layer or two with much larger gradients than the
// rest (DenseNet-BC's first transition: 2.3 times its bottlenecks') would set that size alone.
// At 1/16, DenseNet-BC-100 at batch 64 prepacks every layer but that transition.
const prepackShare = 16

// setPrepack decides prepack once the arena's size is known.
func (u *convUnit) setPrepack(p *plan) {
	s := u.conv.Spec()
	oh, ow := u.conv.OutSize()
	u.prepack = u.bwd && p.vals[u.w].needGrad && p.vals[u.x].needGrad &&
		int64(s.Cout)*int64(s.N*oh*ow)*prepackShare <= int64(p.arena)
}

func (p *plan) newConv(t *Trainer, k device.TrainingKernels, base unitBase, op *ops.Conv) (unit, error) {
	u := &convUnit{unitBase: base, x: base.in[0], w: base.in[1], b: -1, y: base.out[0], group: op.Group, stage: -1, dz: -1}
	if op.HasBias && len(base.in) > 2 {
		u.b = base.in[2]
	}
	x, err := p.act(u.x, "Conv input", 4, 4)
	if err != nil {
		return nil, err
	}
	w := p.vals[u.w]
	if w.kind != vParam && w.kind != vConst {
		return nil, fmt.Errorf("%w: Conv weights %q are computed; training needs them as an initializer", ops.ErrUnsupportedOp, w.name)
	}
	if u.b >= 0 && p.vals[u.b].kind != vParam && p.vals[u.b].kind != vConst {
		return nil, fmt.Errorf("%w: Conv bias %q is computed; training needs it as an initializer", ops.ErrUnsupportedOp, p.vals[u.b].name)
	}
	geo, err := op.ConvShapes(x.shape, w.shape, biasShape(p, u.b), u.b >= 0)
	if err != nil {
		return nil, err
	}
	if len(geo.In) != 2 {
		return nil, fmt.Errorf("%w: only 2-D convolutions can be trained", ops.ErrUnsupportedOp)
	}
	y := p.vals[u.y]
	// One workspace serves every convolution of every plan: they run one at a time.
	if t.ws.conv == nil {
		t.ws.conv = k.NewConvWorkspace()
	}
	u.conv, err = k.NewConvolution(device.ConvolutionSpec{
		N: x.n, Cin: x.c / op.Group, H: geo.In[0], W: geo.In[1], Cout: w.shape[0] / op.Group, KH: geo.Kernel[0], KW: geo.Kernel[1],
		StrideH: geo.Stride[0], StrideW: geo.Stride[1], DilationH: geo.Dilation[0], DilationW: geo.Dilation[1],
		PadT: geo.PadBegin[0], PadL: geo.PadBegin[1], PadB: geo.PadEnd[0], PadR: geo.PadEnd[1],
		XStride: x.cs, YStride: y.cs,
	}, t.ws.conv)
	if err != nil {
		return nil, err
	}
	if oh, ow := u.conv.OutSize(); len(y.shape) != 4 || y.n != x.n || y.c != w.shape[0] || y.shape[2] != oh || y.shape[3] != ow {
		return nil, fmt.Errorf("%w: Conv output %v does not match its geometry", ops.ErrShape, y.shape)
	}
	return u, nil
}

func biasShape(p *plan, b int) []int {
	if b < 0 {
		return nil
	}
	return p.vals[b].shape
}

// finish records the prologue provider and what the backward pass reads, once virtual values
// are known.
func (u *convUnit) finish(p *plan) error {
	if x := p.vals[u.x]; x.virtual {
		u.pre = p.units[x.prod].(*bnUnit)
	}
	if !u.bwd {
		return nil
	}
	if p.vals[u.w].needGrad {
		u.reads = append(u.reads, u.x)
		if n := u.conv.StagingSize(); n > 0 {
			u.stage = p.newBuffer(n, false, true)
			u.bwdBufs = append(u.bwdBufs, u.stage)
		}
	}
	return nil
}

// input returns the data the convolution reads and the prologue of group g (the zero Prologue
// when none).
func (u *convUnit) input(r *run, g int) ([]float32, device.Prologue) {
	cg := r.p.vals[u.x].c / u.group
	xs := r.p.vals[u.x].cs
	if u.pre == nil {
		return r.data(u.x)[g*cg*xs:], device.Prologue{}
	}
	pre := device.Prologue{Scale: u.pre.scale[g*cg : (g+1)*cg], Shift: u.pre.shift[g*cg : (g+1)*cg], ReLU: u.pre.relu}
	return r.data(u.pre.x)[g*cg*xs:], pre
}

func (u *convUnit) forward(r *run) error {
	s := u.conv.Spec()
	w, y := r.data(u.w), r.data(u.y)
	var bias []float32
	if u.b >= 0 {
		bias = r.data(u.b)
	}
	wg := s.Cout * s.Cin * s.KH * s.KW
	ys := r.p.vals[u.y].cs
	for g := 0; g < u.group; g++ {
		x, pre := u.input(r, g)
		var bg []float32
		if bias != nil {
			bg = bias[g*s.Cout : (g+1)*s.Cout]
		}
		if err := u.conv.Forward(r.k, x, pre, w[g*wg:], bg, y[g*s.Cout*ys:], false, r.p.scratch); err != nil {
			return u.errorf(err)
		}
	}
	return nil
}

func (u *convUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil {
		return nil
	}
	s := u.conv.Spec()
	wg := s.Cout * s.Cin * s.KH * s.KW
	oh, ow := u.conv.OutSize()
	npOut := s.N * oh * ow
	xs, ys := r.p.vals[u.x].cs, r.p.vals[u.y].cs
	// The weight gradient's packing of dY is serial; with prepack it runs beside the
	// (parallel) input gradient.
	needW, needX := r.p.vals[u.w].needGrad, r.p.vals[u.x].needGrad
	type packed struct {
		ga  []device.PackedGrad
		err error
	}
	var packs chan packed
	ws := r.work
	if u.prepack {
		packs = make(chan packed, 1)
		reuse := ws.gradA // only the goroutine touches these until it reports back
		ws.gradA = nil
		go func() {
			var p packed
			p.ga, p.err = u.packGrads(reuse, dy, ys)
			packs <- p
		}()
	}
	if needX && u.fused {
		if err := u.backwardFused(r, dy); err != nil {
			if packs != nil {
				<-packs
			}
			return u.errorf(err)
		}
	} else if needX {
		dx, acc := r.gradIn(u.x)
		w := r.data(u.w)
		for g := 0; g < u.group; g++ {
			if err := u.conv.InputGrad(r.k, dy[g*s.Cout*ys:], w[g*wg:], dx[g*s.Cin*xs:], acc, r.p.scratch); err != nil {
				if packs != nil {
					<-packs
				}
				return u.errorf(err)
			}
		}
	}
	if needW {
		var ga []device.PackedGrad
		if packs != nil {
			p := <-packs
			if p.err != nil {
				return u.errorf(p.err)
			}
			ga = p.ga
			defer func() { ws.gradA = ga }() // hand the buffers to the next layer once used
		}
		dw := r.paramGrad(u.w)
		stage := r.optBuf(u.stage)
		for g := 0; g < u.group; g++ {
			var a device.PackedGrad // nil: WeightGrad packs dY chunk by chunk
			if ga != nil {
				a = ga[g]
			}
			x, pre := u.input(r, g)
			if err := u.conv.WeightGrad(r.k, x, pre, dy[g*s.Cout*ys:], a, dw[g*wg:], true, stage, r.p.scratch); err != nil {
				return u.errorf(err)
			}
		}
	}
	if u.b >= 0 && r.p.vals[u.b].needGrad {
		db := r.paramGrad(u.b)
		for m := range db {
			var sum float64
			for _, v := range dy[m*ys : m*ys+npOut] {
				sum += float64(v)
			}
			db[m] += float32(sum)
		}
	}
	return nil
}

// backwardFused computes the gradient of the virtual input channel range by channel range into
// dz, and runs the backward pass of the BatchNormalization-ReLU that produced it on each range
// (its own backward then does nothing). The values are those of the unfused passes bit for bit:
// every channel is a row of its own in the input-gradient product and in BN's backward kernel.
func (u *convUnit) backwardFused(r *run, dy []float32) error {
	bn := u.pre
	xs := r.p.vals[u.x].cs
	w, x, dz := r.data(u.w), r.data(bn.x), r.bufData(u.dz)
	var dx []float32
	acc := false
	if r.p.vals[bn.x].needGrad {
		dx, acc = r.gradIn(bn.x)
	}
	if u.inPlace {
		if acc {
			return fmt.Errorf("train: internal error: in-place gradient of %q is already written", r.p.vals[bn.x].name)
		}
		if err := u.conv.InputGradChannels(r.k, dy, w, dx, 0, bn.channels, false, r.p.scratch); err != nil {
			return err
		}
		bn.backwardChannels(r, x, dx, dx, false, 0, bn.channels)
		bn.addParamGrads(r)
		return nil
	}
	for c0 := 0; c0 < bn.channels; c0 += u.chunk {
		c1 := min(bn.channels, c0+u.chunk)
		if err := u.conv.InputGradChannels(r.k, dy, w, dz, c0, c1, false, r.p.scratch); err != nil {
			return err
		}
		var dxr []float32
		if dx != nil {
			dxr = dx[c0*xs:]
		}
		bn.backwardChannels(r, x[c0*xs:], dz, dxr, acc, c0, c1)
	}
	bn.addParamGrads(r)
	return nil
}

// packGrads packs each group's output gradient for the weight gradient
// (device.TrainingConv.PackGradInto) into the memory of reuse, the packed gradients of an earlier
// layer, and returns them.
func (u *convUnit) packGrads(reuse []device.PackedGrad, dy []float32, ys int) ([]device.PackedGrad, error) {
	cout := u.conv.Spec().Cout
	ga := reuse[:0]
	for g := 0; g < u.group; g++ {
		var prev device.PackedGrad
		if g < len(reuse) {
			prev = reuse[g]
		}
		a, err := u.conv.PackGradInto(prev, dy[g*cout*ys:])
		if err != nil {
			return nil, err
		}
		ga = append(ga, a) // slot g of reuse, already read
	}
	return ga, nil
}

package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/dnx-ml/dnx/runtime/ops"
)

// dropoutUnit is a Dropout with a drop ratio p > 0 (p = 0 is an aliasUnit). In a training step it
// is inverted dropout, as torch.nn.functional.dropout:
//
//	y = x * m / (1-p),  dx = dy * m / (1-p),
//
// where m_j is 1 (kept) with probability 1-p, independently for every element j (p = 1 drops
// everything); Evaluate runs it as the identity, as PyTorch's eval mode does.
//
// The mask is never stored. Element j's draw is a hash of (Options.Seed, the step number, the
// unit's index in the plan, j), j the element's logical row-major index (n*C + c)*S + i, not its
// storage offset (see dropoutKey and dropoutKeep). So the backward pass regenerates the mask
// instead of keeping it alive from the forward pass; the mask does not depend on the thread
// count, the memory mode or the storage layout; and a run resumed from a saved state, which
// restores the step count, draws the masks the uninterrupted run would have drawn.
//
// When x is an activation that only the Dropout reads and that its producer's backward pass does
// not read (a convolution's output, as in torchvision's dense layer: conv2, then F.dropout, then
// the block's concatenation), the unit runs in place (inPlace): y is x's storage, so in the
// memory-efficient mode y still lands in the dense block's buffer (placeAt), with no copy and no
// extra memory, and the backward pass turns y's gradient into x's where it lies.
type dropoutUnit struct {
	unitBase
	x, y    int
	seed    uint64 // Options.Seed
	index   int    // position in the plan's units: part of the mask's key
	ratio   float64
	thresh  uint64  // an element is kept when its 53-bit draw is >= thresh
	scale   float32 // 1/(1-p); 0 when p = 1
	inPlace bool
}

// newDropout plans Dropout node base.node. Which of ONNX's modes applies is the trainer's choice,
// as for BatchNormalization: Step runs training mode, Evaluate inference mode, so the
// training_mode input (opset >= 12) and the is_test attribute (opset < 7) are ignored, as is the
// seed attribute (the masks follow Options.Seed). The ratio is the node's: its ratio input from
// opset 12, which must be a constant, or its ratio attribute before.
//
// A Dropout that states no ratio (no ratio input from opset 12, no ratio attribute before) drops
// with ONNX's default ratio, 0.5.
func (p *plan) newDropout(t *Trainer, base unitBase, op *ops.Dropout) (unit, error) {
	ratio, err := p.dropoutRatio(base, op)
	if err != nil {
		return nil, err
	}
	if ratio == 0 {
		return p.newAlias(base)
	}
	u := &dropoutUnit{unitBase: base, x: base.in[0], y: base.out[0], seed: t.opts.Seed, index: -1,
		ratio: ratio, thresh: dropoutThreshold(ratio)}
	if ratio < 1 {
		u.scale = float32(1 / (1 - ratio))
	}
	if _, err := p.act(u.x, "Dropout input", 0, 8); err != nil {
		return nil, err
	}
	return u, nil
}

// dropoutRatio returns the drop ratio of node base.node (see newDropout).
func (p *plan) dropoutRatio(base unitBase, op *ops.Dropout) (float64, error) {
	var r float64
	switch {
	case len(base.in) > 1 && base.in[1] >= 0:
		v := p.vals[base.in[1]]
		if v.kind != vConst {
			return 0, fmt.Errorf("%w: Dropout ratio %q is not a constant; training needs the drop ratio as an initializer",
				ops.ErrUnsupportedOp, v.name)
		}
		if !v.konst.DType.IsFloat() || v.konst.Len() != 1 {
			return 0, fmt.Errorf("%w: Dropout ratio %q must be a float scalar, got %s%v", ops.ErrShape, v.name, v.konst.DType, v.konst.Shape)
		}
		r = v.konst.Float64s()[0]
	default:
		r = float64(op.Ratio) // the attribute before opset 12, else ONNX's default 0.5
	}
	if !(r >= 0 && r <= 1) {
		return 0, fmt.Errorf("%w: Dropout ratio %g is outside [0, 1]", ErrGraph, r)
	}
	return r, nil
}

// finish records the unit's index (the masks' key) and decides whether it runs in place: x is an
// activation written by a unit of its own (not an alias or a view of another value's storage),
// read by the Dropout alone and by no backward pass (the Dropout's reads none: it regenerates the
// mask), and not a graph output, so overwriting it with y loses nothing.
func (u *dropoutUnit) finish(p *plan) error {
	u.index = slices.Index(p.units, unit(u))
	x := p.vals[u.x]
	if x.kind != vAct || x.virtual || x.graphOut || x.prod < 0 || len(x.readers) != 1 {
		return nil
	}
	switch pu := p.units[x.prod].(type) {
	case *aliasUnit, *concatUnit:
		return nil
	case *dropoutUnit:
		if pu.inPlace {
			return nil
		}
	}
	if slices.Contains(p.units[x.prod].base().reads, u.x) {
		return nil
	}
	u.inPlace = true
	return nil
}

func (u *dropoutUnit) forward(r *run) error {
	if !r.train {
		if !u.inPlace {
			copy(r.data(u.y), r.data(u.x))
		}
		return nil
	}
	u.apply(r, r.data(u.y), r.data(u.x), false)
	return nil
}

func (u *dropoutUnit) backward(r *run) error {
	dy := r.gradOut(u.y)
	if dy == nil || !r.p.vals[u.x].needGrad {
		return nil
	}
	if u.inPlace {
		// y's gradient is x's storage too: every reader of y has added its part (their backward
		// passes ran before this one), and only this unit writes x's gradient.
		u.apply(r, dy, dy, false)
		return nil
	}
	dx, acc := r.gradIn(u.x)
	u.apply(r, dx, dy, acc)
	return nil
}

// dropoutGrain is the fewest elements a worker gets: hashing an element costs a few
// multiplications, so smaller chunks would cost more to hand out than to compute.
const dropoutGrain = 1 << 14

// apply writes dst = src * m * scale (acc: adds it to dst) over the elements of x's shape, in
// x's storage layout (y's and both gradients' are the same); dst may be src. Each element's
// mask bit depends on its logical index only, so any split of the work gives the same result.
func (u *dropoutUnit) apply(r *run, dst, src []float32, acc bool) {
	v := r.p.vals[u.x]
	key := dropoutKey(u.seed, r.step, u.index)
	if !v.storedCM() {
		r.k.Parallel(v.size, dropoutGrain, func(lo, hi int) {
			u.applyRow(key, lo, dst[lo:hi], src[lo:hi], acc)
		})
		return
	}
	// Channel-major: row (c, n) holds the S elements of sample n, channel c at c*cs + n*S; its
	// logical indices start at (n*C + c)*S.
	r.k.Parallel(v.c*v.n, max(1, dropoutGrain/max(v.s, 1)), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			c, n := row/v.n, row%v.n
			o := c*v.cs + n*v.s
			u.applyRow(key, (n*v.c+c)*v.s, dst[o:o+v.s], src[o:o+v.s], acc)
		}
	})
}

// applyRow is apply on elements of consecutive logical indices from j0.
func (u *dropoutUnit) applyRow(key uint64, j0 int, dst, src []float32, acc bool) {
	for i, s := range src {
		var y float32
		if dropoutKeep(key, j0+i, u.thresh) {
			y = s * u.scale
		}
		if acc {
			y += dst[i]
		}
		dst[i] = y
	}
}

// The masks' generator is counter-based: SplitMix64 (Steele, Lea and Flood, "Fast Splittable
// Pseudorandom Number Generators", 2014), whose j-th output from state k is mix64(k + (j+1)*γ).
// The key k mixes the seed, the step and the unit, so every (seed, step, unit) has its own stream,
// and an element's draw needs no generator state: any thread computes it from its index alone.
const dropoutGamma = 0x9e3779b97f4a7c15

// mix64 is SplitMix64's finalizer (a bijection of the 64-bit integers).
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// dropoutKey returns the key of the masks of the Dropout at plan index unit in the step numbered
// step (counted from 0) under seed. Each component goes through the bijective mix64 in turn, so
// two different (step, unit) pairs of one seed give different keys.
func dropoutKey(seed uint64, step, unit int) uint64 {
	k := mix64(seed + dropoutGamma)
	k = mix64(k ^ uint64(step))
	return mix64(k ^ uint64(unit)*dropoutGamma)
}

// dropoutThreshold returns the threshold of ratio p for dropoutKeep: an element is dropped when
// its uniform draw u = bits/2^53 in [0, 1) is below p, that is when bits < p*2^53.
func dropoutThreshold(p float64) uint64 {
	return uint64(math.Ceil(p * (1 << 53)))
}

// dropoutKeep reports whether the element of logical index j is kept under key: its 53-bit draw
// is at least thresh (kept with probability 1 - thresh/2^53).
func dropoutKeep(key uint64, j int, thresh uint64) bool {
	return mix64(key+uint64(j+1)*dropoutGamma)>>11 >= thresh
}

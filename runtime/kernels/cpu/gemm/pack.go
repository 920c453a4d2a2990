package gemm

import "fmt"

// Segment says where some lanes of a packed B row come from: lanes j in [Lo, Hi) of row k are
// src[Offs[k] + Base + j] (see Rows). A panel whose columns cross a row of an image is described
// by one segment per image row it touches.
type Segment struct {
	Lo, Hi, Base int
}

// segment is a Segment as the assembly packers read it: the lane mask is -1 for j in [Lo, Hi).
// It has MaxNR lanes whatever the panel width, so that one layout serves every packer.
type segment struct {
	base int
	mask [MaxNR]int32
}

// Rows is a B matrix (or the part of one a BPanel packs) whose row k is read from Src at offset
// Offs[k], with an optional per-row affine map and ReLU applied while packing:
//
//	B[k][col] = act(Scale[k] * Src[Offs[k] + Base + j] + Shift[k])
//
// for the lanes j of the segment that covers column col. This is what a convolution needs: for a
// 1x1 convolution Offs[k] = k*H*W (channel planes), for a KxK one Offs[k] is the offset of kernel
// tap k in a padded copy of the input, and Scale, Shift, ReLU are a BatchNormalization-ReLU
// prologue.
type Rows struct {
	Src          []float32
	Offs         []int32
	Scale, Shift []float32
	ReLU         bool

	minOff, maxOff int
	nr             int    // the panel width of Init's kernels: Pack writes rows nr floats apart
	pack           packer // the packer of Init's kernels
}

// Init sets the fields of r and checks them: Scale and Shift are both nil or both cover Offs.
// Pack will run the packer of code (nil: that of the level this process runs at), which must be
// the level of the Job the rows feed: the prologue's multiply-add is fused in assembly and not
// in Go, and a layer's stored output must be the number its consumers recompute.
func (r *Rows) Init(code *Kernels, src []float32, offs []int32, scale, shift []float32, relu bool) error {
	if (scale == nil) != (shift == nil) || (scale != nil && (len(scale) < len(offs) || len(shift) < len(offs))) {
		return fmt.Errorf("%w: scale (%d) and shift (%d) must both be absent or cover %d rows", ErrArgs, len(scale), len(shift), len(offs))
	}
	k := orActive(code)
	*r = Rows{Src: src, Offs: offs, Scale: scale, Shift: shift, ReLU: relu, nr: k.nr, pack: k.pack}
	if len(offs) > 0 {
		r.minOff, r.maxOff = int(offs[0]), int(offs[0])
		for _, o := range offs {
			r.minOff = min(r.minOff, int(o))
			r.maxOff = max(r.maxOff, int(o))
		}
	}
	return nil
}

// NR returns the width of the panels Pack writes (that of the kernels given to Init).
func (r *Rows) NR() int { return r.nr }

// Pack writes rows [k0, k1) of the panel whose lanes come from segs into dst
// (dst[(k-k0)*NR + j], NR = r.NR(), the panel width of the kernels given to Init, which must be
// those of the Job the panel feeds); lanes that no segment covers are 0 (padding: the affine map
// and ReLU are not applied to them). Segments must not overlap, and at most NR may be given. Pack panics if a segment reads outside Src: the
// caller derives segments from shapes it has checked, so that is a programming error.
func (r *Rows) Pack(dst []float32, k0, k1 int, segs []Segment) {
	if k1 <= k0 {
		return
	}
	NR := r.nr
	if len(segs) > NR || k0 < 0 || k1 > len(r.Offs) || len(dst) < (k1-k0)*NR {
		panic(fmt.Sprintf("gemm: Rows.Pack rows [%d,%d) of %d, %d segments, dst %d", k0, k1, len(r.Offs), len(segs), len(dst)))
	}
	// The segments' masks live on the stack. A panel of one or two output rows (the usual case)
	// takes the small array: Go zeroes a local array where it is declared, and MaxNR segments
	// are 4 KiB, which was half of Rows.Pack's own time in a 3-channel stem convolution.
	if len(segs) <= 4 {
		var sg [4]segment
		r.packSegs(dst, k0, k1, segs, sg[:])
		return
	}
	var sg [MaxNR]segment
	r.packSegs(dst, k0, k1, segs, sg[:])
}

// packSegs is Pack with sg, zeroed, to hold the segments.
func (r *Rows) packSegs(dst []float32, k0, k1 int, segs []Segment, sg []segment) {
	NR := r.nr
	for i, s := range segs {
		if s.Lo < 0 || s.Hi > NR || s.Lo > s.Hi {
			panic(fmt.Sprintf("gemm: Rows.Pack segment lanes [%d,%d)", s.Lo, s.Hi))
		}
		if s.Lo < s.Hi && (r.minOff+s.Base+s.Lo < 0 || r.maxOff+s.Base+s.Hi > len(r.Src)) {
			panic(fmt.Sprintf("gemm: Rows.Pack segment %+v reads outside the %d source floats (offsets %d..%d)", s, len(r.Src), r.minOff, r.maxOff))
		}
		sg[i].base = s.Base
		for j := s.Lo; j < s.Hi; j++ {
			sg[i].mask[j] = -1
		}
	}
	flags := 0
	var scale, shift *float32
	if r.Scale != nil {
		flags |= 1
		scale, shift = &r.Scale[k0], &r.Shift[k0]
	}
	if r.ReLU {
		flags |= 2
	}
	if len(segs) == 1 && segs[0].Lo == 0 && segs[0].Hi == NR {
		flags |= 4
	}
	nseg := len(segs)
	if nseg == 0 {
		nseg = 1 // one segment with an empty mask: every lane is f(0)
	}
	var src *float32
	if len(r.Src) > 0 {
		src = &r.Src[0]
	}
	packRows(r.pack, NR, &dst[0], src, &r.Offs[k0], k1-k0, &sg[0], nseg, scale, shift, flags)
}

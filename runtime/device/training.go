package device

// TrainingKernels are the kernels the trainer (runtime/train) builds its forward and backward
// passes from; runtime/train names no device's kernels, only these.
//
// Memory: the trainer plans its own storage (channel-major activations and gradients in one
// arena, see runtime/train) and today that arena is host memory, a []float32 it allocates
// itself, which every method here reads and writes directly. That suits the CPU. A device whose
// memory the host cannot address (a GPU) needs the trainer's storage to move into its Memory
// first, with these methods taking Operands instead of slices; that is the CUDA device's work,
// not something an implementation can hide behind this interface.
//
// Channel-major layout: a batch of N images of C channels and H x W pixels stores pixel (y, x)
// of channel c of image n at c*stride + n*H*W + y*W + x, stride >= N*H*W, so that each channel
// of the whole batch is one contiguous row ("CNHW").
//
// Lifetime: the trainer compiles a plan (its convolutions and pools) once per input shape and
// runs it on the TrainingKernels of each pass, which need not be the value that made them: a
// TrainingConv or TrainingPool runs on any TrainingKernels of the device that made it, passed to
// each of its methods. The trainer calls these from one goroutine, except that it packs an output
// gradient (TrainingConv.PackGradInto) on another while it computes the input gradient.
type TrainingKernels interface {
	// Parallel runs fn over [0, n) split into chunks of at least grain elements on the device's
	// threads, and returns when every chunk is done.
	Parallel(n, grain int, fn func(lo, hi int))

	// ChannelStats computes the mean and biased variance of each of channels rows of rowLen
	// floats, stride apart in x, in float64.
	ChannelStats(x []float32, channels, rowLen, stride int, mean, variance []float64)
	// AffineRows computes y = x*scale[c] + shift[c] (then max(., 0) when relu) over channels
	// rows of rowLen floats, stride apart in both x and y. y may be x.
	AffineRows(x, y []float32, channels, rowLen, stride int, scale, shift []float32, relu bool)
	// BatchNormBackward computes the gradients g describes from x and dy into dx and g.DGamma,
	// g.DBeta. g is passed by value so that a call through this interface does not move it to
	// the heap; its slices are still the caller's.
	BatchNormBackward(g BNGradient, x, dy, dx []float32)
	// ReluBackward computes dx (+)= dy where y > 0, else 0 (adds when acc).
	ReluBackward(y, dy, dx []float32, acc bool)

	// NewConvWorkspace returns working memory that convolutions which never run at the same time
	// can share (see NewConvolution).
	NewConvWorkspace() ConvWorkspace
	// NewConvolution prepares the training products of one group-1 2-D convolution on
	// channel-major batches. shared, when not nil, is the working memory it uses while one of its
	// methods runs (from NewConvWorkspace of the same device): the layers of a network run one
	// after the other, so sharing makes that memory the largest layer's rather than the sum.
	NewConvolution(spec ConvolutionSpec, shared ConvWorkspace) (TrainingConv, error)
	// NewPool prepares a 2-D max or average pool.
	NewPool(spec PoolSpec) (TrainingPool, error)
}

// ConvWorkspace is a convolution workspace a device made (NewConvWorkspace). Only that device
// knows what it is; like crypto.PrivateKey it has no methods, and a device given another's
// returns an error.
type ConvWorkspace any

// PackedGrad is the output gradient of a convolution packed for its weight gradient
// (TrainingConv.PackGradInto), in a form only the device that packed it knows.
type PackedGrad any

// ConvolutionSpec is the geometry of a TrainingConv: a group-1 2-D convolution of a
// channel-major batch of N images, Cin x H x W each, into Cout channels with weights
// [Cout, Cin, KH, KW]. Strides and dilations of 0 mean 1. XStride and YStride are the distances
// between consecutive channels of the input and of the output (0: dense, N*H*W and N*OH*OW);
// the trainer pads them so that channel rows do not all fall into the same cache sets.
type ConvolutionSpec struct {
	N, Cin, H, W           int
	Cout, KH, KW           int
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
	DilationH, DilationW   int
	XStride, YStride       int
}

// Prologue is a per-input-channel map applied to a convolution's input as it is read:
//
//	pre_c(x) = x*Scale[c] + Shift[c]   (when Scale is not nil), then max(., 0) when ReLU
//
// The trainer uses it for the BatchNormalization-ReLU before a convolution, whose output it then
// never stores. Zero padding pads pre(x), not x. The zero Prologue is none. It is passed by
// value so that a call through the interface does not move it to the heap.
type Prologue struct {
	Scale, Shift []float32
	ReLU         bool
}

// None reports whether p is the zero Prologue (the identity).
func (p Prologue) None() bool { return p.Scale == nil && p.Shift == nil && !p.ReLU }

// TrainingConv computes the three products a training step needs of one convolution
// Y = conv(pre(X), W) + bias on channel-major batches (see ConvolutionSpec):
//
//	forward:  Y[m,n,oy,ox]  = bias[m] + sum_{c,kh,kw} W[m,c,kh,kw] * P[c,n,iy,ix]
//	input:    dX[c,n,iy,ix] = sum_{m,kh,kw} W[m,c,kh,kw] * dY[m,n,oy,ox]
//	weights:  dW[m,c,kh,kw] = sum_{n,oy,ox} dY[m,n,oy,ox] * P[c,n,iy,ix]
//
// with iy = oy*StrideH + kh*DilationH - PadT, ix = ox*StrideW + kw*DilationW - PadL, and
// P = pre(X) inside the image, 0 in the padding. Each method that computes takes the
// TrainingKernels of the pass it runs in (see TrainingKernels). A TrainingConv is not safe for
// concurrent use, nor are TrainingConvs that share a ConvWorkspace.
type TrainingConv interface {
	// Spec returns the geometry.
	Spec() ConvolutionSpec
	// OutSize returns the output's height and width.
	OutSize() (oh, ow int)
	// StagingSize is the floats of the staging buffer WeightGrad needs (0: none).
	StagingSize() int
	// ScratchSize is the floats of scratch any of the products needs on threads threads.
	ScratchSize(threads int) int
	// SplitsInputGrad reports whether InputGradChannels is supported.
	SplitsInputGrad() bool

	// Forward computes y (+)= conv(pre(x), w) + bias (bias may be nil; adds when acc).
	Forward(k TrainingKernels, x []float32, pre Prologue, w, bias, y []float32, acc bool, scratch []float32) error
	// InputGrad computes dx (+)= the gradient of the input from dy (adds when acc).
	InputGrad(k TrainingKernels, dy, w, dx []float32, acc bool, scratch []float32) error
	// InputGradChannels computes input channels [c0, c1) of the input gradient into dx, which
	// holds them from its start, XStride apart. The values are those of InputGrad bit for bit, so
	// a caller may consume the gradient a channel range at a time with memory for one range.
	InputGradChannels(k TrainingKernels, dy, w, dx []float32, c0, c1 int, acc bool, scratch []float32) error
	// PackGradInto packs dy for WeightGrad, reusing the memory of reuse (nil, or a PackedGrad of
	// any TrainingConv of the device that is no longer needed). It reads only dy and the
	// geometry, and may run on another goroutine while the same TrainingConv computes the input
	// gradient (not with a ConvWorkspace user's other methods).
	PackGradInto(reuse PackedGrad, dy []float32) (PackedGrad, error)
	// WeightGrad computes dw (+)= the gradient of the weights from x (with its prologue, as in
	// Forward) and dy, packed by PackGradInto (nil: it packs dy itself; the result is the same).
	// stage holds StagingSize() floats.
	WeightGrad(k TrainingKernels, x []float32, pre Prologue, dy []float32, ga PackedGrad, dw []float32, acc bool, stage, scratch []float32) error
}

// BNGradient describes the backward pass of a BatchNormalization (with its ReLU) over channel
// rows. The forward pass computed z = x*Scale[c] + Shift[c] and y = max(z, 0) when ReLU, else
// y = z, normalizing with Mean and InvStd (the batch statistics when Train, the running ones
// otherwise), so that Scale = gamma*InvStd. With dz = dy where z > 0 (or everywhere without
// ReLU), xhat = (x - Mean)*InvStd and m = RowLen:
//
//	dbeta[c]  = sum dz
//	dgamma[c] = sum dz*xhat
//	dx        = Scale*(dz - dbeta/m - xhat*dgamma/m)    (Train: the statistics depend on x)
//	dx        = Scale*dz                                (otherwise)
//
// dx may be dy itself (in place) when not accumulating.
type BNGradient struct {
	Channels, RowLen     int
	RowStride            int       // distance between rows of x, dy and dx (0: RowLen)
	Scale, Shift         []float32 // the forward affine map, per channel
	Mean, InvStd         []float64 // the statistics the forward pass normalized with
	ReLU, Train          bool
	DGamma, DBeta        []float64 // outputs: per-channel sums (overwritten)
	AccumulateDX, SkipDX bool      // add into dx instead of overwriting it; or do not compute dx
}

// PoolSpec is a 2-D max or average pool resolved for one input size: kernel, stride, dilation,
// the padding at each side and the output size.
//
//	max:     Y[n,c,y,x] = max over taps (i,j) inside the image of X[n,c, y*sh + i*dh - pt, x*sw + j*dw - pl]
//	average: the same sum divided by the number of taps inside the image, or, with
//	         CountIncludePad, by those inside the image with its explicit pads (taps in the end
//	         padding that ceil_mode adds beyond them still do not count, as in ONNX's reference)
type PoolSpec struct {
	KH, KW                 int
	StrideH, StrideW       int
	DilationH, DilationW   int
	PadT, PadL, PadB, PadR int
	OutH, OutW             int
	Max, CountIncludePad   bool
}

// Image is a float32 NCHW tensor in host memory whose batch items may be spaced apart: element
// (n, c, h, w) is Data[n*BatchStride + (c*H+h)*W + w]. The trainer pools a channel-major batch
// as an Image of C items (the channels, a channel stride apart) of N planes each.
type Image struct {
	Data        []float32
	N, C, H, W  int
	BatchStride int
}

// TrainingPool is a 2-D pool (NewPool). The trainer computes its backward pass itself.
type TrainingPool interface {
	// Forward pools in into out (Image.N and C equal, H and W the spec's output size).
	Forward(k TrainingKernels, in, out Image) error
}

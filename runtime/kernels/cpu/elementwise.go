package cpu

import (
	"math"
	"sync"
)

// UnaryFunc names an element-wise float32 function.
type UnaryFunc int

// The unary functions Unary computes. Each matches its reference kernel's definition.
const (
	// FuncSigmoid: 1/(1+exp(-x)).
	FuncSigmoid UnaryFunc = iota
	// FuncClip: min(max(x, Lo), Hi) (NaN stays NaN).
	FuncClip
	// FuncLeakyRelu: x if x >= 0 else Alpha*x.
	FuncLeakyRelu
	// FuncHardSigmoid: max(0, min(1, Alpha*x + Beta)).
	FuncHardSigmoid
	// FuncHardSwish: x * max(0, min(1, x/6 + 1/2)).
	FuncHardSwish
	// FuncSiLU: x * sigmoid(x) (the sigmoid of FuncSigmoid, then one multiply).
	FuncSiLU
)

// Unary is an element-wise function over dense float32 slices, split over the Workers' threads.
type Unary struct {
	Func        UnaryFunc
	Lo, Hi      float32 // FuncClip
	Alpha, Beta float32 // FuncLeakyRelu, FuncHardSigmoid

	code  *kernels  // the level its kernels run at (nil: active; tests pass others)
	tasks sync.Pool // of *unaryTask

	once  sync.Once
	block []float32 // the parameters and tail masks the kernels read (see unaryBlock)
}

// unaryBlock returns the block of k's parameters (ewasm's Par* layout, then the mask table),
// which every level's clip, hardSigmoid and hardSwish read.
func (k *Unary) unaryBlock() []float32 {
	k.once.Do(func() {
		b := make([]float32, ewUnaryFloats)
		switch k.Func {
		case FuncClip:
			b[0], b[1] = k.Lo, k.Hi
		case FuncHardSigmoid:
			b[0], b[1] = k.Alpha, k.Beta
		}
		b[2], b[3], b[4] = 1, 6, 0.5
		for i := range 16 {
			b[ewMaskOff+i] = math.Float32frombits(0xFFFFFFFF)
		}
		k.block = b
	})
	return k.block
}

// The layout of the unary kernels' block (ewasm.ParA..., MaskOff; TestEWConsts checks them),
// and ewMasks, the binary kernels' mask table: 16 lanes of all ones, then 16 of zeros.
const (
	ewMaskOff     = 16
	ewUnaryFloats = ewMaskOff + 32
)

var ewMasks = func() []float32 {
	m := make([]float32, 32)
	for i := range 16 {
		m[i] = math.Float32frombits(0xFFFFFFFF)
	}
	return m
}()

type unaryTask struct {
	k       *Unary
	in, out []float32
	wg      Group
}

// unaryGrain is the elements per parallel chunk of Unary and Binary: a tensor of up to
// unaryGrain elements runs on the calling thread, with no hand-off to a worker (waking one costs
// more than the vector kernels take for 32K elements: ~3-10 us at 0.1-0.3 ns per element).
const unaryGrain = 32768

// Run computes out[i] = f(in[i]); len(out) must equal len(in).
func (k *Unary) Run(workers *Workers, in, out []float32) {
	t, _ := k.tasks.Get().(*unaryTask)
	if t == nil {
		t = &unaryTask{}
	}
	t.k, t.in, t.out = k, in, out
	if k.Func == FuncClip || k.Func == FuncHardSigmoid || k.Func == FuncHardSwish {
		k.unaryBlock()
	}
	workers.Run(t, len(in), unaryGrain, &t.wg)
	t.in, t.out = nil, nil
	k.tasks.Put(t)
}

func (t *unaryTask) Do(lo, hi int) { t.k.apply(t.in[lo:hi], t.out[lo:hi]) }

// apply computes out[i] = f(in[i]) on the calling goroutine (the block must exist: see
// unaryBlock).
func (k *Unary) apply(in, out []float32) {
	code := orActive(k.code)
	switch k.Func {
	case FuncSigmoid:
		code.sigmoid(in, out)
	case FuncSiLU:
		code.silu(in, out)
	case FuncClip:
		code.clip(in, out, k.block)
	case FuncLeakyRelu:
		for i, v := range in {
			if v < 0 {
				v *= k.Alpha
			}
			out[i] = v
		}
	case FuncHardSigmoid:
		code.hardSigmoid(in, out, k.block)
	case FuncHardSwish:
		code.hardSwish(in, out, k.block)
	}
}

// clipRow is the generic level's Clip: c[0] and c[1] are the bounds (see Unary.unaryBlock).
// min and max compile to branch-free MINSS/MAXSS (NaN still propagates); a compare and branch
// per element mispredicts on activations, which straddle the bounds: 5x slower on MobileNetV2's
// ReLU6 (1.4 vs 6.9 ns per element, measured).
func clipRow(in, out, c []float32) {
	lo, hi := c[0], c[1]
	out = out[:len(in)]
	for i, v := range in {
		out[i] = min(max(v, lo), hi)
	}
}

// hardSigmoidRow is the generic level's HardSigmoid: max(0, min(1, alpha*x + beta)) with alpha
// and beta c[0] and c[1].
func hardSigmoidRow(in, out, c []float32) {
	alpha, beta := c[0], c[1]
	out = out[:len(in)]
	for i, v := range in {
		out[i] = max(0, min(1, alpha*v+beta))
	}
}

// hardSwishRow is the generic level's HardSwish: x * max(0, min(1, x/6 + 0.5)).
func hardSwishRow(in, out, _ []float32) {
	out = out[:len(in)]
	for i, v := range in {
		out[i] = v * max(0, min(1, v/6+0.5))
	}
}

// BinaryFunc names an element-wise arithmetic operation.
type BinaryFunc int

// The binary operations.
const (
	FuncAdd BinaryFunc = iota
	FuncSub
	FuncMul
	FuncDiv
)

// Binary computes out = a op b where b is either the same size as a (Per = 1), one value
// (Per = len(a)), or one value per contiguous run of Per elements of a (a [N,C,H,W] with b
// [N,C,1,1] has Per = H*W: squeeze-and-excitation's scaling). BFirst swaps the operands
// (out = b op a) so that a broadcast left operand works too.
type Binary struct {
	Func   BinaryFunc
	Per    int
	BFirst bool

	code  *kernels  // the level it runs at (nil: active; tests pass others)
	tasks sync.Pool // of *binaryTask
}

type binaryTask struct {
	k         *Binary
	a, b, out []float32
	wg        Group
}

// Run computes the operation; len(b) must be len(a)/Per.
func (k *Binary) Run(workers *Workers, a, b, out []float32) {
	t, _ := k.tasks.Get().(*binaryTask)
	if t == nil {
		t = &binaryTask{}
	}
	t.k, t.a, t.b, t.out = k, a, b, out
	workers.Run(t, len(a), unaryGrain, &t.wg)
	t.a, t.b, t.out = nil, nil, nil
	k.tasks.Put(t)
}

func (t *binaryTask) Do(lo, hi int) {
	k := t.k
	run := orActive(k.code).binary
	if k.Per == 1 {
		run(k.Func, k.BFirst, t.a[lo:hi], t.b[lo:hi], t.out[lo:hi])
		return
	}
	bv := lo / k.Per // one division per chunk, not per run
	for i := lo; i < hi; bv++ {
		end := min(hi, (bv+1)*k.Per)
		run(k.Func, k.BFirst, t.a[i:end], t.b[bv:bv+1], t.out[i:end])
		i = end
	}
}

// binaryGo is the generic level's binary: binaryRun on b of len(a) elements, or of one that
// every element of a meets.
func binaryGo(f BinaryFunc, bFirst bool, a, b, out []float32) {
	if len(b) == len(a) {
		binaryRun(f, bFirst, a, b, 0, out)
		return
	}
	binaryRun(f, bFirst, a, nil, b[0], out)
}

// binaryRun computes out = a op b elementwise, or a op y for every element when b is nil;
// swapped when bFirst.
func binaryRun(f BinaryFunc, bFirst bool, a, b []float32, y float32, out []float32) {
	if bFirst && f == FuncSub {
		for i, x := range a {
			if b != nil {
				y = b[i]
			}
			out[i] = y - x
		}
		return
	}
	if bFirst && f == FuncDiv {
		for i, x := range a {
			if b != nil {
				y = b[i]
			}
			out[i] = y / x
		}
		return
	}
	switch f { // Add and Mul commute, so bFirst does not matter for them
	case FuncAdd:
		for i, x := range a {
			if b != nil {
				y = b[i]
			}
			out[i] = x + y
		}
	case FuncSub:
		for i, x := range a {
			if b != nil {
				y = b[i]
			}
			out[i] = x - y
		}
	case FuncMul:
		for i, x := range a {
			if b != nil {
				y = b[i]
			}
			out[i] = x * y
		}
	case FuncDiv:
		for i, x := range a {
			if b != nil {
				y = b[i]
			}
			out[i] = x / y
		}
	}
}

// exp32 returns e**x in float32 arithmetic, within 2 ulp of the float64 result (checked by
// TestExp32 over the whole range), branch-free: the argument is reduced to
// r = x - n*ln(2), |r| <= ln(2)/2, e**r comes from Cephes' degree-6 minimax polynomial, and 2**n
// is built in the exponent bits. It is the arithmetic the assembly Sigmoid and SiLU kernels
// vectorize (internal/sigasm), kept here as the generic level's and the tests' reference; in
// scalar Go it costs about what float64 math.Exp does (8.3 vs 8.6 ns per sigmoid, measured).
// x is clamped to the finite float32 range of the result (e**-87.3 is the smallest normal); NaN
// stays NaN.
func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
	)
	x = min(max(x, -87.33654), 88.72283)
	// floor(t + 0.5) for t = x*log2e in [-126, 128], by truncation of a positive value (one
	// conversion instruction, where math.Floor is a call).
	n := float32(int32(x*log2e+256.5) - 256)
	r := x - n*ln2Hi - n*ln2Lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	// 2**n in two halves: n reaches 128 at the top of the range, past the largest exponent.
	n1 := int32(n) >> 1
	n2 := int32(n) - n1
	return p * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n2+127)<<23)
}

// sigmoidRow computes out[i] = 1/(1+e**-in[i]) with exp32: the generic level's sigmoid (the
// assembly levels run internal/sigasm's kernels). Writing exp32 out in the loop measured no
// faster: the arithmetic, not the call, is the cost of scalar code here.
func sigmoidRow(in, out []float32) {
	out = out[:len(in)]
	for i, v := range in {
		out[i] = 1 / (1 + exp32(-v))
	}
}

// siluRow computes out[i] = in[i] * sigmoid(in[i]), the sigmoid as sigmoidRow computes it: the
// generic level's SiLU.
func siluRow(in, out []float32) {
	out = out[:len(in)]
	for i, v := range in {
		s := 1 / (1 + exp32(-v))
		out[i] = v * s
	}
}

// sigmoidConsts is the constants block of the assembly sigmoid kernels (see package
// internal/sigasm, whose Row* constants give its layout; TestSigmoidConsts checks the two
// agree): rows of 16 equal lanes, then a tail mask table of 16 lanes of all ones and 16 of 0.
var sigmoidConsts = newSigmoidConsts()

func newSigmoidConsts() []float32 {
	f := math.Float32bits
	rows := []uint32{
		0x80000000,   // -0: the sign bit
		f(-87.33654), // the clamp
		f(88.72283),
		f(1.44269504088896341), // log2(e)
		f(256.5),               // the bias that makes truncation round
		f(256),
		f(-0.693359375),    // -ln2Hi
		f(2.12194440e-4),   // -ln2Lo
		f(1.9875691500e-4), // the polynomial, highest coefficient first
		f(1.3981999507e-3),
		f(8.3334519073e-3),
		f(4.1665795894e-2),
		f(1.6666665459e-1),
		f(5.0000001201e-1),
		f(1),
		1,          // the int32 1
		0xFFFFFFFF, // the mask table
		0,
	}
	c := make([]float32, 16*len(rows))
	for i, r := range rows {
		for l := range 16 {
			c[16*i+l] = math.Float32frombits(r)
		}
	}
	return c
}

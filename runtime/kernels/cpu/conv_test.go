package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// convCase is one convolution to check against the reference kernel.
type convCase struct {
	name                   string
	n, cin, cout, h, w     int
	kh, kw, sh, sw, dh, dw int
	pads                   [4]int // top, left, bottom, right
	group                  int
	bias, pre, preRelu     bool
	postRelu               bool
	strided                bool // in and out are channel slices of larger buffers
	path                   convPath
}

func convCases() []convCase {
	return []convCase{
		{name: "densenet 1x1 bottleneck 14", n: 1, cin: 160, cout: 128, h: 14, w: 14, kh: 1, kw: 1, pre: true, preRelu: true, bias: true, postRelu: true, path: pathPointwise},
		{name: "densenet 1x1 bottleneck 7", n: 1, cin: 96, cout: 128, h: 7, w: 7, kh: 1, kw: 1, pre: true, preRelu: true, bias: true, postRelu: true, path: pathPointwise},
		{name: "densenet 1x1 transition", n: 2, cin: 64, cout: 32, h: 28, w: 28, kh: 1, kw: 1, pre: true, preRelu: true, path: pathPointwise},
		{name: "densenet 3x3 14", n: 1, cin: 128, cout: 32, h: 14, w: 14, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, path: pathDirect},
		{name: "densenet 3x3 7 bias", n: 1, cin: 128, cout: 32, h: 7, w: 7, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, bias: true, path: pathDirect},
		{name: "densenet 3x3 56", n: 1, cin: 16, cout: 32, h: 56, w: 56, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, path: pathDirect},
		{name: "3x3 prologue pads 0", n: 2, cin: 5, cout: 7, h: 9, w: 11, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, pre: true, preRelu: true, path: pathDirect},
		{name: "stem 7x7/2", n: 1, cin: 3, cout: 64, h: 32, w: 32, kh: 7, kw: 7, sh: 2, sw: 2, pads: [4]int{3, 3, 3, 3}, bias: true, postRelu: true, path: pathImplicit},
		{name: "stem 7x7/2 odd", n: 2, cin: 3, cout: 10, h: 33, w: 29, kh: 7, kw: 7, sh: 2, sw: 2, pads: [4]int{3, 3, 3, 3}, bias: true, postRelu: true, path: pathImplicit},
		{name: "3x3/2 odd", n: 1, cin: 6, cout: 9, h: 13, w: 10, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int{1, 1, 1, 1}, path: pathImplicit},
		// Stride-2 rows split into both column phases in one pass (prepTask.splitPhaseRows): the
		// even phase first (no left pad) or the odd one (left pad 1, 3), rows long enough for
		// whole vectors and tails, and an image too narrow to split (the strided copy instead).
		{name: "3x3/2 no pad", n: 1, cin: 3, cout: 8, h: 12, w: 70, kh: 3, kw: 3, sh: 2, sw: 2, bias: true, path: pathImplicit},
		{name: "3x3/2 wide", n: 2, cin: 3, cout: 16, h: 9, w: 67, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int{1, 1, 1, 1}, bias: true, postRelu: true, path: pathImplicit},
		{name: "5x5/2 pads 3,1", n: 1, cin: 4, cout: 8, h: 11, w: 40, kh: 5, kw: 5, sh: 2, sw: 2, pads: [4]int{2, 3, 2, 1}, path: pathImplicit},
		{name: "3x3/2 width 1", n: 1, cin: 2, cout: 3, h: 5, w: 1, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int{1, 1, 1, 1}, path: pathImplicit},
		{name: "strides 3x2", n: 1, cin: 4, cout: 5, h: 17, w: 12, kh: 3, kw: 2, sh: 3, sw: 2, pads: [4]int{0, 1, 2, 0}, pre: true, path: pathImplicit},
		{name: "asymmetric pads", n: 1, cin: 8, cout: 11, h: 10, w: 9, kh: 3, kw: 3, pads: [4]int{1, 0, 2, 1}, bias: true, path: pathDirect},
		{name: "dilation 2", n: 1, cin: 7, cout: 13, h: 15, w: 16, kh: 3, kw: 3, dh: 2, dw: 2, pads: [4]int{2, 2, 2, 2}, pre: true, preRelu: true, path: pathDirect},
		{name: "dilation 2 stride 2", n: 1, cin: 3, cout: 4, h: 15, w: 14, kh: 3, kw: 3, sh: 2, sw: 2, dh: 2, dw: 3, pads: [4]int{1, 2, 0, 3}, path: pathImplicit},
		{name: "groups 2", n: 2, cin: 8, cout: 6, h: 9, w: 9, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, group: 2, bias: true, pre: true, preRelu: true, postRelu: true, path: pathDirect},
		{name: "groups 2 pointwise", n: 1, cin: 8, cout: 10, h: 5, w: 6, kh: 1, kw: 1, group: 2, bias: true, pre: true, path: pathPointwise},
		{name: "depthwise", n: 2, cin: 6, cout: 6, h: 9, w: 8, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, group: 6, bias: true, postRelu: true, pre: true, preRelu: true, path: pathDepthwise},
		{name: "depthwise x2 stride 2", n: 1, cin: 3, cout: 6, h: 10, w: 11, kh: 5, kw: 3, sh: 2, sw: 2, pads: [4]int{2, 1, 2, 1}, group: 3, path: pathDepthwise},
		{name: "1x1 stride 4 on a narrow image (phases without data)", n: 1, cin: 3, cout: 2, h: 5, w: 2, kh: 1, kw: 1, sh: 4, sw: 4, path: pathImplicit},
		{name: "depthwise 3x3 stride 2", n: 2, cin: 5, cout: 5, h: 11, w: 10, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int{1, 1, 1, 1}, group: 5, bias: true, postRelu: true, path: pathDepthwise},
		{name: "depthwise 3x3 x2 stride 1 x 2", n: 1, cin: 3, cout: 6, h: 7, w: 9, kh: 3, kw: 3, sw: 2, pads: [4]int{1, 0, 1, 2}, group: 3, path: pathDepthwise},
		{name: "1x1 stride 2", n: 1, cin: 16, cout: 8, h: 9, w: 9, kh: 1, kw: 1, sh: 2, sw: 2, path: pathImplicit},
		{name: "1x1 padded", n: 1, cin: 4, cout: 3, h: 3, w: 4, kh: 1, kw: 1, pads: [4]int{1, 0, 0, 1}, pre: true, preRelu: true, path: pathDirect},
		{name: "pads wider than kernel", n: 2, cin: 5, cout: 6, h: 6, w: 7, kh: 3, kw: 3, pads: [4]int{3, 2, 4, 1}, pre: true, preRelu: true, bias: true, path: pathDirect},
		{name: "kernel larger than input", n: 1, cin: 2, cout: 3, h: 3, w: 2, kh: 5, kw: 5, pads: [4]int{2, 2, 2, 2}, path: pathDirect},
		{name: "one channel", n: 1, cin: 1, cout: 1, h: 1, w: 1, kh: 1, kw: 1, bias: true, path: pathPointwise},
		{name: "batch 3 strided 1x1", n: 3, cin: 40, cout: 20, h: 6, w: 7, kh: 1, kw: 1, pre: true, preRelu: true, bias: true, postRelu: true, strided: true, path: pathPointwise},
		{name: "batch 3 strided 3x3", n: 3, cin: 24, cout: 32, h: 7, w: 5, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, bias: true, strided: true, path: pathDirect},
		{name: "batch 3 strided depthwise", n: 3, cin: 4, cout: 4, h: 5, w: 5, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, group: 4, strided: true, path: pathDepthwise},
		{name: "batch 3 strided stem", n: 3, cin: 3, cout: 16, h: 12, w: 12, kh: 7, kw: 7, sh: 2, sw: 2, pads: [4]int{3, 3, 3, 3}, strided: true, path: pathImplicit},
	}
}

func (tc *convCase) spec(r *rand.Rand) ConvSpec {
	g := max(tc.group, 1)
	s := ConvSpec{
		Cin: tc.cin, Cout: tc.cout, KH: tc.kh, KW: tc.kw, StrideH: tc.sh, StrideW: tc.sw,
		PadT: tc.pads[0], PadL: tc.pads[1], PadB: tc.pads[2], PadR: tc.pads[3],
		DilationH: tc.dh, DilationW: tc.dw, Group: tc.group,
		Weights: randFloats(r, tc.cout*tc.cin/g*tc.kh*tc.kw), PreRelu: tc.preRelu, PostRelu: tc.postRelu,
	}
	if tc.bias {
		s.Bias = randFloats(r, tc.cout)
	}
	if tc.pre {
		s.PreScale, s.PreShift = randFloats(r, tc.cin), randFloats(r, tc.cin)
	}
	return s
}

func randFloats(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func orOne(v int) int { return max(v, 1) }

// refConv computes the expected output with the reference Conv kernel (prologue and ReLU applied
// around it), and the same convolution of magnitudes (|pre(x)|, |W|, |B|), which scales the
// tolerance of each output.
func refConv(t *testing.T, s ConvSpec, x []float32, n, h, w int) (want, mag []float32, shape tensor.Shape) {
	t.Helper()
	xp := make([]float32, len(x))
	hw := h * w
	for i, v := range x {
		c := (i / hw) % s.Cin
		if s.PreScale != nil {
			v = v*s.PreScale[c] + s.PreShift[c]
		}
		if s.PreRelu && v < 0 {
			v = 0
		}
		xp[i] = v
	}
	op := &ops.Conv{Window: ops.Window{
		Kernel: []int{s.KH, s.KW}, Strides: []int{orOne(s.StrideH), orOne(s.StrideW)},
		Dilations: []int{orOne(s.DilationH), orOne(s.DilationW)},
		Pads:      []int{s.PadT, s.PadL, s.PadB, s.PadR}, AutoPad: ops.AutoPadNotSet,
	}, Group: orOne(s.Group), HasBias: s.Bias != nil}
	run := func(abs bool) *tensor.Tensor {
		f := func(v []float32) []float32 {
			out := append([]float32(nil), v...)
			if abs {
				for i := range out {
					out[i] = float32(math.Abs(float64(out[i])))
				}
			}
			return out
		}
		in := []*tensor.Tensor{
			tensor.FromSlice(tensor.Shape{n, s.Cin, h, w}, f(xp)),
			tensor.FromSlice(tensor.Shape{s.Cout, s.Cin / orOne(s.Group), s.KH, s.KW}, f(s.Weights)),
		}
		if s.Bias != nil {
			in = append(in, tensor.FromSlice(tensor.Shape{s.Cout}, f(s.Bias)))
		}
		y, err := ref.Kernels()["Conv"](op, in, 1)
		if err != nil {
			t.Fatalf("reference conv: %v", err)
		}
		return y[0]
	}
	y := run(false)
	want = tensor.Data[float32](y)
	if s.PostRelu {
		for i, v := range want {
			if v < 0 {
				want[i] = 0
			}
		}
	}
	return want, tensor.Data[float32](run(true)), y.Shape
}

const sentinel = float32(-12345.5)

// TestConvMatchesReference runs each case on every path that takes it, at every level this
// machine has, against the reference kernel.
func TestConvMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	workerSets := testWorkerSets(t)
	for _, level := range testLevels(t) {
		code := tableFor(level)
		for _, tc := range convCases() {
			convMatchesReference(t, r, workerSets, tc, level, code)
		}
	}
}

// convMatchesReference runs case tc on every path that takes it, with the kernels of code.
func convMatchesReference(t *testing.T, r *rand.Rand, workerSets []*Workers, tc convCase, level isa.Level, code *kernels) {
	const rtol, atol = 1e-4, 1e-5
	spec := tc.spec(r)
	conv, err := newConv2D(spec, -1, code)
	if err != nil {
		t.Fatalf("%s: %v", tc.name, err)
	}
	if conv.path != tc.path {
		t.Errorf("%s: path %d, want %d", tc.name, conv.path, tc.path)
	}
	convs := []*Conv2D{conv}
	if tc.path == pathDirect {
		// Both stride-1 algorithms, and the phase-split path, which also handles stride 1.
		for _, padded := range []int{-1, 1} {
			alt, err := newConv2D(spec, pathDirect, code)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			alt.padded = padded
			convs = append(convs, alt)
		}
		alt, err := newConv2D(spec, pathImplicit, code)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		convs = append(convs, alt)
	}
	x := randFloats(r, tc.n*tc.cin*tc.h*tc.w)
	want, mag, shape := refConv(t, spec, x, tc.n, tc.h, tc.w)
	oh, ow := conv.OutputSize(tc.h, tc.w)
	if oh != shape[2] || ow != shape[3] {
		t.Fatalf("%s: OutputSize %dx%d, reference %v", tc.name, oh, ow, shape)
	}
	for run := 0; run < len(workerSets)*len(convs); run++ {
		workers, conv := workerSets[run%len(workerSets)], convs[run/len(workerSets)]
		name := fmt.Sprintf("%s/%s/workers%d/path%d,%d", level, tc.name, run%len(workerSets), conv.path, conv.padded)
		runConvCase(t, name, conv, workers, tc, x, want, mag, rtol, atol, r)
	}
}

func TestConvSpecErrors(t *testing.T) {
	ok := ConvSpec{Cin: 4, Cout: 2, KH: 3, KW: 3, Weights: make([]float32, 2*4*9)}
	tests := []struct {
		name string
		edit func(s *ConvSpec)
	}{
		{"no channels", func(s *ConvSpec) { s.Cin = 0 }},
		{"group does not divide", func(s *ConvSpec) { s.Group = 3 }},
		{"short weights", func(s *ConvSpec) { s.Weights = s.Weights[1:] }},
		{"bias length", func(s *ConvSpec) { s.Bias = make([]float32, 3) }},
		{"scale without shift", func(s *ConvSpec) { s.PreScale = make([]float32, 4) }},
		{"short prologue", func(s *ConvSpec) { s.PreScale, s.PreShift = make([]float32, 3), make([]float32, 3) }},
		{"negative pad", func(s *ConvSpec) { s.PadL = -1 }},
		{"negative stride", func(s *ConvSpec) { s.StrideH = -2 }},
	}
	for _, tc := range tests {
		s := ok
		tc.edit(&s)
		if _, err := NewConv2D(s); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := NewConv2D(ok); err != nil {
		t.Fatal(err)
	}
}

func TestConvRunErrors(t *testing.T) {
	conv, err := NewConv2D(ConvSpec{Cin: 2, Cout: 3, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Weights: make([]float32, 54)})
	if err != nil {
		t.Fatal(err)
	}
	in := Dense(make([]float32, 2*5*5), 1, 2, 5, 5)
	out := Dense(make([]float32, 3*5*5), 1, 3, 5, 5)
	scratch := make([]float32, conv.ScratchSize(1, 5, 5, 1))
	if err := conv.Run(nil, in, out, scratch); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name    string
		in, out Image
		scratch []float32
	}{
		{"wrong input channels", Dense(make([]float32, 3*5*5), 1, 3, 5, 5), out, scratch},
		{"wrong output size", in, Dense(make([]float32, 3*4*5), 1, 3, 4, 5), scratch},
		{"short scratch", in, out, scratch[:len(scratch)-1]},
		{"short input data", Image{Data: make([]float32, 10), N: 1, C: 2, H: 5, W: 5, BatchStride: 50}, out, scratch},
	}
	for _, tc := range bad {
		if err := conv.Run(nil, tc.in, tc.out, tc.scratch); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	tiny, err := NewConv2D(ConvSpec{Cin: 1, Cout: 1, KH: 5, KW: 5, Weights: make([]float32, 25)})
	if err != nil {
		t.Fatal(err)
	}
	if oh, ow := tiny.OutputSize(3, 3); oh > 0 && ow > 0 {
		t.Errorf("5x5 kernel on 3x3 input: output %dx%d", oh, ow)
	}
}

func TestConvRunDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	workers := NewWorkers(2)
	defer workers.Close()
	for _, tc := range []convCase{
		{name: "1x1", n: 2, cin: 32, cout: 16, h: 8, w: 8, kh: 1, kw: 1, pre: true, preRelu: true},
		{name: "3x3", n: 2, cin: 16, cout: 8, h: 8, w: 8, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, bias: true},
		{name: "depthwise", n: 2, cin: 4, cout: 4, h: 8, w: 8, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, group: 4},
	} {
		for _, level := range testLevels(t) {
			conv, err := newConv2D(tc.spec(r), -1, tableFor(level))
			if err != nil {
				t.Fatal(err)
			}
			oh, ow := conv.OutputSize(tc.h, tc.w)
			in := Dense(randFloats(r, tc.n*tc.cin*tc.h*tc.w), tc.n, tc.cin, tc.h, tc.w)
			out := Dense(make([]float32, tc.n*tc.cout*oh*ow), tc.n, tc.cout, oh, ow)
			scratch := make([]float32, conv.ScratchSize(tc.n, tc.h, tc.w, 2))
			if a := testing.AllocsPerRun(20, func() {
				if err := conv.Run(workers, in, out, scratch); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("%s %s: Run allocates %.1f times", level, tc.name, a)
			}
		}
	}
}

// TestConvSmallRunsInline: a convolution under parallelMinMACs runs on the calling goroutine
// whatever the workers (its scratch is one thread's), and a larger one splits.
func TestConvSmallRunsInline(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	small := convCase{n: 1, cin: 16, cout: 4, h: 16, w: 16, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}}
	large := convCase{n: 1, cin: 64, cout: 64, h: 28, w: 28, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}}
	for _, c := range []struct {
		tc     convCase
		inline bool
	}{{small, true}, {large, false}} {
		conv, err := NewConv2D(c.tc.spec(r))
		if err != nil {
			t.Fatal(err)
		}
		if got := conv.runThreads(c.tc.n, c.tc.h, c.tc.w, 2) == 1; got != c.inline {
			t.Errorf("%dx%d->%d at %dx%d: inline %v, want %v", c.tc.kh, c.tc.cin, c.tc.cout, c.tc.h, c.tc.w, got, c.inline)
		}
		if c.inline && conv.ScratchSize(1, c.tc.h, c.tc.w, 2) != conv.ScratchSize(1, c.tc.h, c.tc.w, 1) {
			t.Errorf("an inline convolution's scratch depends on the threads")
		}
	}
}

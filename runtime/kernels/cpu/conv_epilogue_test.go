package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestConvEpilogueMatchesReference runs every epilogue (each activation, with and without a
// residual) on every convolution algorithm, at every level this machine has, with dense and
// channel-slice operands, against the reference FusedConv kernel (convolution, then the Add and
// the activation's own reference kernel).
func TestConvEpilogueMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	workerSets := testWorkerSets(t)
	shapes := []convCase{
		{name: "1x1", n: 2, cin: 24, cout: 20, h: 7, w: 9, kh: 1, kw: 1, bias: true},
		{name: "3x3 direct", n: 1, cin: 8, cout: 11, h: 10, w: 9, kh: 3, kw: 3, pads: [4]int{1, 0, 2, 1}, bias: true},
		{name: "3x3 winograd", n: 1, cin: 64, cout: 64, h: 28, w: 28, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, bias: true},
		{name: "3x3 winograd batch 2 strided", n: 2, cin: 32, cout: 24, h: 14, w: 14, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, strided: true},
		{name: "3x3 padded (3 input channels: no Winograd)", n: 1, cin: 3, cout: 8, h: 30, w: 30, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, bias: true},
		{name: "3x3/2 implicit", n: 2, cin: 6, cout: 9, h: 13, w: 10, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int{1, 1, 1, 1}},
		{name: "depthwise 3x3", n: 2, cin: 6, cout: 6, h: 9, w: 8, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, group: 6, bias: true},
		{name: "depthwise 5x5/2", n: 1, cin: 5, cout: 5, h: 11, w: 12, kh: 5, kw: 5, sh: 2, sw: 2, pads: [4]int{2, 2, 2, 2}, group: 5, bias: true},
		{name: "batch 3 strided 1x1", n: 3, cin: 16, cout: 12, h: 5, w: 6, kh: 1, kw: 1, bias: true, strided: true},
		{name: "batch 3 strided 3x3", n: 3, cin: 24, cout: 32, h: 7, w: 5, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, strided: true},
	}
	acts := []ops.Activation{
		{},
		{Kind: ops.ActRelu},
		{Kind: ops.ActClip, Alpha: 0, Beta: 6},
		{Kind: ops.ActLeakyRelu, Alpha: 0.1},
		{Kind: ops.ActHardSigmoid, Alpha: 0.2, Beta: 0.5},
		{Kind: ops.ActHardSwish},
		{Kind: ops.ActSigmoid},
		{Kind: ops.ActSiLU},
	}
	algorithms := map[string]bool{}
	for _, level := range testLevels(t) {
		code := tableFor(level)
		for _, tc := range shapes {
			for _, act := range acts {
				for _, residual := range []bool{false, true} {
					if act.Kind == ops.ActNone && !residual {
						continue
					}
					spec := tc.spec(r)
					spec.Post, spec.Residual = act, residual
					name := fmt.Sprintf("%s/%s/%v/residual=%v", level, tc.name, act.Kind, residual)
					alg := epilogueCase(t, r, name, spec, tc, code, workerSets)
					algorithms[alg] = true
				}
			}
		}
	}
	for _, want := range []string{"gemm-1x1", "gemm-direct", "gemm-direct-padded", "winograd-f", "implicit-gemm", "depthwise"} {
		found := false
		for a := range algorithms {
			found = found || a == want || (strings.HasSuffix(want, "-f") && strings.HasPrefix(a, want))
		}
		if !found {
			t.Errorf("no case ran the %s algorithm (ran %v)", want, algorithms)
		}
	}
}

// epilogueCase checks one spec with an epilogue and returns the algorithm the conv used.
func epilogueCase(t *testing.T, r *rand.Rand, name string, spec ConvSpec, tc convCase, code *kernels, workerSets []*Workers) string {
	t.Helper()
	conv, err := newConv2D(spec, -1, code)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	oh, ow := conv.OutputSize(tc.h, tc.w)
	x := randFloats(r, tc.n*tc.cin*tc.h*tc.w)
	z := randFloats(r, tc.n*tc.cout*oh*ow)
	want, mag := refFusedConv(t, spec, x, z, tc.n, tc.h, tc.w, oh, ow)
	// Operands: dense, or channel slices (channels 1.. of buffers 2 channels wider).
	extra := 0
	if tc.strided {
		extra = 2
	}
	item := (tc.cout + extra) * oh * ow
	image := func(data []float32, c int) Image {
		return Image{Data: data[min(extra, 1)*oh*ow:], N: tc.n, C: c, H: oh, W: ow, BatchStride: item}
	}
	for wi, workers := range workerSets {
		threads := 1
		if workers != nil {
			threads = workers.Threads()
		}
		inImg := Dense(x, tc.n, tc.cin, tc.h, tc.w)
		outBuf := make([]float32, tc.n*item)
		for i := range outBuf {
			outBuf[i] = sentinel
		}
		out := image(outBuf, tc.cout)
		var res Image
		if spec.Residual {
			resBuf := make([]float32, tc.n*item)
			for b := 0; b < tc.n; b++ {
				copy(resBuf[b*item+min(extra, 1)*oh*ow:], z[b*tc.cout*oh*ow:(b+1)*tc.cout*oh*ow])
			}
			res = image(resBuf, tc.cout)
		}
		scratch := make([]float32, conv.ScratchSize(tc.n, tc.h, tc.w, threads))
		if err := conv.RunResidual(workers, inImg, res, out, scratch); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for b := 0; b < tc.n; b++ {
			got := out.Item(b)[:tc.cout*oh*ow]
			for i, g := range got {
				k := b*tc.cout*oh*ow + i
				w := want[k]
				if !(math.Abs(float64(g-w)) <= 1e-5+1e-4*float64(mag[k])) && !(math.IsNaN(float64(g)) && math.IsNaN(float64(w))) {
					t.Fatalf("%s/workers%d: item %d element %d = %g, want %g", name, wi, b, i, g, w)
				}
			}
		}
		if extra > 0 {
			// The channels around the slice are untouched.
			for b := 0; b < tc.n; b++ {
				for _, i := range []int{b * item, b*item + (tc.cout+1)*oh*ow} {
					if outBuf[i] != sentinel {
						t.Fatalf("%s: wrote outside the output slice at %d", name, i)
					}
				}
			}
		}
	}
	return conv.Algorithm(tc.n, tc.h, tc.w, 2)
}

// refFusedConv runs the reference FusedConv for spec (prologue, conv, residual z, activation) and
// returns its output and a magnitude per element that scales the tolerance: the convolution of
// magnitudes plus |z|, times the activation's slope bound (1 for all of them).
func refFusedConv(t *testing.T, spec ConvSpec, x, z []float32, n, h, w, oh, ow int) (want, mag []float32) {
	t.Helper()
	plain := spec
	plain.PostRelu, plain.Post, plain.Residual = false, ops.Activation{}, false
	_, mag, _ = refConv(t, plain, x, n, h, w)
	f := &ops.FusedConv{
		Conv: ops.Conv{Window: ops.Window{
			Kernel: []int{spec.KH, spec.KW}, Strides: []int{orOne(spec.StrideH), orOne(spec.StrideW)},
			Dilations: []int{orOne(spec.DilationH), orOne(spec.DilationW)},
			Pads:      []int{spec.PadT, spec.PadL, spec.PadB, spec.PadR}, AutoPad: ops.AutoPadNotSet,
		}, Group: orOne(spec.Group), HasBias: spec.Bias != nil},
		PreScale: spec.PreScale, PreShift: spec.PreShift, PreRelu: spec.PreRelu,
		Residual: spec.Residual, Post: spec.Post,
	}
	if spec.PostRelu {
		f.Post = ops.Activation{Kind: ops.ActRelu}
	}
	in := []*tensor.Tensor{
		tensor.FromSlice(tensor.Shape{n, spec.Cin, h, w}, append([]float32(nil), x...)),
		tensor.FromSlice(tensor.Shape{spec.Cout, spec.Cin / orOne(spec.Group), spec.KH, spec.KW}, append([]float32(nil), spec.Weights...)),
		nil,
	}
	if spec.Bias != nil {
		in[2] = tensor.FromSlice(tensor.Shape{spec.Cout}, append([]float32(nil), spec.Bias...))
	}
	if spec.Residual {
		in = append(in, tensor.FromSlice(tensor.Shape{n, spec.Cout, oh, ow}, append([]float32(nil), z...)))
		for i := range mag {
			mag[i] += float32(math.Abs(float64(z[i])))
		}
	}
	y, err := ref.Kernels()["FusedConv"](f, in, 1)
	if err != nil {
		t.Fatalf("reference FusedConv: %v", err)
	}
	return tensor.Data[float32](y[0]), mag
}

func TestConvEpilogueErrors(t *testing.T) {
	base := ConvSpec{Cin: 2, Cout: 3, KH: 1, KW: 1, Weights: make([]float32, 6)}
	both := base
	both.PostRelu, both.Post = true, ops.Activation{Kind: ops.ActSigmoid}
	if _, err := NewConv2D(both); err == nil {
		t.Error("PostRelu with a Sigmoid epilogue: no error")
	}
	unknown := base
	unknown.Post = ops.Activation{Kind: 200}
	if _, err := NewConv2D(unknown); err == nil {
		t.Error("unknown activation: no error")
	}
	in := Dense(make([]float32, 2*4), 1, 2, 2, 2)
	out := Dense(make([]float32, 3*4), 1, 3, 2, 2)
	res := Dense(make([]float32, 3*4), 1, 3, 2, 2)
	plain, err := NewConv2D(base)
	if err != nil {
		t.Fatal(err)
	}
	withRes := base
	withRes.Residual = true
	rc, err := NewConv2D(withRes)
	if err != nil {
		t.Fatal(err)
	}
	scratch := make([]float32, rc.ScratchSize(1, 2, 2, 1))
	for _, c := range []struct {
		name string
		conv *Conv2D
		res  Image
	}{
		{"residual given to a conv without one", plain, res},
		{"no residual given", rc, Image{}},
		{"residual of the wrong shape", rc, Dense(make([]float32, 2*4), 1, 2, 2, 2)},
		{"short residual data", rc, Image{Data: make([]float32, 5), N: 1, C: 3, H: 2, W: 2, BatchStride: 12}},
	} {
		if err := c.conv.RunResidual(nil, in, c.res, out, scratch); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if err := rc.RunResidual(nil, in, res, out, scratch); err != nil {
		t.Errorf("valid residual: %v", err)
	}
}

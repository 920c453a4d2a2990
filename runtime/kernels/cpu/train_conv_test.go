package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/train/refgrad"
)

// toCM converts an NCHW float32 slice to channel-major (CNHW) with channels stride floats apart
// (0: dense); the gaps hold NaN, which no kernel may read.
func toCMs(x []float32, n, c, hw, stride int) []float32 {
	if stride == 0 {
		stride = n * hw
	}
	out := make([]float32, (c-1)*stride+n*hw)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			copy(out[j*stride+i*hw:j*stride+(i+1)*hw], x[(i*c+j)*hw:(i*c+j+1)*hw])
		}
	}
	return out
}

func toCM(x []float32, n, c, hw int) []float32 { return toCMs(x, n, c, hw, 0) }

// fromCMs converts channel-major data with channel stride stride back to NCHW.
func fromCMs(x []float32, n, c, hw, stride int) []float32 {
	if stride == 0 {
		stride = n * hw
	}
	out := make([]float32, n*c*hw)
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			copy(out[(i*c+j)*hw:(i*c+j+1)*hw], x[j*stride+i*hw:j*stride+(i+1)*hw])
		}
	}
	return out
}

func fromCM(x []float32, n, c, hw int) []float32 { return fromCMs(x, n, c, hw, 0) }

func f64Tensor(shape tensor.Shape, x []float32) *tensor.Tensor {
	t := tensor.New(tensor.Float64, shape)
	for i, v := range x {
		tensor.Data[float64](t)[i] = float64(v)
	}
	return t
}

// closeF32 reports the first element where got and want (float64) differ by more than
// atol + rtol*|want|.
func closeF32(t *testing.T, what string, got []float32, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > atol+rtol*math.Abs(want[i]) || math.IsNaN(d) {
			t.Fatalf("%s: element %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func TestConvCM(t *testing.T) {
	cases := []struct {
		name                   string
		n, cin, cout, h, w     int
		kh, kw, sh, sw, dh, dw int
		pads                   [4]int
		pre, relu, bias        bool
		gap                    int // extra floats between channel rows
	}{
		{name: "1x1", n: 3, cin: 29, cout: 19, h: 5, w: 7, kh: 1, kw: 1},
		{name: "1x1 prologue", n: 2, cin: 40, cout: 48, h: 8, w: 8, kh: 1, kw: 1, pre: true, relu: true, bias: true},
		{name: "1x1 prologue channel gaps", n: 2, cin: 40, cout: 48, h: 8, w: 8, kh: 1, kw: 1, pre: true, relu: true, bias: true, gap: 16},
		{name: "3x3 16x16 channel gaps", n: 3, cin: 20, cout: 12, h: 16, w: 16, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, pre: true, relu: true, gap: 48},
		{name: "3x3 channel gaps", n: 2, cin: 10, cout: 12, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, gap: 3},
		{name: "stride 2 channel gaps", n: 2, cin: 3, cout: 8, h: 13, w: 11, kh: 7, kw: 7, sh: 2, sw: 2, pads: [4]int{3, 3, 3, 3}, gap: 5},
		{name: "3x3 pad 1", n: 2, cin: 48, cout: 12, h: 8, w: 8, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}},
		{name: "3x3 pad 1 16x16", n: 3, cin: 20, cout: 12, h: 16, w: 16, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, pre: true, relu: true, bias: true},
		{name: "3x3 dilated 30x29", n: 2, cin: 9, cout: 10, h: 30, w: 29, kh: 3, kw: 3, dh: 2, dw: 1, pads: [4]int{2, 1, 2, 1}, pre: true},
		{name: "3x3 pad 1 prologue", n: 3, cin: 10, cout: 7, h: 6, w: 5, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}, pre: true, relu: true},
		{name: "3x3 stem", n: 2, cin: 3, cout: 24, h: 9, w: 9, kh: 3, kw: 3, pads: [4]int{1, 1, 1, 1}},
		{name: "asymmetric pads", n: 1, cin: 5, cout: 6, h: 7, w: 6, kh: 3, kw: 2, pads: [4]int{2, 0, 0, 1}, bias: true},
		{name: "dilation 2", n: 2, cin: 4, cout: 5, h: 9, w: 8, kh: 3, kw: 3, dh: 2, dw: 2, pads: [4]int{2, 2, 2, 2}, pre: true},
		{name: "pads wider than kernel", n: 2, cin: 3, cout: 4, h: 5, w: 4, kh: 3, kw: 3, pads: [4]int{3, 2, 4, 1}},
		{name: "stride 2 7x7", n: 2, cin: 3, cout: 8, h: 13, w: 11, kh: 7, kw: 7, sh: 2, sw: 2, pads: [4]int{3, 3, 3, 3}, bias: true},
		{name: "1x1 stride 2", n: 2, cin: 6, cout: 5, h: 7, w: 6, kh: 1, kw: 1, sh: 2, sw: 2, pre: true, relu: true},
		{name: "stride 3x2 dilated", n: 1, cin: 4, cout: 3, h: 12, w: 11, kh: 2, kw: 3, sh: 3, sw: 2, dh: 2, dw: 1, pads: [4]int{1, 0, 2, 1}},
	}
	workers := NewWorkers(3)
	defer workers.Close()
	levels := testLevels(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 7))
			c, err := NewConvCM(ConvCMSpec{N: tc.n, Cin: tc.cin, H: tc.h, W: tc.w, Cout: tc.cout, KH: tc.kh, KW: tc.kw,
				StrideH: tc.sh, StrideW: tc.sw, PadT: tc.pads[0], PadL: tc.pads[1], PadB: tc.pads[2], PadR: tc.pads[3],
				DilationH: tc.dh, DilationW: tc.dw})
			if err != nil {
				t.Fatal(err)
			}
			xs, ys := tc.n*tc.h*tc.w+tc.gap, tc.n*c.OH*c.OW+tc.gap
			c, err = NewConvCM(ConvCMSpec{N: tc.n, Cin: tc.cin, H: tc.h, W: tc.w, Cout: tc.cout, KH: tc.kh, KW: tc.kw,
				StrideH: tc.sh, StrideW: tc.sw, PadT: tc.pads[0], PadL: tc.pads[1], PadB: tc.pads[2], PadR: tc.pads[3],
				DilationH: tc.dh, DilationW: tc.dw, XStride: xs, YStride: ys})
			if err != nil {
				t.Fatal(err)
			}
			hw, ohw := tc.h*tc.w, c.OH*c.OW
			x := randFloats(r, tc.n*tc.cin*hw)
			w := randFloats(r, tc.cout*tc.cin*tc.kh*tc.kw)
			dy := randFloats(r, tc.n*tc.cout*ohw)
			var bias []float32
			if tc.bias {
				bias = randFloats(r, tc.cout)
			}
			var pre *Prologue
			xp := append([]float32(nil), x...) // pre(x), NCHW
			if tc.pre || tc.relu {
				pre = &Prologue{ReLU: tc.relu}
				if tc.pre {
					pre.Scale, pre.Shift = randFloats(r, tc.cin), randFloats(r, tc.cin)
				}
				for i := range xp {
					ch := i / hw % tc.cin
					v := xp[i]
					if pre.Scale != nil {
						v = v*pre.Scale[ch] + pre.Shift[ch]
					}
					if pre.ReLU && v < 0 {
						v = 0
					}
					xp[i] = v
				}
			}
			op := &ops.Conv{Window: ops.Window{Kernel: []int{tc.kh, tc.kw}, Strides: []int{max(tc.sh, 1), max(tc.sw, 1)},
				Dilations: []int{max(tc.dh, 1), max(tc.dw, 1)}, Pads: tc.pads[:], AutoPad: ops.AutoPadNotSet}, Group: 1, HasBias: bias != nil}
			xt := f64Tensor(tensor.Shape{tc.n, tc.cin, tc.h, tc.w}, xp)
			wt := f64Tensor(tensor.Shape{tc.cout, tc.cin, tc.kh, tc.kw}, w)
			in := []*tensor.Tensor{xt, wt}
			if bias != nil {
				in = append(in, f64Tensor(tensor.Shape{tc.cout}, bias))
			}
			want, err := ref.Kernels()["Conv"](op, in, 1)
			if err != nil {
				t.Fatal(err)
			}
			dyt := f64Tensor(tensor.Shape{tc.n, tc.cout, c.OH, c.OW}, dy)
			dxWant, dwWant, _, err := refgrad.Conv(op, xt, wt, dyt)
			if err != nil {
				t.Fatal(err)
			}
			const atol, rtol = 1e-4, 1e-4
			for _, level := range levels {
				t.Run(level.String(), func(t *testing.T) {
					c, err := newConvCM(c.Spec(), true, tableFor(level))
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range []*Workers{nil, workers} {
						scratch := make([]float32, c.ScratchSize(3))
						y := make([]float32, (tc.cout-1)*ys+tc.n*ohw)
						if err := c.Forward(p, toCMs(x, tc.n, tc.cin, hw, xs), pre, w, bias, y, false, scratch); err != nil {
							t.Fatal(err)
						}
						closeF32(t, "forward", fromCMs(y, tc.n, tc.cout, ohw, ys), want[0].Float64s(), atol, rtol)

						// The input gradient, added onto ones.
						dx := make([]float32, (tc.cin-1)*xs+tc.n*hw)
						for i := range dx {
							dx[i] = 1
						}
						if err := c.InputGrad(p, toCMs(dy, tc.n, tc.cout, ohw, ys), w, dx, true, scratch); err != nil {
							t.Fatal(err)
						}
						wantDx := dxWant.Float64s()
						for i := range wantDx {
							wantDx[i]++
						}
						closeF32(t, "input gradient", fromCMs(dx, tc.n, tc.cin, hw, xs), wantDx, atol, rtol)

						dw := make([]float32, len(w))
						stage := make([]float32, c.StagingSize())
						for i := range stage {
							stage[i] = float32(math.NaN()) // the padding must be written
						}
						if err := c.WeightGrad(p, toCMs(x, tc.n, tc.cin, hw, xs), pre, toCMs(dy, tc.n, tc.cout, ohw, ys), nil, dw, false, stage, scratch); err != nil {
							t.Fatal(err)
						}
						ga, err := c.PackGrad(toCMs(dy, tc.n, tc.cout, ohw, ys))
						if err != nil {
							t.Fatal(err)
						}
						dw2 := make([]float32, len(w))
						if err := c.WeightGrad(p, toCMs(x, tc.n, tc.cin, hw, xs), pre, nil, ga, dw2, false, stage, scratch); err != nil {
							t.Fatal(err)
						}
						closeF32(t, "weight gradient from PackGrad", dw2, dwWant.Float64s(), atol, rtol)
						closeF32(t, "weight gradient", dw, dwWant.Float64s(), atol, rtol)
						sameBits(t, "weight gradient packed chunk by chunk against PackGrad", dw, dw2)

						if !c.SplitsInputGrad() {
							if err := c.InputGradChannels(p, toCMs(dy, tc.n, tc.cout, ohw, ys), w, dx, 0, 1, false, scratch); err == nil {
								t.Errorf("InputGradChannels of a strided convolution did not fail")
							}
							continue
						}
						// Channel ranges of the input gradient, bit for bit the channels of InputGrad.
						dyCM := toCMs(dy, tc.n, tc.cout, ohw, ys)
						full := make([]float32, (tc.cin-1)*xs+tc.n*hw)
						if err := c.InputGrad(p, dyCM, w, full, false, scratch); err != nil {
							t.Fatal(err)
						}
						for _, step := range []int{1, 3, tc.cin} {
							for c0 := 0; c0 < tc.cin; c0 += step {
								c1 := min(tc.cin, c0+step)
								part := make([]float32, (c1-c0-1)*xs+tc.n*hw)
								if err := c.InputGradChannels(p, dyCM, w, part, c0, c1, false, scratch); err != nil {
									t.Fatal(err)
								}
								for ci := c0; ci < c1; ci++ {
									sameBits(t, "input gradient channel range", part[(ci-c0)*xs:][:tc.n*hw], full[ci*xs:][:tc.n*hw])
								}
							}
						}
						for _, r := range [][2]int{{-1, 1}, {0, tc.cin + 1}, {2, 2}} {
							if err := c.InputGradChannels(p, dyCM, w, full, r[0], r[1], false, scratch); err == nil {
								t.Errorf("InputGradChannels(%d, %d) of %d channels did not fail", r[0], r[1], tc.cin)
							}
						}
					}
				})
			}
		})
	}
}

// sameBits fails the test unless got and want hold the same float32 bit patterns.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %g, want %g (bit for bit)", what, i, got[i], want[i])
		}
	}
}

// TestConvCMReuse checks the memory reuse of training's backward pass: ConvCMs sharing their
// working memory (Share) and one GradA packed layer after layer (PackGradInto) give the results
// of fresh ones bit for bit, and once grown they allocate nothing. The layers alternate, as in a
// dense block, between a 3x3 convolution whose gradient packs in several small chunks and a 1x1
// one whose gradient packs in one large chunk.
func TestConvCMReuse(t *testing.T) {
	specs := []ConvCMSpec{
		{N: 3, Cin: 16, H: 32, W: 32, Cout: 8, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, // 3 chunks of 2048 pixels
		{N: 3, Cin: 24, H: 32, W: 32, Cout: 16, KH: 1, KW: 1},                                    // 1 chunk
	}
	type layer struct {
		fresh, shared *ConvCM
		x, w, dy      []float32
		stage         []float32
	}
	r := rand.New(rand.NewPCG(5, 11))
	var sh ConvShared
	var layers []layer
	need := 0
	for _, s := range specs {
		var l layer
		var err error
		if l.fresh, err = NewConvCM(s); err != nil {
			t.Fatal(err)
		}
		if l.shared, err = NewConvCM(s); err != nil {
			t.Fatal(err)
		}
		l.shared.Share(&sh)
		l.x = randFloats(r, s.Cin*s.N*s.H*s.W)
		l.w = randFloats(r, s.Cout*s.Cin*s.KH*s.KW)
		l.dy = randFloats(r, s.Cout*s.N*l.fresh.OH*l.fresh.OW)
		l.stage = make([]float32, l.fresh.StagingSize())
		need = max(need, l.fresh.ScratchSize(1))
		layers = append(layers, l)
	}
	scratch := make([]float32, need)
	var ga *GradA
	// pass runs every layer's three products with the shared ConvCMs and the reused GradA, and
	// returns their results.
	pass := func() [][3][]float32 {
		var out [][3][]float32
		for _, l := range layers {
			s := l.shared.Spec()
			y := make([]float32, s.Cout*s.N*l.shared.OH*l.shared.OW)
			dx := make([]float32, len(l.x))
			dw, dw2 := make([]float32, len(l.w)), make([]float32, len(l.w))
			var err error
			if ga, err = l.shared.PackGradInto(ga, l.dy); err != nil {
				t.Fatal(err)
			}
			for _, err := range []error{
				l.shared.Forward(nil, l.x, nil, l.w, nil, y, false, scratch),
				l.shared.InputGrad(nil, l.dy, l.w, dx, false, scratch),
				l.shared.WeightGrad(nil, l.x, nil, nil, ga, dw, false, l.stage, scratch),
				l.shared.WeightGrad(nil, l.x, nil, l.dy, nil, dw2, false, l.stage, scratch),
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
			sameBits(t, "weight gradient packed chunk by chunk", dw2, dw)
			out = append(out, [3][]float32{y, dx, dw})
		}
		return out
	}
	got := pass()
	for i, l := range layers {
		s := l.fresh.Spec()
		y := make([]float32, s.Cout*s.N*l.fresh.OH*l.fresh.OW)
		dx := make([]float32, len(l.x))
		dw := make([]float32, len(l.w))
		fga, err := l.fresh.PackGrad(l.dy)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			l.fresh.Forward(nil, l.x, nil, l.w, nil, y, false, scratch),
			l.fresh.InputGrad(nil, l.dy, l.w, dx, false, scratch),
			l.fresh.WeightGrad(nil, l.x, nil, nil, fga, dw, false, l.stage, scratch),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		sameBits(t, fmt.Sprintf("layer %d forward", i), got[i][0], y)
		sameBits(t, fmt.Sprintf("layer %d input gradient", i), got[i][1], dx)
		sameBits(t, fmt.Sprintf("layer %d weight gradient", i), got[i][2], dw)
	}
	// Grown by the first pass, the shared memory and the GradA serve every later one.
	bufs := make([][3][]float32, len(layers))
	for i, l := range layers {
		s := l.shared.Spec()
		bufs[i] = [3][]float32{make([]float32, s.Cout*s.N*l.shared.OH*l.shared.OW), make([]float32, len(l.x)), make([]float32, len(l.w))}
	}
	allocs := testing.AllocsPerRun(3, func() {
		for i, l := range layers {
			ga, _ = l.shared.PackGradInto(ga, l.dy)
			_ = l.shared.Forward(nil, l.x, nil, l.w, nil, bufs[i][0], false, scratch)
			_ = l.shared.InputGrad(nil, l.dy, l.w, bufs[i][1], false, scratch)
			_ = l.shared.WeightGrad(nil, l.x, nil, nil, ga, bufs[i][2], false, l.stage, scratch)
			_ = l.shared.WeightGrad(nil, l.x, nil, l.dy, nil, bufs[i][2], false, l.stage, scratch)
		}
	})
	if allocs != 0 {
		t.Errorf("a pass over the layers allocates %v times once the memory has grown, want 0", allocs)
	}
}

package builders

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// variants returns small configs covering every layer/stem combination.
func variants() map[string]Config {
	v := map[string]Config{}
	for _, stem := range []Stem{StemCIFAR, StemImageNet} {
		for _, bn := range []int{0, 4} {
			for _, theta := range []float64{1, 0.5} {
				c := Config{Growth: 3, Blocks: []int{2, 1, 3}, InitFeatures: 5, BNSize: bn, Compression: theta,
					Stem: stem, Classes: 4, InputSize: 33}
				if stem == StemImageNet {
					c.InputSize = 67
				}
				v[c.Variant()+"/"+stem.String()] = c
			}
		}
	}
	return v
}

// isRunningStat reports whether initializer name is a BN buffer rather than a parameter.
func isRunningStat(name string) bool {
	return strings.HasSuffix(name, ".running_mean") || strings.HasSuffix(name, ".running_var")
}

func elems(tp *onnxpb.TensorProto) int64 {
	n := int64(1)
	for _, d := range tp.Dims {
		n *= d
	}
	return n
}

func opCounts(m *onnxpb.ModelProto) map[string]int {
	h := map[string]int{}
	for _, n := range m.Graph.Node {
		h[n.GetOpType()]++
	}
	return h
}

// checkWellFormed verifies what any consumer relies on: unique names, every node input defined
// before use (topological order), the declared graph input and output, float32 initializers whose
// raw data matches their dims.
func checkWellFormed(t *testing.T, m *onnxpb.ModelProto) {
	t.Helper()
	g := m.Graph
	defined := map[string]bool{"input": true}
	for _, tp := range g.Initializer {
		if defined[tp.GetName()] {
			t.Fatalf("initializer %s defined twice", tp.GetName())
		}
		defined[tp.GetName()] = true
		if tp.GetDataType() != int32(tensor.Float32) || int64(len(tp.RawData)) != 4*elems(tp) {
			t.Fatalf("initializer %s: type %d, %d raw bytes for dims %v", tp.GetName(), tp.GetDataType(), len(tp.RawData), tp.Dims)
		}
	}
	names := map[string]bool{}
	for _, n := range g.Node {
		if names[n.GetName()] {
			t.Fatalf("node name %s used twice", n.GetName())
		}
		names[n.GetName()] = true
		for _, in := range n.Input {
			if !defined[in] {
				t.Fatalf("node %s reads %s before it is defined", n.GetName(), in)
			}
		}
		for _, out := range n.Output {
			if defined[out] {
				t.Fatalf("node %s redefines %s", n.GetName(), out)
			}
			defined[out] = true
		}
	}
	if len(g.Input) != 1 || g.Input[0].GetName() != "input" || len(g.Output) != 1 || g.Output[0].GetName() != "logits" {
		t.Fatalf("graph inputs %v outputs %v", g.Input, g.Output)
	}
	if !defined["logits"] {
		t.Fatal("no node produces logits")
	}
}

// TestParamsMatchesBuild checks the closed-form Params against the initializers Build emits: the
// training form holds exactly the parameters plus two running statistics per BN channel; the
// inference form replaces each folded BN's γ, β (and statistics) by one bias per channel.
func TestParamsMatchesBuild(t *testing.T) {
	for name, cfg := range variants() {
		t.Run(name, func(t *testing.T) {
			m, err := Build(cfg, BuildOptions{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			checkWellFormed(t, m)
			var params, stats int64
			for _, tp := range m.Graph.Initializer {
				if isRunningStat(tp.GetName()) {
					stats += elems(tp)
				} else {
					params += elems(tp)
				}
			}
			if want := Params(cfg); params != want {
				t.Errorf("training form: initializers hold %d parameters, Params = %d", params, want)
			}
			bnCount := opCounts(m)["BatchNormalization"]

			mi, err := Build(cfg, BuildOptions{Seed: 1, Inference: true})
			if err != nil {
				t.Fatal(err)
			}
			checkWellFormed(t, mi)
			var foldedCh, iparams int64
			for _, tp := range mi.Graph.Initializer {
				if strings.HasPrefix(tp.GetName(), "onnx::Conv_") && len(tp.Dims) == 1 {
					foldedCh += tp.Dims[0]
				}
				if !isRunningStat(tp.GetName()) {
					iparams += elems(tp)
				}
			}
			if want := Params(cfg) - foldedCh; iparams != want {
				t.Errorf("inference form: %d values, want Params - folded channels = %d", iparams, want)
			}
			folds := 0
			if cfg.Stem == StemImageNet {
				folds++
			}
			if cfg.Bottleneck() {
				for _, n := range cfg.Blocks {
					folds += n
				}
			}
			if got := bnCount - opCounts(mi)["BatchNormalization"]; got != folds {
				t.Errorf("inference form folded %d BNs, want %d", got, folds)
			}
		})
	}
}

// TestBuildTinyOps checks the node histogram of the tiny architecture in both forms against the
// PyTorch export (minus its Constant+Pad before the AveragePool).
func TestBuildTinyOps(t *testing.T) {
	tests := []struct {
		inference bool
		want      map[string]int
	}{
		{false, map[string]int{"Conv": 10, "Relu": 10, "BatchNormalization": 10, "Concat": 6, "AveragePool": 1,
			"GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}},
		{true, map[string]int{"Conv": 10, "Relu": 10, "BatchNormalization": 6, "Concat": 6, "AveragePool": 1,
			"GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}},
	}
	for _, tt := range tests {
		m, err := Build(tinyConfig(), BuildOptions{Seed: 7, Inference: tt.inference})
		if err != nil {
			t.Fatal(err)
		}
		if got := opCounts(m); !maps.Equal(got, tt.want) {
			t.Errorf("Inference=%v: ops %v, want %v", tt.inference, got, tt.want)
		}
		if got, want := len(m.Graph.Initializer), map[bool]int{false: 52, true: 40}[tt.inference]; got != want {
			t.Errorf("Inference=%v: %d initializers, want %d", tt.inference, got, want)
		}
	}
}

func TestBuildModelFields(t *testing.T) {
	tests := []struct {
		opset, wantOpset int
		wantIR           int64
	}{
		{0, 13, 8}, {11, 11, 8}, {13, 13, 8}, {18, 18, 8}, {19, 19, 9}, {20, 20, 9}, {21, 21, 10},
	}
	for _, tt := range tests {
		cfg := tinyConfig()
		cfg.DropRate = 0.2
		m, err := Build(cfg, BuildOptions{Opset: tt.opset})
		if err != nil {
			t.Fatalf("opset %d: %v", tt.opset, err)
		}
		if len(m.OpsetImport) != 1 || m.OpsetImport[0].GetDomain() != "" || m.OpsetImport[0].GetVersion() != int64(tt.wantOpset) {
			t.Errorf("opset %d: opset_import %v", tt.opset, m.OpsetImport)
		}
		if m.GetIrVersion() != tt.wantIR || m.GetProducerName() != "dnx" {
			t.Errorf("opset %d: ir_version %d producer %q", tt.opset, m.GetIrVersion(), m.GetProducerName())
		}
		meta := map[string]string{}
		for _, kv := range m.MetadataProps {
			meta[kv.GetKey()] = kv.GetValue()
		}
		if meta[MetaPrefix+"drop_rate"] != "0.2" || meta[MetaPrefix+"blocks"] != "2,2" || meta[MetaPrefix+"form"] != "training" {
			t.Errorf("metadata %v", meta)
		}
		// The model survives a serialization round trip through the onnx package's checks.
		data, err := onnx.MarshalModel(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := onnx.ReadModel(data); err != nil {
			t.Errorf("opset %d: ReadModel: %v", tt.opset, err)
		}
	}
	in := tinyModel(t).Graph.Input[0].GetType().GetTensorType()
	dims := in.GetShape().GetDim()
	if in.GetElemType() != int32(onnxpb.TensorProto_FLOAT) || len(dims) != 4 || dims[0].GetDimParam() != "batch" ||
		dims[1].GetDimValue() != 3 || dims[2].GetDimValue() != 16 || dims[3].GetDimValue() != 16 {
		t.Errorf("input type %v", in)
	}
	out := tinyModel(t).Graph.Output[0].GetType().GetTensorType().GetShape().GetDim()
	if len(out) != 2 || out[0].GetDimParam() != "batch" || out[1].GetDimValue() != 5 {
		t.Errorf("output shape %v", out)
	}
}

func tinyModel(t *testing.T) *onnxpb.ModelProto {
	m, err := Build(tinyConfig(), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBuildErrors(t *testing.T) {
	for _, opset := range []int{-1, 10, 22} {
		_, err := Build(tinyConfig(), BuildOptions{Opset: opset})
		if !errors.Is(err, ErrOptions) {
			t.Errorf("opset %d: err = %v, want ErrOptions", opset, err)
		}
	}
	bad := tinyConfig()
	bad.Growth = 0
	if _, err := Build(bad, BuildOptions{}); !errors.Is(err, ErrConfig) {
		t.Errorf("invalid config: err = %v, want ErrConfig", err)
	}
}

func TestBuildDeterministic(t *testing.T) {
	marshal := func(seed int64, inference bool) []byte {
		m, err := Build(tinyConfig(), BuildOptions{Seed: seed, Inference: inference})
		if err != nil {
			t.Fatal(err)
		}
		data, err := onnx.MarshalModel(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if !bytes.Equal(marshal(3, false), marshal(3, false)) || !bytes.Equal(marshal(3, true), marshal(3, true)) {
		t.Error("same seed gave different models")
	}
	if bytes.Equal(marshal(3, false), marshal(4, false)) {
		t.Error("different seeds gave the same model")
	}
}

// TestInitDistributions checks torchvision's init statistics on one large conv and the classifier,
// and the BN defaults. Tolerances: the sample std of 147,456 normals is within 1% of sigma with
// overwhelming probability.
func TestInitDistributions(t *testing.T) {
	cfg := Config{Growth: 32, Blocks: []int{2}, InitFeatures: 64, BNSize: 4, Compression: 1, Stem: StemCIFAR,
		Classes: 100, InputSize: 8}
	m, err := Build(cfg, BuildOptions{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]float32{}
	for _, tp := range m.Graph.Initializer {
		tt, err := onnx.DecodeTensor(tp, "")
		if err != nil {
			t.Fatal(err)
		}
		byName[tp.GetName()] = tensor.Data[float32](tt)
	}
	w := byName["features.denseblock1.denselayer2.conv2.weight"] // [32, 128, 3, 3]
	var sum, sq float64
	for _, v := range w {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(w))
	mean, std, want := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n)), math.Sqrt(2.0/(128*9))
	if math.Abs(mean) > 0.01*want || math.Abs(std-want) > 0.01*want {
		t.Errorf("conv2 weight mean %g std %g, want 0 and %g", mean, std, want)
	}
	bound := float32(1 / math.Sqrt(128))
	var lo, hi float32
	for _, v := range byName["classifier.weight"] {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < -bound || hi > bound || hi < 0.9*bound || lo > -0.9*bound {
		t.Errorf("classifier weight range [%g, %g], want about ±%g", lo, hi, bound)
	}
	for _, v := range byName["classifier.bias"] {
		if v != 0 {
			t.Fatalf("classifier bias %g, want 0", v)
		}
	}
	for suffix, want := range map[string]float32{".weight": 1, ".bias": 0, ".running_mean": 0, ".running_var": 1} {
		for _, v := range byName["features.norm5"+suffix] {
			if v != want {
				t.Fatalf("norm5%s = %g, want %g", suffix, v, want)
			}
		}
	}
	// A weight depends on the seed and its name only, not on the rest of the config.
	cfg.Classes = 7
	m2, err := Build(cfg, BuildOptions{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range m2.Graph.Initializer {
		if tp.GetName() == "features.denseblock1.denselayer2.conv2.weight" {
			got, _ := onnx.DecodeTensor(tp, "")
			if !slices.Equal(tensor.Data[float32](got), w) {
				t.Error("conv weight changed with Classes")
			}
		}
	}
}

// TestFoldConvBN compares conv-then-BN with the folded conv on a 1x1 conv (a matrix-vector
// product) with random, non-trivial BN statistics. Tolerance 1e-5 relative (float32 rounding).
func TestFoldConvBN(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const cout, cin = 5, 7
	w := make([]float32, cout*cin)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	bn := bnParams{make([]float32, cout), make([]float32, cout), make([]float32, cout), make([]float32, cout)}
	for o := 0; o < cout; o++ {
		bn.gamma[o] = float32(0.5 + r.Float64())
		bn.beta[o] = float32(r.NormFloat64())
		bn.mean[o] = float32(r.NormFloat64())
		bn.variance[o] = float32(0.1 + r.Float64())
	}
	x := make([]float64, cin)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	wf, bias := foldConvBN(w, cout, bn, bnEpsilon)
	for o := 0; o < cout; o++ {
		var y, yf float64
		for i := 0; i < cin; i++ {
			y += float64(w[o*cin+i]) * x[i]
			yf += float64(wf[o*cin+i]) * x[i]
		}
		want := float64(bn.gamma[o])*(y-float64(bn.mean[o]))/math.Sqrt(float64(bn.variance[o])+bnEpsilon) + float64(bn.beta[o])
		got := yf + float64(bias[o])
		if math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
			t.Errorf("channel %d: folded %g, conv+BN %g", o, got, want)
		}
	}
}

// TestTorchFoldBase pins the exporter numbering against the three PyTorch 1.13 exports in
// shared/models (their first "onnx::Conv_<n>" initializer).
func TestTorchFoldBase(t *testing.T) {
	bc100 := Config{Growth: 12, Blocks: []int{16, 16, 16}, InitFeatures: 24, BNSize: 4, Compression: 0.5,
		Stem: StemCIFAR, Classes: 10, InputSize: 32}
	tests := []struct {
		name string
		cfg  Config
		want int
	}{
		{"densenet_tiny", tinyConfig(), 106},
		{"densenet_bc100_k12_cifar", bc100, 955},
		{"densenet121", densenet121Config(), 1166},
	}
	for _, tt := range tests {
		if got := torchFoldBase(tt.cfg); got != tt.want {
			t.Errorf("%s: torchFoldBase = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestMACs checks the tiny model by hand and densenet121 against torchvision's published 2.83
// GFLOPS (which counts multiply-accumulates of convs and the classifier).
func TestMACs(t *testing.T) {
	// tiny, 16x16 input:
	//   stem conv3x3 3->8 at 16x16:                      8*256*27      =  55296
	//   block1 at 16x16 (256 px), B = 16:
	//     layer1 c=8:  (8*16 + 9*16*4)*256  = 704*256                  = 180224
	//     layer2 c=12: (12*16 + 576)*256    = 768*256                  = 196608
	//   transition 16->8 at 16x16:          16*8*256                   =  32768
	//   block2 at 8x8 (64 px): 704*64 + 768*64                         =  94208
	//   classifier 16*5                                                =     80
	const tiny = 55296 + 180224 + 196608 + 32768 + 94208 + 80
	if got := MACs(tinyConfig()); got != tiny {
		t.Errorf("MACs(tiny) = %d, want %d", got, tiny)
	}
	if got := MACs(densenet121Config()); got != 2_834_161_664 {
		t.Errorf("MACs(densenet121) = %d, want 2834161664", got)
	}
}

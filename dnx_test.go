package dnx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// tinyModel builds the "tiny" preset (input [batch,3,16,16], logits [batch,5]).
func tinyModel(t *testing.T) *Model {
	t.Helper()
	m, err := BuildPreset("tiny", BuildOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tinyProto returns the tiny model as a ModelProto, for tests that corrupt it.
func tinyProto(t *testing.T) *onnxpb.ModelProto {
	t.Helper()
	b, err := tinyModel(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.ReadModel(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func marshal(t *testing.T, m *onnxpb.ModelProto) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func zeros(t *testing.T, shape ...int) *Tensor {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	x, err := NewTensor(shape, make([]float32, n))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// wantErr checks that err is an error matching each of sentinels and mentioning text.
func wantErr(t *testing.T, err error, text string, sentinels ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one matching %v", sentinels)
	}
	for _, s := range sentinels {
		if !errors.Is(err, s) {
			t.Errorf("error %q does not match %q", err, s)
		}
	}
	if !strings.Contains(err.Error(), text) {
		t.Errorf("error %q does not mention %q", err, text)
	}
	if !strings.HasPrefix(err.Error(), "dnx: ") {
		t.Errorf("error %q does not start with \"dnx: \"", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	if err := os.WriteFile(garbage, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	newOpset := tinyProto(t)
	newOpset.OpsetImport[0].Version = proto.Int64(99)
	external := tinyProto(t)
	init0 := external.Graph.Initializer[0]
	init0.RawData = nil
	init0.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	init0.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("weights.bin")}}
	unknownOp := tinyProto(t)
	unknownOp.Graph.Node[0].OpType = proto.String("NoSuchOp")
	dangling := tinyProto(t)
	dangling.Graph.Node[0].Input[0] = "nowhere"

	for _, tc := range []struct {
		name      string
		load      func() (*Model, error)
		text      string
		sentinels []error
	}{
		{"missing file", func() (*Model, error) { return LoadFile(filepath.Join(dir, "none.onnx")) }, "none.onnx", []error{fs.ErrNotExist}},
		{"garbage file", func() (*Model, error) { return LoadFile(garbage) }, "garbage.onnx", []error{ErrInvalidModel, onnx.ErrCorrupt}},
		{"garbage bytes", func() (*Model, error) { return LoadBytes([]byte{0xff, 0xff, 0xff}) }, "parse ModelProto", []error{ErrInvalidModel}},
		{"empty bytes", func() (*Model, error) { return LoadBytes(nil) }, "no graph", []error{ErrInvalidModel}},
		{"garbage reader", func() (*Model, error) { return LoadReader(strings.NewReader("\x08\x07junk")) }, "load model", []error{ErrInvalidModel}},
		{"opset 99", func() (*Model, error) { return LoadBytes(marshal(t, newOpset)) }, "opset 99", []error{ErrUnsupported}},
		{"unknown operator", func() (*Model, error) { return LoadBytes(marshal(t, unknownOp)) }, "NoSuchOp", []error{ErrUnsupported}},
		{"dangling input", func() (*Model, error) { return LoadBytes(marshal(t, dangling)) }, "nowhere", []error{ErrInvalidModel}},
		{"external data from bytes", func() (*Model, error) { return LoadBytes(marshal(t, external)) }, init0.GetName(), []error{ErrInvalidModel, onnx.ErrExternalData}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.load()
			if m != nil {
				t.Errorf("got a model with error %v", err)
			}
			wantErr(t, err, tc.text, tc.sentinels...)
		})
	}
}

// TestLoadExternalData checks that LoadFile reads external data next to the model, which is what
// the other loaders refuse.
func TestLoadExternalData(t *testing.T) {
	dir := t.TempDir()
	m := tinyProto(t)
	init0 := m.Graph.Initializer[0]
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), init0.RawData, 0o644); err != nil {
		t.Fatal(err)
	}
	init0.RawData = nil
	init0.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	init0.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("weights.bin")}}
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, marshal(t, m), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewTensor([]int{1, 3, 16, 16}, ramp(3*16*16))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := run(t, loaded, x), run(t, tinyModel(t), x); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("logits with external data %v, inline %v", a, b)
	}
}

func TestRunErrors(t *testing.T) {
	model := tinyModel(t)
	sess, err := NewSession(model, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ints, err := NewInt64Tensor([]int{1, 3, 16, 16}, make([]int64, 3*16*16))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		inputs map[string]*Tensor
		text   string
	}{
		{"no inputs", nil, `input "input" is missing`},
		{"missing input name", map[string]*Tensor{"image": zeros(t, 1, 3, 16, 16)}, `input "input" is missing`},
		{"unknown input name", map[string]*Tensor{"input": zeros(t, 1, 3, 16, 16), "extra": zeros(t, 1)}, `no input "extra"`},
		{"initializer as input", map[string]*Tensor{"input": zeros(t, 1, 3, 16, 16), "classifier.bias": zeros(t, 5)}, `no input "classifier.bias"`},
		{"nil tensor", map[string]*Tensor{"input": nil}, `input "input" is nil`},
		{"zero tensor", map[string]*Tensor{"input": {}}, `input "input" is nil`},
		{"wrong dtype", map[string]*Tensor{"input": ints}, "is int64, the model expects float32"},
		{"wrong rank", map[string]*Tensor{"input": zeros(t, 3, 16, 16)}, "has shape [3 16 16]"},
		{"wrong fixed dim", map[string]*Tensor{"input": zeros(t, 1, 1, 16, 16)}, "dim 1 is 1, the model expects 3"},
		{"empty batch", map[string]*Tensor{"input": zeros(t, 0, 3, 16, 16)}, "dim 0 (batch) is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := sess.Run(context.Background(), tc.inputs)
			if out != nil {
				t.Errorf("got outputs with error %v", err)
			}
			wantErr(t, err, tc.text, ErrInput)
		})
	}
}

func TestNewSessionErrors(t *testing.T) {
	model := tinyModel(t)
	for _, tc := range []struct {
		name      string
		model     *Model
		opts      Options
		text      string
		sentinels []error
	}{
		{"nil model", nil, Options{}, "nil model", []error{ErrOptions}},
		{"negative threads", model, Options{Threads: -1}, "Threads -1", []error{ErrOptions}},
		{"too many threads", model, Options{Threads: 1 << 30}, "Threads 1073741824", []error{ErrOptions}},
		{"unknown device", model, Options{Device: "tpu"}, "tpu", []error{ErrOptions}},
		// This build has no CUDA kernels: with or without a GPU, cuda is refused, never run on
		// the CPU instead. The message says what was found.
		{"cuda", model, Options{Device: "cuda"}, "cuda", []error{ErrDevice}},
		{"cuda:3", model, Options{Device: "cuda:3"}, "cuda:3", []error{ErrDevice}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(tc.model, tc.opts)
			if s != nil {
				s.Close()
				t.Errorf("got a session with error %v", err)
			}
			wantErr(t, err, tc.text, tc.sentinels...)
		})
	}
	for _, dev := range []string{"", "cpu"} {
		s, err := NewSession(model, Options{Device: dev})
		if err != nil {
			t.Errorf("Device %q: %v", dev, err)
			continue
		}
		s.Close()
	}
}

func TestBuildErrors(t *testing.T) {
	good := DenseNetConfig{Growth: 4, Blocks: []int{2, 2}, InitFeatures: 8, BNSize: 4, Compression: 0.5, Stem: "cifar", Classes: 5, InputSize: 16}
	with := func(f func(c *DenseNetConfig)) DenseNetConfig {
		c := good
		c.Blocks = append([]int(nil), good.Blocks...)
		f(&c)
		return c
	}
	if _, err := Build(good, BuildOptions{}); err != nil {
		t.Fatalf("the base config: %v", err)
	}
	for _, tc := range []struct {
		name      string
		build     func() (*Model, error)
		text      string
		sentinels []error
	}{
		{"unknown preset", func() (*Model, error) { return BuildPreset("densenet122", BuildOptions{}) }, "densenet121", []error{ErrUnknownPreset}},
		{"no blocks", func() (*Model, error) { return Build(with(func(c *DenseNetConfig) { c.Blocks = nil }), BuildOptions{}) }, "block", []error{ErrConfig}},
		{"zero growth", func() (*Model, error) { return Build(with(func(c *DenseNetConfig) { c.Growth = 0 }), BuildOptions{}) }, "growth", []error{ErrConfig}},
		{"bad stem", func() (*Model, error) {
			return Build(with(func(c *DenseNetConfig) { c.Stem = "mnist" }), BuildOptions{})
		}, `Stem "mnist"`, []error{ErrConfig}},
		{"compression 2", func() (*Model, error) {
			return Build(with(func(c *DenseNetConfig) { c.Compression = 2 }), BuildOptions{})
		}, "ompression", []error{ErrConfig}},
		{"opset 5", func() (*Model, error) { return Build(good, BuildOptions{Opset: 5}) }, "5", []error{ErrOptions}},
		{"over budget", func() (*Model, error) { return BuildPreset("densenet121", BuildOptions{MaxMemory: 1 << 20}) }, "parameters", []error{ErrOverBudget}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.build()
			if m != nil {
				t.Errorf("got a model with error %v", err)
			}
			wantErr(t, err, tc.text, tc.sentinels...)
		})
	}
	if _, err := good.Params(); err != nil {
		t.Error(err)
	}
	if _, err := with(func(c *DenseNetConfig) { c.Classes = 0 }).Params(); !errors.Is(err, ErrConfig) {
		t.Errorf("Params of a config without classes: %v, want ErrConfig", err)
	}
}

func TestPresets(t *testing.T) {
	ps := Presets()
	if len(ps) == 0 {
		t.Fatal("no presets")
	}
	p, err := LookupPreset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.Stem != "cifar" || p.Config.Classes != 5 || p.Normalization.Std[0] <= 0 {
		t.Errorf("tiny = %+v", p)
	}
	// A preset is a copy: changing it changes nothing for the next caller.
	p.Config.Blocks[0] = 100
	if q, _ := LookupPreset("tiny"); q.Config.Blocks[0] == 100 {
		t.Error("LookupPreset shares its Blocks slice")
	}
	if _, err := LookupPreset("nope"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("LookupPreset(nope) = %v", err)
	}
}

func TestConvertErrors(t *testing.T) {
	const fixture = "converters/pytorch/testdata/densenet.safetensors"
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pth")
	if err := os.WriteFile(garbage, []byte("PK\x03\x04 not really a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		path      string
		opts      ConvertOptions
		text      string
		sentinels []error
	}{
		{"missing file", filepath.Join(dir, "none.pth"), ConvertOptions{}, "none.pth", []error{fs.ErrNotExist}},
		{"garbage", garbage, ConvertOptions{}, "garbage.pth", []error{ErrCheckpoint}},
		{"wrong preset", fixture, ConvertOptions{Preset: "tiny"}, "features.conv0.weight", []error{ErrCheckpoint}},
		{"unknown preset", fixture, ConvertOptions{Preset: "densenet122"}, "densenet122", []error{ErrUnknownPreset}},
		{"negative classes", fixture, ConvertOptions{Classes: -1}, "Classes -1", []error{ErrOptions}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ConvertCheckpoint(tc.path, tc.opts)
			if m != nil {
				t.Errorf("got a model with error %v", err)
			}
			wantErr(t, err, tc.text, tc.sentinels...)
		})
	}
}

func TestTensorErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape []int
		n     int
		text  string
	}{
		{"too few elements", []int{2, 3}, 5, "holds 6 elements, got 5"},
		{"too many elements", []int{2}, 3, "holds 2 elements, got 3"},
		{"negative dim", []int{-1, 3}, 3, "negative"},
		{"scalar with two", nil, 2, "holds 1 elements, got 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := NewTensor(tc.shape, make([]float32, tc.n))
			if x != nil {
				t.Errorf("got a tensor with error %v", err)
			}
			wantErr(t, err, tc.text, ErrInput)
		})
	}
	ints, _ := NewInt64Tensor([]int{2}, []int64{1, 2})
	if _, err := ints.Float32s(); !errors.Is(err, ErrInput) {
		t.Errorf("Float32s of int64: %v", err)
	}
	if _, err := zeros(t, 2).Int64s(); !errors.Is(err, ErrInput) {
		t.Errorf("Int64s of float32: %v", err)
	}
	var zero *Tensor
	if zero.Len() != 0 || zero.Shape() != nil || zero.DType() != Undefined {
		t.Error("a nil tensor is not empty")
	}
	if _, err := Batch(zeros(t, 1, 3), zeros(t, 1, 4)); !errors.Is(err, ErrInput) {
		t.Errorf("Batch of [1 3] and [1 4]: %v", err)
	}
	if _, err := Batch(); !errors.Is(err, ErrInput) {
		t.Errorf("Batch(): %v", err)
	}
}

func TestDTypeCodes(t *testing.T) {
	for d, want := range map[DType]tensor.DType{
		Undefined: tensor.Undefined, Float32: tensor.Float32, Uint8: tensor.Uint8, Int8: tensor.Int8,
		Uint16: tensor.Uint16, Int16: tensor.Int16, Int32: tensor.Int32, Int64: tensor.Int64,
		String: tensor.String, Bool: tensor.Bool, Float16: tensor.Float16, Float64: tensor.Float64,
		Uint32: tensor.Uint32, Uint64: tensor.Uint64, BFloat16: tensor.BFloat16,
	} {
		if tensor.DType(d) != want || d.String() != want.String() {
			t.Errorf("%v = %d, the runtime's %v = %d", d, d, want, want)
		}
	}
}

// TestTensorImmutable checks that tensors copy in and out, which is what makes sharing them
// between concurrent runs safe.
func TestTensorImmutable(t *testing.T) {
	data := []float32{1, 2, 3, 4}
	shape := []int{2, 2}
	x, err := NewTensor(shape, data)
	if err != nil {
		t.Fatal(err)
	}
	data[0], shape[0] = 100, 100
	got, _ := x.Float32s()
	got[1] = 200
	x.Shape()[1] = 200
	again, _ := x.Float32s()
	if fmt.Sprint(again) != "[1 2 3 4]" || fmt.Sprint(x.Shape()) != "[2 2]" {
		t.Errorf("tensor changed through the caller's slices: %v %v", again, x.Shape())
	}
	b, err := Batch(x, x)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Float32s(); b.String() != "float32 [4 2]" || fmt.Sprint(v) != "[1 2 3 4 1 2 3 4]" {
		t.Errorf("Batch = %v %v", b, v)
	}
}

func TestNPY(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.npy")
	x, err := NewInt64Tensor([]int{2, 2}, []int64{1, -2, 3, 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveNPY(path, x); err != nil {
		t.Fatal(err)
	}
	y, err := LoadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := y.Int64s(); y.String() != "int64 [2 2]" || fmt.Sprint(v) != "[1 -2 3 1099511627776]" {
		t.Errorf("round trip: %v %v", y, v)
	}
	if err := os.WriteFile(path, []byte("\x93NUMPY\x01\x00junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadNPY(path)
	wantErr(t, err, "x.npy", ErrInput)
}

func TestImages(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 20, 10))
	for y := range 10 {
		for x := range 20 {
			img.Set(x, y, color.RGBA{R: 255, G: uint8(10 * x), B: 0, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "img.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := LoadImage(path, 8, 8, Normalization{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeImage(bytes.NewReader(buf.Bytes()), 8, 8, Normalization{})
	if err != nil {
		t.Fatal(err)
	}
	va, _ := a.Float32s()
	vb, _ := b.Float32s()
	if a.String() != "float32 [1 3 8 8]" || fmt.Sprint(va) != fmt.Sprint(vb) {
		t.Errorf("LoadImage = %v, DecodeImage = %v", a, b)
	}
	// The zero Normalization leaves pixels in [0, 1]: red is 1 everywhere, blue 0.
	if va[0] != 1 || va[2*64] != 0 {
		t.Errorf("red %v, blue %v; want 1 and 0", va[0], va[2*64])
	}
	_, err = DecodeImage(strings.NewReader("GIF89a"), 8, 8, ImageNetNormalization())
	wantErr(t, err, "decode image", ErrInput)
	_, err = DecodeImage(bytes.NewReader(buf.Bytes()), 8, 8, Normalization{Std: [3]float32{1, 0, 1}})
	wantErr(t, err, "Std[1]", ErrOptions)
	_, err = LoadImage(filepath.Join(t.TempDir(), "none.png"), 8, 8, Normalization{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadImage of a missing file: %v", err)
	}
}

func TestModelMetadata(t *testing.T) {
	m := tinyModel(t)
	before := m.Metadata()
	m2, err := m.WithMetadata(map[string]string{"labels": "a\nb", "dnx.preset": "", "zz": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.Metadata()) != fmt.Sprint(before) {
		t.Error("WithMetadata changed the original model")
	}
	got := m2.Metadata()
	if got["labels"] != "a\nb" || got["zz"] != "1" || got["dnx.preset"] != "" || got["dnx.densenet.growth"] != "4" {
		t.Errorf("metadata = %v", got)
	}
	if _, ok := got["dnx.preset"]; ok {
		t.Error("a key set to \"\" was kept")
	}
	// Metadata returns a copy.
	got["zz"] = "2"
	if m2.Metadata()["zz"] != "1" {
		t.Error("Metadata shares its map")
	}
	// Marshal writes each key once, in place, with the model's doc string; a key repeated in a
	// file keeps its first place and its last value.
	b, err := m2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := onnx.ReadModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.MetadataProps) != len(got) || p.GetDocString() == "" || p.GetDocString() != m.g.DocString {
		t.Errorf("marshalled %d metadata entries for %d keys, doc string %q", len(p.MetadataProps), len(got), p.GetDocString())
	}
	p.MetadataProps = append(p.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String("labels"), Value: proto.String("c")})
	m3, err := LoadBytes(marshal(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if meta := m3.g.Metadata(); m3.Metadata()["labels"] != "c" || len(meta) != len(got) || meta[len(meta)-2].Key != "labels" {
		t.Errorf("a repeated key: %v", meta)
	}
	if err := m.Save(filepath.Join(t.TempDir(), "no", "such", "dir.onnx")); err == nil || !strings.HasPrefix(err.Error(), "dnx: save model") {
		t.Errorf("Save into a missing folder: %v", err)
	}
}

func TestSessionClose(t *testing.T) {
	sess, err := NewSession(tinyModel(t), Options{NoSpin: true})
	if err != nil {
		t.Fatal(err)
	}
	if sess.Model() == nil {
		t.Error("no model")
	}
	if _, err := sess.Run(context.Background(), map[string]*Tensor{"input": zeros(t, 1, 3, 16, 16)}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = sess.Run(context.Background(), map[string]*Tensor{"input": zeros(t, 1, 3, 16, 16)})
	wantErr(t, err, "closed", ErrClosed)
}

// TestConcurrentRun runs one session and one input tensor from several goroutines with two batch
// sizes (two plans) and checks every result against a sequential run.
func TestConcurrentRun(t *testing.T) {
	model := tinyModel(t)
	sess, err := NewSession(model, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	inputs := []*Tensor{}
	want := []string{}
	for _, n := range []int{1, 3} {
		x, err := NewTensor([]int{n, 3, 16, 16}, ramp(n*3*16*16))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, x)
		want = append(want, fmt.Sprint(run(t, model, x)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				k := (g + i) % len(inputs)
				out, err := sess.Run(context.Background(), map[string]*Tensor{"input": inputs[k]})
				if err != nil {
					errs <- err
					return
				}
				got, _ := out["logits"].Float32s()
				if fmt.Sprint(got) != want[k] {
					errs <- fmt.Errorf("goroutine %d run %d: logits %v, want %v", g, i, got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTrainer(t *testing.T) {
	model := tinyModel(t)
	images, labels := stripes(t, 10)
	for _, tc := range []struct {
		name      string
		opts      TrainOptions
		text      string
		sentinels []error
	}{
		{"unknown optimizer", TrainOptions{Optimizer: "lbfgs"}, "lbfgs", []error{ErrOptions}},
		{"freeze nothing", TrainOptions{Freeze: []string{"nothing."}}, "nothing.", []error{ErrOptions}},
		{"negative threads", TrainOptions{Threads: -2}, "Threads -2", []error{ErrOptions}},
		{"negative classes", TrainOptions{Classes: -2}, "Classes -2", []error{ErrOptions}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTrainer(model, tc.opts)
			if tr != nil {
				t.Errorf("got a trainer with error %v", err)
			}
			wantErr(t, err, tc.text, tc.sentinels...)
		})
	}

	tr, err := NewTrainer(model, TrainOptions{Classes: 3, Seed: 2, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := model.Outputs()[0].String(); got != "logits float32 [batch 5]" {
		t.Errorf("NewTrainer with Classes changed the model: %s", got)
	}
	three := make([]int64, len(labels))
	for i, l := range labels {
		three[i] = l % 3
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		images *Tensor
		labels []int64
		text   string
	}{
		{"nil images", nil, three, "nil images"},
		{"too few labels", images, three[:3], "label"},
		{"label out of range", images, append(three[:9:9], 3), "3"},
		{"wrong image size", zeros(t, 10, 3, 8, 8), three, "8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.Step(ctx, tc.images, tc.labels)
			wantErr(t, err, tc.text, ErrInput)
		})
	}
	if tr.Steps() != 0 {
		t.Fatalf("failed steps counted: %d", tr.Steps())
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.Step(cancelled, images, three); !errors.Is(err, context.Canceled) || tr.Steps() != 0 {
		t.Errorf("Step with a cancelled context: %v, %d steps", err, tr.Steps())
	}
	for range 3 {
		if _, err := tr.Step(ctx, images, three); err != nil {
			t.Fatal(err)
		}
	}
	logits, err := tr.Evaluate(ctx, images)
	if err != nil {
		t.Fatal(err)
	}
	trained, err := tr.Model()
	if err != nil {
		t.Fatal(err)
	}
	if logits.String() != "float32 [10 3]" || trained.Outputs()[0].String() != "logits float32 [batch 3]" {
		t.Errorf("logits %v, trained model output %v", logits, trained.Outputs()[0])
	}
	if meta := trained.Metadata(); meta["dnx.densenet.classes"] != "3" || meta["dnx.preset"] != "tiny" {
		t.Errorf("trained model metadata %v", meta)
	}
	// The trained model runs in a session and gives the trainer's eval-mode logits.
	got := run(t, trained, images)
	want, _ := logits.Float32s()
	for i := range want {
		if d := got[i] - want[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("session logits %v, trainer's %v", got, want)
		}
	}
	// State round trip: a second trainer resumed from the state continues as the first.
	var state bytes.Buffer
	if err := tr.SaveState(&state); err != nil {
		t.Fatal(err)
	}
	tr2, err := NewTrainer(model, TrainOptions{Classes: 3, Seed: 2, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.LoadState(bytes.NewReader(state.Bytes())); err != nil {
		t.Fatal(err)
	}
	a, err := tr.Step(ctx, images, three)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr2.Step(ctx, images, three)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("resumed step %+v, original %+v", b, a)
	}
	if err := tr2.LoadState(strings.NewReader("junk")); !errors.Is(err, ErrInput) {
		t.Errorf("LoadState(junk) = %v", err)
	}
}

// TestTrainerLossIndependentOfThreads checks what ExampleTrainer relies on to print losses: they
// are bit-identical on any number of threads and in both memory modes.
func TestTrainerLossIndependentOfThreads(t *testing.T) {
	model, err := BuildPreset("tiny", BuildOptions{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	images, labels := stripes(t, 10)
	var want []float64
	for _, opts := range []TrainOptions{
		{Threads: 1}, {Threads: 2}, {Threads: 3}, {Threads: 4}, {Threads: 3, KeepActivations: true},
	} {
		opts.LR, opts.Momentum = 0.05, 0.9
		tr, err := NewTrainer(model, opts)
		if err != nil {
			t.Fatal(err)
		}
		var losses []float64
		for range 20 {
			st, err := tr.Step(context.Background(), images, labels)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, st.Loss)
		}
		if want == nil {
			want = losses
			continue
		}
		for i := range losses {
			if losses[i] != want[i] {
				t.Errorf("%+v: step %d loss %v, with 1 thread %v", opts, i, losses[i], want[i])
				break
			}
		}
	}
}

// TestPyTorchParity runs PyTorch exports of the shared data through the public API, from
// LoadFile to Float32s, and compares with PyTorch's outputs (skipped without the shared data).
func TestPyTorchParity(t *testing.T) {
	for _, name := range []string{"densenet_tiny", "densenet121"} {
		t.Run(name, func(t *testing.T) {
			dir := testenv.Shared(t, filepath.Join("models", name))
			model, err := LoadFile(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			in, _, err := onnx.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := onnx.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			sess, err := NewSession(model, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			out, err := sess.Run(context.Background(), map[string]*Tensor{model.Inputs()[0].Name: wrapTensor(in)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := out[model.Outputs()[0].Name].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			if err := tensor.AllClose(tensor.FromSlice(want.Shape, got), want, 0, tensor.PyTorchAtol); err != nil {
				t.Error(err)
			}
		})
	}
}

// run runs model on x and returns its logits.
func run(t *testing.T, model *Model, x *Tensor) []float32 {
	t.Helper()
	sess, err := NewSession(model, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Run(context.Background(), map[string]*Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	v, err := out["logits"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ramp returns n values rising from -1 to 1.
func ramp(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = -1 + 2*float32(i)/float32(max(n-1, 1))
	}
	return v
}

// stripes returns n 16x16 images of 5 classes told apart by the period of their stripes (the
// data of ExampleTrainer).
func stripes(t *testing.T, n int) (*Tensor, []int64) {
	t.Helper()
	const size = 16
	data := make([]float32, 0, n*3*size*size)
	labels := make([]int64, n)
	for i := range n {
		class := i % 5
		labels[i] = int64(class)
		for c := range 3 {
			for y := range size {
				for x := range size {
					v := float32(-1)
					if (x/(class+1))%2 == 0 {
						v = 1
					}
					data = append(data, v*float32(c+1)/3+float32(y)/size)
				}
			}
		}
	}
	x, err := NewTensor([]int{n, 3, size, size}, data)
	if err != nil {
		t.Fatal(err)
	}
	return x, labels
}

package builders

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Opset range Build supports. Every op a DenseNet uses (Conv, BatchNormalization, Relu, Concat,
// MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm) has the same float32 semantics and the
// same attributes (as emitted here) across 11..21, so only opset_import changes.
const (
	DefaultOpset = 13
	MinOpset     = 11
	MaxOpset     = 21
)

// BuildOptions controls Build.
type BuildOptions struct {
	// Seed selects the random initial weights; the same seed always gives the same model.
	Seed int64
	// Opset is the ai.onnx opset to declare: 0 means DefaultOpset, otherwise MinOpset..MaxOpset.
	Opset int
	// Inference folds every BN that directly follows a conv (the ImageNet stem's norm0 and the
	// bottleneck norm2) into that conv, as PyTorch's eval export does. The result is smaller and
	// faster but can no longer be fine-tuned with the torchvision parameter set.
	Inference bool
	// Weights, when not nil, supplies trained tensors by torchvision state_dict key
	// ("features.conv0.weight", "features.norm0.running_var", "classifier.bias", ...). Each one
	// replaces the generated initial value before any BN folding, so the inference form folds the
	// supplied statistics. Shapes must match the model exactly; float16, bfloat16 and float64 are
	// converted to float32. Keys the model lacks are an error (ErrOptions), except the ignored
	// "*.num_batches_tracked" counters; tensors not supplied keep their seeded initial values.
	Weights map[string]*tensor.Tensor
}

// MetaPrefix starts the metadata_props keys in which Build records the Config and the options
// (dnx.densenet.growth, .blocks "6,12,24,16", .init_features, .bn_size, .compression, .stem,
// .drop_rate, .classes, .input_size, .form "training"/"inference", .seed), so tools can recover them.
const MetaPrefix = "dnx.densenet."

// Build returns the DenseNet cfg describes as an ONNX model with freshly initialized weights.
//
// The graph follows torchvision's module structure and PyTorch 1.13's ONNX export naming: input
// "input" float32 [batch,3,S,S] (dim_param "batch"), output "logits" [batch,Classes], node names such
// as /features/denseblock1/denselayer1/norm1/BatchNormalization with outputs <node>_output_0, and
// initializers named like the torchvision state_dict (features.conv0.weight,
// features.denseblock1.denselayer1.norm1.running_mean, ..., classifier.bias). Every dense layer
// starts with a Concat (axis 1) of the block's features so far, a single-input Concat for the first
// layer, and every block ends with a Concat of all its features, exactly as the exporter emits them.
// A plain (non-bottleneck) layer uses the names norm1, relu1 and conv1 for its BN-ReLU-Conv3x3.
//
// In the default, training-ready form every BN is a BatchNormalization node (epsilon 1e-5, momentum
// 0.9; inputs X, scale, B, mean, var). With opts.Inference the BNs that follow a conv are folded and
// the folded conv's weight and bias get the names PyTorch 1.13 gives them ("onnx::Conv_<n>", with n
// derived from the exporter's value numbering; see torchFoldBase). Transition pooling is a plain
// AveragePool: the all-zero Pad the exporter inserts before it is omitted.
//
// Weights follow torchvision's init: Kaiming-normal convs, BN γ=1 β=0 mean 0 var 1, the classifier
// weight U(±1/sqrt(C)) and bias 0.
//
// With cfg.DropRate > 0 the training form has a Dropout after each dense layer's last conv (conv2,
// or conv1 of a plain layer), named /features/denseblockB/denselayerL/Dropout, where torchvision's
// _DenseLayer applies F.dropout (see graphBuilder.dropout); the inference form has none, as
// PyTorch's eval export. cfg.DropRate is recorded in metadata_props with the rest of cfg either way.
//
// The IR version is 8, or the lowest IR version that ONNX pairs with opsets 19-20 (9) and 21 (10).
func Build(cfg Config, opts BuildOptions) (*onnxpb.ModelProto, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("build DenseNet: %w", err)
	}
	opset := opts.Opset
	if opset == 0 {
		opset = DefaultOpset
	}
	if opset < MinOpset || opset > MaxOpset {
		return nil, fmt.Errorf("build DenseNet: %w: opset %d is outside %d..%d", ErrOptions, opset, MinOpset, MaxOpset)
	}
	b := &graphBuilder{cfg: cfg, opts: opts, opset: opset, foldNext: torchFoldBase(cfg)}
	b.network()
	if b.err == nil {
		b.err = b.checkWeightsUsed()
	}
	if b.err != nil {
		return nil, fmt.Errorf("build DenseNet: %w", b.err)
	}
	g := &onnxpb.GraphProto{
		Name:        proto.String("densenet"),
		Node:        b.nodes,
		Initializer: append(b.inits, b.folded...),
		Input:       []*onnxpb.ValueInfoProto{valueInfo("input", 3, cfg.InputSize, cfg.InputSize)},
		Output:      []*onnxpb.ValueInfoProto{valueInfo("logits", cfg.Classes)},
	}
	return &onnxpb.ModelProto{
		IrVersion:     proto.Int64(irVersion(opset)),
		OpsetImport:   []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(int64(opset))}},
		ProducerName:  proto.String("dnx"),
		DocString:     proto.String(cfg.String()),
		Graph:         g,
		MetadataProps: metadata(cfg, opts),
	}, nil
}

// irVersion is the IR version Build declares for opset: 8 (ONNX 1.13, opsets up to 18) unless the
// opset came with a later IR (ONNX 1.14/1.15: IR 9 for opsets 19-20; ONNX 1.16: IR 10 for 21).
func irVersion(opset int) int64 {
	switch {
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	}
	return 8
}

// metadata records cfg and the build options as string pairs under MetaPrefix.
func metadata(cfg Config, opts BuildOptions) []*onnxpb.StringStringEntryProto {
	blocks := make([]string, len(cfg.Blocks))
	for i, n := range cfg.Blocks {
		blocks[i] = strconv.Itoa(n)
	}
	form := "training"
	if opts.Inference {
		form = "inference"
	}
	kv := [][2]string{
		{"growth", strconv.Itoa(cfg.Growth)},
		{"blocks", strings.Join(blocks, ",")},
		{"init_features", strconv.Itoa(cfg.InitFeatures)},
		{"bn_size", strconv.Itoa(cfg.BNSize)},
		{"compression", strconv.FormatFloat(cfg.Compression, 'g', -1, 64)},
		{"stem", cfg.Stem.String()},
		{"drop_rate", strconv.FormatFloat(cfg.DropRate, 'g', -1, 64)},
		{"classes", strconv.Itoa(cfg.Classes)},
		{"input_size", strconv.Itoa(cfg.InputSize)},
		{"form", form},
		{"seed", strconv.FormatInt(opts.Seed, 10)},
	}
	out := make([]*onnxpb.StringStringEntryProto, len(kv))
	for i, e := range kv {
		out[i] = &onnxpb.StringStringEntryProto{Key: proto.String(MetaPrefix + e[0]), Value: proto.String(e[1])}
	}
	return out
}

// torchFoldBase returns the number PyTorch 1.13's eval export gives the first folded conv weight,
// "onnx::Conv_<base>". The exporter names a folded conv's new weight and bias after the JIT value
// ids it allocates for them (base+3i and base+3i+1 for the i-th fold in graph order; the third id
// is the new Conv's output). base is one past the values that exist before folding: the graph
// input, one input per state_dict entry (each BN has weight, bias, running_mean, running_var and
// num_batches_tracked), one output per ONNX node of the unfolded graph (a transition's pooling is
// Constant, Pad, AveragePool), plus one. The formula reproduces densenet_tiny (106),
// densenet_bc100_k12_cifar (955) and torchvision densenet121 (1166).
func torchFoldBase(cfg Config) int {
	layers, nb := 0, len(cfg.Blocks)
	for _, n := range cfg.Blocks {
		layers += n
	}
	convsPerLayer, nodesPerLayer := 1, 4 // Concat, BN, Relu, Conv
	if cfg.Bottleneck() {
		convsPerLayer, nodesPerLayer = 2, 7 // + BN, Relu, Conv
	}
	convs := 1 + layers*convsPerLayer + (nb - 1)
	bns := layers*convsPerLayer + (nb - 1) + 1 // dense-layer norms, transition norms, norm5
	stemNodes := 1                             // Conv
	if cfg.Stem == StemImageNet {
		bns++
		stemNodes = 4 // Conv, BN, Relu, MaxPool
	}
	state := convs + 5*bns + 2 // + classifier weight and bias
	// Dense layers, one Concat closing each block, six nodes per transition (BN, Relu, Conv,
	// Constant, Pad, AveragePool) and the head (BN, Relu, GlobalAveragePool, Flatten, Gemm).
	nodes := stemNodes + layers*nodesPerLayer + nb + 6*(nb-1) + 5
	return 1 + state + nodes + 1
}

// graphBuilder accumulates nodes and initializers. The first error sticks in err and turns later
// calls into no-ops, so network reads as straight-line code.
type graphBuilder struct {
	cfg      Config
	opts     BuildOptions
	opset    int // the opset declared (opts.Opset resolved)
	nodes    []*onnxpb.NodeProto
	inits    []*onnxpb.TensorProto // state_dict-named initializers, in module order
	folded   []*onnxpb.TensorProto // onnx::Conv_<n> initializers, after inits as in torch exports
	foldNext int                   // id of the next folded conv weight
	used     map[string]bool       // opts.Weights keys consumed so far
	err      error
}

// network emits the whole graph; its output is "logits".
func (b *graphBuilder) network() string {
	cfg := b.cfg
	var x string
	ch := cfg.InitFeatures
	if cfg.Stem == StemImageNet {
		x = b.convBN("features.conv0", "features.norm0", "input", 3, ch, 7, 2, 3)
		x = b.relu("features.relu0", x)
		x = b.node("features.pool0", "MaxPool", []string{x},
			attrInt("ceil_mode", 0), attrInts("kernel_shape", 3, 3), attrInts("pads", 1, 1, 1, 1), attrInts("strides", 2, 2))
	} else {
		x = b.conv("features.conv0", "input", 3, ch, 3, 1, 1)
	}
	k, bw := cfg.Growth, cfg.BNSize*cfg.Growth
	for i, n := range cfg.Blocks {
		block := fmt.Sprintf("features.denseblock%d", i+1)
		feats := []string{x}
		for l := 1; l <= n; l++ {
			p := fmt.Sprintf("%s.denselayer%d", block, l)
			h := b.node(p, "Concat", feats, attrInt("axis", 1))
			h = b.bn(p+".norm1", h, ch)
			h = b.relu(p+".relu1", h)
			if cfg.Bottleneck() {
				h = b.convBN(p+".conv1", p+".norm2", h, ch, bw, 1, 1, 0)
				h = b.relu(p+".relu2", h)
				h = b.conv(p+".conv2", h, bw, k, 3, 1, 1)
			} else {
				h = b.conv(p+".conv1", h, ch, k, 3, 1, 1)
			}
			h = b.dropout(p, h)
			feats = append(feats, h)
			ch += k
		}
		x = b.node(block, "Concat", feats, attrInt("axis", 1))
		if i == len(cfg.Blocks)-1 {
			break
		}
		t := fmt.Sprintf("features.transition%d", i+1)
		out := transitionChannels(ch, cfg.Compression)
		x = b.bn(t+".norm", x, ch)
		x = b.relu(t+".relu", x)
		x = b.conv(t+".conv", x, ch, out, 1, 1, 0)
		x = b.node(t+".pool", "AveragePool", []string{x},
			attrInt("ceil_mode", 0), attrInts("kernel_shape", 2, 2), attrInts("pads", 0, 0, 0, 0), attrInts("strides", 2, 2))
		ch = out
	}
	x = b.bn("features.norm5", x, ch)
	x = b.relu("", x) // torchvision applies F.relu in forward(), outside any module
	x = b.node("", "GlobalAveragePool", []string{x})
	x = b.node("", "Flatten", []string{x}, attrInt("axis", 1))
	w := b.weight("classifier.weight", []int{cfg.Classes, ch}, func() []float32 {
		return linearUniform(tensorRand(b.opts.Seed, "classifier.weight"), cfg.Classes*ch, ch)
	})
	bias := b.weight("classifier.bias", []int{cfg.Classes}, func() []float32 { return make([]float32, cfg.Classes) })
	b.init(&b.inits, "classifier.weight", w, cfg.Classes, ch)
	b.init(&b.inits, "classifier.bias", bias, cfg.Classes)
	return b.nodeOut("classifier", "Gemm", []string{x, "classifier.weight", "classifier.bias"}, "logits",
		attrFloat("alpha", 1), attrFloat("beta", 1), attrInt("transB", 1))
}

// node appends a node for module path mod (dotted, "" for the top level) and returns its output.
func (b *graphBuilder) node(mod, op string, in []string, attrs ...*onnxpb.AttributeProto) string {
	return b.nodeOut(mod, op, in, "", attrs...)
}

// nodeOut is node with an explicit output name; "" means the exporter's <node name>_output_0.
func (b *graphBuilder) nodeOut(mod, op string, in []string, out string, attrs ...*onnxpb.AttributeProto) string {
	name := "/" + op
	if mod != "" {
		name = "/" + strings.ReplaceAll(mod, ".", "/") + name
	}
	if out == "" {
		out = name + "_output_0"
	}
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name:      proto.String(name),
		OpType:    proto.String(op),
		Input:     append([]string(nil), in...),
		Output:    []string{out},
		Attribute: attrs,
	})
	return out
}

func (b *graphBuilder) relu(mod, x string) string { return b.node(mod, "Relu", []string{x}) }

// dropout emits torchvision's F.dropout(new_features, p=drop_rate) of dense layer mod, in the
// training form when cfg.DropRate > 0; otherwise it returns x. The ratio is an attribute before
// opset 12 and an input from 12 on, a Constant node as PyTorch's exporter writes it (not an
// initializer: the initializers stay exactly the state_dict). There is no training_mode input: like
// the training form's BatchNormalization nodes, the node keeps ONNX's inference semantics, so
// runtimes pass x through, and a trainer (runtime/train) switches it to training mode.
func (b *graphBuilder) dropout(mod, x string) string {
	if b.cfg.DropRate == 0 || b.opts.Inference || b.err != nil {
		return x
	}
	ratio := float32(b.cfg.DropRate)
	if b.opset < 12 {
		return b.node(mod, "Dropout", []string{x}, attrFloat("ratio", ratio))
	}
	tp, err := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape{}, []float32{ratio}), "")
	if err != nil {
		b.err = fmt.Errorf("%s dropout ratio: %w", mod, err)
		return x
	}
	r := b.node(mod, "Constant", nil, &onnxpb.AttributeProto{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: tp})
	return b.node(mod, "Dropout", []string{x, r})
}

// init encodes data with the given shape as an initializer and appends it to *dst.
func (b *graphBuilder) init(dst *[]*onnxpb.TensorProto, name string, data []float32, shape ...int) {
	if b.err != nil {
		return
	}
	tp, err := onnx.EncodeTensor(tensor.FromSlice(tensor.Shape(shape), data), name)
	if err != nil {
		b.err = fmt.Errorf("initializer %s: %w", name, err)
		return
	}
	*dst = append(*dst, tp)
}

// bn emits BatchNormalization for module mod on c channels, with its four state_dict tensors.
func (b *graphBuilder) bn(mod, x string, c int) string {
	p := b.bnParams(mod, c)
	b.init(&b.inits, mod+".weight", p.gamma, c)
	b.init(&b.inits, mod+".bias", p.beta, c)
	b.init(&b.inits, mod+".running_mean", p.mean, c)
	b.init(&b.inits, mod+".running_var", p.variance, c)
	return b.node(mod, "BatchNormalization",
		[]string{x, mod + ".weight", mod + ".bias", mod + ".running_mean", mod + ".running_var"},
		attrFloat("epsilon", bnEpsilon), attrFloat("momentum", bnMomentum))
}

// convWeight draws the Kaiming-normal weight [cout, cin, k, k] of conv module mod.
func (b *graphBuilder) convWeight(mod string, cin, cout, k int) []float32 {
	return b.weight(mod+".weight", []int{cout, cin, k, k}, func() []float32 {
		return kaimingNormal(tensorRand(b.opts.Seed, mod+".weight"), cout*cin*k*k, cin*k*k)
	})
}

// conv emits a bias-free square Conv for module mod.
func (b *graphBuilder) conv(mod, x string, cin, cout, k, stride, pad int) string {
	b.init(&b.inits, mod+".weight", b.convWeight(mod, cin, cout, k), cout, cin, k, k)
	return b.convNode(mod, []string{x, mod + ".weight"}, k, stride, pad)
}

// convBN emits conv module cmod followed by BN module bmod: two nodes in the training form, or,
// with Inference, one Conv with the BN folded into a weight and bias named as PyTorch names them.
func (b *graphBuilder) convBN(cmod, bmod, x string, cin, cout, k, stride, pad int) string {
	if !b.opts.Inference {
		return b.bn(bmod, b.conv(cmod, x, cin, cout, k, stride, pad), cout)
	}
	w, bias := foldConvBN(b.convWeight(cmod, cin, cout, k), cout, b.bnParams(bmod, cout), bnEpsilon)
	wn := "onnx::Conv_" + strconv.Itoa(b.foldNext)
	bname := "onnx::Conv_" + strconv.Itoa(b.foldNext+1)
	b.foldNext += 3
	b.init(&b.folded, wn, w, cout, cin, k, k)
	b.init(&b.folded, bname, bias, cout)
	return b.convNode(cmod, []string{x, wn, bname}, k, stride, pad)
}

func (b *graphBuilder) convNode(mod string, in []string, k, stride, pad int) string {
	s, p := int64(stride), int64(pad)
	return b.node(mod, "Conv", in,
		attrInts("dilations", 1, 1), attrInt("group", 1), attrInts("kernel_shape", int64(k), int64(k)),
		attrInts("pads", p, p, p, p), attrInts("strides", s, s))
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// valueInfo describes a float32 tensor [batch, dims...] whose first dim is the symbol "batch".
func valueInfo(name string, dims ...int) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
		{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}},
	}}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{
			Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)},
		})
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    shape,
		}}},
	}
}

package pytorch

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Sentinel errors. Every error about file contents wraps one of them.
var (
	// ErrFormat is wrapped by errors about a file that is not a well-formed checkpoint: a
	// truncated or corrupt zip, pickle, legacy stream or safetensors header.
	ErrFormat = errors.New("malformed checkpoint")
	// ErrForbidden is wrapped by the error for a pickle that references a global a state_dict
	// never needs (os.system, builtins.eval, a model class, ...). Its text completes the phrase
	// `pickle global "posix.system" is ...`.
	ErrForbidden = errors.New("not allowed in a state_dict")
	// ErrStateDict is wrapped by errors about a well-formed checkpoint whose tensors do not fit the
	// model: missing or unexpected keys, shape or type mismatches, no state_dict at all.
	ErrStateDict = errors.New("state_dict does not match the model")
)

// StateDict maps state_dict keys ("features.conv0.weight", ...) to dense tensors, in the element
// type the checkpoint stored.
type StateDict map[string]*tensor.Tensor

// Keys returns the keys in sorted order.
func (sd StateDict) Keys() []string {
	return slices.Sorted(maps.Keys(sd))
}

// Elements returns the total number of values over all tensors.
func (sd StateDict) Elements() int64 {
	var n int64
	for _, t := range sd {
		n += int64(t.Len())
	}
	return n
}

// wrapperKeys are the entries of a training checkpoint dict under which the state_dict is looked
// for, in this order.
var wrapperKeys = []string{"state_dict", "model", "model_state_dict"}

// pickStateDict returns the dict of tensors in a checkpoint's top-level value: the value itself
// when every entry is a tensor, else the dict under one of wrapperKeys (at most three levels
// deep). path names the entry found, for messages.
func pickStateDict(v any, path string, depth int) (*pyDict, string, error) {
	d, ok := v.(*pyDict)
	if !ok {
		return nil, "", fmt.Errorf("%w: the checkpoint%s holds a %s, not a dict of tensors", ErrStateDict, path, typeName(v))
	}
	allTensors := len(d.keys) > 0
	for _, x := range d.vals {
		if _, ok := x.(*tensorRef); !ok {
			allTensors = false
			break
		}
	}
	if allTensors {
		return d, path, nil
	}
	if depth < 3 {
		for _, k := range wrapperKeys {
			if sub, ok := d.get(k); ok {
				if _, isDict := sub.(*pyDict); isDict {
					return pickStateDict(sub, path+fmt.Sprintf("[%q]", k), depth+1)
				}
			}
		}
	}
	keys := make([]string, 0, min(len(d.keys), 8))
	for i, k := range d.keys {
		if i == 8 {
			keys = append(keys, "...")
			break
		}
		keys = append(keys, fmt.Sprintf("%v (%s)", k, typeName(d.vals[i])))
	}
	if len(d.keys) == 0 {
		return nil, "", fmt.Errorf("%w: the checkpoint%s is an empty dict", ErrStateDict, path)
	}
	return nil, "", fmt.Errorf("%w: the checkpoint%s is not a state_dict (entries %s) and has no %q, %q or %q dict",
		ErrStateDict, path, strings.Join(keys, ", "), wrapperKeys[0], wrapperKeys[1], wrapperKeys[2])
}

// oldLayerKey matches the parameter names of torchvision's DenseNet before v0.2
// ("...denselayer3.norm.1.weight"); torchvision's own loader renames them with this pattern.
var oldLayerKey = regexp.MustCompile(`^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$`)

// layerRe matches the keys of dense layer <layer> of dense block <block>.
var layerRe = regexp.MustCompile(`^features\.denseblock(\d+)\.denselayer(\d+)\.`)

// NormalizeKey maps one state_dict key to the current torchvision name: it strips every leading
// "module." (nn.DataParallel and DistributedDataParallel) and joins the old-style
// "norm.1"/"conv.2" layer names into "norm1"/"conv2". It reports false for keys that carry no
// model tensor (the num_batches_tracked counters).
func NormalizeKey(key string) (string, bool) {
	for strings.HasPrefix(key, "module.") {
		key = strings.TrimPrefix(key, "module.")
	}
	if strings.HasSuffix(key, ".num_batches_tracked") {
		return "", false
	}
	if m := oldLayerKey.FindStringSubmatch(key); m != nil {
		key = m[1] + m[2]
	}
	return key, true
}

// Normalize returns sd with every key passed through NormalizeKey (dropped keys left out). Two
// keys that map to the same name are an error wrapping ErrStateDict. The tensors are shared, not
// copied.
func Normalize(sd StateDict) (StateDict, error) {
	out := make(StateDict, len(sd))
	from := make(map[string]string, len(sd))
	for _, k := range sd.Keys() {
		nk, keep := NormalizeKey(k)
		if !keep {
			continue
		}
		if prev, dup := from[nk]; dup {
			return nil, fmt.Errorf("%w: keys %q and %q both name %q", ErrStateDict, prev, k, nk)
		}
		from[nk] = k
		out[nk] = sd[k]
	}
	return out, nil
}

// InferConfig reads the DenseNet architecture from the shapes in sd (normalized first): the stem
// from features.conv0 (7x7 with norm0: ImageNet; 3x3: CIFAR), InitFeatures from its output
// channels, the dense blocks from the denselayer keys, the growth rate and bottleneck width from
// the layer convs, the compression θ from the first transition (verified against every
// transition) and the classes from the classifier. The input size cannot be seen in the weights
// (global average pooling): inputSize is used, or with 0 the stem's usual size (224 ImageNet,
// 32 CIFAR). Drop rate is an eval-time no-op and is left 0. The result is validated.
func InferConfig(sd StateDict, inputSize int) (builders.Config, error) {
	sd, err := Normalize(sd)
	if err != nil {
		return builders.Config{}, err
	}
	bad := func(format string, args ...any) (builders.Config, error) {
		return builders.Config{}, fmt.Errorf("%w: cannot infer the DenseNet architecture: "+format, append([]any{ErrStateDict}, args...)...)
	}
	shape := func(key string, rank int) (tensor.Shape, error) {
		t, ok := sd[key]
		if !ok {
			return nil, fmt.Errorf("%w: cannot infer the DenseNet architecture: no %q", ErrStateDict, key)
		}
		if t.Rank() != rank {
			return nil, fmt.Errorf("%w: cannot infer the DenseNet architecture: %q has shape %s, want rank %d", ErrStateDict, key, t.Shape, rank)
		}
		return t.Shape, nil
	}
	var cfg builders.Config
	conv0, err := shape("features.conv0.weight", 4)
	if err != nil {
		return builders.Config{}, err
	}
	_, hasNorm0 := sd["features.norm0.weight"]
	switch {
	case conv0[2] == 7 && conv0[3] == 7 && hasNorm0:
		cfg.Stem, cfg.InputSize = builders.StemImageNet, 224
	case conv0[2] == 3 && conv0[3] == 3 && !hasNorm0:
		cfg.Stem, cfg.InputSize = builders.StemCIFAR, 32
	default:
		return bad("features.conv0.weight has shape %s (norm0 present: %v); want a 7x7 conv with norm0 (ImageNet) or a 3x3 conv without (CIFAR)", conv0, hasNorm0)
	}
	if inputSize > 0 {
		cfg.InputSize = inputSize
	}
	cfg.InitFeatures = conv0[0]

	// Blocks: count denselayer<j> for denseblock1, 2, ... until a block is absent.
	layers := map[int]int{}
	for k := range sd {
		if m := layerRe.FindStringSubmatch(k); m != nil {
			b, _ := strconv.Atoi(m[1])
			l, _ := strconv.Atoi(m[2])
			layers[b] = max(layers[b], l)
		}
	}
	for b := 1; layers[b] > 0; b++ {
		cfg.Blocks = append(cfg.Blocks, layers[b])
	}
	if len(cfg.Blocks) == 0 {
		return bad("no features.denseblock1.denselayer1 tensors")
	}
	if len(cfg.Blocks) != len(layers) {
		return bad("dense blocks are not numbered 1..%d", len(layers))
	}

	l1 := "features.denseblock1.denselayer1."
	c1, err := shape(l1+"conv1.weight", 4)
	if err != nil {
		return builders.Config{}, err
	}
	if c2, ok := sd[l1+"conv2.weight"]; ok { // bottleneck: conv1 1x1 to BNSize*k, conv2 3x3 to k
		if c2.Rank() != 4 || c2.Shape[0] == 0 || c1[0]%c2.Shape[0] != 0 {
			return bad("%sconv1.weight %s and conv2.weight %s are not a bottleneck of width BNSize*k", l1, c1, c2.Shape)
		}
		cfg.Growth, cfg.BNSize = c2.Shape[0], c1[0]/c2.Shape[0]
	} else {
		cfg.Growth = c1[0]
	}

	// Transitions: transition b maps in_b = InitFeatures-or-previous-out + Blocks[b]*k channels
	// to out_b = floor(θ*in_b); θ is chosen to reproduce every out_b.
	var outs, ins []int
	ch := cfg.InitFeatures
	for b, n := range cfg.Blocks[:len(cfg.Blocks)-1] {
		ch += n * cfg.Growth
		key := fmt.Sprintf("features.transition%d.conv.weight", b+1)
		tw, err := shape(key, 4)
		if err != nil {
			return builders.Config{}, err
		}
		if tw[1] != ch || tw[0] == 0 || tw[0] > ch {
			return bad("%s has shape %s; the dense layers before it give %d input channels", key, tw, ch)
		}
		outs, ins = append(outs, tw[0]), append(ins, ch)
		ch = tw[0]
	}
	theta, ok := compressionFor(outs, ins)
	if !ok {
		return bad("no single compression θ gives the transition widths %v from %v channels", outs, ins)
	}
	cfg.Compression = theta
	cls, err := shape("classifier.weight", 2)
	if err != nil {
		return builders.Config{}, err
	}
	cfg.Classes = cls[0]
	if err := cfg.Validate(); err != nil {
		return builders.Config{}, fmt.Errorf("%w: inferred architecture is invalid: %w", ErrStateDict, err)
	}
	return cfg, nil
}

// compressionFor returns a θ in (0,1] with floor(θ*ins[i]) = outs[i] for every transition i:
// 1 or the usual 0.5 when they fit, else the smallest θ the widths allow, out/in, nudged up past
// float64 rounding. With no transitions θ is 1.
func compressionFor(outs, ins []int) (float64, bool) {
	fits := func(theta float64) bool {
		for i := range outs {
			if int(theta*float64(ins[i])) != outs[i] {
				return false
			}
		}
		return theta > 0 && theta <= 1
	}
	for _, theta := range []float64{1, 0.5} {
		if fits(theta) {
			return theta, true
		}
	}
	lo := 0.0
	for i := range outs {
		lo = max(lo, float64(outs[i])/float64(ins[i]))
	}
	for i := 0; i < 4; i++ {
		if fits(lo) {
			return lo, true
		}
		lo = math.Nextafter(lo, 2)
	}
	return 0, false
}

package pytorch

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// MetaWeights is the metadata_props key Convert adds, with the value "pytorch state_dict", to
// say that the initializers are trained weights and the recorded seed is meaningless.
const MetaWeights = builders.MetaPrefix + "weights"

// maxProblems bounds how many mismatches one error lists.
const maxProblems = 12

// Convert builds the DenseNet cfg describes with the weights of the state_dict sd, in the form
// opts selects (training, or inference with BNs folded into the convs, opts.Inference) at
// opts.Opset. sd's keys are normalized first (see Normalize). Every model tensor must be present
// with the model's shape and a floating-point type (float16, bfloat16 and float64 are converted
// to float32), and every key must name a model tensor; otherwise the error, wrapping
// ErrStateDict, lists each missing key, unexpected key and mismatch with both shapes.
// opts.Weights must be nil: Convert supplies it. opts.Seed is irrelevant, since every tensor
// comes from sd.
func Convert(sd StateDict, cfg builders.Config, opts builders.BuildOptions) (*onnxpb.ModelProto, error) {
	if opts.Weights != nil {
		return nil, fmt.Errorf("convert: %w: BuildOptions.Weights is set; Convert takes the weights from the state_dict", builders.ErrOptions)
	}
	nsd, err := Normalize(sd)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	want, err := modelShapes(cfg, opts.Opset)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	if err := match(nsd, want, cfg); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	opts.Weights = nsd
	m, err := builders.Build(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{
		Key: proto.String(MetaWeights), Value: proto.String("pytorch state_dict"),
	})
	return m, nil
}

// modelShapes returns the shape of every state_dict tensor of cfg's model: the initializers of
// its training form, which are named and shaped exactly like torchvision's state_dict.
func modelShapes(cfg builders.Config, opset int) (map[string]tensor.Shape, error) {
	m, err := builders.Build(cfg, builders.BuildOptions{Opset: opset})
	if err != nil {
		return nil, err
	}
	shapes := make(map[string]tensor.Shape, len(m.Graph.Initializer))
	for _, tp := range m.Graph.Initializer {
		s := make(tensor.Shape, len(tp.Dims))
		for i, d := range tp.Dims {
			s[i] = int(d)
		}
		shapes[tp.GetName()] = s
	}
	return shapes, nil
}

// match compares the normalized state_dict with the model's tensors and reports every missing
// key, unexpected key, shape mismatch and non-float tensor in one error.
func match(sd StateDict, want map[string]tensor.Shape, cfg builders.Config) error {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		t, ok := sd[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing key %q (model shape %s)", k, want[k]))
		case !t.Shape.Equal(want[k]):
			problems = append(problems, fmt.Sprintf("key %q: checkpoint shape %s, model shape %s", k, t.Shape, want[k]))
		case !t.DType.IsFloat():
			problems = append(problems, fmt.Sprintf("key %q: element type %s, want a floating-point type", k, t.DType))
		}
	}
	for _, k := range sd.Keys() {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected key %q (checkpoint shape %s)", k, sd[k].Shape))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	n := len(problems)
	if n > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("and %d more", n-maxProblems))
	}
	return fmt.Errorf("%w %s (%d problems): %s", ErrStateDict, cfg, n, strings.Join(problems, "; "))
}

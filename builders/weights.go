package builders

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// numBatchesTracked ends the key of the int64 step counter every torch BatchNorm keeps in its
// state_dict. It has no role in inference or in ONNX training, so Build accepts and ignores it.
const numBatchesTracked = ".num_batches_tracked"

// weight returns the float32 values of the state_dict tensor called name with the given shape:
// opts.Weights[name] converted to float32 when present (its shape must equal shape exactly),
// otherwise gen(). Supplied tensors are read, never modified or retained.
func (b *graphBuilder) weight(name string, shape []int, gen func() []float32) []float32 {
	w, ok := b.opts.Weights[name]
	if !ok {
		return gen()
	}
	if b.used == nil {
		b.used = map[string]bool{}
	}
	b.used[name] = true
	if b.err != nil {
		return make([]float32, tensor.Shape(shape).Size())
	}
	if w == nil || !w.Shape.Equal(tensor.Shape(shape)) {
		got := "nil"
		if w != nil {
			got = w.Shape.String()
		}
		b.err = fmt.Errorf("%w: weight %q has shape %s, the model needs %v", ErrOptions, name, got, shape)
		return make([]float32, tensor.Shape(shape).Size())
	}
	data, err := toFloat32(w)
	if err == nil && len(data) != w.Shape.Size() {
		err = fmt.Errorf("%d values for shape %s", len(data), w.Shape)
	}
	if err != nil {
		b.err = fmt.Errorf("%w: weight %q: %v", ErrOptions, name, err)
		return make([]float32, tensor.Shape(shape).Size())
	}
	return data
}

// bnParams returns the γ, β, running mean and running variance of BN module mod on c channels:
// the tensors mod.weight, mod.bias, mod.running_mean and mod.running_var from opts.Weights where
// given, torchvision's initial state (newBN) for the others.
func (b *graphBuilder) bnParams(mod string, c int) bnParams {
	p := newBN(c)
	field := func(suffix string, def []float32) []float32 {
		return b.weight(mod+suffix, []int{c}, func() []float32 { return def })
	}
	return bnParams{
		gamma:    field(".weight", p.gamma),
		beta:     field(".bias", p.beta),
		mean:     field(".running_mean", p.mean),
		variance: field(".running_var", p.variance),
	}
}

// checkWeightsUsed reports the opts.Weights keys that name no tensor of the model (other than
// num_batches_tracked counters), so a misspelt or foreign key is never silently dropped.
func (b *graphBuilder) checkWeightsUsed() error {
	var unknown []string
	for name := range b.opts.Weights {
		if !b.used[name] && !strings.HasSuffix(name, numBatchesTracked) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	const show = 5
	list := strings.Join(quoteAll(unknown[:min(show, len(unknown))]), ", ")
	if len(unknown) > show {
		list += fmt.Sprintf(" and %d more", len(unknown)-show)
	}
	return fmt.Errorf("%w: %d weights name no tensor of %s: %s", ErrOptions, len(unknown), b.cfg.Variant(), list)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// toFloat32 returns t's values as a fresh []float32. Float16, BFloat16 and Float64 are converted
// (a checkpoint saved with .half() or .double() still loads); other types are refused.
func toFloat32(t *tensor.Tensor) ([]float32, error) {
	switch d := t.Data.(type) {
	case []float32:
		return slices.Clone(d), nil
	case []tensor.F16:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = v.Float32()
		}
		return out, nil
	case []tensor.BF16:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = v.Float32()
		}
		return out, nil
	case []float64:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("element type %s is not a floating-point type", t.DType)
}

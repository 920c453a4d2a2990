package serve

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dnx-ml/dnx"
)

// wireInput is one input tensor of a request as a protocol front end (REST JSON, REST binary,
// gRPC) read it: its declared name, datatype and shape, and a function producing its elements in
// the raw encoding, called only once the declaration fits the model (so that a wrong shape is
// reported before any data is parsed).
type wireInput struct {
	field    string // where it is in the request, for errors: `inputs[0]`
	name     string
	datatype string
	shape    []int64
	decode   func(d dnx.DType, n int) ([]byte, error)
}

// wireOutput is one output of a response in the raw encoding.
type wireOutput struct {
	name  string
	dtype dnx.DType
	shape []int
	raw   []byte
}

// inferRequest is a protocol-independent inference request.
type inferRequest struct {
	inputs []wireInput
	// outputs are the requested output names, in the request's order; empty for all.
	outputs []string
}

// inferResult is what infer returns: the outputs in the requested (or the model's) order.
type inferResult struct {
	outputs []wireOutput
}

// infer validates req against m, runs it through m's batcher and encodes the outputs. start is
// when the request arrived, for the request duration metric.
func (s *Server) infer(ctx context.Context, m *servedModel, req inferRequest, start time.Time) (res inferResult, err error) {
	rows := 0
	var t timing
	defer func() {
		s.metrics.request(m, rows, time.Since(start), t, err)
	}()
	outNames, err := selectOutputs(m, req.outputs)
	if err != nil {
		return res, err
	}
	arrived := m.batch.arrive()
	inputs, n, err := decodeInputs(m, req.inputs)
	if err != nil {
		arrived()
		return res, err
	}
	if !m.batchable {
		n = 1
	}
	arrived()
	r, err := m.batch.submit(ctx, inputs, n)
	if err != nil {
		return res, err
	}
	t = r.timing
	for _, name := range outNames {
		o := r.outputs[name]
		if o == nil {
			return res, fmt.Errorf("model %s returned no output %q", m.name, name)
		}
		raw, err := o.AppendBytes(nil)
		if err != nil {
			return res, fmt.Errorf("output %q: %w", name, err)
		}
		res.outputs = append(res.outputs, wireOutput{name: name, dtype: o.DType(), shape: o.Shape(), raw: raw})
	}
	rows = n
	return res, nil
}

// selectOutputs checks the requested output names against the model; none means all, in the
// model's order.
func selectOutputs(m *servedModel, names []string) ([]string, error) {
	if len(names) == 0 {
		all := make([]string, len(m.outputs))
		for i, o := range m.outputs {
			all[i] = o.Name
		}
		return all, nil
	}
	seen := map[string]bool{}
	for i, name := range names {
		if !hasValue(m.outputs, name) {
			return nil, badRequest("outputs[%d]: model %q has no output %q (outputs: %s)", i, m.name, name, valueNames(m.outputs))
		}
		if seen[name] {
			return nil, badRequest("outputs[%d]: output %q is requested twice", i, name)
		}
		seen[name] = true
	}
	return names, nil
}

// decodeInputs checks each declared input against the model (name, datatype, rank, fixed dims,
// symbolic dims consistent across inputs), decodes its data, and checks that every model input
// is there. It returns the tensors and their common first dim (the request's batch size; 1 when
// the inputs are scalars).
func decodeInputs(m *servedModel, ins []wireInput) (map[string]*dnx.Tensor, int, error) {
	out := make(map[string]*dnx.Tensor, len(ins))
	symbols := map[string]int64{}
	rows := 1
	for i, in := range ins {
		// The field's name is made only for an error: a request that fits the model pays nothing.
		field := fieldName{in.field, in.name}
		info, ok := findValue(m.inputs, in.name)
		if !ok {
			return nil, 0, badRequest("%s: model %q has no input %q (inputs: %s)", in.field, m.name, in.name, valueNames(m.inputs))
		}
		if out[in.name] != nil {
			return nil, 0, badRequest("%s: input given twice", field)
		}
		d, ok := parseDatatype(in.datatype)
		if !ok {
			return nil, 0, badRequest("%s: datatype %q is not a protocol datatype (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BF16)", field, in.datatype)
		}
		if d != info.DType {
			return nil, 0, badRequest("%s: datatype %s, the model takes %s", field, in.datatype, datatypeName(info.DType))
		}
		if err := checkShape(info, in.shape, symbols); err != nil {
			return nil, 0, badRequest("%s: %v", field, err)
		}
		n, err := elementCount(in.shape, d.ByteSize())
		if err != nil {
			return nil, 0, badRequest("%s: %v", field, err)
		}
		raw, err := in.decode(d, n)
		if err != nil {
			return nil, 0, badRequest("%s: %v", field, err)
		}
		shape := make([]int, len(in.shape))
		for k, v := range in.shape {
			shape[k] = int(v)
		}
		t, err := dnx.TensorFromBytes(d, shape, raw)
		if err != nil {
			return nil, 0, badRequest("%s: %v", field, err)
		}
		out[in.name] = t
		if i == 0 && len(shape) > 0 {
			rows = shape[0]
		}
	}
	var missing []string
	for _, v := range m.inputs {
		if out[v.Name] == nil {
			missing = append(missing, fmt.Sprintf("%q", v.Name))
		}
	}
	if len(missing) > 0 {
		return nil, 0, badRequest("inputs: missing %s (model %q takes: %s)", strings.Join(missing, ", "), m.name, valueNames(m.inputs))
	}
	return out, rows, nil
}

// fieldName names an input in errors (`inputs[0] "x"`), formatted only when an error is.
type fieldName struct{ field, name string }

func (f fieldName) String() string { return fmt.Sprintf("%s %q", f.field, f.name) }

// checkShape checks a declared shape against the model's: same rank, fixed dims equal, symbolic
// dims at least 1 and equal wherever the same name appears (symbols collects them across inputs).
func checkShape(info dnx.ValueInfo, shape []int64, symbols map[string]int64) error {
	if !info.Ranked {
		return nil
	}
	if len(shape) != len(info.Shape) {
		return fmt.Errorf("shape %v has rank %d, the model takes rank %d %s", shape, len(shape), len(info.Shape), dimsString(info))
	}
	for k, d := range info.Shape {
		got := shape[k]
		switch {
		case d.Fixed() && got != int64(d.Size):
			return fmt.Errorf("shape %v: dim %d is %d, the model takes %s", shape, k, got, dimsString(info))
		case !d.Fixed() && got < 1:
			return fmt.Errorf("shape %v: dim %d (%s) must be at least 1", shape, k, d)
		case !d.Fixed() && d.Name != "":
			if prev, ok := symbols[d.Name]; ok && prev != got {
				return fmt.Errorf("shape %v: dim %d (%s) is %d, another input has %s = %d", shape, k, d.Name, got, d.Name, prev)
			}
			symbols[d.Name] = got
		}
	}
	return nil
}

func dimsString(v dnx.ValueInfo) string {
	parts := make([]string, len(v.Shape))
	for i, d := range v.Shape {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func findValue(vs []dnx.ValueInfo, name string) (dnx.ValueInfo, bool) {
	for _, v := range vs {
		if v.Name == name {
			return v, true
		}
	}
	return dnx.ValueInfo{}, false
}

func hasValue(vs []dnx.ValueInfo, name string) bool {
	_, ok := findValue(vs, name)
	return ok
}

func valueNames(vs []dnx.ValueInfo) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}

// metadataShape is a value's shape for the protocol's metadata: -1 for dims that vary.
func metadataShape(v dnx.ValueInfo) []int64 {
	out := make([]int64, len(v.Shape))
	for i, d := range v.Shape {
		out[i] = int64(d.Size)
	}
	return out
}

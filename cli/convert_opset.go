package cli

import (
	"fmt"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	opsetconv "github.com/dnx-ml/dnx/converters/opset"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// convertOpset is `dnx convert IN.onnx --opset N -o OUT.onnx`: it reads the model at in, rewrites
// its default-domain operators to opset N (see package converters/opset) and writes the result
// to out, replacing any file there only once the new one is complete. It prints one line saying
// what changed. A model whose tensors live in external data files must be written in the same
// folder, since those files are found relative to the model.
func convertOpset(c *ucli.Context, in, out string, opset int) error {
	if opset < opsetconv.MinTarget || opset > opsetconv.MaxTarget {
		return usagef("convert: --opset %d: dnx converts to opsets %d to %d", opset, opsetconv.MinTarget, opsetconv.MaxTarget)
	}
	if out == "" {
		return usagef("convert: missing the output file (-o OUT.onnx)")
	}
	m, err := onnx.ReadModelFile(in)
	if err != nil {
		return err
	}
	if hasExternalData(m) && !sameDir(in, out) {
		return fmt.Errorf("%s: the model keeps tensors in external data files, which are found relative to the model: write the converted model in %s",
			in, filepath.Dir(in))
	}
	conv, err := opsetconv.Convert(m, opset)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := onnx.WriteModelFile(out, conv); err != nil {
		return err
	}
	from := "none"
	for _, o := range m.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			from = fmt.Sprint(o.GetVersion())
		}
	}
	_, err = fmt.Fprintf(c.App.Writer, "%s: opset %s -> %d, IR %d -> %d, %d -> %d nodes; wrote %s\n",
		in, from, opset, m.GetIrVersion(), conv.GetIrVersion(), len(m.GetGraph().GetNode()), len(conv.GetGraph().GetNode()), out)
	return err
}

// hasExternalData reports whether an initializer or a Constant value of m is stored outside the
// model file.
func hasExternalData(m *onnxpb.ModelProto) bool {
	for _, t := range m.GetGraph().GetInitializer() {
		if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			return true
		}
	}
	for _, n := range m.GetGraph().GetNode() {
		for _, a := range n.GetAttribute() {
			if a.GetT().GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
				return true
			}
		}
	}
	return false
}

// sameDir reports whether two file paths are in the same folder.
func sameDir(a, b string) bool {
	da, err1 := filepath.Abs(filepath.Dir(a))
	db, err2 := filepath.Abs(filepath.Dir(b))
	return err1 == nil && err2 == nil && da == db
}

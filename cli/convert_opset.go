package cli

import (
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	opsetconv "github.com/dnx-ml/dnx/converters/opset"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// convertOpset is `dnx convert IN.onnx --opset N -o OUT.onnx`: it rewrites the default-domain
// operators of the model m, read from in, to opset N (see package converters/opset) and writes
// the result to out, replacing any file there only once the new one is complete. It prints one
// line saying what changed. A model whose tensors live in external data files must be written in
// the same folder, since those files are found relative to the model. convertAction has checked
// the flags and the files.
func convertOpset(c *ucli.Context, in, out string, m *onnxpb.ModelProto, opset int) error {
	if len(externalFiles(m, in)) > 0 && !sameDir(in, out) {
		return fmt.Errorf("convert: %s keeps tensors in external data files, which are found relative to the model: write the converted model in %s",
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
	_, err = fmt.Fprintf(c.App.Writer, "%s: opset %s -> %d, IR %d -> %d, %d -> %s; wrote %s\n",
		in, from, opset, m.GetIrVersion(), conv.GetIrVersion(), len(m.GetGraph().GetNode()), plural.Count(len(conv.GetGraph().GetNode()), "node"), out)
	return err
}

// sameDir reports whether two file paths are in the same folder.
func sameDir(a, b string) bool {
	da, err1 := filepath.Abs(filepath.Dir(a))
	db, err2 := filepath.Abs(filepath.Dir(b))
	return err1 == nil && err2 == nil && da == db
}

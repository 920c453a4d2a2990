// Package ops defines what each ONNX operator means, independent of how or where it runs: its
// attributes decoded into a typed Op value (once, at import), and its shape and type inference.
//
// # Versions
//
// An operator's meaning depends on the opset the model imports. A Schema covers one operator from
// its Since version up to the next Schema of the same operator; Registry.Lookup picks the newest
// Schema whose Since is at or below the model's opset. Attribute-to-input moves (Pad's pads, Clip's
// min/max, Squeeze/Unsqueeze/ReduceMean axes, Split's split) are absorbed here: the decoded Op says
// whether a value is static (from an attribute) or comes from an input, so kernels see one form.
//
// # Shapes
//
// Inference keeps symbolic dims by name: a graph input of shape [batch,3,224,224] gives a Conv
// output [batch,64,112,112]. A dim that cannot be known before run time is Unknown. Inference
// never needs input values except where the ONNX spec does (Reshape's shape, Slice's starts, ...),
// and then uses Arg.Const when the input is a constant.
//
// Kernels (runtime/kernels/...) run decoded Ops; this package never touches tensor data except
// constant inputs during inference.
package ops

// Package opset converts an ONNX model from one default-domain ("" / "ai.onnx") opset to another,
// upward or downward, for every operator dnx implements, so that a model exported at opset 17 can
// be handed to a runtime that stops at 13, and an opset-11 export can use today's operator forms.
//
// # Scope
//
// Convert takes a model whose default-domain opset is between 11 and 25 and rewrites it to a
// target between 11 and 21. It returns a deep copy; the input is never modified. The model's
// default-domain nodes must all be operators dnx implements (Conv, BatchNormalization, Relu,
// LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Clip, Concat, AveragePool, MaxPool,
// GlobalAveragePool, GlobalMaxPool, Gemm, MatMul, Flatten, Reshape, Transpose, Squeeze, Unsqueeze,
// Split, Slice, Softmax, LogSoftmax, Add, Sub, Mul, Div, Identity, Dropout, Pad, Constant,
// ConstantOfShape, Shape, Gather, ReduceMean, Cast, SoftmaxCrossEntropyLoss,
// NegativeLogLikelihoodLoss); nodes of other domains are left as they are.
//
// The conversion is done in one hop per node: every rule knows the two forms of its operator and
// the version that separates them, so 11 -> 21 and 21 -> 11 are single rewrites, not chains.
//
// # Rewrites
//
// Where an operator's form changed inside the range, the node is rewritten to the target's form:
//
//   - Squeeze, Unsqueeze (13): the axes attribute becomes an int64 input, and back;
//   - Split (13, 18): the split attribute becomes an input, and from 18 an equal split names its
//     part count in num_outputs. Below 18 an uneven num_outputs split (last part smaller) gets
//     explicit sizes when the axis size is known; when it is not, the older equal split is used,
//     which gives the same parts whenever the size divides and fails at run time otherwise;
//   - ReduceMean (18): axes becomes an input; noop_with_empty_axes=1 without axes becomes
//     Identity below 18;
//   - Softmax, LogSoftmax (13): before 13 the input is coerced to 2-D at axis (default 1); from 13
//     the operator normalizes along one axis (default -1). When the two meanings coincide (the
//     axis is the last dim, or every other dim of the coerced region is 1) only the axis changes;
//     otherwise the node is wrapped so that it normalizes the same groups in the same order
//     (bit-identical results): upward Reshape(Softmax(Flatten(X, axis)), Shape(X)), downward
//     Transpose(Softmax(Transpose(X))) moving the axis last, which needs the input's rank;
//   - Dropout (12): the ratio attribute becomes an input, and training_mode appears. Below 12 the
//     mask output has no specified value outside training (ONNX Runtime returns all false), so a
//     used mask is computed as ConstantOfShape(Shape(X), true), its value from 12 on;
//   - BatchNormalization (14): training_mode replaces "five outputs means training": a training
//     node gets named saved_mean/saved_var outputs below 14, which are dropped above when unused;
//   - Reshape (14): allowzero;
//   - Shape (15): start and end, rewritten as Shape + Slice below 15 (Slice clamps the same way);
//   - Pad (18, 19): a constant axes input is expanded into full-rank pads below 18; wrap needs 19;
//   - AveragePool (19): dilations, droppable below 19 only when all 1;
//   - Cast (19, 24): saturate and round_mode only concern float8 targets and are dropped below;
//   - Constant (12): value_float, value_ints, ... become a value tensor below 12;
//   - HardSwish (14): below 14, where it does not exist, it becomes its ONNX function body,
//     Mul(X, HardSigmoid(X, alpha=1/6, beta=0.5)), which may differ in the last bit (a multiply
//     by the float32 nearest 1/6 instead of a division by 6); upward the pair is kept.
//
// Every other operator keeps its form; only its element types are checked against the target
// version (bfloat16 before 13, the 8- and 16-bit integers of Add/Sub/Mul/Div before 14, integer
// Relu before 14, integer Clip before 12, uint8/int8 MaxPool before 12, and so on). ceil_mode of
// the pooling operators is passed through: dnx applies one rule at every version.
//
// A value moved from an input to an attribute must be a constant: an initializer (not also a
// graph input, which would make it overridable) or the output of a Constant node. The constant is
// removed when nothing else uses it. Values created by the conversion (axes, split sizes, ratios)
// become int64 or float32 initializers, and helper nodes get fresh names that no value or node
// of the model uses.
//
// # Refusals
//
// A conversion that cannot be exact is refused with an error wrapping ErrUnconvertible that
// names the node, its operator, the two opsets and the reason: an axes input that is computed at
// run time but must become an attribute, Reshape allowzero=1 with a shape that may hold a zero,
// Dropout in training mode (or with a training_mode computed at run time) below 12, AveragePool
// dilations other than 1 below 19, Pad's wrap mode below 19, a type the target version does not
// accept, an operator that does not exist at the target (the losses before 12). Operators dnx does
// not implement are refused with an error wrapping ops.ErrUnsupportedOp, and so are model-local
// functions that use the default domain (they are not converted).
//
// # Shapes and types
//
// Some rules need element types or ranks (Softmax, Pad's axes, Split's uneven parts, the type
// checks). They come from dnx's own import and inference (runtime/graph) of the source model,
// run on a copy in which nodes of other domains and external-data initializers are replaced by
// typed graph inputs where the model declares their types; when that import fails, the types the
// model declares (inputs, initializers, value_info, outputs) are used. A rule that needs a fact
// nobody knows refuses; a type check whose type is unknown is skipped.
//
// # Model header
//
// The default-domain entry of opset_import is set to the target; other domains are kept.
// ir_version is raised, never lowered, to the minimum the target opset needs: IR 6 for opset 11,
// 7 for 12-14, 8 for 15-18, 9 for 19-20 and 10 for 21. The rest of the model's description
// (producer, domain, model_version, doc_string, metadata_props, the graph's doc_string) is copied
// as it is, since Convert works on a copy of the protobuf: metadata_props keep their order, and a
// repeated key stays repeated (graph.Import is what collapses it). A rewritten node keeps its name
// and doc_string; the helper nodes a rewrite adds have none.
package opset

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
//
// # Adding an operator
//
// An operator touches these places; each is where the code looks it up, so a missing entry
// fails loudly (an error naming the node) rather than silently, except where noted:
//
//  1. Here: a concrete Op type with typed attributes, its Infer (shapes, symbolic dims kept), and
//     a Schema per version that changed it (Since) in its family's list (nnSchemas,
//     elementwiseSchemas, tensorSchemas, fusedSchemas), which Default registers. Absorb
//     attribute-to-input moves in Decode so kernels see one form.
//  2. runtime/kernels/ref: the reference kernel, the obvious loop, in its family's map (ref.Kernels,
//     keyed by op type). exec.New and plan.Compile refuse a node without one; constant folding
//     (passes.FoldConstants, plan.Infer's compile-time folding, which the trainer shares) also
//     runs it.
//  3. A device's lowering, optionally: for the CPU, a runtime/kernels/cpu kernel (tested
//     against the reference, benchmarked at DenseNet shapes) and its case in cpudev's
//     Device.Lower (runtime/device/cpudev/lower.go), with a reason for every input it declines
//     (shown by `dnx inspect --plan`). Reshape-like ops go in runtime/plan/place.go's aliasOps
//     instead. Without this the plan runs the reference kernel: correct, not fast.
//  4. runtime/train, if it is trainable: a unit in plan.newUnit's switch, its parameter input
//     positions in paramPositions (trainer.go), and the operator lists in train/doc.go, New's doc
//     comment and newUnit's error messages (these lists are prose: nothing checks them).
//  5. converters/opset/rules.go: an opRule (first opset, element types per version, a rewrite
//     where its form changed within 11..25), and the list in converters/opset/doc.go. dnx convert
//     --opset refuses an operator without a rule.
//  6. runtime/exec/exclusions_test.go: TestConformance runs every ONNX backend test of the shared
//     data not excluded there; remove the operator's exclusions (with their reason constant when
//     unused), or add them with a reason when a variant stays unsupported.
//  7. runtime/passes, by review: passes that switch on op types (EliminateIdentity's no-ops,
//     FoldConstants' exceptions for Constant and random ops such as Dropout, EliminateZeroPad,
//     FoldConvBN, FuseBNReluConv, FuseConvActivation, PoolBeforePointwiseConv) and
//     runtime/graph/stats.go, whose MAC count knows Conv, ConvTranspose, Gemm and MatMul.
//     graph.Export needs nothing: it writes the node's attributes as imported.
//  8. Docs: README.md's package table when the operator widens what dnx runs, and builders when a
//     DenseNet variant uses it (builders/build.go lists the ops Build emits per opset).
package ops

// Package passes rewrites a graph.Graph into an equivalent one that runs faster or exports
// cleaner: eliminations (Identity, inference Dropout, single-input Concat, all-zero Pad),
// constant folding, Conv->BatchNormalization folding, moving an average pool before the 1x1
// convolution that feeds it, fusions into dnx's FusedConv and FusedAveragePool, and dead code
// elimination.
//
// # Passes
//
// A Pass is one rewrite applied everywhere it matches. Run reports whether it changed the graph;
// a pass that does not apply returns (false, nil), and errors are kept for graphs that break the
// invariants graph.Validate checks. Each pass checks its most selective condition first and
// declines quietly on anything unusual (non-float types, non-constant parameters, values that are
// graph outputs or have other readers), as onnxruntime's optimizers do. Every pass keeps the
// names of the graph's outputs: when a removed node produced a graph output, the surviving value
// takes that name.
//
// Passes never touch the model-level description (producer, doc strings, metadata_props; see
// graph's "Model metadata"), so `dnx convert --optimize` writes what it read. A node rewritten in
// place (a Conv that absorbs a BN, becomes a FusedConv, or trades places with a pool) keeps its
// Node.DocString; the doc_string of a node a pass removes goes with it, because what it
// described no longer exists as a node.
//
// # Pipelines
//
// A Pipeline runs a list of passes in turn until a whole round changes nothing, validating the
// graph after every change. Three are predefined:
//
//   - Inference: everything, including the dnx-only fusions; the result runs only on dnx.
//   - Portable: standard-ONNX rewrites only (eliminations, constant folding, Conv-BN folding, pool
//     before 1x1 convolution, dead code), so that graph.Export can write the result for any
//     runtime (`dnx convert --optimize`).
//   - Training: eliminations only; BatchNormalization stays a node (its statistics are trained)
//     and Dropout stays (it is active while training).
//
// # Fused operators
//
// FusedConv (ops.FusedConv, domain ops.DomainDNX) is a Conv with a per-channel affine+ReLU
// prologue and a ReLU epilogue. FuseBNReluConv turns DenseNet's pre-activation
// Concat -> BN -> ReLU -> Conv into a prologue, since that BN cannot be folded into weights (the
// Conv's zero padding must see normalized values); FuseConvActivation turns Conv -> ReLU into an
// epilogue. FusedAveragePool is an AveragePool with the same prologue: DenseNet's transition
// BN -> ReLU -> Conv 1x1 -> AveragePool becomes, after PoolBeforePointwiseConv, BN -> ReLU ->
// AveragePool -> Conv 1x1, and FuseBNReluConv gives the BN-ReLU to the pool. A graph holding a
// fused operator cannot be exported.
package passes

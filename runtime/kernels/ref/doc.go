// Package ref holds dnx's reference kernels: for every operator, the obvious loop, with its math in
// the doc comment. They are the oracle every optimized or device kernel is tested against, and the
// executor's fallback for any op a faster device does not implement.
//
// Reference kernels favour clarity over speed: they allocate their outputs, index with plain
// row-major arithmetic and use float64 accumulators only where ONNX's reference does.
package ref

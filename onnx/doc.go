// Package onnx reads and writes ONNX files: models (ModelProto) and single tensors (TensorProto),
// and converts between TensorProto and tensor.Tensor. It knows nothing about graphs or execution;
// the graph package imports a ModelProto into dnx's IR.
//
// # Models
//
// ReadModelFile and ReadModel parse a ModelProto and check its structure (graph present,
// ir_version in MinIRVersion..MaxIRVersion, a usable opset_import). They do not load external
// data: that happens per tensor, in DecodeTensor. WriteModelFile and MarshalModel serialize
// deterministically, so re-exporting an unchanged model gives the same bytes.
//
// # Tensors
//
// DecodeTensor accepts each encoding ONNX defines for the element types dnx holds:
//
//	raw_data      every fixed-size type, little-endian (bool: one byte per element)
//	float_data    float32
//	int32_data    int32, int16, int8, uint16, uint8, bool; float16 and bfloat16 as 16-bit patterns
//	int64_data    int64
//	double_data   float64
//	uint64_data   uint32, uint64
//	string_data   string
//	external data every fixed-size type, read from a file next to the model
//
// float8, 4- and 2-bit, float4 and complex tensors are refused with ErrUnsupportedType.
// EncodeTensor always writes raw_data (string_data for strings).
//
// # Untrusted input
//
// Model and tensor files are user input. Nothing is sized from a header field alone: files are
// capped at MaxProtoSize before they are read, dims pass tensor.CheckShape, and a tensor is only
// allocated once the bytes or elements actually present match what its dims imply. External data
// locations must be relative and stay inside the model's directory, also through symlinks.
// Errors wrap ErrCorrupt, ErrExternalData, ErrUnsupported (ErrUnsupportedType, ErrIRVersion), and
// name the file or tensor at fault.
//
// # Writing files
//
// Every file this package writes goes through WriteFileAtomic (temporary file, fsync, rename), so an
// interrupted write never leaves a truncated model behind.
package onnx

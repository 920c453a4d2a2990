// Package tensor defines the host-side value type every other dnx package passes around: a dense,
// row-major (C order) array with an element type and a shape.
//
// # Element types
//
// DType values are the ONNX TensorProto.DataType codes, so a DType read from a model needs no
// translation table. Each DType has exactly one Go slice type behind Tensor.Data:
//
//	Float32 []float32   Float64 []float64   Float16 []F16   BFloat16 []BF16
//	Int8    []int8      Int16   []int16     Int32   []int32     Int64    []int64
//	Uint8   []uint8     Uint16  []uint16    Uint32  []uint32    Uint64   []uint64
//	Bool    []bool      String  []string
//
// Float16 and BFloat16 are stored as their bit patterns; kernels that compute with them convert to
// float32 and back.
//
// # Limits
//
// Shapes that come from files or from tensor values (Reshape, ConstantOfShape) are user input. CheckShape
// rejects negative dims, ranks above MaxRank and element counts above MaxElements before anything
// is allocated, so a malicious header cannot make dnx allocate gigabytes.
//
// The package has no device code: a CUDA device keeps its own buffers and copies through these host
// tensors at its boundary.
package tensor

package onnx

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns about file contents wraps one of them, so
// callers can tell bad input from unsupported input with errors.Is.
var (
	// ErrCorrupt is wrapped by errors about data that is not valid ONNX: protobuf that does not
	// parse, a model without a graph, a tensor whose payload does not match its dims.
	ErrCorrupt = errors.New("corrupt ONNX data")

	// ErrExternalData is wrapped by errors about a tensor stored outside the model file: a location
	// that is absolute or leaves the model's directory, an offset or length outside the data file,
	// or a length that does not match the tensor's dims.
	ErrExternalData = errors.New("invalid external tensor data")

	// ErrUnsupported is wrapped by errors about valid ONNX that dnx does not handle. The more
	// specific ErrUnsupportedType and ErrIRVersion wrap it too.
	ErrUnsupported = errors.New("unsupported ONNX feature")

	// ErrUnsupportedType is wrapped by errors about a tensor element type dnx cannot hold
	// (float8, int4, uint4, int2, uint2, float4, complex, or an unknown code).
	ErrUnsupportedType = fmt.Errorf("%w: element type", ErrUnsupported)

	// ErrIRVersion is wrapped by errors about a model whose ir_version is outside
	// MinIRVersion..MaxIRVersion.
	ErrIRVersion = fmt.Errorf("%w: IR version", ErrUnsupported)
)

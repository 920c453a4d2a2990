// Package onnxpb holds the Go types generated from onnx.proto, the ONNX IR schema dnx reads and
// writes. The code is generated; edit onnx.proto and run `go generate ./onnx/...`.
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto

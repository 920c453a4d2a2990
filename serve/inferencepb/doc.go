// Package inferencepb is the Go code protoc generates from grpc_service.proto, the Open
// Inference Protocol's gRPC API (package "inference": GRPCInferenceService and its messages).
// The generated files are committed because builds have no protoc; regenerate them after editing
// the .proto with (protoc 3.21, protoc-gen-go v1.36.12, protoc-gen-go-grpc v1.5.1 on PATH):
//
//	go generate ./serve/inferencepb
package inferencepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative grpc_service.proto

// Package serve is dnx's inference server: it serves ONNX models over the Open Inference
// Protocol (KServe v2, which Triton also speaks), so that the protocol's clients, load tools and
// Kubernetes runtimes (KServe) use dnx as they would any other model server.
//
// A Server holds a repository of models (repository.go: files named on the command line, or a
// Triton-layout folder DIR/NAME/VERSION/model.onnx) and answers:
//
//   - REST (rest.go, restjson.go): the protocol's health, metadata and inference endpoints under
//     /v2, with JSON tensors and Triton's binary tensor data extension;
//   - gRPC (grpc.go): inference.GRPCInferenceService from the protocol's own .proto
//     (inferencepb);
//   - Prometheus metrics (metrics.go) under Triton's names, so existing dashboards work.
//
// Every inference goes through a model's batcher (batcher.go), which runs a request alone in the
// server at once, on its own goroutine, runs requests that queue together or arrive within a
// short delay as one batch (dynamic batching), and refuses work at once when its bounded queue
// is full, so that overload costs a 503 rather than unbounded memory. Each request's results
// are its own rows of the batch, identical to an unbatched run.
//
// Serve loads the models after the listeners are up (readiness is false until then) and stops
// gracefully when its context is cancelled: the listeners close, requests in flight finish, and
// Serve returns nil.
package serve

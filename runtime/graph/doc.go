// Package graph is dnx's intermediate representation of a model: values (tensors flowing between
// nodes, with static types whose dims may be symbolic), nodes (decoded ops), and the graph that
// owns them in topological order.
//
// Import turns an ONNX ModelProto into a Graph: it decodes initializers, resolves every node input
// by name, sorts the nodes topologically (rejecting cycles, dangling and duplicate names), decodes
// each node's attributes into a typed ops.Op for the model's opset, and infers every value's type.
// All errors name the node, op type and input at fault.
//
// The IR is device-independent and mutable: optimization passes rewrite it, the executor plans it
// for a device, and training differentiates it. Nodes and values are referenced by pointer while
// rewriting; plans resolve them to integer ids once.
package graph

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
//
// # Model metadata
//
// A Graph also carries what describes the model without changing what it computes, so that
// Import -> Clone -> passes -> Export keeps it and no caller has to re-read the original file:
//
//   - ModelProto.producer_name, producer_version, domain, model_version and doc_string: the
//     fields ProducerName, ProducerVersion, Domain, ModelVersion and DocString;
//   - GraphProto.doc_string: GraphDocString; NodeProto.doc_string: Node.DocString;
//   - ModelProto.metadata_props (class names, normalisation, dnx build's Config): an ordered list
//     with distinct keys, read with Metadata, MetadataMap and MetadataValue and changed with
//     SetMetadata (in place for a known key, appended otherwise) and DeleteMetadata.
//
// Import keeps the file's metadata order; a key the file repeats keeps its first place and its
// last value, the meaning ONNX Runtime and a map built in file order give it (onnx.checker refuses
// repeated keys, so Export never writes them). The plain fields are set directly. Clone copies
// all of them, passes never touch the model-level ones, and a node rewritten in place keeps its
// DocString. Export writes them back, leaving out empty strings and a zero model_version.
//
// Not carried (dropped by Import, absent from Export): the metadata_props of graphs and nodes
// (IR 10), the doc_string of inputs, outputs, value_info and attributes, training_info,
// model-local functions and quantization annotations.
package graph

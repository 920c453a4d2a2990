// Package pytorch converts PyTorch DenseNet checkpoints into ONNX models without Python.
//
// # Reading checkpoints
//
// LoadFile (or Load on any io.ReaderAt) reads a state_dict from the three formats PyTorch users
// have on disk, told apart by their first bytes:
//
//	torch.save zip    <name>/data.pkl + <name>/data/<key> storages (PyTorch >= 1.6, the default)
//	torch.save legacy magic, protocol, sys_info pickles, the data pickle, storage keys, raw storages
//	                  (_use_new_zipfile_serialization=False and PyTorch < 1.6)
//	.safetensors      u64 header length, JSON header {name: {dtype, shape, data_offsets}}, data
//
// The pickles are parsed by a restricted reader, never executed: a GLOBAL that is not one of the
// few names a state_dict needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
// friends, the torch.*Storage classes) stops reading with an error wrapping ErrForbidden, so a
// checkpoint cannot run code. Malformed input gives errors wrapping ErrFormat; limits on stack,
// memo and string sizes bound what a hostile file can allocate. Tensors may be strided views
// into shared storages (any storage offset and stride); they are copied out densely. A training
// checkpoint that wraps the state_dict ({"epoch": ..., "state_dict": ...}, or under "model" or
// "model_state_dict") is unwrapped, and tensors outside the state_dict are never read.
//
// # Converting
//
// Normalize maps keys the way torchvision's DenseNet loader does (the pre-0.2 names
// "denselayer1.norm.1.weight" become "denselayer1.norm1.weight"), strips the "module." prefix
// nn.DataParallel adds and drops the num_batches_tracked counters. InferConfig reads the
// architecture from the tensor shapes, and Convert builds the ONNX model for a builders.Config
// with the checkpoint's weights (builders.BuildOptions.Weights), in training or inference form.
// Missing keys, unexpected keys and shape mismatches are reported together, each with its key and
// both shapes, wrapping ErrStateDict.
package pytorch

// Package builders generates DenseNet models as ONNX graphs (*onnxpb.ModelProto) from a compact
// Config, with torchvision-compatible structure, names and initialization.
//
// # Architecture
//
// A DenseNet (Huang et al., 2017) is a stem, dense blocks separated by transitions, and a head:
//
//	stem        ImageNet: Conv7x7/2 -> BN -> ReLU -> MaxPool3x3/2;  CIFAR: Conv3x3 to InitFeatures
//	dense layer x_l = H([x_0, x_1, ..., x_{l-1}])   (Concat on channels, then H adds k channels)
//	            plain H: BN-ReLU-Conv3x3(k);  B (bottleneck): BN-ReLU-Conv1x1(BNSize*k)-BN-ReLU-Conv3x3(k)
//	transition  BN-ReLU-Conv1x1(floor(θC))-AvgPool2x2/2   (C: θ < 1)
//	head        BN-ReLU-GlobalAveragePool-Flatten-Gemm (Linear with bias)
//
// Config.Validate checks a configuration, FromDepth derives the paper's CIFAR configurations from
// a depth, Params and MACs count parameters and multiply-accumulates from the arithmetic alone, and
// Build emits the model. Named configurations (densenet121, BC-100, ...) live in package models.
//
// # Export forms
//
// Build's default output is training-ready: every BN is a BatchNormalization node and the
// initializers are exactly torchvision's state_dict tensors (without num_batches_tracked), so a
// trainer can update the same tensors PyTorch would. BuildOptions.Inference folds the BNs that
// follow a conv into it, which is what torch.onnx.export does in eval mode; the folded
// initializers then carry PyTorch's "onnx::Conv_<n>" names, so the result has the same initializer
// names and shapes as a PyTorch 1.13 export of the same architecture.
package builders

// Package dnx is the Go API of dnx: load, build, convert, run and fine-tune DenseNet (and other
// CNN) models in the ONNX format, in pure Go, with PyTorch's numerics.
//
// It is the supported way to embed dnx in a program. The packages under runtime/, onnx/,
// builders/ and converters/ are dnx's implementation: they are importable, but they will be
// reorganized (a device layer, a single planner for inference and training), while this
// package keeps its API. It therefore exposes small types of its own (Model, Tensor, DType,
// ValueInfo, the option structs) rather than the internal ones.
//
//	model, err := dnx.LoadFile("densenet121.onnx")
//	sess, err := dnx.NewSession(model, dnx.Options{})
//	defer sess.Close()
//	x, err := dnx.LoadImage("cat.jpg", 224, 224, dnx.ImageNetNormalization())
//	out, err := sess.Run(ctx, map[string]*dnx.Tensor{"input": x})
//	logits, err := out["logits"].Float32s()
//
// # Models
//
// LoadFile, LoadBytes and LoadReader read an ONNX model into a Model, which describes its inputs
// and outputs (ValueInfo: name, element type, shape with symbolic dims by name), its metadata
// and its opset. Only LoadFile reads weights stored as external data, because only a file has a
// folder to resolve their locations against. Model.Save writes a model atomically, Model.Marshal to bytes. Underneath: package onnx
// (parsing, with size checks before any allocation, and atomic writes) and runtime/graph (the
// intermediate representation: import, validation, type inference, export).
//
// A Model is immutable and may be shared by any number of sessions and trainers.
//
// # Running
//
// NewSession compiles a Model for the CPU; Session.Run takes and returns tensors by name, checks
// the inputs against the declared types, stops between operators when its context is cancelled,
// and may be called from many goroutines at once. Options sets the worker threads, the device and
// a memory budget that makes hostile models and oversized batches fail cleanly instead of taking
// the machine's memory. Underneath: runtime/passes (BatchNormalization folding, fusions),
// runtime/plan (the planning core shared with training: types, constant folding, static memory
// layout per input shape, lowering onto a device), runtime/device (the Device seam; cpudev, the
// CPU device, runs runtime/kernels/cpu at the instruction-set level chosen once: generic Go,
// AVX2 or AVX-512), runtime/exec (the session) and runtime/membudget for the budget.
//
// # Tensors
//
// A Tensor is an immutable dense array: NewTensor and NewInt64Tensor copy a slice in,
// Float32s and Int64s copy the elements out. LoadImage and DecodeImage apply torchvision's
// evaluation preprocessing to a PNG or JPEG (runtime/imageio), LoadNPY and SaveNPY read and write
// NumPy files (runtime/tensor/npy), and Batch stacks tensors along their first dimension.
//
// # Building and converting
//
// Build makes a DenseNet from a DenseNetConfig (plain, B, C or BC; ImageNet or CIFAR stem) and
// BuildPreset from a named preset (Presets: DenseNet-121 to -264, the paper's CIFAR models,
// "tiny"), with torchvision's structure, names and initialization (package builders, presets in
// models). ConvertCheckpoint turns a PyTorch state_dict file (.pth or .safetensors) into a Model
// without Python; the pickle is parsed by a restricted reader and never executed
// (converters/pytorch).
//
// # Fine-tuning
//
// NewTrainer wraps runtime/train: Trainer.Step does one SGD, Adam or AdamW update on a batch,
// Trainer.Fit runs the whole loop on in-memory tensors (epochs or steps, shuffling, validation
// loss and accuracy, checkpoints and resume, the divergence rule, a progress callback: the loop
// `dnx finetune` runs, train.Fit), Trainer.Evaluate computes inference-mode logits, and
// Trainer.Model returns the trained Model. Loading image folders and learning-rate schedules are
// still the command's.
//
// # Errors
//
// Errors start with "dnx: " and the operation, keep the message of the layer that found the
// problem (which names the file, node, input or key at fault), and match the sentinels of this
// package with errors.Is: ErrInput for bad caller data, ErrInvalidModel and ErrUnsupported for
// models, ErrOverBudget, ErrOptions, ErrDevice, ErrConfig, ErrUnknownPreset, ErrCheckpoint,
// ErrDiverged and ErrClosed. File system errors (fs.ErrNotExist) and context errors
// (context.Canceled) pass through unchanged. Nothing in this package panics on bad input.
//
// The command-line tool in cli/dnx is built on the same internal packages.
package dnx

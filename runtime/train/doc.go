// Package train fine-tunes CNN classifiers, imported from ONNX or built by dnx, on the CPU: a
// training-mode forward pass, the softmax cross-entropy loss, the backward pass and an SGD, Adam
// or AdamW update per Step, with PyTorch's semantics throughout, and a memory-efficient mode for
// DenseNets after Pleiss et al., "Memory-Efficient Implementation of DenseNets".
//
//	tr, err := train.New(g, train.DefaultOptions())
//	st, err := tr.Step(ctx, images, labels) // st.Loss, st.Correct, st.LR, st.GradNorm, st.ActivationBytes
//	logits, err := tr.Evaluate(ctx, images)  // inference mode: running statistics
//	m, err := graph.Export(tr.Graph())       // the trained weights under their original names
//
// # What is trained
//
// New clones the graph, applies passes.Training (eliminations only: BatchNormalization stays a
// node) and plans it. The graph's first output must be logits [batch, classes], computed by
// the operators Trainables lists, each with its limits (Dropout: see below). Float32
// initializers read as Conv weights and biases, BatchNormalization scales and biases, Gemm and
// Add operands are the parameters (Options.Freeze excludes name prefixes); BatchNormalization
// means and variances are running statistics.
//
// # Semantics (PyTorch 1.13)
//
//   - BatchNormalization normalizes with the batch mean and biased variance (eps from the node)
//     and moves the running statistics with the unbiased variance: running = m*running +
//     (1-m)*batch, m the node's ONNX momentum (0.9 is PyTorch's 0.1). FreezeBNStats uses the
//     running statistics instead and leaves them alone. The statistics are committed only when
//     a step completes, never during a recomputation.
//   - Dropout with ratio p > 0 is inverted dropout in Step (y = x*m/(1-p), m_j kept with
//     probability 1-p; the gradient takes the same mask) and the identity in Evaluate, as
//     F.dropout in train and eval mode: the trainer sets the mode, whatever the node's
//     training_mode input says. p is the node's ratio input (a constant; opset 12 and later) or
//     attribute, ONNX's default 0.5 when it states none. The mask is a hash of
//     Options.Seed, the step number, the node's position and the element's (n, c, i) index: the
//     backward pass recomputes it rather than storing it, the thread count and the memory mode
//     do not change it, and a run resumed with LoadState draws the masks the uninterrupted run
//     would. The stream is not PyTorch's, so masks (not their statistics) differ from torch's.
//   - The loss is CrossEntropyLoss(reduction='mean', label_smoothing).
//   - SGD (momentum, dampening, Nesterov, weight decay added to the gradient), Adam (L2 added to
//     the gradient) and AdamW (decoupled decay) follow torch.optim's update rules in float32,
//     with weight decay on every trained parameter, biases and BN scales included; ClipNorm
//     rescales the gradients as clip_grad_norm_ does; Schedule gives the learning rate per step.
//
// The package is checked against PyTorch on the fine-tuning references of ../shared/models
// (finetune_tiny: SGD; finetune_bc28: three dense blocks, SGD with Nesterov momentum;
// finetune_tiny_adamw: losses, step-0 gradients, weights and running statistics after the steps,
// eval logits, all within 1e-4), against a float64 reference of the whole step built from
// runtime/kernels/ref and runtime/train/refgrad (whose backward kernels are checked against
// central finite differences) on DenseNets of every variant, depth and odd size, in both memory
// modes and on 1 to 3 threads.
//
// Exactness has one limit that no float32 implementation escapes: a ReLU whose exact input is
// within rounding of 0. Its gradient mask then depends on how the forward pass rounded, and that
// one element moves every gradient upstream of it: on finetune_bc28 one such element (exact
// pre-activation -7.8e-8) changes the first blocks' step-0 gradients by up to 4.3e-4, as it does
// between PyTorch 1.13 on one thread and on two (bench/pytorch/relu_ties.py). The tests resolve
// such ties as exact arithmetic does and say how many they met.
//
// # Execution
//
// A plan (plan.go) is compiled per input shape. Activations of rank >= 3 are channel-major:
// channel c of a batch is one row of N*H*W floats, rows padded to an odd number of cache lines.
// Convolutions then run as batch-wide GEMMs: forward and input gradient on packed weights, the
// weight gradient with the batch as the GEMM's depth. BatchNormalization, ReLU and pooling work
// on whole channel rows. These kernels come from a device, through device.TrainingKernels (the
// CPU's are in package cpudev), and run on the trainer's host arena. Every buffer (activation,
// gradient, transient) gets an offset in that arena from its lifetime on the step's timeline
// (forward unit i at time i, the backward of unit i at 2U-i), so memory is reused as soon as
// nothing needs it; the plan knows the peak before the step runs (StepStats.ActivationBytes).
//
// # Memory-efficient mode
//
// In a DenseNet dense layer, the concatenation of all earlier features, its BatchNormalization
// and ReLU grow with depth; storing them for the backward pass makes activation memory grow
// quadratically with the number of layers. With Options.MemoryEfficient (the default):
//
//   - every concatenation is a view: the layers write their new features straight into the
//     channel slices of one buffer per dense block, and every concatenation of a prefix of
//     those features, its gradient included, is a slice of that buffer and of its gradient
//     mirror;
//   - the output of a BatchNormalization-ReLU read only by convolutions is never stored: the
//     convolutions read it through their GEMM prologue (x*scale+shift, then max(0, .)) in the
//     forward pass, and the weight gradient recomputes it from the stored input and the saved
//     batch mean and inverse deviation, without touching the running statistics;
//   - per-channel batch statistics of a block buffer's channels are computed once per step and
//     shared by every BatchNormalization that reads them;
//   - nor is that output's gradient stored whole: the convolution computes it a channel range at
//     a time and hands each range to the BatchNormalization's backward pass, or computes it
//     straight into the gradient of the BatchNormalization's input, which then runs in place,
//     when nothing else has written there yet (transitions, a dense layer's second
//     BatchNormalization).
//
// Outside the arena, the convolutions share their packed weights, and the packed output
// gradients of the weight gradients pass from layer to layer, all sized once: after the first,
// a step allocates almost nothing, so the garbage collector has nothing to let pile up.
//
// A Dropout after a dense layer's convolution (torchvision's drop_rate) runs in place on the
// convolution's output, so the features it drops still go straight into the block's buffer:
// dropout needs no copy and no buffer of its own, and its masks are recomputed, not stored (the
// planned peak of DenseNet-BC L=100 at batch 64 is the same with and without it).
//
// Only each layer's new features, the bottleneck convolution's output and per-channel
// statistics are kept, so activation memory grows linearly with depth (x1.92 from DenseNet-BC
// L=100 to L=190). Both modes run the same kernels on the same values and give bit-identical
// losses and gradients.
//
// # The training loop
//
// Fit runs what dnx finetune runs, so that a Go program gets the same run as the command line:
// epochs of batches from a data.Loader (any Batches), a validation after every epoch (Evaluate
// and the cross-entropy, Validate), checkpoints (at every epoch's end, every
// CheckpointConfig.Every steps and on cancellation), and the divergence rule: a step whose loss
// or gradients are not finite is refused (ErrDiverged, no update), and a loss above
// ExplosionFactor x max(the first step's loss, ln(classes)) ends the run too (*DivergedError
// names the step). Progress events carry the figures of a progress line or a log (loss,
// accuracy, learning rate, step time, the images and time of the call, for a speed and an ETA).
//
//	tr, err := train.New(g, opts) // opts.Schedule.TotalSteps = steps for a cosine schedule
//	sum, err := train.Fit(ctx, tr, train.FitConfig{Train: trainLd, Val: valLd, Steps: steps,
//		Checkpoint: train.CheckpointConfig{Dir: dir, Every: 100, SaveOnCancel: true}})
//
// A cancelled ctx is honoured between steps (a step runs to completion, so the running
// statistics never move without their weight update); Fit then saves the checkpoint when asked
// and returns a *CancelledError matching ctx.Err(). To resume, LoadCheckpoint restores the
// trainer and gives the position, FitConfig.Start: the batches of an epoch depend only on the
// loader's seed and the epoch, so the resumed run skips what was trained and ends bit for bit as
// the uninterrupted run would.
//
// A checkpoint (WriteCheckpoint, one file per folder, replaced atomically) is the magic
// "DNXCKPT1", a JSON header (CheckpointMeta: the caller's settings and seeds, and the FitState),
// the trainer state (SaveState) and a CRC-32 of the whole: the format dnx finetune wrote before
// the loop moved here, so its checkpoints still resume.
//
// # Reference kernels
//
// runtime/train/refgrad holds the obvious-loop backward kernels (float64, NCHW) of every
// operator Trainables lists; they are the oracle of this package's tests and of the fast kernels in
// runtime/kernels/cpu (train_*.go).
package train

package device

// TrainingKernels are the kernels the trainer (runtime/train) builds its forward and backward
// passes from. The trainer plans its own storage (channel-major activations in one arena, see
// runtime/train) and calls these on that storage.
type TrainingKernels interface {
	// Parallel runs fn over [0, n) split into chunks of at least grain elements on the device's
	// threads, and returns when every chunk is done.
	Parallel(n, grain int, fn func(lo, hi int))
}

package ref

func nnKernels() map[string]Kernel { return nil }

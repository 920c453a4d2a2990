package opset

import "github.com/dnx-ml/dnx/runtime/tensor"

// opRule is what the converter knows of one default-domain operator within opsets 11..25.
type opRule struct {
	// since is the first opset that has the operator (11 means "at least as old as 11"), or
	// from which Convert can express it: HardSwish (14) is rewritten into older operators below.
	since int
	// types is the element-type constraint across versions, checked at the target.
	types typeRule
	// rewrite changes the node's form between c.from and c.to; nil when the form never changed
	// in the range. A rewrite leaves the node unchanged when both opsets use the same form.
	rewrite func(c *converter, n *node) error
}

// opRules returns the table of every operator dnx implements. The versions and type lists are
// those of ONNX's operator changelog; comments name the version that changed something.
func opRules() map[string]opRule {
	x := []int{0}
	arith := opRule{since: 11, types: steps(x, typeStep{7, floats | wideInts}, typeStep{13, bf16}, typeStep{14, smallInts})}
	floatOnly := func(bf16Since int) typeRule {
		return steps(x, typeStep{1, floats}, typeStep{bf16Since, bf16})
	}
	return map[string]opRule{
		"Add": arith, "Sub": arith, "Mul": arith, "Div": arith, // 13: bfloat16; 14: 8- and 16-bit ints

		"Relu":      {since: 11, types: steps(x, typeStep{6, floats}, typeStep{13, bf16}, typeStep{14, signed})},
		"LeakyRelu": {since: 11, types: floatOnly(16)},
		"Sigmoid":   {since: 11, types: floatOnly(13)},
		// HardSigmoid-22 and HardSwish-22 only add bfloat16. HardSwish appears at 14; below it
		// it is rewritten as X * HardSigmoid(X, 1/6, 0.5), its ONNX function body.
		"HardSigmoid": {since: 11, types: floatOnly(22)},
		"HardSwish":   {since: 11, types: floatOnly(22), rewrite: hardSwish},
		// Clip-11 takes min and max as inputs; 12 adds the integer types, 13 bfloat16.
		"Clip": {since: 11, types: steps(x, typeStep{11, floats}, typeStep{12, allInts}, typeStep{13, bf16})},

		"Conv":              {since: 11, types: floatOnly(22)},
		"GlobalAveragePool": {since: 11, types: floatOnly(22)},
		"GlobalMaxPool":     {since: 11, types: floatOnly(22)},
		// AveragePool-19 adds dilations; ceil_mode and the rest are unchanged from 11.
		"AveragePool": {since: 11, types: floatOnly(22), rewrite: averagePool},
		// MaxPool-12 adds int8 and uint8.
		"MaxPool": {since: 11, types: steps(x, typeStep{8, floats}, typeStep{12, setOf(tensor.Int8, tensor.Uint8)}, typeStep{22, bf16})},
		// BatchNormalization-14: training_mode; 15: scale/B and mean/var may differ in type.
		"BatchNormalization": {since: 11, types: steps([]int{0, 1, 2, 3, 4}, typeStep{9, floats}, typeStep{14, bf16}), rewrite: batchNormalization},
		// Dropout-12: ratio and training_mode inputs; 13: bfloat16.
		"Dropout": {since: 11, types: floatOnly(13), rewrite: dropout},

		"Gemm":   {since: 11, types: steps(x, typeStep{9, floats | wideInts}, typeStep{13, bf16})},
		"MatMul": {since: 11, types: steps(x, typeStep{9, floats | wideInts}, typeStep{13, bf16})},
		// Softmax-13 and LogSoftmax-13: one axis instead of the 2-D coercion.
		"Softmax":    {since: 11, types: floatOnly(13), rewrite: softmax},
		"LogSoftmax": {since: 11, types: floatOnly(13), rewrite: softmax},
		// ReduceMean-18: axes input and noop_with_empty_axes.
		"ReduceMean": {since: 11, types: steps(x, typeStep{1, floats | wideInts}, typeStep{13, bf16}), rewrite: reduceMean},

		"Concat":    {since: 11, types: dataMovement(0)},
		"Gather":    {since: 11, types: dataMovement(0)},
		"Slice":     {since: 11, types: dataMovement(0)},
		"Split":     {since: 11, types: dataMovement(0), rewrite: split},    // 13: split input; 18: num_outputs
		"Squeeze":   {since: 11, types: dataMovement(21), rewrite: squeeze}, // 13: axes input
		"Unsqueeze": {since: 11, types: dataMovement(21), rewrite: squeeze}, // 13: axes input
		"Flatten":   {since: 11, types: dataMovement(21)},
		"Transpose": {since: 11, types: dataMovement(21)},
		"Identity":  {since: 11, types: dataMovement(19)},
		"Reshape":   {since: 11, types: dataMovement(19), rewrite: reshape}, // 14: allowzero
		"Shape":     {since: 11, types: dataMovement(19), rewrite: shape},   // 15: start, end
		// Pad-11 takes no bool, string or complex (13 adds them with bfloat16); 18: axes input;
		// 19: wrap mode.
		"Pad": {since: 11, types: steps(x, append([]typeStep{{11, floats | allInts}, {13, bf16 | boolean | str | complexes}},
			newBitWidths(21)...)...), rewrite: pad},
		// Constant-12: value_float(s), value_int(s), value_string(s).
		"Constant": {since: 11, types: steps(nil, append([]typeStep{{1, allTypes}, {13, bf16}}, newBitWidths(19)...)...), rewrite: constant},
		// ConstantOfShape-20 adds bfloat16 and float8 values.
		"ConstantOfShape": {since: 11, types: steps(nil, append([]typeStep{{9, floats | allInts | boolean}, {20, bf16}},
			newBitWidths(20)...)...)},
		// Cast-13: bfloat16; 19: float8 and saturate; 21: int4; 24/25: round_mode.
		"Cast": {since: 11, types: steps(x, append([]typeStep{{9, floats | allInts | boolean | str}, {13, bf16}},
			newBitWidths(19)...)...), rewrite: cast},

		// The losses appear at 12; SoftmaxCrossEntropyLoss-13 adds bfloat16, NLL waits for 22.
		"SoftmaxCrossEntropyLoss":   {since: 12, types: floatOnly(13)},
		"NegativeLogLikelihoodLoss": {since: 12, types: floatOnly(22)},
	}
}

package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// BatchNormalization is the ONNX BatchNormalization operator: inputs X [N,C,D1..Dn] (rank >= 2),
// scale, B, input_mean and input_var, each [C]. In inference mode
//
//	Y[n,c,...] = scale[c] * (X[n,c,...] - input_mean[c]) / sqrt(input_var[c] + Epsilon) + B[c]
//
// In training mode Y uses the batch statistics instead: mu[c] = mean of X[:,c,...] and the biased
// (population) variance sigma2[c] = mean of (X[:,c,...] - mu[c])^2, and the running statistics are
//
//	running_mean = input_mean * Momentum + mu * (1 - Momentum)
//	running_var  = input_var  * Momentum + sigma2 * (1 - Momentum)
//
// ONNX's momentum is the weight of the old statistic (PyTorch's is the new one's: ONNX 0.9 is
// PyTorch 0.1), and the running variance uses the biased variance, unlike PyTorch's update.
//
// Versions: opsets 1 and 6 decide the mode with is_test (absent or 1: inference; 0: training);
// opsets 7 to 13 run in training mode when the node has more than one output; from opset 14 the
// training_mode attribute decides and at most three outputs exist. Opsets 1 to 13 may also ask for
// saved_mean and saved_var (outputs 3 and 4): dnx returns mu and sigma2 there. Only spatial=1
// (statistics per channel, shared across the spatial dims) is supported before opset 9.
type BatchNormalization struct {
	Epsilon  float32
	Momentum float32
	Training bool
	// NumOutputs is the number of outputs the node declares (1 to 5; at most 3 from opset 14).
	NumOutputs int
}

// OpType returns "BatchNormalization".
func (*BatchNormalization) OpType() string { return "BatchNormalization" }

func decodeBatchNormalization(n *Node) (Op, error) {
	maxOut := 5
	if n.Opset >= 14 {
		maxOut = 3
	}
	if err := CheckArity(n, 5, 5, 1, maxOut); err != nil {
		return nil, err
	}
	op := &BatchNormalization{NumOutputs: n.NumOutputs}
	var err error
	if op.Epsilon, err = n.Attrs.Float("epsilon", 1e-5); err != nil {
		return nil, err
	}
	if op.Momentum, err = n.Attrs.Float("momentum", 0.9); err != nil {
		return nil, err
	}
	if !(op.Epsilon >= 0) {
		return nil, fmt.Errorf("%w: epsilon = %g, want >= 0", ErrAttr, op.Epsilon)
	}
	if n.Opset < 9 {
		spatial, err := n.Attrs.Int("spatial", 1)
		if err != nil {
			return nil, err
		}
		if spatial != 1 {
			return nil, fmt.Errorf("%w: BatchNormalization spatial = %d is not supported (only per-channel statistics, spatial=1)", ErrAttr, spatial)
		}
	}
	switch {
	case n.Opset < 7:
		// The spec's default is_test=0 (training) predates any exporter dnx meets; models of this
		// era that mean training set is_test=0 explicitly.
		isTest, err := n.Attrs.Int("is_test", 1)
		if err != nil {
			return nil, err
		}
		if isTest != 0 && isTest != 1 {
			return nil, fmt.Errorf("%w: is_test = %d, want 0 or 1", ErrAttr, isTest)
		}
		op.Training = isTest == 0
		if !op.Training && n.NumOutputs > 1 {
			return nil, fmt.Errorf("%w: BatchNormalization with is_test=1 has only the output Y, got %d outputs", ErrArity, n.NumOutputs)
		}
	case n.Opset < 14:
		op.Training = n.NumOutputs > 1
	default:
		if op.Training, err = nnBoolAttr(n, "training_mode"); err != nil {
			return nil, err
		}
		if !op.Training && n.NumOutputs > 1 {
			return nil, fmt.Errorf("%w: BatchNormalization with training_mode=0 has only the output Y, got %d outputs", ErrArity, n.NumOutputs)
		}
	}
	return op, nil
}

// BNShapes checks concrete shapes: X of rank >= 2 and each of the four per-channel inputs of shape
// [C]. It returns C and the number of elements per (n, c) pair.
func (*BatchNormalization) BNShapes(x []int, params ...[]int) (channels, inner int, err error) {
	if len(x) < 2 {
		return 0, 0, fmt.Errorf("%w: BatchNormalization X must have rank >= 2 (N,C,...), got shape %v", ErrShape, x)
	}
	names := []string{"scale", "B", "input_mean", "input_var"}
	for i, p := range params {
		if len(p) != 1 || p[0] != x[1] {
			return 0, 0, fmt.Errorf("%w: BatchNormalization %s has shape %v, want [%d]", ErrShape, names[min(i, 3)], p, x[1])
		}
	}
	inner = 1
	for _, d := range x[2:] {
		inner *= d
	}
	return x[1], inner, nil
}

// Infer implements Op: Y has X's type; the statistics outputs are [C] with input_mean's type.
func (op *BatchNormalization) Infer(in []*Arg) ([]Type, error) {
	x := nnArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: BatchNormalization needs X", ErrArity)
	}
	C := Unknown()
	if !x.Type.Unranked {
		if len(x.Type.Shape) < 2 {
			return nil, fmt.Errorf("%w: BatchNormalization X must have rank >= 2 (N,C,...), got %s", ErrShape, x.Type)
		}
		C = x.Type.Shape[1]
	}
	names := []string{"scale", "B", "input_mean", "input_var"}
	for i, name := range names {
		a := nnArg(in, i+1)
		if err := nnCheckVector("BatchNormalization", name, a, C); err != nil {
			return nil, err
		}
		if !C.IsKnown() && a != nil && !a.Type.Unranked && a.Type.Shape[0].IsKnown() {
			C = a.Type.Shape[0]
		}
	}
	if err := nnSameDType("BatchNormalization", nnArg(in, 1), nnArg(in, 2), "scale", "B"); err != nil {
		return nil, err
	}
	if err := nnSameDType("BatchNormalization", nnArg(in, 3), nnArg(in, 4), "input_mean", "input_var"); err != nil {
		return nil, err
	}
	statType := x.Type.DType
	if m := nnArg(in, 3); m != nil && m.Type.DType != tensor.Undefined {
		statType = m.Type.DType
	}
	out := []Type{x.Type}
	for i := 1; i < max(op.NumOutputs, 1); i++ {
		out = append(out, Type{DType: statType, Shape: []Dim{C}})
	}
	return out, nil
}

package ops

import (
	"fmt"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// AveragePool is the ONNX AveragePool operator on X [N,C,D1..Dn]: each output element is the mean
// of the window positions
//
//	p = o*s + k*d - padBegin,  k in [0, kernel)
//
// that lie inside the input. With CountIncludePad the divisor also counts the positions that lie in
// the explicit (or auto_pad) padding, i.e. in [-padBegin, in+padEnd); positions past that, which
// only ceil_mode windows reach, are never counted.
//
// Versions: count_include_pad from opset 7, ceil_mode from 10, dilations from 19.
type AveragePool struct {
	Window
	CountIncludePad bool
}

// OpType returns "AveragePool".
func (*AveragePool) OpType() string { return "AveragePool" }

// MaxPool is the ONNX MaxPool operator on X [N,C,D1..Dn]: each output element is the largest
// input value among the window positions that lie inside the input (padding never wins), the first
// one in row-major window order on ties, and NaN when any of them is NaN.
//
// The optional Indices output (int64, from opset 8) holds, for each output element, the flat
// index of the chosen element in X:
//
//	(n*C + c) * D1*...*Dn + spatial offset
//
// where the spatial offset is row-major (StorageOrder 0) or column-major (StorageOrder 1, the first
// spatial dim varying fastest). An output whose window holds no input element is the lowest value
// of the type with index -1.
//
// Versions: storage_order and Indices from opset 8, ceil_mode and dilations from 10, int8/uint8
// inputs from 12.
type MaxPool struct {
	Window
	StorageOrder int
	// NumOutputs is 1 (Y) or 2 (Y and Indices).
	NumOutputs int
}

// OpType returns "MaxPool".
func (*MaxPool) OpType() string { return "MaxPool" }

func decodeAveragePool(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	w, err := nnWindowAttrs(n, true, 10, 19)
	if err != nil {
		return nil, err
	}
	if n.Attrs.Has("count_include_pad") && n.Opset < 7 {
		return nil, fmt.Errorf("%w: AveragePool has no count_include_pad attribute before opset 7 (model imports opset %d)", ErrAttr, n.Opset)
	}
	cip, err := nnBoolAttr(n, "count_include_pad")
	if err != nil {
		return nil, err
	}
	return &AveragePool{Window: w, CountIncludePad: cip}, nil
}

func decodeMaxPool(n *Node) (Op, error) {
	maxOut := 2
	if n.Opset < 8 {
		maxOut = 1
	}
	if err := CheckArity(n, 1, 1, 1, maxOut); err != nil {
		return nil, err
	}
	w, err := nnWindowAttrs(n, true, 10, 10)
	if err != nil {
		return nil, err
	}
	if n.Attrs.Has("storage_order") && n.Opset < 8 {
		return nil, fmt.Errorf("%w: MaxPool has no storage_order attribute before opset 8 (model imports opset %d)", ErrAttr, n.Opset)
	}
	so, err := nnBoolAttr(n, "storage_order")
	if err != nil {
		return nil, err
	}
	op := &MaxPool{Window: w, NumOutputs: n.NumOutputs}
	if so {
		op.StorageOrder = 1
	}
	return op, nil
}

// PoolShapes checks a concrete pooling input shape (rank >= 3, one spatial dim per kernel dim) and
// resolves the window.
func (w *Window) PoolShapes(op string, x []int) (*Geometry, error) {
	if len(x) < 3 {
		return nil, fmt.Errorf("%w: %s X must have rank >= 3 (N,C,D1,...), got shape %v", ErrShape, op, x)
	}
	if len(x)-2 != len(w.Kernel) {
		return nil, fmt.Errorf("%w: %s kernel_shape has %d dims, X has %d spatial dims", ErrShape, op, len(w.Kernel), len(x)-2)
	}
	g, err := w.Resolve(x[2:], nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return g, nil
}

// nnPoolInfer infers a windowed pooling output: [N, C, spatial...] with X's element type.
func (w *Window) nnPoolInfer(op string, in []*Arg) (Type, error) {
	x := nnArg(in, 0)
	if x == nil {
		return Type{}, fmt.Errorf("%w: %s needs X", ErrArity, op)
	}
	rank := len(w.Kernel) + 2
	if x.Type.Unranked {
		return Type{DType: x.Type.DType, Shape: nnDimsOrUnknown(x.Type, rank)}, nil
	}
	if x.Type.Rank() != rank {
		return Type{}, fmt.Errorf("%w: %s X %s has rank %d, kernel_shape %v needs rank %d", ErrShape, op, x.Type, x.Type.Rank(), w.Kernel, rank)
	}
	spatial, err := w.outDims(x.Type.Shape[2:], w.Kernel)
	if err != nil {
		return Type{}, fmt.Errorf("%s: %w", op, err)
	}
	return Type{DType: x.Type.DType, Shape: append([]Dim{x.Type.Shape[0], x.Type.Shape[1]}, spatial...)}, nil
}

// Infer implements Op.
func (p *AveragePool) Infer(in []*Arg) ([]Type, error) {
	t, err := p.nnPoolInfer("AveragePool", in)
	if err != nil {
		return nil, err
	}
	return []Type{t}, nil
}

// Infer implements Op: Indices, when declared, has Y's shape and type int64.
func (p *MaxPool) Infer(in []*Arg) ([]Type, error) {
	t, err := p.nnPoolInfer("MaxPool", in)
	if err != nil {
		return nil, err
	}
	if p.NumOutputs > 1 {
		return []Type{t, {DType: tensor.Int64, Shape: t.Shape}}, nil
	}
	return []Type{t}, nil
}

// GlobalAveragePool is the ONNX GlobalAveragePool operator: Y[n,c,1,...,1] is the mean of
// X[n,c,...] over all spatial dims (X of rank >= 3).
type GlobalAveragePool struct{}

// OpType returns "GlobalAveragePool".
func (*GlobalAveragePool) OpType() string { return "GlobalAveragePool" }

// Infer implements Op.
func (*GlobalAveragePool) Infer(in []*Arg) ([]Type, error) {
	return nnGlobalInfer("GlobalAveragePool", in)
}

// GlobalMaxPool is the ONNX GlobalMaxPool operator: Y[n,c,1,...,1] is the maximum of X[n,c,...]
// over all spatial dims (X of rank >= 3), NaN when any element is NaN.
type GlobalMaxPool struct{}

// OpType returns "GlobalMaxPool".
func (*GlobalMaxPool) OpType() string { return "GlobalMaxPool" }

// Infer implements Op.
func (*GlobalMaxPool) Infer(in []*Arg) ([]Type, error) { return nnGlobalInfer("GlobalMaxPool", in) }

func decodeGlobalAveragePool(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	return &GlobalAveragePool{}, nil
}

func decodeGlobalMaxPool(n *Node) (Op, error) {
	if err := CheckArity(n, 1, 1, 1, 1); err != nil {
		return nil, err
	}
	return &GlobalMaxPool{}, nil
}

func nnGlobalInfer(op string, in []*Arg) ([]Type, error) {
	x := nnArg(in, 0)
	if x == nil {
		return nil, fmt.Errorf("%w: %s needs X", ErrArity, op)
	}
	if x.Type.Unranked {
		return []Type{x.Type}, nil
	}
	if len(x.Type.Shape) < 3 {
		return nil, fmt.Errorf("%w: %s X must have rank >= 3 (N,C,D1,...), got %s", ErrShape, op, x.Type)
	}
	s := append([]Dim(nil), x.Type.Shape...)
	for i := 2; i < len(s); i++ {
		s[i] = Known(1)
	}
	return []Type{{DType: x.Type.DType, Shape: s}}, nil
}

package ref

import (
	"errors"
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ewCase is one kernel call and its expected outputs (or error).
type ewCase struct {
	name    string
	kernel  Kernel
	op      ops.Op
	in      []*tensor.Tensor
	nOut    int // 1 when zero
	want    []*tensor.Tensor
	wantErr error
	// rtol and atol compare float outputs; integer, bool and string outputs must match exactly
	// whatever they are (AllClose is exact there when both are 0).
	rtol, atol float64
}

func ewS(d ...int) tensor.Shape { return tensor.Shape(d) }

func ewF32(s tensor.Shape, v ...float32) *tensor.Tensor { return tensor.FromSlice(s, v) }
func ewF64(s tensor.Shape, v ...float64) *tensor.Tensor { return tensor.FromSlice(s, v) }
func ewI64(s tensor.Shape, v ...int64) *tensor.Tensor   { return tensor.FromSlice(s, v) }
func ewI32(s tensor.Shape, v ...int32) *tensor.Tensor   { return tensor.FromSlice(s, v) }
func ewI8(s tensor.Shape, v ...int8) *tensor.Tensor     { return tensor.FromSlice(s, v) }
func ewU8(s tensor.Shape, v ...uint8) *tensor.Tensor    { return tensor.FromSlice(s, v) }
func ewB(s tensor.Shape, v ...bool) *tensor.Tensor      { return tensor.FromSlice(s, v) }
func ewStr(s tensor.Shape, v ...string) *tensor.Tensor  { return tensor.FromSlice(s, v) }
func ewT16(s tensor.Shape, v ...float32) *tensor.Tensor {
	return tensor.FromSlice(s, ewMap(v, tensor.F16From))
}
func ewTB16(s tensor.Shape, v ...float32) *tensor.Tensor {
	return tensor.FromSlice(s, ewMap(v, tensor.BF16From))
}

// ewRunCases runs each case, checks outputs (dtype, shape, values) and that the inputs are unchanged.
func ewRunCases(t *testing.T, cases []ewCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := make([]*tensor.Tensor, len(c.in))
			for i, x := range c.in {
				if x != nil {
					before[i] = x.Clone()
				}
			}
			nOut := c.nOut
			if nOut == 0 {
				nOut = 1
			}
			got, err := c.kernel(c.op, c.in, nOut)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d outputs, want %d", len(got), len(c.want))
			}
			for i := range got {
				if err := tensor.AllClose(got[i], c.want[i], c.rtol, c.atol); err != nil {
					t.Errorf("output %d: %v (got %v)", i, err, got[i].Data)
				}
			}
			for i, x := range c.in {
				if x != nil {
					if err := tensor.AllClose(x, before[i], 0, 0); err != nil {
						t.Errorf("input %d was modified: %v", i, err)
					}
				}
			}
		})
	}
}

func TestArithKernel(t *testing.T) {
	add, sub := &ops.Arith{Kind: ops.ArithAdd}, &ops.Arith{Kind: ops.ArithSub}
	mul, div := &ops.Arith{Kind: ops.ArithMul}, &ops.Arith{Kind: ops.ArithDiv}
	inf := math.Inf(1)
	ewRunCases(t, []ewCase{
		{name: "Add f32 row broadcast", kernel: arithKernel, op: add,
			in:   []*tensor.Tensor{ewF32(ewS(2, 3), 1, 2, 3, 4, 5, 6), ewF32(ewS(3), 10, 20, 30)},
			want: []*tensor.Tensor{ewF32(ewS(2, 3), 11, 22, 33, 14, 25, 36)}},
		{name: "Sub f32 outer broadcast", kernel: arithKernel, op: sub,
			in:   []*tensor.Tensor{ewF32(ewS(2, 1), 1, 2), ewF32(ewS(1, 3), 10, 20, 30)},
			want: []*tensor.Tensor{ewF32(ewS(2, 3), -9, -19, -29, -8, -18, -28)}},
		{name: "Add f32 3-D both sides", kernel: arithKernel, op: add,
			in:   []*tensor.Tensor{ewF32(ewS(2, 1, 3), 1, 2, 3, 4, 5, 6), ewF32(ewS(1, 2, 1), 10, 20)},
			want: []*tensor.Tensor{ewF32(ewS(2, 2, 3), 11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26)}},
		{name: "Mul by scalar", kernel: arithKernel, op: mul,
			in:   []*tensor.Tensor{ewF32(ewS(3), 1, 2, 3), ewF32(ewS(), 2)},
			want: []*tensor.Tensor{ewF32(ewS(3), 2, 4, 6)}},
		{name: "Mul scalars", kernel: arithKernel, op: mul,
			in:   []*tensor.Tensor{ewF64(ewS(), 1.5), ewF64(ewS(), -2)},
			want: []*tensor.Tensor{ewF64(ewS(), -3)}},
		{name: "Add empty", kernel: arithKernel, op: add,
			in:   []*tensor.Tensor{ewF32(ewS(0, 3)), ewF32(ewS(3), 1, 2, 3)},
			want: []*tensor.Tensor{ewF32(ewS(0, 3))}},
		{name: "Div f64 by zero is IEEE", kernel: arithKernel, op: div,
			in:   []*tensor.Tensor{ewF64(ewS(3), 1, -1, 0), ewF64(ewS(3), 0, 0, 0)},
			want: []*tensor.Tensor{ewF64(ewS(3), inf, -inf, math.NaN())}},
		{name: "Div int32 truncates", kernel: arithKernel, op: div,
			in:   []*tensor.Tensor{ewI32(ewS(4), -7, 7, -7, 7), ewI32(ewS(4), 2, -2, -2, 2)},
			want: []*tensor.Tensor{ewI32(ewS(4), -3, -3, 3, 3)}},
		{name: "Div uint8 broadcast", kernel: arithKernel, op: div,
			in:   []*tensor.Tensor{ewU8(ewS(2), 200, 7), ewU8(ewS(1), 3)},
			want: []*tensor.Tensor{ewU8(ewS(2), 66, 2)}},
		{name: "Div int8 by zero", kernel: arithKernel, op: div,
			in: []*tensor.Tensor{ewI8(ewS(2), 1, 2), ewI8(ewS(2), 1, 0)}, wantErr: ErrDivideByZero},
		{name: "Div int64 min by -1 wraps", kernel: arithKernel, op: div,
			in:   []*tensor.Tensor{ewI64(ewS(1), math.MinInt64), ewI64(ewS(1), -1)},
			want: []*tensor.Tensor{ewI64(ewS(1), math.MinInt64)}},
		{name: "Sub int8 wraps", kernel: arithKernel, op: sub,
			in:   []*tensor.Tensor{ewI8(ewS(2), 127, -128), ewI8(ewS(2), -1, 1)},
			want: []*tensor.Tensor{ewI8(ewS(2), -128, 127)}},
		{name: "Add uint64 wraps", kernel: arithKernel, op: add,
			in:   []*tensor.Tensor{tensor.FromSlice(ewS(2), []uint64{1 << 63, 5}), tensor.FromSlice(ewS(2), []uint64{1 << 63, 7})},
			want: []*tensor.Tensor{tensor.FromSlice(ewS(2), []uint64{0, 12})}},
		{name: "Mul uint16 wraps", kernel: arithKernel, op: mul,
			in:   []*tensor.Tensor{tensor.FromSlice(ewS(1), []uint16{300}), tensor.FromSlice(ewS(1), []uint16{300})},
			want: []*tensor.Tensor{tensor.FromSlice(ewS(1), []uint16{24464})}},
		{name: "Add int16 and uint32", kernel: arithKernel, op: add,
			in:   []*tensor.Tensor{tensor.FromSlice(ewS(2), []int16{-5, 5}), tensor.FromSlice(ewS(), []int16{3})},
			want: []*tensor.Tensor{tensor.FromSlice(ewS(2), []int16{-2, 8})}},
		{name: "Sub uint32", kernel: arithKernel, op: sub,
			in:   []*tensor.Tensor{tensor.FromSlice(ewS(2), []uint32{5, 0}), tensor.FromSlice(ewS(2), []uint32{3, 1})},
			want: []*tensor.Tensor{tensor.FromSlice(ewS(2), []uint32{2, math.MaxUint32})}},
		{name: "Add float16", kernel: arithKernel, op: add,
			in:   []*tensor.Tensor{ewT16(ewS(2), 1, 0.5), ewT16(ewS(2), 2, 0.25)},
			want: []*tensor.Tensor{ewT16(ewS(2), 3, 0.75)}},
		{name: "Mul bfloat16", kernel: arithKernel, op: mul,
			in:   []*tensor.Tensor{ewTB16(ewS(2), 1.5, -4), ewTB16(ewS(), 2)},
			want: []*tensor.Tensor{ewTB16(ewS(2), 3, -8)}},
		{name: "Add legacy axis 0", kernel: arithKernel, op: &ops.Arith{Kind: ops.ArithAdd, Legacy: true, HasAxis: true},
			in:   []*tensor.Tensor{ewF64(ewS(2, 3), 1, 2, 3, 4, 5, 6), ewF64(ewS(2), 10, 20)},
			want: []*tensor.Tensor{ewF64(ewS(2, 3), 11, 12, 13, 24, 25, 26)}},
		{name: "Add legacy size-1 dims", kernel: arithKernel, op: &ops.Arith{Kind: ops.ArithAdd, Legacy: true, HasAxis: true},
			in:   []*tensor.Tensor{ewF64(ewS(2, 3), 1, 2, 3, 4, 5, 6), ewF64(ewS(2, 1), 10, 20)},
			want: []*tensor.Tensor{ewF64(ewS(2, 3), 11, 12, 13, 24, 25, 26)}},
		{name: "Add legacy suffix", kernel: arithKernel, op: &ops.Arith{Kind: ops.ArithAdd, Legacy: true},
			in:   []*tensor.Tensor{ewI64(ewS(2, 2), 1, 2, 3, 4), ewI64(ewS(2), 10, 20)},
			want: []*tensor.Tensor{ewI64(ewS(2, 2), 11, 22, 13, 24)}},
		{name: "Add dtype mismatch", kernel: arithKernel, op: add,
			in: []*tensor.Tensor{ewF32(ewS(1), 1), ewF64(ewS(1), 1)}, wantErr: ops.ErrShape},
		{name: "Add shape mismatch", kernel: arithKernel, op: add,
			in: []*tensor.Tensor{ewF32(ewS(2), 1, 2), ewF32(ewS(3), 1, 2, 3)}, wantErr: ops.ErrShape},
		{name: "Add bool", kernel: arithKernel, op: add,
			in: []*tensor.Tensor{ewB(ewS(1), true), ewB(ewS(1), true)}, wantErr: ops.ErrShape},
		{name: "Add missing input", kernel: arithKernel, op: add,
			in: []*tensor.Tensor{ewF32(ewS(1), 1), nil}, wantErr: ops.ErrArity},
	})
}

func TestActivationKernels(t *testing.T) {
	nan := float32(math.NaN())
	clip11 := &ops.Clip{BoundInputs: true}
	ewRunCases(t, []ewCase{
		{name: "Relu f32", kernel: reluKernel, op: &ops.Relu{},
			in:   []*tensor.Tensor{ewF32(ewS(4), -1, 0, 2.5, nan)},
			want: []*tensor.Tensor{ewF32(ewS(4), 0, 0, 2.5, nan)}},
		{name: "Relu int8", kernel: reluKernel, op: &ops.Relu{},
			in:   []*tensor.Tensor{ewI8(ewS(3), -128, 0, 127)},
			want: []*tensor.Tensor{ewI8(ewS(3), 0, 0, 127)}},
		{name: "Relu uint8", kernel: reluKernel, op: &ops.Relu{},
			in:   []*tensor.Tensor{ewU8(ewS(2), 0, 200)},
			want: []*tensor.Tensor{ewU8(ewS(2), 0, 200)}},
		{name: "Relu float16", kernel: reluKernel, op: &ops.Relu{},
			in:   []*tensor.Tensor{ewT16(ewS(2), -3, 3)},
			want: []*tensor.Tensor{ewT16(ewS(2), 0, 3)}},
		{name: "Relu string", kernel: reluKernel, op: &ops.Relu{},
			in: []*tensor.Tensor{ewStr(ewS(1), "a")}, wantErr: ops.ErrShape},
		{name: "LeakyRelu", kernel: leakyReluKernel, op: &ops.LeakyRelu{Alpha: 0.1},
			in:   []*tensor.Tensor{ewF32(ewS(3), -2, 0, 3)},
			want: []*tensor.Tensor{ewF32(ewS(3), -0.2, 0, 3)}},
		{name: "LeakyRelu bfloat16", kernel: leakyReluKernel, op: &ops.LeakyRelu{Alpha: 0.5},
			in:   []*tensor.Tensor{ewTB16(ewS(2), -2, 2)},
			want: []*tensor.Tensor{ewTB16(ewS(2), -1, 2)}},
		{name: "LeakyRelu int", kernel: leakyReluKernel, op: &ops.LeakyRelu{Alpha: 0.5},
			in: []*tensor.Tensor{ewI32(ewS(1), 1)}, wantErr: ops.ErrShape},
		{name: "Sigmoid", kernel: sigmoidKernel, op: &ops.Sigmoid{},
			in:   []*tensor.Tensor{ewF64(ewS(4), 0, 2, -1000, 1000)},
			want: []*tensor.Tensor{ewF64(ewS(4), 0.5, 0.8807970779778823, 0, 1)}, rtol: 1e-15},
		{name: "Sigmoid f32", kernel: sigmoidKernel, op: &ops.Sigmoid{},
			in:   []*tensor.Tensor{ewF32(ewS(2), -2, 2)},
			want: []*tensor.Tensor{ewF32(ewS(2), 0.11920292, 0.88079708)}, rtol: 1e-7},
		// HardSigmoid/HardSwish: found missing by bench/zoo (mobilenet_v3_small exports
		// nn.Hardswish as HardSigmoid(alpha=1/6) then Mul at opset 13).
		{name: "HardSigmoid", kernel: hardSigmoidKernel, op: &ops.HardSigmoid{Alpha: 0.25, Beta: 0.5},
			in:   []*tensor.Tensor{ewF64(ewS(5), -3, -2, 0, 1, 4)},
			want: []*tensor.Tensor{ewF64(ewS(5), 0, 0, 0.5, 0.75, 1)}, rtol: 1e-15},
		{name: "HardSigmoid NaN", kernel: hardSigmoidKernel, op: &ops.HardSigmoid{Alpha: 0.5, Beta: 0.1},
			in:   []*tensor.Tensor{ewF32(ewS(2), nan, 1)},
			want: []*tensor.Tensor{ewF32(ewS(2), nan, 0.6)}, rtol: 1e-7},
		{name: "HardSigmoid int", kernel: hardSigmoidKernel, op: &ops.HardSigmoid{Alpha: 0.2, Beta: 0.5},
			in: []*tensor.Tensor{ewI32(ewS(1), 1)}, wantErr: ops.ErrShape},
		{name: "HardSwish", kernel: hardSwishKernel, op: &ops.HardSwish{},
			in:   []*tensor.Tensor{ewF64(ewS(5), -4, -3, -1.5, 1.5, 3)},
			want: []*tensor.Tensor{ewF64(ewS(5), 0, 0, -0.375, 1.125, 3)}, rtol: 1e-15},
		{name: "HardSwish float16", kernel: hardSwishKernel, op: &ops.HardSwish{},
			in:   []*tensor.Tensor{ewT16(ewS(2), -1.5, 6)},
			want: []*tensor.Tensor{ewT16(ewS(2), -0.375, 6)}},
		{name: "Identity string", kernel: identityKernel, op: &ops.Identity{},
			in:   []*tensor.Tensor{ewStr(ewS(2), "a", "b")},
			want: []*tensor.Tensor{ewStr(ewS(2), "a", "b")}},
		{name: "Identity two outputs", kernel: identityKernel, op: &ops.Identity{},
			in: []*tensor.Tensor{ewB(ewS(1), true)}, nOut: 2, wantErr: ops.ErrArity},
		{name: "Clip attrs", kernel: clipKernel, op: &ops.Clip{Min: -0.5, Max: 0.5, HasMin: true, HasMax: true},
			in:   []*tensor.Tensor{ewF32(ewS(4), -1, 0.25, 1, nan)},
			want: []*tensor.Tensor{ewF32(ewS(4), -0.5, 0.25, 0.5, nan)}},
		{name: "Clip attr min only", kernel: clipKernel, op: &ops.Clip{Min: 0, HasMin: true},
			in:   []*tensor.Tensor{ewF64(ewS(2), -1, 1e300)},
			want: []*tensor.Tensor{ewF64(ewS(2), 0, 1e300)}},
		{name: "Clip attrs on int", kernel: clipKernel, op: &ops.Clip{Min: 0, HasMin: true},
			in: []*tensor.Tensor{ewI32(ewS(1), 1)}, wantErr: ops.ErrShape},
		{name: "Clip inputs int8", kernel: clipKernel, op: clip11,
			in:   []*tensor.Tensor{ewI8(ewS(4), -100, -1, 5, 100), ewI8(ewS(), -2), ewI8(ewS(), 10)},
			want: []*tensor.Tensor{ewI8(ewS(4), -2, -1, 5, 10)}},
		{name: "Clip max only", kernel: clipKernel, op: clip11,
			in:   []*tensor.Tensor{ewI64(ewS(2), -7, 7), nil, ewI64(ewS(1), 0)},
			want: []*tensor.Tensor{ewI64(ewS(2), -7, 0)}},
		{name: "Clip no bounds", kernel: clipKernel, op: clip11,
			in:   []*tensor.Tensor{ewU8(ewS(2), 0, 255)},
			want: []*tensor.Tensor{ewU8(ewS(2), 0, 255)}},
		{name: "Clip min above max gives max", kernel: clipKernel, op: clip11,
			in:   []*tensor.Tensor{ewF32(ewS(3), -5, 0, 5), ewF32(ewS(), 2), ewF32(ewS(), 1)},
			want: []*tensor.Tensor{ewF32(ewS(3), 1, 1, 1)}},
		{name: "Clip float16", kernel: clipKernel, op: clip11,
			in:   []*tensor.Tensor{ewT16(ewS(3), -5, 0.5, 5), ewT16(ewS(), -1), ewT16(ewS(), 1)},
			want: []*tensor.Tensor{ewT16(ewS(3), -1, 0.5, 1)}},
		{name: "Clip bound type", kernel: clipKernel, op: clip11,
			in: []*tensor.Tensor{ewF32(ewS(1), 1), ewF64(ewS(), 0)}, wantErr: ops.ErrShape},
		{name: "Clip bound size", kernel: clipKernel, op: clip11,
			in: []*tensor.Tensor{ewF32(ewS(1), 1), ewF32(ewS(2), 0, 1)}, wantErr: ops.ErrShape},
	})
}

// TestElementwiseKernelsWrongOp checks that every kernel rejects an op of another type.
func TestElementwiseKernelsWrongOp(t *testing.T) {
	x := ewF32(ewS(1), 1)
	for name, k := range elementwiseKernels() {
		if _, err := k(&ewAlienOp{}, []*tensor.Tensor{x, x, x}, 1); err == nil {
			t.Errorf("%s accepted an op of another type", name)
		}
	}
}

// ewAlienOp is an op no kernel of this family handles.
type ewAlienOp struct{}

func (*ewAlienOp) OpType() string                          { return "Alien" }
func (*ewAlienOp) Infer(in []*ops.Arg) ([]ops.Type, error) { return nil, nil }

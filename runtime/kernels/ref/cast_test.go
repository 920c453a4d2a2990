package ref

import (
	"errors"
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestCastKernel(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	to := func(d tensor.DType) *ops.Cast { return &ops.Cast{To: d, Saturate: true} }
	// 1 + 2^-11 + 2^-40 lies just above the midpoint between the float16 values 1 and
	// 1 + 2^-10; rounding through float32 first would land on the midpoint and round to 1.
	above := 1 + math.Ldexp(1, -11) + math.Ldexp(1, -40)
	ewRunCases(t, []ewCase{
		{name: "float32 to int32 truncates and saturates", kernel: castKernel, op: to(tensor.Int32),
			in:   []*tensor.Tensor{ewF32(ewS(6), -1.7, 1.7, float32(nan), 1e10, -1e10, float32(inf))},
			want: []*tensor.Tensor{ewI32(ewS(6), -1, 1, 0, math.MaxInt32, math.MinInt32, math.MaxInt32)}},
		{name: "float64 to uint8 saturates", kernel: castKernel, op: to(tensor.Uint8),
			in:   []*tensor.Tensor{ewF64(ewS(4), -1, 255.9, 300, 0.5)},
			want: []*tensor.Tensor{ewU8(ewS(4), 0, 255, 255, 0)}},
		{name: "float64 to int64 edges", kernel: castKernel, op: to(tensor.Int64),
			in:   []*tensor.Tensor{ewF64(ewS(3), math.Ldexp(1, 63), -math.Ldexp(1, 63), 9007199254740993)},
			want: []*tensor.Tensor{ewI64(ewS(3), math.MaxInt64, math.MinInt64, 9007199254740992)}},
		{name: "float64 to uint64", kernel: castKernel, op: to(tensor.Uint64),
			in:   []*tensor.Tensor{ewF64(ewS(3), math.Ldexp(1, 64), math.Ldexp(1, 63), -5)},
			want: []*tensor.Tensor{tensor.FromSlice(ewS(3), []uint64{math.MaxUint64, 1 << 63, 0})}},
		{name: "int32 to int8 wraps", kernel: castKernel, op: to(tensor.Int8),
			in:   []*tensor.Tensor{ewI32(ewS(3), 300, -129, 5)},
			want: []*tensor.Tensor{ewI8(ewS(3), 44, 127, 5)}},
		{name: "int8 to uint16 wraps", kernel: castKernel, op: to(tensor.Uint16),
			in:   []*tensor.Tensor{ewI8(ewS(2), -1, 7)},
			want: []*tensor.Tensor{tensor.FromSlice(ewS(2), []uint16{65535, 7})}},
		{name: "uint64 to int64 wraps", kernel: castKernel, op: to(tensor.Int64),
			in:   []*tensor.Tensor{tensor.FromSlice(ewS(1), []uint64{math.MaxUint64})},
			want: []*tensor.Tensor{ewI64(ewS(1), -1)}},
		{name: "int64 to float32 rounds", kernel: castKernel, op: to(tensor.Float32),
			in:   []*tensor.Tensor{ewI64(ewS(2), 16777217, -3)},
			want: []*tensor.Tensor{ewF32(ewS(2), 16777216, -3)}},
		{name: "uint8 to float16", kernel: castKernel, op: to(tensor.Float16),
			in:   []*tensor.Tensor{ewU8(ewS(2), 255, 3)},
			want: []*tensor.Tensor{ewT16(ewS(2), 255, 3)}},
		{name: "float64 to float16 rounds once", kernel: castKernel, op: to(tensor.Float16),
			in:   []*tensor.Tensor{ewF64(ewS(4), above, 70000, nan, 1e-8)},
			want: []*tensor.Tensor{ewT16(ewS(4), 1.0009765625, float32(inf), float32(nan), 0)}},
		{name: "float32 to bfloat16", kernel: castKernel, op: to(tensor.BFloat16),
			in:   []*tensor.Tensor{ewF32(ewS(3), 1.00390625, 1.01171875, -2)}, // ties: to even
			want: []*tensor.Tensor{ewTB16(ewS(3), 1, 1.015625, -2)}},
		{name: "float16 to float32", kernel: castKernel, op: to(tensor.Float32),
			in:   []*tensor.Tensor{ewT16(ewS(2), 0.099975586, -65504)},
			want: []*tensor.Tensor{ewF32(ewS(2), 0.099975586, -65504)}},
		{name: "bfloat16 to float64", kernel: castKernel, op: to(tensor.Float64),
			in:   []*tensor.Tensor{ewTB16(ewS(1), 3.140625)},
			want: []*tensor.Tensor{ewF64(ewS(1), 3.140625)}},
		{name: "bool to float32", kernel: castKernel, op: to(tensor.Float32),
			in:   []*tensor.Tensor{ewB(ewS(2), true, false)},
			want: []*tensor.Tensor{ewF32(ewS(2), 1, 0)}},
		{name: "float32 to bool", kernel: castKernel, op: to(tensor.Bool),
			in:   []*tensor.Tensor{ewF32(ewS(3), 0, -0.5, float32(nan))},
			want: []*tensor.Tensor{ewB(ewS(3), false, true, true)}},
		{name: "int64 to bool", kernel: castKernel, op: to(tensor.Bool),
			in:   []*tensor.Tensor{ewI64(ewS(2), 0, -9)},
			want: []*tensor.Tensor{ewB(ewS(2), false, true)}},
		{name: "same type copies", kernel: castKernel, op: to(tensor.Int32),
			in:   []*tensor.Tensor{ewI32(ewS(1), 4)},
			want: []*tensor.Tensor{ewI32(ewS(1), 4)}},
		{name: "string to float32", kernel: castKernel, op: to(tensor.Float32),
			in:   []*tensor.Tensor{ewStr(ewS(6), "3.14", "1e-5", "1E8", "INF", "-inf", "NaN")},
			want: []*tensor.Tensor{ewF32(ewS(6), 3.14, 1e-5, 1e8, float32(inf), float32(-inf), float32(nan))}},
		{name: "string to float64 +INF", kernel: castKernel, op: to(tensor.Float64),
			in:   []*tensor.Tensor{ewStr(ewS(2), "+INF", "1e400")},
			want: []*tensor.Tensor{ewF64(ewS(2), inf, inf)}},
		{name: "string to int64", kernel: castKernel, op: to(tensor.Int64),
			in:   []*tensor.Tensor{ewStr(ewS(3), "42", "100.5", "-3")},
			want: []*tensor.Tensor{ewI64(ewS(3), 42, 100, -3)}},
		{name: "string to uint8", kernel: castKernel, op: to(tensor.Uint8),
			in:   []*tensor.Tensor{ewStr(ewS(2), "7", "2.9")},
			want: []*tensor.Tensor{ewU8(ewS(2), 7, 2)}},
		{name: "string to bool", kernel: castKernel, op: to(tensor.Bool),
			in:   []*tensor.Tensor{ewStr(ewS(4), "True", "false", "0", "2")},
			want: []*tensor.Tensor{ewB(ewS(4), true, false, false, true)}},
		{name: "string not a number", kernel: castKernel, op: to(tensor.Float32),
			in: []*tensor.Tensor{ewStr(ewS(1), "Hello World!")}, wantErr: ops.ErrShape},
		{name: "string not an int", kernel: castKernel, op: to(tensor.Int32),
			in: []*tensor.Tensor{ewStr(ewS(1), "x")}, wantErr: ops.ErrShape},
		{name: "float32 to string", kernel: castKernel, op: to(tensor.String),
			in:   []*tensor.Tensor{ewF32(ewS(5), 314.15926, -0.5, float32(nan), float32(inf), float32(-inf))},
			want: []*tensor.Tensor{ewStr(ewS(5), "314.15927", "-0.5", "NaN", "INF", "-INF")}},
		{name: "float64 to string", kernel: castKernel, op: to(tensor.String),
			in:   []*tensor.Tensor{ewF64(ewS(1), 0.1)},
			want: []*tensor.Tensor{ewStr(ewS(1), "0.1")}},
		{name: "ints and bools to string", kernel: castKernel, op: to(tensor.String),
			in:   []*tensor.Tensor{ewI8(ewS(2), -5, 12)},
			want: []*tensor.Tensor{ewStr(ewS(2), "-5", "12")}},
		{name: "bool to string", kernel: castKernel, op: to(tensor.String),
			in:   []*tensor.Tensor{ewB(ewS(2), true, false)},
			want: []*tensor.Tensor{ewStr(ewS(2), "True", "False")}},
		{name: "to float8", kernel: castKernel, op: &ops.Cast{To: tensor.Float8E4M3FN},
			in: []*tensor.Tensor{ewF32(ewS(1), 1)}, wantErr: ops.ErrUnsupportedOp},
	})
}

// TestRoundOdd32 checks the single-rounding narrowing on the values where double rounding fails
// and on the special cases.
func TestRoundOdd32(t *testing.T) {
	above := 1 + math.Ldexp(1, -11) + math.Ldexp(1, -40)
	below := 1 + math.Ldexp(1, -11) - math.Ldexp(1, -40)
	cases := []struct {
		in   float64
		want tensor.F16
	}{
		{above, tensor.F16From(1.0009765625)},
		{below, tensor.F16From(1)},
		{1 + math.Ldexp(1, -11), tensor.F16From(1)}, // exact tie: to even
		{-above, tensor.F16From(-1.0009765625)},
		{math.Ldexp(1, -30), tensor.F16From(0)},
		{math.Inf(-1), tensor.F16From(float32(math.Inf(-1)))},
		{1e300, tensor.F16From(float32(math.Inf(1)))},
	}
	for _, c := range cases {
		if got := ewF16(c.in); got != c.want {
			t.Errorf("ewF16(%g) = %#x, want %#x", c.in, uint16(got), uint16(c.want))
		}
	}
	if got := ewF16(math.NaN()).Float32(); !math.IsNaN(float64(got)) {
		t.Errorf("ewF16(NaN) = %g", got)
	}
	// bfloat16 has 7 fraction bits: 1 + 2^-8 is a tie, a bit more must round up.
	if got, want := ewBF16(1+math.Ldexp(1, -8)+math.Ldexp(1, -40)), tensor.BF16From(1.0078125); got != want {
		t.Errorf("ewBF16 above tie = %#x, want %#x", uint16(got), uint16(want))
	}
}

func TestCastKernelErrors(t *testing.T) {
	_, err := castKernel(&ops.Cast{To: tensor.Float32}, []*tensor.Tensor{nil}, 1)
	if !errors.Is(err, ops.ErrArity) {
		t.Errorf("missing input: %v", err)
	}
	_, err = castKernel(&ops.Cast{To: tensor.Float32}, []*tensor.Tensor{ewF32(ewS(1), 1)}, 2)
	if !errors.Is(err, ops.ErrArity) {
		t.Errorf("two outputs: %v", err)
	}
}

package ref

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Tensor and attribute shorthands for the tables below.
func mvF32(shape tensor.Shape, v ...float32) *tensor.Tensor { return tensor.FromSlice(shape, v) }
func mvI64(shape tensor.Shape, v ...int64) *tensor.Tensor   { return tensor.FromSlice(shape, v) }
func mvI32(shape tensor.Shape, v ...int32) *tensor.Tensor   { return tensor.FromSlice(shape, v) }
func mvVec(v ...int64) *tensor.Tensor                       { return mvI64(tensor.Shape{len(v)}, v...) }
func mvStr(shape tensor.Shape, v ...string) *tensor.Tensor  { return tensor.FromSlice(shape, v) }
func mvBool(shape tensor.Shape, v ...bool) *tensor.Tensor   { return tensor.FromSlice(shape, v) }

// mvRange returns a float32 tensor holding 0, 1, 2, ... in row-major order.
func mvRange(shape ...int) *tensor.Tensor {
	v := make([]float32, tensor.Shape(shape).Size())
	for i := range v {
		v[i] = float32(i)
	}
	return tensor.FromSlice(shape, v)
}

// mvConvert returns a float32 tensor's values as another numeric type (exact for small integers).
func mvConvert(t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	src := tensor.Data[float32](t)
	out := tensor.New(dt, t.Shape)
	for i, v := range src {
		switch d := out.Data.(type) {
		case []float64:
			d[i] = float64(v)
		case []tensor.F16:
			d[i] = tensor.F16From(v)
		case []tensor.BF16:
			d[i] = tensor.BF16From(v)
		case []int8:
			d[i] = int8(v)
		case []int32:
			d[i] = int32(v)
		case []int64:
			d[i] = int64(v)
		case []uint8:
			d[i] = uint8(v)
		case []uint64:
			d[i] = uint64(v)
		}
	}
	return out
}

func mvIntA(v int64) ops.Attribute             { return ops.Attribute{Kind: ops.AttrInt, Int: v} }
func mvIntsA(v ...int64) ops.Attribute         { return ops.Attribute{Kind: ops.AttrInts, Ints: v} }
func mvFloatA(v float32) ops.Attribute         { return ops.Attribute{Kind: ops.AttrFloat, Float: v} }
func mvTensorA(t *tensor.Tensor) ops.Attribute { return ops.Attribute{Kind: ops.AttrTensor, Tensor: t} }

// tensorOpCase is one kernel run: decode (op, opset, attrs) for the given inputs (nil = absent),
// run the reference kernel, and compare with want (rtol/atol 0 means exact) or expect wantErr.
type tensorOpCase struct {
	name    string
	op      string
	opset   int
	attrs   ops.Attributes
	in      []*tensor.Tensor
	want    []*tensor.Tensor
	rtol    float64
	wantErr error
	nOut    int // outputs to request when want is nil (error cases); default 1
}

func runTensorOpCases(t *testing.T, cases []tensorOpCase) {
	t.Helper()
	reg := ops.Default()
	kernels := tensorKernels()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nOut := len(tc.want)
			if nOut == 0 {
				nOut = max(tc.nOut, 1)
			}
			present := make([]bool, len(tc.in))
			before := make([]*tensor.Tensor, len(tc.in))
			for i, x := range tc.in {
				present[i] = x != nil
				if x != nil {
					before[i] = x.Clone()
				}
			}
			op, err := reg.Decode(&ops.Node{Name: tc.name, OpType: tc.op, Opset: tc.opset, Attrs: tc.attrs,
				Inputs: present, NumOutputs: nOut})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			kernel, ok := kernels[tc.op]
			if !ok {
				t.Fatalf("no kernel for %s", tc.op)
			}
			got, err := kernel(op, tc.in, nOut)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want one wrapping %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("kernel: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d outputs, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if err := tensor.AllClose(got[i], tc.want[i], tc.rtol, tc.rtol); err != nil {
					t.Errorf("output %d: %v (got %v %v)", i, err, got[i].Shape, got[i].Data)
				}
			}
			for i, x := range tc.in {
				if x != nil {
					if err := tensor.AllClose(x, before[i], 0, 0); err != nil {
						t.Errorf("input %d was modified: %v", i, err)
					}
				}
			}
		})
	}
}

func TestConcatKernel(t *testing.T) {
	runTensorOpCases(t, []tensorOpCase{
		{name: "axis 1", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(1)},
			in:   []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 1, 2, 3, 4), mvF32(tensor.Shape{2, 1}, 5, 6)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 3}, 1, 2, 5, 3, 4, 6)}},
		{name: "opset 1 default axis 1", op: "Concat", opset: 1,
			in:   []*tensor.Tensor{mvF32(tensor.Shape{1, 2}, 1, 2), mvF32(tensor.Shape{1, 1}, 3)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{1, 3}, 1, 2, 3)}},
		{name: "strings axis 0", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(0)},
			in:   []*tensor.Tensor{mvStr(tensor.Shape{1}, "a"), mvStr(tensor.Shape{2}, "b", "c")},
			want: []*tensor.Tensor{mvStr(tensor.Shape{3}, "a", "b", "c")}},
		{name: "bool three inputs axis -1", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(-1)},
			in: []*tensor.Tensor{mvBool(tensor.Shape{2, 1}, true, false), mvBool(tensor.Shape{2, 1}, false, true),
				mvBool(tensor.Shape{2, 1}, true, true)},
			want: []*tensor.Tensor{mvBool(tensor.Shape{2, 3}, true, false, true, false, true, true)}},
		{name: "empty input", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(1)},
			in:   []*tensor.Tensor{mvF32(tensor.Shape{2, 0}), mvF32(tensor.Shape{2, 1}, 7, 8)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 1}, 7, 8)}},
		{name: "int64 3-D axis 1", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(1)},
			in:   []*tensor.Tensor{mvI64(tensor.Shape{2, 1, 2}, 1, 2, 3, 4), mvI64(tensor.Shape{2, 2, 2}, 5, 6, 7, 8, 9, 10, 11, 12)},
			want: []*tensor.Tensor{mvI64(tensor.Shape{2, 3, 2}, 1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12)}},
		{name: "dim mismatch", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(1)},
			in: []*tensor.Tensor{mvRange(2, 2), mvRange(3, 1)}, wantErr: ops.ErrShape},
		{name: "dtype mismatch", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(0)},
			in: []*tensor.Tensor{mvRange(2), mvVec(1)}, wantErr: ops.ErrShape},
		{name: "axis out of range", op: "Concat", opset: 13, attrs: ops.Attributes{"axis": mvIntA(2)},
			in: []*tensor.Tensor{mvRange(2, 2)}, wantErr: ops.ErrAttr},
	})
}

func TestReshapeFamilyKernels(t *testing.T) {
	runTensorOpCases(t, []tensorOpCase{
		{name: "reshape input", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvRange(2, 3), mvVec(3, -1)},
			want: []*tensor.Tensor{mvRange(3, 2)}},
		{name: "reshape copy dim", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvRange(2, 3, 4), mvVec(0, 0, 2, 2)},
			want: []*tensor.Tensor{mvRange(2, 3, 2, 2)}},
		{name: "reshape int32 spec", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvRange(6), mvI32(tensor.Shape{2}, 2, 3)},
			want: []*tensor.Tensor{mvRange(2, 3)}},
		{name: "reshape attribute", op: "Reshape", opset: 1, attrs: ops.Attributes{"shape": mvIntsA(6)},
			in: []*tensor.Tensor{mvRange(2, 3)}, want: []*tensor.Tensor{mvRange(6)}},
		{name: "reshape allowzero", op: "Reshape", opset: 14, attrs: ops.Attributes{"allowzero": mvIntA(1)},
			in: []*tensor.Tensor{mvRange(0, 3), mvVec(3, 0)}, want: []*tensor.Tensor{mvRange(3, 0)}},
		{name: "reshape strings to scalar", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvStr(tensor.Shape{1, 1}, "x"), mvVec()},
			want: []*tensor.Tensor{mvStr(tensor.Shape{}, "x")}},
		{name: "reshape bad size", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvRange(2, 3), mvVec(4)}, wantErr: ops.ErrShape},
		{name: "reshape two -1", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvRange(2, 3), mvVec(-1, -1)}, wantErr: ops.ErrShape},
		{name: "reshape huge spec", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvRange(2, 3), mvVec(1<<40, 1<<40, -1)},
			wantErr: ops.ErrShape},
		{name: "reshape float spec", op: "Reshape", opset: 13, in: []*tensor.Tensor{mvRange(2, 3), mvRange(2)}, wantErr: ops.ErrShape},

		{name: "flatten axis 2", op: "Flatten", opset: 13, attrs: ops.Attributes{"axis": mvIntA(2)},
			in: []*tensor.Tensor{mvRange(2, 3, 4)}, want: []*tensor.Tensor{mvRange(6, 4)}},
		{name: "flatten axis 0 int8", op: "Flatten", opset: 13, attrs: ops.Attributes{"axis": mvIntA(0)},
			in:   []*tensor.Tensor{mvConvert(mvRange(2, 3), tensor.Int8)},
			want: []*tensor.Tensor{mvConvert(mvRange(1, 6), tensor.Int8)}},
		{name: "flatten axis -1", op: "Flatten", opset: 13, attrs: ops.Attributes{"axis": mvIntA(-1)},
			in: []*tensor.Tensor{mvRange(2, 3, 4)}, want: []*tensor.Tensor{mvRange(6, 4)}},

		{name: "squeeze all", op: "Squeeze", opset: 13, in: []*tensor.Tensor{mvRange(1, 3, 1)}, want: []*tensor.Tensor{mvRange(3)}},
		{name: "squeeze axes input", op: "Squeeze", opset: 13, in: []*tensor.Tensor{mvRange(1, 3, 1), mvVec(0)},
			want: []*tensor.Tensor{mvRange(3, 1)}},
		{name: "squeeze absent axes", op: "Squeeze", opset: 13, in: []*tensor.Tensor{mvRange(1, 3, 1), nil},
			want: []*tensor.Tensor{mvRange(3)}},
		{name: "squeeze attribute", op: "Squeeze", opset: 1, attrs: ops.Attributes{"axes": mvIntsA(2)},
			in: []*tensor.Tensor{mvRange(1, 3, 1)}, want: []*tensor.Tensor{mvRange(1, 3)}},
		{name: "squeeze not 1", op: "Squeeze", opset: 13, in: []*tensor.Tensor{mvRange(1, 3, 1), mvVec(1)}, wantErr: ops.ErrShape},
		{name: "unsqueeze input", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{mvRange(3), mvVec(0, 2)},
			want: []*tensor.Tensor{mvRange(1, 3, 1)}},
		{name: "unsqueeze negative", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{mvRange(3), mvVec(-1)},
			want: []*tensor.Tensor{mvRange(3, 1)}},
		{name: "unsqueeze attribute bool", op: "Unsqueeze", opset: 1, attrs: ops.Attributes{"axes": mvIntsA(0)},
			in: []*tensor.Tensor{mvBool(tensor.Shape{2}, true, false)}, want: []*tensor.Tensor{mvBool(tensor.Shape{1, 2}, true, false)}},
		{name: "unsqueeze out of range", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{mvRange(3), mvVec(3)}, wantErr: ops.ErrAttr},
	})
}

func TestTransposeKernel(t *testing.T) {
	runTensorOpCases(t, []tensorOpCase{
		{name: "default 2-D", op: "Transpose", opset: 13, in: []*tensor.Tensor{mvRange(2, 3)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{3, 2}, 0, 3, 1, 4, 2, 5)}},
		{name: "perm 1 0 2", op: "Transpose", opset: 13, attrs: ops.Attributes{"perm": mvIntsA(1, 0, 2)},
			in:   []*tensor.Tensor{mvRange(2, 3, 2)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{3, 2, 2}, 0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11)}},
		{name: "perm 2 0 1 bfloat16", op: "Transpose", opset: 13, attrs: ops.Attributes{"perm": mvIntsA(2, 0, 1)},
			in:   []*tensor.Tensor{mvConvert(mvRange(2, 3, 2), tensor.BFloat16)},
			want: []*tensor.Tensor{mvConvert(mvF32(tensor.Shape{2, 2, 3}, 0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11), tensor.BFloat16)}},
		{name: "identity perm strings", op: "Transpose", opset: 13, attrs: ops.Attributes{"perm": mvIntsA(0, 1)},
			in: []*tensor.Tensor{mvStr(tensor.Shape{1, 2}, "a", "b")}, want: []*tensor.Tensor{mvStr(tensor.Shape{1, 2}, "a", "b")}},
		{name: "scalar", op: "Transpose", opset: 13, in: []*tensor.Tensor{mvF32(tensor.Shape{}, 5)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{}, 5)}},
		{name: "perm rank mismatch", op: "Transpose", opset: 13, attrs: ops.Attributes{"perm": mvIntsA(1, 0)},
			in: []*tensor.Tensor{mvRange(2, 3, 2)}, wantErr: ops.ErrShape},
	})
}

func TestSplitKernel(t *testing.T) {
	runTensorOpCases(t, []tensorOpCase{
		{name: "equal axis 1", op: "Split", opset: 13, attrs: ops.Attributes{"axis": mvIntA(1)}, in: []*tensor.Tensor{mvRange(2, 4)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 0, 1, 4, 5), mvF32(tensor.Shape{2, 2}, 2, 3, 6, 7)}},
		{name: "split input", op: "Split", opset: 13, attrs: ops.Attributes{"axis": mvIntA(-1)},
			in:   []*tensor.Tensor{mvRange(2, 4), mvVec(1, 3)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 1}, 0, 4), mvF32(tensor.Shape{2, 3}, 1, 2, 3, 5, 6, 7)}},
		{name: "split attribute axis 0", op: "Split", opset: 2, attrs: ops.Attributes{"split": mvIntsA(1, 1)},
			in:   []*tensor.Tensor{mvConvert(mvRange(2, 4), tensor.Int32)},
			want: []*tensor.Tensor{mvConvert(mvRange(1, 4), tensor.Int32), mvConvert(mvF32(tensor.Shape{1, 4}, 4, 5, 6, 7), tensor.Int32)}},
		{name: "num_outputs uneven", op: "Split", opset: 18, attrs: ops.Attributes{"num_outputs": mvIntA(3)},
			in:   []*tensor.Tensor{mvRange(5)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2}, 0, 1), mvF32(tensor.Shape{2}, 2, 3), mvF32(tensor.Shape{1}, 4)}},
		{name: "opset 1 float split input", op: "Split", opset: 1, in: []*tensor.Tensor{mvRange(5), mvF32(tensor.Shape{2}, 2, 3)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2}, 0, 1), mvF32(tensor.Shape{3}, 2, 3, 4)}},
		{name: "zero-size part", op: "Split", opset: 13, in: []*tensor.Tensor{mvRange(3), mvVec(0, 3)},
			want: []*tensor.Tensor{mvRange(0), mvRange(3)}},
		{name: "sizes do not add up", op: "Split", opset: 13, in: []*tensor.Tensor{mvRange(5), mvVec(2, 2)}, nOut: 2, wantErr: ops.ErrShape},
		{name: "uneven equal split", op: "Split", opset: 13, in: []*tensor.Tensor{mvRange(5)}, nOut: 2, wantErr: ops.ErrShape},
	})
}

func TestSliceKernel(t *testing.T) {
	data := mvF32(tensor.Shape{2, 4}, 1, 2, 3, 4, 5, 6, 7, 8)
	runTensorOpCases(t, []tensorOpCase{
		{name: "opset 1 example 1", op: "Slice", opset: 1,
			attrs: ops.Attributes{"axes": mvIntsA(0, 1), "starts": mvIntsA(1, 0), "ends": mvIntsA(2, 3)},
			in:    []*tensor.Tensor{data}, want: []*tensor.Tensor{mvF32(tensor.Shape{1, 3}, 5, 6, 7)}},
		{name: "opset 1 example 2", op: "Slice", opset: 1,
			attrs: ops.Attributes{"starts": mvIntsA(0, 1), "ends": mvIntsA(-1, 1000)},
			in:    []*tensor.Tensor{data}, want: []*tensor.Tensor{mvF32(tensor.Shape{1, 3}, 2, 3, 4)}},
		{name: "negative step", op: "Slice", opset: 13,
			in:   []*tensor.Tensor{data, mvVec(-1), mvVec(math.MinInt64), mvVec(1), mvVec(-2)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 4, 2, 8, 6)}},
		{name: "reverse both axes", op: "Slice", opset: 13,
			in:   []*tensor.Tensor{data, mvVec(-1, -1), mvVec(math.MinInt64, math.MinInt64), nil, mvVec(-1, -1)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 4}, 8, 7, 6, 5, 4, 3, 2, 1)}},
		{name: "int32 params step 2", op: "Slice", opset: 13,
			in:   []*tensor.Tensor{data, mvI32(tensor.Shape{1}, 0), mvI32(tensor.Shape{1}, 100), mvI32(tensor.Shape{1}, 1), mvI32(tensor.Shape{1}, 2)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 1, 3, 5, 7)}},
		{name: "empty", op: "Slice", opset: 13, in: []*tensor.Tensor{data, mvVec(2), mvVec(1)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{0, 4})}},
		{name: "strings", op: "Slice", opset: 10, in: []*tensor.Tensor{mvStr(tensor.Shape{3}, "a", "b", "c"), mvVec(1), mvVec(3)},
			want: []*tensor.Tensor{mvStr(tensor.Shape{2}, "b", "c")}},
		{name: "zero step", op: "Slice", opset: 13, in: []*tensor.Tensor{data, mvVec(0), mvVec(1), mvVec(0), mvVec(0)}, wantErr: ops.ErrShape},
		{name: "length mismatch", op: "Slice", opset: 13, in: []*tensor.Tensor{data, mvVec(0, 0), mvVec(1)}, wantErr: ops.ErrShape},
	})
}

func TestGatherKernel(t *testing.T) {
	data := mvF32(tensor.Shape{3, 2}, 1, 2, 3, 4, 5, 6)
	runTensorOpCases(t, []tensorOpCase{
		{name: "axis 0 2-D indices", op: "Gather", opset: 13, in: []*tensor.Tensor{data, mvI64(tensor.Shape{2, 2}, 0, 1, 1, 2)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2, 2}, 1, 2, 3, 4, 3, 4, 5, 6)}},
		{name: "axis 1 negative int32", op: "Gather", opset: 13, attrs: ops.Attributes{"axis": mvIntA(1)},
			in:   []*tensor.Tensor{mvRange(2, 3), mvI32(tensor.Shape{2}, -1, 0)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 2, 0, 5, 3)}},
		{name: "scalar index", op: "Gather", opset: 13, in: []*tensor.Tensor{data, mvI64(tensor.Shape{}, 1)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2}, 3, 4)}},
		{name: "strings opset 1", op: "Gather", opset: 1, in: []*tensor.Tensor{mvStr(tensor.Shape{3}, "a", "b", "c"), mvVec(2, 2, 0)},
			want: []*tensor.Tensor{mvStr(tensor.Shape{3}, "c", "c", "a")}},
		{name: "no indices", op: "Gather", opset: 13, in: []*tensor.Tensor{data, mvVec()},
			want: []*tensor.Tensor{mvF32(tensor.Shape{0, 2})}},
		{name: "index too large", op: "Gather", opset: 13, in: []*tensor.Tensor{data, mvVec(3)}, wantErr: ops.ErrShape},
		{name: "index too small", op: "Gather", opset: 13, in: []*tensor.Tensor{data, mvVec(-4)}, wantErr: ops.ErrShape},
		{name: "float indices", op: "Gather", opset: 13, in: []*tensor.Tensor{data, mvRange(1)}, wantErr: ops.ErrShape},
	})
}

func TestShapeAndConstantKernels(t *testing.T) {
	x := mvRange(2, 3, 4)
	runTensorOpCases(t, []tensorOpCase{
		{name: "shape", op: "Shape", opset: 13, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{mvVec(2, 3, 4)}},
		{name: "shape start 1", op: "Shape", opset: 15, attrs: ops.Attributes{"start": mvIntA(1)},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{mvVec(3, 4)}},
		{name: "shape end -1", op: "Shape", opset: 15, attrs: ops.Attributes{"end": mvIntA(-1)},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{mvVec(2, 3)}},
		{name: "shape clamped", op: "Shape", opset: 15, attrs: ops.Attributes{"start": mvIntA(-10), "end": mvIntA(10)},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{mvVec(2, 3, 4)}},
		{name: "shape start > end", op: "Shape", opset: 15, attrs: ops.Attributes{"start": mvIntA(2), "end": mvIntA(1)},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{mvVec()}},
		{name: "shape of scalar string", op: "Shape", opset: 15, in: []*tensor.Tensor{mvStr(tensor.Shape{}, "s")},
			want: []*tensor.Tensor{mvVec()}},

		{name: "constant value", op: "Constant", opset: 13, attrs: ops.Attributes{"value": mvTensorA(mvF32(tensor.Shape{2}, 1, 2))},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2}, 1, 2)}},
		{name: "constant value_ints", op: "Constant", opset: 13, attrs: ops.Attributes{"value_ints": mvIntsA(4, 5)},
			want: []*tensor.Tensor{mvVec(4, 5)}},

		{name: "constantofshape default", op: "ConstantOfShape", opset: 9, in: []*tensor.Tensor{mvVec(2, 3)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 3}, 0, 0, 0, 0, 0, 0)}},
		{name: "constantofshape int64", op: "ConstantOfShape", opset: 9, attrs: ops.Attributes{"value": mvTensorA(mvVec(7))},
			in: []*tensor.Tensor{mvVec(2)}, want: []*tensor.Tensor{mvVec(7, 7)}},
		{name: "constantofshape scalar", op: "ConstantOfShape", opset: 20, attrs: ops.Attributes{"value": mvTensorA(mvBool(tensor.Shape{1}, true))},
			in: []*tensor.Tensor{mvVec()}, want: []*tensor.Tensor{mvBool(tensor.Shape{}, true)}},
		{name: "constantofshape zero dim", op: "ConstantOfShape", opset: 9, in: []*tensor.Tensor{mvVec(0, 5)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{0, 5})}},
		{name: "constantofshape huge", op: "ConstantOfShape", opset: 9, in: []*tensor.Tensor{mvVec(1<<31, 1<<31, 1<<31)},
			wantErr: ops.ErrShape},
		{name: "constantofshape negative", op: "ConstantOfShape", opset: 9, in: []*tensor.Tensor{mvVec(2, -1)}, wantErr: ops.ErrShape},
		{name: "constantofshape 2-D shape", op: "ConstantOfShape", opset: 9, in: []*tensor.Tensor{mvI64(tensor.Shape{1, 1}, 2)},
			wantErr: ops.ErrShape},
	})
}

// TestConstantKernelCopies checks the kernel hands out a copy, so an executor writing into the
// output cannot change the decoded op.
func TestConstantKernelCopies(t *testing.T) {
	v := mvF32(tensor.Shape{2}, 1, 2)
	op := &ops.Constant{Value: v}
	out, err := constantKernel(op, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	tensor.Data[float32](out[0])[0] = 9
	if tensor.Data[float32](v)[0] != 1 {
		t.Fatal("Constant kernel returned the op's own value")
	}
}

// The Gemm/MatMul cases use A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]], whose product is
// [[58,64],[139,154]].
var (
	gemmA  = mvF32(tensor.Shape{2, 3}, 1, 2, 3, 4, 5, 6)
	gemmAT = mvF32(tensor.Shape{3, 2}, 1, 4, 2, 5, 3, 6)
	gemmB  = mvF32(tensor.Shape{3, 2}, 7, 8, 9, 10, 11, 12)
	gemmBT = mvF32(tensor.Shape{2, 3}, 7, 9, 11, 8, 10, 12)
	gemmAB = mvF32(tensor.Shape{2, 2}, 58, 64, 139, 154)
)

func TestGemmKernel(t *testing.T) {
	const rtol = 1e-6
	runTensorOpCases(t, []tensorOpCase{
		{name: "no C", op: "Gemm", opset: 13, in: []*tensor.Tensor{gemmA, gemmB}, want: []*tensor.Tensor{gemmAB}, rtol: rtol},
		{name: "absent C", op: "Gemm", opset: 13, in: []*tensor.Tensor{gemmA, gemmB, nil}, want: []*tensor.Tensor{gemmAB}, rtol: rtol},
		{name: "transposes", op: "Gemm", opset: 13, attrs: ops.Attributes{"transA": mvIntA(1), "transB": mvIntA(1)},
			in: []*tensor.Tensor{gemmAT, gemmBT}, want: []*tensor.Tensor{gemmAB}, rtol: rtol},
		{name: "alpha beta row C", op: "Gemm", opset: 13, attrs: ops.Attributes{"alpha": mvFloatA(2), "beta": mvFloatA(0.5)},
			in:   []*tensor.Tensor{gemmA, gemmB, mvF32(tensor.Shape{2}, 1, 2)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 116.5, 129, 278.5, 309)}, rtol: rtol},
		{name: "column C", op: "Gemm", opset: 13, in: []*tensor.Tensor{gemmA, gemmB, mvF32(tensor.Shape{2, 1}, 1, 2)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 59, 65, 141, 156)}, rtol: rtol},
		{name: "scalar C", op: "Gemm", opset: 13, in: []*tensor.Tensor{gemmA, gemmB, mvF32(tensor.Shape{}, 10)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 68, 74, 149, 164)}, rtol: rtol},
		{name: "full C float64", op: "Gemm", opset: 13, attrs: ops.Attributes{"beta": mvFloatA(-1)},
			in: []*tensor.Tensor{mvConvert(gemmA, tensor.Float64), mvConvert(gemmB, tensor.Float64),
				mvConvert(mvF32(tensor.Shape{2, 2}, 1, 2, 3, 4), tensor.Float64)},
			want: []*tensor.Tensor{mvConvert(mvF32(tensor.Shape{2, 2}, 57, 62, 136, 150), tensor.Float64)}, rtol: rtol},
		{name: "opset 6 broadcast", op: "Gemm", opset: 6, attrs: ops.Attributes{"broadcast": mvIntA(1)},
			in:   []*tensor.Tensor{gemmA, gemmB, mvF32(tensor.Shape{2}, 1, 2)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 2}, 59, 66, 140, 156)}, rtol: rtol},
		{name: "opset 6 no broadcast", op: "Gemm", opset: 6, in: []*tensor.Tensor{gemmA, gemmB, mvF32(tensor.Shape{2}, 1, 2)},
			wantErr: ops.ErrShape},
		{name: "int32", op: "Gemm", opset: 13, in: []*tensor.Tensor{mvConvert(gemmA, tensor.Int32), mvConvert(gemmB, tensor.Int32)},
			want: []*tensor.Tensor{mvConvert(gemmAB, tensor.Int32)}},
		{name: "int64 alpha truncates", op: "Gemm", opset: 13, attrs: ops.Attributes{"alpha": mvFloatA(0.5)},
			in:   []*tensor.Tensor{mvConvert(gemmA, tensor.Int64), mvConvert(gemmB, tensor.Int64), mvVec(1)},
			want: []*tensor.Tensor{mvI64(tensor.Shape{2, 2}, 30, 33, 70, 78)}},
		{name: "float16", op: "Gemm", opset: 13, in: []*tensor.Tensor{mvConvert(gemmA, tensor.Float16), mvConvert(gemmB, tensor.Float16)},
			want: []*tensor.Tensor{mvConvert(gemmAB, tensor.Float16)}},
		{name: "inner mismatch", op: "Gemm", opset: 13, in: []*tensor.Tensor{gemmA, gemmA}, wantErr: ops.ErrShape},
		{name: "C too big", op: "Gemm", opset: 13, in: []*tensor.Tensor{gemmA, gemmB, mvRange(3, 2)}, wantErr: ops.ErrShape},
		{name: "mixed types", op: "Gemm", opset: 13, in: []*tensor.Tensor{gemmA, mvConvert(gemmB, tensor.Float64)}, wantErr: ops.ErrShape},
		{name: "bool", op: "Gemm", opset: 13, in: []*tensor.Tensor{mvBool(tensor.Shape{1, 1}, true), mvBool(tensor.Shape{1, 1}, true)},
			wantErr: ops.ErrShape},
	})
}

func TestMatMulKernel(t *testing.T) {
	const rtol = 1e-6
	runTensorOpCases(t, []tensorOpCase{
		{name: "2-D", op: "MatMul", opset: 13, in: []*tensor.Tensor{gemmA, gemmB}, want: []*tensor.Tensor{gemmAB}, rtol: rtol},
		{name: "vector dot", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvF32(tensor.Shape{3}, 1, 2, 3), mvF32(tensor.Shape{3}, 4, 5, 6)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{}, 32)}, rtol: rtol},
		{name: "vector left", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvF32(tensor.Shape{3}, 1, 2, 3), gemmB},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2}, 58, 64)}, rtol: rtol},
		{name: "vector right", op: "MatMul", opset: 13, in: []*tensor.Tensor{gemmA, mvF32(tensor.Shape{3}, 1, 1, 1)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2}, 6, 15)}, rtol: rtol},
		{name: "batch broadcast", op: "MatMul", opset: 13,
			in:   []*tensor.Tensor{mvF32(tensor.Shape{2, 1, 1, 2}, 1, 2, 3, 4), mvF32(tensor.Shape{3, 2, 1}, 1, 0, 0, 1, 1, 1)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 3, 1, 1}, 1, 2, 3, 3, 4, 7)}, rtol: rtol},
		{name: "batch times matrix", op: "MatMul", opset: 13,
			in:   []*tensor.Tensor{mvF32(tensor.Shape{2, 1, 3}, 1, 2, 3, 4, 5, 6), gemmB},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 1, 2}, 58, 64, 139, 154)}, rtol: rtol},
		{name: "int64", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvConvert(gemmA, tensor.Int64), mvConvert(gemmB, tensor.Int64)},
			want: []*tensor.Tensor{mvConvert(gemmAB, tensor.Int64)}},
		{name: "uint8", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvConvert(gemmA, tensor.Uint8), mvConvert(gemmB, tensor.Uint8)},
			want: []*tensor.Tensor{mvConvert(mvF32(tensor.Shape{2, 2}, 58, 64, 139, 154), tensor.Uint8)}},
		{name: "bfloat16", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvConvert(gemmA, tensor.BFloat16), mvConvert(gemmB, tensor.BFloat16)},
			want: []*tensor.Tensor{mvConvert(gemmAB, tensor.BFloat16)}},
		{name: "empty K", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvRange(2, 0), mvRange(0, 3)},
			want: []*tensor.Tensor{mvF32(tensor.Shape{2, 3}, 0, 0, 0, 0, 0, 0)}},
		{name: "inner mismatch", op: "MatMul", opset: 13, in: []*tensor.Tensor{gemmA, gemmA}, wantErr: ops.ErrShape},
		{name: "batch mismatch", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvRange(2, 2, 2), mvRange(3, 2, 2)}, wantErr: ops.ErrShape},
		{name: "scalar", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvF32(tensor.Shape{}, 1), gemmB}, wantErr: ops.ErrShape},
		{name: "huge output", op: "MatMul", opset: 13, in: []*tensor.Tensor{mvRange(1<<17, 0), mvRange(0, 1<<17)}, wantErr: ops.ErrShape},
	})
}

// TestMvCopyRejectsBadData checks that a tensor whose data does not match its shape gives an error
// rather than a panic.
func TestMvCopyRejectsBadData(t *testing.T) {
	bad := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{2, 3}, Data: []float32{1, 2}}
	op := &ops.Transpose{}
	if _, err := transposeKernel(op, []*tensor.Tensor{bad}, 1); err == nil {
		t.Fatal("no error for a tensor with too little data")
	}
	wrong := &tensor.Tensor{DType: tensor.Float32, Shape: tensor.Shape{2}, Data: []int64{1, 2}}
	if _, err := concatKernel(&ops.Concat{}, []*tensor.Tensor{wrong}, 1); err == nil {
		t.Fatal("no error for a tensor whose data type does not match its dtype")
	}
}

// mvLinearInputs returns the operands of a 1024-in, 1000-out Linear layer as PyTorch exports it:
// Gemm(X [batch,1024], W [1000,1024], b [1000]) with transB=1.
func mvLinearInputs(batch int) []*tensor.Tensor {
	x := make([]float32, batch*1024)
	w := make([]float32, 1000*1024)
	b := make([]float32, 1000)
	for i := range x {
		x[i] = float32(i%7) * 0.1
	}
	for i := range w {
		w[i] = float32(i%5) * 0.01
	}
	return []*tensor.Tensor{tensor.FromSlice(tensor.Shape{batch, 1024}, x),
		tensor.FromSlice(tensor.Shape{1000, 1024}, w), tensor.FromSlice(tensor.Shape{1000}, b)}
}

func BenchmarkGemmLinear1024x1000(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			in := mvLinearInputs(batch)
			op := &ops.Gemm{TransB: true, Alpha: 1, Beta: 1, BroadcastC: true}
			for b.Loop() {
				if _, err := gemmKernel(op, in, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkConcatChannels(b *testing.B) {
	// A DenseNet-121 block-4 concat: 16 inputs of [1,32,7,7] onto [1,512,7,7].
	in := []*tensor.Tensor{mvRange(1, 512, 7, 7)}
	for i := 0; i < 16; i++ {
		in = append(in, mvRange(1, 32, 7, 7))
	}
	op := &ops.Concat{Axis: 1}
	for b.Loop() {
		if _, err := concatKernel(op, in, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGemmMatchesNaive compares every transpose combination, on sizes that exercise the
// four-row blocking of mmDotRows and its remainder loop, with a plain float64 triple loop.
func TestGemmMatchesNaive(t *testing.T) {
	const rtol, atol = 1e-5, 1e-5
	for _, sz := range [][3]int{{3, 5, 7}, {1, 300, 9}, {4, 3, 4}, {2, 1, 1}} {
		m, k, n := sz[0], sz[1], sz[2]
		a := make([]float32, m*k)
		b := make([]float32, k*n)
		c := make([]float32, n)
		for i := range a {
			a[i] = float32((i*7)%11) - 5
		}
		for i := range b {
			b[i] = float32((i*5)%13)*0.25 - 1
		}
		for i := range c {
			c[i] = float32(i) - 2
		}
		want := make([]float32, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				s := 0.0
				for p := 0; p < k; p++ {
					s += float64(a[i*k+p]) * float64(b[p*n+j])
				}
				want[i*n+j] = float32(1.5*s - 0.5*float64(c[j]))
			}
		}
		for _, transA := range []bool{false, true} {
			for _, transB := range []bool{false, true} {
				at := tensor.FromSlice(tensor.Shape{m, k}, a)
				bt := tensor.FromSlice(tensor.Shape{k, n}, b)
				if transA {
					at = tensor.FromSlice(tensor.Shape{k, m}, mmTranspose(a, m, k))
				}
				if transB {
					bt = tensor.FromSlice(tensor.Shape{n, k}, mmTranspose(b, k, n))
				}
				op := &ops.Gemm{TransA: transA, TransB: transB, Alpha: 1.5, Beta: -0.5, BroadcastC: true}
				got, err := gemmKernel(op, []*tensor.Tensor{at, bt, tensor.FromSlice(tensor.Shape{n}, c)}, 1)
				if err != nil {
					t.Fatal(err)
				}
				if err := tensor.AllClose(got[0], tensor.FromSlice(tensor.Shape{m, n}, want), rtol, atol); err != nil {
					t.Errorf("m=%d k=%d n=%d transA=%v transB=%v: %v", m, k, n, transA, transB, err)
				}
				// MatMul on the untransposed operands must agree with the alpha=1, no-C product.
				if !transA && !transB {
					mm, err := matmulKernel(&ops.MatMul{}, []*tensor.Tensor{at, bt}, 1)
					if err != nil {
						t.Fatal(err)
					}
					g, _ := gemmKernel(&ops.Gemm{TransB: false, Alpha: 1, Beta: 1, BroadcastC: true}, []*tensor.Tensor{at, bt}, 1)
					if err := tensor.AllClose(mm[0], g[0], rtol, atol); err != nil {
						t.Errorf("MatMul vs Gemm m=%d k=%d n=%d: %v", m, k, n, err)
					}
				}
			}
		}
	}
}

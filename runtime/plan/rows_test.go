package plan

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// rowsGraph builds a graph on input x [N,4,6,6] (N symbolic unless fixed > 0) from nodes given
// as "Op in,in -> out attr=v,v ..." (integer attributes; one integer makes an INT attribute,
// several or a trailing comma INTS); its output is the last node's first output. Initializers:
// w (4x4x3x3), fc (144x5), the int64 shapes s0m1 = [0, -1], sm1_144 = [-1, 144],
// sm1_7 = [-1, 7], and the int64 scalars i0 = 0, i1 = 1, two = 2 and vectors ax0 = z1 = [0],
// ax1 = [1], m1 = [-1].
func rowsGraph(t *testing.T, fixed int64, lines ...string) *graph.Graph {
	t.Helper()
	enc := func(tt *tensor.Tensor, name string) *onnxpb.TensorProto {
		tp, err := onnx.EncodeTensor(tt, name)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	g := &onnxpb.GraphProto{Name: proto.String("rows"), Initializer: []*onnxpb.TensorProto{
		enc(tensor.New(tensor.Float32, tensor.Shape{4, 4, 3, 3}), "w"),
		enc(tensor.New(tensor.Float32, tensor.Shape{144, 5}), "fc"),
		enc(tensor.FromSlice(tensor.Shape{2}, []int64{0, -1}), "s0m1"),
		enc(tensor.FromSlice(tensor.Shape{2}, []int64{-1, 144}), "sm1_144"),
		enc(tensor.FromSlice(tensor.Shape{2}, []int64{-1, 7}), "sm1_7"),
		enc(tensor.FromSlice(tensor.Shape{}, []int64{0}), "i0"),
		enc(tensor.FromSlice(tensor.Shape{}, []int64{1}), "i1"),
		enc(tensor.FromSlice(tensor.Shape{}, []int64{2}), "two"),
		enc(tensor.FromSlice(tensor.Shape{1}, []int64{0}), "ax0"),
		enc(tensor.FromSlice(tensor.Shape{1}, []int64{1}), "ax1"),
		enc(tensor.FromSlice(tensor.Shape{1}, []int64{0}), "z1"),
		enc(tensor.FromSlice(tensor.Shape{1}, []int64{-1}), "m1"),
	}}
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
	if fixed > 0 {
		batch = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: fixed}}
	}
	dims := []*onnxpb.TensorShapeProto_Dimension{batch}
	for _, d := range []int64{4, 6, 6} {
		dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	g.Input = []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}}
	var last string
	for i, line := range lines {
		f := strings.Fields(line)
		ins, outs := f[1], f[3]
		n := &onnxpb.NodeProto{Name: proto.String(f[0] + string(rune('a'+i))), OpType: proto.String(f[0]),
			Input: strings.Split(ins, ","), Output: strings.Split(outs, ",")}
		for _, a := range f[4:] {
			name, vals, _ := strings.Cut(a, "=")
			var v []int64
			for _, s := range strings.Split(strings.TrimSuffix(vals, ","), ",") {
				var x int64
				for j, c := range s {
					if c == '-' && j == 0 {
						continue
					}
					x = 10*x + int64(c-'0')
				}
				if strings.HasPrefix(s, "-") {
					x = -x
				}
				v = append(v, x)
			}
			attr := &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
			if len(v) == 1 && !strings.HasSuffix(vals, ",") {
				attr = &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v[0])}
			}
			n.Attribute = append(n.Attribute, attr)
		}
		g.Node = append(g.Node, n)
		last = n.Output[0]
	}
	g.Output = []*onnxpb.ValueInfoProto{{Name: proto.String(last)}}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}
	gr, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatalf("%v: %v", lines, err)
	}
	return gr
}

func TestRowIndependent(t *testing.T) {
	cnn := []string{"Conv x,w -> c pads=1,1,1,1,", "Relu c -> r", "MaxPool r -> p kernel_shape=2,2, strides=2,2,",
		"Concat p,p -> cat axis=1", "Conv cat,w -> c2 pads=1,1,1,1, group=2"}
	cases := []struct {
		name  string
		fixed int64
		lines []string
		why   string // "" when row-independent; else a part of the reason
	}{
		{"cnn with a classifier", 0, []string{"Conv x,w -> c pads=1,1,1,1,", "Relu c -> r", "Flatten r -> f axis=1", "Gemm f,fc -> y"}, ""},
		{"concat and grouped conv", 0, cnn, ""},
		{"global pool, reshape keeping rows", 0, []string{"GlobalAveragePool x -> g", "Reshape g,s0m1 -> y"}, ""},
		{"reshape to whole rows", 0, []string{"Reshape x,sm1_144 -> y"}, ""},
		{"softmax over classes", 0, []string{"Flatten x -> f axis=1", "Softmax f -> y axis=1"}, ""},
		{"transpose keeping the batch first", 0, []string{"Transpose x -> y perm=0,2,3,1,"}, ""},
		{"fixed batch", 2, []string{"Relu x -> y"}, "not symbolic"},
		{"softmax over the batch", 0, []string{"Flatten x -> f axis=1", "Softmax f -> y axis=0"}, "axis 0"},
		{"transpose moving the batch", 0, []string{"Transpose x -> t perm=1,0,2,3,", "Transpose t -> y perm=1,0,2,3,"}, "moves the batch"},
		{"reshape across rows", 0, []string{"Reshape x,sm1_7 -> y"}, "does not keep rows"},
		{"batch mean", 0, []string{"ReduceMean x -> m axes=0,", "Sub x,m -> y"}, "axis 0"},
		{"view(x.size(0), -1)", 0, []string{"Shape x -> s", "Gather s,i0 -> n axis=0", "Unsqueeze n,ax0 -> u",
			"Concat u,m1 -> sh axis=0", "Reshape x,sh -> y"}, ""},
		{"channel split from the shape", 0, []string{"Shape x -> s", "Gather s,i1 -> c axis=0", "Div c,two -> h",
			"Unsqueeze h,ax0 -> u", "Slice x,z1,u,ax1 -> y"}, ""},
		{"batch size as a slice bound", 0, []string{"Shape x -> s", "Gather s,i0 -> n axis=0", "Unsqueeze n,ax0 -> u",
			"Slice x,z1,u,ax1 -> y"}, "computed from the batch's size"},
		{"shape fed to an unknown consumer", 0, []string{"Shape x -> s", "ConstantOfShape s -> z", "Add x,z -> y"}, "ConstantOfShape"},
		{"pooling indices", 0, []string{"MaxPool x -> y,i kernel_shape=2,2,"}, "indices"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := rowsGraph(t, tc.fixed, tc.lines...)
			ok, why := RowIndependent(g, nil)
			if ok != (tc.why == "") || !strings.Contains(why, tc.why) {
				t.Fatalf("RowIndependent = %v, %q; want %v and a reason containing %q", ok, why, tc.why == "", tc.why)
			}
		})
	}
}

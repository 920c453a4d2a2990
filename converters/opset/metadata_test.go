package opset

import (
	"maps"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// TestKeepsDescription checks that a conversion keeps what describes the model: producer, domain,
// model_version, the model's and the graph's doc_string, metadata_props exactly (order, and a
// repeated key as the file has it: Convert works on the protobuf and does not interpret them),
// and the doc_string of every node it rewrites in place, whether the rewrite changes attributes,
// adds helper nodes or changes the op type. It then checks that graph.Import of the written
// result sees the same description.
func TestKeepsDescription(t *testing.T) {
	cases := []struct {
		name     string
		from, to int
		build    func(b *builder) *builder
		ops      string            // the converted graph's op types, to show the rewrite happened
		docs     map[string]string // node name -> doc_string after the conversion
	}{
		{"same opset", 13, 13, func(b *builder) *builder {
			return b.input("x", tensor.Float32, 2).node("Relu", ins("x"), ins("y"))
		}, "Relu", map[string]string{"Relu_y": "doc of Relu_y"}},
		{"attribute becomes an input", 11, 13, func(b *builder) *builder {
			return b.input("x", tensor.Float32, 2, 1).node("Squeeze", ins("x"), ins("y"), intsAttr("axes", []int64{1}))
		}, "Squeeze", map[string]string{"Squeeze_y": "doc of Squeeze_y"}},
		{"helper nodes around the node", 13, 11, func(b *builder) *builder {
			return b.input("x", tensor.Float32, 2, 3, 4).node("Softmax", ins("x"), ins("y"), intAttr("axis", 1))
		}, "Transpose,Softmax,Transpose", map[string]string{"Softmax_y": "doc of Softmax_y"}},
		{"op type changes", 18, 17, func(b *builder) *builder {
			return b.input("x", tensor.Float32, 2, 3).node("ReduceMean", ins("x"), ins("y"), intAttr("noop_with_empty_axes", 1))
		}, "Identity", map[string]string{"ReduceMean_y": "doc of ReduceMean_y"}},
	}
	meta := [][2]string{{"labels", "a,b"}, {"dnx.densenet.classes", "2"}, {"labels", "a,b,c"}, {"", "empty key"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.build(newModel(t, c.from)).output("y").build()
			for _, n := range m.Graph.Node {
				n.DocString = proto.String("doc of " + n.GetName())
			}
			m.ProducerName, m.ProducerVersion = proto.String("pytorch"), proto.String("2.1")
			m.Domain, m.ModelVersion = proto.String("org.example"), proto.Int64(5)
			m.DocString, m.Graph.DocString = proto.String("model doc"), proto.String("graph doc")
			for _, kv := range meta {
				m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(kv[0]), Value: proto.String(kv[1])})
			}

			out, err := convert(t, m, c.to)
			if err != nil {
				t.Fatal(err)
			}
			if got := nodeOps(out); got != c.ops {
				t.Fatalf("ops %s, want %s (the case no longer exercises the rewrite)", got, c.ops)
			}
			for _, f := range []struct {
				field     string
				got, want any
			}{
				{"producer_name", out.GetProducerName(), m.GetProducerName()},
				{"producer_version", out.GetProducerVersion(), m.GetProducerVersion()},
				{"domain", out.GetDomain(), m.GetDomain()},
				{"model_version", out.GetModelVersion(), m.GetModelVersion()},
				{"doc_string", out.GetDocString(), m.GetDocString()},
				{"graph doc_string", out.GetGraph().GetDocString(), m.GetGraph().GetDocString()},
			} {
				if f.got != f.want {
					t.Errorf("%s = %v, want %v", f.field, f.got, f.want)
				}
			}
			if len(out.MetadataProps) != len(m.MetadataProps) {
				t.Errorf("%d metadata_props, want %d", len(out.MetadataProps), len(m.MetadataProps))
			}
			for i := range min(len(out.MetadataProps), len(m.MetadataProps)) {
				if !proto.Equal(out.MetadataProps[i], m.MetadataProps[i]) {
					t.Errorf("metadata_props[%d] = %v, want %v", i, out.MetadataProps[i], m.MetadataProps[i])
				}
			}
			docs := map[string]string{}
			for _, n := range out.Graph.Node {
				if n.GetDocString() != "" {
					docs[n.GetName()] = n.GetDocString()
				}
			}
			if !maps.Equal(docs, c.docs) {
				t.Errorf("node doc strings %v, want %v", docs, c.docs)
			}

			// What the graph sees of the written model: the repeated key collapsed, the rest as is.
			data, err := onnx.MarshalModel(out)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := onnx.ReadModel(data)
			if err != nil {
				t.Fatal(err)
			}
			g, err := graph.Import(m2, "", ops.Default())
			if err != nil {
				t.Fatalf("import the converted model: %v", err)
			}
			wantMeta := []graph.MetadataProp{{Key: "labels", Value: "a,b,c"}, {Key: "dnx.densenet.classes", Value: "2"}, {Key: "", Value: "empty key"}}
			if got := g.Metadata(); !reflect.DeepEqual(got, wantMeta) {
				t.Errorf("imported metadata %v, want %v", got, wantMeta)
			}
			if g.DocString != "model doc" || g.GraphDocString != "graph doc" || g.Domain != "org.example" || g.ModelVersion != 5 {
				t.Errorf("imported description: doc %q graph doc %q domain %q model_version %d", g.DocString, g.GraphDocString, g.Domain, g.ModelVersion)
			}
		})
	}
}

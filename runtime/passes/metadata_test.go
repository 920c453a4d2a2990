package passes

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// modelHeader is the model-level description a pass must leave alone.
type modelHeader struct {
	Producer, ProducerVersion, Domain string
	ModelVersion                      int64
	Doc, GraphDoc                     string
	Meta                              []graph.MetadataProp
}

func headerOf(g *graph.Graph) modelHeader {
	return modelHeader{g.ProducerName, g.ProducerVersion, g.Domain, g.ModelVersion, g.DocString, g.GraphDocString, g.Metadata()}
}

// nodeDocs maps each node with a doc_string to it.
func nodeDocs(g *graph.Graph) map[string]string {
	docs := map[string]string{}
	for _, n := range g.Nodes {
		if n.DocString != "" {
			docs[n.Name] = n.DocString
		}
	}
	return docs
}

// describe sets every model-level field of m, metadata deliberately unsorted and with a repeated
// key (which import collapses).
func describe(m *onnxpb.ModelProto) {
	m.ProducerName, m.ProducerVersion = proto.String("pytorch"), proto.String("1.13.0")
	m.Domain, m.ModelVersion = proto.String("org.example"), proto.Int64(7)
	m.DocString, m.Graph.DocString = proto.String("a DenseNet"), proto.String("the graph")
	for _, kv := range [][2]string{{"labels", "cat,dog"}, {"dnx.densenet.classes", "2"}, {"labels", "cat,dog,bird"}, {"a", ""}} {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(kv[0]), Value: proto.String(kv[1])})
	}
}

// TestPipelinesKeepMetadata runs each pipeline over models its passes rewrite and checks that the
// model-level fields survive Import -> Clone -> Run -> Export -> marshal -> ReadModel -> Import
// unchanged, and that a node rewritten in place keeps its doc_string while a removed node's goes.
func TestPipelinesKeepMetadata(t *testing.T) {
	wantHeader := modelHeader{"pytorch", "1.13.0", "org.example", 7, "a DenseNet", "the graph",
		[]graph.MetadataProp{{Key: "labels", Value: "cat,dog,bird"}, {Key: "dnx.densenet.classes", Value: "2"}, {Key: "a", Value: ""}}}

	rng := rand.New(rand.NewPCG(3, 4))
	// Conv -> BN -> Identity -> Flatten: Portable and Inference fold the BN into the Conv and drop
	// the Identity; Training drops only the Identity.
	convBN := func(t *testing.T) *onnxpb.ModelProto {
		b := newModel(t, 13).input("x", "batch", 2, 4, 4).output("y").init("w", randTensor(rng, -1, 1, 3, 2, 1, 1))
		bn := b.bnParams(rng, "bn", 3)
		return b.node("Conv", []string{"x", "w"}, []string{"c"}).doc("conv").
			node("BatchNormalization", append([]string{"c"}, bn...), []string{"n"}).doc("bn").
			node("Identity", []string{"n"}, []string{"i"}).doc("identity").
			node("Flatten", []string{"i"}, []string{"y"}).doc("flatten").model()
	}
	// BN -> Relu -> Conv 1x1 -> AveragePool 2x2/2 -> Relu: Inference moves the pool before the
	// Conv and fuses all but the pool into FusedConv and FusedAveragePool, which are not ONNX.
	transition := func(t *testing.T) *onnxpb.ModelProto {
		b := newModel(t, 13).input("x", "batch", 2, 4, 4).output("y").init("w", randTensor(rng, -1, 1, 3, 2, 1, 1))
		bn := b.bnParams(rng, "bn", 2)
		return b.node("BatchNormalization", append([]string{"x"}, bn...), []string{"n"}).doc("bn").
			node("Relu", []string{"n"}, []string{"r"}).doc("relu1").
			node("Conv", []string{"r", "w"}, []string{"c"}).doc("conv").
			node("AveragePool", []string{"c"}, []string{"p"}, aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)).doc("pool").
			node("Relu", []string{"p"}, []string{"y"}).doc("relu2").model()
	}
	cases := []struct {
		name       string
		model      func(t *testing.T) *onnxpb.ModelProto
		pipeline   *Pipeline
		ops        map[string]int
		docs       map[string]string
		exportable bool
	}{
		{"Portable folds Conv-BN", convBN, Portable(), map[string]int{"Conv": 1, "Flatten": 1},
			map[string]string{"Conv_1": "conv", "Flatten_4": "flatten"}, true},
		{"Inference folds Conv-BN", convBN, Inference(), map[string]int{"Conv": 1, "Flatten": 1},
			map[string]string{"Conv_1": "conv", "Flatten_4": "flatten"}, true},
		{"Training keeps the BN", convBN, Training(), map[string]int{"Conv": 1, "BatchNormalization": 1, "Flatten": 1},
			map[string]string{"Conv_1": "conv", "BatchNormalization_2": "bn", "Flatten_4": "flatten"}, true},
		{"Portable moves the pool", transition, Portable(), map[string]int{"BatchNormalization": 1, "Relu": 2, "AveragePool": 1, "Conv": 1},
			map[string]string{"BatchNormalization_1": "bn", "Relu_2": "relu1", "Conv_3": "conv", "AveragePool_4": "pool", "Relu_5": "relu2"}, true},
		{"Inference fuses into dnx operators", transition, Inference(), map[string]int{"FusedAveragePool": 1, "FusedConv": 1},
			map[string]string{"Conv_3": "conv", "AveragePool_4": "pool"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.model(t)
			describe(m)
			orig, err := graph.Import(m, "", ops.Default())
			if err != nil {
				t.Fatal(err)
			}
			g, err := orig.Clone(ops.Default())
			if err != nil {
				t.Fatal(err)
			}
			if changed, err := c.pipeline.Run(g); err != nil || !changed {
				t.Fatalf("%s: changed = %v, err = %v; want a change", c.pipeline.Name(), changed, err)
			}
			if got := g.OpHistogram(); !maps.Equal(got, c.ops) {
				t.Fatalf("ops after %s = %v, want %v (the case no longer exercises the rewrite)", c.pipeline.Name(), got, c.ops)
			}
			if got := headerOf(g); !reflect.DeepEqual(got, wantHeader) {
				t.Errorf("after %s:\n got  %+v\n want %+v", c.pipeline.Name(), got, wantHeader)
			}
			if got := nodeDocs(g); !maps.Equal(got, c.docs) {
				t.Errorf("node doc strings after %s = %v, want %v", c.pipeline.Name(), got, c.docs)
			}
			if !c.exportable {
				return
			}
			out, err := graph.Export(g)
			if err != nil {
				t.Fatal(err)
			}
			data, err := onnx.MarshalModel(out)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := onnx.ReadModel(data)
			if err != nil {
				t.Fatal(err)
			}
			g2, err := graph.Import(m2, "", ops.Default())
			if err != nil {
				t.Fatalf("re-import: %v", err)
			}
			if got := headerOf(g2); !reflect.DeepEqual(got, wantHeader) {
				t.Errorf("after the round trip:\n got  %+v\n want %+v", got, wantHeader)
			}
			if got := nodeDocs(g2); !maps.Equal(got, c.docs) {
				t.Errorf("node doc strings after the round trip = %v, want %v", got, c.docs)
			}
		})
	}
}

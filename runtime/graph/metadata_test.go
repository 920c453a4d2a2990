package graph_test

import (
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/passes"
)

// header is what a graph carries besides its computation, in a form tests can compare.
type header struct {
	Producer, ProducerVersion, Domain string
	ModelVersion                      int64
	Doc, GraphDoc                     string
	Meta                              []graph.MetadataProp
	NodeDocs                          map[string]string // node name -> doc_string, non-empty only
}

func headerOf(g *graph.Graph) header {
	h := header{
		Producer: g.ProducerName, ProducerVersion: g.ProducerVersion, Domain: g.Domain,
		ModelVersion: g.ModelVersion, Doc: g.DocString, GraphDoc: g.GraphDocString,
		Meta: g.Metadata(), NodeDocs: map[string]string{},
	}
	for _, n := range g.Nodes {
		if n.DocString != "" {
			h.NodeDocs[n.Name] = n.DocString
		}
	}
	return h
}

func meta(kv ...string) []*onnxpb.StringStringEntryProto {
	var out []*onnxpb.StringStringEntryProto
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return out
}

func props(kv ...string) []graph.MetadataProp {
	var out []graph.MetadataProp
	for i := 0; i < len(kv); i += 2 {
		out = append(out, graph.MetadataProp{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

// describedModel is x -> Relu -> Identity -> Sigmoid -> y at opset 13, with a doc_string on each
// node. Inference removes the Identity, so the chain below runs a pass that changes the graph.
func describedModel() *onnxpb.ModelProto {
	n := func(name, op, in, out, doc string) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: []string{in}, Output: []string{out}, DocString: proto.String(doc)}
	}
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("described"),
			Input:  []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: tensorType("batch", 3)}},
			Output: []*onnxpb.ValueInfoProto{{Name: proto.String("y"), Type: tensorType("batch", 3)}},
			Node: []*onnxpb.NodeProto{
				n("relu", "Relu", "x", "a", "first"),
				n("id", "Identity", "a", "b", "removed with its node"),
				n("sigmoid", "Sigmoid", "b", "y", "second"),
			},
		},
	}
}

// TestMetadataRoundTrip takes each model-level field through Import -> Clone -> (caller edits)
// -> passes.Inference -> Export -> marshal -> ReadModel -> Import, checking it at every stage,
// and checks that the original graph does not see the clone's edits.
func TestMetadataRoundTrip(t *testing.T) {
	nodeDocs := map[string]string{"relu": "first", "id": "removed with its node", "sigmoid": "second"}
	afterPasses := map[string]string{"relu": "first", "sigmoid": "second"}
	cases := []struct {
		name     string
		set      func(m *onnxpb.ModelProto)         // fields of the file
		edit     func(t *testing.T, g *graph.Graph) // the caller's changes on the clone, or nil
		imported header                             // after Import (and Clone)
		final    header                             // after the passes and the round trip
	}{
		{
			name: "every field",
			set: func(m *onnxpb.ModelProto) {
				m.ProducerName, m.ProducerVersion = proto.String("pytorch"), proto.String("2.1.0")
				m.Domain, m.ModelVersion = proto.String("org.example.vision"), proto.Int64(42)
				m.DocString, m.Graph.DocString = proto.String("DenseNet-121\nImageNet"), proto.String("main graph")
				// Not sorted, so that a sort anywhere on the way shows.
				m.MetadataProps = meta("z.last", "1", "dnx.labels", "[\"cat\",\"dog\"]", "a.first", "ü ✓")
			},
			imported: header{Producer: "pytorch", ProducerVersion: "2.1.0", Domain: "org.example.vision", ModelVersion: 42,
				Doc: "DenseNet-121\nImageNet", GraphDoc: "main graph",
				Meta: props("z.last", "1", "dnx.labels", "[\"cat\",\"dog\"]", "a.first", "ü ✓"), NodeDocs: nodeDocs},
			final: header{Producer: "pytorch", ProducerVersion: "2.1.0", Domain: "org.example.vision", ModelVersion: 42,
				Doc: "DenseNet-121\nImageNet", GraphDoc: "main graph",
				Meta: props("z.last", "1", "dnx.labels", "[\"cat\",\"dog\"]", "a.first", "ü ✓"), NodeDocs: afterPasses},
		},
		{
			name:     "no field",
			set:      func(m *onnxpb.ModelProto) { m.Graph.Node[0].DocString = nil },
			imported: header{NodeDocs: map[string]string{"id": "removed with its node", "sigmoid": "second"}},
			final:    header{NodeDocs: map[string]string{"sigmoid": "second"}},
		},
		{
			name:     "repeated key keeps its first place and last value",
			set:      func(m *onnxpb.ModelProto) { m.MetadataProps = meta("k", "old", "other", "x", "k", "new") },
			imported: header{Meta: props("k", "new", "other", "x"), NodeDocs: nodeDocs},
			final:    header{Meta: props("k", "new", "other", "x"), NodeDocs: afterPasses},
		},
		{
			name:     "empty key and empty value are entries",
			set:      func(m *onnxpb.ModelProto) { m.MetadataProps = meta("", "no key", "blank", "") },
			imported: header{Meta: props("", "no key", "blank", ""), NodeDocs: nodeDocs},
			final:    header{Meta: props("", "no key", "blank", ""), NodeDocs: afterPasses},
		},
		{
			name: "caller edits",
			set: func(m *onnxpb.ModelProto) {
				m.DocString, m.ModelVersion = proto.String("v1"), proto.Int64(1)
				m.MetadataProps = meta("classes", "10", "drop", "me", "keep", "yes")
			},
			edit: func(t *testing.T, g *graph.Graph) {
				g.DocString, g.ModelVersion, g.Domain = "v2", 2, "org.example"
				g.SetMetadata("classes", "3")     // in place
				g.SetMetadata("dnx.steps", "100") // appended
				if !g.DeleteMetadata("drop") {    // removed
					t.Fatal(`DeleteMetadata("drop") found no such key`)
				}
				g.Nodes[0].DocString = ""
			},
			imported: header{Doc: "v1", ModelVersion: 1, Meta: props("classes", "10", "drop", "me", "keep", "yes"), NodeDocs: nodeDocs},
			final: header{Doc: "v2", ModelVersion: 2, Domain: "org.example",
				Meta: props("classes", "3", "keep", "yes", "dnx.steps", "100"), NodeDocs: map[string]string{"sigmoid": "second"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := describedModel()
			c.set(m)
			g, err := graph.Import(m, "", ops.Default())
			if err != nil {
				t.Fatal(err)
			}
			check := func(stage string, g *graph.Graph, want header) {
				t.Helper()
				if got := headerOf(g); !reflect.DeepEqual(got, want) {
					t.Errorf("after %s:\n got  %+v\n want %+v", stage, got, want)
				}
			}
			check("Import", g, c.imported)

			cl, err := g.Clone(ops.Default())
			if err != nil {
				t.Fatal(err)
			}
			check("Clone", cl, c.imported)
			if c.edit != nil {
				c.edit(t, cl)
				check("editing the clone, the original", g, c.imported)
			}
			if _, err := passes.Inference().Run(cl); err != nil {
				t.Fatal(err)
			}
			check("Inference", cl, c.final)

			out, err := graph.Export(cl)
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]bool{}
			for _, p := range out.GetMetadataProps() {
				if keys[p.GetKey()] {
					t.Errorf("Export wrote metadata key %q twice", p.GetKey())
				}
				keys[p.GetKey()] = true
			}
			// Absent stays absent: no empty doc_string or zero model_version appears in the file.
			if (out.DocString != nil) != (c.final.Doc != "") || (out.GetGraph().DocString != nil) != (c.final.GraphDoc != "") ||
				(out.Domain != nil) != (c.final.Domain != "") || (out.ModelVersion != nil) != (c.final.ModelVersion != 0) {
				t.Errorf("exported header presence: doc %v graph doc %v domain %v model_version %v; want set only when non-empty",
					out.DocString != nil, out.GetGraph().DocString != nil, out.Domain != nil, out.ModelVersion != nil)
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
			check("the round trip", g2, c.final)
		})
	}
}

// TestMetadataMethods checks the accessors one call at a time against the list they must leave.
func TestMetadataMethods(t *testing.T) {
	m := describedModel()
	m.MetadataProps = meta("a", "1", "b", "2", "c", "3")
	g, err := graph.Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func(g *graph.Graph) bool // reports the call's own result where it has one
		ok   bool
		want []graph.MetadataProp
	}{
		{"set a known key keeps its place", func(g *graph.Graph) bool { g.SetMetadata("b", "20"); return true }, true, props("a", "1", "b", "20", "c", "3")},
		{"set a new key appends", func(g *graph.Graph) bool { g.SetMetadata("d", "4"); return true }, true, props("a", "1", "b", "20", "c", "3", "d", "4")},
		{"delete the first", func(g *graph.Graph) bool { return g.DeleteMetadata("a") }, true, props("b", "20", "c", "3", "d", "4")},
		{"delete an absent key", func(g *graph.Graph) bool { return g.DeleteMetadata("a") }, false, props("b", "20", "c", "3", "d", "4")},
		{"value of a key", func(g *graph.Graph) bool { v, ok := g.MetadataValue("c"); return ok && v == "3" }, true, props("b", "20", "c", "3", "d", "4")},
		{"value of an absent key", func(g *graph.Graph) bool { _, ok := g.MetadataValue("a"); return ok }, false, props("b", "20", "c", "3", "d", "4")},
		{"changing Metadata's copy changes nothing", func(g *graph.Graph) bool {
			l := g.Metadata()
			l[0].Value = "changed"
			return true
		}, true, props("b", "20", "c", "3", "d", "4")},
		{"delete the last", func(g *graph.Graph) bool { return g.DeleteMetadata("d") }, true, props("b", "20", "c", "3")},
	}
	for _, s := range steps {
		if ok := s.do(g); ok != s.ok {
			t.Errorf("%s: returned %v, want %v", s.name, ok, s.ok)
		}
		if got := g.Metadata(); !slices.Equal(got, s.want) {
			t.Errorf("%s: metadata %v, want %v", s.name, got, s.want)
		}
	}
	if got, want := g.MetadataMap(), map[string]string{"b": "20", "c": "3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("MetadataMap = %v, want %v", got, want)
	}
}

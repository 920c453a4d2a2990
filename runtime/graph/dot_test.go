package graph

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/ops"
	"google.golang.org/protobuf/proto"
)

func TestWriteDot(t *testing.T) {
	m := statsModel(t)
	m.Graph.Node[0].Name = proto.String(`conv"1\`) // needs escaping
	g, err := Import(m, "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := g.WriteDot(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"digraph \"stats\" {\n",
		`in0 [shape=ellipse, fillcolor=lightblue, label="x\nfloat32[batch,3,8,8]"];`,
		`n0 [label="Conv\nconv\"1\\\nweight 4x3x3x3"];`, // the initializer folded into the label
		`n2 [label="Reshape\nflat\nshape 2"];`,
		`out0 [shape=doubleoctagon, fillcolor=palegreen, label="y\nfloat32[batch,5]"];`,
		`in0 -> n0 [label="batch x 3 x 8 x 8"];`,
		`n0 -> n1 [label="batch x 4 x 8 x 8"];`,
		`n4 -> out0 [label="batch x 5"];`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	// Initializers are not drawn as nodes or edges of their own.
	if strings.Count(out, "->") != 6 || strings.Contains(out, "conv1.weight") {
		t.Errorf("want 6 edges (in, 4 between nodes, out) and no initializer nodes:\n%s", out)
	}
	if !strings.HasSuffix(out, "}\n") {
		t.Errorf("unterminated digraph")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteDotReportsWriteErrors(t *testing.T) {
	g, err := Import(statsModel(t), "", ops.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WriteDot(failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("error %v, want the writer's", err)
	}
}

package train

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/kernels/ref"
	"github.com/dnx-ml/dnx/runtime/ops"
)

// TestTrainables checks the table of trainable operators: each op type appears once, decodes in
// ops.Default() at the newest opset, has a reference kernel, a build and parameter positions
// in range; Trainables returns it in order, as a copy.
func TestTrainables(t *testing.T) {
	reg, kernels := ops.Default(), ref.Kernels()
	seen := map[string]bool{}
	for _, tr := range trainables {
		if seen[tr.op] {
			t.Errorf("%s is listed twice", tr.op)
		}
		seen[tr.op] = true
		if _, err := reg.Lookup("", tr.op, ops.MaxOpset); err != nil {
			t.Errorf("%s does not decode: %v", tr.op, err)
		}
		if kernels[tr.op] == nil {
			t.Errorf("%s has no reference kernel in runtime/kernels/ref", tr.op)
		}
		if tr.build == nil {
			t.Errorf("%s has no build", tr.op)
		}
		for _, i := range tr.params {
			if i < 0 || i > 2 {
				t.Errorf("%s: parameter position %d", tr.op, i)
			}
		}
		if lookupTrainable(tr.op) == nil || !slices.Equal(paramPositions(tr.op), tr.params) {
			t.Errorf("%s: lookup or paramPositions disagree with the table", tr.op)
		}
	}
	got := Trainables()
	if len(got) != len(trainables) {
		t.Fatalf("Trainables has %d operators, the table %d", len(got), len(trainables))
	}
	for i, op := range got {
		if op.Op != trainables[i].op || op.Note != trainables[i].note {
			t.Errorf("Trainables()[%d] = %+v, the table has %q %q", i, op, trainables[i].op, trainables[i].note)
		}
	}
	got[0].Op = "changed"
	if Trainables()[0].Op == "changed" {
		t.Error("Trainables returns the table itself, not a copy")
	}
	if paramPositions("Sigmoid") != nil {
		t.Error("paramPositions of an op outside the table is not nil")
	}
}

// TestUntrainableOp checks that New refuses an operator outside the table, naming the node and
// listing the table, and an arithmetic operator other than Add.
func TestUntrainableOp(t *testing.T) {
	list := make([]string, 0, len(trainables))
	for _, op := range Trainables() {
		list = append(list, op.Op)
	}
	supported := "(supported: " + strings.Join(list, ", ") + ")"
	cases := []struct {
		name string
		g    func(t testing.TB) *graph.Graph
		want []string
	}{
		{"Sigmoid", func(t testing.TB) *graph.Graph {
			b := newDropNet(t, 13, 0, 1, 2, 2)
			return b.build(b.head(b.node("Sigmoid", []string{b.conv("x", 1, 2)}), 2, 3))
		}, []string{`node "Sigmoid_2" (Sigmoid) cannot be trained`, supported}},
		{"Sub", func(t testing.TB) *graph.Graph {
			b := newDropNet(t, 13, 0, 1, 2, 2)
			c := b.conv("x", 1, 2)
			return b.build(b.head(b.node("Sub", []string{c, c}), 2, 3))
		}, []string{`node "Sub_2" (Sub) cannot be trained`, supported}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.g(t), DefaultOptions())
			if !errors.Is(err, ops.ErrUnsupportedOp) {
				t.Fatalf("error %v, want %v", err, ops.ErrUnsupportedOp)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

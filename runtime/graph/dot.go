package graph

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// WriteDot writes g as a Graphviz DOT digraph (render with `dot -Tsvg`). Each node is a box
// labelled with its op type, its name and the initializers it reads, which are folded into the
// label ("weight 64x3x7x7") rather than drawn; graph inputs are blue ellipses and graph outputs
// green double octagons. Every edge is labelled with the shape of the value it carries, symbolic
// dims by name ("batch x 64 x 56 x 56"). The output is deterministic: nodes appear in topological
// order.
func (g *Graph) WriteDot(w io.Writer) error {
	bw := bufio.NewWriter(w)
	name := g.Name
	if name == "" {
		name = "model"
	}
	fmt.Fprintf(bw, "digraph %s {\n", quote(name))
	fmt.Fprintln(bw, "  rankdir=TB;")
	fmt.Fprintln(bw, `  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=10];`)
	fmt.Fprintln(bw, `  edge [fontname="Helvetica", fontsize=9];`)

	// Where each value comes from: a graph input's id, or a node's id.
	source := map[*Value]string{}
	for i, v := range g.Inputs {
		id := fmt.Sprintf("in%d", i)
		source[v] = id
		fmt.Fprintf(bw, "  %s [shape=ellipse, fillcolor=lightblue, label=%s];\n", id, quote(v.Name+"\n"+v.Type.String()))
	}
	for i, n := range g.Nodes {
		id := fmt.Sprintf("n%d", i)
		for _, v := range n.Outputs {
			if v != nil {
				source[v] = id
			}
		}
		lines := []string{n.OpType}
		if n.Name != "" {
			lines = append(lines, n.Name)
		}
		for _, v := range n.Inputs {
			if v != nil && v.IsConst() {
				lines = append(lines, shortName(v.Name)+" "+shapeText(v.Const.Shape))
			}
		}
		fmt.Fprintf(bw, "  %s [label=%s];\n", id, quote(strings.Join(lines, "\n")))
	}
	for i, v := range g.Outputs {
		fmt.Fprintf(bw, "  out%d [shape=doubleoctagon, fillcolor=palegreen, label=%s];\n", i, quote(v.Name+"\n"+v.Type.String()))
	}

	edge := func(from, to string, v *Value) {
		fmt.Fprintf(bw, "  %s -> %s [label=%s];\n", from, to, quote(typeText(v)))
	}
	for i, n := range g.Nodes {
		to := fmt.Sprintf("n%d", i)
		for _, v := range n.Inputs {
			if v == nil || v.IsConst() {
				continue
			}
			if from, ok := source[v]; ok {
				edge(from, to, v)
			}
		}
	}
	for i, v := range g.Outputs {
		if from, ok := source[v]; ok {
			edge(from, fmt.Sprintf("out%d", i), v)
		}
	}
	fmt.Fprintln(bw, "}")
	return bw.Flush()
}

// typeText formats a value's shape for an edge label: "batch x 64 x 56 x 56", "scalar" for rank
// 0, "?" when even the rank is unknown.
func typeText(v *Value) string {
	if v.Type.Unranked {
		return "?"
	}
	if len(v.Type.Shape) == 0 {
		return "scalar"
	}
	parts := make([]string, len(v.Type.Shape))
	for i, d := range v.Type.Shape {
		parts[i] = d.String()
	}
	return strings.Join(parts, " x ")
}

// shapeText formats a concrete shape as 64x3x7x7 ("scalar" for rank 0).
func shapeText(s tensor.Shape) string {
	if len(s) == 0 {
		return "scalar"
	}
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "x")
}

// shortName keeps the last component of a dotted or slashed initializer name
// ("features.conv0.weight" -> "weight"), which is what tells initializers of one node apart.
func shortName(name string) string {
	if i := strings.LastIndexAny(name, "./:"); i >= 0 && i+1 < len(name) {
		return name[i+1:]
	}
	return name
}

// quote returns s as a DOT double-quoted string; newlines become centred line breaks.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

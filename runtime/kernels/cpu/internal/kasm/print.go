package kasm

import (
	"bytes"
	"strconv"
	"strings"
)

// String returns the instruction as the Go assembler reads it, without indentation.
func (in Inst) String() string {
	if in.Def != "" {
		return string(in.Def) + ":"
	}
	var b strings.Builder
	b.WriteString(string(in.Op))
	if in.Bcst {
		b.WriteString(".BCST")
	}
	if in.Zeroing {
		b.WriteString(".Z")
	}
	for i, a := range in.Args {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		if i == len(in.Args)-1 && in.Mask.Kind == K {
			b.WriteString(in.Mask.String())
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// Print appends f to buf: the doc comment, the TEXT line, then one instruction per line (tab
// indented; labels at the margin).
func (f *Func) Print(buf *bytes.Buffer) {
	if f.Doc != "" {
		buf.WriteString("// " + f.Doc + "\n")
	}
	buf.WriteString("TEXT ·" + f.Name + "(SB), NOSPLIT, $0-")
	buf.WriteString(strconv.Itoa(f.ArgSize()))
	buf.WriteByte('\n')
	for _, in := range f.Body {
		if in.Def == "" {
			buf.WriteByte('\t')
		}
		buf.WriteString(in.String())
		buf.WriteByte('\n')
	}
}

// File is an assembly file: a header (generated-code notice, build constraint, includes) and
// functions separated by blank lines.
type File struct {
	Header string
	Funcs  []*Func
}

// Bytes returns the text of the file.
func (file *File) Bytes() []byte {
	var buf bytes.Buffer
	buf.WriteString(file.Header)
	for i, f := range file.Funcs {
		if i > 0 {
			buf.WriteByte('\n')
		}
		f.Print(&buf)
	}
	return buf.Bytes()
}

// Func returns the function called name, or nil.
func (file *File) Func(name string) *Func {
	for _, f := range file.Funcs {
		if f.Name == name {
			return f
		}
	}
	return nil
}

package labels

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestImageNet(t *testing.T) {
	n := ImageNet()
	if len(n) != 1000 || n[0] != "tench" || n[1] != "goldfish" || n[281] != "tabby" || n[999] != "toilet tissue" {
		t.Fatalf("ImageNet(): %d names, [0]=%q [281]=%q [999]=%q", len(n), n[0], n[281], n[999])
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"cat\ndog\n", []string{"cat", "dog"}, true},
		{"cat\r\n dog \r\n\r\n", []string{"cat", "dog"}, true},
		{`["cat", "hot dog"]`, []string{"cat", "hot dog"}, true},
		{"", nil, false},
		{"cat\n\ndog", nil, false},
		{`["cat", 3]`, nil, false},
		{`["cat", ""]`, nil, false},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if (err == nil) != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("Parse(%q) = %q, %v; want %q ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !errors.Is(err, ErrLabels) {
			t.Errorf("Parse(%q): %v does not wrap ErrLabels", c.in, err)
		}
	}
	if back, err := Parse(Encode([]string{"a\nb", "c"})); err != nil || !slices.Equal(back, []string{"a\nb", "c"}) {
		t.Errorf("Encode round trip: %q, %v", back, err)
	}
}

func TestFor(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "names.txt")
	if err := os.WriteFile(file, []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{MetadataKey: Encode([]string{"x", "y", "z"})}
	cases := []struct {
		name    string
		classes int
		file    string
		meta    map[string]string
		want    Source
		first   string
		ok      bool
	}{
		{"file wins", 3, file, meta, FromFile, "a", true},
		{"metadata", 3, "", meta, FromModel, "x", true},
		{"ImageNet", 1000, "", nil, FromImageNet, "tench", true},
		{"nothing", 10, "", nil, None, "", true},
		{"file of the wrong length", 4, file, nil, None, "", false},
		{"metadata of the wrong length", 1000, "", meta, None, "", false},
		{"missing file", 3, filepath.Join(dir, "none.txt"), nil, None, "", false},
		{"a directory", 3, dir, nil, None, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			names, src, err := For(c.classes, c.file, c.meta)
			if (err == nil) != c.ok || src != c.want || (c.first != "" && (len(names) == 0 || names[0] != c.first)) {
				t.Fatalf("For = %d names from %q, %v; want %q first %q ok=%v", len(names), src, err, c.want, c.first, c.ok)
			}
		})
	}
}

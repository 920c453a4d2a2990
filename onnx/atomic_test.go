package onnx

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileAtomic checks creation, replacement, permissions, and that a failed write leaves
// the old file and no temporary file behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.bin")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFileAtomic(path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Fatalf("file holds %q, want %q", got, content)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 {
			t.Errorf("mode %v, want 0640", st.Mode().Perm())
		}
	}

	// A rename over a non-empty directory fails after the temporary file is written.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(blocked, []byte("x"), 0o644); err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(blocked, "child")); err != nil {
		t.Errorf("existing directory was disturbed: %v", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f.bin"), []byte("x"), 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	if err := WriteFileAtomic(dir+string(filepath.Separator), []byte("x"), 0o644); err == nil {
		t.Error("writing to a path without a file name succeeded")
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "f.bin" && e.Name() != "blocked" {
			t.Errorf("leftover file %s", e.Name())
		}
	}
	if got, _ := os.ReadFile(path); string(got) != "second, longer" {
		t.Errorf("existing file changed to %q", got)
	}
}

// TestWriteFileAtomicRelative writes to a bare file name, relative to the working directory.
func TestWriteFileAtomicRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFileAtomic("rel.bin", []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile("rel.bin"); err != nil || string(got) != "ok" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

package device

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSeamImports keeps the seam a seam: the planner, the executor and the trainer reach kernels
// only through Device (a second device plugs in without touching them), so none of their
// non-test files may import a device's kernels or implementation.
func TestSeamImports(t *testing.T) {
	forbidden := []string{
		"github.com/dnx-ml/dnx/runtime/kernels/cpu",
		"github.com/dnx-ml/dnx/runtime/device/cpudev",
	}
	for _, dir := range []string{"../plan", "../exec", "../train"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbidden {
					if path == bad || strings.HasPrefix(path, bad+"/") {
						t.Errorf("%s imports %s: go through device.Device instead", f, path)
					}
				}
			}
		}
	}
}

package cpu

import (
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
)

// plantAt returns the index in f's body of the nth (0-based) instruction that match accepts:
// where a planted-bug test edits a kernel description. It fails t when there is none, so a
// description that changed shape cannot make a planted bug silently plant nothing.
func plantAt(t testing.TB, f *kasm.Func, nth int, match func(kasm.Inst) bool) int {
	t.Helper()
	for i, in := range f.Body {
		if in.Def == "" && match(in) {
			if nth == 0 {
				return i
			}
			nth--
		}
	}
	t.Fatalf("%s: planted bug: no such instruction", f.Name)
	return -1
}

// isOp matches the instructions of op o.
func isOp(o kasm.Op) func(kasm.Inst) bool { return func(in kasm.Inst) bool { return in.Op == o } }

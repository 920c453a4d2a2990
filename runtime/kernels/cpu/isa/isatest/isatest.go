// Package isatest holds what the kernel tests of every package share about instruction-set
// levels.
package isatest

import (
	"os"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// Levels returns the instruction-set levels this machine runs (isa.Levels: generic always, avx2
// and avx512 where the CPU has them), logging them so that the test output says which kernels
// were checked.
func Levels(t testing.TB) []isa.Level {
	t.Helper()
	// isa read DNX_CPU at init, before go test logs the variables a test reads: reading it
	// again here keys the test cache on it.
	_ = os.Getenv(isa.EnvVar)
	ls := isa.Levels()
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Describe()
	}
	t.Logf("levels: %s; this process runs %s", strings.Join(names, ", "), isa.Selected())
	return ls
}

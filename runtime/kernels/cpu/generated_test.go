package cpu

import (
	"os"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/dwasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/ewasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/sigasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/winoasm"
)

// TestGeneratedFilesMatchIR: every generated assembly and declaration file of this package is
// what its kernel description prints (a stale file fails here, with `go generate` as the fix).
func TestGeneratedFilesMatchIR(t *testing.T) {
	for _, c := range []struct {
		path string
		want []byte
	}{
		{"conv_winograd_avx512_amd64.s", winoasm.AVX512File().Bytes()},
		{"conv_winograd_avx512_decl_amd64.go", winoasm.AVX512Decl()},
		{"elementwise_sigmoid_amd64.s", sigasm.AsmFile().Bytes()},
		{"elementwise_sigmoid_decl_amd64.go", sigasm.Decl()},
		{"elementwise_ew_amd64.s", ewasm.AsmFile().Bytes()},
		{"elementwise_ew_decl_amd64.go", ewasm.Decl()},
		{"conv_depthwise_amd64.s", dwasm.AsmFile().Bytes()},
		{"conv_depthwise_decl_amd64.go", dwasm.Decl()},
	} {
		got, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(c.want) {
			t.Errorf("%s differs from what the IR prints: run go generate", c.path)
		}
	}
}

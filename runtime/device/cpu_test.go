package device

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// TestCPUKernelLevel checks how the CPU entry and Check report the kernel level: the level and
// its reason in the details, and a DNX_CPU that cannot be obeyed as an unavailable CPU whose
// reason, like Check's error, names the variable and the levels that would work.
func TestCPUKernelLevel(t *testing.T) {
	bad := fmt.Errorf("%s=avx512: %w avx512: this CPU supports at most avx2", isa.EnvVar, isa.ErrLevel)
	for _, tc := range []struct {
		name    string
		sel     isa.Selection
		kernels string // prefix of Details["kernels"]
		err     string // substring of Check's error and the Reason; "" when available
	}{
		{"detected", isa.Selection{Level: isa.AVX2, Max: isa.AVX2, CPU: isa.AVX2}, "avx2 (detected)", ""},
		{"avx512 says which kernels are AVX-512", isa.Selection{Level: isa.AVX512, Max: isa.AVX512, CPU: isa.AVX512}, "avx512 (detected; AVX-512 GEMM and matrix-vector kernels, Winograd F(4x4) input and output transforms, element-wise kernels, depthwise convolutions, max pooling and the 2x2 average pool; the other kernels", ""},
		{"forced", isa.Selection{Level: isa.Generic, Max: isa.AVX512, CPU: isa.AVX512, Source: isa.Forced, Env: "generic"},
			"generic (forced by DNX_CPU=generic; the CPU supports avx512)", ""},
		{"purego", isa.Selection{Level: isa.Generic, CPU: isa.AVX2, Source: isa.PureGo}, "generic (purego build)", ""},
		{"refused", isa.Selection{Level: isa.AVX2, Max: isa.AVX2, CPU: isa.AVX2, Env: "avx512", Err: bad},
			"avx2 (detected; DNX_CPU=avx512", "DNX_CPU=avx512: unsupported CPU kernel level avx512: this CPU supports at most avx2 (unset DNX_CPU, or set it to generic up to avx2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := cpuInfoFor(tc.sel)
			if got := in.Details["kernels"]; !strings.HasPrefix(got, tc.kernels) {
				t.Errorf("kernels %q, want %q...", got, tc.kernels)
			}
			err := checkCPU(tc.sel)
			if tc.err == "" {
				if err != nil || !in.Available || in.Reason != "" {
					t.Errorf("Check = %v, available %v (%q), want nil and available", err, in.Available, in.Reason)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, isa.ErrLevel) {
				t.Errorf("Check = %v, want an isa.ErrLevel containing %q", err, tc.err)
			}
			if in.Available || !strings.Contains(in.Reason, tc.err) {
				t.Errorf("available %v, reason %q, want unavailable with %q", in.Available, in.Reason, tc.err)
			}
		})
	}
}

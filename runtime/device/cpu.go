package device

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// cpuInfo describes the CPU, with the kernel level of this process (isa.Selected).
func cpuInfo() Info { return cpuInfoFor(isa.Selected()) }

// cpuInfoFor describes the CPU running the kernels of sel. It is available unless DNX_CPU
// cannot be obeyed (sel.Err), which Check reports as well: dnx then refuses to run rather than
// run at a level the user did not ask for.
func cpuInfoFor(sel isa.Selection) Info {
	in := Info{
		Name:      string(CPU),
		Kind:      CPU,
		Available: sel.Err == nil,
		Details: map[string]string{
			"model":      cpuModel(),
			"cores":      strconv.Itoa(runtime.NumCPU()),
			"gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
			"simd":       strings.Join(SIMD(), " "),
			"arch":       runtime.GOOS + "/" + runtime.GOARCH,
			"kernels":    sel.String(),
		},
	}
	if sel.Err != nil {
		in.Reason = checkCPU(sel).Error()
	}
	return in
}

// checkCPU returns nil, or the error of a DNX_CPU that cannot be obeyed, with what to do.
func checkCPU(sel isa.Selection) error {
	if sel.Err == nil {
		return nil
	}
	return fmt.Errorf("%w (unset %s, or set it to generic up to %s)", sel.Err, isa.EnvVar, sel.Max)
}

// SIMD returns the vector instruction sets of this CPU that matter to dnx's kernels, as
// golang.org/x/sys/cpu detects them (for x86 it also checks that the OS saves the registers),
// in lower case: "sse4.2 avx avx2 fma f16c avx512f ..." on amd64, "asimd asimdhp sve ..." on arm64.
// It returns ["none"] when there are none.
func SIMD() []string {
	feats := []struct {
		name string
		has  bool
	}{
		{"sse4.1", cpu.X86.HasSSE41},
		{"sse4.2", cpu.X86.HasSSE42},
		{"avx", cpu.X86.HasAVX},
		{"avx2", cpu.X86.HasAVX2},
		{"fma", cpu.X86.HasFMA},
		{"f16c", cpu.X86.HasF16C},
		{"avx512f", cpu.X86.HasAVX512F},
		{"avx512bw", cpu.X86.HasAVX512BW},
		{"avx512vl", cpu.X86.HasAVX512VL},
		{"avx512dq", cpu.X86.HasAVX512DQ},
		{"avx512vnni", cpu.X86.HasAVX512VNNI},
		{"avx512bf16", cpu.X86.HasAVX512BF16},
		{"avxvnni", cpu.X86.HasAVXVNNI},
		{"amxbf16", cpu.X86.HasAMXBF16},
		{"asimd", cpu.ARM64.HasASIMD},
		{"asimdhp", cpu.ARM64.HasASIMDHP},
		{"asimddp", cpu.ARM64.HasASIMDDP},
		{"i8mm", cpu.ARM64.HasI8MM},
		{"sve", cpu.ARM64.HasSVE},
		{"sve2", cpu.ARM64.HasSVE2},
	}
	var out []string
	for _, f := range feats {
		if f.has {
			out = append(out, f.name)
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or "unknown" where there is none
// (other systems, or arm64 kernels that do not report one).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model name", "Model", "Hardware", "cpu model":
			if v := strings.TrimSpace(val); v != "" {
				return v
			}
		}
	}
	return "unknown"
}

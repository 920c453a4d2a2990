//go:build amd64 && !purego

package cpu

import "github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"

// ewHW returns the assembly kernel called name (an ewasm or sigasm kernel) as the tests call it:
// args are the operands' first elements (x, y or a, b, y) then n and the block, when this CPU
// runs its level (nil otherwise).
func ewHW(name string) func(ptrs []*float32, n int, c *float32) {
	unary := map[string]ewUnary{
		"clipAVX2": clipAVX2, "clipAVX512": clipAVX512,
		"hardSigmoidAVX2": hardSigmoidAVX2, "hardSigmoidAVX512": hardSigmoidAVX512,
		"hardSwishAVX2": hardSwishAVX2, "hardSwishAVX512": hardSwishAVX512,
		"siluAVX2": siluAVX2, "siluAVX512": siluAVX512,
	}
	binary := map[string]ewBinary{}
	for lv, suf := range []string{"AVX2", "AVX512"} {
		for op, name := range []string{"add", "sub", "rsub", "mul", "div", "rdiv"} {
			binary[name+"VV"+suf] = binaryKernels[lv][op][0]
			binary[name+"VS"+suf] = binaryKernels[lv][op][1]
		}
	}
	l := isa.AVX2
	if len(name) > 6 && name[len(name)-6:] == "AVX512" {
		l = isa.AVX512
	}
	if isa.Selected().Max < l {
		return nil
	}
	if k, ok := unary[name]; ok {
		return func(p []*float32, n int, c *float32) { k(p[0], p[1], n, c) }
	}
	if k, ok := binary[name]; ok {
		return func(p []*float32, n int, c *float32) { k(p[0], p[1], p[2], n, c) }
	}
	panic("ewHW: no kernel " + name)
}

//go:build amd64 && !purego

package cpu

//go:generate go run ewgen.go -o elementwise_ew_amd64.s -decl elementwise_ew_decl_amd64.go

// The wrappers of the kernels of package internal/ewasm: the same results as clipRow,
// hardSigmoidRow, hardSwishRow and binaryRun (bit for bit but for the sign of a zero where a
// bound is 0 and NaN payloads: MAXPS returns its second operand when both are zeros).

type ewUnary func(x, y *float32, n int, c *float32)

func ewRun(k ewUnary, in, out, c []float32) {
	if len(in) == 0 {
		return
	}
	out = out[:len(in)]
	k(&in[0], &out[0], len(in), &c[0])
}

func clipAsm2(in, out, c []float32)          { ewRun(clipAVX2, in, out, c) }
func clipAsm512(in, out, c []float32)        { ewRun(clipAVX512, in, out, c) }
func hardSigmoidAsm2(in, out, c []float32)   { ewRun(hardSigmoidAVX2, in, out, c) }
func hardSigmoidAsm512(in, out, c []float32) { ewRun(hardSigmoidAVX512, in, out, c) }
func hardSwishAsm2(in, out, c []float32)     { ewRun(hardSwishAVX2, in, out, c) }
func hardSwishAsm512(in, out, c []float32)   { ewRun(hardSwishAVX512, in, out, c) }

type ewBinary func(a, b, y *float32, n int, c *float32)

// binaryKernels[level][op][vs]: op 0..5 = add, sub, rsub, mul, div, rdiv (ewasm.BinaryOps).
var binaryKernels = [2][6][2]ewBinary{
	{{addVVAVX2, addVSAVX2}, {subVVAVX2, subVSAVX2}, {rsubVVAVX2, rsubVSAVX2}, {mulVVAVX2, mulVSAVX2}, {divVVAVX2, divVSAVX2}, {rdivVVAVX2, rdivVSAVX2}},
	{{addVVAVX512, addVSAVX512}, {subVVAVX512, subVSAVX512}, {rsubVVAVX512, rsubVSAVX512}, {mulVVAVX512, mulVSAVX512}, {divVVAVX512, divVSAVX512}, {rdivVVAVX512, rdivVSAVX512}},
}

// binaryOp returns the index of f (with bFirst) in binaryKernels' ops.
func binaryOp(f BinaryFunc, bFirst bool) int {
	switch f {
	case FuncAdd:
		return 0
	case FuncSub:
		if bFirst {
			return 2
		}
		return 1
	case FuncMul:
		return 3
	default:
		if bFirst {
			return 5
		}
		return 4
	}
}

// binaryAsm runs the kernel of f: b has len(a) elements, or one (broadcast).
func binaryAsm(level int, f BinaryFunc, bFirst bool, a, b, out []float32) {
	n := len(a)
	if n == 0 {
		return
	}
	out = out[:n]
	ks := &binaryKernels[level][binaryOp(f, bFirst)]
	if len(b) != n {
		ks[1](&a[0], &b[0], &out[0], n, &ewMasks[0])
		return
	}
	ks[0](&a[0], &b[0], &out[0], n, &ewMasks[0])
}

func binaryAsm2(f BinaryFunc, bFirst bool, a, b, out []float32) { binaryAsm(0, f, bFirst, a, b, out) }

func binaryAsm512(f BinaryFunc, bFirst bool, a, b, out []float32) {
	binaryAsm(1, f, bFirst, a, b, out)
}

//go:build amd64 && !purego

package cpu

//go:generate go run siggen.go -o elementwise_sigmoid_amd64.s -decl elementwise_sigmoid_decl_amd64.go

// sigmoidAsm2 is sigmoidRow with the AVX2+FMA kernel (sigmoidAVX2): the same arithmetic with
// fused multiply-adds, within 2e-7 of the float64 sigmoid like sigmoidRow.
func sigmoidAsm2(in, out []float32) {
	if len(in) == 0 {
		return
	}
	out = out[:len(in)]
	sigmoidAVX2(&in[0], &out[0], len(in), &sigmoidConsts[0])
}

// sigmoidAsm512 is sigmoidAsm2 with the AVX-512 kernel (sigmoidAVX512), which gives the same
// bits.
func sigmoidAsm512(in, out []float32) {
	if len(in) == 0 {
		return
	}
	out = out[:len(in)]
	sigmoidAVX512(&in[0], &out[0], len(in), &sigmoidConsts[0])
}

// siluAsm2 is siluRow with the AVX2+FMA kernel (siluAVX2): sigmoidAsm2's sigmoid times x.
func siluAsm2(in, out []float32) {
	if len(in) == 0 {
		return
	}
	out = out[:len(in)]
	siluAVX2(&in[0], &out[0], len(in), &sigmoidConsts[0])
}

// siluAsm512 is siluAsm2 with the AVX-512 kernel (siluAVX512), which gives the same bits.
func siluAsm512(in, out []float32) {
	if len(in) == 0 {
		return
	}
	out = out[:len(in)]
	siluAVX512(&in[0], &out[0], len(in), &sigmoidConsts[0])
}

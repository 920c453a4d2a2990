//go:build !amd64 || purego

package cpu

// Without assembly the Winograd transforms are the plain Go ones.

// winoInputAsm reports that there is no assembly input transform.
func winoInputAsm(_ *winoForm, _ []float32, _ int, _ *[6]int, _ []float32, _, _, _ int, _ []float32, _, _ int, _ []float32, _, _, _ int) bool {
	return false
}

func winoOut(m int, mm []float32, ps, n int, y []float32, ldy int, bias float32, relu bool, _ []float32) {
	winoOutGo(m, mm, ps, n, y, ldy, bias, relu)
}

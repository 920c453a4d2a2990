//go:build !amd64 || purego

package cpu

// maxTapsHW: the assembly does not exist in this build; the interpreter runs alone.
func maxTapsHW(name string) func(dst []float32, dp int, src []float32, sadv, step, taps, rows, n int) {
	return nil
}

// poolTabHW: no assembly table in this build.
var poolTabHW []uint32

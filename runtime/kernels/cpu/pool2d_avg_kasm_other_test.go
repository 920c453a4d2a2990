//go:build !amd64 || purego

package cpu

// avg2x2HW: no assembly in this build; the interpreter runs alone.
func avg2x2HW() (avx512, avx2 func(dst []float32, dp int, src []float32, wd, rows, n int, scale, shift, floor float32)) {
	return nil, nil
}

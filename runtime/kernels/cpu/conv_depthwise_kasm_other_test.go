//go:build !amd64 || purego

package cpu

// dw3x3HW: the assembly does not exist in this build; the interpreter runs alone.
func dw3x3HW(name string) func(dst, src, w []float32, b float32, relu bool, g dwGeom) { return nil }

//go:build !amd64 || purego

package cpu

// sigmoidHW: the assembly does not exist in this build; the interpreter runs alone.
func sigmoidHW(name string) func(x, y []float32, n int, c []float32) { return nil }

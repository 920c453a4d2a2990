//go:build !amd64 || purego

package cpu

// winoOut4HW: the assembly does not exist in this build; the interpreter runs alone.
func winoOut4HW() func(c out4Case, mm, y []float32) { return nil }

// winoInHW: the assembly does not exist in this build; the interpreter runs alone.
func winoInHW() func(c inCase, d inData) { return nil }

//go:build purego

package isa

// purego reports the purego build, whose kernels are all plain Go.
const purego = true

//go:build !amd64 || purego

package isa

// asmBuild reports whether this build has assembly kernels (not with the purego tag, nor on
// architectures other than amd64).
const asmBuild = false

//go:build amd64 && !purego

package isa

// asmBuild reports whether this build has assembly kernels: the build constraint is the one of
// every *_amd64.s file of the kernel packages.
const asmBuild = true

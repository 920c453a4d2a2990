//go:build !amd64 || purego

package cpu

// avx2Table is nil: this build has no assembly, every level runs goTable.
var avx2Table *kernels

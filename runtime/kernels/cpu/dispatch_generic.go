//go:build !amd64 || purego

package cpu

// avx2Table and avx512Table are nil: this build has no assembly, every level runs goTable.
var avx2Table, avx512Table *kernels

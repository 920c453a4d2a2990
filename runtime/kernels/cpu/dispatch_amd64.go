//go:build amd64 && !purego

package cpu

import (
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/gemm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/isa"
)

// avx2Table is the AVX2+FMA assembly (*_amd64.s) with its Go wrappers, which handle the tails
// shorter than a vector and the shapes the assembly does not take; nil on a CPU without AVX2 and
// FMA, where it must not run.
var avx2Table = avx2Kernels()

// avx512Table is the AVX2 table with the AVX-512 GEMM kernels (gemm.KernelsFor(isa.AVX512)),
// the AVX-512 Winograd F(4x4) input and output transforms (winoInputAsm512, winoOutAsm512: each
// runs its AVX-512 kernel only on the shapes where it measured faster, winoIn512Use and
// winoOut4Max2, and the AVX2 one on the others, F(2x2) included), the AVX-512 element-wise
// kernels (sigmoid, SiLU, Clip, HardSigmoid, HardSwish, binary arithmetic: packages
// internal/sigasm and internal/ewasm), the AVX-512 depthwise rows, stride-2 column split and
// channel kernels (dwRowsAsm512, dwSplitAsm512, dwChansAsm512, internal/dwasm) and the AVX-512
// pooling plane kernels (max pooling's two passes and the 2x2 average pool with its prologue:
// maxTapsAsm512, maxTaps2Asm512, avg2x2PlaneAsm512, internal/poolasm; 1.2x to 4x the AVX2 row
// loops on one Zen 5 core at GoogLeNet's, ResNet's, SqueezeNet's and DenseNet's shapes,
// BenchmarkMaxPool and BenchmarkAvgPool2x2Levels); this package's other kernels (the Winograd
// F(2x2) transforms, the global pooling sums, BatchNormalization, staging) have no AVX-512
// versions, and isa.AVX512.Describe says so. The global pool's sums were left at AVX2:
// GoogLeNet's 1024x7x7 global pool is 0.013 ms of a 17.7 ms run (0.07%). nil below AVX-512.
var avx512Table = avx512Kernels()

func avx512Kernels() *kernels {
	if isa.Selected().Max < isa.AVX512 {
		return nil
	}
	k := *avx2Table
	k.level = isa.AVX512
	k.gemm = gemm.KernelsFor(isa.AVX512)
	k.winoInput = winoInputAsm512
	k.winoOut = winoOutAsm512
	k.sigmoid = sigmoidAsm512
	k.silu = siluAsm512
	k.clip, k.hardSigmoid, k.hardSwish = clipAsm512, hardSigmoidAsm512, hardSwishAsm512
	k.binary = binaryAsm512
	k.dwRows = dwRowsAsm512
	k.dwSplit = dwSplitAsm512
	k.dwChans, k.dwChanPlanes = dwChansAsm512, true
	k.maxTaps, k.maxTaps2 = maxTapsAsm512, maxTaps2Asm512
	k.avg2x2Plane = avg2x2PlaneAsm512
	return &k
}

func avx2Kernels() *kernels {
	if isa.Selected().Max < isa.AVX2 {
		return nil
	}
	return &kernels{
		level:     isa.AVX2,
		gemm:      gemm.KernelsFor(isa.AVX2),
		winoInput: winoInputAsm,
		winoOut:   winoOutAsm,
		maxRows:   maxRowsAsm,
		maxCols:   maxColsAsm,
		avg2x2Row: avg2x2RowAsm,
		rowStats:  rowStatsAsm,
		rowSum:    rowSumAsm,
		affineRow: affineRowAsm,
		stage:     stageAsm,
		bnSums:    bnSumsAsm,
		bnDX:      bnDXAsm,
		sigmoid:   sigmoidAsm2,

		silu:        siluAsm2,
		clip:        clipAsm2,
		hardSigmoid: hardSigmoidAsm2,
		hardSwish:   hardSwishAsm2,
		binary:      binaryAsm2,
		dwRows:      dwRowsAsm2,
		dwSplit:     dwSplitGo,
		// No AVX2 channel kernel: the row kernel runs small planes (dwChansGo would be
		// slower than it).
		dwChans:      dwChansGo,
		dwChanPlanes: false,

		maxTaps:     maxTapsAsm2,
		maxTaps2:    maxTaps2Asm2,
		avg2x2Plane: avg2x2PlaneAsm2,
	}
}

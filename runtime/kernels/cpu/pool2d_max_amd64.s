//go:build amd64 && !purego

#include "textflag.h"

// Max-pool row kernels (see pool2d_max_amd64.go). They are plain loops over 8-float vectors;
// the only subtlety is NaN, which must win every max as in the reference kernel.
//
// NANMAX sets acc = max(acc, x) in 8 lanes, NaN where either is NaN. VMAXPS returns its second
// source (x, the first Go operand) when either is NaN, which already covers a NaN x; the
// unordered compare and blend put back a NaN acc. x may be a memory operand; t and m are
// scratch registers.
#define NANMAX(x, acc, t, m) \
	VMAXPS    x, acc, t;       \
	VCMPPS    $3, acc, acc, m; \
	VBLENDVPS m, acc, t, acc

// func maxRowsAVX2(dst, src *float32, n, rows, step int)
//
// dst[x] = max over r < rows of src[r*step + x], for x < n (a multiple of 8). Columns go 32 at
// a time (8 at a time at the end); for each block the rows are folded into 4 accumulators.
TEXT ·maxRowsAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), BX
	MOVQ rows+24(FP), CX
	MOVQ step+32(FP), DX
	SHLQ $2, DX          // row step in bytes
	DECQ CX              // rows after the first
	SHRQ $3, BX          // vectors of 8 columns left

rows32:
	CMPQ BX, $4
	JB   rows8
	VMOVUPS (SI), Y0     // the first row
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	MOVQ    SI, R8       // R8: the row being folded in
	MOVQ    CX, R9       // R9: rows left to fold

fold32:
	TESTQ R9, R9
	JZ    store32
	ADDQ  DX, R8
	NANMAX(0(R8), Y0, Y4, Y8)
	NANMAX(32(R8), Y1, Y5, Y9)
	NANMAX(64(R8), Y2, Y6, Y10)
	NANMAX(96(R8), Y3, Y7, Y11)
	DECQ  R9
	JMP   fold32

store32:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $4, BX
	JMP     rows32

rows8:
	TESTQ BX, BX
	JZ    rowsDone
	VMOVUPS (SI), Y0
	MOVQ    SI, R8
	MOVQ    CX, R9

fold8:
	TESTQ R9, R9
	JZ    store8
	ADDQ  DX, R8
	NANMAX(0(R8), Y0, Y4, Y8)
	DECQ  R9
	JMP   fold8

store8:
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    BX
	JMP     rows8

rowsDone:
	VZEROUPPER
	RET

// func maxCols1AVX2(dst, src *float32, n, taps, d int)
//
// dst[k] = max over j < taps of src[k + j*d], for k < n (a multiple of 8): stride 1, so tap j of
// 8 consecutive outputs is one unaligned load.
TEXT ·maxCols1AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), BX
	MOVQ taps+24(FP), CX
	MOVQ d+32(FP), DX
	SHLQ $2, DX          // tap step in bytes
	DECQ CX              // taps after the first
	SHRQ $3, BX          // vectors of 8 outputs

cols1:
	VMOVUPS (SI), Y0     // tap 0
	MOVQ    SI, R8
	MOVQ    CX, R9

taps1:
	TESTQ R9, R9
	JZ    store1
	ADDQ  DX, R8
	NANMAX(0(R8), Y0, Y4, Y8)
	DECQ  R9
	JMP   taps1

store1:
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    BX
	JNZ     cols1
	VZEROUPPER
	RET

// func maxCols2AVX2(dst, src *float32, n, taps, d int)
//
// dst[k] = max over j < taps of src[2k + j*d], for k < n (a multiple of 8): stride 2. Tap j of
// 8 outputs is the even lanes of the 16 floats from src[2k + j*d]. VSHUFPS $0x88 picks them
// within 128-bit halves, in the order 0 2 8 10 | 4 6 12 14; the maxes are lane-wise, so one
// VPERMPD $0xD8 (64-bit pieces 0 2 1 3) at the end restores 0 2 4 ... 14.
TEXT ·maxCols2AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), BX
	MOVQ taps+24(FP), CX
	MOVQ d+32(FP), DX
	SHLQ $2, DX          // tap step in bytes
	DECQ CX              // taps after the first
	SHRQ $3, BX          // vectors of 8 outputs

cols2:
	VMOVUPS (SI), Y1
	VSHUFPS $0x88, 32(SI), Y1, Y0 // tap 0, even lanes
	MOVQ    SI, R8
	MOVQ    CX, R9

taps2:
	TESTQ   R9, R9
	JZ      store2
	ADDQ    DX, R8
	VMOVUPS (R8), Y1
	VSHUFPS $0x88, 32(R8), Y1, Y2
	NANMAX(Y2, Y0, Y4, Y8)
	DECQ    R9
	JMP     taps2

store2:
	VPERMPD $0xD8, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $64, SI
	ADDQ    $32, DI
	DECQ    BX
	JNZ     cols2
	VZEROUPPER
	RET

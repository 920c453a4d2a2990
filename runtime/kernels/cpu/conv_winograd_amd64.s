//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA versions of the Winograd transforms of conv_winograd_xform.go; see the Go functions
// for what they compute. The column passes run over 8 columns at a time; the row passes and the
// output transforms over 8 tiles at a time, transposing 4x4 blocks within 128-bit lanes to get
// from "tile-major" rows (m floats per tile side by side) to one vector per tile column and back.
// Go operand order: OP src2, src1, dst computes dst = src1 OP src2.

// BCAST32(bits, R, Y, X) sets every lane of Y to the float32 with the given bit pattern, through
// the general register R and X, the low half of Y. (A VEX move: a legacy-SSE MOVQ into X with the
// upper halves of the Y registers dirty cost ~10x the whole transform on Zen 3.)
#define BCAST32(bits, R, Y, X) MOVL bits, R; VMOVQ R, X; VBROADCASTSS X, Y

// The input transforms take a *winoIn (conv_winograd_amd64.go; field offsets checked by
// TestWinoInLayout): t 0, ldt 8, x 16, xstep 64, keep 112, ulo 136, n 144, cin 152, scale 160,
// shift 168, relu 176, tiles 184, v 192, ps 200, ldv 208, mask 216, prefetch 248. Their frame (hardware SP)
// holds the rows' keep masks as vectors (0..191), the current input row pointers (192..239), the
// channel (240) and the *winoIn (248). Registers through the column pass: Y12 = the channel's
// scale, Y13 its shift, Y14 = 4, Y15 = the ReLU floor (0, or -Inf without ReLU: max(x, -Inf) = x,
// NaN included), Y11 = the lane mask of a group of fewer than 8 columns.

// PRE(ptr, koff, Y) loads 8 floats of an input row at ptr and applies the channel's prologue, 0
// for a row of padding: Y = max(Y*scale + shift, floor) & keep, keep at koff(SP).
#define PRE(ptr, koff, Y) \
	VMOVUPS (ptr), Y; \
	VFMADD213PS Y13, Y12, Y; \
	VMAXPS Y, Y15, Y; \
	VANDPS koff(SP), Y, Y

// PREM is PRE for the lanes of the mask Y11 only: the others load as 0 (touching no memory) and
// come out 0.
#define PREM(ptr, koff, Y) \
	VMASKMOVPS (ptr), Y11, Y; \
	VFMADD213PS Y13, Y12, Y; \
	VMAXPS Y, Y15, Y; \
	VANDPS koff(SP), Y, Y; \
	VANDPS Y11, Y, Y

// BODY4 is the F(4x4) column pass of 8 columns: rows d0..d5 in Y0..Y5, T rows t0..t5 stored at
// DI + {0, 1, 2, 3, 4, 5} * ldt (R8 = ldt, BX = 3 ldt, AX = 5 ldt, in bytes):
//
//	t0 = 4 (d0 - d2) + (d4 - d2)    (= 4 d0 - 5 d2 + d4)
//	t1, t2 = (d4 - 4 d2) -/+ (4 d1 - d3)
//	t3, t4 = (d4 - d2) -/+ 2 (d1 - d3)
//	t5 = 4 (d1 - d3) + (d5 - d3)    (= 4 d1 - 5 d3 + d5)
#define BODY4 \
	VSUBPS       Y2, Y4, Y6; \
	VSUBPS       Y3, Y1, Y7; \
	VSUBPS       Y2, Y0, Y8; \
	VFMADD213PS  Y6, Y14, Y8; \
	VMOVUPS      Y8, (DI); \
	VSUBPS       Y3, Y5, Y9; \
	VFMADD231PS  Y14, Y7, Y9; \
	VMOVUPS      Y9, (DI)(AX*1); \
	VADDPS       Y7, Y7, Y7; \
	VSUBPS       Y7, Y6, Y8; \
	VADDPS       Y7, Y6, Y9; \
	VMOVUPS      Y8, (DI)(BX*1); \
	VMOVUPS      Y9, (DI)(R8*4); \
	VMOVAPS      Y4, Y6; \
	VFNMADD231PS Y14, Y2, Y6; \
	VMULPS       Y14, Y1, Y7; \
	VSUBPS       Y3, Y7, Y7; \
	VSUBPS       Y7, Y6, Y8; \
	VADDPS       Y7, Y6, Y9; \
	VMOVUPS      Y8, (DI)(R8*1); \
	VMOVUPS      Y9, (DI)(R8*2)

// COLS4 is the column pass of 8 columns: input rows at R9..R14.
#define COLS4 \
	PRE(R9, 0, Y0); \
	PRE(R10, 32, Y1); \
	PRE(R11, 64, Y2); \
	PRE(R12, 96, Y3); \
	PRE(R13, 128, Y4); \
	PRE(R14, 160, Y5); \
	BODY4

// COLS4M is COLS4 for the columns of the mask Y11 (fewer than 8); the others come out 0.
#define COLS4M \
	PREM(R9, 0, Y0); \
	PREM(R10, 32, Y1); \
	PREM(R11, 64, Y2); \
	PREM(R12, 96, Y3); \
	PREM(R13, 128, Y4); \
	PREM(R14, 160, Y5); \
	BODY4

// BODY2 is the F(2x2) column pass of 8 columns: rows d0..d3 in Y0..Y3, T rows at DI + {0, 1, 2,
// 3} * ldt: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3.
#define BODY2 \
	VSUBPS  Y2, Y0, Y4; \
	VADDPS  Y2, Y1, Y5; \
	VSUBPS  Y1, Y2, Y8; \
	VSUBPS  Y3, Y1, Y9; \
	VMOVUPS Y4, (DI); \
	VMOVUPS Y5, (DI)(R8*1); \
	VMOVUPS Y8, (DI)(R8*2); \
	VMOVUPS Y9, (DI)(BX*1)

#define COLS2 \
	PRE(R9, 0, Y0); \
	PRE(R10, 32, Y1); \
	PRE(R11, 64, Y2); \
	PRE(R12, 96, Y3); \
	BODY2

#define COLS2M \
	PREM(R9, 0, Y0); \
	PREM(R10, 32, Y1); \
	PREM(R11, 64, Y2); \
	PREM(R12, 96, Y3); \
	BODY2

// ROWS4 computes one group of 8 tiles of the F(4x4) row pass for one T row: T at AX (32 floats
// + 2), V rows at BX + {0, 1, 2, 3, 4, 5} * ps (R9 = ps, R10 = 3 ps, R11 = 5 ps, in bytes).
// Y14 = 4. L0..L4 (Y0..Y4) hold the 4-float chunks of tiles (0|4), (1|5), (2|6), (3|7), (4|8)
// in their two lanes; an in-lane 4x4 transpose of L0..L3 gives P0..P3 (column s of tiles 0..7),
// and of L1..L4 columns 0, 1 of tiles 1..8, which are P4, P5 (Y11, Y12). Then, as in BODY4,
//
//	V0 = 4 (P0 - P2) + (P4 - P2),  V1, V2 = (P4 - 4 P2) -/+ (4 P1 - P3),
//	V3, V4 = (P4 - P2) -/+ 2 (P1 - P3),  V5 = 4 (P1 - P3) + (P5 - P3).
#define ROWS4 \
	VMOVUPS      0(AX), X0; \
	VINSERTF128  $1, 64(AX), Y0, Y0; \
	VMOVUPS      16(AX), X1; \
	VINSERTF128  $1, 80(AX), Y1, Y1; \
	VMOVUPS      32(AX), X2; \
	VINSERTF128  $1, 96(AX), Y2, Y2; \
	VMOVUPS      48(AX), X3; \
	VINSERTF128  $1, 112(AX), Y3, Y3; \
	VMOVUPS      64(AX), X4; \
	VINSERTF128  $1, 128(AX), Y4, Y4; \
	VUNPCKLPS    Y2, Y1, Y5; \
	VUNPCKLPS    Y4, Y3, Y6; \
	VSHUFPS      $0x44, Y6, Y5, Y11; \
	VSHUFPS      $0xee, Y6, Y5, Y12; \
	VUNPCKLPS    Y1, Y0, Y5; \
	VUNPCKHPS    Y1, Y0, Y6; \
	VUNPCKLPS    Y3, Y2, Y7; \
	VUNPCKHPS    Y3, Y2, Y8; \
	VSHUFPS      $0x44, Y7, Y5, Y0; \
	VSHUFPS      $0xee, Y7, Y5, Y1; \
	VSHUFPS      $0x44, Y8, Y6, Y2; \
	VSHUFPS      $0xee, Y8, Y6, Y3; \
	VSUBPS       Y2, Y11, Y4; \
	VSUBPS       Y3, Y1, Y5; \
	VSUBPS       Y2, Y0, Y6; \
	VFMADD213PS  Y4, Y14, Y6; \
	VSUBPS       Y3, Y12, Y7; \
	VFMADD231PS  Y14, Y5, Y7; \
	VADDPS       Y5, Y5, Y5; \
	VSUBPS       Y5, Y4, Y8; \
	VADDPS       Y5, Y4, Y9; \
	VMOVAPS      Y11, Y4; \
	VFNMADD231PS Y14, Y2, Y4; \
	VMULPS       Y14, Y1, Y5; \
	VSUBPS       Y3, Y5, Y5; \
	VSUBPS       Y5, Y4, Y10; \
	VADDPS       Y5, Y4, Y4; \
	VMOVUPS      Y6, (BX); \
	VMOVUPS      Y10, (BX)(R9*1); \
	VMOVUPS      Y4, (BX)(R9*2); \
	VMOVUPS      Y8, (BX)(R10*1); \
	VMOVUPS      Y9, (BX)(R9*4); \
	VMOVUPS      Y7, (BX)(R11*1)

// ROWS2 is ROWS4 for F(2x2): T at AX (16 floats + 2), V rows at BX + {0, 1, 2, 3} * ps (R9 = ps,
// R10 = 3 ps). A, B hold floats (0..3 | 8..11), (4..7 | 12..15) of the group, so that their even
// and odd elements are columns 0 and 1 of tiles 0..7 in order; the same two loads 2 floats further
// give columns 2 and 3. V0 = P0 - P2, V1 = P1 + P2, V2 = P2 - P1, V3 = P1 - P3.
#define ROWS2 \
	VMOVUPS     0(AX), X0; \
	VINSERTF128 $1, 32(AX), Y0, Y0; \
	VMOVUPS     16(AX), X1; \
	VINSERTF128 $1, 48(AX), Y1, Y1; \
	VMOVUPS     8(AX), X2; \
	VINSERTF128 $1, 40(AX), Y2, Y2; \
	VMOVUPS     24(AX), X3; \
	VINSERTF128 $1, 56(AX), Y3, Y3; \
	VSHUFPS     $0x88, Y1, Y0, Y4; \
	VSHUFPS     $0xdd, Y1, Y0, Y5; \
	VSHUFPS     $0x88, Y3, Y2, Y6; \
	VSHUFPS     $0xdd, Y3, Y2, Y7; \
	VSUBPS      Y6, Y4, Y0; \
	VADDPS      Y6, Y5, Y1; \
	VSUBPS      Y5, Y6, Y2; \
	VSUBPS      Y7, Y5, Y3; \
	VMOVUPS     Y0, (BX); \
	VMOVUPS     Y1, (BX)(R9*1); \
	VMOVUPS     Y2, (BX)(R9*2); \
	VMOVUPS     Y3, (BX)(R10*1)

// ROWS4X and ROWS2X are ROWS4 and ROWS2 for a group of 4 tiles (one 128-bit lane), for the last
// 1..4 tiles of a row.
#define ROWS4X \
	VMOVUPS      0(AX), X0; \
	VMOVUPS      16(AX), X1; \
	VMOVUPS      32(AX), X2; \
	VMOVUPS      48(AX), X3; \
	VMOVUPS      64(AX), X4; \
	VUNPCKLPS    X2, X1, X5; \
	VUNPCKLPS    X4, X3, X6; \
	VSHUFPS      $0x44, X6, X5, X11; \
	VSHUFPS      $0xee, X6, X5, X12; \
	VUNPCKLPS    X1, X0, X5; \
	VUNPCKHPS    X1, X0, X6; \
	VUNPCKLPS    X3, X2, X7; \
	VUNPCKHPS    X3, X2, X8; \
	VSHUFPS      $0x44, X7, X5, X0; \
	VSHUFPS      $0xee, X7, X5, X1; \
	VSHUFPS      $0x44, X8, X6, X2; \
	VSHUFPS      $0xee, X8, X6, X3; \
	VSUBPS       X2, X11, X4; \
	VSUBPS       X3, X1, X5; \
	VSUBPS       X2, X0, X6; \
	VFMADD213PS  X4, X14, X6; \
	VSUBPS       X3, X12, X7; \
	VFMADD231PS  X14, X5, X7; \
	VADDPS       X5, X5, X5; \
	VSUBPS       X5, X4, X8; \
	VADDPS       X5, X4, X9; \
	VMOVAPS      X11, X4; \
	VFNMADD231PS X14, X2, X4; \
	VMULPS       X14, X1, X5; \
	VSUBPS       X3, X5, X5; \
	VSUBPS       X5, X4, X10; \
	VADDPS       X5, X4, X4; \
	VMOVUPS      X6, (BX); \
	VMOVUPS      X10, (BX)(R9*1); \
	VMOVUPS      X4, (BX)(R9*2); \
	VMOVUPS      X8, (BX)(R10*1); \
	VMOVUPS      X9, (BX)(R9*4); \
	VMOVUPS      X7, (BX)(R11*1)

#define ROWS2X \
	VMOVUPS     0(AX), X0; \
	VMOVUPS     16(AX), X1; \
	VMOVUPS     8(AX), X2; \
	VMOVUPS     24(AX), X3; \
	VSHUFPS     $0x88, X1, X0, X4; \
	VSHUFPS     $0xdd, X1, X0, X5; \
	VSHUFPS     $0x88, X3, X2, X6; \
	VSHUFPS     $0xdd, X3, X2, X7; \
	VSUBPS      X6, X4, X0; \
	VADDPS      X6, X5, X1; \
	VSUBPS      X5, X6, X2; \
	VSUBPS      X7, X5, X3; \
	VMOVUPS     X0, (BX); \
	VMOVUPS     X1, (BX)(R9*1); \
	VMOVUPS     X2, (BX)(R9*2); \
	VMOVUPS     X3, (BX)(R10*1)

// func winoInput4AVX2(a *winoIn)
//
// For each channel: the column pass over the n input columns (the columns past the last multiple
// of 8 are done by one more group ending at column n, which recomputes some: each column's result
// depends on that column only; under 8 columns, one masked group writes zeros past column n), then
// the row pass of all tiles.
TEXT ·winoInput4AVX2(SB), NOSPLIT, $256-8
	MOVQ a+0(FP), AX
	MOVQ AX, 248(SP)
	MOVQ $0, 240(SP)
	VBROADCASTSS 112(AX), Y0
	VMOVUPS      Y0, 0(SP)
	MOVQ         16(AX), BX
	MOVQ         BX, 192(SP)
	VBROADCASTSS 116(AX), Y0
	VMOVUPS      Y0, 32(SP)
	MOVQ         24(AX), BX
	MOVQ         BX, 200(SP)
	VBROADCASTSS 120(AX), Y0
	VMOVUPS      Y0, 64(SP)
	MOVQ         32(AX), BX
	MOVQ         BX, 208(SP)
	VBROADCASTSS 124(AX), Y0
	VMOVUPS      Y0, 96(SP)
	MOVQ         40(AX), BX
	MOVQ         BX, 216(SP)
	VBROADCASTSS 128(AX), Y0
	VMOVUPS      Y0, 128(SP)
	MOVQ         48(AX), BX
	MOVQ         BX, 224(SP)
	VBROADCASTSS 132(AX), Y0
	VMOVUPS      Y0, 160(SP)
	MOVQ         56(AX), BX
	MOVQ         BX, 232(SP)
	VXORPS Y15, Y15, Y15
	MOVQ   176(AX), BX
	TESTQ  BX, BX
	JNZ    i4floor
	BCAST32($0xff800000, BX, Y15, X15)

i4floor:

i4chan:
	// Channel c: Y12 = scale[c] (1 without), Y13 = shift[c] (0 without), Y11 = the lane mask.
	MOVQ  248(SP), AX
	MOVQ  240(SP), CX
	MOVL  $0x3f800000, R8
	MOVQ  160(AX), R9
	TESTQ R9, R9
	JZ    i4scale
	MOVL  (R9)(CX*4), R8

i4scale:
	XORL  R10, R10
	MOVQ  168(AX), R9
	TESTQ R9, R9
	JZ    i4shift
	MOVL  (R9)(CX*4), R10

i4shift:
	VMOVQ        R8, X12
	VBROADCASTSS X12, Y12
	VMOVQ        R10, X13
	VBROADCASTSS X13, Y13
	VMOVUPS      216(AX), Y11
	BCAST32($0x40800000, BX, Y14, X14) // 4

	// Prefetch the next channel's input rows when the planes are too far apart for the hardware
	// prefetchers to follow from one channel to the next.
	MOVQ  248(AX), R13
	TESTQ R13, R13
	JZ    i4colpass
	MOVQ  144(AX), R13
	SHLQ $2, R13
	ADDQ $64, R13
	XORQ R10, R10

i4pfrow:
	MOVQ 192(SP)(R10*8), R9
	ADDQ 64(AX)(R10*8), R9
	MOVQ R13, CX

i4pfcol:
	PREFETCHT0 (R9)
	ADDQ       $64, R9
	SUBQ       $64, CX
	JGT        i4pfcol
	INCQ       R10
	CMPQ       R10, $6
	JLT        i4pfrow

	// Column pass.
i4colpass:
	MOVQ 0(AX), DI
	MOVQ 136(AX), R9
	LEAQ (DI)(R9*4), DI
	MOVQ 8(AX), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), BX
	MOVQ 144(AX), CX
	MOVQ 192(SP), R9
	MOVQ 200(SP), R10
	MOVQ 208(SP), R11
	MOVQ 216(SP), R12
	MOVQ 224(SP), R13
	MOVQ 232(SP), R14
	LEAQ (R8)(R8*4), AX
	CMPQ CX, $8
	JGE  i4wide
	COLS4M
	JMP  i4rows

i4wide:
	SUBQ $8, CX

i4cols:
	COLS4
	ADDQ $32, DI
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $32, R14
	SUBQ $8, CX
	JGE  i4cols

	// CX = (columns left) - 8 in [-8, -1]: back up by -CX columns for a last group.
	CMPQ CX, $-8
	JE   i4rows
	SHLQ $2, CX
	ADDQ CX, DI
	ADDQ CX, R9
	ADDQ CX, R10
	ADDQ CX, R11
	ADDQ CX, R12
	ADDQ CX, R13
	ADDQ CX, R14
	COLS4

	// Row pass: for each T row i, groups of 8 tiles into V[i*alpha + k][c].
i4rows:
	MOVQ  248(SP), AX
	MOVQ  0(AX), SI
	MOVQ  8(AX), R8
	SHLQ  $2, R8
	MOVQ  184(AX), CX
	MOVQ  CX, R14
	ANDQ  $7, R14
	SHRQ  $3, CX
	MOVQ  240(SP), R9
	IMULQ 208(AX), R9
	MOVQ  192(AX), DI
	LEAQ  (DI)(R9*4), DI
	MOVQ  200(AX), R9
	SHLQ  $2, R9
	LEAQ  (R9)(R9*2), R10
	LEAQ  (R9)(R9*4), R11
	LEAQ  (R11)(R9*1), R12
	MOVQ  $6, DX

i4row:
	MOVQ  SI, AX
	MOVQ  DI, BX
	MOVQ  CX, R13
	TESTQ R13, R13
	JZ    i4tail

i4grp:
	ROWS4
	ADDQ $128, AX
	ADDQ $32, BX
	DECQ R13
	JNZ  i4grp

	// The last 1..7 tiles: 4 or 8 at once.
i4tail:
	TESTQ R14, R14
	JZ    i4next
	CMPQ  R14, $4
	JGT   i4tail8
	ROWS4X
	JMP   i4next

i4tail8:
	ROWS4

i4next:
	ADDQ R8, SI
	ADDQ R12, DI
	DECQ DX
	JNZ  i4row

	// Next channel.
	MOVQ 248(SP), AX
	MOVQ 64(AX), BX
	ADDQ BX, 192(SP)
	MOVQ 72(AX), BX
	ADDQ BX, 200(SP)
	MOVQ 80(AX), BX
	ADDQ BX, 208(SP)
	MOVQ 88(AX), BX
	ADDQ BX, 216(SP)
	MOVQ 96(AX), BX
	ADDQ BX, 224(SP)
	MOVQ 104(AX), BX
	ADDQ BX, 232(SP)
	MOVQ 240(SP), CX
	INCQ CX
	MOVQ CX, 240(SP)
	CMPQ CX, 152(AX)
	JLT  i4chan

	VZEROUPPER
	RET

// func winoInput2AVX2(a *winoIn)
//
// winoInput4AVX2 for F(2x2): 4 rows.
TEXT ·winoInput2AVX2(SB), NOSPLIT, $256-8
	MOVQ a+0(FP), AX
	MOVQ AX, 248(SP)
	MOVQ $0, 240(SP)
	VBROADCASTSS 112(AX), Y0
	VMOVUPS      Y0, 0(SP)
	MOVQ         16(AX), BX
	MOVQ         BX, 192(SP)
	VBROADCASTSS 116(AX), Y0
	VMOVUPS      Y0, 32(SP)
	MOVQ         24(AX), BX
	MOVQ         BX, 200(SP)
	VBROADCASTSS 120(AX), Y0
	VMOVUPS      Y0, 64(SP)
	MOVQ         32(AX), BX
	MOVQ         BX, 208(SP)
	VBROADCASTSS 124(AX), Y0
	VMOVUPS      Y0, 96(SP)
	MOVQ         40(AX), BX
	MOVQ         BX, 216(SP)
	VXORPS Y15, Y15, Y15
	MOVQ   176(AX), BX
	TESTQ  BX, BX
	JNZ    i2floor
	BCAST32($0xff800000, BX, Y15, X15)

i2floor:

i2chan:
	// Channel c: Y12 = scale[c] (1 without), Y13 = shift[c] (0 without), Y11 = the lane mask.
	MOVQ  248(SP), AX
	MOVQ  240(SP), CX
	MOVL  $0x3f800000, R8
	MOVQ  160(AX), R9
	TESTQ R9, R9
	JZ    i2scale
	MOVL  (R9)(CX*4), R8

i2scale:
	XORL  R10, R10
	MOVQ  168(AX), R9
	TESTQ R9, R9
	JZ    i2shift
	MOVL  (R9)(CX*4), R10

i2shift:
	VMOVQ        R8, X12
	VBROADCASTSS X12, Y12
	VMOVQ        R10, X13
	VBROADCASTSS X13, Y13
	VMOVUPS      216(AX), Y11

	// Prefetch the next channel's input rows when the planes are too far apart for the hardware
	// prefetchers to follow from one channel to the next.
	MOVQ  248(AX), R13
	TESTQ R13, R13
	JZ    i2colpass
	MOVQ  144(AX), R13
	SHLQ $2, R13
	ADDQ $64, R13
	XORQ R10, R10

i2pfrow:
	MOVQ 192(SP)(R10*8), R9
	ADDQ 64(AX)(R10*8), R9
	MOVQ R13, CX

i2pfcol:
	PREFETCHT0 (R9)
	ADDQ       $64, R9
	SUBQ       $64, CX
	JGT        i2pfcol
	INCQ       R10
	CMPQ       R10, $4
	JLT        i2pfrow

	// Column pass.
i2colpass:
	MOVQ 0(AX), DI
	MOVQ 136(AX), R9
	LEAQ (DI)(R9*4), DI
	MOVQ 8(AX), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), BX
	MOVQ 144(AX), CX
	MOVQ 192(SP), R9
	MOVQ 200(SP), R10
	MOVQ 208(SP), R11
	MOVQ 216(SP), R12
	CMPQ CX, $8
	JGE  i2wide
	COLS2M
	JMP  i2rows

i2wide:
	SUBQ $8, CX

i2cols:
	COLS2
	ADDQ $32, DI
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	SUBQ $8, CX
	JGE  i2cols

	// CX = (columns left) - 8 in [-8, -1]: back up by -CX columns for a last group.
	CMPQ CX, $-8
	JE   i2rows
	SHLQ $2, CX
	ADDQ CX, DI
	ADDQ CX, R9
	ADDQ CX, R10
	ADDQ CX, R11
	ADDQ CX, R12
	COLS2

	// Row pass: for each T row i, groups of 8 tiles into V[i*alpha + k][c].
i2rows:
	MOVQ  248(SP), AX
	MOVQ  0(AX), SI
	MOVQ  8(AX), R8
	SHLQ  $2, R8
	MOVQ  184(AX), CX
	MOVQ  CX, R14
	ANDQ  $7, R14
	SHRQ  $3, CX
	MOVQ  240(SP), R9
	IMULQ 208(AX), R9
	MOVQ  192(AX), DI
	LEAQ  (DI)(R9*4), DI
	MOVQ  200(AX), R9
	SHLQ  $2, R9
	LEAQ  (R9)(R9*2), R10
	LEAQ  (R9)(R9*1), R12
	ADDQ  R12, R12
	MOVQ  $4, DX

i2row:
	MOVQ  SI, AX
	MOVQ  DI, BX
	MOVQ  CX, R13
	TESTQ R13, R13
	JZ    i2tail

i2grp:
	ROWS2
	ADDQ $64, AX
	ADDQ $32, BX
	DECQ R13
	JNZ  i2grp

	// The last 1..7 tiles: 4 or 8 at once.
i2tail:
	TESTQ R14, R14
	JZ    i2next
	CMPQ  R14, $4
	JGT   i2tail8
	ROWS2X
	JMP   i2next

i2tail8:
	ROWS2

i2next:
	ADDQ R8, SI
	ADDQ R12, DI
	DECQ DX
	JNZ  i2row

	// Next channel.
	MOVQ 248(SP), AX
	MOVQ 64(AX), BX
	ADDQ BX, 192(SP)
	MOVQ 72(AX), BX
	ADDQ BX, 200(SP)
	MOVQ 80(AX), BX
	ADDQ BX, 208(SP)
	MOVQ 88(AX), BX
	ADDQ BX, 216(SP)
	MOVQ 240(SP), CX
	INCQ CX
	MOVQ CX, 240(SP)
	CMPQ CX, 152(AX)
	JLT  i2chan

	VZEROUPPER
	RET

// func winoOut4AVX2(mm *float32, ps, n int, y *float32, ldy int, bias float32, relu int, s *float32)
//
// Per group of 8 tiles (4 for the last 1..4): S[r][k] = sum_i A^T[r][i] M[i*6+k] for each k into s (192 floats,
// S[r][k] at (r*6 + k)*8), then per output row r Y[r][q] = sum_k A^T[q][k] S[r][k], bias and
// ReLU, and an in-lane 4x4 transpose to tile-major order for the store.
TEXT ·winoOut4AVX2(SB), NOSPLIT, $0-64
	MOVQ mm+0(FP), SI
	MOVQ ps+8(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	ADDQ R10, R10         // 6 ps
	LEAQ (R10)(R10*2), R11 // 18 ps
	LEAQ (R10)(R10*4), R12 // 30 ps
	MOVQ n+16(FP), CX
	MOVQ CX, BX
	ANDQ $7, BX
	SHRQ $3, CX
	MOVQ y+24(FP), DI
	MOVQ ldy+32(FP), R8
	SHLQ $2, R8
	VBROADCASTSS bias+40(FP), Y15
	VXORPS Y12, Y12, Y12
	MOVQ relu+48(FP), AX
	TESTQ AX, AX
	JNZ o4floor
	BCAST32($0xff800000, AX, Y12, X12)

o4floor:
	BCAST32($0x40800000, AX, Y13, X13) // 4
	BCAST32($0x41000000, AX, Y14, X14) // 8
	BCAST32($0x40000000, AX, Y11, X11) // 2
	MOVQ s+56(FP), R13
	LEAQ 768(R13), R14
	TESTQ CX, CX
	JZ    o4tail

o4grp:
	// Stage 1: for k = 0..5, column k of the 6x6 tiles.
	MOVQ SI, AX
	MOVQ $0, DX

o4k:
	VMOVUPS      (AX), Y0
	VMOVUPS      (AX)(R10*1), Y1
	VMOVUPS      (AX)(R10*2), Y2
	VMOVUPS      (AX)(R11*1), Y3
	VMOVUPS      (AX)(R10*4), Y4
	VMOVUPS      (AX)(R12*1), Y5
	VADDPS       Y2, Y1, Y6  // a = m1 + m2
	VSUBPS       Y2, Y1, Y7  // b = m1 - m2
	VADDPS       Y4, Y3, Y8  // c = m3 + m4
	VSUBPS       Y4, Y3, Y9  // d = m3 - m4
	VADDPS       Y6, Y0, Y0
	VADDPS       Y8, Y0, Y0  // S0 = m0 + a + c
	VMOVAPS      Y7, Y1
	VFMADD231PS  Y11, Y9, Y1 // S1 = b + 2 d
	VFMADD231PS  Y13, Y8, Y6 // S2 = a + 4 c
	VFMADD231PS  Y14, Y9, Y7
	VADDPS       Y5, Y7, Y7  // S3 = b + 8 d + m5
	VMOVUPS      Y0, 0(R13)(DX*1)
	VMOVUPS      Y1, 192(R13)(DX*1)
	VMOVUPS      Y6, 384(R13)(DX*1)
	VMOVUPS      Y7, 576(R13)(DX*1)
	ADDQ         R9, AX
	ADDQ         $32, DX
	CMPQ         DX, $192
	JNE          o4k

	// Stage 2: output rows r = 0..3.
	MOVQ DI, AX
	MOVQ R13, DX

o4r:
	VMOVUPS      0(DX), Y0
	VMOVUPS      32(DX), Y1
	VMOVUPS      64(DX), Y2
	VMOVUPS      96(DX), Y3
	VMOVUPS      128(DX), Y4
	VMOVUPS      160(DX), Y5
	VADDPS       Y2, Y1, Y6  // a
	VSUBPS       Y2, Y1, Y7  // b
	VADDPS       Y4, Y3, Y8  // c
	VSUBPS       Y4, Y3, Y9  // d
	VADDPS       Y6, Y0, Y0
	VADDPS       Y8, Y0, Y0  // q0 = s0 + a + c
	VMOVAPS      Y7, Y1
	VFMADD231PS  Y11, Y9, Y1 // q1 = b + 2 d
	VFMADD231PS  Y13, Y8, Y6 // q2 = a + 4 c
	VFMADD231PS  Y14, Y9, Y7
	VADDPS       Y5, Y7, Y7  // q3 = b + 8 d + s5
	VADDPS       Y15, Y0, Y0
	VADDPS       Y15, Y1, Y1
	VADDPS       Y15, Y6, Y6
	VADDPS       Y15, Y7, Y7
	VMAXPS       Y0, Y12, Y0
	VMAXPS       Y1, Y12, Y1
	VMAXPS       Y6, Y12, Y6
	VMAXPS       Y7, Y12, Y7
	VUNPCKLPS    Y1, Y0, Y2
	VUNPCKHPS    Y1, Y0, Y3
	VUNPCKLPS    Y7, Y6, Y4
	VUNPCKHPS    Y7, Y6, Y5
	VSHUFPS      $0x44, Y4, Y2, Y0 // tiles 0 | 4
	VSHUFPS      $0xee, Y4, Y2, Y1 // tiles 1 | 5
	VSHUFPS      $0x44, Y5, Y3, Y6 // tiles 2 | 6
	VSHUFPS      $0xee, Y5, Y3, Y7 // tiles 3 | 7
	VPERM2F128   $0x20, Y1, Y0, Y2
	VPERM2F128   $0x20, Y7, Y6, Y3
	VPERM2F128   $0x31, Y1, Y0, Y4
	VPERM2F128   $0x31, Y7, Y6, Y5
	VMOVUPS      Y2, 0(AX)
	VMOVUPS      Y3, 32(AX)
	VMOVUPS      Y4, 64(AX)
	VMOVUPS      Y5, 96(AX)
	ADDQ         R8, AX
	ADDQ         $192, DX
	CMPQ         DX, R14
	JNE          o4r

	ADDQ $32, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  o4grp

	// The last 1..7 tiles: 4 (in 128-bit registers) or 8 at once.
o4tail:
	TESTQ BX, BX
	JZ    o4done
	CMPQ  BX, $4
	JGT   o4grp8
	// Stage 1: for k = 0..5, column k of the 6x6 tiles.
	MOVQ SI, AX
	MOVQ $0, DX

o4kx:
	VMOVUPS      (AX), X0
	VMOVUPS      (AX)(R10*1), X1
	VMOVUPS      (AX)(R10*2), X2
	VMOVUPS      (AX)(R11*1), X3
	VMOVUPS      (AX)(R10*4), X4
	VMOVUPS      (AX)(R12*1), X5
	VADDPS       X2, X1, X6  // a = m1 + m2
	VSUBPS       X2, X1, X7  // b = m1 - m2
	VADDPS       X4, X3, X8  // c = m3 + m4
	VSUBPS       X4, X3, X9  // d = m3 - m4
	VADDPS       X6, X0, X0
	VADDPS       X8, X0, X0  // S0 = m0 + a + c
	VMOVAPS      X7, X1
	VFMADD231PS  X11, X9, X1 // S1 = b + 2 d
	VFMADD231PS  X13, X8, X6 // S2 = a + 4 c
	VFMADD231PS  X14, X9, X7
	VADDPS       X5, X7, X7  // S3 = b + 8 d + m5
	VMOVUPS      X0, 0(R13)(DX*1)
	VMOVUPS      X1, 192(R13)(DX*1)
	VMOVUPS      X6, 384(R13)(DX*1)
	VMOVUPS      X7, 576(R13)(DX*1)
	ADDQ         R9, AX
	ADDQ         $32, DX
	CMPQ         DX, $192
	JNE          o4kx

	// Stage 2: output rows r = 0..3.
	MOVQ DI, AX
	MOVQ R13, DX

o4rx:
	VMOVUPS      0(DX), X0
	VMOVUPS      32(DX), X1
	VMOVUPS      64(DX), X2
	VMOVUPS      96(DX), X3
	VMOVUPS      128(DX), X4
	VMOVUPS      160(DX), X5
	VADDPS       X2, X1, X6  // a
	VSUBPS       X2, X1, X7  // b
	VADDPS       X4, X3, X8  // c
	VSUBPS       X4, X3, X9  // d
	VADDPS       X6, X0, X0
	VADDPS       X8, X0, X0  // q0 = s0 + a + c
	VMOVAPS      X7, X1
	VFMADD231PS  X11, X9, X1 // q1 = b + 2 d
	VFMADD231PS  X13, X8, X6 // q2 = a + 4 c
	VFMADD231PS  X14, X9, X7
	VADDPS       X5, X7, X7  // q3 = b + 8 d + s5
	VADDPS       X15, X0, X0
	VADDPS       X15, X1, X1
	VADDPS       X15, X6, X6
	VADDPS       X15, X7, X7
	VMAXPS       X0, X12, X0
	VMAXPS       X1, X12, X1
	VMAXPS       X6, X12, X6
	VMAXPS       X7, X12, X7
	VUNPCKLPS    X1, X0, X2
	VUNPCKHPS    X1, X0, X3
	VUNPCKLPS    X7, X6, X4
	VUNPCKHPS    X7, X6, X5
	VSHUFPS      $0x44, X4, X2, X0 // tile 0
	VSHUFPS      $0xee, X4, X2, X1 // tile 1
	VSHUFPS      $0x44, X5, X3, X6 // tile 2
	VSHUFPS      $0xee, X5, X3, X7 // tile 3
	VMOVUPS      X0, 0(AX)
	VMOVUPS      X1, 16(AX)
	VMOVUPS      X6, 32(AX)
	VMOVUPS      X7, 48(AX)
	ADDQ         R8, AX
	ADDQ         $192, DX
	CMPQ         DX, R14
	JNE          o4rx

	JMP o4done

o4grp8:
	// Stage 1: for k = 0..5, column k of the 6x6 tiles.
	MOVQ SI, AX
	MOVQ $0, DX

o4k8:
	VMOVUPS      (AX), Y0
	VMOVUPS      (AX)(R10*1), Y1
	VMOVUPS      (AX)(R10*2), Y2
	VMOVUPS      (AX)(R11*1), Y3
	VMOVUPS      (AX)(R10*4), Y4
	VMOVUPS      (AX)(R12*1), Y5
	VADDPS       Y2, Y1, Y6  // a = m1 + m2
	VSUBPS       Y2, Y1, Y7  // b = m1 - m2
	VADDPS       Y4, Y3, Y8  // c = m3 + m4
	VSUBPS       Y4, Y3, Y9  // d = m3 - m4
	VADDPS       Y6, Y0, Y0
	VADDPS       Y8, Y0, Y0  // S0 = m0 + a + c
	VMOVAPS      Y7, Y1
	VFMADD231PS  Y11, Y9, Y1 // S1 = b + 2 d
	VFMADD231PS  Y13, Y8, Y6 // S2 = a + 4 c
	VFMADD231PS  Y14, Y9, Y7
	VADDPS       Y5, Y7, Y7  // S3 = b + 8 d + m5
	VMOVUPS      Y0, 0(R13)(DX*1)
	VMOVUPS      Y1, 192(R13)(DX*1)
	VMOVUPS      Y6, 384(R13)(DX*1)
	VMOVUPS      Y7, 576(R13)(DX*1)
	ADDQ         R9, AX
	ADDQ         $32, DX
	CMPQ         DX, $192
	JNE          o4k8

	// Stage 2: output rows r = 0..3.
	MOVQ DI, AX
	MOVQ R13, DX

o4r8:
	VMOVUPS      0(DX), Y0
	VMOVUPS      32(DX), Y1
	VMOVUPS      64(DX), Y2
	VMOVUPS      96(DX), Y3
	VMOVUPS      128(DX), Y4
	VMOVUPS      160(DX), Y5
	VADDPS       Y2, Y1, Y6  // a
	VSUBPS       Y2, Y1, Y7  // b
	VADDPS       Y4, Y3, Y8  // c
	VSUBPS       Y4, Y3, Y9  // d
	VADDPS       Y6, Y0, Y0
	VADDPS       Y8, Y0, Y0  // q0 = s0 + a + c
	VMOVAPS      Y7, Y1
	VFMADD231PS  Y11, Y9, Y1 // q1 = b + 2 d
	VFMADD231PS  Y13, Y8, Y6 // q2 = a + 4 c
	VFMADD231PS  Y14, Y9, Y7
	VADDPS       Y5, Y7, Y7  // q3 = b + 8 d + s5
	VADDPS       Y15, Y0, Y0
	VADDPS       Y15, Y1, Y1
	VADDPS       Y15, Y6, Y6
	VADDPS       Y15, Y7, Y7
	VMAXPS       Y0, Y12, Y0
	VMAXPS       Y1, Y12, Y1
	VMAXPS       Y6, Y12, Y6
	VMAXPS       Y7, Y12, Y7
	VUNPCKLPS    Y1, Y0, Y2
	VUNPCKHPS    Y1, Y0, Y3
	VUNPCKLPS    Y7, Y6, Y4
	VUNPCKHPS    Y7, Y6, Y5
	VSHUFPS      $0x44, Y4, Y2, Y0 // tiles 0 | 4
	VSHUFPS      $0xee, Y4, Y2, Y1 // tiles 1 | 5
	VSHUFPS      $0x44, Y5, Y3, Y6 // tiles 2 | 6
	VSHUFPS      $0xee, Y5, Y3, Y7 // tiles 3 | 7
	VPERM2F128   $0x20, Y1, Y0, Y2
	VPERM2F128   $0x20, Y7, Y6, Y3
	VPERM2F128   $0x31, Y1, Y0, Y4
	VPERM2F128   $0x31, Y7, Y6, Y5
	VMOVUPS      Y2, 0(AX)
	VMOVUPS      Y3, 32(AX)
	VMOVUPS      Y4, 64(AX)
	VMOVUPS      Y5, 96(AX)
	ADDQ         R8, AX
	ADDQ         $192, DX
	CMPQ         DX, R14
	JNE          o4r8


o4done:
	VZEROUPPER
	RET

// func winoOut2AVX2(mm *float32, ps, n int, y *float32, ldy int, bias float32, relu int)
TEXT ·winoOut2AVX2(SB), NOSPLIT, $0-56
	MOVQ mm+0(FP), SI
	MOVQ ps+8(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*1), R10
	ADDQ R10, R10          // 4 ps
	LEAQ (R10)(R10*2), R11 // 12 ps
	MOVQ n+16(FP), CX
	MOVQ CX, BX
	ANDQ $7, BX
	SHRQ $3, CX
	MOVQ y+24(FP), DI
	MOVQ ldy+32(FP), R8
	SHLQ $2, R8
	VBROADCASTSS bias+40(FP), Y13
	VXORPS Y14, Y14, Y14
	MOVQ relu+48(FP), AX
	TESTQ AX, AX
	JNZ o2floor
	BCAST32($0xff800000, AX, Y14, X14)

o2floor:
	TESTQ CX, CX
	JZ    o2tail

o2grp:
	// S[0][k] = m0 + m1 + m2, S[1][k] = m1 - m2 - m3 with m_i = M[i*4+k]: Y0..Y3 and Y4..Y7.
	MOVQ    SI, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y0
	VADDPS  Y10, Y0, Y0
	VSUBPS  Y10, Y9, Y4
	VSUBPS  Y11, Y4, Y4
	ADDQ    R9, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y1
	VADDPS  Y10, Y1, Y1
	VSUBPS  Y10, Y9, Y5
	VSUBPS  Y11, Y5, Y5
	ADDQ    R9, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y2
	VADDPS  Y10, Y2, Y2
	VSUBPS  Y10, Y9, Y6
	VSUBPS  Y11, Y6, Y6
	ADDQ    R9, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y3
	VADDPS  Y10, Y3, Y3
	VSUBPS  Y10, Y9, Y7
	VSUBPS  Y11, Y7, Y7

	// Row 0 from Y0..Y3, row 1 from Y4..Y7: q0 = s0 + s1 + s2, q1 = s1 - s2 - s3.
	VADDPS     Y1, Y0, Y8
	VADDPS     Y2, Y8, Y8
	VSUBPS     Y2, Y1, Y9
	VSUBPS     Y3, Y9, Y9
	VADDPS     Y13, Y8, Y8
	VADDPS     Y13, Y9, Y9
	VMAXPS     Y8, Y14, Y8
	VMAXPS     Y9, Y14, Y9
	VUNPCKLPS  Y9, Y8, Y10
	VUNPCKHPS  Y9, Y8, Y11
	VPERM2F128 $0x20, Y11, Y10, Y8
	VPERM2F128 $0x31, Y11, Y10, Y9
	VMOVUPS    Y8, 0(DI)
	VMOVUPS    Y9, 32(DI)

	VADDPS     Y5, Y4, Y8
	VADDPS     Y6, Y8, Y8
	VSUBPS     Y6, Y5, Y9
	VSUBPS     Y7, Y9, Y9
	VADDPS     Y13, Y8, Y8
	VADDPS     Y13, Y9, Y9
	VMAXPS     Y8, Y14, Y8
	VMAXPS     Y9, Y14, Y9
	VUNPCKLPS  Y9, Y8, Y10
	VUNPCKHPS  Y9, Y8, Y11
	VPERM2F128 $0x20, Y11, Y10, Y8
	VPERM2F128 $0x31, Y11, Y10, Y9
	VMOVUPS    Y8, 0(DI)(R8*1)
	VMOVUPS    Y9, 32(DI)(R8*1)

	ADDQ $32, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  o2grp

	// The last 1..7 tiles: 4 (in 128-bit registers) or 8 at once.
o2tail:
	TESTQ BX, BX
	JZ    o2done
	CMPQ  BX, $4
	JGT   o2grp8
	// S[0][k] = m0 + m1 + m2, S[1][k] = m1 - m2 - m3 with m_i = M[i*4+k]: X0..X3 and X4..X7.
	MOVQ    SI, AX
	VMOVUPS (AX), X8
	VMOVUPS (AX)(R10*1), X9
	VMOVUPS (AX)(R10*2), X10
	VMOVUPS (AX)(R11*1), X11
	VADDPS  X9, X8, X0
	VADDPS  X10, X0, X0
	VSUBPS  X10, X9, X4
	VSUBPS  X11, X4, X4
	ADDQ    R9, AX
	VMOVUPS (AX), X8
	VMOVUPS (AX)(R10*1), X9
	VMOVUPS (AX)(R10*2), X10
	VMOVUPS (AX)(R11*1), X11
	VADDPS  X9, X8, X1
	VADDPS  X10, X1, X1
	VSUBPS  X10, X9, X5
	VSUBPS  X11, X5, X5
	ADDQ    R9, AX
	VMOVUPS (AX), X8
	VMOVUPS (AX)(R10*1), X9
	VMOVUPS (AX)(R10*2), X10
	VMOVUPS (AX)(R11*1), X11
	VADDPS  X9, X8, X2
	VADDPS  X10, X2, X2
	VSUBPS  X10, X9, X6
	VSUBPS  X11, X6, X6
	ADDQ    R9, AX
	VMOVUPS (AX), X8
	VMOVUPS (AX)(R10*1), X9
	VMOVUPS (AX)(R10*2), X10
	VMOVUPS (AX)(R11*1), X11
	VADDPS  X9, X8, X3
	VADDPS  X10, X3, X3
	VSUBPS  X10, X9, X7
	VSUBPS  X11, X7, X7

	// Row 0 from X0..X3, row 1 from X4..X7: q0 = s0 + s1 + s2, q1 = s1 - s2 - s3.
	VADDPS     X1, X0, X8
	VADDPS     X2, X8, X8
	VSUBPS     X2, X1, X9
	VSUBPS     X3, X9, X9
	VADDPS     X13, X8, X8
	VADDPS     X13, X9, X9
	VMAXPS     X8, X14, X8
	VMAXPS     X9, X14, X9
	VUNPCKLPS  X9, X8, X10
	VUNPCKHPS  X9, X8, X11
	VMOVUPS    X10, 0(DI)
	VMOVUPS    X11, 16(DI)

	VADDPS     X5, X4, X8
	VADDPS     X6, X8, X8
	VSUBPS     X6, X5, X9
	VSUBPS     X7, X9, X9
	VADDPS     X13, X8, X8
	VADDPS     X13, X9, X9
	VMAXPS     X8, X14, X8
	VMAXPS     X9, X14, X9
	VUNPCKLPS  X9, X8, X10
	VUNPCKHPS  X9, X8, X11
	VMOVUPS    X10, 0(DI)(R8*1)
	VMOVUPS    X11, 16(DI)(R8*1)

	JMP o2done

o2grp8:
	// S[0][k] = m0 + m1 + m2, S[1][k] = m1 - m2 - m3 with m_i = M[i*4+k]: Y0..Y3 and Y4..Y7.
	MOVQ    SI, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y0
	VADDPS  Y10, Y0, Y0
	VSUBPS  Y10, Y9, Y4
	VSUBPS  Y11, Y4, Y4
	ADDQ    R9, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y1
	VADDPS  Y10, Y1, Y1
	VSUBPS  Y10, Y9, Y5
	VSUBPS  Y11, Y5, Y5
	ADDQ    R9, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y2
	VADDPS  Y10, Y2, Y2
	VSUBPS  Y10, Y9, Y6
	VSUBPS  Y11, Y6, Y6
	ADDQ    R9, AX
	VMOVUPS (AX), Y8
	VMOVUPS (AX)(R10*1), Y9
	VMOVUPS (AX)(R10*2), Y10
	VMOVUPS (AX)(R11*1), Y11
	VADDPS  Y9, Y8, Y3
	VADDPS  Y10, Y3, Y3
	VSUBPS  Y10, Y9, Y7
	VSUBPS  Y11, Y7, Y7

	// Row 0 from Y0..Y3, row 1 from Y4..Y7: q0 = s0 + s1 + s2, q1 = s1 - s2 - s3.
	VADDPS     Y1, Y0, Y8
	VADDPS     Y2, Y8, Y8
	VSUBPS     Y2, Y1, Y9
	VSUBPS     Y3, Y9, Y9
	VADDPS     Y13, Y8, Y8
	VADDPS     Y13, Y9, Y9
	VMAXPS     Y8, Y14, Y8
	VMAXPS     Y9, Y14, Y9
	VUNPCKLPS  Y9, Y8, Y10
	VUNPCKHPS  Y9, Y8, Y11
	VPERM2F128 $0x20, Y11, Y10, Y8
	VPERM2F128 $0x31, Y11, Y10, Y9
	VMOVUPS    Y8, 0(DI)
	VMOVUPS    Y9, 32(DI)

	VADDPS     Y5, Y4, Y8
	VADDPS     Y6, Y8, Y8
	VSUBPS     Y6, Y5, Y9
	VSUBPS     Y7, Y9, Y9
	VADDPS     Y13, Y8, Y8
	VADDPS     Y13, Y9, Y9
	VMAXPS     Y8, Y14, Y8
	VMAXPS     Y9, Y14, Y9
	VUNPCKLPS  Y9, Y8, Y10
	VUNPCKHPS  Y9, Y8, Y11
	VPERM2F128 $0x20, Y11, Y10, Y8
	VPERM2F128 $0x31, Y11, Y10, Y9
	VMOVUPS    Y8, 0(DI)(R8*1)
	VMOVUPS    Y9, 32(DI)(R8*1)


o2done:
	VZEROUPPER
	RET

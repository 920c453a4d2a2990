//go:build amd64 && !purego

#include "textflag.h"

// func avg2x2PreAVX2(dst, r0, r1 *float32, n int, scale, shift, floor, inv float32)
//
// For k < n (a positive multiple of 8), with f(v) = max(v*scale + shift, floor):
//
//	dst[k] = ((f(r0[2k]) + f(r1[2k])) + (f(r0[2k+1]) + f(r1[2k+1]))) * inv
//
// Eight outputs per iteration: the two rows' 16 inputs each go through the prologue, are added
// vertically, then pairwise by VHADDPS, whose in-lane result order [0 1 4 5 | 2 3 6 7] VPERMPD
// $0xD8 puts back in order. floor is 0 for a ReLU and -Inf without one; VMAXPS returns its
// second source when either operand is NaN, so with the input as that operand NaN propagates.
// Go operand order: OP src2, src1, dst computes dst = src1 OP src2.
TEXT ·avg2x2PreAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ r0+8(FP), SI
	MOVQ r1+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS scale+32(FP), Y12
	VBROADCASTSS shift+36(FP), Y13
	VBROADCASTSS floor+40(FP), Y15
	VBROADCASTSS inv+44(FP), Y14
	SHRQ $3, CX

loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS (DX), Y2
	VMOVUPS 32(DX), Y3
	VFMADD213PS Y13, Y12, Y0
	VFMADD213PS Y13, Y12, Y1
	VFMADD213PS Y13, Y12, Y2
	VFMADD213PS Y13, Y12, Y3
	VMAXPS Y0, Y15, Y0
	VMAXPS Y1, Y15, Y1
	VMAXPS Y2, Y15, Y2
	VMAXPS Y3, Y15, Y3
	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VHADDPS Y1, Y0, Y0
	VPERMPD $0xD8, Y0, Y0
	VMULPS Y14, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $32, DI
	DECQ CX
	JNZ loop

	VZEROUPPER
	RET

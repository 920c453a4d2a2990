//go:build amd64 && !purego

#include "textflag.h"

// gemvIdx holds the VPERMPS index vectors that spread x[k..k+7] over a packed A row panel:
// [0 0 0 0 1 1 1 1], [2 2 2 2 3 3 3 3], [4 4 4 4 5 5 5 5], [6 6 6 6 7 7 7 7].
DATA gemvIdx<>+0(SB)/4, $0
DATA gemvIdx<>+4(SB)/4, $0
DATA gemvIdx<>+8(SB)/4, $0
DATA gemvIdx<>+12(SB)/4, $0
DATA gemvIdx<>+16(SB)/4, $1
DATA gemvIdx<>+20(SB)/4, $1
DATA gemvIdx<>+24(SB)/4, $1
DATA gemvIdx<>+28(SB)/4, $1
DATA gemvIdx<>+32(SB)/4, $2
DATA gemvIdx<>+36(SB)/4, $2
DATA gemvIdx<>+40(SB)/4, $2
DATA gemvIdx<>+44(SB)/4, $2
DATA gemvIdx<>+48(SB)/4, $3
DATA gemvIdx<>+52(SB)/4, $3
DATA gemvIdx<>+56(SB)/4, $3
DATA gemvIdx<>+60(SB)/4, $3
DATA gemvIdx<>+64(SB)/4, $4
DATA gemvIdx<>+68(SB)/4, $4
DATA gemvIdx<>+72(SB)/4, $4
DATA gemvIdx<>+76(SB)/4, $4
DATA gemvIdx<>+80(SB)/4, $5
DATA gemvIdx<>+84(SB)/4, $5
DATA gemvIdx<>+88(SB)/4, $5
DATA gemvIdx<>+92(SB)/4, $5
DATA gemvIdx<>+96(SB)/4, $6
DATA gemvIdx<>+100(SB)/4, $6
DATA gemvIdx<>+104(SB)/4, $6
DATA gemvIdx<>+108(SB)/4, $6
DATA gemvIdx<>+112(SB)/4, $7
DATA gemvIdx<>+116(SB)/4, $7
DATA gemvIdx<>+120(SB)/4, $7
DATA gemvIdx<>+124(SB)/4, $7
GLOBL gemvIdx<>(SB), RODATA|NOPTR, $128

// func gemvAVX2(k8 int, a, x, out *float32)
//
// out[i] = sum over kk < 8*k8 of a[kk*MR + i] * x[kk], for i < MR = 4: one packed row panel of A
// times a vector. Each iteration takes 8 values of k: 32 floats of A (two k per vector, four
// rows each) against x[k..k+7] spread by VPERMPS, in two accumulators that are added at the end.
// Go operand order: OP src2, src1, dst; VPERMPS data, indices, dst; VFMADD231PS b, a, acc adds
// a*b to acc.
TEXT ·gemvAVX2(SB), NOSPLIT, $0-32
	MOVQ k8+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ out+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ CX, CX
	JZ done
	VMOVDQU gemvIdx<>+0(SB), Y8
	VMOVDQU gemvIdx<>+32(SB), Y9
	VMOVDQU gemvIdx<>+64(SB), Y10
	VMOVDQU gemvIdx<>+96(SB), Y11

loop:
	VPERMPS (DX), Y8, Y3
	VFMADD231PS (SI), Y3, Y0
	VPERMPS (DX), Y9, Y4
	VFMADD231PS 32(SI), Y4, Y1
	VPERMPS (DX), Y10, Y5
	VFMADD231PS 64(SI), Y5, Y0
	VPERMPS (DX), Y11, Y6
	VFMADD231PS 96(SI), Y6, Y1
	ADDQ $32, DX
	ADDQ $128, SI
	DECQ CX
	JNZ loop

done:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVUPS X0, (DI)
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"

// Training's elementwise kernels in AVX2 (see train_amd64.go for their Go twins' semantics).

// func stage8AVX2(dst *float32, dstStride int, src *float32, srcStride int, n int, scale, shift *float32, relu int)
//
// For 8 channels (rows of src, srcStride floats apart) and n pixels (n a multiple of 8), writes
// dst[p*dstStride + c] = act(fma(src[c*srcStride + p], scale[c], shift[c])): an 8x8 block
// transpose per 8 pixels, then the affine map (one rounding, as the GEMM packer's prologue) and,
// when relu != 0, max(., 0) on each pixel's 8 channels.
TEXT ·stage8AVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), R8
	SHLQ $2, R8
	MOVQ n+32(FP), CX
	MOVQ scale+40(FP), AX
	MOVQ shift+48(FP), BX
	VMOVUPS (AX), Y14
	VMOVUPS (BX), Y13
	MOVQ relu+56(FP), AX
	VXORPS Y15, Y15, Y15
	TESTQ AX, AX
	JNE  ready
	// No ReLU: max with -Inf keeps every value.
	MOVL $0xff800000, AX
	MOVL AX, X15
	VBROADCASTSS X15, Y15
ready:
	LEAQ (R8)(R8*2), R9   // 3 rows
	LEAQ (R8)(R8*4), R10  // 5 rows
	LEAQ (R9)(R9*1), R11  // 6 rows
	LEAQ (R11)(R8*1), R12 // 7 rows
	SHRQ $3, CX
	JZ   done

loop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (SI)(R8*4), Y4
	VMOVUPS (SI)(R10*1), Y5
	VMOVUPS (SI)(R11*1), Y6
	VMOVUPS (SI)(R12*1), Y7

	// t0..t7 = unpack lo/hi of row pairs: t0=Y8 t1=Y1 t2=Y0 t3=Y3 t4=Y2 t5=Y5 t6=Y4 t7=Y7.
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y1
	VUNPCKLPS Y3, Y2, Y0
	VUNPCKHPS Y3, Y2, Y3
	VUNPCKLPS Y5, Y4, Y2
	VUNPCKHPS Y5, Y4, Y5
	VUNPCKLPS Y7, Y6, Y4
	VUNPCKHPS Y7, Y6, Y7

	// s0..s7: s0=Y6 s1=Y0 s2=Y8 s3=Y3 s4=Y1 s5=Y4 s6=Y2 s7=Y7.
	VSHUFPS $0x44, Y0, Y8, Y6
	VSHUFPS $0xEE, Y0, Y8, Y0
	VSHUFPS $0x44, Y3, Y1, Y8
	VSHUFPS $0xEE, Y3, Y1, Y3
	VSHUFPS $0x44, Y4, Y2, Y1
	VSHUFPS $0xEE, Y4, Y2, Y4
	VSHUFPS $0x44, Y7, Y5, Y2
	VSHUFPS $0xEE, Y7, Y5, Y7

	// Pixel j's channels: out0=(s0,s4).lo out1=(s1,s5).lo out2=(s2,s6).lo out3=(s3,s7).lo,
	// out4..out7 the high halves.
	MOVQ DI, R13
	VPERM2F128 $0x20, Y1, Y6, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)
	ADDQ DX, R13
	VPERM2F128 $0x20, Y4, Y0, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)
	ADDQ DX, R13
	VPERM2F128 $0x20, Y2, Y8, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)
	ADDQ DX, R13
	VPERM2F128 $0x20, Y7, Y3, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)
	ADDQ DX, R13
	VPERM2F128 $0x31, Y1, Y6, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)
	ADDQ DX, R13
	VPERM2F128 $0x31, Y4, Y0, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)
	ADDQ DX, R13
	VPERM2F128 $0x31, Y2, Y8, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)
	ADDQ DX, R13
	VPERM2F128 $0x31, Y7, Y3, Y5
	VFMADD213PS Y13, Y14, Y5
	VMAXPS Y5, Y15, Y5
	VMOVUPS Y5, (R13)

	ADDQ $32, SI
	LEAQ (DI)(DX*8), DI
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET

// func bnSumsAVX2(x, dy *float32, n int, a, b float32, relu int) (s1, s2 float64)
//
// Over n elements (a multiple of 8): dz = dy where fma(x, a, b) > 0 (everywhere when relu == 0);
// s1 = sum dz, s2 = sum dz*x, accumulated in float64.
TEXT ·bnSumsAVX2(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y14
	VBROADCASTSS b+28(FP), Y13
	MOVQ relu+32(FP), AX
	VXORPS Y15, Y15, Y15
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $3, CX
	JZ   sumsdone
	TESTQ AX, AX
	JZ   sumsplain

sumsrelu:
	VMOVUPS (SI), Y4
	VMOVUPS (DI), Y5
	VMOVAPS Y13, Y6
	VFMADD231PS Y14, Y4, Y6   // z = fma(x, a, b)
	VCMPPS $0x1e, Y15, Y6, Y6 // z > 0
	VANDPS Y6, Y5, Y5
	VCVTPS2PD X5, Y8
	VEXTRACTF128 $1, Y5, X9
	VCVTPS2PD X9, Y9
	VCVTPS2PD X4, Y10
	VEXTRACTF128 $1, Y4, X11
	VCVTPS2PD X11, Y11
	VADDPD Y8, Y0, Y0
	VADDPD Y9, Y1, Y1
	VFMADD231PD Y10, Y8, Y2
	VFMADD231PD Y11, Y9, Y3
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  sumsrelu
	JMP  sumsdone

sumsplain:
	VMOVUPS (SI), Y4
	VMOVUPS (DI), Y5
	VCVTPS2PD X5, Y8
	VEXTRACTF128 $1, Y5, X9
	VCVTPS2PD X9, Y9
	VCVTPS2PD X4, Y10
	VEXTRACTF128 $1, Y4, X11
	VCVTPS2PD X11, Y11
	VADDPD Y8, Y0, Y0
	VADDPD Y9, Y1, Y1
	VFMADD231PD Y10, Y8, Y2
	VFMADD231PD Y11, Y9, Y3
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  sumsplain

sumsdone:
	VADDPD Y1, Y0, Y0
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	VEXTRACTF128 $1, Y2, X3
	VADDPD X3, X2, X2
	VHADDPD X2, X2, X2
	VMOVSD X0, s1+40(FP)
	VMOVSD X2, s2+48(FP)
	VZEROUPPER
	RET

// func bnDXAVX2(x, dy, dx *float32, n int, a, b, cx, c0, m float32, flags int)
//
// Over n elements (a multiple of 8): dz = dy where fma(x, a, b) > 0 (flags&1), else dy;
// v = a*dz + cx*(x-m) + c0; dx = v, or dx += v with flags&2.
TEXT ·bnDXAVX2(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), DI
	MOVQ dx+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS a+32(FP), Y14
	VBROADCASTSS b+36(FP), Y13
	VBROADCASTSS cx+40(FP), Y12
	VBROADCASTSS c0+44(FP), Y11
	VBROADCASTSS m+48(FP), Y10
	MOVQ flags+56(FP), AX
	VXORPS Y15, Y15, Y15
	SHRQ $3, CX
	JZ   dxdone

dxloop:
	VMOVUPS (SI), Y0
	VMOVUPS (DI), Y1
	TESTQ $1, AX
	JZ   dxnomask
	VMOVAPS Y13, Y2
	VFMADD231PS Y14, Y0, Y2
	VCMPPS $0x1e, Y15, Y2, Y2
	VANDPS Y2, Y1, Y1

dxnomask:
	VMULPS Y14, Y1, Y3
	VSUBPS Y10, Y0, Y0
	VFMADD231PS Y12, Y0, Y3
	VADDPS Y11, Y3, Y3
	TESTQ $2, AX
	JZ   dxstore
	VADDPS (DX), Y3, Y3

dxstore:
	VMOVUPS Y3, (DX)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNZ  dxloop

dxdone:
	VZEROUPPER
	RET

// func affineAVX2(x, y *float32, n int, a, b float32, relu int)
//
// Over n elements (a multiple of 8): y = fma(x, a, b), then max(y, 0) when relu != 0.
TEXT ·affineAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y14
	VBROADCASTSS b+28(FP), Y13
	MOVQ relu+32(FP), AX
	VXORPS Y15, Y15, Y15
	TESTQ AX, AX
	JNE  affready
	MOVL $0xff800000, AX
	MOVL AX, X15
	VBROADCASTSS X15, Y15

affready:
	SHRQ $3, CX
	JZ   affdone

affloop:
	VMOVUPS (SI), Y0
	VFMADD213PS Y13, Y14, Y0
	VMAXPS Y0, Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  affloop

affdone:
	VZEROUPPER
	RET

// func sumAVX2(x *float32, n int) float64
//
// Returns the sum of n floats (n a multiple of 8), accumulated in float64.
TEXT ·sumAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	SHRQ $3, CX
	JZ   sumdone

sumloop:
	VCVTPS2PD (SI), Y2
	VCVTPS2PD 16(SI), Y3
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	ADDQ $32, SI
	DECQ CX
	JNZ  sumloop

sumdone:
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	VMOVSD X0, ret+16(FP)
	VZEROUPPER
	RET

// func sqDevAVX2(x *float32, n int, mean float64) float64
//
// Returns sum (x[i] - mean)^2 over n floats (n a multiple of 8), in float64.
TEXT ·sqDevAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSD mean+16(FP), Y15
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	SHRQ $3, CX
	JZ   sqdone

sqloop:
	VCVTPS2PD (SI), Y2
	VCVTPS2PD 16(SI), Y3
	VSUBPD Y15, Y2, Y2
	VSUBPD Y15, Y3, Y3
	VFMADD231PD Y2, Y2, Y0
	VFMADD231PD Y3, Y3, Y1
	ADDQ $32, SI
	DECQ CX
	JNZ  sqloop

sqdone:
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	VMOVSD X0, ret+24(FP)
	VZEROUPPER
	RET

/*
 * Unit tests for src/engine/fpu.c: the corner cases of the RISC-V F and D
 * extensions, with expected values worked out from the spec (unprivileged
 * spec chapters "F" and "D"; IEEE 754-2008 for rounding and exceptions):
 * NaN-boxing, canonical NaNs, signalling NaNs, signed zeros, subnormals,
 * overflow and underflow (tininess after rounding) in every rounding mode,
 * RMM ties, FMA as a single rounding, the FMIN/FMAX, compare and FCLASS
 * rules, and FCVT saturation. Every table case runs twice, with the accrued
 * flags clear and with NX already set (which takes fpu.c's fast path), and
 * must give the same value and flags either way. Links fpu.c alone.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "engine/fpu.h"

/* Bit patterns from C hex-float literals (exact at compile time). */
static uint64_t D(double x)
{
	uint64_t u;
	memcpy(&u, &x, 8);
	return u;
}

static uint64_t S(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	return fpu_box_s(u);
}

#define SB(bits) fpu_box_s(bits)
#define DQNAN 0x7ff8000000000000ull
#define SQNAN 0xffffffff7fc00000ull
#define DSNAN 0x7ff0000000000001ull
#define SSNAN SB(0x7f800001u)
#define DINF 0x7ff0000000000000ull
#define DNINF 0xfff0000000000000ull
#define SINF SB(0x7f800000u)
#define SNINF SB(0xff800000u)
#define DMAX 0x7fefffffffffffffull
#define DMIN 0x0010000000000000ull
#define DSUB1 0x0000000000000001ull
#define SMAX SB(0x7f7fffffu)
#define SMIN SB(0x00800000u)
#define SSUB1 SB(0x00000001u)
#define DNZERO 0x8000000000000000ull
#define SNZERO SB(0x80000000u)

#define NX FFLAG_NX
#define UF FFLAG_UF
#define OF FFLAG_OF
#define DZ FFLAG_DZ
#define NV FFLAG_NV

enum top {
	ADD_S, SUB_S, MUL_S, DIV_S, SQRT_S, MADD_S, MSUB_S, NMSUB_S, NMADD_S, MIN_S, MAX_S,
	SGNJ_S, SGNJN_S, SGNJX_S, EQ_S, LT_S, LE_S, CLASS_S, W_S, WU_S, L_S, LU_S, S_W, S_WU,
	S_L, S_LU,
	ADD_D, SUB_D, MUL_D, DIV_D, SQRT_D, MADD_D, MSUB_D, NMSUB_D, NMADD_D, MIN_D, MAX_D,
	SGNJ_D, SGNJN_D, SGNJX_D, EQ_D, LT_D, LE_D, CLASS_D, W_D, WU_D, L_D, LU_D, D_W, D_WU,
	D_L, D_LU,
	S_D, D_S,
};

static uint64_t run(enum top op, int rm, uint64_t a, uint64_t b, uint64_t c, uint32_t *fl)
{
	switch (op) {
	case ADD_S: return fpu_add_s(a, b, rm, fl);
	case SUB_S: return fpu_sub_s(a, b, rm, fl);
	case MUL_S: return fpu_mul_s(a, b, rm, fl);
	case DIV_S: return fpu_div_s(a, b, rm, fl);
	case SQRT_S: return fpu_sqrt_s(a, rm, fl);
	case MADD_S: return fpu_fma_s(a, b, c, FMA_MADD, rm, fl);
	case MSUB_S: return fpu_fma_s(a, b, c, FMA_MSUB, rm, fl);
	case NMSUB_S: return fpu_fma_s(a, b, c, FMA_NMSUB, rm, fl);
	case NMADD_S: return fpu_fma_s(a, b, c, FMA_NMADD, rm, fl);
	case MIN_S: return fpu_min_s(a, b, fl);
	case MAX_S: return fpu_max_s(a, b, fl);
	case SGNJ_S: return fpu_sgnj_s(a, b, 0);
	case SGNJN_S: return fpu_sgnj_s(a, b, 1);
	case SGNJX_S: return fpu_sgnj_s(a, b, 2);
	case EQ_S: return fpu_cmp_s(a, b, CMP_EQ, fl);
	case LT_S: return fpu_cmp_s(a, b, CMP_LT, fl);
	case LE_S: return fpu_cmp_s(a, b, CMP_LE, fl);
	case CLASS_S: return fpu_class_s(a);
	case W_S: return fpu_s_to_int(a, INT_W, rm, fl);
	case WU_S: return fpu_s_to_int(a, INT_WU, rm, fl);
	case L_S: return fpu_s_to_int(a, INT_L, rm, fl);
	case LU_S: return fpu_s_to_int(a, INT_LU, rm, fl);
	case S_W: return fpu_int_to_s(a, INT_W, rm, fl);
	case S_WU: return fpu_int_to_s(a, INT_WU, rm, fl);
	case S_L: return fpu_int_to_s(a, INT_L, rm, fl);
	case S_LU: return fpu_int_to_s(a, INT_LU, rm, fl);
	case ADD_D: return fpu_add_d(a, b, rm, fl);
	case SUB_D: return fpu_sub_d(a, b, rm, fl);
	case MUL_D: return fpu_mul_d(a, b, rm, fl);
	case DIV_D: return fpu_div_d(a, b, rm, fl);
	case SQRT_D: return fpu_sqrt_d(a, rm, fl);
	case MADD_D: return fpu_fma_d(a, b, c, FMA_MADD, rm, fl);
	case MSUB_D: return fpu_fma_d(a, b, c, FMA_MSUB, rm, fl);
	case NMSUB_D: return fpu_fma_d(a, b, c, FMA_NMSUB, rm, fl);
	case NMADD_D: return fpu_fma_d(a, b, c, FMA_NMADD, rm, fl);
	case MIN_D: return fpu_min_d(a, b, fl);
	case MAX_D: return fpu_max_d(a, b, fl);
	case SGNJ_D: return fpu_sgnj_d(a, b, 0);
	case SGNJN_D: return fpu_sgnj_d(a, b, 1);
	case SGNJX_D: return fpu_sgnj_d(a, b, 2);
	case EQ_D: return fpu_cmp_d(a, b, CMP_EQ, fl);
	case LT_D: return fpu_cmp_d(a, b, CMP_LT, fl);
	case LE_D: return fpu_cmp_d(a, b, CMP_LE, fl);
	case CLASS_D: return fpu_class_d(a);
	case W_D: return fpu_d_to_int(a, INT_W, rm, fl);
	case WU_D: return fpu_d_to_int(a, INT_WU, rm, fl);
	case L_D: return fpu_d_to_int(a, INT_L, rm, fl);
	case LU_D: return fpu_d_to_int(a, INT_LU, rm, fl);
	case D_W: return fpu_int_to_d(a, INT_W, rm, fl);
	case D_WU: return fpu_int_to_d(a, INT_WU, rm, fl);
	case D_L: return fpu_int_to_d(a, INT_L, rm, fl);
	case D_LU: return fpu_int_to_d(a, INT_LU, rm, fl);
	case S_D: return fpu_d_to_s(a, rm, fl);
	case D_S: return fpu_s_to_d(a, fl);
	}
	return 0;
}

struct tc {
	int line;
	enum top op;
	int rm;
	uint64_t a, b, c;
	uint64_t want;
	uint32_t flags;
};

#define T(op, rm, a, b, c, want, fl) { __LINE__, op, rm, a, b, c, want, fl }
/* The same case in every rounding mode. */
#define T5(op, a, b, c, want, fl)                                                           \
	T(op, RM_RNE, a, b, c, want, fl), T(op, RM_RTZ, a, b, c, want, fl),                 \
	T(op, RM_RDN, a, b, c, want, fl), T(op, RM_RUP, a, b, c, want, fl),                 \
	T(op, RM_RMM, a, b, c, want, fl)
/* One case with a result per mode, in the order RNE RTZ RDN RUP RMM. */
#define TM(op, a, b, c, w0, w1, w2, w3, w4, fl)                                             \
	T(op, RM_RNE, a, b, c, w0, fl), T(op, RM_RTZ, a, b, c, w1, fl),                     \
	T(op, RM_RDN, a, b, c, w2, fl), T(op, RM_RUP, a, b, c, w3, fl),                     \
	T(op, RM_RMM, a, b, c, w4, fl)

static void run_table(struct check_counts *c)
{
	/* Automatic, not static: D() and S() are not constant expressions. */
	const struct tc cases[] = {
	/* --- NaN-boxing (spec "NaN Boxing of Narrower Values") --- */
	T5(ADD_S, 0x000000003f800000ull, S(1.0f), 0, SQNAN, 0),  /* unboxed = canonical qNaN */
	T5(ADD_S, 0xffffffff3f800000ull, S(1.0f), 0, S(2.0f), 0),
	T5(ADD_S, 0xfffffffe3f800000ull, S(1.0f), 0, SQNAN, 0),
	T5(CLASS_S, 0x7fffffff3f800000ull, 0, 0, 1u << 9, 0),
	T5(SGNJN_S, 0x0ull, S(1.0f), 0, SB(0xffc00000u), 0),      /* canonical NaN, sign injected */
	T5(SGNJ_S, S(-2.0f), 0x3f800000ull, 0, S(2.0f), 0),       /* rs2 unboxed: +qNaN's sign */
	T5(MIN_S, 0x12345678ull, S(-3.0f), 0, S(-3.0f), 0),
	T5(EQ_S, 0x3f800000ull, 0x3f800000ull, 0, 0, 0),          /* two quiet NaNs, no NV */
	T5(LT_S, 0x3f800000ull, S(1.0f), 0, 0, NV),
	T5(D_S, 0x3f800000ull, 0, 0, DQNAN, 0),
	T5(W_S, 0x3f800000ull, 0, 0, 0x7fffffff, NV),
	T5(S_D, D(1.5), 0, 0, S(1.5f), 0),                         /* results are boxed */
	T5(S_W, 7, 0, 0, S(7.0f), 0),

	/* --- canonical NaN results, signalling NaNs --- */
	T5(ADD_D, 0x7ff8dead00000000ull, D(1.0), 0, DQNAN, 0),
	T5(ADD_D, 0xfff8000000000000ull, D(1.0), 0, DQNAN, 0),
	T5(ADD_D, DSNAN, D(1.0), 0, DQNAN, NV),
	T5(MUL_D, D(1.0), 0xfff4000000000000ull, 0, DQNAN, NV),
	T5(ADD_S, SB(0x7fc0beefu), S(1.0f), 0, SQNAN, 0),
	T5(DIV_S, SSNAN, S(1.0f), 0, SQNAN, NV),
	T5(SQRT_D, DSNAN, 0, 0, DQNAN, NV),
	T5(SUB_D, DINF, DINF, 0, DQNAN, NV),
	T5(ADD_D, DINF, DNINF, 0, DQNAN, NV),
	T5(ADD_S, SINF, SNINF, 0, SQNAN, NV),
	T5(MUL_D, DINF, 0, 0, DQNAN, NV),
	T5(MUL_S, SNZERO, SNINF, 0, SQNAN, NV),
	T5(DIV_D, 0, DNZERO, 0, DQNAN, NV),
	T5(DIV_D, DINF, DNINF, 0, DQNAN, NV),
	T5(DIV_S, S(0.0f), S(0.0f), 0, SQNAN, NV),
	T5(S_D, DSNAN, 0, 0, SQNAN, NV),
	T5(S_D, 0x7ff8000000000123ull, 0, 0, SQNAN, 0),
	T5(D_S, SSNAN, 0, 0, DQNAN, NV),
	T5(D_S, SB(0xffc00001u), 0, 0, DQNAN, 0),

	/* --- division by zero, square roots --- */
	T5(DIV_D, D(1.0), 0, 0, DINF, DZ),
	T5(DIV_D, D(-1.0), 0, 0, DNINF, DZ),
	T5(DIV_D, D(1.0), DNZERO, 0, DNINF, DZ),
	T5(DIV_S, S(-0x1p-149f), S(0.0f), 0, SNINF, DZ),
	T5(DIV_D, DINF, 0, 0, DINF, 0),                            /* no DZ for inf / 0 */
	T5(DIV_D, D(1.0), DINF, 0, 0, 0),
	T5(SQRT_D, D(-1.0), 0, 0, DQNAN, NV),
	T5(SQRT_D, DNINF, 0, 0, DQNAN, NV),
	T5(SQRT_S, S(-0x1p-149f), 0, 0, SQNAN, NV),
	T5(SQRT_D, DNZERO, 0, 0, DNZERO, 0),
	T5(SQRT_S, SNZERO, 0, 0, SNZERO, 0),
	T5(SQRT_D, DINF, 0, 0, DINF, 0),
	T5(SQRT_D, D(0x1p-1074), 0, 0, D(0x1p-537), 0),
	T5(SQRT_S, S(2.25f), 0, 0, S(1.5f), 0),
	TM(SQRT_D, D(2.0), 0, 0, D(0x1.6a09e667f3bcdp+0), D(0x1.6a09e667f3bccp+0),
	   D(0x1.6a09e667f3bccp+0), D(0x1.6a09e667f3bcdp+0), D(0x1.6a09e667f3bcdp+0), NX),
	TM(SQRT_S, S(2.0f), 0, 0, S(0x1.6a09e6p+0f), S(0x1.6a09e6p+0f), S(0x1.6a09e6p+0f),
	   S(0x1.6a09e8p+0f), S(0x1.6a09e6p+0f), NX),

	/* --- signed zeros --- */
	TM(ADD_D, D(1.0), D(-1.0), 0, 0, 0, DNZERO, 0, 0, 0),
	TM(SUB_S, S(3.0f), S(3.0f), 0, S(0.0f), S(0.0f), SNZERO, S(0.0f), S(0.0f), 0),
	TM(ADD_D, 0, DNZERO, 0, 0, 0, DNZERO, 0, 0, 0),
	T5(ADD_D, DNZERO, DNZERO, 0, DNZERO, 0),
	T5(MUL_D, DNZERO, D(5.0), 0, DNZERO, 0),
	T5(DIV_S, S(0.0f), S(-5.0f), 0, SNZERO, 0),
	TM(MADD_D, D(1.0), D(1.0), D(-1.0), 0, 0, DNZERO, 0, 0, 0),
	T5(MADD_D, DNZERO, D(1.0), DNZERO, DNZERO, 0),             /* -0 + -0 */
	TM(MADD_D, DNZERO, D(1.0), 0, 0, 0, DNZERO, 0, 0, 0),      /* -0 + +0 */
	T5(NMADD_D, 0, D(1.0), 0, DNZERO, 0),                      /* -(+0) - (+0) = -0 */
	TM(NMSUB_D, 0, D(1.0), 0, 0, 0, DNZERO, 0, 0, 0),          /* -(+0) + (+0) */
	TM(MSUB_S, S(0.0f), S(1.0f), S(0.0f), S(0.0f), S(0.0f), SNZERO, S(0.0f), S(0.0f), 0),

	/* --- overflow in each mode --- */
	TM(MUL_D, DMAX, D(2.0), 0, DINF, DMAX, DMAX, DINF, DINF, OF | NX),
	TM(MUL_D, DMAX, D(-2.0), 0, DNINF, DMAX | DNZERO, DNINF, DMAX | DNZERO, DNINF, OF | NX),
	TM(ADD_S, SMAX, SMAX, 0, SINF, SMAX, SMAX, SINF, SINF, OF | NX),
	TM(DIV_S, S(-0x1p127f), S(0x1p-2f), 0, SNINF, SB(0xff7fffffu), SNINF, SB(0xff7fffffu),
	   SNINF, OF | NX),
	/* max + half an ulp: a tie that rounds (to even / away) to 2^1024 */
	T(ADD_D, RM_RNE, DMAX, D(0x1p970), 0, DINF, OF | NX),
	T(ADD_D, RM_RMM, DMAX, D(0x1p970), 0, DINF, OF | NX),
	T(ADD_D, RM_RTZ, DMAX, D(0x1p970), 0, DMAX, NX),
	T(ADD_D, RM_RDN, DMAX, D(0x1p970), 0, DMAX, NX),
	T(ADD_D, RM_RUP, DMAX, D(0x1p970), 0, DINF, OF | NX),
	/* just below that tie: RNE/RMM round down, no overflow */
	T(ADD_D, RM_RNE, DMAX, D(0x1.fffffffffffffp969), 0, DMAX, NX),
	T(ADD_D, RM_RMM, DMAX, D(0x1.fffffffffffffp969), 0, DMAX, NX),
	TM(S_D, D(0x1p200), 0, 0, SINF, SMAX, SMAX, SINF, SINF, OF | NX),
	/* -(max + half an ulp): overflows only where it rounds away from zero */
	T(S_D, RM_RNE, D(-0x1.ffffffp127), 0, 0, SNINF, OF | NX),
	T(S_D, RM_RMM, D(-0x1.ffffffp127), 0, 0, SNINF, OF | NX),
	T(S_D, RM_RDN, D(-0x1.ffffffp127), 0, 0, SNINF, OF | NX),
	T(S_D, RM_RTZ, D(-0x1.ffffffp127), 0, 0, SB(0xff7fffffu), NX),
	T(S_D, RM_RUP, D(-0x1.ffffffp127), 0, 0, SB(0xff7fffffu), NX),
	TM(S_LU, ~0ull, 0, 0, S(0x1p64f), S(0x1.fffffep63f), S(0x1.fffffep63f), S(0x1p64f),
	   S(0x1p64f), NX),

	/* --- underflow: tininess after rounding, UF only when also inexact --- */
	T5(MUL_D, DMIN, D(0.5), 0, D(0x1p-1023), 0),               /* exact subnormal: no UF */
	T5(MUL_S, SMIN, S(0x1p-23f), 0, SSUB1, 0),
	TM(MUL_D, DSUB1, D(0.5), 0, 0, 0, 0, DSUB1, DSUB1, UF | NX), /* tie at 2^-1075 */
	TM(MUL_D, DSUB1, D(-0.5), 0, DNZERO, DNZERO, DSUB1 | DNZERO, DNZERO, DSUB1 | DNZERO,
	   UF | NX),
	TM(MUL_S, SSUB1, S(0.75f), 0, SSUB1, S(0.0f), S(0.0f), SSUB1, SSUB1, UF | NX),
	TM(MUL_S, SSUB1, S(0.25f), 0, S(0.0f), S(0.0f), S(0.0f), SSUB1, S(0.0f), UF | NX),
	TM(MUL_D, D(0x3p-1074), D(0.5), 0, D(0x2p-1074), DSUB1, DSUB1, D(0x2p-1074),
	   D(0x2p-1074), UF | NX),
	/* 2^-126 * (1 - 2^-24): rounded to float it is 2^-126 (normal), but with an
	 * unbounded exponent it is exact and tiny, so UF is raised (after rounding). */
	TM(S_D, D(0x1.fffffep-127), 0, 0, SMIN, SB(0x007fffffu), SB(0x007fffffu), SMIN, SMIN,
	   UF | NX),
	/* 2^-126 * (1 - 2^-25): rounds to 2^-126 even with unbounded exponent: not tiny
	 * for RNE/RMM/RUP; RTZ/RDN give the largest subnormal, which is tiny. */
	T(S_D, RM_RNE, D(0x1.ffffffp-127), 0, 0, SMIN, NX),
	T(S_D, RM_RMM, D(0x1.ffffffp-127), 0, 0, SMIN, NX),
	T(S_D, RM_RUP, D(0x1.ffffffp-127), 0, 0, SMIN, NX),
	T(S_D, RM_RTZ, D(0x1.ffffffp-127), 0, 0, SB(0x007fffffu), UF | NX),
	T(S_D, RM_RDN, D(0x1.ffffffp-127), 0, 0, SB(0x007fffffu), UF | NX),
	/* the same boundaries in double: 2^-1022 * (1 - 2^-53) is exact and tiny
	 * with an unbounded exponent but rounds to 2^-1022; 2^-1022 * (1 - 2^-104)
	 * rounds to 2^-1022 even with an unbounded exponent. */
	TM(MUL_D, DMIN, D(0x1.fffffffffffffp-1), 0, DMIN, D(0x0.fffffffffffffp-1022),
	   D(0x0.fffffffffffffp-1022), DMIN, DMIN, UF | NX),
	T(MUL_D, RM_RNE, D(0x1.0000000000001p-511), D(0x1.ffffffffffffep-512), 0, DMIN, NX),
	T(MUL_D, RM_RMM, D(0x1.0000000000001p-511), D(0x1.ffffffffffffep-512), 0, DMIN, NX),
	T(MUL_D, RM_RUP, D(0x1.0000000000001p-511), D(0x1.ffffffffffffep-512), 0, DMIN, NX),
	T(MUL_D, RM_RTZ, D(0x1.0000000000001p-511), D(0x1.ffffffffffffep-512), 0,
	  D(0x0.fffffffffffffp-1022), UF | NX),
	T(MUL_D, RM_RDN, D(-0x1.0000000000001p-511), D(0x1.ffffffffffffep-512), 0, DMIN | DNZERO,
	  NX),
	T(MUL_D, RM_RUP, D(-0x1.0000000000001p-511), D(0x1.ffffffffffffep-512), 0,
	  D(-0x0.fffffffffffffp-1022), UF | NX),
	T(MADD_D, RM_RNE, DMIN, D(0x1.fffffffffffffp-1), D(-0x1p-1074), D(0x0.ffffffffffffep-1022),
	  UF | NX),
	T5(ADD_D, DMIN, D(-0x1p-1074), 0, D(0x0.fffffffffffffp-1022), 0), /* exact: no UF */
	TM(DIV_D, DSUB1, D(4.0), 0, 0, 0, 0, DSUB1, 0, UF | NX),
	TM(DIV_D, D(0x3p-1074), D(2.0), 0, D(0x2p-1074), DSUB1, DSUB1, D(0x2p-1074),
	   D(0x2p-1074), UF | NX),

	/* --- rounding ties: RNE to even, RMM away from zero --- */
	TM(ADD_D, D(1.0), D(0x1p-53), 0, D(1.0), D(1.0), D(1.0), D(0x1.0000000000001p0),
	   D(0x1.0000000000001p0), NX),
	TM(ADD_D, D(-1.0), D(-0x1p-53), 0, D(-1.0), D(-1.0), D(-0x1.0000000000001p0), D(-1.0),
	   D(-0x1.0000000000001p0), NX),
	TM(ADD_D, D(0x1.0000000000001p0), D(0x1p-53), 0, D(0x1.0000000000002p0),
	   D(0x1.0000000000001p0), D(0x1.0000000000001p0), D(0x1.0000000000002p0),
	   D(0x1.0000000000002p0), NX),
	TM(SUB_D, D(1.0), D(0x1p-54), 0, D(1.0), D(0x1.fffffffffffffp-1),
	   D(0x1.fffffffffffffp-1), D(1.0), D(1.0), NX),
	TM(ADD_S, S(1.0f), S(0x1p-24f), 0, S(1.0f), S(1.0f), S(1.0f), S(0x1.000002p0f),
	   S(0x1.000002p0f), NX),
	TM(MUL_S, S(0x1.000002p0f), S(0x1.8p0f), 0, S(0x1.800004p0f), S(0x1.800002p0f),
	   S(0x1.800002p0f), S(0x1.800004p0f), S(0x1.800004p0f), NX),
	TM(MUL_D, D(0x1.0000000000001p0), D(0x1.8p0), 0, D(0x1.8000000000002p0),
	   D(0x1.8000000000001p0), D(0x1.8000000000001p0), D(0x1.8000000000002p0),
	   D(0x1.8000000000002p0), NX),
	TM(MUL_D, D(0x1.0000000000003p0), D(-0x1.8p0), 0, D(-0x1.8000000000004p0),
	   D(-0x1.8000000000004p0), D(-0x1.8000000000005p0), D(-0x1.8000000000004p0),
	   D(-0x1.8000000000005p0), NX),
	TM(S_W, 0x1000001, 0, 0, S(0x1p24f), S(0x1p24f), S(0x1p24f), S(0x1.000002p24f),
	   S(0x1.000002p24f), NX),
	TM(S_W, -0x1000001ull, 0, 0, S(-0x1p24f), S(-0x1p24f), S(-0x1.000002p24f), S(-0x1p24f),
	   S(-0x1.000002p24f), NX),
	TM(D_L, 0x20000000000001ull, 0, 0, D(0x1p53), D(0x1p53), D(0x1p53),
	   D(0x1.0000000000001p53), D(0x1.0000000000001p53), NX),
	TM(D_LU, 0x8000000000000400ull, 0, 0, D(0x1p63), D(0x1p63), D(0x1p63),
	   D(0x1.0000000000001p63), D(0x1.0000000000001p63), NX),
	TM(S_D, D(0x1.0000010000000p0), 0, 0, S(1.0f), S(1.0f), S(1.0f), S(0x1.000002p0f),
	   S(0x1.000002p0f), NX),

	/* --- FMA: one rounding; inf * 0 is invalid even with a quiet NaN addend --- */
	T5(MADD_D, D(0x1.00000004p0), D(0x1.fffffff8p-1), D(-1.0), D(-0x1p-60), 0),
	TM(MADD_S, S(0x1.002p0f), S(0x1.ffcp-1f), S(-1.0f), S(-0x1p-22f), S(-0x1p-22f),
	   S(-0x1p-22f), S(-0x1p-22f), S(-0x1p-22f), 0),
	T5(MADD_D, DINF, 0, DQNAN, DQNAN, NV),
	T5(MADD_D, 0, DNINF, 0x7ff8000000000005ull, DQNAN, NV),
	T5(NMADD_S, SINF, S(0.0f), SQNAN, SQNAN, NV),
	T5(MSUB_S, S(0.0f), SNINF, S(1.0f), SQNAN, NV),
	T5(MADD_D, D(1.0), D(2.0), DQNAN, DQNAN, 0),
	T5(MADD_D, D(1.0), D(2.0), DSNAN, DQNAN, NV),
	T5(MADD_S, SSNAN, S(0.0f), SINF, SQNAN, NV),
	T5(MADD_D, DINF, D(1.0), DNINF, DQNAN, NV),
	T5(MSUB_D, DINF, D(1.0), DINF, DQNAN, NV),
	T5(NMADD_D, DINF, D(1.0), DNINF, DQNAN, NV),
	T5(NMADD_D, DINF, D(1.0), DINF, DNINF, 0),
	T5(NMSUB_D, DINF, D(1.0), DINF, DQNAN, NV),
	T5(MADD_D, D(1.0), D(2.0), DNINF, DNINF, 0),
	T5(MADD_D, D(3.0), D(2.0), D(1.0), D(7.0), 0),
	T5(MSUB_D, D(3.0), D(2.0), D(1.0), D(5.0), 0),
	T5(NMSUB_D, D(3.0), D(2.0), D(1.0), D(-5.0), 0),
	T5(NMADD_D, D(3.0), D(2.0), D(1.0), D(-7.0), 0),
	T5(NMADD_S, S(3.0f), S(2.0f), S(1.0f), S(-7.0f), 0),
	TM(MADD_D, DMAX, D(2.0), DNINF, DNINF, DNINF, DNINF, DNINF, DNINF, 0),
	T5(MADD_D, DMAX, D(2.0), DMAX | DNZERO, DMAX, 0),          /* product beyond range */
	TM(MADD_D, DMAX, D(2.0), D(1.0), DINF, DMAX, DMAX, DINF, DINF, OF | NX),
	TM(MADD_D, DSUB1, D(0.5), 0, 0, 0, 0, DSUB1, DSUB1, UF | NX),

	/* --- FMIN/FMAX (2.2 semantics: IEEE 754-2019 minimumNumber/maximumNumber) --- */
	T5(MIN_D, DNZERO, 0, 0, DNZERO, 0),
	T5(MIN_D, 0, DNZERO, 0, DNZERO, 0),
	T5(MAX_D, DNZERO, 0, 0, 0, 0),
	T5(MAX_S, SNZERO, S(0.0f), 0, S(0.0f), 0),
	T5(MIN_S, S(0.0f), SNZERO, 0, SNZERO, 0),
	T5(MIN_D, DQNAN, D(1.0), 0, D(1.0), 0),
	T5(MAX_D, D(-1.0), 0xfff8000000000001ull, 0, D(-1.0), 0),
	T5(MIN_D, DSNAN, D(1.0), 0, D(1.0), NV),
	T5(MAX_S, S(2.0f), SSNAN, 0, S(2.0f), NV),
	T5(MIN_D, DQNAN, DQNAN, 0, DQNAN, 0),
	T5(MIN_D, 0x7ff8000000000badull, 0xfff8000000000001ull, 0, DQNAN, 0),
	T5(MAX_D, DSNAN, DQNAN, 0, DQNAN, NV),
	T5(MAX_S, SSNAN, SSNAN, 0, SQNAN, NV),
	T5(MIN_D, DNINF, DMAX, 0, DNINF, 0),
	T5(MAX_D, DNINF, D(-0x1p-1074), 0, D(-0x1p-1074), 0),
	T5(MIN_S, S(-1.0f), S(-2.0f), 0, S(-2.0f), 0),
	T5(MAX_S, S(-1.0f), S(-2.0f), 0, S(-1.0f), 0),
	T5(MIN_D, D(1.0), D(2.0), 0, D(1.0), 0),

	/* --- compare: FEQ quiet, FLT/FLE signalling --- */
	T5(EQ_D, DQNAN, D(1.0), 0, 0, 0),
	T5(EQ_D, DQNAN, DQNAN, 0, 0, 0),
	T5(EQ_D, DSNAN, D(1.0), 0, 0, NV),
	T5(EQ_S, S(1.0f), SSNAN, 0, 0, NV),
	T5(LT_D, DQNAN, D(1.0), 0, 0, NV),
	T5(LE_S, S(1.0f), SQNAN, 0, 0, NV),
	T5(LE_D, DSNAN, DSNAN, 0, 0, NV),
	T5(EQ_D, DNZERO, 0, 0, 1, 0),
	T5(LE_D, DNZERO, 0, 0, 1, 0),
	T5(LE_D, 0, DNZERO, 0, 1, 0),
	T5(LT_D, DNZERO, 0, 0, 0, 0),
	T5(LT_S, S(-2.0f), S(-1.0f), 0, 1, 0),
	T5(LT_S, S(-1.0f), S(-2.0f), 0, 0, 0),
	T5(LT_D, DNINF, DINF, 0, 1, 0),
	T5(LE_D, DINF, DINF, 0, 1, 0),
	T5(LT_D, DINF, DINF, 0, 0, 0),
	T5(EQ_S, S(0x1p-149f), S(0x1p-149f), 0, 1, 0),
	T5(LT_D, D(-0x1p-1074), DNZERO, 0, 1, 0),

	/* --- FCLASS, all ten classes --- */
	T5(CLASS_D, DNINF, 0, 0, 1u << 0, 0),
	T5(CLASS_D, D(-1.0), 0, 0, 1u << 1, 0),
	T5(CLASS_D, D(-0x1p-1074), 0, 0, 1u << 2, 0),
	T5(CLASS_D, DNZERO, 0, 0, 1u << 3, 0),
	T5(CLASS_D, 0, 0, 0, 1u << 4, 0),
	T5(CLASS_D, D(0x0.fffffffffffffp-1022), 0, 0, 1u << 5, 0),
	T5(CLASS_D, DMIN, 0, 0, 1u << 6, 0),
	T5(CLASS_D, DINF, 0, 0, 1u << 7, 0),
	T5(CLASS_D, DSNAN, 0, 0, 1u << 8, 0),
	T5(CLASS_D, 0xfff7ffffffffffffull, 0, 0, 1u << 8, 0),
	T5(CLASS_D, DQNAN, 0, 0, 1u << 9, 0),
	T5(CLASS_D, 0xffffffffffffffffull, 0, 0, 1u << 9, 0),
	T5(CLASS_S, SNINF, 0, 0, 1u << 0, 0),
	T5(CLASS_S, S(-3.0f), 0, 0, 1u << 1, 0),
	T5(CLASS_S, SB(0x807fffffu), 0, 0, 1u << 2, 0),
	T5(CLASS_S, SNZERO, 0, 0, 1u << 3, 0),
	T5(CLASS_S, S(0.0f), 0, 0, 1u << 4, 0),
	T5(CLASS_S, SSUB1, 0, 0, 1u << 5, 0),
	T5(CLASS_S, SMAX, 0, 0, 1u << 6, 0),
	T5(CLASS_S, SINF, 0, 0, 1u << 7, 0),
	T5(CLASS_S, SSNAN, 0, 0, 1u << 8, 0),
	T5(CLASS_S, SQNAN, 0, 0, 1u << 9, 0),

	/* --- sign injection --- */
	T5(SGNJ_D, D(1.0), D(-2.0), 0, D(-1.0), 0),
	T5(SGNJN_D, D(1.0), D(-2.0), 0, D(1.0), 0),
	T5(SGNJX_D, D(-1.0), D(-2.0), 0, D(1.0), 0),
	T5(SGNJ_D, DSNAN, DNZERO, 0, DSNAN | DNZERO, 0),          /* no canonicalization */
	T5(SGNJX_S, S(-1.0f), S(2.0f), 0, S(-1.0f), 0),
	T5(SGNJN_S, SSNAN, SSNAN, 0, SB(0xff800001u), 0),

	/* --- float -> integer: rounding, NX, saturation with NV (spec table) --- */
	TM(W_D, D(2.5), 0, 0, 2, 2, 2, 3, 3, NX),
	TM(W_D, D(-2.5), 0, 0, -2ull, -2ull, -3ull, -2ull, -3ull, NX),
	TM(L_S, S(0.5f), 0, 0, 0, 0, 0, 1, 1, NX),
	TM(L_S, S(-0.5f), 0, 0, 0, 0, -1ull, 0, -1ull, NX),
	TM(W_S, S(1.5f), 0, 0, 2, 1, 1, 2, 2, NX),
	TM(LU_D, D(0x1.8p-1), 0, 0, 1, 0, 0, 1, 1, NX),
	TM(W_D, D(0x1p-1074), 0, 0, 0, 0, 0, 1, 0, NX),
	TM(W_D, D(-0x1p-1074), 0, 0, 0, 0, -1ull, 0, 0, NX),
	T5(W_D, DNZERO, 0, 0, 0, 0),
	T5(WU_D, DNZERO, 0, 0, 0, 0),
	T5(W_D, D(0x1p31), 0, 0, 0x7fffffff, NV),
	T5(W_D, D(-0x1p31), 0, 0, 0xffffffff80000000ull, 0),
	T5(W_D, D(-0x1.00000002p31), 0, 0, 0xffffffff80000000ull, NV), /* -2^31 - 1 */
	T(W_D, RM_RNE, D(-0x1.00000001p31), 0, 0, 0xffffffff80000000ull, NX), /* -2^31 - .5 */
	T(W_D, RM_RTZ, D(-0x1.00000001p31), 0, 0, 0xffffffff80000000ull, NX),
	T(W_D, RM_RUP, D(-0x1.00000001p31), 0, 0, 0xffffffff80000000ull, NX),
	T(W_D, RM_RDN, D(-0x1.00000001p31), 0, 0, 0xffffffff80000000ull, NV),
	T(W_D, RM_RMM, D(-0x1.00000001p31), 0, 0, 0xffffffff80000000ull, NV),
	TM(W_D, D(0x1.fffffffcp30), 0, 0, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff,
	   0x7fffffff, 0),                                          /* 2^31 - 1 exactly */
	T(W_D, RM_RNE, D(0x1.fffffffep30), 0, 0, 0x7fffffff, NV),   /* 2^31 - 0.5 -> 2^31 */
	T(W_D, RM_RMM, D(0x1.fffffffep30), 0, 0, 0x7fffffff, NV),
	T(W_D, RM_RUP, D(0x1.fffffffep30), 0, 0, 0x7fffffff, NV),
	T(W_D, RM_RTZ, D(0x1.fffffffep30), 0, 0, 0x7fffffff, NX),
	T(W_D, RM_RDN, D(0x1.fffffffep30), 0, 0, 0x7fffffff, NX),
	T5(W_D, DINF, 0, 0, 0x7fffffff, NV),
	T5(W_D, DNINF, 0, 0, 0xffffffff80000000ull, NV),
	T5(W_D, DQNAN, 0, 0, 0x7fffffff, NV),
	T5(W_D, 0xfff8000000000000ull, 0, 0, 0x7fffffff, NV),       /* NaN: max even if negative */
	T5(W_S, SSNAN, 0, 0, 0x7fffffff, NV),
	T5(WU_D, DQNAN, 0, 0, ~0ull, NV),                           /* 2^32-1, sign-extended */
	T5(WU_D, DINF, 0, 0, ~0ull, NV),
	T5(WU_D, DNINF, 0, 0, 0, NV),
	T5(WU_D, D(-1.0), 0, 0, 0, NV),
	T(WU_D, RM_RNE, D(-0.5), 0, 0, 0, NX),                     /* rounds to -0: in range */
	T(WU_D, RM_RTZ, D(-0.5), 0, 0, 0, NX),
	T(WU_D, RM_RUP, D(-0.5), 0, 0, 0, NX),
	T(WU_D, RM_RDN, D(-0.5), 0, 0, 0, NV),                     /* rounds to -1 */
	T(WU_D, RM_RMM, D(-0.5), 0, 0, 0, NV),
	T(WU_S, RM_RDN, S(-0.25f), 0, 0, 0, NV),                    /* rounds to -1 */
	T(WU_S, RM_RMM, S(-0.5f), 0, 0, 0, NV),
	T5(WU_D, D(0x1.fffffffep31), 0, 0, ~0ull, 0),               /* 2^32 - 1 */
	T5(WU_D, D(0x1p32), 0, 0, ~0ull, NV),
	T5(WU_S, S(3e9f), 0, 0, 0xffffffffb2d05e00ull, 0),          /* sign-extended WU result */
	T5(WU_S, S(0x1p31f), 0, 0, 0xffffffff80000000ull, 0),
	T5(L_D, DQNAN, 0, 0, 0x7fffffffffffffffull, NV),
	T5(L_D, D(0x1p63), 0, 0, 0x7fffffffffffffffull, NV),
	T5(L_D, D(-0x1p63), 0, 0, 0x8000000000000000ull, 0),
	T5(L_S, S(-0x1.000002p63f), 0, 0, 0x8000000000000000ull, NV),
	T5(L_D, D(0x1.fffffffffffffp62), 0, 0, 0x7ffffffffffffc00ull, 0),
	T5(L_D, DNINF, 0, 0, 0x8000000000000000ull, NV),
	T5(LU_D, DQNAN, 0, 0, ~0ull, NV),
	T5(LU_D, D(0x1.fffffffffffffp63), 0, 0, 0xfffffffffffff800ull, 0),
	T5(LU_D, D(0x1p64), 0, 0, ~0ull, NV),
	T5(LU_S, S(-1.0f), 0, 0, 0, NV),
	T(LU_D, RM_RNE, D(-0x1p-1074), 0, 0, 0, NX),
	T(LU_D, RM_RTZ, D(-0x1p-1074), 0, 0, 0, NX),
	T(LU_D, RM_RUP, D(-0x1p-1074), 0, 0, 0, NX),
	T(LU_D, RM_RMM, D(-0x1p-1074), 0, 0, 0, NX),
	T(LU_D, RM_RDN, D(-0x1p-1074), 0, 0, 0, NV),
	T5(L_D, D(123456789.0), 0, 0, 123456789, 0),
	T5(W_S, S(-7.0f), 0, 0, -7ull, 0),

	/* --- integer -> float --- */
	T5(D_W, 0xdeadbeef80000000ull, 0, 0, D(-0x1p31), 0),        /* upper half ignored */
	T5(D_WU, 0xdeadbeef80000000ull, 0, 0, D(0x1p31), 0),
	T5(D_WU, 0x12345678ffffffffull, 0, 0, D(4294967295.0), 0),
	T5(S_WU, 0xffffffff00000000ull, 0, 0, S(0.0f), 0),
	T5(D_L, 0x8000000000000000ull, 0, 0, D(-0x1p63), 0),
	T5(S_L, 0x8000000000000000ull, 0, 0, S(-0x1p63f), 0),
	T5(D_LU, 0x8000000000000000ull, 0, 0, D(0x1p63), 0),
	T5(D_L, 0, 0, 0, 0, 0),                                      /* +0, never -0 */
	T5(S_W, 0, 0, 0, S(0.0f), 0),
	TM(D_LU, ~0ull, 0, 0, D(0x1p64), D(0x1.fffffffffffffp63), D(0x1.fffffffffffffp63),
	   D(0x1p64), D(0x1p64), NX),
	TM(D_L, 0x7fffffffffffffffull, 0, 0, D(0x1p63), D(0x1.fffffffffffffp62),
	   D(0x1.fffffffffffffp62), D(0x1p63), D(0x1p63), NX),
	TM(S_W, 0x7fffffff, 0, 0, S(0x1p31f), S(0x1.fffffep30f), S(0x1.fffffep30f), S(0x1p31f),
	   S(0x1p31f), NX),
	TM(S_W, 0x80000001, 0, 0, S(-0x1p31f), S(-0x1.fffffep30f), S(-0x1p31f),
	   S(-0x1.fffffep30f), S(-0x1p31f), NX),
	TM(S_WU, 0x1000003, 0, 0, S(0x1.000004p24f), S(0x1.000002p24f), S(0x1.000002p24f),
	   S(0x1.000004p24f), S(0x1.000004p24f), NX),
	TM(D_L, -0x20000000000003ll, 0, 0, D(-0x1.0000000000002p53), D(-0x1.0000000000001p53),
	   D(-0x1.0000000000002p53), D(-0x1.0000000000001p53), D(-0x1.0000000000002p53), NX),

	/* --- format conversions --- */
	T5(D_S, SSUB1, 0, 0, D(0x1p-149), 0),
	T5(D_S, SB(0x807fffffu), 0, 0, D(-0x0.fffffep-126), 0),
	T5(D_S, SNINF, 0, 0, DNINF, 0),
	T5(D_S, SNZERO, 0, 0, DNZERO, 0),
	T5(S_D, DNZERO, 0, 0, SNZERO, 0),
	T5(S_D, DNINF, 0, 0, SNINF, 0),
	T5(S_D, D(0x1p-149), 0, 0, SSUB1, 0),
	TM(S_D, D(0x1p-150), 0, 0, S(0.0f), S(0.0f), S(0.0f), SSUB1, SSUB1, UF | NX),
	TM(S_D, D(-0x1p-1074), 0, 0, SNZERO, SNZERO, SB(0x80000001u), SNZERO, SNZERO, UF | NX),
	TM(S_D, D(0.1), 0, 0, S(0x1.99999ap-4f), S(0x1.999998p-4f), S(0x1.999998p-4f),
	   S(0x1.99999ap-4f), S(0x1.99999ap-4f), NX),
};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tc *t = &cases[i];
		for (int pre = 0; pre < 2; pre++) {
			uint32_t fl = pre ? FFLAG_NX : 0;
			uint64_t r = run(t->op, t->rm, t->a, t->b, t->c, &fl);
			uint32_t want_fl = t->flags | (pre ? FFLAG_NX : 0);
			CHECK(c, r == t->want && fl == want_fl,
			      "line %d rm %d (%s): a=%016llx b=%016llx c=%016llx: got %016llx flags "
			      "%02x, want %016llx flags %02x",
			      t->line, t->rm, pre ? "NX accrued" : "flags clear",
			      (unsigned long long)t->a, (unsigned long long)t->b,
			      (unsigned long long)t->c, (unsigned long long)r, fl,
			      (unsigned long long)t->want, want_fl);
		}
	}
}

int main(void)
{
	struct check_counts c = { 0, 0 };
	run_table(&c);

	/* Flags accumulate: fpu.c only ever ORs into *flags. */
	uint32_t fl = FFLAG_DZ;
	fpu_add_d(D(1.0), D(0x1p-60), RM_RNE, &fl);
	CHECK(&c, fl == (FFLAG_DZ | FFLAG_NX), "flags %02x", fl);
	fl = FFLAG_UF;
	fpu_cmp_d(DQNAN, 0, CMP_LT, &fl);
	CHECK(&c, fl == (FFLAG_UF | FFLAG_NV), "flags %02x", fl);

#if defined(__x86_64__)
	/* The host's MXCSR keeps its default control bits (RNE, all exceptions
	 * masked, no FTZ/DAZ) after an operation in a directed mode. */
	for (int rm = 0; rm <= RM_RMM; rm++) {
		fl = 0;
		fpu_fma_d(D(1.0), D(3.0), D(0x1p-70), FMA_MADD, rm, &fl);
		fpu_div_s(S(1.0f), S(3.0f), rm, &fl);
		fpu_d_to_s(D(0.1), rm, &fl);
		unsigned int csr;
		__asm__ volatile("stmxcsr %0" : "=m"(csr));
		CHECK(&c, (csr & ~0x3fu) == 0x1f80u, "rm %d left MXCSR %08x", rm, csr);
	}
#endif

	/* A rounding mode outside 0..4 (the caller should have rejected it)
	 * must not crash; it behaves as RNE. */
	fl = 0;
	CHECK(&c, fpu_add_d(D(1.0), D(0x1p-53), 7, &fl) == D(1.0) && fl == FFLAG_NX,
	      "rm 7: flags %02x", fl);
	fl = 0;
	CHECK(&c, fpu_d_to_int(D(2.5), INT_W, 6, &fl) == 2 && fl == FFLAG_NX, "rm 6: flags %02x",
	      fl);

	return check_summary(&c);
}

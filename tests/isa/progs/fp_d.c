/*
 * D extension (unprivileged spec ch. 12): every double-precision
 * instruction, on operands covering zeros, subnormals, normals near the
 * extremes, infinities, quiet and signalling NaNs with payloads and the
 * integer conversion boundaries; every rounding mode static and dynamic;
 * conversions to integers at and past their saturation points; fcvt.d.s of
 * improperly NaN-boxed singles. Results are raw register bits and flags.
 */
#include "fp_template.h"

static const u64 full[] = {
	0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull,
	0xbff0000000000000ull, 0x3ff8000000000000ull, 0x4004000000000000ull,
	0xc004000000000000ull, 0x3fe0000000000000ull, 0xbfe0000000000000ull,
	0x3fb999999999999aull, 0x3fd5555555555555ull, 0x4008000000000000ull,
	0x7fefffffffffffffull, 0xffefffffffffffffull, 0x0010000000000000ull,
	0x000fffffffffffffull, 0x0000000000000001ull, 0x8000000000000001ull,
	0x0018000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull,
	0x7ff8000000000000ull, 0xfff8000000000000ull, 0x7ff0000000000001ull,
	0x7ff4000000012345ull, 0x7ff8000000012345ull, 0x4340000000000001ull,
	0x7e37e43c8800759cull, 0x01a56e1fc2f8f359ull, 0xc3e0000000000000ull,
	0x43e0000000000000ull, 0x43f0000000000000ull, 0x41e0000000000000ull,
	0xc1e0000000200000ull, 0x41effffffff00000ull, 0x41dfffffffe00000ull,
	0xc1e0000000100000ull, 0x43dfffffffffffffull, 0xbff0000000000001ull,
	0x3ff0000000000001ull,
};

static const u64 red[] = {
	0x3fb999999999999aull, 0xbfb999999999999aull, 0x3fd5555555555555ull,
	0x3ff8000000000000ull, 0xc004000000000000ull, 0x3fe0000000000000ull,
	0x7fefffffffffffffull, 0x0000000000000001ull, 0x0010000000000001ull,
	0x41effffffff00000ull, 0xc1e0000000100000ull, 0x7ff0000000000001ull,
	0x3fefffffffffffffull, /* 1 - ulp: products just below the normal range */
};

static const u64 tern[] = {
	0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull,
	0xbff0000000000000ull, 0x3fb999999999999aull, 0x7fefffffffffffffull,
	0x0000000000000001ull, 0x0010000000000000ull, 0x7ff0000000000000ull,
	0xfff0000000000000ull, 0x7ff8000000000000ull, 0x7ff0000000000001ull,
	0x4008000000000000ull,
};

static const u64 tern_red[] = {
	0x3fb999999999999aull, 0xbfd5555555555555ull, 0x7fefffffffffffffull,
	0x0010000000000000ull, 0x3ff0000000000001ull,
	0x3ff0000000000000ull, 0xbff0000000000000ull, /* exact zero sums: sign by mode */
};

#define OPS(X1, XRM)                                        \
	XRM(K_FFF, fadd, "fadd.d")                          \
	XRM(K_FFF, fsub, "fsub.d")                          \
	XRM(K_FFF, fmul, "fmul.d")                          \
	XRM(K_FFF, fdiv, "fdiv.d")                          \
	XRM(K_FF, fsqrt, "fsqrt.d")                         \
	X1(K_FFF, fmin, "fmin.d")                           \
	X1(K_FFF, fmax, "fmax.d")                           \
	X1(K_FFF, fsgnj, "fsgnj.d")                         \
	X1(K_FFF, fsgnjn, "fsgnjn.d")                       \
	X1(K_FFF, fsgnjx, "fsgnjx.d")                       \
	X1(K_XFF, feq, "feq.d")                             \
	X1(K_XFF, flt, "flt.d")                             \
	X1(K_XFF, fle, "fle.d")                             \
	X1(K_XF, fclass, "fclass.d")                        \
	X1(K_XF, fmvxd, "fmv.x.d")                          \
	X1(K_FX, fmvdx, "fmv.d.x")                          \
	XRM(K_FFFF, fmadd, "fmadd.d")                       \
	XRM(K_FFFF, fmsub, "fmsub.d")                       \
	XRM(K_FFFF, fnmsub, "fnmsub.d")                     \
	XRM(K_FFFF, fnmadd, "fnmadd.d")                     \
	XRM(K_XF, fcvtwd, "fcvt.w.d")                       \
	XRM(K_XF, fcvtwud, "fcvt.wu.d")                     \
	XRM(K_XF, fcvtld, "fcvt.l.d")                       \
	XRM(K_XF, fcvtlud, "fcvt.lu.d")                     \
	X1(K_FX, fcvtdw, "fcvt.d.w")                        \
	X1(K_FX, fcvtdwu, "fcvt.d.wu")                      \
	XRM(K_FX, fcvtdl, "fcvt.d.l")                       \
	XRM(K_FX, fcvtdlu, "fcvt.d.lu")                     \
	XRM(K_FF, fcvtsd, "fcvt.s.d")

/* Single operands (register contents) for fcvt.d.s. */
#define S(x) (0xffffffff00000000ull | (u64)(x))
static const u64 svals[] = {
	S(0x00000000), S(0x80000000), S(0x3f800000), S(0x3dcccccd), S(0x7f7fffff),
	S(0x00000001), S(0x807fffff), S(0x7f800000), S(0xff800000), S(0x7fc00000),
	S(0x7f800001), S(0xffa00001), S(0x7fc12345),
	0x000000003f800000ull, 0x7ff8000000000000ull, 0xfffffffe40400000ull,
};

#define D_FF_DEF(kind, fn, insn) DEF_1(D_##kind, fn, insn)
#define D_RM_DEF(kind, fn, insn) DEF_RM(D_##kind, fn, insn)
OPS(D_FF_DEF, D_RM_DEF)
DEF_1(D_K_FF, fcvtds, "fcvt.d.s")

static const struct fop ops[] = { OPS(TAB_1, TAB_RM) };
static const struct fop widen[] = { TAB_1(K_FF, fcvtds, "fcvt.d.s") };

int main(void)
{
	struct fsets s = { full, N_ELEMS(full), red, N_ELEMS(red), tern, N_ELEMS(tern),
			   tern_red, N_ELEMS(tern_red) };
	fp_run(ops, N_ELEMS(ops), &s);
	struct fsets w = { svals, N_ELEMS(svals), svals, N_ELEMS(svals), NULL, 0, NULL, 0 };
	fp_run(widen, N_ELEMS(widen), &w);
	done();
	return 0;
}

/*
 * F extension (unprivileged spec ch. 11): every single-precision
 * instruction, on operands covering zeros, subnormals, normals near the
 * extremes, infinities, quiet and signalling NaNs with payloads, and
 * improperly NaN-boxed register values (spec 12.2: such inputs are the
 * canonical NaN); every rounding mode static and dynamic; conversions to
 * integers at and past their saturation points. Results are printed as raw
 * 64-bit register contents with the accrued flags.
 */
#include "fp_template.h"

#define S(x) (0xffffffff00000000ull | (u64)(x))

static const u64 full[] = {
	S(0x00000000), S(0x80000000), S(0x3f800000), S(0xbf800000), S(0x3fc00000),
	S(0x40200000), S(0xc0200000), S(0x3f000000), S(0xbf000000), S(0x3dcccccd),
	S(0x3eaaaaab), S(0x40400000), S(0x7f7fffff), S(0xff7fffff), S(0x00800000),
	S(0x007fffff), S(0x00000001), S(0x80000001), S(0x000116c2), S(0x7f800000),
	S(0xff800000), S(0x7fc00000), S(0xffc00000), S(0x7f800001), S(0x7fa12345),
	S(0x7fc12345), S(0x4b800001), S(0x501502f9), S(0xcf000000), S(0x4f000000),
	S(0x4f800000), S(0x5f000000), S(0x5f800000), S(0x4effffff), S(0xcf000001),
	S(0x4f7fffff), S(0xdf000000), S(0xbf7fffff),
	/* improperly NaN-boxed */
	0x000000003f800000ull, 0x7ff8000000000000ull, 0xfffffffe40400000ull,
};

static const u64 red[] = {
	S(0x3dcccccd), S(0xbdcccccd), S(0x3eaaaaab), S(0x3fc00000), S(0xc0200000),
	S(0x3f000000), S(0x7f7fffff), S(0x00000001), S(0x00800001), S(0x4f7fffff),
	S(0xcf000001), S(0x7f800001),
	S(0x3f7fffff), /* 1 - ulp: products just below the normal range */
};

static const u64 tern[] = {
	S(0x00000000), S(0x80000000), S(0x3f800000), S(0xbf800000), S(0x3dcccccd),
	S(0x7f7fffff), S(0x00000001), S(0x00800000), S(0x7f800000), S(0xff800000),
	S(0x7fc00000), S(0x7f800001), S(0x40400000),
};

static const u64 tern_red[] = {
	S(0x3dcccccd), S(0xbeaaaaab), S(0x7f7fffff), S(0x00800000), S(0x3f800001),
	S(0x3f800000), S(0xbf800000), /* exact zero sums: sign by mode */
};

#define OPS(X1, XRM)                                        \
	XRM(K_FFF, fadd, "fadd.s")                          \
	XRM(K_FFF, fsub, "fsub.s")                          \
	XRM(K_FFF, fmul, "fmul.s")                          \
	XRM(K_FFF, fdiv, "fdiv.s")                          \
	XRM(K_FF, fsqrt, "fsqrt.s")                         \
	X1(K_FFF, fmin, "fmin.s")                           \
	X1(K_FFF, fmax, "fmax.s")                           \
	X1(K_FFF, fsgnj, "fsgnj.s")                         \
	X1(K_FFF, fsgnjn, "fsgnjn.s")                       \
	X1(K_FFF, fsgnjx, "fsgnjx.s")                       \
	X1(K_XFF, feq, "feq.s")                             \
	X1(K_XFF, flt, "flt.s")                             \
	X1(K_XFF, fle, "fle.s")                             \
	X1(K_XF, fclass, "fclass.s")                        \
	X1(K_XF, fmvxw, "fmv.x.w")                          \
	X1(K_FX, fmvwx, "fmv.w.x")                          \
	XRM(K_FFFF, fmadd, "fmadd.s")                       \
	XRM(K_FFFF, fmsub, "fmsub.s")                       \
	XRM(K_FFFF, fnmsub, "fnmsub.s")                     \
	XRM(K_FFFF, fnmadd, "fnmadd.s")                     \
	XRM(K_XF, fcvtws, "fcvt.w.s")                       \
	XRM(K_XF, fcvtwus, "fcvt.wu.s")                     \
	XRM(K_XF, fcvtls, "fcvt.l.s")                       \
	XRM(K_XF, fcvtlus, "fcvt.lu.s")                     \
	XRM(K_FX, fcvtsw, "fcvt.s.w")                       \
	XRM(K_FX, fcvtswu, "fcvt.s.wu")                     \
	XRM(K_FX, fcvtsl, "fcvt.s.l")                       \
	XRM(K_FX, fcvtslu, "fcvt.s.lu")                     \
	X1(K_FF, fcvtds, "fcvt.d.s")

/* Double operands for fcvt.s.d (narrowing, rounded). */
static const u64 dvals[] = {
	0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull,
	0x3fb999999999999aull, 0xbfb999999999999aull, 0x7fefffffffffffffull,
	0x47efffffe0000000ull, 0x47efffffefffffffull, 0x47effffff0000000ull,
	0x36a0000000000000ull, 0x3690000000000000ull, 0x3690000000000001ull,
	0x380fffffffffffffull, 0x0000000000000001ull, 0x7ff0000000000000ull,
	0xfff0000000000000ull, 0x7ff8000000000000ull, 0x7ff0000000000001ull,
	0x7ff8000000012345ull, 0x3ff0000010000000ull, 0x3ff0000030000000ull,
};

#define D_FF_DEF(kind, fn, insn) DEF_1(D_##kind, fn, insn)
#define D_RM_DEF(kind, fn, insn) DEF_RM(D_##kind, fn, insn)
OPS(D_FF_DEF, D_RM_DEF)
DEF_RM(D_K_FF, fcvtsd, "fcvt.s.d")

static const struct fop ops[] = { OPS(TAB_1, TAB_RM) };
static const struct fop narrow[] = { TAB_RM(K_FF, fcvtsd, "fcvt.s.d") };

/* NaN-boxing of loads, stores and moves (spec 12.2). */
static void boxing(void)
{
	u64 r;
	uint32_t w = 0;
	/* fsw stores the low 32 bits whatever the upper half holds. */
	__asm__ volatile("fmv.d.x ft0, %1\n\tfsw ft0, 0(%0)"
			 : : "r"(&w), "r"(0x123456789abcdef0ull) : "ft0", "memory");
	printf("fsw unboxed -> %08x\n", w);
	/* fmv.s (fsgnj.s) of an unboxed value gives the canonical NaN. */
	__asm__ volatile("fmv.d.x ft0, %1\n\tfmv.s ft1, ft0\n\tfmv.x.d %0, ft1"
			 : "=r"(r) : "r"(0x000000003f800000ull) : "ft0", "ft1");
	printf("fmv.s unboxed -> %016" PRIx64 "\n", r);
	/* fneg.s / fabs.s on an unboxed value. */
	__asm__ volatile("fmv.d.x ft0, %1\n\tfneg.s ft1, ft0\n\tfmv.x.d %0, ft1"
			 : "=r"(r) : "r"(0x00000000bf800000ull) : "ft0", "ft1");
	printf("fneg.s unboxed -> %016" PRIx64 "\n", r);
	__asm__ volatile("fmv.d.x ft0, %1\n\tfabs.s ft1, ft0\n\tfmv.x.d %0, ft1"
			 : "=r"(r) : "r"(0xffffffffbf800000ull) : "ft0", "ft1");
	printf("fabs.s boxed -> %016" PRIx64 "\n", r);
	/* An fadd.d result read as a single. */
	__asm__ volatile("fmv.d.x ft0, %1\n\tfadd.d ft0, ft0, ft0\n\tfclass.s %0, ft0"
			 : "=r"(r) : "r"(0x3ff0000000000000ull) : "ft0");
	printf("fclass.s of a double -> %016" PRIx64 "\n", r);
	/* Arithmetic on an unboxed value just moved in, with NX already set
	 * (translated code's inline path; the register was written by a
	 * double move in the same block). */
	u64 fl;
	__asm__ volatile("fsflags %2\n\tfmv.d.x ft0, %3\n\tfadd.s ft1, ft0, ft0\n\t"
			 "fmv.x.d %0, ft1\n\tfrflags %1"
			 : "=r"(r), "=r"(fl) : "r"(1ull), "r"(0x000000003f800000ull) : "ft0", "ft1");
	printf("fadd.s unboxed, NX set -> %016" PRIx64 " flags %" PRIx64 "\n", r, fl);
}

int main(void)
{
	struct fsets s = { full, N_ELEMS(full), red, N_ELEMS(red), tern, N_ELEMS(tern),
			   tern_red, N_ELEMS(tern_red) };
	fp_run(ops, N_ELEMS(ops), &s);
	struct fsets n = { dvals, N_ELEMS(dvals), dvals, N_ELEMS(dvals), NULL, 0, NULL, 0 };
	fp_run(narrow, N_ELEMS(narrow), &n);
	boxing();
	done();
	return 0;
}

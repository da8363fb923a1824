/*
 * Bit manipulation, Zba/Zbb/Zbs (RISC-V bit-manipulation spec 1.0.0):
 * every instruction on all edge operands, including shift and bit indices
 * of 64 and above (only the low 6 bits count; 5 for the W forms), the
 * zero-input cases of clz/ctz, and the .uw forms' zero extension.
 */
#include "common.h"

#define RR(fn, insn)                                                           \
	static u64 fn(u64 a, u64 b)                                            \
	{                                                                      \
		u64 r;                                                         \
		__asm__ volatile(insn " %0,%1,%2" : "=r"(r) : "r"(a), "r"(b)); \
		return r;                                                      \
	}
#define R1(fn, insn)                                                           \
	static u64 fn(u64 a)                                                   \
	{                                                                      \
		u64 r;                                                         \
		__asm__ volatile(insn " %0,%1" : "=r"(r) : "r"(a));            \
		return r;                                                      \
	}

#define RR_OPS(X)                                                         \
	X(op_andn, "andn") X(op_orn, "orn") X(op_xnor, "xnor")            \
	X(op_max, "max") X(op_maxu, "maxu") X(op_min, "min")              \
	X(op_minu, "minu") X(op_rol, "rol") X(op_ror, "ror")              \
	X(op_rolw, "rolw") X(op_rorw, "rorw") X(op_sh1add, "sh1add")      \
	X(op_sh2add, "sh2add") X(op_sh3add, "sh3add") X(op_adduw, "add.uw") \
	X(op_sh1adduw, "sh1add.uw") X(op_sh2adduw, "sh2add.uw")           \
	X(op_sh3adduw, "sh3add.uw") X(op_bclr, "bclr") X(op_bext, "bext") \
	X(op_binv, "binv") X(op_bset, "bset")
#define R1_OPS(X)                                                         \
	X(op_clz, "clz") X(op_clzw, "clzw") X(op_ctz, "ctz")              \
	X(op_ctzw, "ctzw") X(op_cpop, "cpop") X(op_cpopw, "cpopw")        \
	X(op_sextb, "sext.b") X(op_sexth, "sext.h") X(op_zexth, "zext.h") \
	X(op_orcb, "orc.b") X(op_rev8, "rev8")

#define TAB(fn, insn) { insn, fn },
RR_OPS(RR)
R1_OPS(R1)

static const struct {
	const char *name;
	u64 (*fn)(u64, u64);
} rr_ops[] = { RR_OPS(TAB) };

static const struct {
	const char *name;
	u64 (*fn)(u64);
} r1_ops[] = { R1_OPS(TAB) };

#define IMMF(insn, fn, imm)                                               \
	static u64 fn(u64 a)                                              \
	{                                                                 \
		u64 r;                                                    \
		__asm__ volatile(insn " %0,%1," #imm : "=r"(r) : "r"(a)); \
		return r;                                                 \
	}
#define IMMT(insn, fn, imm) { insn, #imm, fn },
#define SH6(X, insn, p)                                                      \
	X(insn, p##_0, 0) X(insn, p##_1, 1) X(insn, p##_7, 7) X(insn, p##_31, 31) \
	X(insn, p##_32, 32) X(insn, p##_33, 33) X(insn, p##_63, 63)
#define SH5(X, insn, p)                                                      \
	X(insn, p##_0, 0) X(insn, p##_1, 1) X(insn, p##_7, 7) X(insn, p##_16, 16) \
	X(insn, p##_31, 31)
#define ALL_IMM(X)                     \
	SH6(X, "rori", f_rori)         \
	SH5(X, "roriw", f_roriw)       \
	SH6(X, "slli.uw", f_slliuw)    \
	SH6(X, "bclri", f_bclri)       \
	SH6(X, "bexti", f_bexti)       \
	SH6(X, "binvi", f_binvi)       \
	SH6(X, "bseti", f_bseti)
ALL_IMM(IMMF)

static const struct {
	const char *name, *imm;
	u64 (*fn)(u64);
} imm_ops[] = { ALL_IMM(IMMT) };

static const u64 more[] = {
	0x0000000000000100ull, 0x0000000000008000ull, 0x0000000000800000ull,
	0x8000000000000080ull, 0x0102030405060708ull, 0x00ff000000ff0000ull,
	0x7f00000000000000ull, 0x0000000000000047ull, 0x00000000ffff7fffull,
};

int main(void)
{
	for (size_t o = 0; o < N_ELEMS(rr_ops); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			for (size_t j = 0; j < N_ELEMS(int_vals); j++)
				printf("%s %016" PRIx64 " %016" PRIx64 " -> %016" PRIx64 "\n",
				       rr_ops[o].name, int_vals[i], int_vals[j],
				       rr_ops[o].fn(int_vals[i], int_vals[j]));
	for (size_t o = 0; o < N_ELEMS(r1_ops); o++) {
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			printf("%s %016" PRIx64 " -> %016" PRIx64 "\n", r1_ops[o].name,
			       int_vals[i], r1_ops[o].fn(int_vals[i]));
		for (size_t i = 0; i < N_ELEMS(more); i++)
			printf("%s %016" PRIx64 " -> %016" PRIx64 "\n", r1_ops[o].name,
			       more[i], r1_ops[o].fn(more[i]));
	}
	for (size_t o = 0; o < N_ELEMS(imm_ops); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			printf("%s %016" PRIx64 " %s -> %016" PRIx64 "\n", imm_ops[o].name,
			       int_vals[i], imm_ops[o].imm, imm_ops[o].fn(int_vals[i]));
	done();
	return 0;
}

/*
 * RV64I integer instructions (unprivileged spec ch. 2 and 5): every
 * register-register and register-immediate ALU operation including the W
 * forms, on all pairs of edge operands; shift amounts at and above 32 for
 * the W forms; LUI/AUIPC; conditional branches taken and not taken; JAL and
 * JALR (link values, JALR clearing bit 0, rd == rs1); x0 as source and as
 * destination.
 */
#include "common.h"

/* The full 32-bit encodings, even where a compressed one exists (rvc.c
 * covers those). */
#define NORVC(s) ".option push\n\t.option norvc\n\t" s "\n\t.option pop"

#define RR(fn, insn)                                                           \
	static u64 fn(u64 a, u64 b)                                            \
	{                                                                      \
		u64 r;                                                         \
		__asm__ volatile(NORVC(insn " %0,%1,%2") : "=r"(r) : "r"(a), "r"(b)); \
		return r;                                                      \
	}

RR(op_add, "add")
RR(op_sub, "sub")
RR(op_sll, "sll")
RR(op_slt, "slt")
RR(op_sltu, "sltu")
RR(op_xor, "xor")
RR(op_srl, "srl")
RR(op_sra, "sra")
RR(op_or, "or")
RR(op_and, "and")
RR(op_addw, "addw")
RR(op_subw, "subw")
RR(op_sllw, "sllw")
RR(op_srlw, "srlw")
RR(op_sraw, "sraw")

static const struct {
	const char *name;
	u64 (*fn)(u64, u64);
} rr_ops[] = {
	{ "add", op_add }, { "sub", op_sub }, { "sll", op_sll }, { "slt", op_slt },
	{ "sltu", op_sltu }, { "xor", op_xor }, { "srl", op_srl }, { "sra", op_sra },
	{ "or", op_or }, { "and", op_and }, { "addw", op_addw }, { "subw", op_subw },
	{ "sllw", op_sllw }, { "srlw", op_srlw }, { "sraw", op_sraw },
};

/* Immediate forms: one function per (instruction, immediate). */
#define IMMF(insn, fn, imm)                                                      \
	static u64 fn(u64 a)                                                     \
	{                                                                        \
		u64 r;                                                           \
		__asm__ volatile(NORVC(insn " %0,%1," #imm) : "=r"(r) : "r"(a)); \
		return r;                                                        \
	}
#define IMMT(insn, fn, imm) { insn, #imm, fn },

#define I12(X, insn, p)                                                     \
	X(insn, p##_0, 0) X(insn, p##_1, 1) X(insn, p##_m1, -1)             \
	X(insn, p##_2047, 2047) X(insn, p##_m2048, -2048) X(insn, p##_555, 0x555) \
	X(insn, p##_m556, -0x556) X(insn, p##_32, 32) X(insn, p##_m32, -32)
#define SH6(X, insn, p)                                                     \
	X(insn, p##_0, 0) X(insn, p##_1, 1) X(insn, p##_5, 5) X(insn, p##_31, 31) \
	X(insn, p##_32, 32) X(insn, p##_33, 33) X(insn, p##_63, 63)
#define SH5(X, insn, p)                                                     \
	X(insn, p##_0, 0) X(insn, p##_1, 1) X(insn, p##_7, 7) X(insn, p##_16, 16) \
	X(insn, p##_31, 31)

#define ALL_IMM(X)                                 \
	I12(X, "addi", f_addi)                     \
	I12(X, "slti", f_slti)                     \
	I12(X, "sltiu", f_sltiu)                   \
	I12(X, "xori", f_xori)                     \
	I12(X, "ori", f_ori)                       \
	I12(X, "andi", f_andi)                     \
	I12(X, "addiw", f_addiw)                   \
	SH6(X, "slli", f_slli)                     \
	SH6(X, "srli", f_srli)                     \
	SH6(X, "srai", f_srai)                     \
	SH5(X, "slliw", f_slliw)                   \
	SH5(X, "srliw", f_srliw)                   \
	SH5(X, "sraiw", f_sraiw)

ALL_IMM(IMMF)

static const struct {
	const char *name, *imm;
	u64 (*fn)(u64);
} imm_ops[] = { ALL_IMM(IMMT) };

/* Branches: 1 if taken. */
#define BR(fn, insn)                                                      \
	static u64 fn(u64 a, u64 b)                                       \
	{                                                                 \
		u64 r;                                                    \
		__asm__ volatile("li %0, 1\n\t" insn " %1, %2, 1f\n\t"    \
				 "li %0, 0\n"                             \
				 "1:"                                     \
				 : "=&r"(r) : "r"(a), "r"(b));            \
		return r;                                                 \
	}
BR(br_beq, "beq")
BR(br_bne, "bne")
BR(br_blt, "blt")
BR(br_bge, "bge")
BR(br_bltu, "bltu")
BR(br_bgeu, "bgeu")

static const struct {
	const char *name;
	u64 (*fn)(u64, u64);
} br_ops[] = {
	{ "beq", br_beq }, { "bne", br_bne }, { "blt", br_blt },
	{ "bge", br_bge }, { "bltu", br_bltu }, { "bgeu", br_bgeu },
};

#define LUI(imm)                                                      \
	do {                                                          \
		u64 r;                                                \
		__asm__ volatile("lui %0, " #imm : "=r"(r));          \
		printf("lui %s -> %016" PRIx64 "\n", #imm, r);        \
	} while (0)

/* AUIPC: the difference to a second AUIPC 4 bytes later is imm<<12 - 4. */
#define AUIPC(imm)                                                          \
	do {                                                                \
		u64 r, s;                                                   \
		__asm__ volatile(".option push\n\t.option norvc\n\t"        \
				 "auipc %0, " #imm "\n\tauipc %1, 0\n\t"    \
				 ".option pop"                              \
				 : "=&r"(r), "=&r"(s));                     \
		printf("auipc %s -> pc%+" PRId64 "\n", #imm, (i64)(r - s + 4)); \
	} while (0)

static void jumps(void)
{
	u64 link, base, t;

	/* JAL: link = address of the jal + 4. */
	__asm__ volatile(".option push\n\t.option norvc\n\t"
			 "auipc %1, 0\n\t"
			 "jal %0, 1f\n\t"
			 "nop\n\tnop\n"
			 "1:\n\t.option pop"
			 : "=&r"(link), "=&r"(base));
	printf("jal link -> base%+" PRId64 "\n", (i64)(link - base));

	/* JAL backwards, in a counted loop. */
	u64 n = 0, k = 5;
	__asm__ volatile("1:\n\t"
			 "addi %0, %0, 3\n\t"
			 "addi %1, %1, -1\n\t"
			 "beqz %1, 2f\n\t"
			 "jal x0, 1b\n"
			 "2:"
			 : "+r"(n), "+r"(k));
	printf("jal loop -> %" PRIu64 "\n", n);

	/* JALR with an odd target: bit 0 of the sum is cleared. */
	__asm__ volatile(".option push\n\t.option norvc\n\t"
			 "lla %1, 1f\n\t"
			 "addi %1, %1, 1\n\t"
			 "jalr %0, 0(%1)\n\t"
			 "nop\n"
			 "1:\n\t"
			 "lla %2, 1b\n\t"
			 ".option pop"
			 : "=&r"(link), "=&r"(base), "=&r"(t));
	printf("jalr odd target -> link %s, landed\n", link == t - 4 ? "ok" : "BAD");

	/* JALR with a negative offset and rd == rs1. */
	u64 x;
	__asm__ volatile(".option push\n\t.option norvc\n\t"
			 "lla %0, 2f\n\t"
			 "addi %0, %0, 16\n\t"
			 "mv %1, %0\n\t"
			 "jalr %0, -16(%0)\n\t"
			 "nop\n"
			 "2:\n\t"
			 ".option pop"
			 : "=&r"(x), "=&r"(base));
	printf("jalr rd==rs1 -> link-target %+" PRId64 "\n", (i64)(x - (base - 16)));

	/* JALR with rd = x0 (a plain indirect jump). */
	u64 flag = 0;
	__asm__ volatile("lla %1, 3f\n\t"
			 "jalr x0, 0(%1)\n\t"
			 "li %0, 7\n"
			 "3:"
			 : "+r"(flag), "=&r"(t));
	printf("jalr x0 -> %" PRIu64 "\n", flag);
}

static void x0_rules(void)
{
	u64 r;
	__asm__ volatile("addi x0, x0, 5\n\tmv %0, x0" : "=r"(r));
	printf("x0 after addi x0 -> %016" PRIx64 "\n", r);
	__asm__ volatile("lui x0, 0x12345\n\tadd %0, x0, x0" : "=r"(r));
	printf("x0 after lui x0 -> %016" PRIx64 "\n", r);
	__asm__ volatile("li %0, 9\n\tsub %0, x0, %0" : "=&r"(r));
	printf("sub x0, 9 -> %016" PRIx64 "\n", r);
	__asm__ volatile("sltiu %0, x0, 1" : "=r"(r));
	printf("sltiu x0,1 -> %016" PRIx64 "\n", r);
}

int main(void)
{
	for (size_t o = 0; o < N_ELEMS(rr_ops); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			for (size_t j = 0; j < N_ELEMS(int_vals); j++)
				printf("%s %016" PRIx64 " %016" PRIx64 " -> %016" PRIx64 "\n",
				       rr_ops[o].name, int_vals[i], int_vals[j],
				       rr_ops[o].fn(int_vals[i], int_vals[j]));
	for (size_t o = 0; o < N_ELEMS(imm_ops); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			printf("%s %016" PRIx64 " %s -> %016" PRIx64 "\n", imm_ops[o].name,
			       int_vals[i], imm_ops[o].imm, imm_ops[o].fn(int_vals[i]));
	for (size_t o = 0; o < N_ELEMS(br_ops); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			for (size_t j = 0; j < N_ELEMS(int_vals); j++)
				printf("%s %016" PRIx64 " %016" PRIx64 " -> %s\n", br_ops[o].name,
				       int_vals[i], int_vals[j],
				       br_ops[o].fn(int_vals[i], int_vals[j]) ? "taken" : "not");
	LUI(0);
	LUI(1);
	LUI(0x7ffff);
	LUI(0x80000);
	LUI(0xfffff);
	LUI(0x12345);
	AUIPC(0);
	AUIPC(1);
	AUIPC(0x7ffff);
	AUIPC(0x80000);
	AUIPC(0xfffff);
	jumps();
	x0_rules();
	done();
	return 0;
}

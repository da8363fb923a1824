/*
 * RV64M (unprivileged spec ch. 13): every multiply, divide and remainder
 * instruction including the W forms, on all pairs of edge operands, which
 * covers division by zero (quotient all ones, remainder the dividend),
 * signed overflow (-2^63 / -1 and -2^31 / -1 for the W forms) and the sign
 * extension of 32-bit results.
 */
#include "common.h"

#define RR(fn, insn)                                                           \
	static u64 fn(u64 a, u64 b)                                            \
	{                                                                      \
		u64 r;                                                         \
		__asm__ volatile(insn " %0,%1,%2" : "=r"(r) : "r"(a), "r"(b)); \
		return r;                                                      \
	}

RR(op_mul, "mul")
RR(op_mulh, "mulh")
RR(op_mulhsu, "mulhsu")
RR(op_mulhu, "mulhu")
RR(op_div, "div")
RR(op_divu, "divu")
RR(op_rem, "rem")
RR(op_remu, "remu")
RR(op_mulw, "mulw")
RR(op_divw, "divw")
RR(op_divuw, "divuw")
RR(op_remw, "remw")
RR(op_remuw, "remuw")

static const struct {
	const char *name;
	u64 (*fn)(u64, u64);
} ops[] = {
	{ "mul", op_mul }, { "mulh", op_mulh }, { "mulhsu", op_mulhsu },
	{ "mulhu", op_mulhu }, { "div", op_div }, { "divu", op_divu },
	{ "rem", op_rem }, { "remu", op_remu }, { "mulw", op_mulw },
	{ "divw", op_divw }, { "divuw", op_divuw }, { "remw", op_remw },
	{ "remuw", op_remuw },
};

int main(void)
{
	for (size_t o = 0; o < N_ELEMS(ops); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			for (size_t j = 0; j < N_ELEMS(int_vals); j++)
				printf("%s %016" PRIx64 " %016" PRIx64 " -> %016" PRIx64 "\n",
				       ops[o].name, int_vals[i], int_vals[j],
				       ops[o].fn(int_vals[i], int_vals[j]));
	/* The recommended fused sequences (mulh+mul, div+rem) with the same
	 * operands, which an implementation may fuse. */
	for (size_t i = 0; i < N_ELEMS(int_vals); i++) {
		u64 a = int_vals[i], b = int_vals[N_ELEMS(int_vals) - 1 - i], hi, lo, q, rm;
		__asm__ volatile("mulh %0,%2,%3\n\tmul %1,%2,%3" : "=&r"(hi), "=&r"(lo) : "r"(a), "r"(b));
		__asm__ volatile("div %0,%2,%3\n\trem %1,%2,%3" : "=&r"(q), "=&r"(rm) : "r"(a), "r"(b));
		printf("fused %016" PRIx64 " %016" PRIx64 " -> %016" PRIx64 " %016" PRIx64
		       " %016" PRIx64 " %016" PRIx64 "\n", a, b, hi, lo, q, rm);
	}
	done();
	return 0;
}

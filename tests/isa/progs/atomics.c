/*
 * RV64A (unprivileged spec ch. 8): every AMO in its .w and .d forms with
 * all four aq/rl orderings, on edge operand pairs (signed and unsigned
 * min/max, sign extension of the .w result into rd, neighbours of a .w
 * untouched), rd = x0; LR/SC success, failure without a reservation, failure
 * at another address, LR.W sign extension, and an LR/SC retry loop.
 * SC failure codes other than zero are only reported as "fail" since the
 * spec leaves the nonzero value open.
 */
#include "common.h"

static u64 mem[4] __attribute__((aligned(16)));

#define AMO(fn, insn)                                                           \
	static u64 fn(u64 *p, u64 v)                                            \
	{                                                                       \
		u64 r;                                                          \
		__asm__ volatile(insn " %0, %2, (%1)" : "=&r"(r) : "r"(p), "r"(v) : "memory"); \
		return r;                                                       \
	}

#define ORDERS(X, fn, insn) \
	X(fn, insn) X(fn##_aq, insn ".aq") X(fn##_rl, insn ".rl") X(fn##_aqrl, insn ".aqrl")
#define ALL_AMO(X)                                          \
	ORDERS(X, swap_w, "amoswap.w") ORDERS(X, add_w, "amoadd.w") \
	ORDERS(X, xor_w, "amoxor.w") ORDERS(X, and_w, "amoand.w")   \
	ORDERS(X, or_w, "amoor.w") ORDERS(X, min_w, "amomin.w")     \
	ORDERS(X, max_w, "amomax.w") ORDERS(X, minu_w, "amominu.w") \
	ORDERS(X, maxu_w, "amomaxu.w")                              \
	ORDERS(X, swap_d, "amoswap.d") ORDERS(X, add_d, "amoadd.d") \
	ORDERS(X, xor_d, "amoxor.d") ORDERS(X, and_d, "amoand.d")   \
	ORDERS(X, or_d, "amoor.d") ORDERS(X, min_d, "amomin.d")     \
	ORDERS(X, max_d, "amomax.d") ORDERS(X, minu_d, "amominu.d") \
	ORDERS(X, maxu_d, "amomaxu.d")

#define AMO_DEF(fn, insn) AMO(amo_##fn, insn)
#define AMO_TAB(fn, insn) { insn, amo_##fn },
ALL_AMO(AMO_DEF)

static const struct {
	const char *name;
	u64 (*fn)(u64 *, u64);
} amos[] = { ALL_AMO(AMO_TAB) };

static const u64 few[] = {
	0, 1, 0xffffffffffffffffull, 0x7fffffffffffffffull, 0x8000000000000000ull,
	0x000000007fffffffull, 0x0000000080000000ull, 0xfedcba9876543210ull,
};

static void amo_case(size_t k, u64 init, u64 v)
{
	/* .w forms operate on the word at offset 4 of mem[1] half of the
	 * time, so a wrong width shows up in the neighbours. */
	int word_hi = (int)(k & 4) && strstr(amos[k].name, ".w") != NULL;
	mem[0] = 0x1111111111111111ull;
	mem[1] = init;
	mem[2] = 0x2222222222222222ull;
	u64 *p = word_hi ? (u64 *)((uint8_t *)&mem[1] + 4) : &mem[1];
	u64 r = amos[k].fn(p, v);
	printf("%s%s %016" PRIx64 " %016" PRIx64 " -> rd %016" PRIx64 " mem %016" PRIx64
	       " %016" PRIx64 " %016" PRIx64 "\n", amos[k].name, word_hi ? "@4" : "", init, v, r,
	       mem[0], mem[1], mem[2]);
}

#define LRSC(fn, lr, sc)                                                        \
	static void fn(u64 *p, u64 *q, u64 v)                                   \
	{                                                                       \
		u64 loaded, code, code2;                                        \
		/* success: LR then SC to the same address */                   \
		__asm__ volatile(lr " %0, (%3)\n\t" sc " %1, %4, (%3)\n\t"      \
				 sc " %2, %4, (%3)"                             \
				 : "=&r"(loaded), "=&r"(code), "=&r"(code2)     \
				 : "r"(p), "r"(v) : "memory");                  \
		printf("%s/%s same -> loaded %016" PRIx64 " sc %s, second sc %s, mem %016" PRIx64 "\n", \
		       lr, sc, loaded, code ? "fail" : "ok", code2 ? "fail" : "ok", *p); \
		/* failure: reservation on p, SC to q */                         \
		*q = 0x3333333333333333ull;                                     \
		__asm__ volatile(lr " %0, (%2)\n\t" sc " %1, %4, (%3)"          \
				 : "=&r"(loaded), "=&r"(code)                   \
				 : "r"(p), "r"(q), "r"(v) : "memory");          \
		printf("%s/%s other -> sc %s, mem %016" PRIx64 "\n", lr, sc,    \
		       code ? "fail" : "ok", *q);                               \
	}

#define LRSC_ALL(X)                                                   \
	X(lrsc_w, "lr.w", "sc.w") X(lrsc_w_aq, "lr.w.aq", "sc.w.aq")      \
	X(lrsc_w_rl, "lr.w.rl", "sc.w.rl") X(lrsc_w_aqrl, "lr.w.aqrl", "sc.w.aqrl") \
	X(lrsc_d, "lr.d", "sc.d") X(lrsc_d_aq, "lr.d.aq", "sc.d.aq")      \
	X(lrsc_d_rl, "lr.d.rl", "sc.d.rl") X(lrsc_d_aqrl, "lr.d.aqrl", "sc.d.aqrl")
#define LRSC_DEF(fn, lr, sc) LRSC(fn, lr, sc)
#define LRSC_CALL(fn, lr, sc) fn(&big[0], &big[64], 0x8765432180000001ull);
LRSC_ALL(LRSC_DEF)

static u64 big[128] __attribute__((aligned(64)));

static void lrsc(void)
{
	for (int i = 0; i < 128; i++)
		big[i] = 0xf0f0f0f0f0f0f0f0ull + (u64)i;
	LRSC_ALL(LRSC_CALL)

	/* An atomic increment loop (the spec's retry idiom). */
	u64 counter = 0xfffffffffffffff0ull;
	for (int i = 0; i < 100; i++) {
		u64 tmp, fail;
		__asm__ volatile("1:\n\t"
				 "lr.d %0, (%2)\n\t"
				 "addi %0, %0, 1\n\t"
				 "sc.d %1, %0, (%2)\n\t"
				 "bnez %1, 1b"
				 : "=&r"(tmp), "=&r"(fail) : "r"(&counter) : "memory");
	}
	printf("lr/sc loop -> %016" PRIx64 "\n", counter);

	/* AMO with rd = x0 still updates memory. */
	mem[1] = 5;
	__asm__ volatile("amoadd.d x0, %1, (%0)" : : "r"(&mem[1]), "r"(7ull) : "memory");
	printf("amoadd.d x0 -> mem %016" PRIx64 "\n", mem[1]);
	/* rd == rs2. */
	u64 x = 0x10;
	mem[1] = 3;
	__asm__ volatile("amoswap.d %0, %0, (%1)" : "+r"(x) : "r"(&mem[1]) : "memory");
	printf("amoswap.d rd==rs2 -> rd %016" PRIx64 " mem %016" PRIx64 "\n", x, mem[1]);
}

int main(void)
{
	for (size_t k = 0; k < N_ELEMS(amos); k++) {
		int base_form = (k % 4) == 0;
		if (base_form) {
			for (size_t i = 0; i < N_ELEMS(int_vals); i++)
				for (size_t j = 0; j < N_ELEMS(int_vals); j++)
					amo_case(k, int_vals[i], int_vals[j]);
		} else {
			for (size_t i = 0; i < N_ELEMS(few); i++)
				for (size_t j = 0; j < N_ELEMS(few); j++)
					amo_case(k, few[i], few[j]);
		}
	}
	lrsc();
	done();
	return 0;
}

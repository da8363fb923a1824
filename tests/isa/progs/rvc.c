/*
 * The C extension (unprivileged spec ch. 16) for RV64: every compressed
 * instruction, written with explicit c. mnemonics between .option rvc
 * brackets so the assembler emits the 16-bit encodings, with edge
 * immediates (largest and most negative, sign extension of c.lui/c.li/
 * c.addiw) and the compressed register subsets. c.ebreak is left out (it
 * would trap). Stack-pointer forms run with sp temporarily pointing at a
 * static buffer.
 */
#include "common.h"

#define RVC(body) ".option push\n\t.option rvc\n\t" body "\n\t.option pop\n\t"

/* One input in a0 (or the named register), result in the same register. */
#define C_UNARY(fn, reg, insn)                                              \
	static u64 fn(u64 a)                                                \
	{                                                                   \
		u64 r;                                                      \
		__asm__ volatile("mv " reg ", %1\n\t" RVC(insn)             \
				 "mv %0, " reg : "=r"(r) : "r"(a) : reg);   \
		return r;                                                   \
	}
/* Two inputs: rd holds a, rs holds b. */
#define C_BINARY(fn, rd, rs, insn)                                                 \
	static u64 fn(u64 a, u64 b)                                                \
	{                                                                          \
		u64 r;                                                             \
		__asm__ volatile("mv " rd ", %1\n\tmv " rs ", %2\n\t" RVC(insn)    \
				 "mv %0, " rd : "=r"(r) : "r"(a), "r"(b) : rd, rs); \
		return r;                                                          \
	}

#define UNARY_OPS(X)                                                           \
	X(u_addi_1, "a0", "c.addi a0, 1") X(u_addi_m32, "s1", "c.addi s1, -32")   \
	X(u_addi_31, "t0", "c.addi t0, 31") X(u_addiw_0, "a0", "c.addiw a0, 0")   \
	X(u_addiw_m1, "a5", "c.addiw a5, -1") X(u_addiw_31, "t6", "c.addiw t6, 31") \
	X(u_addiw_m32, "a1", "c.addiw a1, -32")                                    \
	X(u_li_0, "a0", "c.li a0, 0") X(u_li_m32, "t1", "c.li t1, -32")           \
	X(u_li_31, "a4", "c.li a4, 31") X(u_lui_1, "a0", "c.lui a0, 1")           \
	X(u_lui_1f, "t3", "c.lui t3, 0x1f") X(u_lui_fffe0, "a2", "c.lui a2, 0xfffe0") \
	X(u_lui_fffff, "s1", "c.lui s1, 0xfffff")                                  \
	X(u_slli_1, "a0", "c.slli a0, 1") X(u_slli_31, "t2", "c.slli t2, 31")     \
	X(u_slli_32, "a3", "c.slli a3, 32") X(u_slli_63, "s1", "c.slli s1, 63")   \
	X(u_srli_1, "a0", "c.srli a0, 1") X(u_srli_32, "a5", "c.srli a5, 32")     \
	X(u_srli_63, "s1", "c.srli s1, 63") X(u_srai_1, "a0", "c.srai a0, 1")     \
	X(u_srai_31, "a2", "c.srai a2, 31") X(u_srai_63, "a4", "c.srai a4, 63")   \
	X(u_andi_0, "a0", "c.andi a0, 0") X(u_andi_m1, "a1", "c.andi a1, -1")     \
	X(u_andi_m32, "s1", "c.andi s1, -32") X(u_andi_31, "a3", "c.andi a3, 31") \
	X(u_nop, "a0", "c.nop")

#define BINARY_OPS(X)                                                          \
	X(b_sub, "a0", "a1", "c.sub a0, a1") X(b_xor, "a5", "s1", "c.xor a5, s1")  \
	X(b_or, "a2", "a3", "c.or a2, a3") X(b_and, "s1", "a4", "c.and s1, a4")    \
	X(b_subw, "a0", "a5", "c.subw a0, a5") X(b_addw, "a3", "a2", "c.addw a3, a2") \
	X(b_add, "t0", "t5", "c.add t0, t5") X(b_add2, "a0", "ra", "c.add a0, ra") \
	X(b_mv, "a7", "s2", "c.mv a7, s2") X(b_mv2, "t4", "a0", "c.mv t4, a0")

UNARY_OPS(C_UNARY)
BINARY_OPS(C_BINARY)

#define TAB_U(fn, reg, insn) { insn, fn },
#define TAB_B(fn, rd, rs, insn) { insn, fn },
static const struct {
	const char *name;
	u64 (*fn)(u64);
} unary[] = { UNARY_OPS(TAB_U) };
static const struct {
	const char *name;
	u64 (*fn)(u64, u64);
} binary[] = { BINARY_OPS(TAB_B) };

static uint8_t mem[1024] __attribute__((aligned(16)));

static void fill(void)
{
	for (size_t i = 0; i < sizeof(mem); i++)
		mem[i] = (uint8_t)(i * 29 + 7 + (i >> 4));
}

static void dump(const char *what, size_t off, size_t len)
{
	printf("%s ->", what);
	for (size_t i = off; i < off + len; i++)
		printf(" %02x", mem[i]);
	putchar('\n');
}

/* Loads and stores through an x8..x15 base register. */
static void mem_ops(void)
{
	u64 r1, r2, r3, r4, r5, r6;
	fill();
	__asm__ volatile("mv a4, %6\n\t"
			 RVC("c.lw a0, 0(a4)\n\tc.lw a1, 124(a4)\n\tc.ld a2, 0(a4)\n\t"
			     "c.ld a3, 248(a4)\n\tc.lw s1, 64(a4)\n\tc.ld a5, 8(a4)")
			 "mv %0, a0\n\tmv %1, a1\n\tmv %2, a2\n\tmv %3, a3\n\tmv %4, s1\n\tmv %5, a5"
			 : "=r"(r1), "=r"(r2), "=r"(r3), "=r"(r4), "=r"(r5), "=r"(r6)
			 : "r"(mem + 512) : "a0", "a1", "a2", "a3", "a4", "a5", "s1", "memory");
	printf("c.lw/c.ld -> %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64
	       " %016" PRIx64 " %016" PRIx64 "\n", r1, r2, r3, r4, r5, r6);
	__asm__ volatile("mv a5, %0\n\tli a0, -2\n\tli s1, 0x123\n\t"
			 RVC("c.sw a0, 0(a5)\n\tc.sw s1, 124(a5)\n\tc.sd a0, 248(a5)\n\tc.sd s1, 16(a5)")
			 : : "r"(mem + 256) : "a0", "a5", "s1", "memory");
	dump("c.sw/c.sd", 256, 256);
	u64 f1, f2;
	fill();
	__asm__ volatile("mv a1, %2\n\t"
			 RVC("c.fld fa0, 0(a1)\n\tc.fld fs1, 248(a1)\n\tc.fsd fa0, 8(a1)\n\t"
			     "c.fsd fs1, 240(a1)")
			 "fmv.x.d %0, fa0\n\tfmv.x.d %1, fs1"
			 : "=r"(f1), "=r"(f2) : "r"(mem + 128) : "a1", "fa0", "fs1", "memory");
	printf("c.fld -> %016" PRIx64 " %016" PRIx64 "\n", f1, f2);
	dump("c.fsd", 128, 256);
}

/* Stack-pointer forms, with sp pointing into mem. */
static void sp_ops(void)
{
	u64 r1, r2, r3, r4, f1;
	fill();
	__asm__ volatile("mv t0, sp\n\tmv sp, %5\n\t"
			 RVC("c.lwsp a0, 0(sp)\n\tc.lwsp t1, 252(sp)\n\tc.ldsp a2, 0(sp)\n\t"
			     "c.ldsp t2, 504(sp)\n\tc.fldsp fa1, 496(sp)")
			 "mv sp, t0\n\t"
			 "mv %0, a0\n\tmv %1, t1\n\tmv %2, a2\n\tmv %3, t2\n\tfmv.x.d %4, fa1"
			 : "=r"(r1), "=r"(r2), "=r"(r3), "=r"(r4), "=r"(f1)
			 : "r"(mem + 256) : "t0", "t1", "t2", "a0", "a2", "fa1", "memory");
	printf("c.lwsp/c.ldsp/c.fldsp -> %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64
	       " %016" PRIx64 "\n", r1, r2, r3, r4, f1);
	fill();
	__asm__ volatile("mv t0, sp\n\tmv sp, %0\n\tli a0, -3\n\tli t3, 0x4567\n\t"
			 "fmv.d.x fa2, t3\n\t"
			 RVC("c.swsp a0, 0(sp)\n\tc.swsp t3, 252(sp)\n\tc.sdsp a0, 8(sp)\n\t"
			     "c.sdsp t3, 504(sp)\n\tc.fsdsp fa2, 488(sp)")
			 "mv sp, t0"
			 : : "r"(mem + 256) : "t0", "t3", "a0", "fa2", "memory");
	dump("c.swsp/c.sdsp/c.fsdsp", 256, 16);
	dump("c.swsp/c.sdsp/c.fsdsp", 256 + 488, 24);

	/* c.addi16sp and c.addi4spn, on an sp value of our choosing. */
	u64 a, b, c, d;
	__asm__ volatile("mv t0, sp\n\tmv sp, %4\n\t"
			 RVC("c.addi16sp sp, -512\n\t")
			 "mv %0, sp\n\t"
			 RVC("c.addi16sp sp, 496\n\tc.addi16sp sp, 16\n\t")
			 "mv %1, sp\n\t"
			 RVC("c.addi4spn a0, sp, 4\n\tc.addi4spn s1, sp, 1020\n\t")
			 "mv %2, a0\n\tmv %3, s1\n\tmv sp, t0"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
			 : "r"(0x100000ull) : "t0", "a0", "s1");
	printf("c.addi16sp/c.addi4spn -> %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64 "\n",
	       a, b, c, d);
}

static void control(void)
{
	for (u64 v = 0; v < 3; v++) {
		u64 z, nz;
		__asm__ volatile("mv a0, %2\n\tli %0, 1\n\tli %1, 1\n\t"
				 RVC("c.beqz a0, 1f\n\t")
				 "li %0, 0\n"
				 "1:\n\t"
				 RVC("c.bnez a0, 2f\n\t")
				 "li %1, 0\n"
				 "2:"
				 : "=&r"(z), "=&r"(nz) : "r"(v - 1) : "a0");
		printf("c.beqz/c.bnez %" PRId64 " -> %" PRIu64 " %" PRIu64 "\n", (i64)(v - 1), z, nz);
	}
	u64 flag, link, target;
	__asm__ volatile("li %0, 0\n\t"
			 RVC("c.j 1f\n\t")
			 "li %0, 1\n"
			 "1:"
			 : "=&r"(flag));
	printf("c.j -> %" PRIu64 "\n", flag);
	__asm__ volatile("li %0, 0\n\tlla a1, 1f\n\t"
			 RVC("c.jr a1\n\t")
			 "li %0, 1\n"
			 "1:"
			 : "=&r"(flag) : : "a1");
	printf("c.jr -> %" PRIu64 "\n", flag);
	__asm__ volatile("lla t1, 1f\n\t"
			 RVC("c.jalr t1\n\t")
			 "2:\n\t"
			 "nop\n"
			 "1:\n\t"
			 "mv %0, ra\n\t"
			 "lla %1, 2b"
			 : "=&r"(link), "=&r"(target) : : "t1", "ra");
	printf("c.jalr link -> %s\n", link == target ? "pc+2" : "BAD");
	/* Backward c.j in a loop and c.bnez back edge. */
	u64 n = 0, k = 4;
	__asm__ volatile("mv a0, %2\n"
			 "1:\n\t"
			 "addi %0, %0, 5\n\t"
			 RVC("c.addi a0, -1\n\tc.beqz a0, 2f\n\tc.j 1b\n")
			 "2:\n\t"
			 "mv %1, a0"
			 : "+r"(n), "=r"(k) : "r"(k) : "a0");
	printf("c.j loop -> %" PRIu64 " %" PRIu64 "\n", n, k);
}

int main(void)
{
	for (size_t o = 0; o < N_ELEMS(unary); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			printf("%s %016" PRIx64 " -> %016" PRIx64 "\n", unary[o].name, int_vals[i],
			       unary[o].fn(int_vals[i]));
	for (size_t o = 0; o < N_ELEMS(binary); o++)
		for (size_t i = 0; i < N_ELEMS(int_vals); i++)
			for (size_t j = 0; j < N_ELEMS(int_vals); j += 3)
				printf("%s %016" PRIx64 " %016" PRIx64 " -> %016" PRIx64 "\n",
				       binary[o].name, int_vals[i], int_vals[j],
				       binary[o].fn(int_vals[i], int_vals[j]));
	mem_ops();
	sp_ops();
	control();
	done();
	return 0;
}

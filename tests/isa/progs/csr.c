/*
 * Zicsr on the user-visible CSRs (fflags, frm, fcsr: unprivileged spec
 * ch. 11.2 and ch. 7), every CSR instruction form (register and immediate,
 * rd = x0 and rs1 = x0 special cases, field widths), the accrual of flags;
 * Zicntr reads of cycle, time and instret (only their monotonicity is
 * printed); Zifencei with self-modifying code in an anonymous RWX mapping;
 * Zihintpause and the FENCE variants; a raw ECALL.
 */
#include "common.h"

#include <sys/mman.h>

#define CSRRW(csr, v) ({ u64 o_; __asm__ volatile("csrrw %0, " csr ", %1" : "=r"(o_) : "r"((u64)(v))); o_; })
#define CSRRS(csr, v) ({ u64 o_; __asm__ volatile("csrrs %0, " csr ", %1" : "=r"(o_) : "r"((u64)(v))); o_; })
#define CSRRC(csr, v) ({ u64 o_; __asm__ volatile("csrrc %0, " csr ", %1" : "=r"(o_) : "r"((u64)(v))); o_; })
#define CSRRWI(csr, i) ({ u64 o_; __asm__ volatile("csrrwi %0, " csr ", " #i : "=r"(o_)); o_; })
#define CSRRSI(csr, i) ({ u64 o_; __asm__ volatile("csrrsi %0, " csr ", " #i : "=r"(o_)); o_; })
#define CSRRCI(csr, i) ({ u64 o_; __asm__ volatile("csrrci %0, " csr ", " #i : "=r"(o_)); o_; })
#define CSRR(csr) ({ u64 o_; __asm__ volatile("csrrs %0, " csr ", x0" : "=r"(o_)); o_; })

static void show(const char *what, u64 old)
{
	printf("%-28s old %016" PRIx64 " fcsr %08" PRIx64 " frm %" PRIx64 " fflags %02" PRIx64 "\n",
	       what, old, CSRR("fcsr"), CSRR("frm"), CSRR("fflags"));
}

static void fp_csrs(void)
{
	show("start", 0);
	show("csrrw fcsr ffffffff", CSRRW("fcsr", 0xffffffffull));
	show("csrrw fcsr 0", CSRRW("fcsr", 0));
	show("csrrw frm ff", CSRRW("frm", 0xff));
	show("csrrw fflags ffff", CSRRW("fflags", 0xffff));
	show("csrrc fflags 0a", CSRRC("fflags", 0x0a));
	show("csrrs fflags 100", CSRRS("fflags", 0x100));
	show("csrrc frm 5", CSRRC("frm", 5));
	show("csrrs frm 4", CSRRS("frm", 4));
	show("csrrwi fflags 0x15", CSRRWI("fflags", 0x15));
	show("csrrsi fflags 0x0a", CSRRSI("fflags", 0x0a));
	show("csrrci fflags 0x1f", CSRRCI("fflags", 0x1f));
	show("csrrwi frm 3", CSRRWI("frm", 3));
	show("csrrsi frm 0", CSRRSI("frm", 0));
	show("csrrci frm 1", CSRRCI("frm", 1));
	show("csrrwi fcsr 31", CSRRWI("fcsr", 31));
	show("csrrsi fcsr 0", CSRRSI("fcsr", 0));
	show("csrrci fcsr 16", CSRRCI("fcsr", 16));
	show("csrrs fcsr e0", CSRRS("fcsr", 0xe0));
	show("csrrc fcsr ffffff00", CSRRC("fcsr", 0xffffff00ull));
	show("csrrc fcsr e0", CSRRC("fcsr", 0xe0));
	/* rd = x0 forms (write only). */
	__asm__ volatile("csrrw x0, frm, %0" : : "r"(2ull));
	show("csrrw x0 frm 2", 0);
	__asm__ volatile("csrrwi x0, fflags, 7");
	show("csrrwi x0 fflags 7", 0);
	__asm__ volatile("csrrs x0, fflags, %0" : : "r"(8ull));
	show("csrrs x0 fflags 8", 0);
	__asm__ volatile("csrrci x0, fflags, 1");
	show("csrrci x0 fflags 1", 0);
	/* Pseudo-instructions. */
	u64 a, b;
	__asm__ volatile("fsrmi %0, 4\n\tfrrm %1" : "=r"(a), "=r"(b));
	printf("fsrmi 4 -> old %" PRIx64 " new %" PRIx64 "\n", a, b);
	__asm__ volatile("fsflagsi %0, 0x11\n\tfrflags %1" : "=r"(a), "=r"(b));
	printf("fsflagsi 0x11 -> old %" PRIx64 " new %" PRIx64 "\n", a, b);
	__asm__ volatile("fscsr %0, %2\n\tfrcsr %1" : "=&r"(a), "=r"(b) : "r"(0x4bull));
	printf("fscsr 0x4b -> old %" PRIx64 " new %" PRIx64 "\n", a, b);

	/* Flags accrue across instructions until cleared. */
	u64 fl;
	__asm__ volatile("csrw fflags, zero\n\t"
			 "fmv.d.x ft0, %1\n\tfmv.d.x ft1, %2\n\tfmv.d.x ft2, zero\n\t"
			 "fdiv.d ft3, ft0, ft1\n\t"   /* 1/3: NX */
			 "fdiv.d ft3, ft0, ft2\n\t"   /* 1/0: DZ */
			 "fmul.d ft3, ft1, ft1\n\t"   /* exact: nothing */
			 "csrr %0, fflags"
			 : "=r"(fl) : "r"(0x3ff0000000000000ull), "r"(0x4008000000000000ull)
			 : "ft0", "ft1", "ft2", "ft3");
	printf("accrued NX|DZ -> %02" PRIx64 "\n", fl);
	/* Writing frm does not touch fflags and vice versa. */
	__asm__ volatile("csrw fcsr, zero\n\tcsrwi fflags, 0x1f\n\tcsrwi frm, 1\n\tcsrr %0, fcsr" : "=r"(fl));
	printf("fcsr after fflags+frm -> %02" PRIx64 "\n", fl);
	__asm__ volatile("csrw fcsr, zero");
}

static void counters(void)
{
	u64 c1, c2, t1, t2, i1, i2, x;
	__asm__ volatile("rdcycle %0" : "=r"(c1));
	__asm__ volatile("rdtime %0" : "=r"(t1));
	__asm__ volatile("rdinstret %0" : "=r"(i1));
	for (int k = 0; k < 1000; k++)
		__asm__ volatile("" ::: "memory");
	__asm__ volatile("rdcycle %0" : "=r"(c2));
	__asm__ volatile("rdtime %0" : "=r"(t2));
	__asm__ volatile("rdinstret %0" : "=r"(i2));
	printf("cycle monotonic -> %s\n", c2 >= c1 ? "yes" : "no");
	printf("time monotonic -> %s\n", t2 >= t1 ? "yes" : "no");
	printf("instret increases -> %s\n", i2 > i1 ? "yes" : "no");
	/* The other read forms: csrrc/csrrsi/csrrci with a zero source do
	 * not write, so they are legal on read-only CSRs. */
	__asm__ volatile("csrrc %0, cycle, x0" : "=r"(x));
	__asm__ volatile("csrrsi %0, time, 0" : "=r"(x));
	__asm__ volatile("csrrci %0, instret, 0" : "=r"(x));
	printf("counter read forms -> %s\n", x >= i2 ? "ok" : "BAD");
}

static void fences(void)
{
	__asm__ volatile("fence\n\tfence rw, rw\n\tfence r, r\n\tfence w, w\n\t"
			 "fence iorw, iorw\n\tfence r, rw\n\tfence rw, w\n\tfence o, i\n\t"
			 "fence.tso\n\tpause\n\tfence.i" ::: "memory");
	puts("fences and pause -> ok");
}

/* Self-modifying code, made visible with fence.i (Zifencei). */
static void smc(void)
{
	uint32_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED) {
		puts("mmap RWX failed");
		return;
	}
	u64 (*fn)(u64, u64) = (u64 (*)(u64, u64))(void *)code;
	for (uint32_t n = 1; n <= 3; n++) {
		code[0] = 0x00000513u | (n << 20); /* addi a0, x0, n */
		code[1] = 0x00008067u;             /* jalr x0, 0(ra) */
		__asm__ volatile("fence.i" ::: "memory");
		printf("smc call %u -> %" PRIu64 "\n", n, fn(0, 0));
	}
	/* Code that rewrites an instruction ahead of itself in the same
	 * block, then fence.i. */
	code[0] = 0x00b52623u; /* sw a1, 12(a0) */
	code[1] = 0x0000100fu; /* fence.i */
	code[2] = 0x00000013u; /* nop */
	code[3] = 0x00100513u; /* addi a0, x0, 1 (rewritten) */
	code[4] = 0x00008067u; /* ret */
	__asm__ volatile("fence.i" ::: "memory");
	printf("smc same block -> %" PRIu64 "\n", fn((u64)(uintptr_t)code, 0x02a00513u));
	printf("smc same block again -> %" PRIu64 "\n", fn((u64)(uintptr_t)code, 0x03300513u));
	/* Hot code rewritten over and over: a block that jumps (directly,
	 * within the page) to a second block; both are patched before each
	 * call, once with fence.i and once with the Linux system call
	 * (riscv_flush_icache, what glibc's __riscv_flush_icache uses). */
	u64 sum = 0;
	for (uint32_t i = 0; i < 600; i++) {
		code[0] = 0x00000513u | ((i & 0x7ff) << 20);       /* addi a0, x0, i */
		code[1] = 0x0080006fu;                              /* jal x0, +8 */
		code[2] = 0x00000013u;                              /* nop (skipped) */
		code[3] = 0x00050513u | (((i * 7) & 0x3ff) << 20); /* addi a0, a0, 7i */
		code[4] = 0x00008067u;                              /* ret */
		if (i & 1) {
			__asm__ volatile("fence.i" ::: "memory");
		} else {
			register u64 a0 __asm__("a0") = (u64)(uintptr_t)code;
			register u64 a1 __asm__("a1") = (u64)(uintptr_t)code + 4096;
			register u64 a2 __asm__("a2") = 0;
			register u64 a7 __asm__("a7") = 259; /* riscv_flush_icache */
			__asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
		}
		sum = sum * 3 + fn(0, 0);
	}
	printf("smc hot loop -> %016" PRIx64 "\n", sum);
	munmap(code, 4096);
}

/* A raw ECALL: write(1, msg, len) by hand. */
static void raw_ecall(void)
{
	static const char msg[] = "raw ecall write -> ok\n";
	fflush(stdout);
	register u64 a0 __asm__("a0") = 1;
	register u64 a1 __asm__("a1") = (u64)(uintptr_t)msg;
	register u64 a2 __asm__("a2") = sizeof(msg) - 1;
	register u64 a7 __asm__("a7") = 64;
	__asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
	printf("raw ecall returned %" PRIu64 "\n", a0);
}

int main(void)
{
	raw_ecall();
	fp_csrs();
	counters();
	fences();
	smc();
	done();
	return 0;
}

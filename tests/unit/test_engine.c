/*
 * Engine unit tests through its public API (engine.h): straight-line and
 * looping code, exits (SBI, WFI, MMIO load and store), traps and their CSRs,
 * exact registers where translated code hands over to the executor,
 * interrupts posted from another thread (also into a loop of linked
 * translated blocks), the timer, decoded-code
 * invalidation, the decoded-block cache when it is full, when its sets
 * overflow, on fence.i and when an idle hart gives it back, atomics between
 * two harts on two threads, stores and MMIO loads that share the JIT's TLB
 * probe, registers the JIT lends inside a loop (given back on every way
 * out), and two harts of two different VMs running side by side in one
 * process.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "check.h"
#include "engine/engine.h"
#include "engine_tier.h"
#include "run_limited.h"
#include "rvasm.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (4ull << 20)

static struct check_counts C;

enum { CSR_SSTATUS = 0x100, CSR_SIE = 0x104, CSR_STVEC = 0x105, CSR_SEPC = 0x141,
       CSR_SCAUSE = 0x142, CSR_STVAL = 0x143, CSR_STIMECMP = 0x14d, CSR_CYCLE = 0xc00,
       CSR_TIME = 0xc01, CSR_INSTRET = 0xc02 };

struct vmx {
	struct gram ram;
	struct hart *h;
};

/* cache_bytes: the block cache's size, 0 for the default. */
static void vm_init_cache(struct vmx *v, unsigned hartid, uint64_t cache_bytes)
{
	if (gram_init(&v->ram, RAM_BASE, RAM_SIZE)) {
		perror("gram_init");
		exit(1);
	}
	struct hart_config cfg = { .hartid = hartid, .time_base_ns = clock_monotonic_ns(), .timebase_hz = 10000000,
				   .block_cache_bytes = cache_bytes };
	engine_tier_from_env(&cfg);
	v->h = hart_create(&v->ram, &cfg);
	if (!v->h)
		exit(1);
}

static void vm_init(struct vmx *v, unsigned hartid)
{
	vm_init_cache(v, hartid, 0);
}

static void vm_fini(struct vmx *v)
{
	hart_destroy(v->h);
	gram_destroy(&v->ram);
}

static void put(struct vmx *v, uint64_t addr, const uint32_t *code, size_t n)
{
	gram_write(&v->ram, addr, code, n * 4);
}

/* Run until an exit other than a kick. */
static struct hart_exit run(struct vmx *v)
{
	struct hart_exit ex;
	do
		if (run_limited(v->h, &ex))
			break;
	while (ex.reason == EXIT_KICK);
	return ex;
}

/* sum = 1 + 2 + ... + n in x10, then ecall. */
static void load_sum_program(struct vmx *v, int32_t n)
{
	uint32_t code[] = {
		ADDI(10, 0, 0),      /* a0 = 0 */
		ADDI(5, 0, n),       /* t0 = n */
		ADD(10, 10, 5),      /* loop: a0 += t0 */
		ADDI(5, 5, -1),
		BNE(5, 0, -8),
		ECALL(),
	};
	put(v, RAM_BASE, code, 6);
	hart_reset(v->h, RAM_BASE, 0);
}

/* A PAUSE spin loop leaves hart_run after a while (EXIT_PAUSE, pc past the
 * pause) and goes on where it left off when entered again. */
static void test_pause_loop_exits(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(5, 0, 2000),    /* t0 = 2000 */
		0x0100000fu,         /* loop: pause */
		ADDI(5, 5, -1),
		BNE(5, 0, -8),
		ECALL(),
	};
	put(&v, RAM_BASE, code, 5);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex;
	unsigned pauses = 0;
	do {
		if (run_limited(v.h, &ex))
			break;
		if (ex.reason == EXIT_PAUSE) {
			pauses++;
			CHECK(&C, hart_get_pc(v.h) == RAM_BASE + 8, "pc past the pause: %llx",
			      (unsigned long long)hart_get_pc(v.h));
		}
	} while (ex.reason == EXIT_PAUSE || ex.reason == EXIT_KICK);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 5) == 0, "reason %d t0 %llu", ex.reason,
	      (unsigned long long)hart_get_reg(v.h, 5));
	CHECK(&C, pauses >= 2000 / ENGINE_PAUSE_SPINS && pauses <= 2000 / ENGINE_PAUSE_SPINS + 1,
	      "%u pause exits for 2000 pauses", pauses);
	vm_fini(&v);
}

/* The JIT keeps pc and instret in host registers while translated blocks
 * run into each other. Two rounds of: a loop linked to itself, a jump
 * within the page to a CSR read of instret (a call into C), a jump to the
 * next page, an AUIPC there, and a jump back to the next round. In the
 * second round every jump is linked or found in the jump cache, so nothing
 * goes back to the executor that would write them home. */
static void test_counters_in_linked_code(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(6, 0, 2),       /* t1 = 2 rounds */
		ADDI(5, 0, 2000),    /* round: t0 = 2000 */
		ADDI(5, 5, -1),      /* loop: t0-- */
		BNE(5, 0, -4),
		JAL(0, 0x100 - 0x10),
	};
	uint32_t csr[] = {
		CSRRS(10, CSR_INSTRET, 0),  /* +0x100: a0 = instret */
		JAL(0, 0x1000 - 0x104),     /* to the next page */
	};
	uint32_t tail[] = {
		(11u << 7) | 0x17u,         /* +0x1000: auipc a1, 0 */
		ADDI(6, 6, -1),
		BEQ(6, 0, 8),
		JAL(0, 0x04 - 0x100c),      /* next round */
		ECALL(),
	};
	put(&v, RAM_BASE, code, 5);
	put(&v, RAM_BASE + 0x100, csr, 2);
	put(&v, RAM_BASE + 0x1000, tail, 5);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	/* Before the second CSR read: the first ADDI; per round ADDI,
	 * 2000 x (ADDI, BNE), JAL; between the rounds CSRRS, JAL, AUIPC,
	 * ADDI, BEQ, JAL. */
	CHECK(&C, hart_get_reg(v.h, 10) == 1 + 4002 + 6 + 4002, "instret read %llu",
	      (unsigned long long)hart_get_reg(v.h, 10));
	CHECK(&C, hart_get_reg(v.h, 11) == RAM_BASE + 0x1000, "auipc %llx",
	      (unsigned long long)hart_get_reg(v.h, 11));
	CHECK(&C, hart_instret(v.h) == 1 + 2 * (4002 + 5) + 1, "instret %llu",
	      (unsigned long long)hart_instret(v.h));
	vm_fini(&v);
}

/* Calls and a tail call by AUIPC + JALR (translated as a jump to the target
 * the pair names), inside the page and to the next, with an odd sum whose
 * bit 0 JALR clears; a loop whose counter lives in the hart's memory (t1)
 * and is tested right after it is written (the branch may take it from
 * rax), and a branch on such a register after a store reused rax;
 * register copies (ADD rd, x0, rs). */
static void test_pc_relative_calls(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(6, 0, 3),       /* t1 = 3 rounds */
		rv_auipc(1, 0),      /* +0x04: call f: ra = pc */
		JALR(1, 1, 0x41),    /* to +0x44 (bit 0 cleared), ra = +0x0c */
		ADDIW(6, 6, -1),
		BNE(6, 0, -12),      /* to +0x04 */
		rv_auipc(5, 1),      /* +0x14: t0 = pc + 0x1000 */
		JALR(0, 5, 0x10),    /* tail to +0x1024, the next page */
	};
	uint32_t f[] = {
		ADDI(10, 10, 1),     /* +0x44: a0++ */
		JALR(0, 1, 0),       /* return */
	};
	uint32_t far[] = {
		rv_auipc(13, 1),     /* +0x1024: a3 = data, the page after */
		ADD(11, 0, 5),       /* a1 = t0 */
		ADD(12, 1, 0),       /* a2 = ra */
		ADDI(28, 5, 8),      /* t3 = t0 + 8, computed in rax */
		ADD(15, 0, 28),      /* a5 = t3 (a copy of rax) */
		ADDIW(7, 6, 0),      /* t2 = 0, computed in rax */
		SW(7, 13, 0),        /* which the store's address replaces */
		BEQ(7, 0, 8),        /* taken: t2 is 0 */
		ADDI(14, 0, 1),      /* a4 = 1: the branch read a stale value */
		ECALL(),
	};
	put(&v, RAM_BASE, code, 7);
	put(&v, RAM_BASE + 0x44, f, 2);
	put(&v, RAM_BASE + 0x1024, far, 10);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	CHECK(&C, hart_get_pc(v.h) == RAM_BASE + 0x1048, "pc at the ecall: %llx",
	      (unsigned long long)hart_get_pc(v.h));
	CHECK(&C, hart_get_reg(v.h, 10) == 3, "calls %llu", (unsigned long long)hart_get_reg(v.h, 10));
	CHECK(&C, hart_get_reg(v.h, 6) == 0, "t1 %llu", (unsigned long long)hart_get_reg(v.h, 6));
	CHECK(&C, hart_get_reg(v.h, 1) == RAM_BASE + 0x0c, "ra %llx", (unsigned long long)hart_get_reg(v.h, 1));
	CHECK(&C, hart_get_reg(v.h, 5) == RAM_BASE + 0x1014, "t0 %llx", (unsigned long long)hart_get_reg(v.h, 5));
	CHECK(&C, hart_get_reg(v.h, 11) == RAM_BASE + 0x1014, "a1 %llx", (unsigned long long)hart_get_reg(v.h, 11));
	CHECK(&C, hart_get_reg(v.h, 12) == RAM_BASE + 0x0c, "a2 %llx", (unsigned long long)hart_get_reg(v.h, 12));
	CHECK(&C, hart_get_reg(v.h, 14) == 0, "a4 %llu", (unsigned long long)hart_get_reg(v.h, 14));
	CHECK(&C, hart_get_reg(v.h, 15) == RAM_BASE + 0x101c, "a5 %llx", (unsigned long long)hart_get_reg(v.h, 15));
	/* ADDI, 3 x (AUIPC, JALR, ADDI, JALR, ADDIW, BNE), AUIPC, JALR,
	 * then AUIPC, ADD, ADD, ADDI, ADD, ADDIW, SW, BEQ. */
	CHECK(&C, hart_instret(v.h) == 1 + 3 * 6 + 2 + 8, "instret %llu", (unsigned long long)hart_instret(v.h));
	vm_fini(&v);
}

/* Pairs translated as one instruction: SLLI by 1..3 and an ADD of the
 * result (lea), with operands in host registers and in the hart's memory,
 * either order of the ADD, the shifted register also the added one; SLLI
 * and SRLI by 32, 48, 56 (a zero extension), and shifts that differ. */
static void test_scaled_add(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(10, 0, 100),    /* a0 = 100 */
		ADDI(6, 0, -7),      /* t1 = -7 (in memory) */
		SLLI(11, 10, 2),     /* a1 = t1 + (a0 << 2) = 393 */
		ADD(11, 6, 11),
		SLLI(7, 6, 3),       /* t2 = (t1 << 3) + a0 = 44 (t2 in memory) */
		ADD(7, 7, 10),
		SLLI(12, 10, 1),     /* a2 = (a0 << 1) + a0 = 300 */
		ADD(12, 12, 10),
		SLLI(13, 13, 3),     /* a3 = (a3 << 3) + a1, a3 = 0: 393 */
		ADD(13, 11, 13),
		SLLI(14, 10, 5),     /* not a pair: a4 = (a0 << 5) + a4 = 3200 */
		ADD(14, 14, 14),     /* a4 = 6400 */
		SLLI(15, 6, 32),     /* a5 = zext.w(t1) */
		rv_i(0x13, 5, 15, 15, 32),
		SLLI(28, 6, 48),     /* t3 = zext.h(t1) (in memory) */
		rv_i(0x13, 5, 28, 28, 48),
		SLLI(29, 11, 56),    /* t4 = a1 & 0xff */
		rv_i(0x13, 5, 29, 29, 56),
		SLLI(30, 6, 32),     /* not a pair (the shifts differ): t5 = */
		rv_i(0x13, 5, 30, 30, 33),  /* zext.w(t1) >> 1 */
		ECALL(),
	};
	put(&v, RAM_BASE, code, 21);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	CHECK(&C, hart_get_reg(v.h, 11) == 393, "a1 %lld", (long long)hart_get_reg(v.h, 11));
	CHECK(&C, hart_get_reg(v.h, 7) == 44, "t2 %lld", (long long)hart_get_reg(v.h, 7));
	CHECK(&C, hart_get_reg(v.h, 12) == 300, "a2 %lld", (long long)hart_get_reg(v.h, 12));
	CHECK(&C, hart_get_reg(v.h, 13) == 393, "a3 %lld", (long long)hart_get_reg(v.h, 13));
	CHECK(&C, hart_get_reg(v.h, 14) == 6400, "a4 %lld", (long long)hart_get_reg(v.h, 14));
	CHECK(&C, hart_get_reg(v.h, 15) == 0xfffffff9ull, "a5 %llx", (unsigned long long)hart_get_reg(v.h, 15));
	CHECK(&C, hart_get_reg(v.h, 28) == 0xfff9, "t3 %llx", (unsigned long long)hart_get_reg(v.h, 28));
	CHECK(&C, hart_get_reg(v.h, 29) == (393 & 0xff), "t4 %llx", (unsigned long long)hart_get_reg(v.h, 29));
	CHECK(&C, hart_get_reg(v.h, 30) == 0x7ffffffcull, "t5 %llx", (unsigned long long)hart_get_reg(v.h, 30));
	CHECK(&C, hart_instret(v.h) == 20, "instret %llu", (unsigned long long)hart_instret(v.h));
	vm_fini(&v);
}

/* Operands the instruction before left in rax: every instruction below
 * reads the result of the one before it, kept in the hart's memory (t and
 * s registers) and computed in rax, as the second operand of a SUB, an
 * ADD, a SUBW and a MUL whose first operand is in memory too (so rax is
 * also where the result is computed), as a shift count, a compare's
 * operand, the index of a scaled add whose base is in memory, a load's and
 * a store's base, and a zero extension's source. */
static void test_operands_from_rax(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(6, 0, 1000),    /* t1 = 1000 */
		ADDI(28, 6, 5),      /* t3 = 1005 */
		SUB(29, 6, 28),      /* t4 = t1 - t3 = -5 */
		ADD(30, 6, 29),      /* t5 = t1 + t4 = 995 */
		SUBW(31, 6, 30),     /* t6 = t1 - t5 = 5 */
		MUL(16, 6, 31),      /* a6 = t1 * t6 = 5000 */
		SRL(17, 6, 16),      /* a7 = t1 >> (5000 & 63 = 8) = 3 */
		SLT(18, 17, 6),      /* s2 = a7 < t1 = 1 */
		SLLI(19, 18, 3),     /* s3 = (s2 << 3) + t1 = 1008 */
		ADD(19, 19, 6),
		MULW(10, 6, 19),     /* a0 = t1 * s3 = 1008000 */
		rv_auipc(21, 1),     /* +0x2c: s5 = pc + 0x1000 */
		SD(6, 21, 8),        /* [s5 + 8] = t1 */
		rv_auipc(23, 1),     /* +0x34: s7 = s5 + 8 */
		LD(22, 23, 0),       /* s6 = [s7] = 1000 */
		SLLI(24, 22, 48),    /* s8 = zext.h(s6) = 1000 */
		SRLI(24, 24, 48),
		ECALL(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / sizeof(code[0]));
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	static const struct { unsigned r; int64_t v; } want[] = {
		{ 28, 1005 }, { 29, -5 }, { 30, 995 }, { 31, 5 }, { 16, 5000 }, { 17, 3 }, { 18, 1 },
		{ 19, 1008 }, { 10, 1008000 }, { 22, 1000 }, { 24, 1000 },
	};
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
		CHECK(&C, (int64_t)hart_get_reg(v.h, want[k].r) == want[k].v, "x%u = %lld, want %lld", want[k].r,
		      (long long)hart_get_reg(v.h, want[k].r), (long long)want[k].v);
	CHECK(&C, hart_get_reg(v.h, 23) == RAM_BASE + 0x1034, "s7 %llx", (unsigned long long)hart_get_reg(v.h, 23));
	CHECK(&C, hart_instret(v.h) == 17, "instret %llu", (unsigned long long)hart_instret(v.h));
	vm_fini(&v);
}

/* A register left in rax by one instruction (t1, kept in memory) and read
 * by the one after the next, across what clobbers rax in between: an FP
 * call, an AMO (a call into C), an illegal instruction (a trap, and back),
 * a CSR read (the translation ends), a load's first touch (its slow path
 * in C) off such a register. */
static void test_rax_across_calls_and_traps(void)
{
	struct vmx v;
	vm_init(&v, 0);
	const uint32_t fadd_d = rv_r(0x53, 0, 0x01, 0, 0, 1); /* fadd.d f0, f0, f1 */
	/* t1 = t0 + k is computed in rax and stored to t1's home. */
	uint32_t code[] = {
		ADDI(6, 5, 1),             /* 0x00: t1 = 101, in rax */
		fadd_d,                    /* 0x04 */
		ADD(10, 6, 6),             /* 0x08: a0 = 202 */
		ADDI(6, 5, 2),             /* 0x0c: t1 = 102 */
		AMOADD_D(7, 29, 28),       /* 0x10: t2 = [t4], [t4] += t3 */
		ADD(11, 6, 6),             /* 0x14: a1 = 204 */
		ADDI(6, 5, 3),             /* 0x18: t1 = 103 */
		CSRRW(0, CSR_CYCLE, 0),    /* 0x1c: illegal, the handler steps over it */
		ADD(12, 6, 6),             /* 0x20: a2 = 206 */
		ADDI(6, 5, 4),             /* 0x24: t1 = 104 */
		CSRRS(30, CSR_INSTRET, 0), /* 0x28 */
		ADD(13, 6, 6),             /* 0x2c: a3 = 208 */
		ADDI(20, 21, 8),           /* 0x30: s4 = s5 + 8, in rax */
		LD(14, 20, 0),             /* 0x34: a4 = [s4], a first touch */
		ADD(15, 20, 0),            /* 0x38: a5 = s4 */
		ECALL(),
	};
	uint32_t handler[] = {
		CSRRS(31, CSR_SEPC, 0), ADDI(31, 31, 4), CSRRW(0, CSR_SEPC, 31), SRET(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x800, handler, sizeof(handler) / 4);
	uint64_t data = 42;
	gram_write(&v.ram, RAM_BASE + 0x3008, &data, 8);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x800);
	hart_csr_write(v.h, CSR_SSTATUS, 1u << 13); /* FS: initial */
	hart_set_reg(v.h, 28, 5);
	hart_set_reg(v.h, 29, RAM_BASE + 0x2000);
	hart_set_reg(v.h, 5, 100);
	hart_set_reg(v.h, 21, RAM_BASE + 0x3000);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	static const struct { unsigned r; uint64_t v; } want[] = {
		{ 10, 202 }, { 11, 204 }, { 12, 206 }, { 13, 208 }, { 6, 104 }, { 14, 42 },
		{ 15, RAM_BASE + 0x3008 },
	};
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
		CHECK(&C, hart_get_reg(v.h, want[k].r) == want[k].v, "x%u = %#llx, want %#llx", want[k].r,
		      (unsigned long long)hart_get_reg(v.h, want[k].r), (unsigned long long)want[k].v);
	vm_fini(&v);
}

/* CBO.ZERO of a block of the hart's own code, called (and translated)
 * before, then FENCE.I: the next call runs the zeros there (an illegal
 * instruction), not the old translation. */
static void test_cbo_zero_own_code(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(9, 0, 3),               /* 0x00: s1 = 3 calls */
		JAL(1, 0x1000 - 0x04),       /* 0x04: call f */
		ADDI(9, 9, -1),
		BNE(9, 0, -8),
		CBO_ZERO(11),                /* 0x10: zero f's block (a1) */
		FENCE_I(),
		JAL(1, 0x1000 - 0x18),       /* 0x18: call f again */
		ECALL(),
	};
	uint32_t f[] = { ADDI(10, 10, 1), JALR(0, 1, 0) };
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x1000, f, 2);
	put(&v, RAM_BASE + 0x800, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x800);
	hart_set_reg(v.h, 11, RAM_BASE + 0x1000);
	struct hart_exit ex = run(&v);
	uint64_t cause = 0, epc = 0;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	hart_csr_read(v.h, CSR_SEPC, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == 3 && cause == 2 && epc == RAM_BASE + 0x1000,
	      "after CBO.ZERO of the called code and FENCE.I: reason %d a0 %llu (want 3) scause %llu "
	      "(want 2) sepc %llx", ex.reason, (unsigned long long)hart_get_reg(v.h, 10),
	      (unsigned long long)cause, (unsigned long long)epc);
	vm_fini(&v);
}

/* A zero extension done early (SLLI a5, t1, 48 ... SRLI a5, a5, 48) with
 * two loads off one base between (a probe group: the leader, then its
 * follower), the follower's bytes past the end of RAM: the MMIO exit at
 * the follower sees a5 as the SLLI left it, and so does the trap after it. */
static void test_zext_spread_follower_exit(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		SLLI(15, 6, 48),   /* 0x00: a5 = t1 << 48 */
		LD(12, 11, 0),     /* 0x04: a2 = [a1], the group's leader */
		LD(13, 11, 8),     /* 0x08: a3 = [a1 + 8]: past RAM, an MMIO exit */
		SRLI(15, 15, 48),  /* 0x0c */
		ECALL(),
	};
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x800, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x800);
	const uint64_t t1 = 0x0123456789abcdefull;
	hart_set_reg(v.h, 6, t1);
	hart_set_reg(v.h, 11, RAM_BASE + RAM_SIZE - 8);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && hart_get_pc(v.h) == RAM_BASE + 0x08 &&
		      hart_get_reg(v.h, 15) == t1 << 48,
	      "MMIO exit at the follower: reason %d pc %llx a5 %llx (want %llx)", ex.reason,
	      (unsigned long long)hart_get_pc(v.h), (unsigned long long)hart_get_reg(v.h, 15),
	      (unsigned long long)(t1 << 48));
	hart_mmio_complete(v.h, 0, true);
	ex = run(&v);
	uint64_t cause = 0;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 5 && hart_get_reg(v.h, 15) == t1 << 48,
	      "in the access fault's handler: cause %llu a5 %llx", (unsigned long long)cause,
	      (unsigned long long)hart_get_reg(v.h, 15));
	vm_fini(&v);
}

/* The pairs the JIT translates as one (SLLI + ADD, SLLI + SRLI, AUIPC +
 * JALR), attacked as a guest can: the second instruction entered by a
 * jump of its own (it must then read its registers, not the pair's
 * constant); a pair split by a page end; an AUIPC + JALR whose target is
 * outside RAM (the JALR retires, writing rd, and the fetch at the target
 * faults); and the second halves rewritten by the guest's own stores and
 * a FENCE.I (the new instructions run). */
static void test_fused_pairs_attacked(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t srli = 5; /* funct3 of SRLI */
	uint32_t mid[] = {
		ADDI(12, 0, 7),                 /* 0x00: a2 = 7 */
		ADDI(10, 0, 3),                 /* 0x04: a0 = 3 */
		ADDI(11, 0, 1000),              /* 0x08: a1 = 1000 */
		ADDI(14, 0, -1),                /* 0x0c: a4 = -1 */
		ADDI(15, 0, -2),                /* 0x10: a5 = -2 */
		JAL(0, 8),                      /* 0x14: to the ADD of the pair */
		SLLI(12, 10, 2),                /* 0x18: a2 = (a0 << 2) + a1 */
		ADD(12, 12, 11),                /* 0x1c */
		ADD(13, 13, 12),                /* 0x20: a3 += a2 */
		BNE(6, 0, 8),                   /* 0x24: round 2: the whole zext pair */
		JAL(0, 8),                      /* 0x28: round 1: its SRLI alone */
		SLLI(14, 15, 32),               /* 0x2c: a4 = zext.w(a5) */
		rv_i(0x13, srli, 14, 14, 32),   /* 0x30 */
		ADD(18, 18, 14),                /* 0x34: s2 += a4 */
		ADDI(6, 6, 1),                  /* 0x38 */
		ADDI(7, 0, 2),                  /* 0x3c */
		BNE(6, 7, -0x28),               /* 0x40: to 0x18 */
		ECALL(),                        /* 0x44 */
	};
	/* Any trap ends a run at the handler's ECALL (a wrong jump too). */
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE + 0x300, handler, 1);
	put(&v, RAM_BASE, mid, sizeof(mid) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x300);
	struct hart_exit ex = run(&v);
	/* Round 1: a2 = 7 + 1000, a4 = 0xffffffff; round 2: a2 = 12 + 1000,
	 * a4 = 0xfffffffe. */
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == RAM_BASE + 0x44 &&
		      hart_get_reg(v.h, 13) == 1007 + 1012,
	      "SLLI + ADD entered at the ADD, then whole: a3 %llu (want 2019)",
	      (unsigned long long)hart_get_reg(v.h, 13));
	CHECK(&C, hart_get_reg(v.h, 18) == 0xffffffffull + 0xfffffffeull,
	      "SLLI + SRLI entered at the SRLI, then whole: s2 %llx (want 1fffffffd)",
	      (unsigned long long)hart_get_reg(v.h, 18));

	/* AUIPC + JALR: called whole, then its JALR entered with another t0. */
	uint32_t call[] = {
		ADDI(10, 0, 0),                 /* 0x100 */
		rv_auipc(5, 0),                 /* 0x104: t0 = pc */
		JALR(1, 5, 0x3c),               /* 0x108: to 0x140, ra = 0x10c */
		BNE(6, 0, 16),                  /* 0x10c: round 2 -> 0x11c */
		ADDI(6, 0, 1),                  /* 0x110 */
		ADD(5, 19, 0),                  /* 0x114: t0 = s3 = 0x184 */
		JAL(0, -0x10),                  /* 0x118: to the JALR: 0x184 + 0x3c */
		ECALL(),                        /* 0x11c */
	};
	uint32_t f1[] = { ADDI(10, 10, 1), JALR(0, 1, 0) };
	uint32_t f100[] = { ADDI(10, 10, 100), JALR(0, 1, 0) };
	put(&v, RAM_BASE + 0x100, call, sizeof(call) / 4);
	put(&v, RAM_BASE + 0x140, f1, 2);
	put(&v, RAM_BASE + 0x1c0, f100, 2);
	hart_set_reg(v.h, 6, 0);
	hart_set_reg(v.h, 19, RAM_BASE + 0x184);
	hart_set_pc(v.h, RAM_BASE + 0x100);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == RAM_BASE + 0x11c && hart_get_reg(v.h, 10) == 101 &&
		      hart_get_reg(v.h, 1) == RAM_BASE + 0x10c,
	      "AUIPC + JALR, then its JALR entered with another base: a0 %llu (want 101) ra %llx",
	      (unsigned long long)hart_get_reg(v.h, 10), (unsigned long long)hart_get_reg(v.h, 1));

	/* AUIPC + JALR to an address outside RAM: t0 = pc - 2 GiB. */
	uint32_t away[] = { rv_auipc(5, 0x80000), JALR(1, 5, 0) };
	put(&v, RAM_BASE + 0x200, away, 2);
	hart_set_reg(v.h, 1, 0);
	hart_set_pc(v.h, RAM_BASE + 0x200);
	ex = run(&v);
	uint64_t cause, tval, epc;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	hart_csr_read(v.h, CSR_STVAL, &tval);
	hart_csr_read(v.h, CSR_SEPC, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 1 && epc == 0x200 && tval == 0x200 &&
		      hart_get_reg(v.h, 1) == RAM_BASE + 0x208,
	      "AUIPC + JALR out of RAM: cause %llu epc %llx tval %llx ra %llx (want 1, 200, 200, %llx)",
	      (unsigned long long)cause, (unsigned long long)epc, (unsigned long long)tval,
	      (unsigned long long)hart_get_reg(v.h, 1), (unsigned long long)(RAM_BASE + 0x208));

	/* Pairs split by page ends: SLLI | ADD at 0x1000, AUIPC | JALR at 0x2000. */
	uint32_t p0[] = { ADDI(10, 0, 5), ADDI(11, 0, 10), SLLI(12, 10, 3) };       /* 0xff4 */
	uint32_t p1[] = { ADD(12, 12, 11), JAL(0, 0xff8) };                          /* 0x1000 */
	uint32_t p2a[] = { rv_auipc(5, 0) };                                          /* 0x1ffc */
	uint32_t p2b[] = { JALR(1, 5, 0x14), ECALL() };                              /* 0x2000 */
	uint32_t p2f[] = { ADDI(13, 0, 77), JALR(0, 1, 0) };                         /* 0x2010 */
	put(&v, RAM_BASE + 0xff4, p0, 3);
	put(&v, RAM_BASE + 0x1000, p1, 2);
	put(&v, RAM_BASE + 0x1ffc, p2a, 1);
	put(&v, RAM_BASE + 0x2000, p2b, 2);
	put(&v, RAM_BASE + 0x2010, p2f, 2);
	hart_set_pc(v.h, RAM_BASE + 0xff4);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == RAM_BASE + 0x2004 &&
		      hart_get_reg(v.h, 12) == 50 && hart_get_reg(v.h, 13) == 77 &&
		      hart_get_reg(v.h, 1) == RAM_BASE + 0x2004,
	      "pairs across page ends: a2 %llu (want 50) a3 %llu (want 77) ra %llx",
	      (unsigned long long)hart_get_reg(v.h, 12), (unsigned long long)hart_get_reg(v.h, 13),
	      (unsigned long long)hart_get_reg(v.h, 1));

	/* The guest rewrites the second halves (ADD -> XOR, the JALR's
	 * offset), FENCE.I, and runs the pairs again. */
	uint32_t smc[] = {
		SLLI(12, 10, 2),                /* 0x3000: a2 = (a0 << 2) + a1 */
		ADD(12, 12, 11),                /* 0x3004: becomes XOR */
		rv_auipc(5, 0),                 /* 0x3008 */
		JALR(1, 5, 0x38),               /* 0x300c: to 0x3040; becomes 0x78: 0x3080 */
		ADD(13, 13, 12),                /* 0x3010: a3 += a2 */
		BNE(6, 0, 0x20),                /* 0x3014: round 2 -> 0x3034 */
		ADDI(6, 0, 1),                  /* 0x3018 */
		SW(20, 18, 0),                  /* 0x301c: s4 over 0x3004 */
		SW(21, 19, 0),                  /* 0x3020: s5 over 0x300c */
		FENCE_I(),                      /* 0x3024 */
		JAL(0, -0x28),                  /* 0x3028: to 0x3000 */
		ECALL(), ECALL(),               /* 0x302c */
		ECALL(),                        /* 0x3034 */
	};
	uint32_t g1[] = { ADDI(14, 14, 1), JALR(0, 1, 0) };
	uint32_t g100[] = { ADDI(14, 14, 100), JALR(0, 1, 0) };
	put(&v, RAM_BASE + 0x3000, smc, sizeof(smc) / 4);
	put(&v, RAM_BASE + 0x3040, g1, 2);
	put(&v, RAM_BASE + 0x3080, g100, 2);
	hart_set_reg(v.h, 10, 3);
	hart_set_reg(v.h, 11, 1000);
	hart_set_reg(v.h, 13, 0);
	hart_set_reg(v.h, 14, 0);
	hart_set_reg(v.h, 6, 0);
	hart_set_reg(v.h, 18, RAM_BASE + 0x3004);
	hart_set_reg(v.h, 19, RAM_BASE + 0x300c);
	hart_set_reg(v.h, 20, XOR(12, 12, 11));
	hart_set_reg(v.h, 21, JALR(1, 5, 0x78));
	hart_set_pc(v.h, RAM_BASE + 0x3000);
	ex = run(&v);
	/* Round 1: a2 = 12 + 1000, a4 = 1; round 2: a2 = 12 ^ 1000 = 996, a4 += 100. */
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == RAM_BASE + 0x3034 &&
		      hart_get_reg(v.h, 13) == 1012 + 996 &&
		      hart_get_reg(v.h, 14) == 101,
	      "second halves rewritten by the guest: a3 %llu (want 2008) a4 %llu (want 101)",
	      (unsigned long long)hart_get_reg(v.h, 13), (unsigned long long)hart_get_reg(v.h, 14));
	vm_fini(&v);
}

static void test_loop_and_sbi_exit(void)
{
	struct vmx v;
	vm_init(&v, 0);
	load_sum_program(&v, 1000);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	CHECK(&C, hart_get_reg(v.h, 10) == 500500, "sum %llu", (unsigned long long)hart_get_reg(v.h, 10));
	CHECK(&C, hart_get_pc(v.h) == RAM_BASE + 20, "pc at the ecall: %llx",
	      (unsigned long long)hart_get_pc(v.h));
	CHECK(&C, hart_instret(v.h) >= 3000, "instret %llu", (unsigned long long)hart_instret(v.h));
	vm_fini(&v);
}

struct sum_job { struct vmx v; int32_t n; uint64_t result; };

static void *sum_thread(void *arg)
{
	struct sum_job *j = arg;
	struct hart_exit ex = run(&j->v);
	j->result = ex.reason == EXIT_SBI ? hart_get_reg(j->v.h, 10) : ~0ull;
	return NULL;
}

/* Two harts of two different VMs, one thread each, no shared state. */
static void test_two_vms(void)
{
	struct sum_job a = { .n = 2000 }, b = { .n = 1500 };
	vm_init(&a.v, 0);
	vm_init(&b.v, 0);
	load_sum_program(&a.v, a.n);
	load_sum_program(&b.v, b.n);
	pthread_t ta, tb;
	pthread_create(&ta, NULL, sum_thread, &a);
	pthread_create(&tb, NULL, sum_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(&C, a.result == 2001000, "vm a: %llu", (unsigned long long)a.result);
	CHECK(&C, b.result == 1125750, "vm b: %llu", (unsigned long long)b.result);
	vm_fini(&a.v);
	vm_fini(&b.v);
}

static void test_mmio(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		rv_lui(5, 0x10000),  /* t0 = 0x10000000 (outside RAM) */
		LW(6, 5, 8),         /* load word: exit */
		ADDI(7, 6, 1),
		SW(7, 5, 12),        /* store word: exit */
		ECALL(),
	};
	put(&v, RAM_BASE, code, 5);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && !ex.mmio.write && ex.mmio.addr == 0x10000008 &&
	      ex.mmio.size == 4, "load exit %d %llx %u", ex.reason,
	      (unsigned long long)ex.mmio.addr, ex.mmio.size);
	hart_mmio_complete(v.h, 0xfffffffe, false); /* sign-extends as LW */
	CHECK(&C, hart_get_reg(v.h, 6) == 0xfffffffffffffffeull, "lw result %llx",
	      (unsigned long long)hart_get_reg(v.h, 6));
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && ex.mmio.write && ex.mmio.addr == 0x1000000c &&
	      ex.mmio.value == 0xffffffffu, "store exit %d %llx %llx", ex.reason,
	      (unsigned long long)ex.mmio.addr, (unsigned long long)ex.mmio.value);
	hart_mmio_complete(v.h, 0, false);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	/* A refused access becomes a load access fault at the load's pc. */
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x1000);
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE + 0x1000, handler, 1);
	ex = run(&v);
	hart_mmio_complete(v.h, 0, true);
	ex = run(&v);
	uint64_t cause = 0, epc = 0;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	hart_csr_read(v.h, CSR_SEPC, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 5 && epc == RAM_BASE + 4,
	      "fault: reason %d cause %llu epc %llx", ex.reason, (unsigned long long)cause,
	      (unsigned long long)epc);
	vm_fini(&v);
}

/* Registers are exact when translated code hands over mid-block: W results
 * whose upper half the block never reads (so the JIT may leave out their
 * sign extension, jit/widths.c) and XORs of them, in host registers and in
 * memory, at an MMIO load that leaves for the executor. */
static void test_narrow_registers_at_exit(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		rv_lui(5, 0x10000),  /* t0 = 0x10000000 (outside RAM) */
		rv_lui(13, 0x80000), /* a3 = 0x7fffffff */
		ADDIW(13, 13, -1),
		ADDI(12, 0, 1),      /* a2 = 1 */
		ADDW(14, 13, 12),    /* a4 = -2^31 */
		XOR(15, 14, 12),     /* a5 = -2^31 + 1 */
		ADDW(16, 13, 12),    /* a6, a7: the same in registers kept in memory */
		XOR(17, 16, 12),
		LW(6, 5, 0),         /* MMIO: exit */
		ADDW(14, 14, 0),     /* only the low halves read from here on */
		ADDW(15, 15, 0),
		ADDW(16, 16, 0),
		ADDW(17, 17, 0),
		ECALL(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	const uint64_t want[4] = { 0xffffffff80000000ull, 0xffffffff80000001ull,
				   0xffffffff80000000ull, 0xffffffff80000001ull };
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && ex.mmio.addr == 0x10000000, "mmio exit %d", ex.reason);
	for (unsigned r = 14; r <= 17; r++)
		CHECK(&C, hart_get_reg(v.h, r) == want[r - 14], "x%u at the exit: %llx", r,
		      (unsigned long long)hart_get_reg(v.h, r));
	hart_mmio_complete(v.h, 0, false);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	for (unsigned r = 14; r <= 17; r++)
		CHECK(&C, hart_get_reg(v.h, r) == want[r - 14], "x%u at the end: %llx", r,
		      (unsigned long long)hart_get_reg(v.h, r));
	vm_fini(&v);
}

static void test_illegal_trap(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = { ADDI(5, 0, 7), 0xffffffffu };
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, 2);
	put(&v, RAM_BASE + 0x100, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x100);
	struct hart_exit ex = run(&v);
	uint64_t cause, tval, epc, st;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	hart_csr_read(v.h, CSR_STVAL, &tval);
	hart_csr_read(v.h, CSR_SEPC, &epc);
	hart_csr_read(v.h, CSR_SSTATUS, &st);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == RAM_BASE + 0x100, "at handler");
	CHECK(&C, cause == 2 && tval == 0xffffffffu && epc == RAM_BASE + 4,
	      "cause %llu tval %llx epc %llx", (unsigned long long)cause,
	      (unsigned long long)tval, (unsigned long long)epc);
	CHECK(&C, st & (1u << 8), "SPP records S-mode: sstatus %llx", (unsigned long long)st);
	CHECK(&C, hart_get_reg(v.h, 5) == 7, "instruction before the trap retired");
	/* Illegal only when it runs (SRET in U-mode): stval still has the bits. */
	uint32_t user[] = { SRET() };
	put(&v, RAM_BASE + 0x40, user, 1);
	hart_set_pc(v.h, RAM_BASE + 0x40);
	hart_set_priv(v.h, PRIV_U);
	ex = run(&v);
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	hart_csr_read(v.h, CSR_STVAL, &tval);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 2 && tval == SRET(),
	      "runtime illegal: cause %llu tval %llx", (unsigned long long)cause, (unsigned long long)tval);
	vm_fini(&v);
}

/* A read of instret or cycle counts every instruction retired before it,
 * those earlier in its own block too (Zicntr), on every tier. */
static void test_instret_exact(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(5, 0, 1),
		ADDI(6, 0, 2),
		ADDI(7, 0, 3),
		CSRRS(10, CSR_INSTRET, 0), /* 3 retired before it */
		ADDI(5, 5, 1),
		CSRRS(11, CSR_CYCLE, 0),   /* 5 */
		ADDI(12, 0, 10),
		ADDI(12, 12, -1),          /* loop, 10 times: 20 instructions */
		BNE(12, 0, -4),
		ADDI(5, 5, 1),
		CSRRS(13, CSR_INSTRET, 0), /* 7 + 20 + 1 = 28 */
		ECALL(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	CHECK(&C, hart_get_reg(v.h, 10) == 3 && hart_get_reg(v.h, 11) == 5 && hart_get_reg(v.h, 13) == 28,
	      "instret read %llu, cycle %llu, instret after the loop %llu (want 3, 5, 28)",
	      (unsigned long long)hart_get_reg(v.h, 10), (unsigned long long)hart_get_reg(v.h, 11),
	      (unsigned long long)hart_get_reg(v.h, 13));
	vm_fini(&v);
}

/* Short forward branches over a few ALU instructions, which the JIT
 * if-converts (translate.c, emit_hammock), both ways in one loop: tails of
 * one, two and three instructions, writing a register kept in a host
 * register or in memory, one that is also the branch's first or second
 * operand, under each of the six conditions. The registers, the instret
 * read after the loop (each tail counts only when it ran) and the pc
 * (the ecall reached, nothing skipped twice) must be the executor's,
 * computed here. */
static void test_short_forward_branches(void)
{
	struct vmx v;
	vm_init(&v, 0);
	enum { N = 64 };
	uint32_t code[] = {
		ADDI(5, 0, 0),             /* t0 = i = 0 */
		ADDI(6, 0, N),             /* t1 = N */
		ADDI(31, 0, 13),           /* t6 = 13 */
		/* loop: */
		rv_i(0x13, 7, 7, 5, 1),    /* t2 = i & 1 */
		BEQ(7, 0, 8),              /* if odd: a0 += 3 (a0 in a host register) */
		ADDI(10, 10, 3),
		rv_i(0x13, 7, 7, 5, 2),    /* t2 = i & 2 */
		BNE(7, 0, 12),             /* if clear: t3 = (t3 + 7) ^ i (in memory) */
		ADDI(28, 28, 7),
		XOR(28, 28, 5),
		MUL(30, 5, 31),            /* t5 = (i * 13) & 31 */
		rv_i(0x13, 7, 30, 30, 31),
		rv_b(5, 11, 30, 8),        /* a1 = max(a1, t5): rd is rs1 */
		ADD(11, 30, 0),
		rv_b(6, 30, 29, 8),        /* t4 = maxu(t4, t5): rd (in memory) is rs2 */
		ADDI(29, 30, 0),
		rv_b(5, 5, 30, 16),        /* if i < t5: a2 = zext.h(a0) + 1 */
		SLLI(12, 10, 48),
		rv_i(0x13, 5, 12, 12, 48),
		ADDI(12, 12, 1),
		rv_b(4, 30, 5, 8),         /* if t5 >= i: t3 += i (blt) */
		ADD(28, 28, 5),
		rv_b(7, 5, 30, 8),         /* if i < t5 (unsigned): a4 = sext.w(a4 * 2) */
		ADDW(14, 14, 14),
		ADDI(14, 14, 1),           /* a4 += 1, always */
		ADDI(5, 5, 1),
		BNE(5, 6, -92),
		CSRRS(13, CSR_INSTRET, 0), /* a3 = instret */
		ECALL(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	/* The same program in C. */
	uint64_t a0 = 0, t3 = 0, a1 = 0, t4 = 0, a2 = 0, a4 = 0, retired = 3;
	for (uint64_t i = 0; i < N; i++) {
		uint64_t t5 = (i * 13) & 31;
		retired += 14;
		if (i & 1)
			a0 += 3, retired++;
		if (!(i & 2))
			t3 = (t3 + 7) ^ i, retired += 2;
		if ((int64_t)a1 < (int64_t)t5)
			a1 = t5, retired++;
		if (!(t5 < t4))
			t4 = t5, retired++;
		if ((int64_t)i < (int64_t)t5)
			a2 = (a0 & 0xffff) + 1, retired += 3;
		if (!((int64_t)t5 < (int64_t)i))
			t3 += i, retired++;
		if (!(i >= t5))
			a4 = (uint64_t)(int64_t)(int32_t)(a4 * 2), retired++;
		a4++;
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == RAM_BASE + 4 * (sizeof(code) / 4 - 1),
	      "reason %d pc %llx", ex.reason, (unsigned long long)hart_get_pc(v.h));
	static const unsigned regs[] = { 10, 28, 11, 29, 12, 14 };
	const uint64_t want[] = { a0, t3, a1, t4, a2, a4 };
	for (size_t k = 0; k < sizeof(regs) / sizeof(regs[0]); k++)
		CHECK(&C, hart_get_reg(v.h, regs[k]) == want[k], "x%u = %#llx, want %#llx", regs[k],
		      (unsigned long long)hart_get_reg(v.h, regs[k]), (unsigned long long)want[k]);
	CHECK(&C, hart_get_reg(v.h, 13) == retired, "instret read %llu, want %llu",
	      (unsigned long long)hart_get_reg(v.h, 13), (unsigned long long)retired);
	vm_fini(&v);
}

/* A hart spinning forever takes an external interrupt posted from here.
 * The loop stores its count to memory, and the interrupt is posted once
 * that shows the loop running (however long the hart's thread waits for a
 * host CPU first), so the interrupt arrives mid-loop, never before it. */
struct spin_job { struct vmx *v; struct hart_exit ex; };

static void *spin_thread(void *arg)
{
	struct spin_job *j = arg;
	j->ex = run(j->v);
	return NULL;
}

static void test_async_interrupt(void)
{
	struct vmx v;
	vm_init(&v, 0);
	const uint64_t counter = RAM_BASE + 0x400;
	uint32_t code[] = {
		ADDI(6, 0, 1),
		SLLI(6, 6, 31),      /* t1 = RAM_BASE */
		ADDI(6, 6, 0x400),   /* t1 = the counter */
		ADDI(5, 5, 1),       /* loop: t0++ */
		SD(5, 6, 0),         /* counter = t0 */
		BEQ(0, 0, -8),
	};
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x200, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x200);
	hart_csr_write(v.h, CSR_SIE, IRQ_SEI);
	hart_csr_write(v.h, CSR_SSTATUS, 2); /* SIE */
	struct spin_job j = { .v = &v };
	pthread_t t;
	pthread_create(&t, NULL, spin_thread, &j);
	const uint64_t *count = gram_ptr(&v.ram, counter, 8);
	/* The deadline only bounds a broken engine: passing never depends on
	 * it. */
	uint64_t deadline = clock_monotonic_ns() + 120 * 1000000000ull;
	while (__atomic_load_n(count, __ATOMIC_RELAXED) < 1000 && clock_monotonic_ns() < deadline)
		usleep(1000);
	uint64_t seen = __atomic_load_n(count, __ATOMIC_RELAXED);
	hart_set_irq(v.h, IRQ_SEI, true);
	pthread_join(t, NULL);
	uint64_t cause;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	CHECK(&C, seen >= 1000, "the loop ran %llu times in two minutes", (unsigned long long)seen);
	CHECK(&C, j.ex.reason == EXIT_SBI && cause == ((1ull << 63) | 9),
	      "reason %d cause %llx", j.ex.reason, (unsigned long long)cause);
	CHECK(&C, hart_get_reg(v.h, 5) >= seen, "the loop ran on to %llu after %llu were seen",
	      (unsigned long long)hart_get_reg(v.h, 5), (unsigned long long)seen);
	vm_fini(&v);
}

/* An interrupt posted to a loop of one block that keeps a W result narrow
 * across its jump back (a4, negative, left by a 32-bit SUBW): the
 * translation must leave at the deadline check on that jump (a loop that
 * jumped back unchecked would never take it), and the trap must see a4's
 * architectural value, its low half's sign extension. Posted once the
 * loop shows it runs, as in test_async_interrupt. (A missing widening
 * before that exit does not show here: the executor runs the block once
 * more before it takes the interrupt, and that rewrites a4.) */
static void test_interrupt_in_narrow_loop(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDW(14, 14, 15),          /* loop: a4 += a5 */
		rv_i(0x13, 6, 14, 14, -2048), /* ori a4, a4, -2048: negative */
		SUBW(14, 14, 7),           /* a4 -= 1: still negative, a 32-bit sub */
		ADDI(5, 5, 1),             /* t0++ */
		SD(5, 6, 0),               /* counter (t1, not the code's page) = t0 */
		BEQ(0, 0, -0x14),          /* to the loop */
	};
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x200, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x200);
	hart_csr_write(v.h, CSR_SIE, IRQ_SEI);
	hart_csr_write(v.h, CSR_SSTATUS, 2); /* SIE */
	hart_set_reg(v.h, 15, 0x12345679);
	hart_set_reg(v.h, 7, 1);
	hart_set_reg(v.h, 6, RAM_BASE + 0x2000);
	struct spin_job j = { .v = &v };
	pthread_t t;
	pthread_create(&t, NULL, spin_thread, &j);
	const uint64_t *count = gram_ptr(&v.ram, RAM_BASE + 0x2000, 8);
	uint64_t deadline = clock_monotonic_ns() + 120 * 1000000000ull;
	while (__atomic_load_n(count, __ATOMIC_RELAXED) < 100000 && clock_monotonic_ns() < deadline)
		usleep(1000);
	hart_set_irq(v.h, IRQ_SEI, true);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	if (pthread_timedjoin_np(t, NULL, &until)) {
		CHECK(&C, false, "a loop of one block did not take an interrupt in 20 s");
		exit(check_summary(&C));
	}
	uint64_t a4 = hart_get_reg(v.h, 14), sepc = 0;
	hart_csr_read(v.h, CSR_SEPC, &sepc);
	CHECK(&C, j.ex.reason == EXIT_SBI && a4 == (uint64_t)(int64_t)(int32_t)a4 && (int64_t)a4 < 0,
	      "reason %d a4 %#llx (want its low half's sign extension, negative), sepc %#llx", j.ex.reason,
	      (unsigned long long)a4, (unsigned long long)sepc);
	vm_fini(&v);
}

/* A loop that touches no memory and whose blocks link to each other (a
 * forward jump within the page, then a jump back) still leaves for a kick
 * and takes an interrupt posted from another thread: translated code
 * checks the deadline, which both zero, on the jump back. The loop shows it
 * has run only when it leaves (its registers are the hart thread's), so
 * this thread kicks until a kick finds the loop run at least once
 * (translated and linked under the JIT tiers), however long the hart's
 * thread waited for a host CPU first; then it posts the interrupt. A hart
 * that misses the poke never leaves hart_run; the deadlines only bound
 * such a broken engine. */
struct linked_job { struct vmx *v; struct hart_exit ex; atomic_bool looped; };

static void *linked_thread(void *arg)
{
	struct linked_job *j = arg;
	do {
		if (run_limited(j->v->h, &j->ex))
			break;
		if (j->ex.reason == EXIT_KICK && hart_get_reg(j->v->h, 7) > 0)
			atomic_store(&j->looped, true);
	} while (j->ex.reason == EXIT_KICK);
	return NULL;
}

static void test_interrupt_in_linked_loop(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(5, 5, 1),       /* loop: t0++ */
		BEQ(0, 0, 8),        /* forward, over the next instruction */
		ADDI(6, 6, 1),
		ADDI(7, 7, 1),       /* t2++ */
		BEQ(0, 0, -16),      /* back to the loop */
	};
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x200, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x200);
	hart_csr_write(v.h, CSR_SIE, IRQ_SEI);
	hart_csr_write(v.h, CSR_SSTATUS, 2); /* SIE */
	struct linked_job j = { .v = &v };
	pthread_t t;
	pthread_create(&t, NULL, linked_thread, &j);
	uint64_t deadline = clock_monotonic_ns() + 120 * 1000000000ull;
	while (!atomic_load(&j.looped) && clock_monotonic_ns() < deadline) {
		hart_kick(v.h);
		usleep(1000);
	}
	CHECK(&C, atomic_load(&j.looped), "a kick never found the linked loop run in two minutes");
	hart_set_irq(v.h, IRQ_SEI, true);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	if (pthread_timedjoin_np(t, NULL, &until)) {
		CHECK(&C, false, "a linked loop did not take an interrupt in 20 s");
		exit(check_summary(&C));
	}
	uint64_t cause;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	CHECK(&C, j.ex.reason == EXIT_SBI && cause == ((1ull << 63) | 9),
	      "reason %d cause %llx", j.ex.reason, (unsigned long long)cause);
	CHECK(&C, hart_get_reg(v.h, 6) == 0 && hart_get_reg(v.h, 5) >= hart_get_reg(v.h, 7) &&
	      hart_get_reg(v.h, 7) > 0, "t0 %llu t1 %llu t2 %llu",
	      (unsigned long long)hart_get_reg(v.h, 5), (unsigned long long)hart_get_reg(v.h, 6),
	      (unsigned long long)hart_get_reg(v.h, 7));
	vm_fini(&v);
}

static void test_timer_and_wfi(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = { WFI(), BEQ(0, 0, -4) };
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, 2);
	put(&v, RAM_BASE + 0x200, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x200);
	hart_csr_write(v.h, CSR_SIE, IRQ_STI);
	hart_csr_write(v.h, CSR_SSTATUS, 2);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_WFI && hart_get_pc(v.h) == RAM_BASE + 4, "wfi exit %d", ex.reason);
	CHECK(&C, !hart_wakeup_pending(v.h), "nothing pending yet");
	uint64_t t;
	hart_csr_read(v.h, CSR_TIME, &t);
	hart_csr_write(v.h, CSR_STIMECMP, t + 1000); /* 100 us at 10 MHz */
	usleep(2000);
	CHECK(&C, hart_wakeup_pending(v.h), "timer pending after the deadline");
	ex = run(&v);
	uint64_t cause;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	CHECK(&C, ex.reason == EXIT_SBI && cause == ((1ull << 63) | 5), "timer trap cause %llx",
	      (unsigned long long)cause);
	vm_fini(&v);
}

/* Code rewritten by a store, and by a device (gram_write), is re-decoded. */
static void test_code_invalidation(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(10, 0, 1),      /* 0x00: patched below */
		ECALL(),             /* 0x04 */
		SW(6, 5, 0),         /* 0x08: store t1 over 0x00 */
		BEQ(0, 0, -12),      /* 0x0c: back to 0x00 */
	};
	put(&v, RAM_BASE, code, 4);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == 1, "first pass");
	hart_set_reg(v.h, 5, RAM_BASE);
	hart_set_reg(v.h, 6, ADDI(10, 0, 2));
	hart_set_pc(v.h, RAM_BASE + 8);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == 2,
	      "a store to decoded code is seen: a0 %llu", (unsigned long long)hart_get_reg(v.h, 10));
	uint32_t patch = ADDI(10, 0, 3);
	gram_write(&v.ram, RAM_BASE, &patch, 4);
	hart_set_pc(v.h, RAM_BASE);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == 3, "a DMA write is seen");
	vm_fini(&v);
}

/* k one-block fragments, `addi a0, a0, 1; jal next`, `stride` bytes apart
 * from FRAG0; the last one jumps to x6. */
#define FRAG0 (RAM_BASE + 0x1000)

static void put_fragments(struct vmx *v, unsigned k, uint64_t stride)
{
	for (unsigned i = 0; i < k; i++) {
		uint64_t at = FRAG0 + i * stride;
		uint32_t frag[] = { ADDI(10, 10, 1),
				    i + 1 < k ? JAL(0, (int32_t)stride - 4) : JALR(0, 6, 0) };
		put(v, at, frag, 2);
	}
}

/* The fragments run `loops` times by a loop at RAM_BASE that ends in an
 * ECALL; a0 counts the fragments run. */
static void load_fragment_loop(struct vmx *v, unsigned k, uint64_t stride, int32_t loops)
{
	uint32_t head[] = {
		ADDI(5, 0, loops),                          /* 0x00 */
		ADDI(10, 0, 0),                             /* 0x04 */
		JAL(0, (int32_t)(FRAG0 - (RAM_BASE + 8))), /* 0x08: the loop */
		ADDI(5, 5, -1),                             /* 0x0c: back from the last */
		BNE(5, 0, -8),                              /* 0x10 */
		ECALL(),                                    /* 0x14 */
	};
	put(v, RAM_BASE, head, 6);
	put_fragments(v, k, stride);
	hart_reset(v->h, RAM_BASE, 0);
	hart_set_reg(v->h, 6, RAM_BASE + 0x0c);
}

/* More blocks than the cache holds, all in one set of its table (16 KiB
 * apart): blocks are dropped from their set on every step, the arena fills
 * and is emptied many times, and the guest computes the same thing. */
static void test_block_cache_pressure(void)
{
	const uint64_t sizes[] = { 16 << 10, 0 };
	for (int s = 0; s < 2; s++) {
		struct vmx v;
		vm_init_cache(&v, 0, sizes[s]);
		load_fragment_loop(&v, 200, 16 << 10, 5);
		struct hart_exit ex = run(&v);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == 1000,
		      "cache %llu: reason %d, a0 %llu (want 1000)", (unsigned long long)sizes[s],
		      ex.reason, (unsigned long long)hart_get_reg(v.h, 10));
		vm_fini(&v);
	}
}

/* Code changed by a device (gram_written, no store by the hart) on one
 * page runs after a remote fence.i, and only that page's blocks are
 * decoded again (per-page invalidation: the blocks of the other pages
 * stay). With few blocks and with many. */
static void test_fence_i_per_page(void)
{
	const unsigned counts[] = { 10, 2000 };
	for (int c = 0; c < 2; c++) {
		unsigned k = counts[c];
		struct vmx v;
		vm_init(&v, 0);
		load_fragment_loop(&v, k, 8, 1);
		struct hart_exit ex = run(&v);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == k, "%u blocks: first run", k);
		uint64_t built = hart_blocks_built(v.h);
		uint32_t add2 = ADDI(10, 10, 2);
		gram_write(&v.ram, FRAG0 + 8 * (k - 1), &add2, 4);
		hart_request_fence_i(v.h);
		hart_set_pc(v.h, RAM_BASE);
		ex = run(&v);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == k + 1,
		      "%u blocks: after fence.i a0 %llu (want %u)", k,
		      (unsigned long long)hart_get_reg(v.h, 10), k + 1);
		/* The changed fragment's page holds 512 fragments at most, plus
		 * the loop's blocks at RAM_BASE, which did not change. */
		uint64_t again = hart_blocks_built(v.h) - built;
		CHECK(&C, again >= 1 && again <= 512, "%u blocks: %llu decoded again (want 1 to 512)", k,
		      (unsigned long long)again);
		vm_fini(&v);
	}
}

/* Cross-modifying code through a write translation that predates the code:
 * hart B stores to a page (and keeps the write translation), hart A then
 * runs code from that page, B overwrites the code through its old
 * translation, leaves hart_run (the SBI call a guest makes for a remote
 * fence.i) and A is asked for a fence.i: A must run the new code. Run
 * one after the other on this thread; the harts never overlap. */
static void test_cross_hart_code_write(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	const uint64_t page = RAM_BASE + 0x3000;
	uint32_t code_b[] = {
		SW(6, 5, 0),         /* *t0 = t1 */
		ECALL(),
	};
	uint32_t code_a[] = { ADDI(10, 0, 1), ECALL() };
	gram_write(&ram, RAM_BASE, code_b, sizeof(code_b));
	struct hart *h[2];
	for (int k = 0; k < 2; k++) {
		struct hart_config cfg = { .hartid = (uint32_t)k, .time_base_ns = clock_monotonic_ns() };
		engine_tier_from_env(&cfg);
		h[k] = hart_create(&ram, &cfg);
	}
	struct hart *a = h[0], *b = h[1];
	struct hart_exit ex;
	/* B writes A's code (a data write as far as anyone knows). */
	hart_reset(b, RAM_BASE, 0);
	hart_set_reg(b, 5, page);
	hart_set_reg(b, 6, code_a[0]);
	run_limited(b, &ex);
	gram_write(&ram, page + 4, &code_a[1], 4); /* the ECALL, as a device would */
	/* A runs it, a few times, so that the JIT translates it too. */
	for (int n = 0; n < 20; n++) {
		hart_reset(a, page, 0);
		run_limited(a, &ex);
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(a, 10) == 1, "A ran the first code: a0 %llu",
	      (unsigned long long)hart_get_reg(a, 10));
	/* B patches it through the write translation it still holds. */
	hart_set_pc(b, RAM_BASE);
	hart_set_reg(b, 6, ADDI(10, 0, 2));
	run_limited(b, &ex);
	CHECK(&C, ex.reason == EXIT_SBI, "B: reason %d", ex.reason);
	hart_request_fence_i(a);
	hart_set_pc(a, page);
	run_limited(a, &ex);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(a, 10) == 2,
	      "after B's write and a fence.i, A runs the new code: a0 %llu (want 2)",
	      (unsigned long long)hart_get_reg(a, 10));
	for (int k = 0; k < 2; k++)
		hart_destroy(h[k]);
	gram_destroy(&ram);
}

/* A hart that sleeps in WFI two seconds, longer than it ran since it last
 * looked, gives the cache's memory back at its next WFI, and goes on
 * running correctly. The run between two sleeps counts as running: on a
 * host too busy to run one pass within a sleep, the next sleep decides. */
static void test_block_cache_idle(void)
{
	struct vmx v;
	vm_init(&v, 0);
	const unsigned k = 3000; /* over 256 KiB of blocks */
	uint32_t tail[] = { WFI(), JAL(0, (int32_t)(FRAG0 - (RAM_BASE + 4))) };
	put(&v, RAM_BASE, tail, 2);
	put_fragments(&v, k, 8);
	hart_reset(v.h, FRAG0, 0);
	hart_set_reg(v.h, 6, RAM_BASE);
	struct hart_exit ex = run(&v);
	uint64_t held = hart_block_cache_bytes(v.h);
	CHECK(&C, ex.reason == EXIT_WFI && hart_get_reg(v.h, 10) == k && held >= 256 << 10,
	      "first pass: reason %d, cache %llu bytes", ex.reason, (unsigned long long)held);
	unsigned passes = 1;
	bool wrong = false;
	for (int tries = 0; tries < 5 && hart_block_cache_bytes(v.h); tries++) {
		usleep(2100000);
		ex = run(&v);
		passes++;
		wrong |= ex.reason != EXIT_WFI || hart_get_reg(v.h, 10) != passes * k;
	}
	CHECK(&C, !wrong && hart_block_cache_bytes(v.h) == 0, "idle: reason %d, a0 %llu after %u passes, cache %llu bytes",
	      ex.reason, (unsigned long long)hart_get_reg(v.h, 10), passes,
	      (unsigned long long)hart_block_cache_bytes(v.h));
	ex = run(&v);
	passes++;
	CHECK(&C, ex.reason == EXIT_WFI && hart_get_reg(v.h, 10) == passes * k &&
	      hart_block_cache_bytes(v.h) >= 256 << 10, "rebuilt: a0 %llu, cache %llu bytes",
	      (unsigned long long)hart_get_reg(v.h, 10),
	      (unsigned long long)hart_block_cache_bytes(v.h));
	vm_fini(&v);
}

/* Time a hart spends outside WFI counts as running, however long: a hart
 * held two seconds in an SBI call (or by a busy host) that then sleeps in
 * WFI keeps its cache (its age alone emptied it once). */
static void test_block_cache_kept_when_busy(void)
{
	struct vmx v;
	vm_init(&v, 0);
	const unsigned k = 3000;
	uint32_t tail[] = { ECALL(), WFI(), JAL(0, (int32_t)(FRAG0 - (RAM_BASE + 8))) };
	put(&v, RAM_BASE, tail, 3);
	put_fragments(&v, k, 8);
	hart_reset(v.h, FRAG0, 0);
	hart_set_reg(v.h, 6, RAM_BASE);
	struct hart_exit ex = run(&v);
	uint64_t held = hart_block_cache_bytes(v.h);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 10) == k && held >= 256 << 10,
	      "first pass: reason %d, cache %llu bytes", ex.reason, (unsigned long long)held);
	usleep(2100000);
	hart_set_pc(v.h, RAM_BASE + 4); /* past the ECALL, as the monitor returns */
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_WFI && hart_block_cache_bytes(v.h) >= held,
	      "a WFI after two seconds in an SBI call: reason %d, cache %llu bytes (had %llu)", ex.reason,
	      (unsigned long long)hart_block_cache_bytes(v.h), (unsigned long long)held);
	vm_fini(&v);
}

/* Two harts of one VM on two threads hammer one counter with AMOADD.D. */
struct amo_job { struct gram *ram; struct hart *h; };

static void *amo_thread(void *arg)
{
	struct amo_job *j = arg;
	struct hart_exit ex;
	do
		if (run_limited(j->h, &ex))
			break;
	while (ex.reason == EXIT_KICK);
	return NULL;
}

static void test_amo_two_harts(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	uint32_t code[] = {
		ADDI(6, 0, 1),       /* t0 = the counter's address, set below */
		rv_lui(7, 0x20),     /* t2 = 0x20000 iterations */
		AMOADD_D(0, 5, 6),   /* loop */
		ADDI(7, 7, -1),
		BNE(7, 0, -8),
		ECALL(),
	};
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	struct hart *h[2];
	struct amo_job j[2];
	pthread_t t[2];
	for (int k = 0; k < 2; k++) {
		struct hart_config cfg = { .hartid = (uint32_t)k, .time_base_ns = clock_monotonic_ns() };
		engine_tier_from_env(&cfg);
		h[k] = hart_create(&ram, &cfg);
		hart_reset(h[k], RAM_BASE, 0);
		hart_set_reg(h[k], 5, 0x80100000);
		j[k] = (struct amo_job){ &ram, h[k] };
		pthread_create(&t[k], NULL, amo_thread, &j[k]);
	}
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	uint64_t counter = 0;
	gram_read(&ram, 0x80100000, &counter, 8);
	CHECK(&C, counter == 2 * 0x20000, "counter %llu", (unsigned long long)counter);
	for (int k = 0; k < 2; k++)
		hart_destroy(h[k]);
	gram_destroy(&ram);
}

/* Four harts on four threads, more than this host's cores, so harts are
 * preempted in the middle of their atomic sequences and critical sections,
 * and two of them run at the same time on two host cores. Phase 1: each
 * adds 1 to counter A with AMOADD.D and to counter B with an LR/SC loop,
 * over and over; phase 2: each adds 1 to counter C with a plain load and
 * store under a spinlock taken with AMOSWAP.W.aq (spinning with PAUSE)
 * and released by FENCE RW,W and a store. Each hart counts its own rounds;
 * A, B and C must equal the sums. A phase ends when this thread sets its
 * stop word, once the harts have contended enough (failed SCs, a lock
 * found taken): so it tests simultaneous harts on any host speed or load,
 * and never depends on how long the harts get to run. */
struct smp_job { struct hart *h; _Atomic bool *give_up; _Atomic int *done; };

static void *smp_thread(void *arg)
{
	struct smp_job *j = arg;
	struct hart_exit ex;
	do {
		if (run_limited(j->h, &ex))
			break;
		if (ex.reason == EXIT_PAUSE)
			sched_yield(); /* as the dispatcher does: let the others run */
	} while ((ex.reason == EXIT_KICK && !*j->give_up) || ex.reason == EXIT_PAUSE);
	(*j->done)++;
	return NULL;
}

/* Wait until *word reaches want; false if that took longer than any
 * working engine needs (the harts never ran at the same time). */
static bool smp_wait(const uint64_t *word, uint64_t want)
{
	uint64_t deadline = clock_monotonic_ns() + 120 * 1000000000ull;
	while (__atomic_load_n(word, __ATOMIC_RELAXED) < want)
		if (clock_monotonic_ns() > deadline)
			return false;
		else
			usleep(1000);
	return true;
}

static void test_smp_atomics(void)
{
	enum { HARTS = 4, CONTENDED = 200 };
	/* lock, then A, B, C, failed SCs, lock found taken, stop 1, stop 2 */
	const uint64_t base = RAM_BASE + 0x10000;
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	uint32_t code[] = {
		ADDI(6, 0, 1),
		SLLI(6, 6, 31),
		rv_lui(7, 0x10),
		ADD(6, 6, 7),            /* t1 = base (the lock) */
		ADDI(9, 0, 1),           /* s1 = 1 */
		ADDI(8, 0, 0),           /* s0 = rounds of phase 1 */
		ADDI(18, 0, 0),          /* s2 = rounds of phase 2 */
		ADDI(7, 6, 8),           /* t2 = &A */
		ADDI(28, 6, 16),         /* t3 = &B */
		ADDI(29, 6, 24),         /* t4 = &C */
		ADDI(11, 6, 32),         /* a1 = &failed SCs */
		ADDI(12, 6, 40),         /* a2 = &lock found taken */
		AMOADD_D(0, 7, 9),       /* 12: A += 1 */
		LR_D(30, 28),            /* 13: B += 1 */
		ADDI(30, 30, 1),
		SC_D(31, 28, 30),
		BEQ(31, 0, 12),          /* to 19 */
		AMOADD_D(0, 11, 9),      /* failed SCs += 1 */
		JAL(0, -20),             /* to 13 */
		ADDI(8, 8, 1),           /* 19 */
		LD(30, 6, 48),
		BEQ(30, 0, -36),         /* to 12 until stop 1 */
		AMOSWAP_W_AQ(30, 6, 9),  /* 22: acquire */
		BEQ(30, 0, 24),          /* to 29 */
		AMOADD_D(0, 12, 9),      /* lock found taken += 1 */
		PAUSE(),                 /* 25: spin */
		rv_i(0x03, 2, 30, 6, 0), /* lw t5, 0(lock) */
		BNE(30, 0, -8),          /* to 25 */
		JAL(0, -24),             /* to 22 */
		LD(30, 29, 0),           /* 29: C += 1 inside the lock */
		ADDI(30, 30, 1),
		SD(30, 29, 0),
		FENCE(3, 1),             /* fence rw, w */
		SW(0, 6, 0),             /* release */
		ADDI(18, 18, 1),
		LD(30, 6, 56),
		BEQ(30, 0, -56),         /* to 22 until stop 2 */
		ECALL(),                 /* 37 */
	};
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	uint64_t *w = gram_ptr(&ram, base, 64);
	struct hart *h[HARTS];
	struct smp_job j[HARTS];
	pthread_t t[HARTS];
	_Atomic bool give_up = false;
	_Atomic int done = 0;
	for (int k = 0; k < HARTS; k++) {
		struct hart_config cfg = { .hartid = (uint32_t)k, .time_base_ns = clock_monotonic_ns() };
		engine_tier_from_env(&cfg);
		/* Lockstep compares one hart with itself: with other harts
		 * storing in between, its two runs would see different
		 * memory (docs/architecture.md). The JIT runs here instead. */
		cfg.jit_lockstep = false;
		h[k] = hart_create(&ram, &cfg);
		hart_reset(h[k], RAM_BASE, 0);
		j[k] = (struct smp_job){ h[k], &give_up, &done };
	}
	for (int k = 0; k < HARTS; k++)
		pthread_create(&t[k], NULL, smp_thread, &j[k]);
	bool raced = smp_wait(&w[4], CONTENDED);
	__atomic_store_n(&w[6], 1, __ATOMIC_RELAXED);
	bool queued = smp_wait(&w[5], CONTENDED);
	__atomic_store_n(&w[7], 1, __ATOMIC_RELAXED);
	/* A lost lock (a swap that is not atomic can leave it taken with no
	 * owner) keeps every hart spinning: stop them rather than hang. */
	uint64_t deadline = clock_monotonic_ns() + 120 * 1000000000ull;
	while (done < HARTS && clock_monotonic_ns() < deadline)
		usleep(1000);
	bool finished = done == HARTS;
	if (!finished) {
		give_up = true;
		for (int k = 0; k < HARTS; k++)
			hart_kick(h[k]);
	}
	for (int k = 0; k < HARTS; k++)
		pthread_join(t[k], NULL);
	CHECK(&C, finished, "the harts finished (lock word %llu)", (unsigned long long)w[0]);
	uint64_t rounds1 = 0, rounds2 = 0;
	for (int k = 0; k < HARTS; k++) {
		CHECK(&C, hart_get_pc(h[k]) == RAM_BASE + 37 * 4, "hart %d ended at %llx", k,
		      (unsigned long long)hart_get_pc(h[k]));
		rounds1 += hart_get_reg(h[k], 8);
		rounds2 += hart_get_reg(h[k], 18);
		hart_destroy(h[k]);
	}
	printf("smp atomics: %llu and %llu rounds, %llu failed SCs, the lock found taken %llu times\n",
	       (unsigned long long)rounds1, (unsigned long long)rounds2, (unsigned long long)w[4],
	       (unsigned long long)w[5]);
	CHECK(&C, raced && queued, "the harts contended: %llu failed SCs, the lock found taken %llu times",
	      (unsigned long long)w[4], (unsigned long long)w[5]);
	CHECK(&C, w[1] == rounds1 && w[2] == rounds1 && w[3] == rounds2,
	      "AMO counter %llu, LR/SC counter %llu (want %llu each), locked counter %llu (want %llu)",
	      (unsigned long long)w[1], (unsigned long long)w[2], (unsigned long long)rounds1,
	      (unsigned long long)w[3], (unsigned long long)rounds2);
	gram_destroy(&ram);
}

/* Hot code/data pages: code on a page that is written again after every
 * run (here by the host, as a loader or a guest JIT would) gets translated
 * less and less, since each translation is thrown away by the next write;
 * code that then runs long on that page is still translated. The JIT's
 * default threshold here, whatever the environment says (an explicit one
 * stays exact). */
static void test_hot_code_page(void)
{
	struct vmx v;
	if (gram_init(&v.ram, RAM_BASE, RAM_SIZE)) {
		perror("gram_init");
		exit(1);
	}
	struct hart_config cfg = { .time_base_ns = clock_monotonic_ns(), .timebase_hz = 10000000 };
	engine_tier_from_env(&cfg);
	cfg.jit_threshold = 0;
	v.h = hart_create(&v.ram, &cfg);
	if (!v.h)
		exit(1);
	if (cfg.engine != ENGINE_JIT) {
		printf("hot code pages: no JIT on this tier, nothing to check\n");
		vm_fini(&v);
		return;
	}
	enum { ROUNDS = 96 };
	uint32_t code[] = {
		ADDI(5, 0, 40),  /* the loop block below runs 39 times a round */
		ADDI(5, 5, -1),
		BNE(5, 0, -4),
		ECALL(),
	};
	for (int n = 0; n < ROUNDS; n++) {
		put(&v, RAM_BASE, code, 4); /* the page changes under its code */
		hart_reset(v.h, RAM_BASE, 0);
		run(&v);
	}
	uint64_t churned = hart_translations(v.h);
	code[0] = ADDI(5, 0, 2000);
	put(&v, RAM_BASE, code, 4);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	uint64_t after = hart_translations(v.h);
	printf("hot code pages: %llu translations in %d rewrites, then %llu for a long run\n",
	       (unsigned long long)churned, ROUNDS, (unsigned long long)(after - churned));
	CHECK(&C, churned < ROUNDS / 2, "%llu translations of a page rewritten %d times (want < %d)",
	      (unsigned long long)churned, ROUNDS, ROUNDS / 2);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 5) == 0 && after > churned,
	      "the long run on the rewritten page: reason %d, %llu translations", ex.reason,
	      (unsigned long long)(after - churned));
	vm_fini(&v);
}

/* A handler that faults on its first instruction is a trap storm: the
 * hart gives up with a fatal exit instead of spinning forever. */
static void test_trap_storm(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = { LD(5, 0, 0) }; /* load from 0: not RAM, no device */
	put(&v, RAM_BASE, code, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE); /* the handler is the same load */
	struct hart_exit ex = run(&v);
	while (ex.reason == EXIT_MMIO) {
		hart_mmio_complete(v.h, 0, true);
		ex = run(&v);
	}
	CHECK(&C, ex.reason == EXIT_FATAL && ex.fatal.cause == 5 && ex.fatal.pc == RAM_BASE,
	      "storm: reason %d cause %llu pc %llx", ex.reason, (unsigned long long)ex.fatal.cause,
	      (unsigned long long)ex.fatal.pc);
	vm_fini(&v);
}

/* Stores off one base register share a TLB probe under the JIT
 * (jit/probes.h), with a store to a code page between them: eight
 * routines, a page each, are run once (so their pages hold code), then a
 * loop stores a pattern and a routine's new first instruction to a data
 * slot with two stores off a0 and, between them, patches routine k (still
 * a code page: the store takes the slow path, which drops its
 * translations); from the third round on, the first store's TLB entry is
 * there and the second store reuses it. Run again, every routine gives
 * its patched result, and both stores of every round land where they
 * should. Then two MMIO loads off one base register, where the shared
 * probe must miss: two exits, each at its own address, in order. */
static void test_shared_probe_stores(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(5, 0, 8),     /* 0x00: run the routines once */
		ADD(11, 0, 30),    /* 0x04 */
		JALR(1, 11, 0),    /* 0x08 */
		ADD(11, 11, 29),   /* 0x0c */
		ADDI(5, 5, -1),    /* 0x10 */
		BNE(5, 0, -12),    /* 0x14 */
		ADDI(5, 0, 8),     /* 0x18: the loop */
		ADD(11, 0, 30),    /* 0x1c */
		SD(6, 10, 0),      /* 0x20: [a0] = t1 (probes for both) */
		SW(7, 11, 0),      /* 0x24: patch routine k with t2 */
		SD(7, 10, 8),      /* 0x28: [a0 + 8] = t2 (reuses the probe) */
		ADD(11, 11, 29),   /* 0x2c */
		ADDI(10, 10, 16),  /* 0x30 */
		ADD(7, 7, 28),     /* 0x34: next round's immediate */
		ADDI(5, 5, -1),    /* 0x38 */
		BNE(5, 0, -0x1c),  /* 0x3c */
		FENCE_I(),         /* 0x40 */
		ADDI(5, 0, 8),     /* 0x44: run the routines again, a3 = sum */
		ADD(11, 0, 30),    /* 0x48 */
		JALR(1, 11, 0),    /* 0x4c */
		ADD(13, 13, 12),   /* 0x50 */
		ADD(11, 11, 29),   /* 0x54 */
		ADDI(5, 5, -1),    /* 0x58 */
		BNE(5, 0, -16),    /* 0x5c */
		ECALL(),           /* 0x60 */
	};
	uint32_t routine[] = { ADDI(12, 0, 100), JALR(0, 1, 0) };
	const int rounds = 8;
	const uint64_t data = RAM_BASE + 0x10000, routines = RAM_BASE + 0x1000;
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	for (int k = 0; k < rounds; k++)
		put(&v, routines + 0x1000 * (uint64_t)k, routine, 2);
	hart_reset(v.h, RAM_BASE, 0);
	hart_set_reg(v.h, 6, 0x5eed5eed5eedull);
	hart_set_reg(v.h, 7, ADDI(12, 0, 1));
	hart_set_reg(v.h, 28, 1u << 20); /* + 1 in an I-type immediate */
	hart_set_reg(v.h, 29, 0x1000);
	hart_set_reg(v.h, 30, routines);
	hart_set_reg(v.h, 10, data);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 13) == rounds * (rounds + 1) / 2,
	      "patched routines seen: reason %d a3 %llu", ex.reason, (unsigned long long)hart_get_reg(v.h, 13));
	unsigned bad = 0;
	for (int k = 0; k < rounds; k++) {
		uint64_t a, b;
		gram_read(&v.ram, data + 16 * (uint64_t)k, &a, 8);
		gram_read(&v.ram, data + 16 * (uint64_t)k + 8, &b, 8);
		if (a != 0x5eed5eed5eedull || b != (uint64_t)(int32_t)(ADDI(12, 0, k + 1)))
			bad++;
	}
	CHECK(&C, bad == 0, "%u rounds' shared stores wrong", bad);

	uint32_t mmio[] = {
		rv_lui(5, 0x10000), /* t0 = 0x10000000 (outside RAM) */
		LW(6, 5, 8),
		LW(7, 5, 12),
		ECALL(),
	};
	put(&v, RAM_BASE, mmio, 4);
	hart_reset(v.h, RAM_BASE, 0);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && !ex.mmio.write && ex.mmio.addr == 0x10000008,
	      "first MMIO load: %d %llx", ex.reason, (unsigned long long)ex.mmio.addr);
	hart_mmio_complete(v.h, 5, false);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && !ex.mmio.write && ex.mmio.addr == 0x1000000c,
	      "second MMIO load: %d %llx", ex.reason, (unsigned long long)ex.mmio.addr);
	hart_mmio_complete(v.h, 7, false);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 6) == 5 && hart_get_reg(v.h, 7) == 7,
	      "MMIO results: %d %llu %llu", ex.reason, (unsigned long long)hart_get_reg(v.h, 6),
	      (unsigned long long)hart_get_reg(v.h, 7));
	vm_fini(&v);
}

/* A register kept in memory (t1, t3, t4) computed in rax and read two
 * instructions later, from rax when the instruction between leaves rax
 * alone (an ADDI on mapped registers), from its home when that
 * instruction changed it in place (ADDI t3, t3, 5: `add [home], 5`) or
 * computed its own result in rax (SUB a5, a0, a5, whose rd is its second
 * operand). */
static void test_rax_carried(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(10, 0, 7),      /* a0 = 7 */
		ADDI(11, 0, 100),    /* a1 = 100 */
		ADD(6, 10, 11),      /* t1 = 107 */
		ADDI(12, 10, 1),     /* a2 = 8 */
		SUB(7, 6, 12),       /* t2 = t1 - a2 = 99 */
		ADD(28, 10, 11),     /* t3 = 107 */
		ADDI(28, 28, 5),     /* t3 = 112 */
		ADD(13, 28, 10),     /* a3 = t3 + a0 = 119 */
		ADD(29, 10, 11),     /* t4 = 107 */
		ADDI(15, 0, 3),      /* a5 = 3 */
		SUB(15, 10, 15),     /* a5 = a0 - a5 = 4 */
		ADD(14, 29, 10),     /* a4 = t4 + a0 = 114 */
		ECALL(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 7) == 99 && hart_get_reg(v.h, 13) == 119 &&
		      hart_get_reg(v.h, 14) == 114 && hart_get_reg(v.h, 15) == 4,
	      "t2 %lld a3 %lld a4 %lld a5 %lld (want 99 119 114 4)", (long long)hart_get_reg(v.h, 7),
	      (long long)hart_get_reg(v.h, 13), (long long)hart_get_reg(v.h, 14), (long long)hart_get_reg(v.h, 15));
	vm_fini(&v);
}

/* SLLI rd, rs, 48|32 and its SRLI with loads between (as GCC spreads
 * them): the zero extension is done at the SLLI; the first time through,
 * the loads between are MMIO exits, where rd must hold rs << 48 (mapped
 * a5), then rs << 32 (t3, kept in memory), the SLLIs' values; the next
 * times the loads are plain. */
static void test_zext_spread(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		SLLI(15, 6, 48),           /* 0x00: a5 = t1 << 48 */
		LW(12, 11, 0),             /* 0x04: a2 = [a1] (MMIO the first time) */
		ADDI(13, 12, 1),           /* 0x08: a3 = a2 + 1 */
		SRLI(15, 15, 48),          /* 0x0c: a5 = zext.h(t1) */
		SLLI(28, 6, 32),           /* 0x10: t3 = t1 << 32 */
		LW(14, 11, 4),             /* 0x14: a4 = [a1 + 4] (MMIO too) */
		SRLI(28, 28, 32),          /* 0x18: t3 = zext.w(t1) */
		ADD(29, 15, 28),           /* 0x1c: t4 = a5 + t3 */
		ECALL(),                   /* 0x20 */
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	uint32_t data[] = { 41, 99 };
	put(&v, RAM_BASE + 0x1000, data, 2);
	hart_reset(v.h, RAM_BASE, 0);
	const uint64_t t1 = 0xfedcba9876543210ull;
	hart_set_reg(v.h, 6, t1);
	hart_set_reg(v.h, 11, 0x10000000);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && ex.mmio.addr == 0x10000000 && hart_get_reg(v.h, 15) == t1 << 48,
	      "at the MMIO exit: reason %d a5 %llx (want %llx)", ex.reason,
	      (unsigned long long)hart_get_reg(v.h, 15), (unsigned long long)(t1 << 48));
	hart_mmio_complete(v.h, 7, false);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && ex.mmio.addr == 0x10000004 && hart_get_reg(v.h, 13) == 8 &&
		      hart_get_reg(v.h, 15) == 0x3210 && hart_get_reg(v.h, 28) == t1 << 32,
	      "at the second MMIO exit: reason %d a3 %lld a5 %llx t3 %llx", ex.reason,
	      (long long)hart_get_reg(v.h, 13), (unsigned long long)hart_get_reg(v.h, 15),
	      (unsigned long long)hart_get_reg(v.h, 28));
	hart_mmio_complete(v.h, 5, false);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 29) == 0x3210 + 0x76543210ull,
	      "after the MMIO run: reason %d t4 %llx", ex.reason, (unsigned long long)hart_get_reg(v.h, 29));
	/* Again from RAM: no exit between. */
	for (int round = 0; round < 3; round++) {
		hart_set_pc(v.h, RAM_BASE);
		hart_set_reg(v.h, 11, RAM_BASE + 0x1000);
		hart_set_reg(v.h, 29, 0);
		ex = run(&v);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 13) == 42 && hart_get_reg(v.h, 14) == 99 &&
			      hart_get_reg(v.h, 15) == 0x3210 && hart_get_reg(v.h, 28) == 0x76543210 &&
			      hart_get_reg(v.h, 29) == 0x3210 + 0x76543210ull,
		      "from RAM: reason %d a3 %lld a4 %lld a5 %llx t3 %llx t4 %llx", ex.reason,
		      (long long)hart_get_reg(v.h, 13), (long long)hart_get_reg(v.h, 14),
		      (unsigned long long)hart_get_reg(v.h, 15), (unsigned long long)hart_get_reg(v.h, 28),
		      (unsigned long long)hart_get_reg(v.h, 29));
	}
	vm_fini(&v);
}

/* The values a4 and a5 have after `rounds` rounds of the loop below. */
static void narrow_loop_model(unsigned rounds, uint64_t *a4, uint64_t *a5)
{
	uint32_t x = (uint32_t)*a4, y = (uint32_t)*a5;
	for (unsigned k = 0; k < rounds; k++) {
		x += y;
		y = (uint32_t)((int32_t)x >> 3) + x;
	}
	*a4 = (uint64_t)(int64_t)(int32_t)x;
	*a5 = (uint64_t)(int64_t)(int32_t)y;
}

/* A loop of one block whose W results (a4, a5, bit 31 set) go round
 * narrow (widths.h: the block's entry): exact after the loop, and exact
 * when the load at the top of a later round faults (its slow path widens
 * what the start took narrow), as the trap handler's ECALL then sees
 * them. */
static void test_narrow_loop(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		LW(5, 11, 0),            /* 0x00: t0 = [a1] */
		ADDI(11, 11, 4),         /* 0x04 */
		ADDW(14, 14, 15),        /* 0x08: a4 += a5 */
		rv_i(0x1b, 5, 15, 14, 0x403), /* 0x0c: a5 = a4 >> 3 (SRAIW) */
		ADDW(15, 15, 14),        /* 0x10: a5 += a4 */
		ADDI(10, 10, -1),        /* 0x14 */
		BNE(10, 0, -0x18),       /* 0x18: to 0x00 */
		ECALL(),                 /* 0x1c */
	};
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x100, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x100);
	hart_set_reg(v.h, 10, 300);
	hart_set_reg(v.h, 11, RAM_BASE + 0x1000);
	hart_set_reg(v.h, 14, 0x12345678);
	hart_set_reg(v.h, 15, 0x7ffff000);
	struct hart_exit ex = run(&v);
	uint64_t a4 = 0x12345678, a5 = 0x7ffff000;
	narrow_loop_model(300, &a4, &a5);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == RAM_BASE + 0x1c &&
		      hart_get_reg(v.h, 14) == a4 && hart_get_reg(v.h, 15) == a5,
	      "after the loop: pc %llx a4 %llx a5 %llx (want %llx %llx)",
	      (unsigned long long)hart_get_pc(v.h), (unsigned long long)hart_get_reg(v.h, 14),
	      (unsigned long long)hart_get_reg(v.h, 15), (unsigned long long)a4, (unsigned long long)a5);

	/* Again, the load of round 201 past the end of RAM: an MMIO exit,
	 * refused, so a load access fault. */
	hart_set_pc(v.h, RAM_BASE);
	hart_set_reg(v.h, 10, 300);
	hart_set_reg(v.h, 11, RAM_BASE + RAM_SIZE - 4 * 200);
	hart_set_reg(v.h, 14, 0x12345678);
	hart_set_reg(v.h, 15, 0x7ffff000);
	ex = run(&v);
	a4 = 0x12345678;
	a5 = 0x7ffff000;
	narrow_loop_model(200, &a4, &a5);
	CHECK(&C, ex.reason == EXIT_MMIO && ex.mmio.addr == RAM_BASE + RAM_SIZE && hart_get_reg(v.h, 10) == 100 &&
		      hart_get_reg(v.h, 14) == a4 && hart_get_reg(v.h, 15) == a5,
	      "MMIO exit in round 201: reason %d a0 %llu a4 %llx a5 %llx (want 100, %llx %llx)", ex.reason,
	      (unsigned long long)hart_get_reg(v.h, 10), (unsigned long long)hart_get_reg(v.h, 14),
	      (unsigned long long)hart_get_reg(v.h, 15), (unsigned long long)a4, (unsigned long long)a5);
	hart_mmio_complete(v.h, 0, true);
	ex = run(&v);
	uint64_t cause, epc;
	hart_csr_read(v.h, CSR_SCAUSE, &cause);
	hart_csr_read(v.h, CSR_SEPC, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 5 && epc == RAM_BASE && hart_get_reg(v.h, 14) == a4 &&
		      hart_get_reg(v.h, 15) == a5,
	      "then the fault: cause %llu epc %llx a4 %llx a5 %llx", (unsigned long long)cause,
	      (unsigned long long)epc, (unsigned long long)hart_get_reg(v.h, 14),
	      (unsigned long long)hart_get_reg(v.h, 15));
	vm_fini(&v);
}

/* The loop of test_narrow_loop entered with a4 and a5 holding 64-bit
 * values that are no 32-bit value's sign extension (the JIT counts them
 * narrow at the loop's start, where the loop's own jump back leaves them
 * so), and its first load an MMIO exit, refused: at the exit and in the
 * trap after it, before the loop wrote them, they are what they were. */
static void test_narrow_loop_entered_wide(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		LW(5, 11, 0),            /* 0x00: t0 = [a1] */
		ADDI(11, 11, 4),         /* 0x04 */
		ADDW(14, 14, 15),        /* 0x08: a4 += a5 */
		rv_i(0x1b, 5, 15, 14, 0x403), /* 0x0c: a5 = a4 >> 3 (SRAIW) */
		ADDW(15, 15, 14),        /* 0x10: a5 += a4 */
		ADDI(10, 10, -1),        /* 0x14 */
		BNE(10, 0, -0x18),       /* 0x18: to 0x00 */
		ECALL(),                 /* 0x1c */
	};
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x100, handler, 1);
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x100);
	const uint64_t a4 = 0x123456789abcdef0ull, a5 = 0x0fedcba987654321ull;
	hart_set_reg(v.h, 10, 300);
	hart_set_reg(v.h, 11, RAM_BASE + RAM_SIZE);
	hart_set_reg(v.h, 14, a4);
	hart_set_reg(v.h, 15, a5);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && hart_get_reg(v.h, 14) == a4 && hart_get_reg(v.h, 15) == a5,
	      "MMIO exit in round 1: reason %d a4 %llx a5 %llx (want %llx %llx)", ex.reason,
	      (unsigned long long)hart_get_reg(v.h, 14), (unsigned long long)hart_get_reg(v.h, 15),
	      (unsigned long long)a4, (unsigned long long)a5);
	hart_mmio_complete(v.h, 0, true);
	ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 14) == a4 && hart_get_reg(v.h, 15) == a5,
	      "in the trap after it: a4 %llx a5 %llx", (unsigned long long)hart_get_reg(v.h, 14),
	      (unsigned long long)hart_get_reg(v.h, 15));
	vm_fini(&v);
}

/* AND of a narrow W result (a2 = -1, left narrow: the block overwrites
 * it) and an exact register holding any 64 bits (s5): the result is no
 * sign extension of its low half, so it must not be counted narrow. In a
 * block, a slow path (the MMIO load) would widen it to the sign extension
 * of its low half; in a loop of one block, s5 (ANDed before the block
 * writes it) would start narrow though entered holding 64 bits. Each part
 * runs 20 times or 300 rounds first, so the JIT translates it at the
 * default threshold too. */
static void test_bitwise_narrow_and_wide(void)
{
	const uint64_t s5 = 0x123456789abcdef0ull;
	struct vmx v;
	vm_init(&v, 0);
	uint32_t block[] = {
		ADDIW(12, 29, -1),             /* a2 = -1 */
		rv_r(0x33, 7, 0, 21, 12, 21),  /* and s5, a2, s5 */
		LW(5, 11, 0),                  /* MMIO: an exit with precise state */
		ADDW(21, 21, 1),
		ADDIW(12, 0, 0),
		ECALL(),
	};
	put(&v, RAM_BASE, block, sizeof(block) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	bool ok = true;
	for (int k = 0; k < 20 && ok; k++) {
		hart_set_pc(v.h, RAM_BASE); /* no reset: it would drop the translations */
		hart_set_reg(v.h, 29, 0);
		hart_set_reg(v.h, 11, RAM_BASE + RAM_SIZE);
		hart_set_reg(v.h, 21, s5);
		struct hart_exit ex = run(&v);
		ok = ex.reason == EXIT_MMIO && hart_get_reg(v.h, 21) == s5;
		CHECK(&C, ok, "block, run %d: reason %d s5 %llx (want %llx)", k, ex.reason,
		      (unsigned long long)hart_get_reg(v.h, 21), (unsigned long long)s5);
		hart_mmio_complete(v.h, 0, false);
		ex = run(&v);
		ok = ok && ex.reason == EXIT_SBI;
	}
	vm_fini(&v);

	vm_init(&v, 0);
	uint32_t loop[] = {
		ADDIW(12, 29, -1),             /* 0x00 */
		rv_r(0x33, 7, 0, 21, 12, 21),  /* 0x04: and s5, a2, s5 */
		ADDI(10, 10, -1),              /* 0x08 */
		BNE(10, 0, -0x0c),             /* 0x0c: to 0x00 */
		ECALL(),
	};
	put(&v, RAM_BASE, loop, sizeof(loop) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	hart_set_reg(v.h, 10, 300);
	hart_set_reg(v.h, 29, 0);
	hart_set_reg(v.h, 21, s5);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 21) == s5, "loop: reason %d s5 %llx (want %llx)",
	      ex.reason, (unsigned long long)hart_get_reg(v.h, 21), (unsigned long long)s5);
	vm_fini(&v);

	/* s5 ANDed into t0 before the loop writes it (with a W result: it
	 * ends narrow), t0 read by the MMIO load's exit after that write. A
	 * first run of 300 rounds gets the loop translated; the second is
	 * entered with s5 holding 64 bits and exits in its first round. */
	vm_init(&v, 0);
	uint32_t loop2[] = {
		ADDIW(12, 29, -1),            /* 0x00 */
		rv_r(0x33, 7, 0, 5, 12, 21),  /* 0x04: and t0, a2, s5 */
		ADDIW(21, 21, 0),             /* 0x08: sext.w s5 */
		LW(6, 11, 0),                 /* 0x0c */
		ADDIW(5, 0, 0),               /* 0x10 */
		ADDI(10, 10, -1),             /* 0x14 */
		BNE(10, 0, -0x18),            /* 0x18: to 0x00 */
		ECALL(),
	};
	put(&v, RAM_BASE, loop2, sizeof(loop2) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	for (int k = 0; k < 2; k++) {
		hart_set_pc(v.h, RAM_BASE);
		hart_set_reg(v.h, 10, 300);
		hart_set_reg(v.h, 11, k ? RAM_BASE + RAM_SIZE : RAM_BASE);
		hart_set_reg(v.h, 29, 0);
		hart_set_reg(v.h, 21, s5);
		ex = run(&v);
	}
	CHECK(&C, ex.reason == EXIT_MMIO && hart_get_reg(v.h, 5) == s5, "loop 2: reason %d t0 %llx (want %llx)",
	      ex.reason, (unsigned long long)hart_get_reg(v.h, 5), (unsigned long long)s5);
	vm_fini(&v);

	/* 7-Zip's speed test: ADDW and XOR in turn on a0 with s5 exact. An
	 * XOR whose a0 the next ADDW rewrites needs no exact upper half (no
	 * MOVSXD first); but t1 = a0 AND a3 after the second XOR carries its
	 * upper half on to the MMIO load's exit (a0 itself rewritten before
	 * it), so that XOR's must be exact. */
	vm_init(&v, 0);
	uint32_t chain[] = {
		ADDW(10, 10, 21),
		XOR(10, 10, 21),               /* rewritten by the next ADDW */
		ADDW(10, 10, 21),
		XOR(10, 10, 21),               /* read by the AND */
		rv_r(0x33, 7, 0, 6, 10, 13),   /* and t1, a0, a3 (all ones) */
		ADDW(10, 10, 21),              /* a0 rewritten before the exit */
		LW(5, 11, 0),                  /* MMIO */
		ADDI(6, 0, 0),                 /* t1 dead at the end: AND left as is */
		ECALL(),
	};
	put(&v, RAM_BASE, chain, sizeof(chain) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	uint64_t a0 = 0x7654321076543210ull;
	for (int k = 0; k < 2; k++)
		a0 = (uint64_t)(int64_t)(int32_t)(uint32_t)(a0 + s5) ^ s5;
	const uint64_t t1 = a0;
	a0 = (uint64_t)(int64_t)(int32_t)(uint32_t)(a0 + s5);
	ok = true;
	for (int k = 0; k < 20 && ok; k++) {
		hart_set_pc(v.h, RAM_BASE);
		hart_set_reg(v.h, 10, 0x7654321076543210ull);
		hart_set_reg(v.h, 11, RAM_BASE + RAM_SIZE);
		hart_set_reg(v.h, 21, s5);
		hart_set_reg(v.h, 13, ~0ull);
		ex = run(&v);
		ok = ex.reason == EXIT_MMIO && hart_get_reg(v.h, 10) == a0 && hart_get_reg(v.h, 6) == t1;
		CHECK(&C, ok, "chain, run %d: reason %d a0 %llx t1 %llx (want %llx %llx)", k, ex.reason,
		      (unsigned long long)hart_get_reg(v.h, 10), (unsigned long long)hart_get_reg(v.h, 6),
		      (unsigned long long)a0, (unsigned long long)t1);
		hart_mmio_complete(v.h, 0, false);
		ex = run(&v);
		ok = ok && ex.reason == EXIT_SBI;
	}
	vm_fini(&v);
}

/* Runs of loads and of stores off one base register kept in memory (t0),
 * each after the one before (under the JIT a follower finds the addend in
 * rdx and the previous member's address in rax, and adds the difference
 * in its access): the base steps by 8 through the end of a page, so the
 * four stores' range lies in the first page, then crosses into the next
 * (the leader's probe misses, each member probes alone: first touches go
 * to C, later ones hit out of line), then lies in the next. Every round
 * loads back what it stored (one load into a register kept in memory,
 * which ends the run for the load after it), then three loads off t3 that
 * step through the end of another page the same way, so that a member of
 * their run touches the next page first (its own probe misses: C). */
static void test_probe_runs(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDI(17, 0, 8),      /* a7 = 8 rounds */
		ADDI(11, 0, 1),
		ADDI(12, 0, 2),
		ADDI(13, 0, 3),
		ADDI(6, 0, 4),
		ADDI(8, 0, 0),       /* s0 = sum */
		SD(11, 5, 0),        /* 0x18: loop */
		SD(12, 5, 8),
		SD(13, 5, 16),
		SD(6, 5, 24),
		LD(14, 5, 0),
		LD(15, 5, 8),
		LD(7, 5, 16),
		LD(9, 5, 24),
		ADD(8, 8, 14),
		ADD(8, 8, 15),
		ADD(8, 8, 7),
		ADD(8, 8, 9),
		LD(10, 28, 0),       /* loads only, off t3 */
		LD(9, 28, 8),
		LD(14, 28, 16),
		ADD(8, 8, 10),
		ADD(8, 8, 9),
		ADD(8, 8, 14),
		ADDI(28, 28, 8),
		ADDI(5, 5, 8),
		ADDI(17, 17, -1),
		BNE(17, 0, -0x54),
		ECALL(),
	};
	const uint64_t page = RAM_BASE + 0x21000, page2 = RAM_BASE + 0x31000;
	put(&v, RAM_BASE, code, sizeof(code) / sizeof(code[0]));
	/* page2 - 24 + 8m holds 100 + m; t3 starts at page2 - 24, so the
	 * second round's third load is the first touch of page2. */
	for (uint64_t m = 0; m < 12; m++) {
		uint64_t x = 100 + m;
		gram_write(&v.ram, page2 - 24 + 8 * m, &x, 8);
	}
	hart_reset(v.h, RAM_BASE, 0);
	hart_set_reg(v.h, 5, page - 40);
	hart_set_reg(v.h, 28, page2 - 24);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_SBI, "reason %d", ex.reason);
	/* Per round 1 + 2 + 3 + 4, and (100 + r) + (101 + r) + (102 + r). */
	CHECK(&C, hart_get_reg(v.h, 8) == 8 * 10 + 8 * 303 + 3 * 28, "sum of what was loaded %llu",
	      (unsigned long long)hart_get_reg(v.h, 8));
	/* Round r stored 1..4 at page - 40 + 8 (r + 0..3): the last round to
	 * reach a slot wins. */
	unsigned bad = 0;
	for (unsigned m = 0; m < 11; m++) {
		uint64_t got, want = m < 8 ? 1 : m - 6;
		gram_read(&v.ram, page - 40 + 8 * m, &got, 8);
		if (got != want) {
			bad++;
			fprintf(stderr, "slot %u: %llu, want %llu\n", m, (unsigned long long)got,
				(unsigned long long)want);
		}
	}
	CHECK(&C, bad == 0, "%u slots wrong", bad);
	vm_fini(&v);
}

/* Instructions that straddle a page end (each one a block of its own),
 * hot, and each one leaving otherwise than by falling through: an MMIO
 * load (pc at it, then an access fault), an illegal instruction (stval
 * has both halves), a JAL whose link lies on the next page. The handler
 * steps over what trapped and sums scause, stval and sepc. */
static void test_straddling_traps(void)
{
	struct vmx v;
	vm_init(&v, 0);
	const uint64_t B = RAM_BASE;
	const uint32_t illegal = CSRRW(0, CSR_CYCLE, 0); /* a read-only CSR written */
	uint32_t head[] = {
		ADDI(9, 0, 30),               /* s1 = 30 rounds */
		JAL(0, 0x0ffe - 0x4),         /* +0x4: round */
	};
	uint32_t handler[] = {
		ADDI(12, 12, 1),              /* +0x800: a2 counts traps */
		CSRRS(31, CSR_SCAUSE, 0),
		ADD(13, 13, 31),              /* a3 += scause */
		CSRRS(31, CSR_STVAL, 0),
		ADD(15, 15, 31),              /* a5 += stval */
		CSRRS(31, CSR_SEPC, 0),
		ADD(16, 16, 31),              /* a6 += sepc */
		ADDI(31, 31, 4),
		CSRRW(0, CSR_SEPC, 31),
		SRET(),
	};
	uint32_t s1 = LD(10, 5, 0);           /* +0x0ffe: from MMIO */
	uint32_t j1 = JAL(0, 0x1ffe - 0x1002);
	uint32_t j2 = JAL(0, 0x2ffe - 0x2002);
	uint32_t s3 = JAL(1, 0x3100 - 0x2ffe); /* ra = +0x3002 */
	uint32_t tail[] = {
		ADDI(9, 9, -1),               /* +0x3100 */
		BEQ(9, 0, 8),
		JAL(0, 0x4 - 0x3108),
		ECALL(),
	};
	put(&v, B, head, 2);
	put(&v, B + 0x800, handler, sizeof(handler) / 4);
	gram_write(&v.ram, B + 0x0ffe, &s1, 4);
	put(&v, B + 0x1002, &j1, 1);
	gram_write(&v.ram, B + 0x1ffe, &illegal, 4);
	put(&v, B + 0x2002, &j2, 1);
	gram_write(&v.ram, B + 0x2ffe, &s3, 4);
	put(&v, B + 0x3100, tail, 4);
	hart_reset(v.h, B, 0);
	hart_csr_write(v.h, CSR_STVEC, B + 0x800);
	hart_set_reg(v.h, 5, 0x10000000);
	struct hart_exit ex;
	unsigned mmio = 0, bad_pc = 0;
	for (;;) {
		if (run_limited(v.h, &ex))
			break;
		if (ex.reason == EXIT_KICK)
			continue;
		if (ex.reason != EXIT_MMIO)
			break;
		mmio++;
		bad_pc += hart_get_pc(v.h) != B + 0x0ffe || ex.mmio.addr != 0x10000000;
		hart_mmio_complete(v.h, 0, true);
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 9) == 0, "reason %d, s1 %llu", ex.reason,
	      (unsigned long long)hart_get_reg(v.h, 9));
	CHECK(&C, mmio == 30 && bad_pc == 0, "%u MMIO exits (want 30), %u at another pc", mmio, bad_pc);
	CHECK(&C, hart_get_reg(v.h, 12) == 60, "traps %llu (want 60)", (unsigned long long)hart_get_reg(v.h, 12));
	CHECK(&C, hart_get_reg(v.h, 13) == 30 * (5 + 2), "scause sum %llu",
	      (unsigned long long)hart_get_reg(v.h, 13));
	CHECK(&C, hart_get_reg(v.h, 15) == 30 * (0x10000000ull + illegal), "stval sum %#llx (want %#llx)",
	      (unsigned long long)hart_get_reg(v.h, 15), 30 * (0x10000000ull + illegal));
	CHECK(&C, hart_get_reg(v.h, 16) == 30 * (2 * B + 0x0ffe + 0x1ffe), "sepc sum %#llx",
	      (unsigned long long)hart_get_reg(v.h, 16));
	CHECK(&C, hart_get_reg(v.h, 1) == B + 0x3002, "ra %#llx (want the JAL's next pc)",
	      (unsigned long long)hart_get_reg(v.h, 1));
	vm_fini(&v);
}

/* Registers the JIT lends inside a loop of one block (translate.c
 * lend_plan): the loop names t0 and t3-t6, which live in memory under the
 * fixed map, and none of sp, s0, s1, a0-a5, whose host registers it
 * borrows. Every way out must put the borrowers home and the owners back:
 * the exit after the loop, the deadline (every 32768 instructions: the
 * first run crosses it several times), the slow paths' calls into C (a
 * first touch of each page of the loads and of the stores, whose value is
 * a borrower: every stored sum is checked), and a bail to the executor
 * (an MMIO load at the end of RAM, then its access fault: state at the
 * faulting load). The owners hold their own values throughout, the
 * borrowers the loop's. */
static void check_lent_owners(const char *where, struct vmx *v)
{
	static const unsigned owners[] = { 2, 8, 9, 10, 11, 12, 13, 14, 15 };
	for (unsigned k = 0; k < sizeof(owners) / sizeof(owners[0]); k++) {
		unsigned r = owners[k];
		uint64_t want = 0x5a5a000000000000ull + 0x0101010101ull * r;
		CHECK(&C, hart_get_reg(v->h, r) == want, "%s: x%u %llx (want %llx)", where, r,
		      (unsigned long long)hart_get_reg(v->h, r), (unsigned long long)want);
	}
}

static void test_lent_registers(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		LW(29, 28, 0),       /* 0x00: t4 = [t3] */
		ADDW(30, 30, 29),    /* 0x04: t5 += t4 */
		SW(30, 5, 0),        /* 0x08: [t0] = t5 */
		ADDI(28, 28, 4),
		ADDI(5, 5, 4),
		ADDI(31, 31, -1),
		BNE(31, 0, -0x18),   /* 0x18: to 0x00 */
		ECALL(),
	};
	uint32_t handler[] = { ECALL() };
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	put(&v, RAM_BASE + 0x800, handler, 1);
	const uint64_t in = RAM_BASE + 0x100000, out = RAM_BASE + 0x200000;
	const uint32_t n = 20000, m = 50;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t w = k + 1;
		gram_write(&v.ram, in + 4 * (uint64_t)k, &w, 4);
	}
	for (uint32_t k = 0; k < m; k++) {
		uint32_t w = 1000 + k;
		gram_write(&v.ram, RAM_BASE + RAM_SIZE - 4 * (uint64_t)(m - k), &w, 4);
	}
	hart_reset(v.h, RAM_BASE, 0);
	hart_csr_write(v.h, CSR_STVEC, RAM_BASE + 0x800);
	for (unsigned r = 2; r < 16; r++)
		if (r == 2 || r >= 8)
			hart_set_reg(v.h, r, 0x5a5a000000000000ull + 0x0101010101ull * r);
	hart_set_reg(v.h, 28, in);
	hart_set_reg(v.h, 5, out);
	hart_set_reg(v.h, 31, n);
	struct hart_exit ex = run(&v);
	uint64_t sum = (uint64_t)n * (n + 1) / 2;
	uint32_t last = 0;
	gram_read(&v.ram, out + 4 * (uint64_t)(n - 1), &last, 4);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 30) == (uint64_t)(int64_t)(int32_t)sum &&
		      hart_get_reg(v.h, 29) == n && hart_get_reg(v.h, 28) == in + 4 * n &&
		      hart_get_reg(v.h, 5) == out + 4 * n && hart_get_reg(v.h, 31) == 0 && last == (uint32_t)sum,
	      "after the loop: reason %d t5 %llx t4 %llu t3 %llx t0 %llx t6 %llu last store %x (want %x)",
	      ex.reason, (unsigned long long)hart_get_reg(v.h, 30), (unsigned long long)hart_get_reg(v.h, 29),
	      (unsigned long long)hart_get_reg(v.h, 28), (unsigned long long)hart_get_reg(v.h, 5),
	      (unsigned long long)hart_get_reg(v.h, 31), last, (uint32_t)sum);
	check_lent_owners("after the loop", &v);
	unsigned bad = 0;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t w = 0;
		gram_read(&v.ram, out + 4 * (uint64_t)k, &w, 4);
		bad += w != (uint32_t)((uint64_t)(k + 1) * (k + 2) / 2);
	}
	CHECK(&C, bad == 0, "%u of the loop's %u stores wrong", bad, n);

	/* Into the end of RAM: an MMIO exit at the load after m rounds. */
	hart_set_pc(v.h, RAM_BASE);
	hart_set_reg(v.h, 28, RAM_BASE + RAM_SIZE - 4 * m);
	hart_set_reg(v.h, 5, out);
	hart_set_reg(v.h, 30, 0);
	hart_set_reg(v.h, 31, 1000);
	uint64_t msum = 0;
	for (uint32_t k = 0; k < m; k++)
		msum += 1000 + k;
	for (int round = 0; round < 2; round++) {
		if (round == 0) {
			ex = run(&v);
			CHECK(&C, ex.reason == EXIT_MMIO && hart_get_pc(v.h) == RAM_BASE, "MMIO exit: reason %d pc %llx",
			      ex.reason, (unsigned long long)hart_get_pc(v.h));
		} else {
			hart_mmio_complete(v.h, 0, true);
			ex = run(&v);
			uint64_t cause = 0, epc = 0;
			hart_csr_read(v.h, CSR_SCAUSE, &cause);
			hart_csr_read(v.h, CSR_SEPC, &epc);
			CHECK(&C, ex.reason == EXIT_SBI && cause == 5 && epc == RAM_BASE,
			      "access fault: reason %d cause %llu epc %llx", ex.reason, (unsigned long long)cause,
			      (unsigned long long)epc);
		}
		const char *where = round ? "in the fault's handler" : "at the MMIO exit";
		CHECK(&C, hart_get_reg(v.h, 28) == RAM_BASE + RAM_SIZE && hart_get_reg(v.h, 30) == msum &&
			      hart_get_reg(v.h, 29) == 1000 + m - 1 && hart_get_reg(v.h, 5) == out + 4 * m &&
			      hart_get_reg(v.h, 31) == 1000 - m,
		      "%s: t3 %llx t5 %llu (want %llu) t4 %llu t0 %llx t6 %llu", where,
		      (unsigned long long)hart_get_reg(v.h, 28), (unsigned long long)hart_get_reg(v.h, 30),
		      (unsigned long long)msum, (unsigned long long)hart_get_reg(v.h, 29),
		      (unsigned long long)hart_get_reg(v.h, 5), (unsigned long long)hart_get_reg(v.h, 31));
		check_lent_owners(where, &v);
	}
	vm_fini(&v);
}

/* Blocks that go on past a `j` to a target in their page (block_build's
 * INSN_JUMP_ON), the shape of a merge's compare-and-link code: forward
 * into L1 from the start and from +0x20, backward into L0 from +0x50 and
 * +0x54. After the backward ones the instructions lie before the block's
 * start (negative offsets): the AUIPC there must read its own pc, and the
 * block falls through to +0x20, before its start. After the forward one
 * an MMIO load must leave at its own pc, once per round. instret (read
 * by CSR) counts every `j` once. */
static void test_jump_on(void)
{
	struct vmx v;
	vm_init(&v, 0);
	const uint64_t B = RAM_BASE;
	enum { N = 200 };
	uint32_t head[] = {
		ADDI(5, 0, 0),                /* t0 = r = 0 */
		ADDI(6, 0, N),
		JAL(0, 0x40 - 0x08),          /* j L1 */
		ADDI(10, 10, 5),              /* +0x0c L0: a0 += 5 */
		rv_auipc(11, 0),              /* +0x10: a2 += its pc */
		ADD(12, 12, 11),
		ADDI(5, 5, 1),
		BEQ(5, 6, 0x60 - 0x1c),       /* +0x1c: the last round ends */
		JAL(0, 0x40 - 0x20),          /* +0x20: j L1 */
	};
	uint32_t l1[] = {
		rv_i(0x13, 7, 7, 5, 3),       /* +0x40 L1: t2 = r & 3 */
		LD(16, 28, 0),                /* +0x44: MMIO */
		ADDI(14, 14, 1),              /* a4 counts L1 */
		BEQ(7, 0, 8),
		JAL(0, 0x0c - 0x50),          /* +0x50: j L0 */
		ADDI(15, 15, 1),              /* +0x54: a5 counts r % 4 == 0 */
		JAL(0, 0x0c - 0x58),          /* +0x58: j L0 */
	};
	uint32_t end[] = { CSRRS(13, CSR_INSTRET, 0), ECALL() };
	put(&v, B, head, sizeof(head) / 4);
	put(&v, B + 0x40, l1, sizeof(l1) / 4);
	put(&v, B + 0x60, end, 2);
	hart_reset(v.h, B, 0);
	hart_set_reg(v.h, 28, 0x10000000);
	struct hart_exit ex;
	unsigned mmio = 0, bad_pc = 0;
	for (;;) {
		if (run_limited(v.h, &ex))
			break;
		if (ex.reason == EXIT_KICK)
			continue;
		if (ex.reason != EXIT_MMIO)
			break;
		mmio++;
		bad_pc += hart_get_pc(v.h) != B + 0x44 || ex.mmio.addr != 0x10000000;
		hart_mmio_complete(v.h, mmio, false);
	}
	uint64_t retired = 3 + (N - 1), quarter = 0;
	for (unsigned r = 0; r < N; r++) {
		retired += 4 + (r % 4 == 0 ? 2 : 1) + 5;
		quarter += r % 4 == 0;
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_pc(v.h) == B + 0x64, "reason %d pc %#llx", ex.reason,
	      (unsigned long long)hart_get_pc(v.h));
	CHECK(&C, mmio == N && bad_pc == 0, "%u MMIO exits (want %u), %u at another pc", mmio, N, bad_pc);
	static const unsigned regs[] = { 10, 12, 14, 15, 16, 13 };
	const uint64_t want[] = { 5 * N, N * (B + 0x10), N, quarter, N, retired };
	for (size_t k = 0; k < sizeof(regs) / sizeof(regs[0]); k++)
		CHECK(&C, hart_get_reg(v.h, regs[k]) == want[k], "x%u = %#llx, want %#llx", regs[k],
		      (unsigned long long)hart_get_reg(v.h, regs[k]), (unsigned long long)want[k]);
	vm_fini(&v);
}

/* A W result zero-extended and scaled (`(UInt32)x * 2` as LZMA indexes
 * its probabilities: ADDW; SLLI t, s, 32; SRLI d, t, k): the ADDW's sign
 * extension left out when only the SLLI reads it (bit 31 set, so a wrong
 * upper half shows), d computed from s beside t, with d = s, t = s, each
 * mapped or in memory, k below, at and above 32; an SLLI by 31 reads bit
 * 32 and so needs the ADDW exact. The first run takes an MMIO exit
 * between an ADDW and its SLLI: a2 must be exact there. */
static void test_zext_scale(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDW(12, 10, 10),          /* 0x00: a2 = sext(2 * a0) */
		LW(11, 11, 0),             /* 0x04: a1 = [a1] (MMIO the first time) */
		SLLI(13, 12, 32),          /* 0x08: a3 = a2 << 32 */
		SRLI(12, 13, 31),          /*       a2 = zext(a2) << 1 (d = s) */
		ADDW(5, 10, 10),           /* 0x10: t0 (memory) */
		SLLI(5, 5, 32),            /*       t0 <<= 32 (t = s) */
		SRLI(6, 5, 29),            /*       t1 = zext(t0's old value) << 3 */
		ADDW(14, 10, 10),          /* 0x1c: a4 */
		SLLI(7, 14, 32),           /*       t2 = a4 << 32 (t in memory) */
		SRLI(15, 7, 33),           /*       a5 = zext(a4) >> 1 */
		ADDW(16, 10, 10),          /* 0x28: a6 (memory) */
		SLLI(17, 16, 32),          /*       a7 = a6 << 32 */
		SRLI(16, 17, 32),          /*       a6 = zext(a6) (both in memory) */
		ADDW(18, 10, 10),          /* 0x34: s2 */
		SLLI(19, 18, 31),          /*       s3 = s2 << 31: reads bit 32 */
		ADDI(18, 0, 0),            /*       s2 = 0 */
		ADDW(8, 10, 10),           /* 0x40: s0 */
		SLLI(8, 8, 32),            /*       s0 <<= 32 (t = s, mapped) */
		SRLI(28, 8, 29),           /*       t3 = zext(s0's old value) << 3 */
		ADDW(29, 10, 10),          /* 0x4c: t4 (memory) */
		SLLI(9, 29, 32),           /*       s1 = t4 << 32 */
		SRLI(29, 9, 31),           /*       t4 = zext(t4) << 1 (d = s, in memory) */
		ECALL(),                   /* 0x58 */
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	uint32_t data[] = { 41 };
	put(&v, RAM_BASE + 0x1000, data, 1);
	hart_reset(v.h, RAM_BASE, 0);
	const uint64_t a0 = 0x1234567840000001ull;
	const uint64_t w = 0xffffffff80000002ull; /* sext(2 * a0) */
	hart_set_reg(v.h, 10, a0);
	hart_set_reg(v.h, 11, 0x10000000);
	struct hart_exit ex = run(&v);
	CHECK(&C, ex.reason == EXIT_MMIO && hart_get_reg(v.h, 12) == w, "at the MMIO exit: reason %d a2 %#llx",
	      ex.reason, (unsigned long long)hart_get_reg(v.h, 12));
	hart_mmio_complete(v.h, 7, false);
	for (int round = 0; round < 40; round++) {
		if (round) {
			hart_set_pc(v.h, RAM_BASE);
			hart_set_reg(v.h, 11, RAM_BASE + 0x1000);
		}
		ex = run(&v);
		const unsigned regs[] = { 11, 12, 13, 5, 6, 14, 7, 15, 16, 17, 18, 19, 8, 28, 9, 29 };
		const uint64_t want[] = { round ? 41 : 7, (w & 0xffffffff) << 1, w << 32, w << 32,
					  (w & 0xffffffff) << 3, w, w << 32, (w & 0xffffffff) >> 1,
					  w & 0xffffffff, w << 32, 0, w << 31,
					  w << 32, (w & 0xffffffff) << 3, w << 32, (w & 0xffffffff) << 1 };
		CHECK(&C, ex.reason == EXIT_SBI, "round %d: reason %d", round, ex.reason);
		for (size_t k = 0; k < sizeof(regs) / sizeof(regs[0]); k++)
			CHECK(&C, hart_get_reg(v.h, regs[k]) == want[k], "round %d: x%u = %#llx, want %#llx", round,
			      regs[k], (unsigned long long)hart_get_reg(v.h, regs[k]), (unsigned long long)want[k]);
	}
	vm_fini(&v);
}

/* Compares whose first operand is a register kept in memory (t0, t1),
 * against a register, x0, an immediate and another such register: SLT,
 * SLTU, SLTI, SLTIU and branches both ways, signed and unsigned (t0 is
 * negative: the unsigned and signed answers differ, as they do when the
 * operands are swapped). */
static void test_compare_in_memory(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		rv_r(0x33, 2, 0, 11, 5, 10),  /* 0x00: a1 = t0 < a0 (signed): 1 */
		rv_r(0x33, 3, 0, 12, 5, 10),  /* 0x04: a2 = t0 < a0 (unsigned): 0 */
		rv_i(0x13, 2, 13, 5, -4),     /* 0x08: a3 = t0 < -4: 1 */
		rv_i(0x13, 3, 14, 5, 7),      /* 0x0c: a4 = t0 <u 7: 0 */
		rv_b(4, 5, 10, 8),            /* 0x10: blt t0, a0: taken */
		ADDI(15, 15, 1),
		rv_b(7, 5, 10, 8),            /* 0x18: bgeu t0, a0: taken */
		ADDI(15, 15, 2),
		BEQ(5, 0, 8),                 /* 0x20: beq t0, x0: not taken */
		ADDI(15, 15, 4),
		rv_b(5, 6, 5, 8),             /* 0x28: bge t1, t0: not taken */
		ADDI(15, 15, 8),
		rv_b(6, 10, 5, 12),           /* 0x30: bltu a0, t0: taken */
		ADDI(15, 15, 16),
		ADDI(15, 15, 32),
		ECALL(),                      /* 0x3c */
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	for (int round = 0; round < 40; round++) {
		hart_set_pc(v.h, RAM_BASE);
		hart_set_reg(v.h, 5, (uint64_t)-5);
		hart_set_reg(v.h, 6, (uint64_t)-6);
		hart_set_reg(v.h, 10, 3);
		hart_set_reg(v.h, 15, 0);
		struct hart_exit ex = run(&v);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 11) == 1 && hart_get_reg(v.h, 12) == 0 &&
			      hart_get_reg(v.h, 13) == 1 && hart_get_reg(v.h, 14) == 0 && hart_get_reg(v.h, 15) == 12,
		      "round %d: reason %d a1 %lld a2 %lld a3 %lld a4 %lld a5 %lld (want 1 0 1 0 12)", round, ex.reason,
		      (long long)hart_get_reg(v.h, 11), (long long)hart_get_reg(v.h, 12),
		      (long long)hart_get_reg(v.h, 13), (long long)hart_get_reg(v.h, 14),
		      (long long)hart_get_reg(v.h, 15));
	}
	vm_fini(&v);
}

/* SRAIW of registers whose upper half is not their low half's sign
 * extension (the shift reads the low half only), from a mapped register
 * and from one kept in memory, into both kinds, by 0, 4 and 31. */
static void test_sraiw(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		rv_i(0x1b, 5, 11, 10, 0x400 | 4),   /* a1 = sraiw a0, 4 */
		rv_i(0x1b, 5, 6, 10, 0x400 | 31),   /* t1 = sraiw a0, 31 */
		rv_i(0x1b, 5, 12, 5, 0x400 | 0),    /* a2 = sraiw t0, 0 */
		rv_i(0x1b, 5, 7, 5, 0x400 | 4),     /* t2 = sraiw t0, 4 */
		ECALL(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	for (int round = 0; round < 40; round++) {
		hart_set_pc(v.h, RAM_BASE);
		hart_set_reg(v.h, 10, 0x1234567887654321ull);
		hart_set_reg(v.h, 5, 0x8765432112345678ull);
		struct hart_exit ex = run(&v);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 11) == 0xfffffffff8765432ull &&
			      hart_get_reg(v.h, 6) == ~0ull && hart_get_reg(v.h, 12) == 0x12345678 &&
			      hart_get_reg(v.h, 7) == 0x1234567,
		      "round %d: reason %d a1 %llx t1 %llx a2 %llx t2 %llx", round, ex.reason,
		      (unsigned long long)hart_get_reg(v.h, 11), (unsigned long long)hart_get_reg(v.h, 6),
		      (unsigned long long)hart_get_reg(v.h, 12), (unsigned long long)hart_get_reg(v.h, 7));
	}
	vm_fini(&v);
}

/* W results kept in memory and left narrow (t0: read only by W
 * instructions before it is written again) are read by the next
 * instruction from rax, where they were reloaded from their home: the
 * readers that read them in full must still see exact values (t1, live
 * at the end, bit 31 set). */
static void test_narrow_in_rax(void)
{
	struct vmx v;
	vm_init(&v, 0);
	uint32_t code[] = {
		ADDW(5, 10, 11),     /* t0 = a0 + a1 = 0x80000000, narrow */
		ADDW(6, 5, 10),      /* t1 = sext(t0 + a0) = -1 */
		ADDW(5, 6, 6),       /* t0 = -2 */
		SUBW(7, 5, 11),      /* t2 = -3 */
		ADD(28, 6, 11),      /* t3 = t1 + a1 = 0 */
		ECALL(),
	};
	put(&v, RAM_BASE, code, sizeof(code) / 4);
	hart_reset(v.h, RAM_BASE, 0);
	for (int round = 0; round < 40; round++) {
		hart_set_pc(v.h, RAM_BASE);
		hart_set_reg(v.h, 10, 0x7fffffff);
		hart_set_reg(v.h, 11, 1);
		struct hart_exit ex = run(&v);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(v.h, 6) == ~0ull && hart_get_reg(v.h, 5) == (uint64_t)-2 &&
			      hart_get_reg(v.h, 7) == (uint64_t)-3 && hart_get_reg(v.h, 28) == 0,
		      "round %d: reason %d t1 %llx t0 %llx t2 %llx t3 %llx", round, ex.reason,
		      (unsigned long long)hart_get_reg(v.h, 6), (unsigned long long)hart_get_reg(v.h, 5),
		      (unsigned long long)hart_get_reg(v.h, 7), (unsigned long long)hart_get_reg(v.h, 28));
	}
	vm_fini(&v);
}

int main(void)
{
	test_trap_storm();
	test_loop_and_sbi_exit();
	test_pause_loop_exits();
	test_two_vms();
	test_mmio();
	test_narrow_registers_at_exit();
	test_illegal_trap();
	test_instret_exact();
	test_short_forward_branches();
	test_async_interrupt();
	test_interrupt_in_linked_loop();
	test_interrupt_in_narrow_loop();
	test_counters_in_linked_code();
	test_pc_relative_calls();
	test_scaled_add();
	test_operands_from_rax();
	test_rax_across_calls_and_traps();
	test_cbo_zero_own_code();
	test_zext_spread_follower_exit();
	test_fused_pairs_attacked();
	test_timer_and_wfi();
	test_code_invalidation();
	test_block_cache_pressure();
	test_fence_i_per_page();
	test_cross_hart_code_write();
	test_block_cache_idle();
	test_block_cache_kept_when_busy();
	test_amo_two_harts();
	test_smp_atomics();
	test_hot_code_page();
	test_shared_probe_stores();
	test_probe_runs();
	test_straddling_traps();
	test_narrow_loop();
	test_narrow_loop_entered_wide();
	test_bitwise_narrow_and_wide();
	test_rax_carried();
	test_zext_spread();
	test_jump_on();
	test_zext_scale();
	test_compare_in_memory();
	test_sraiw();
	test_narrow_in_rax();
	test_lent_registers();
	return check_summary(&C);
}

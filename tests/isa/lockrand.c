/*
 * skiff-lockrand: random instruction streams run on the JIT in lockstep
 * with the executor, for long runs (10^8 instructions and more) that the
 * assembler-based check (randcheck.py, against qemu-riscv64) is too slow
 * for. No assembler and no second emulator: the instruction words are made
 * here from the base encodings (unprivileged spec, chapter "RV32/64G
 * Instruction Set Listings", and the C, Zba/Zbb/Zbs and A chapters), and the
 * oracle is the executor, run block by block beside every translation
 * (--engine lockstep, src/engine/jit/lockstep.c). That also allows what the
 * qemu check must avoid: reserved encodings, faulting and misaligned
 * accesses, accesses outside RAM, counter reads; both tiers must agree on
 * every trap as on every result.
 *
 * Each round writes one page of random instructions (about 1000) over the
 * previous one (so each round also tests per-page invalidation), fills the
 * registers from the seed, runs the page in S-mode (bare translation) to
 * the ECALL at its end, then runs it again from fresh registers (the
 * second run takes the existing translations). Control flow only goes
 * forward: branches and jumps skip at most 128 bytes, into the page's tail
 * of C.NOPs when near the end. A trap goes to a handler that steps over
 * the instruction (2 or 4 bytes, from its low bits) and returns. x2 and x8
 * hold the data buffer's address (bases of loads, stores and AMOs; never a
 * destination), x30 and x31 belong to the handler.
 *
 * usage: skiff-lockrand --seed S --count N   (N: random instructions to run)
 * Exit status 0 when all agree, 1 at the first difference (the seed, round
 * and the block are printed), 2 on bad usage.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/gram.h"
#include "engine/engine.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define CODE (RAM_BASE + 0x10000)
#define HANDLER (RAM_BASE + 0x20000)
#define BUF (RAM_BASE + 0x2fe00) /* loads and stores around it cross 0x30000 */
#define PAGE 4096u
#define TAIL 256u                /* C.NOPs, then the ECALL */

enum { CSR_SSTATUS = 0x100, CSR_STVEC = 0x105, SSTATUS_FS_INITIAL = 1u << 13 };

struct rng { uint64_t s; };

static uint64_t rnd(struct rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static unsigned pick(struct rng *r, unsigned n) { return (unsigned)(rnd(r) % n); }

/* A destination: any register but x2, x8 (the buffer) and x30, x31 (the
 * handler's). x0 stays possible: writes to it must be dropped. */
static unsigned rd_any(struct rng *r)
{
	for (;;) {
		unsigned x = pick(r, 32);
		if (x != 2 && x != 8 && x != 30 && x != 31)
			return x;
	}
}
static unsigned rs_any(struct rng *r) { return pick(r, 32); }

static uint32_t enc_r(uint32_t op, uint32_t f3, uint32_t f7, unsigned rd, unsigned rs1, unsigned rs2)
{
	return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t enc_i(uint32_t op, uint32_t f3, unsigned rd, unsigned rs1, uint32_t imm)
{
	return (imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t enc_s(uint32_t op, uint32_t f3, unsigned rs1, unsigned rs2, uint32_t imm)
{
	return ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (imm & 0x1f) << 7 | op;
}
static uint32_t enc_b(uint32_t f3, unsigned rs1, unsigned rs2, uint32_t off)
{
	return ((off >> 12) & 1) << 31 | ((off >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 |
	       f3 << 12 | ((off >> 1) & 0xf) << 8 | ((off >> 11) & 1) << 7 | 0x63;
}
static uint32_t enc_j(unsigned rd, uint32_t off)
{
	return ((off >> 20) & 1) << 31 | ((off >> 1) & 0x3ff) << 21 | ((off >> 11) & 1) << 20 |
	       ((off >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
}

/* A memory offset from x2/x8: mostly near the buffer, sometimes anywhere
 * in the 12-bit range. A load's base is now and then a data register
 * instead (an address anywhere: a fault, or an access outside RAM); a
 * store's never is, as a link address or an AUIPC result as its base would
 * write into the code, which could then loop. */
static unsigned load_base(struct rng *r) { return pick(r, 16) ? (pick(r, 2) ? 2 : 8) : rs_any(r); }
static unsigned store_base(struct rng *r) { return pick(r, 2) ? 2u : 8u; }
static uint32_t mem_off(struct rng *r) { return pick(r, 4) ? pick(r, 512) : (uint32_t)rnd(r); }

static const uint32_t OP_F7[] = { 0x00, 0x20, 0x01, 0x05, 0x30, 0x10, 0x14, 0x24, 0x34, 0x04 };
static const uint32_t OPW_F7[] = { 0x00, 0x20, 0x01, 0x04, 0x10, 0x30 };
/* Shift-immediate upper bits (imm[11:6]) of OP-IMM: SRAI, Zbb (clz, ctz,
 * cpop, sext, rori, rev8, orc.b), Zbs (bseti, bclri, bexti, binvi). */
static const uint32_t SHIFT_HI[] = { 0x00, 0x10, 0x18, 0x0a, 0x12, 0x1a, 0x1b };
static const uint32_t FP_F7[] = {
	0x00, 0x01, 0x04, 0x05, 0x08, 0x09, 0x0c, 0x0d, 0x2c, 0x2d, 0x10, 0x11, 0x14, 0x15,
	0x20, 0x21, 0x50, 0x51, 0x60, 0x61, 0x68, 0x69, 0x70, 0x71, 0x78, 0x79,
};
static const uint32_t AMO_F5[] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c };
/* fflags, frm, fcsr, cycle, instret (time differs run to run: left out). */
static const uint32_t CSRS[] = { 0x001, 0x002, 0x003, 0xc00, 0xc02 };

/* One random 32-bit instruction word. */
static uint32_t insn32(struct rng *r)
{
	unsigned rd = rd_any(r), rs1 = rs_any(r), rs2 = rs_any(r);
	uint32_t f3 = pick(r, 8);
	switch (pick(r, 20)) {
	case 0: case 1: case 2:
		return enc_r(0x33, f3, OP_F7[pick(r, sizeof(OP_F7) / 4)], rd, rs1, rs2);
	case 3:
		return enc_r(0x3b, f3, OPW_F7[pick(r, sizeof(OPW_F7) / 4)], rd, rs1, rs2);
	case 4: case 5: {
		uint32_t imm = (uint32_t)rnd(r);
		if (f3 == 1 || f3 == 5)
			imm = SHIFT_HI[pick(r, sizeof(SHIFT_HI) / 4)] << 6 | (imm & 0x3f);
		return enc_i(0x13, f3, rd, rs1, imm);
	}
	case 6: {
		uint32_t imm = (uint32_t)rnd(r);
		if (f3 == 1 || f3 == 5)
			imm = (pick(r, 2) ? 0x20u : pick(r, 2) ? 0x30u : 0x2u) << 5 | (imm & 0x1f);
		return enc_i(0x1b, f3, rd, rs1, imm);
	}
	case 7:
		return ((uint32_t)rnd(r) & 0xfffff000u) | rd << 7 | (pick(r, 2) ? 0x37 : 0x17);
	case 8: case 9:
		return enc_i(0x03, f3, rd, load_base(r), mem_off(r));
	case 10: case 11:
		return enc_s(0x23, f3 & 3, store_base(r), rs2, mem_off(r));
	case 12:
		return pick(r, 2) ? enc_i(0x07, 2 + (f3 & 1), rs_any(r), load_base(r), mem_off(r))
				  : enc_s(0x27, 2 + (f3 & 1), store_base(r), rs2, mem_off(r));
	case 13: {
		/* rm 0-4 or DYN (7); 5 and 6 are reserved and trap. RNE (the
		 * mode translated code computes inline) a third of the time. */
		uint32_t rm = pick(r, 3) ? pick(r, 8) : 0;
		return enc_r(0x53, rm, FP_F7[pick(r, sizeof(FP_F7) / 4)], rs_any(r), rs1, pick(r, 4));
	}
	case 14: {
		uint32_t op = 0x43 + 4 * pick(r, 4), rm = pick(r, 3) ? pick(r, 8) : 0;
		return (uint32_t)rs_any(r) << 27 | pick(r, 2) << 25 | rs2 << 20 | rs1 << 15 | rm << 12 |
		       (uint32_t)rs_any(r) << 7 | op;
	}
	case 15: {
		/* AMO, LR/SC on the buffer's first word (x8); LR from anywhere
		 * now and then (misaligned, outside RAM). */
		uint32_t f5 = AMO_F5[pick(r, sizeof(AMO_F5) / 4)];
		return enc_r(0x2f, 2 + (f3 & 1), f5 << 2 | pick(r, 4), rd,
			     f5 == 0x02 && !pick(r, 4) ? rs1 : 8, f5 == 0x02 ? 0 : rs2);
	}
	case 16:
		return enc_b(f3, rs1, rs2, 0); /* the target: make_page */
	case 17:
		return enc_j(rd, 0);
	case 18: {
		/* Zicsr on the FP CSRs and counter reads. */
		uint32_t csr = CSRS[pick(r, sizeof(CSRS) / 4)];
		uint32_t k = 1 + pick(r, 3) + 4 * pick(r, 2); /* CSRRW/S/C, CSRRWI/SI/CI */
		if (csr >= 0xc00)
			return enc_i(0x73, 2, rd, 0, csr); /* csrr: the counters are read-only */
		return enc_i(0x73, k, rd, rs1, csr);
	}
	default:
		switch (pick(r, 3)) {
		case 0: return enc_i(0x0f, 0, 0, 0, pick(r, 256)); /* FENCE */
		case 1: return 0x0000100fu;                     /* FENCE.I */
		default: return 0x0100000fu;                    /* PAUSE */
		}
	}
}

/* One random 16-bit instruction (RV64C), destinations x9..x15 or any but
 * the reserved ones; no C.JR/C.JALR, C.ADDI16SP, C.EBREAK or backward
 * jumps. */
static uint16_t insn16(struct rng *r)
{
	uint16_t w = (uint16_t)rnd(r);
	unsigned q = pick(r, 3), f3 = pick(r, 8);
	unsigned rdp = 1 + pick(r, 7); /* x9..x15 as rd' */
	w = (uint16_t)(w & ~0xe003u) | (uint16_t)(f3 << 13) | (uint16_t)q;
	if (q == 0) {
		/* rd'/rs2' in bits 4:2, rs1' in 9:7: keep rd' off x8, stores
		 * (funct3 5-7) based on x8 (see store_base). */
		w = (uint16_t)((w & ~0x1cu) | rdp << 2);
		if (f3 >= 5)
			w &= (uint16_t)~0x380u;
		return w;
	}
	if (q == 1) {
		if (f3 == 5) /* C.J; the target: make_page */
			return 0xa001;
		if (f3 >= 6) /* C.BEQZ/C.BNEZ */
			return (uint16_t)(f3 << 13 | (uint32_t)pick(r, 8) << 7 | 1);
		if (f3 == 4) /* the ALU group: rd' in bits 9:7 */
			return (uint16_t)((w & ~0x380u) | rdp << 7);
		/* C.ADDI, C.ADDIW, C.LI, C.LUI: rd in 11:7 */
		return (uint16_t)((w & ~0xf80u) | rd_any(r) << 7);
	}
	/* q == 2 */
	if (f3 == 4) {
		/* C.MV / C.ADD with rs2 != 0 (so never C.JR, C.JALR, C.EBREAK). */
		unsigned rs2 = 1 + pick(r, 31);
		return (uint16_t)(0x8002 | pick(r, 2) << 12 | rd_any(r) << 7 | rs2 << 2);
	}
	if (f3 >= 5) /* stores from sp: any source */
		return w;
	return (uint16_t)((w & ~0xf80u) | rd_any(r) << 7); /* C.SLLI, C.*LDSP/LWSP */
}

/* Put `off` into the target field of the branch or jump at `at`; false
 * if it is neither. */
static bool set_target(uint8_t *at, uint32_t off)
{
	uint16_t h;
	memcpy(&h, at, 2);
	if ((h & 3) != 3) {
		if ((h & 0xe003) == 0xa001) /* C.J: offset[11|4|9:8|10|6|7|3:1|5] */
			h = (uint16_t)((h & ~0x1ffcu) | ((off >> 11) & 1) << 12 | ((off >> 4) & 1) << 11 |
				       ((off >> 8) & 3) << 9 | ((off >> 10) & 1) << 8 | ((off >> 6) & 1) << 7 |
				       ((off >> 7) & 1) << 6 | ((off >> 1) & 7) << 3 | ((off >> 5) & 1) << 2);
		else if ((h & 0xc003) == 0xc001) /* C.BEQZ/BNEZ: offset[8|4:3], [7:6|2:1|5] */
			h = (uint16_t)((h & ~0x1c7cu) | ((off >> 8) & 1) << 12 | ((off >> 3) & 3) << 10 |
				       ((off >> 6) & 3) << 5 | ((off >> 1) & 3) << 3 | ((off >> 5) & 1) << 2);
		else
			return false;
		memcpy(at, &h, 2);
		return true;
	}
	uint32_t w;
	memcpy(&w, at, 4);
	if ((w & 0x7f) == 0x63)
		w = (w & 0x01fff07fu) | (enc_b(0, 0, 0, off) & ~0x7fu);
	else if ((w & 0x7f) == 0x6f)
		w = (w & 0xfffu) | (enc_j(0, off) & ~0xfffu);
	else
		return false;
	memcpy(at, &w, 4);
	return true;
}

/* Fill the page: random instructions up to the tail, the tail's C.NOPs,
 * the final ECALL. Then every branch and jump gets a target: the start of
 * a later instruction at most 128 bytes on (never the middle of one,
 * whose second half could decode as a jump anywhere), or the tail. */
static unsigned make_page(struct rng *r, uint8_t *page)
{
	static uint16_t start[PAGE / 2];
	unsigned at = 0, n = 0;
	while (at + 4 <= PAGE - TAIL) {
		start[n++] = (uint16_t)at;
		if (pick(r, 4) == 0) {
			uint16_t h = insn16(r);
			memcpy(page + at, &h, 2);
			at += 2;
		} else {
			uint32_t w = insn32(r);
			memcpy(page + at, &w, 4);
			at += 4;
		}
	}
	unsigned body = at;
	for (; at < PAGE - 4; at += 2) {
		uint16_t nop = 0x0001;
		memcpy(page + at, &nop, 2);
	}
	uint32_t ecall = 0x00000073;
	memcpy(page + PAGE - 4, &ecall, 4);
	for (unsigned k = 0; k < n; k++) {
		unsigned last = k + 1;
		while (last < n && start[last] <= start[k] + 128)
			last++;
		/* Instructions k+1 .. last-1 are in range, and the tail (at most
		 * 164 bytes on, within C.BEQZ's reach) when they are the last. */
		unsigned choice = k + 1 + pick(r, last - k - 1 + (last == n));
		uint32_t to = choice < last ? start[choice] : body + 2 * pick(r, 16);
		set_target(page + start[k], to - start[k]);
	}
	return n;
}

/* The trap handler: sepc += the faulting instruction's length; sret. */
static const uint32_t handler[] = {
	0x14102ff3, /* csrr x31, sepc */
	0x000fdf03, /* lhu x30, 0(x31) */
	0x003f7f13, /* andi x30, x30, 3 */
	0x002f8f93, /* addi x31, x31, 2 */
	0xffdf0f13, /* addi x30, x30, -3 */
	0x000f1463, /* bnez x30, +8 */
	0x002f8f93, /* addi x31, x31, 2 */
	0x141f9073, /* csrw sepc, x31 */
	0x10200073, /* sret */
};

static const uint64_t EDGES[] = {
	0, 1, 2, 0xffffffffffffffffull, 0x7fffffffffffffffull, 0x8000000000000000ull,
	0x7fffffffull, 0x80000000ull, 0xffffffffull, 0xffffffff80000000ull, 31, 32, 63, 64,
	0x7ff8000000000000ull, 0xffffffff7fc00000ull, 0x3ff0000000000000ull, 0xffffffff3f800000ull,
};

/* An ordinary FP value: a double, or a NaN-boxed single, of either sign
 * within a few powers of two of 1 (products and quotients of these stay
 * normal, so translated code finishes them inline). */
static uint64_t ordinary_fp(struct rng *r)
{
	uint64_t v = rnd(r);
	if (pick(r, 2))
		return (v & 0x800fffffffffffffull) | (uint64_t)(0x3f8 + pick(r, 16)) << 52;
	return 0xffffffff00000000ull | (v & 0x807fffffu) | (uint64_t)(0x78 + pick(r, 16)) << 23;
}

static void fill_regs(struct rng *r, struct hart *h)
{
	for (unsigned k = 1; k < 32; k++) {
		unsigned kind = pick(r, 8);
		hart_set_reg(h, k, kind < 4 ? rnd(r) : kind < 6 ? ordinary_fp(r)
						  : EDGES[pick(r, sizeof(EDGES) / 8)]);
	}
	hart_set_reg(h, 2, BUF);
	hart_set_reg(h, 8, BUF);
	/* fcsr: a valid frm (RNE half the time); no flags, or NX already set
	 * (translated code's inline paths need it). */
	hart_csr_write(h, 0x003, (pick(r, 2) ? 0 : pick(r, 5)) << 5 | pick(r, 2));
	hart_set_pc(h, CODE - 32 * 4);
}

/* The prologue before the page moves x[k] into f[k] (fmv.d.x, or fmv.w.x
 * for NaN-boxed singles), so the f registers start random too. */
static void make_prologue(struct rng *r, uint32_t *p)
{
	for (unsigned k = 0; k < 32; k++)
		p[k] = enc_r(0x53, 0, pick(r, 2) ? 0x79 : 0x78, k, k, 0);
}

/* A page can store into itself or into the handler (a register holding a
 * link address or an AUIPC result is a store base now and then): the
 * self-modified code may loop. A watchdog thread kicks a pass that runs
 * longer than two seconds; the pass then ends there (what ran was
 * compared all the same). */
struct watchdog {
	struct hart *h;
	_Atomic uint64_t pass;  /* bumped at each pass's start */
	_Atomic bool stop;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	uint64_t seen = ~0ull;
	unsigned ticks = 0;
	while (!w->stop) {
		usleep(100000);
		uint64_t now = w->pass;
		if (now != seen) {
			seen = now;
			ticks = 0;
		} else if (++ticks == 20) {
			hart_kick(w->h);
		}
	}
	return NULL;
}

enum pass_end { PASS_DONE, PASS_CUT, PASS_DIFFERENT };

/* Run from the prologue to the page's ECALL. */
static enum pass_end run_page(struct hart *h, uint64_t *retired)
{
	uint64_t before = 0, after = 0;
	hart_csr_read(h, 0xc02, &before);
	enum pass_end end;
	for (;;) {
		struct hart_exit ex;
		hart_run(h, &ex);
		if (ex.reason == EXIT_SBI) {
			end = PASS_DONE;
			break;
		}
		if (ex.reason == EXIT_MMIO) {
			hart_mmio_complete(h, 0, true); /* no devices: an access fault */
			continue;
		}
		if (ex.reason == EXIT_PAUSE)
			continue;
		if (ex.reason == EXIT_KICK) {
			end = PASS_CUT;
			break;
		}
		if (ex.reason == EXIT_FATAL && ex.fatal.what && strncmp(ex.fatal.what, "lockstep", 8)) {
			/* Not a difference: the page broke its own handler (a trap
			 * storm), as it would on any engine. */
			end = PASS_CUT;
			break;
		}
		fprintf(stderr, "skiff-lockrand: %s at pc %#" PRIx64 "\n",
			ex.reason == EXIT_FATAL && ex.fatal.what ? ex.fatal.what : exit_reason_name(ex.reason),
			hart_get_pc(h));
		return PASS_DIFFERENT;
	}
	hart_csr_read(h, 0xc02, &after);
	*retired += after - before;
	return end;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, count = 0;
	bool have_seed = false;
	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--seed") && k + 1 < argc) {
			seed = strtoull(argv[++k], NULL, 0);
			have_seed = true;
		} else if (!strcmp(argv[k], "--count") && k + 1 < argc) {
			count = strtoull(argv[++k], NULL, 0);
		} else {
			fprintf(stderr, "usage: skiff-lockrand --seed S --count N\n");
			return 2;
		}
	}
	if (!have_seed || !count) {
		fprintf(stderr, "usage: skiff-lockrand --seed S --count N\n");
		return 2;
	}
	if (!engine_jit_available()) {
		fprintf(stderr, "skiff-lockrand: no JIT on this host\n");
		return 2;
	}
	struct gram ram;
	if (gram_init(&ram, RAM_BASE, RAM_SIZE)) {
		perror("gram_init");
		return 2;
	}
	struct hart_config cfg = { .engine = ENGINE_JIT, .jit_threshold = 1, .jit_lockstep = true };
	struct hart *h = hart_create(&ram, &cfg);
	if (!h) {
		fprintf(stderr, "skiff-lockrand: hart_create failed\n");
		return 2;
	}
	gram_write(&ram, HANDLER, handler, sizeof(handler));
	struct rng r = { seed };
	static uint8_t page[PAGE];
	uint32_t prologue[32];
	uint64_t generated = 0, retired = 0, rounds = 0, cut = 0;
	int rc = 0;
	struct watchdog wd = { .h = h };
	pthread_t wt;
	if (pthread_create(&wt, NULL, watchdog_thread, &wd)) {
		fprintf(stderr, "skiff-lockrand: no watchdog thread\n");
		return 2;
	}
	while (generated < count) {
		unsigned n = make_page(&r, page);
		make_prologue(&r, prologue);
		gram_write(&ram, CODE - sizeof(prologue), prologue, sizeof(prologue));
		gram_write(&ram, CODE, page, PAGE);
		for (int pass = 0; pass < 2 && !rc; pass++) {
			hart_reset(h, CODE - sizeof(prologue), 0);
			hart_csr_write(h, CSR_SSTATUS, SSTATUS_FS_INITIAL);
			hart_csr_write(h, CSR_STVEC, HANDLER);
			fill_regs(&r, h);
			/* Now and then FP off (sstatus.FS = 0): every F/D
			 * instruction and FP CSR access must trap. */
			if (!pick(&r, 8))
				hart_csr_write(h, CSR_SSTATUS, 0);
			wd.pass++;
			enum pass_end end = run_page(h, &retired);
			cut += end == PASS_CUT;
			if (end == PASS_DIFFERENT) {
				fprintf(stderr, "skiff-lockrand: seed %" PRIu64 ", round %" PRIu64
					", pass %d: translated code and the executor differ\n",
					seed, rounds, pass);
				rc = 1;
			}
		}
		if (rc)
			break;
		generated += n;
		rounds++;
	}
	wd.stop = true;
	pthread_join(wt, NULL);
	printf("skiff-lockrand: seed %" PRIu64 ": %" PRIu64 " pages, %" PRIu64
	       " random instructions, %" PRIu64 " retired in lockstep (%" PRIu64
	       " passes cut short: self-modified into a loop or a trap storm), %s\n",
	       seed, rounds, generated, retired, cut, rc ? "a difference" : "no difference");
	hart_destroy(h);
	gram_destroy(&ram);
	return rc;
}

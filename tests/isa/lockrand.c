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
 * second run takes the existing translations). The random instructions'
 * branches and jumps go forward, at most 128 bytes, into the page's tail
 * of C.NOPs when near the end; between them the page has bounded loops
 * (make_page_loops: backward branches to a loop's start or into it, `j`
 * back and forth in the page, W operations carried round, loops entered
 * holding 64-bit values). --forward-only makes the pages without loops
 * that every seed gave before loops came (old seeds reproduce with it).
 * A trap goes to a handler that steps over the instruction (2 or 4 bytes,
 * from its low bits) and returns. x2 and x8 hold the data buffer's address
 * (bases of loads, stores and AMOs; never a destination of most
 * instructions), x30 and x31 belong to the handler.
 *
 * Tiers: --tier lockstep (the default) checks every block's run against
 * the executor's (but runs one block at a time: no chaining, a loop's
 * jump back leaves the translation, stores take the slow path); --tier
 * jit runs each pass on the JIT as it runs in a VM and again on the
 * executor with RAM of its own, and compares the ends (registers, pc,
 * counters, trap CSRs, all RAM). --threshold T: runs of a block before
 * its translation (default 1; 0: the engine's default). --sv39 runs the
 * pages through Sv39 page tables (map_sv39) instead of bare addresses.
 *
 * usage: skiff-lockrand --seed S --count N [--tier lockstep|jit]
 *                       [--threshold T] [--forward-only] [--sv39] [--dump FILE]
 * (N: random instructions to generate.) Exit status 0 when all agree, 1 at
 * the first difference (the seed, round and the block or state are
 * printed; --dump FILE writes that page), 2 on bad usage.
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

/*
 * Loops (the default; --forward-only makes the pages above, so that old
 * seeds still reproduce). The page mixes the random instructions with
 * bounded loops, each
 *   init     addi/addiw c, x0, N  or  c.li c, N
 *   L:       piece 1
 *            piece 2
 *   dec      addi/addiw/c.addi/c.addiw c, c, -1..-3
 *   latch    blt x0, c, T  or  bge c, x0, T
 * with T the loop's start or an instruction inside it, or rotated, so
 * that the loop's block goes on past a `j` back in its page (negative
 * pc offsets):
 *   init; j L; X: piece 2; dec; latch -> L (forward); j OUT;
 *   L: piece 1; j X; OUT:
 * A piece is random instructions with more W operations chaining the
 * loop's three registers (a hash's state: narrow across the jump back),
 * loads, stores, CBO.ZERO, SLLI..SRLI zero-extension pairs with others
 * between; before the loop an AUIPC now and then leaves one of those
 * registers a value that is not its low half's sign extension (a loop
 * entered wide).
 * Bounded: c, the page's counter register, is written by nothing else on
 * the page (an instruction that would is drawn again), starts each pass
 * at 0 or below and leaves each loop so. A piece's branches go forward,
 * at most to its end (the dec or the `j X`), so every way round a loop
 * passes a dec and its latch: however a loop is entered (a forward
 * branch from before it may land anywhere in it), it ends within N + 1
 * rounds.
 */
static bool forward_only;
static unsigned counter; /* the page's loop counter register */

struct pagegen {
	uint8_t *page;
	unsigned at, n;           /* the next instruction's offset; instructions */
	uint16_t start[PAGE / 2];
	uint16_t reach[PAGE / 2]; /* a branch's farthest target; 0: 128 bytes on */
	bool fixed[PAGE / 2];     /* a loop's own jump or branch: target set */
};

/* The integer register an instruction writes (0: none). */
static unsigned x_dest(uint32_t w)
{
	unsigned rd = (w >> 7) & 31;
	if ((w & 3) != 3) {
		unsigned f3 = (w >> 13) & 7;
		switch (w & 3) {
		case 0: /* C.ADDI4SPN, C.LW, C.LD: rd' in 4:2 */
			return f3 == 0 || f3 == 2 || f3 == 3 ? 8 + ((w >> 2) & 7) : 0;
		case 1: /* C.ADDI, C.ADDIW, C.LI, C.LUI/ADDI16SP; the ALU group: rd' in 9:7 */
			return f3 <= 3 ? rd : f3 == 4 ? 8 + (rd & 7) : 0;
		default: /* C.SLLI, C.LWSP, C.LDSP; C.MV/C.ADD, C.JALR (x1) */
			if (f3 == 0 || f3 == 2 || f3 == 3)
				return rd;
			if (f3 == 4)
				return (w >> 2) & 31 ? rd : (w >> 12) & 1 ? 1 : 0;
			return 0;
		}
	}
	switch (w & 0x7f) {
	case 0x03: case 0x13: case 0x17: case 0x1b: case 0x2f: case 0x33: case 0x37: case 0x3b:
	case 0x67: case 0x6f:
		return rd;
	case 0x73:
		return (w >> 12) & 7 ? rd : 0;
	case 0x53: { /* compares, conversions to integers, FMV.X, FCLASS */
		unsigned f7 = w >> 25;
		return f7 == 0x50 || f7 == 0x51 || f7 == 0x60 || f7 == 0x61 || f7 == 0x70 || f7 == 0x71 ? rd : 0;
	}
	default:
		return 0;
	}
}

static void put(struct pagegen *g, uint32_t w, unsigned len, bool fixed)
{
	g->start[g->n] = (uint16_t)g->at;
	g->reach[g->n] = 0;
	g->fixed[g->n++] = fixed;
	memcpy(g->page + g->at, &w, len); /* little-endian: a C insn is w's low half */
	g->at += len;
}

/* A random instruction as make_page draws them, but not one that writes
 * the counter. */
static void put_random(struct rng *r, struct pagegen *g)
{
	for (;;) {
		bool c = pick(r, 4) == 0;
		uint32_t w = c ? insn16(r) : insn32(r);
		if (x_dest(w) != counter) {
			put(g, w, c ? 2 : 4, false);
			return;
		}
	}
}

/* W operations: funct7 << 3 | funct3 of ADDW, SUBW, SLLW, SRLW, SRAW,
 * MULW, DIVW, REMUW. */
static const uint16_t W_OPS[] = { 0x000, 0x100, 0x001, 0x005, 0x105, 0x008, 0x00c, 0x00f };

static void put_body_item(struct rng *r, struct pagegen *g, const unsigned *st, bool pairs)
{
	unsigned a = st[pick(r, 3)], b = st[pick(r, 3)], c = pick(r, 4) ? st[pick(r, 3)] : rs_any(r);
	switch (pick(r, 16)) {
	case 0: case 1: case 2: {
		uint16_t op = W_OPS[pick(r, sizeof(W_OPS) / 2)];
		put(g, enc_r(0x3b, op & 7, op >> 3, a, b, c), 4, false);
		return;
	}
	case 3: case 4: {
		unsigned f3 = pick(r, 3) ? 0 : pick(r, 2) ? 1 : 5; /* ADDIW, SLLIW, SRLIW/SRAIW */
		uint32_t imm = (uint32_t)rnd(r);
		if (f3)
			imm = (f3 == 5 && pick(r, 2) ? 0x400u : 0) | (imm & 31);
		put(g, enc_i(0x1b, f3, a, b, imm), 4, false);
		return;
	}
	case 5: { /* C.ADDIW a, imm */
		uint32_t imm = pick(r, 64);
		put(g, 0x2001u | (imm >> 5) << 12 | a << 7 | (imm & 31) << 2, 2, false);
		return;
	}
	case 6: { /* LW, LD, LWU */
		static const unsigned f3s[] = { 2, 3, 6 };
		put(g, enc_i(0x03, f3s[pick(r, 3)], a, load_base(r), mem_off(r)), 4, false);
		return;
	}
	case 7:
		put(g, enc_s(0x23, 2 + pick(r, 2), store_base(r), b, mem_off(r)), 4, false);
		return;
	case 8: /* CBO.ZERO on the buffer (from any register it would zero the
		 * code now and then, x31 holding a trap's sepc: a loop's dec
		 * gone, the pass runs into the watchdog) */
		put(g, 0x0040200fu | store_base(r) << 15, 4, false);
		return;
	case 9:
		if (pairs) { /* SLLI a, b, 32|48|56; up to 4 others; SRLI a, a, same */
			static const unsigned sh[] = { 32, 48, 56 };
			unsigned s = sh[pick(r, 3)], k = pick(r, 5);
			put(g, enc_i(0x13, 1, a, b, s), 4, false);
			while (k--)
				put_body_item(r, g, st, false);
			put(g, enc_i(0x13, 5, a, a, s), 4, false);
			return;
		}
		break;
	default:
		break;
	}
	put_random(r, g);
}

/* Random instructions for a loop; their branches reach at most to what
 * comes after them (the dec or the `j` back). */
static void put_piece(struct rng *r, struct pagegen *g, const unsigned *st, unsigned items)
{
	unsigned first = g->n;
	while (items--)
		put_body_item(r, g, st, true);
	for (unsigned k = first; k < g->n; k++)
		g->reach[k] = (uint16_t)g->at;
}

static void put_dec(struct rng *r, struct pagegen *g)
{
	uint32_t d = 1 + pick(r, 3), imm = -d & 0x3f;
	switch (pick(r, 4)) {
	case 0: put(g, enc_i(0x13, 0, counter, counter, -d), 4, false); break;
	case 1: put(g, enc_i(0x1b, 0, counter, counter, -d), 4, false); break;
	case 2: put(g, 0x0001u | (imm >> 5) << 12 | counter << 7 | (imm & 31) << 2, 2, false); break;
	default: put(g, 0x2001u | (imm >> 5) << 12 | counter << 7 | (imm & 31) << 2, 2, false); break;
	}
}

/* The latch, its target set when known (0: later). */
static void put_latch(struct rng *r, struct pagegen *g, unsigned to)
{
	uint32_t off = to - g->at;
	put(g, pick(r, 2) ? enc_b(4, 0, counter, off) : enc_b(5, counter, 0, off), 4, true);
}

/* A start of an instruction in [from, g->at): the loop's start half the
 * time. */
static unsigned pick_target(struct rng *r, const struct pagegen *g, unsigned from_n)
{
	if (pick(r, 2) || from_n >= g->n)
		return g->start[from_n];
	return g->start[from_n + pick(r, g->n - from_n)];
}

static void put_loop(struct rng *r, struct pagegen *g)
{
	unsigned st[3];
	for (unsigned k = 0; k < 3; k++) {
		do
			st[k] = rd_any(r);
		while (!st[k] || st[k] == counter);
		if (!pick(r, 3)) /* AUIPC: a value that is not its low half's sign extension */
			put(g, ((uint32_t)rnd(r) & 0xfffff000u) | st[k] << 7 | 0x17, 4, false);
	}
	/* Rounds: a few mostly, enough to get a block translated at the
	 * default threshold now and then, and long enough for the JIT's
	 * deadline (every 32768 instructions) to come inside a loop. */
	uint32_t n = pick(r, 4) ? 1 + pick(r, 8) : pick(r, 4) ? 1 + pick(r, 40) : 1 + pick(r, 1000);
	switch (pick(r, 3)) {
	case 0: put(g, enc_i(0x13, 0, counter, 0, n), 4, false); break;
	case 1: put(g, enc_i(0x1b, 0, counter, 0, n), 4, false); break;
	default: /* C.LI, or ADDI for the larger counts */
		if (n < 32)
			put(g, 0x4001u | counter << 7 | n << 2, 2, false);
		else
			put(g, enc_i(0x13, 0, counter, 0, n), 4, false);
	}
	unsigned i1 = 1 + pick(r, 8), i2 = pick(r, 8);
	if (pick(r, 3)) {
		unsigned l = g->n;
		put_piece(r, g, st, i1);
		put_piece(r, g, st, i2);
		unsigned to = pick_target(r, g, l);
		put_dec(r, g);
		put_latch(r, g, to);
		return;
	}
	unsigned jl = g->n;
	put(g, enc_j(0, 0), 4, true);
	unsigned x = g->at;
	put_piece(r, g, st, i2);
	put_dec(r, g);
	unsigned latch = g->n;
	put_latch(r, g, 0);
	unsigned jo = g->n;
	put(g, enc_j(0, 0), 4, true);
	unsigned l = g->n;
	put_piece(r, g, st, i1);
	unsigned to = pick_target(r, g, l);
	put(g, enc_j(0, x - g->at), 4, true);
	set_target(g->page + g->start[jl], g->start[l] - g->start[jl]);
	set_target(g->page + g->start[latch], to - g->start[latch]);
	set_target(g->page + g->start[jo], g->at - g->start[jo]);
}

/* make_page with loops; a loop takes at most LOOP_BYTES. */
#define LOOP_BYTES 448u
static unsigned make_page_loops(struct rng *r, uint8_t *page)
{
	static struct pagegen g;
	g.page = page;
	g.at = g.n = 0;
	do
		counter = rd_any(r);
	while (!counter);
	while (g.at + 4 <= PAGE - TAIL) {
		if (g.at + LOOP_BYTES <= PAGE - TAIL && !pick(r, 16))
			put_loop(r, &g);
		else
			put_random(r, &g);
	}
	unsigned body = g.at;
	for (unsigned at = body; at < PAGE - 4; at += 2) {
		uint16_t nop = 0x0001;
		memcpy(page + at, &nop, 2);
	}
	uint32_t ecall = 0x00000073;
	memcpy(page + PAGE - 4, &ecall, 4);
	for (unsigned k = 0; k < g.n; k++) {
		if (g.fixed[k])
			continue;
		unsigned last = k + 1, limit = g.reach[k] ? g.reach[k] : g.start[k] + 128u;
		while (last < g.n && g.start[last] <= limit)
			last++;
		bool tail = last == g.n && !g.reach[k];
		unsigned choice = k + 1 + pick(r, last - k - 1 + tail);
		uint32_t to = choice < last ? g.start[choice] : body + 2 * pick(r, 16);
		set_target(page + g.start[k], to - g.start[k]);
	}
	return g.n;
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
	if (!forward_only)
		hart_set_reg(h, counter, -(uint64_t)pick(r, 3));
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

/* A page can store into itself or into the handler (x2 and x8, the
 * store bases, can be overwritten by an FP compare or conversion or
 * FMV.X; CBO.ZERO's base is any register now and then): the self-modified
 * code may loop. A watchdog thread kicks a run that goes on longer than
 * two seconds; the pass then ends there (in lockstep what ran was
 * compared all the same). */
struct watchdog {
	struct hart *_Atomic h; /* the hart running now */
	_Atomic uint64_t pass;  /* bumped at each run's start */
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

/* --tier jit: a thread pokes the JIT's hart every 50-500 us as a device
 * raising a line would (hart_set_irq with no bits: its translations leave
 * at their next deadline check, a loop's jump back among them, and the
 * executor finds nothing to take), and now and then asks for a FENCE.I or
 * an SFENCE.VMA from outside (as another hart's remote fences would: its
 * translations go, or its TLB, so that loads and stores inside a loop
 * miss and go through C). None may change what the page computes. */
struct poker {
	struct hart *h;
	_Atomic bool stop;
	uint64_t pokes, fences;
};

static void *poker_thread(void *arg)
{
	struct poker *p = arg;
	struct rng r = { 0x70c3 };
	while (!p->stop) {
		usleep(50 + pick(&r, 450));
		unsigned what = pick(&r, 16);
		if (what > 1) {
			hart_set_irq(p->h, 0, true);
			p->pokes++;
		} else {
			harts_flush(&p->h, 1, what ? HART_FLUSH_CODE : HART_FLUSH_TLB);
			p->fences++;
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

/* --sv39: RAM mapped at its own addresses by Sv39 4 KiB pages (a root,
 * one level-1 and one level-0 table past the buffer, where no store
 * reaches), every other page global, so that the JIT's loads and stores go
 * through its TLB probes, misses and global entries; an access outside RAM
 * is then a page fault. */
#define PT (RAM_BASE + 0x40000)
static bool sv39;

static void map_sv39(struct gram *ram)
{
	uint64_t root[512] = { 0 }, l1[512] = { 0 }, l0[512] = { 0 };
	root[RAM_BASE >> 30 & 511] = (PT + 0x1000) >> 12 << 10 | 1;
	l1[RAM_BASE >> 21 & 511] = (PT + 0x2000) >> 12 << 10 | 1;
	for (uint64_t k = 0; k < RAM_SIZE >> 12; k++) /* V R W X, A D, G on odd pages */
		l0[k] = ((RAM_BASE >> 12) + k) << 10 | 0xcf | (k & 1) << 5;
	gram_write(ram, PT, root, sizeof(root));
	gram_write(ram, PT + 0x1000, l1, sizeof(l1));
	gram_write(ram, PT + 0x2000, l0, sizeof(l0));
}

/* A pass's start on h, its registers from r. */
static void start_pass(struct rng *r, struct hart *h)
{
	hart_reset(h, CODE - 32 * 4, 0);
	hart_csr_write(h, CSR_SSTATUS, SSTATUS_FS_INITIAL);
	hart_csr_write(h, CSR_STVEC, HANDLER);
	uint64_t satp = 0;
	if (sv39 && (hart_csr_write(h, 0x180, 8ull << 60 | PT >> 12) || hart_csr_read(h, 0x180, &satp) || !satp)) {
		fprintf(stderr, "skiff-lockrand: satp refused Sv39\n");
		exit(2);
	}
	fill_regs(r, h);
	/* Now and then FP off (sstatus.FS = 0): every F/D instruction and FP
	 * CSR access must trap. */
	if (!pick(r, 8))
		hart_csr_write(h, CSR_SSTATUS, 0);
}

/* --tier jit: whether the translated run (h, RAM a) and the executor's
 * (ref, RAM b) ended the same: registers, pc, counters, the trap CSRs,
 * every byte of RAM. */
static bool same_end(struct hart *h, struct gram *a, struct hart *ref, struct gram *b)
{
	static const unsigned csrs[] = { 0x003, 0x100, 0x141, 0x142, 0x143, 0xc02 };
	for (unsigned k = 1; k < 32; k++)
		if (hart_get_reg(h, k) != hart_get_reg(ref, k)) {
			fprintf(stderr, "skiff-lockrand: x%u is %#" PRIx64 " on the JIT, %#" PRIx64
				" on the executor\n", k, hart_get_reg(h, k), hart_get_reg(ref, k));
			return false;
		}
	for (unsigned k = 0; k < 32; k++)
		if (hart_get_freg(h, k) != hart_get_freg(ref, k)) {
			fprintf(stderr, "skiff-lockrand: f%u is %#" PRIx64 " on the JIT, %#" PRIx64
				" on the executor\n", k, hart_get_freg(h, k), hart_get_freg(ref, k));
			return false;
		}
	if (hart_get_pc(h) != hart_get_pc(ref)) {
		fprintf(stderr, "skiff-lockrand: pc is %#" PRIx64 " on the JIT, %#" PRIx64 " on the executor\n",
			hart_get_pc(h), hart_get_pc(ref));
		return false;
	}
	for (unsigned k = 0; k < sizeof(csrs) / sizeof(csrs[0]); k++) {
		uint64_t v = 0, w = 0;
		hart_csr_read(h, csrs[k], &v);
		hart_csr_read(ref, csrs[k], &w);
		if (v != w) {
			fprintf(stderr, "skiff-lockrand: csr %#x is %#" PRIx64 " on the JIT, %#" PRIx64
				" on the executor\n", csrs[k], v, w);
			return false;
		}
	}
	const uint8_t *pa = gram_ptr(a, RAM_BASE, RAM_SIZE), *pb = gram_ptr(b, RAM_BASE, RAM_SIZE);
	if (memcmp(pa, pb, RAM_SIZE)) {
		size_t k = 0;
		while (pa[k] == pb[k])
			k++;
		fprintf(stderr, "skiff-lockrand: RAM at %#" PRIx64 " is %#x on the JIT, %#x on the executor\n",
			(uint64_t)(RAM_BASE + k), pa[k], pb[k]);
		return false;
	}
	return true;
}

static int usage(void)
{
	fprintf(stderr, "usage: skiff-lockrand --seed S --count N [--tier lockstep|jit] [--threshold T]"
		" [--forward-only] [--sv39] [--dump FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, count = 0, threshold = 1;
	bool have_seed = false, lockstep = true;
	const char *dump = NULL;
	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--seed") && k + 1 < argc) {
			seed = strtoull(argv[++k], NULL, 0);
			have_seed = true;
		} else if (!strcmp(argv[k], "--count") && k + 1 < argc) {
			count = strtoull(argv[++k], NULL, 0);
		} else if (!strcmp(argv[k], "--threshold") && k + 1 < argc) {
			threshold = strtoull(argv[++k], NULL, 0);
		} else if (!strcmp(argv[k], "--tier") && k + 1 < argc) {
			const char *t = argv[++k];
			if (strcmp(t, "lockstep") && strcmp(t, "jit"))
				return usage();
			lockstep = !strcmp(t, "lockstep");
		} else if (!strcmp(argv[k], "--dump") && k + 1 < argc) {
			dump = argv[++k];
		} else if (!strcmp(argv[k], "--sv39")) {
			sv39 = true;
		} else if (!strcmp(argv[k], "--forward-only")) {
			forward_only = true;
		} else {
			return usage();
		}
	}
	if (!have_seed || !count || threshold > UINT32_MAX)
		return usage();
	if (!engine_jit_available()) {
		fprintf(stderr, "skiff-lockrand: no JIT on this host\n");
		return 2;
	}
	struct gram ram, ref_ram;
	if (gram_init(&ram, RAM_BASE, RAM_SIZE) || (!lockstep && gram_init(&ref_ram, RAM_BASE, RAM_SIZE))) {
		perror("gram_init");
		return 2;
	}
	struct hart_config cfg = { .engine = ENGINE_JIT, .jit_threshold = (uint32_t)threshold,
				   .jit_lockstep = lockstep };
	struct hart_config ref_cfg = { .engine = ENGINE_INTERP };
	struct hart *h = hart_create(&ram, &cfg), *ref = lockstep ? NULL : hart_create(&ref_ram, &ref_cfg);
	if (!h || (!lockstep && !ref)) {
		fprintf(stderr, "skiff-lockrand: hart_create failed\n");
		return 2;
	}
	gram_write(&ram, HANDLER, handler, sizeof(handler));
	if (ref)
		gram_write(&ref_ram, HANDLER, handler, sizeof(handler));
	if (sv39) {
		map_sv39(&ram);
		if (ref)
			map_sv39(&ref_ram);
	}
	struct rng r = { seed };
	static uint8_t page[PAGE];
	uint32_t prologue[32];
	uint64_t generated = 0, retired = 0, ref_retired = 0, rounds = 0, cut = 0;
	int rc = 0;
	struct watchdog wd = { .h = h };
	pthread_t wt;
	if (pthread_create(&wt, NULL, watchdog_thread, &wd)) {
		fprintf(stderr, "skiff-lockrand: no watchdog thread\n");
		return 2;
	}
	struct poker pk = { .h = h };
	pthread_t pt;
	if (ref && pthread_create(&pt, NULL, poker_thread, &pk)) {
		fprintf(stderr, "skiff-lockrand: no poker thread\n");
		return 2;
	}
	while (generated < count) {
		unsigned n = forward_only ? make_page(&r, page) : make_page_loops(&r, page);
		make_prologue(&r, prologue);
		gram_write(&ram, CODE - sizeof(prologue), prologue, sizeof(prologue));
		gram_write(&ram, CODE, page, PAGE);
		if (ref) {
			gram_write(&ref_ram, CODE - sizeof(prologue), prologue, sizeof(prologue));
			gram_write(&ref_ram, CODE, page, PAGE);
		}
		for (int pass = 0; pass < 2 && !rc; pass++) {
			struct rng ref_r = r;
			start_pass(&r, h);
			wd.h = h;
			wd.pass++;
			enum pass_end end = run_page(h, &retired);
			if (ref && end != PASS_DIFFERENT) {
				start_pass(&ref_r, ref);
				wd.h = ref;
				wd.pass++;
				enum pass_end ref_end = run_page(ref, &ref_retired);
				if (end == PASS_DONE && ref_end == PASS_CUT) {
					/* The executor is the slower: no verdict. */
					end = PASS_CUT;
				} else if (ref_end != end) {
					fprintf(stderr, "skiff-lockrand: the %s run %s, the executor's %s\n",
						"JIT's", end == PASS_DONE ? "ended" : "was cut short",
						ref_end == PASS_DONE ? "ended" : "was cut short");
					end = PASS_DIFFERENT;
				} else if (end == PASS_DONE && !same_end(h, &ram, ref, &ref_ram)) {
					end = PASS_DIFFERENT;
				}
			}
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
	if (rc && dump) {
		/* The page that differed, for objdump -b binary -m riscv:rv64
		 * --adjust-vma=0x80010000 (its counter register is printed). */
		FILE *f = fopen(dump, "wb");
		if (!f || fwrite(page, 1, PAGE, f) != PAGE || fclose(f))
			perror(dump);
		else
			fprintf(stderr, "skiff-lockrand: the page is in %s (loop counter x%u)\n", dump, counter);
	}
	wd.stop = true;
	pthread_join(wt, NULL);
	if (ref) {
		pk.stop = true;
		pthread_join(pt, NULL);
		printf("skiff-lockrand: %" PRIu64 " pokes, %" PRIu64 " FENCE.I or SFENCE.VMA from outside\n",
		       pk.pokes, pk.fences);
	}
	printf("skiff-lockrand: seed %" PRIu64 " (%s, %s%s, threshold %" PRIu64 "): %" PRIu64 " pages, %" PRIu64
	       " random instructions, %" PRIu64 " retired (%" PRIu64
	       " passes cut short: self-modified into a loop or a trap storm), %s\n",
	       seed, forward_only ? "forward only" : "loops", lockstep ? "lockstep" : "jit against the executor",
	       sv39 ? ", sv39" : "",
	       threshold, rounds, generated, retired, cut, rc ? "a difference" : "no difference");
	hart_destroy(h);
	gram_destroy(&ram);
	if (ref) {
		hart_destroy(ref);
		gram_destroy(&ref_ram);
	}
	return rc;
}

/*
 * The translator's state for one block and the accessors other emitters
 * use (translate_fp.c): guest integer registers are read and written only
 * through tr_src/tr_load/tr_set_rd, memory accesses go through tr_va and
 * tr_probe, and out-of-line paths are registered as struct slow entries that
 * translate.c emits after the block's exits. Whatever translate.c does with
 * guest registers (which live in host registers, what is saved around calls
 * into C) stays behind these.
 */
#ifndef SKIFF_ENGINE_JIT_TRANSLATE_H
#define SKIFF_ENGINE_JIT_TRANSLATE_H

#include "engine/jit/probes.h"
#include "engine/jit/regs.h"
#include "engine/jit/runtime.h"
#include "engine/jit/widths.h"
#include "engine/jit/x86.h"

enum opnd_kind { O_REG, O_MEM, O_IMM };
struct opnd {
	enum opnd_kind kind;
	enum x86_reg reg;
	int32_t off;   /* O_MEM: displacement from rbp */
	int64_t imm;   /* O_IMM */
};

/* An out-of-line path: of a load or store (the memory slow path), a bail
 * (bail_only), or a call of jit_insn_helper for `insn` (helper). */
struct slow {
	uint8_t *jcc;    /* the fast path's jump here */
	uint8_t *more[6]; /* further jumps here (NULL when unused) */
	uint8_t *resume; /* where to go on after the slow path */
	/* A load's or store's probe done out of line (a probe group's member,
	 * probes.h): the path computes the address of `insn`, probes the TLB
	 * and on a hit goes to `access` (the fast path's load or store),
	 * else calls the slow path; first it marks group `slot` invalid
	 * (>= 0: a leader whose range probe missed). */
	bool outline;
	/* The access adds rdx (the TLB entry's addend) to rax (emit_probe's
	 * fold); the slow path zeroes rdx before it goes back to a load. */
	bool plus_rdx;
	/* The access's displacement: a follower that goes on from its group's
	 * last member (struct tr's run_group) has rax = that member's address
	 * and the access adds disp; its out-of-line paths come back with rax
	 * less disp. */
	int32_t disp;
	int8_t slot;
	uint8_t *access;
	unsigned idx;    /* instruction index (for a bail) */
	unsigned size;
	bool store;
	bool bail_only;    /* no slow path: leave for the executor */
	struct opnd value; /* stores: the value */
	/* helper: rcx and rdx hold the helper's a and b (x[rs1], x[rs2]) when
	 * the fast path jumps here; the result (writes_x) comes back in rax. */
	bool helper, writes_x;
	/* helper: a is in rax instead (CBO.ZERO's block address). */
	bool a_in_rax;
	const struct insn *insn;
	uint64_t widen;    /* narrow registers to sign-extend first (widths.h) */
	/* A zero extension done early (struct tr's zx_reg): a bail shifts
	 * zx_reg left by zx_sh first, to the value its SLLI gave it. */
	unsigned zx_reg, zx_sh;
};

struct tr {
	struct x86_buf b;
	struct hart *h;
	struct jit *j;
	struct block *blk;
	unsigned set;
	unsigned page_off;  /* the block's offset in its page */
	/* At most two per instruction, and one per register a loop of one
	 * block checks at its entry (emit_entry_check). */
	struct slow slow[2 * ENGINE_BLOCK_MAX + 32];
	unsigned nslow;
	/* FP state known for the rest of the block: sstatus.FS checked not
	 * Off (only a CSR write, which ends a block, changes it), and FS set
	 * to Dirty already. */
	bool fs_on, fs_dirty;
	/* f registers known to hold a NaN-boxed single from here on: written
	 * earlier in this block by an instruction with a single result (on
	 * every path, inline or not, that goes on in this block). */
	uint32_t f_boxed;
	/* Integer registers whose upper half is not exact yet (widths.h). */
	struct widths widths;
	uint64_t narrow;
	/* Which loads and stores share a probe (probes.h). */
	struct probe_plan probes;
	bool may_narrow;    /* this instruction's W result may stay narrow */
	bool left_narrow;   /* ... and it did */
	/* The guest register rax holds at the start of this instruction (the
	 * last one stored it from there), and the one it holds after it; 0:
	 * none. */
	unsigned rax_reg, rax_next;
	/* This instruction's result was computed in rax (set_rd saw it). */
	bool rax_written;
	/* The probe group whose member ran just before this instruction and
	 * left, on the fast path, rdx = the group's addend and rax = its base
	 * register + run_disp (a guest address); -1: none. run_next: the same
	 * after this instruction. */
	int run_group, run_next;
	int32_t run_disp, run_disp_next;
	/* An SLLI rd, rs, 32|48|56 whose SRLI rd, rd, by the same comes a
	 * few instructions later (GCC puts a load or two between): rd got
	 * the zero extension at the SLLI, and the SRLI at index zx_until
	 * emits nothing; until then a bail must shift it back. 0: none. */
	unsigned zx_until, zx_reg, zx_sh;
	/* The register map (translate.c lend_plan): map[0][r] is guest
	 * register r's host register under the fixed map (regs.h), -1 in
	 * memory; map[1] the same inside a loop of one block that lends the
	 * host registers of fixed-mapped registers it never names to
	 * registers it uses that live in memory. `lent`: the code being
	 * emitted runs under map[1]. The nlent pairs: lend[k] the guest
	 * register borrowing the host register of owner[k]. Out-of-line
	 * paths from index lend_slow on run under map[1] too. */
	signed char map[2][33];
	bool lent;
	unsigned nlent, lend_slow;
	unsigned char lend[JIT_MAPPED_X], owner[JIT_MAPPED_X];
};

/* Guest integer register r as an operand (x0 is the immediate 0). */
struct opnd tr_src(const struct tr *t, unsigned r);
/* dst = o, 64 bits. */
void tr_load(struct tr *t, enum x86_reg dst, struct opnd o);
/* x[rd] = v (nothing for x0 / REG_SINK). */
void tr_set_rd(struct tr *t, unsigned rd, enum x86_reg v);
/* rax = x[rs1] + imm (a load's or store's virtual address). */
void tr_va(struct tr *t, const struct insn *i);
/* The inline TLB probe for an access of `size` at rax (as for an integer
 * load or store; `value` a store's value): on a hit rax becomes the host
 * address. The caller emits the access and then sets the returned entry's
 * resume to the code after it. */
struct slow *tr_probe(struct tr *t, unsigned size, bool store, unsigned idx, struct opnd value);
/* A new out-of-line path for instruction idx: a bail to the executor, or a
 * call of jit_insn_helper (set ->jcc, ->resume, ->writes_x). */
struct slow *tr_slow_bail(struct tr *t, unsigned idx);
struct slow *tr_slow_helper(struct tr *t, const struct insn *i, unsigned idx);

/* translate_fp.c: translate F/D instruction i inline; false when it does
 * not (translate.c then calls into fpu.c or the helper as before). */
bool tr_fp(struct tr *t, const struct insn *i, unsigned idx);

#endif

/*
 * Translation of one decoded block (struct block) to x86-64 code.
 *
 * Covered: RV64I integer and control transfer, M, Zba, Zbb, Zbs, loads and
 * stores of every integer width, FENCE, and through calls into C the A, F
 * and D extensions and Zicsr. Everything else (the system instructions
 * ECALL, EBREAK, SRET, WFI, SFENCE.VMA, FENCE.I, and PAUSE) ends the
 * translated part: the code leaves with JIT_EXIT_BAIL before that
 * instruction and the executor runs on from it, so the same decoded block
 * serves both tiers.
 *
 * Layout of a translation: the instructions in order, then the block's
 * exits, then the out-of-line slow paths of its loads and stores. JIT_PC
 * holds the current block's start while translated code runs (it is updated
 * at every block transition; regs.h), so code is position independent in
 * the guest address space: a physical page mapped at two addresses shares
 * its translations. Guest semantics follow exec.c line by line; the comments
 * say where x86 differs and how that is handled.
 */
#include "engine/jit/runtime.h"

#include <string.h>

#include "engine/fpu.h"

#include "engine/jit/regs.h"
#include "engine/jit/translate.h"

/* Worst case bytes of one translation: 64 instructions of at most ~60
 * bytes, their slow paths, the exits. Checked against the cache before
 * translating. */
#define MAX_TRANSLATION (24u << 10)

/* ---- operands ------------------------------------------------------------ */

/* Host register of guest register r in the code being emitted (the lent
 * map inside a loop that borrows registers: struct tr's map), or -1 when r
 * lives in memory. */
static int host_of(const struct tr *t, unsigned r)
{
	return r < 33 ? t->map[t->lent][r] : -1;
}

static struct opnd src(const struct tr *t, unsigned r)
{
	if (r == 0)
		return (struct opnd){ .kind = O_IMM, .imm = 0 };
	int hr = host_of(t, r);
	if (hr >= 0)
		return (struct opnd){ .kind = O_REG, .reg = (enum x86_reg)hr };
	return (struct opnd){ .kind = O_MEM, .off = XOFF(r) };
}

static bool is_reg(struct opnd o, enum x86_reg r) { return o.kind == O_REG && o.reg == r; }

/* dst = o (64-bit). */
static void load_op(struct tr *t, enum x86_reg dst, struct opnd o)
{
	switch (o.kind) {
	case O_REG:
		if (o.reg != dst)
			x86_mov_rr(&t->b, dst, o.reg);
		break;
	case O_MEM: x86_mov_rm(&t->b, dst, hmem(o.off)); break;
	case O_IMM: x86_mov_ri(&t->b, dst, (uint64_t)o.imm); break;
	}
}

/* A register holding o: its own, or `scratch` loaded with it. */
static enum x86_reg reg_op(struct tr *t, struct opnd o, enum x86_reg scratch)
{
	if (o.kind == O_REG)
		return o.reg;
	load_op(t, scratch, o);
	return scratch;
}

/* dst op= o, 64 or 32 bits. Immediates here always fit 32 bits. */
static void alu_op(struct tr *t, enum x86_alu op, enum x86_reg dst, struct opnd o, bool w32)
{
	switch (o.kind) {
	case O_REG:
		if (w32) x86_alu_rr32(&t->b, op, dst, o.reg);
		else x86_alu_rr(&t->b, op, dst, o.reg);
		break;
	case O_MEM:
		if (w32) x86_alu_rm32(&t->b, op, dst, hmem(o.off));
		else x86_alu_rm(&t->b, op, dst, hmem(o.off));
		break;
	case O_IMM:
		if (w32) x86_alu_ri32(&t->b, op, dst, (int32_t)o.imm);
		else x86_alu_ri(&t->b, op, dst, (int32_t)o.imm);
		break;
	}
}

/* The host register to compute rd in: its own when mapped and not needed
 * as an input afterwards, else rax. */
static enum x86_reg dest(const struct tr *t, unsigned rd, struct opnd later_input)
{
	int hr = host_of(t, rd);
	if (hr < 0 || is_reg(later_input, (enum x86_reg)hr))
		return RAX;
	return (enum x86_reg)hr;
}

/* rd = v (v a host register). */
static void set_rd(struct tr *t, unsigned rd, enum x86_reg v)
{
	if (rd == 0 || rd == REG_SINK)
		return;
	if (v == RAX)
		t->rax_written = true;
	int hr = host_of(t, rd);
	if (hr < 0) {
		x86_mov_mr(&t->b, hmem(XOFF(rd)), v, 8);
		if (v == RAX)
			t->rax_next = rd;
	} else if (hr != (int)v) {
		x86_mov_rr(&t->b, (enum x86_reg)hr, v);
	}
}

/* Guest register r as an operand of an instruction that reads it before
 * anything it emits changes rax: rax when the instruction before computed
 * r there and stored it to its home (a register kept in memory: a loaded
 * value, a loop counter), so the reader does not wait for the reload of
 * that store (store forwarding: ~5 cycles on the chain). Every emitter
 * that takes an operand from here reads it before it writes rax, or moves
 * it out first. */
static struct opnd src_last(struct tr *t, unsigned r)
{
	if (r != 0 && r == t->rax_reg)
		return (struct opnd){ .kind = O_REG, .reg = RAX };
	return src(t, r);
}

/* The sign extension of a W result in d, unless the width plan lets it
 * stay narrow. */
static void sext_w(struct tr *t, enum x86_reg d)
{
	if (t->may_narrow) {
		t->left_narrow = true;
		return;
	}
	x86_movsxd_rr(&t->b, d, d);
}

/* Sign-extend the narrow registers in `mask` in place (scratch: rcx). */
static void widen(struct tr *t, uint64_t mask)
{
	for (unsigned r = 1; r < 32; r++) {
		if (!(mask & (1ull << r)))
			continue;
		int hr = host_of(t, r);
		if (hr >= 0) {
			x86_movsxd_rr(&t->b, (enum x86_reg)hr, (enum x86_reg)hr);
		} else {
			x86_load(&t->b, RCX, hmem(XOFF(r)), 4, true);
			x86_mov_mr(&t->b, hmem(XOFF(r)), RCX, 8);
		}
	}
}

/* Every register exact from here on (before anything that reads all of
 * them; the plan makes this a no-op, it is the safety net). */
static void widen_all(struct tr *t)
{
	widen(t, t->narrow);
	t->narrow = 0;
}

/* widen(mask) before the block's closing branch, which may read the
 * register rax holds from there (src_last): that one is widened in rax
 * and stored, so rax holds its exact value too. */
static void widen_at_end(struct tr *t, uint64_t mask)
{
	unsigned r = t->rax_reg;
	if (r && (mask & (1ull << r))) {
		x86_movsxd_rr(&t->b, RAX, RAX);
		x86_mov_mr(&t->b, hmem(XOFF(r)), RAX, 8);
		mask &= ~(1ull << r);
	}
	widen(t, mask);
}

/* ---- exits ----------------------------------------------------------------- */

static void jmp_to(struct tr *t, uint8_t *target)
{
	uint8_t *f = x86_jmp32(&t->b);
	if (f)
		x86_patch_rel32(f, target);
}

static void jcc_to(struct tr *t, enum x86_cc cc, uint8_t *target)
{
	uint8_t *f = x86_jcc32(&t->b, cc);
	if (f)
		x86_patch_rel32(f, target);
}

/* Leave for the executor at instruction `idx` of this block. */
static void emit_bail(struct tr *t, unsigned idx)
{
	x86_mov_ri(&t->b, RCX, (uint64_t)(uintptr_t)t->blk);
	x86_mov_ri(&t->b, RDX, idx);
	jmp_to(t, t->j->exit_bail);
}

/* ---- registers lent inside a loop ------------------------------------------ */

/* A loop of one block (is_loop) under the fixed map (regs.h) sends what
 * it keeps in memory round through memory: CoreMark's int16 matrix loop
 * keeps its sum and two pointers in t3-t6, each round a store and a
 * reload on the chain. A loop that never names some fixed-mapped
 * registers lends their host registers to the registers it uses most
 * that live in memory (lend_plan): at its entry the owners go home and
 * the borrowers come in (emit_lend); on every way out (the exit after the
 * loop, the deadline, a slow path's call into C, a bail) the borrowers go
 * home and the owners come back (emit_unlend), so whatever runs outside
 * the loop (links, the runtime's stubs, the executor, a trap) sees the
 * fixed map. The jump back stays inside. Only loops of instructions
 * translated inline with no call lend (not A, F, D, CSRs, fences,
 * CBO.ZERO): their only calls are their slow paths', which give the
 * registers back around the call. Per loop and not per block: a block
 * that is no loop would pay both swaps on every run. */
static bool lends_op(enum op op)
{
	return (op >= OP_LUI && op <= OP_SRAW) || (op >= OP_MUL && op <= OP_REMUW) ||
	       (op >= OP_SH1ADD && op <= OP_BSETI);
}

/* Plan map[1] for loop b: the fixed-mapped registers b never names, in
 * regs.h's order, lent to the registers in memory b names most often. */
static void lend_plan(struct tr *t, const struct block *b)
{
	unsigned uses[33] = { 0 };
	for (unsigned k = 0; k < b->n; k++) {
		const struct insn *i = &b->insn[k];
		if (!lends_op((enum op)i->op))
			return;
		uses[i->rd]++;
		uses[i->rs1]++;
		uses[i->rs2]++;
	}
	uses[0] = 0;
	for (unsigned k = 0; k < JIT_MAPPED_X; k++) {
		unsigned owner = jit_mapped_guest(k), best = 0;
		if (uses[owner])
			continue;
		for (unsigned r = 1; r < 32; r++)
			if (t->map[1][r] < 0 && uses[r] > uses[best])
				best = r;
		if (!best)
			return;
		t->map[1][best] = t->map[1][owner];
		t->map[1][owner] = -1;
		t->lend[t->nlent] = (unsigned char)best;
		t->owner[t->nlent++] = (unsigned char)owner;
	}
}

/* Owners home, borrowers in (also after a slow path's call, where the
 * owners are home already: the store writes what is there). */
static void emit_lend(struct tr *t)
{
	for (unsigned k = 0; k < t->nlent; k++) {
		enum x86_reg hr = (enum x86_reg)t->map[0][t->owner[k]];
		x86_mov_mr(&t->b, hmem(XOFF(t->owner[k])), hr, 8);
		x86_mov_rm(&t->b, hr, hmem(XOFF(t->lend[k])));
	}
}

/* Borrowers home, owners back: the fixed map from here on. Leaves rax,
 * rcx, rdx and the flags alone. */
static void emit_unlend(struct tr *t)
{
	for (unsigned k = 0; k < t->nlent; k++) {
		enum x86_reg hr = (enum x86_reg)t->map[0][t->owner[k]];
		x86_mov_mr(&t->b, hmem(XOFF(t->lend[k])), hr, 8);
		x86_mov_rm(&t->b, hr, hmem(XOFF(t->owner[k])));
	}
}

/* The code emitted next leaves the lent map (a way out of the loop). */
static void leave_lent(struct tr *t)
{
	if (t->lent)
		emit_unlend(t);
}

/* Leave for the executor's look at the timer and `attention` once instret
 * reached h->jit_deadline (which hart_poke zeroes): a compare with memory
 * the hart only reads, where a countdown of blocks in the hart was a
 * read-modify-write per transition. */
static void emit_deadline(struct tr *t)
{
	x86_alu_rm(&t->b, ALU_CMP, JIT_INSTRET, hmem(HOFF(jit_deadline)));
	jcc_to(t, CC_AE, t->j->exit_deadline);
}

/* Go to guest pc rax (instret already counted): pc = rax; leave if the
 * deadline passed; jump to the target's translation when the jump cache
 * has it under the current salt, else to jc_miss (which revalidates an
 * entry of an older salt, or leaves for the executor). Probed here rather than in a routine
 * every exit shares so that each exit has an indirect jump of its own: the
 * host predicts each site's usual target, where one shared jump for every
 * cross-page jump and return was a prediction miss whenever two sites
 * alternated. */
static void emit_jc_jump(struct tr *t)
{
	x86_mov_rr(&t->b, JIT_PC, RAX);
	emit_deadline(t);
	/* Index (va >> 1) % JC_SIZE, 16-byte entries {va, code}. */
	x86_mov_rr32(&t->b, RCX, RAX);
	x86_shift_ri(&t->b, SH_SHL, RCX, 3, true);
	x86_alu_ri32(&t->b, ALU_AND, RCX, (JC_SIZE - 1) << 4);
	int32_t jc = HOFF(jc) + (int32_t)(t->set * JC_SIZE * sizeof(struct jc_entry));
	x86_alu_rm(&t->b, ALU_XOR, RAX, hmem(HOFF(jc_salt)));
	x86_alu_rm(&t->b, ALU_CMP, RAX, x86_mem_idx(RBP, RCX, 1, jc));
	jcc_to(t, CC_NE, t->j->jc_miss);
	x86_jmp_m(&t->b, x86_mem_idx(RBP, RCX, 1, jc + 8));
}

/* Go to the block at (block start + delta), `retired` instructions done. */
static void emit_goto(struct tr *t, int64_t delta, unsigned retired)
{
	x86_alu_ri(&t->b, ALU_ADD, JIT_INSTRET, (int32_t)retired);
	int64_t at = (int64_t)t->page_off + delta;
	if (at >= 0 && at < (int64_t)GRAM_PAGE_SIZE) {
		/* Same page: the same mapping, so a direct jump, patched once
		 * the target is translated (through exit_link until then). */
		if (delta)
			x86_alu_ri(&t->b, ALU_ADD, JIT_PC, (int32_t)delta);
		/* Only a jump back (to this block's start or before it)
		 * looks at the deadline: a run of forward jumps within one
		 * page ends within the page's at most 2048 blocks, and every
		 * loop of linked blocks has a jump back in it, so the deadline
		 * still bounds the time between two looks at `attention` and
		 * the timer. */
		if (delta <= 0)
			emit_deadline(t);
		uint8_t *field = x86_jmp32(&t->b);
		if (!field)
			return;
		x86_patch_rel32(field, t->b.p);
		x86_mov_ri(&t->b, RCX, (uint64_t)(uintptr_t)field);
		x86_mov_ri(&t->b, RDX, t->blk->pa + (uint64_t)delta);
		x86_mov_mi(&t->b, hmem(HOFF(jit_link_set)), (int32_t)t->set, 4);
		jmp_to(t, t->j->exit_link);
	} else {
		x86_lea(&t->b, RAX, x86_mem(JIT_PC, (int32_t)delta));
		emit_jc_jump(t);
	}
}

/* ---- instruction groups ------------------------------------------------------ */

/* rd = o: a register copy or a constant (C.MV is ADD rd, x0, rs and C.LI
 * ADDI rd, x0, imm). One move, which the host can do at rename, where
 * computing it as `xor d, d; add d, rs` put two instructions on the chain
 * of whatever reads rd next. */
static void emit_copy(struct tr *t, unsigned rd, struct opnd o)
{
	if (rd == 0 || rd == REG_SINK)
		return;
	int hr = host_of(t, rd);
	if (hr >= 0) {
		load_op(t, (enum x86_reg)hr, o);
	} else if (o.kind == O_REG) {
		x86_mov_mr(&t->b, hmem(XOFF(rd)), o.reg, 8);
		if (o.reg == RAX)
			t->rax_next = rd;
	} else if (o.kind == O_IMM && o.imm == (int32_t)o.imm) {
		x86_mov_mi(&t->b, hmem(XOFF(rd)), (int32_t)o.imm, 8);
	} else {
		load_op(t, RAX, o);
		set_rd(t, rd, RAX);
	}
}

static bool is_zero(struct opnd o) { return o.kind == O_IMM && o.imm == 0; }

/* rd op= c in place when rd lives in memory (one read-modify-write). */
static bool alu_in_memory(struct tr *t, unsigned rd, enum x86_alu op, struct opnd c)
{
	if (host_of(t, rd) >= 0)
		return false;
	if (c.kind == O_REG)
		x86_alu_mr(&t->b, op, hmem(XOFF(rd)), c.reg);
	else if (c.kind == O_IMM)
		x86_alu_mi(&t->b, op, hmem(XOFF(rd)), (int32_t)c.imm, 8);
	else
		return false;
	return true;
}

static void emit_alu3(struct tr *t, const struct insn *i, enum x86_alu op, bool commutative, bool w32)
{
	if (i->rd == REG_SINK)
		return;
	/* Either operand is rax when the instruction before left it there
	 * (src_last). */
	struct opnd a = src_last(t, i->rs1), c = src_last(t, i->rs2);
	/* x0 as an operand of ADD, OR, XOR, or as SUB's subtrahend: a copy. */
	if (!w32 && op != ALU_AND && is_zero(c)) {
		emit_copy(t, i->rd, a);
		return;
	}
	if (!w32 && op != ALU_AND && op != ALU_SUB && is_zero(a)) {
		emit_copy(t, i->rd, c);
		return;
	}
	if (commutative && is_reg(c, (enum x86_reg)host_of(t, i->rd)) && !w32) {
		struct opnd tmp = a; a = c; c = tmp;
	}
	if (!w32 && i->rs1 == i->rd && alu_in_memory(t, i->rd, op, c))
		return;
	enum x86_reg d = dest(t, i->rd, c);
	if (d == RAX && is_reg(c, RAX) && !is_reg(a, RAX)) {
		/* rax is both the result and the second operand: the first
		 * goes into rax before the operation reads the second. */
		if (commutative) {
			struct opnd tmp = a; a = c; c = tmp;
		} else {
			x86_mov_rr(&t->b, RCX, RAX);
			c = (struct opnd){ .kind = O_REG, .reg = RCX };
		}
	}
	/* A sum into a third register: one lea (32-bit for ADDW, which
	 * zero-extends like the 32-bit add) where it was a move and an add. */
	if (op == ALU_ADD && a.kind == O_REG && c.kind == O_REG && d != a.reg && d != c.reg) {
		struct x86_mem m = x86_mem_idx(a.reg, c.reg, 1, 0);
		if (w32) {
			x86_lea32(&t->b, d, m);
			sext_w(t, d);
		} else {
			x86_lea(&t->b, d, m);
		}
		set_rd(t, i->rd, d);
		return;
	}
	if (w32) {
		/* A 32-bit operation ignores (and clears) the upper half, so
		 * a register already in place needs no move: `mov r32, r32`
		 * of one register is a real instruction on the chain. */
		if (a.kind == O_REG) {
			if (a.reg != d)
				x86_mov_rr32(&t->b, d, a.reg);
		} else {
			load_op(t, d, a);
		}
	} else {
		load_op(t, d, a);
	}
	alu_op(t, op, d, c, w32);
	if (w32)
		sext_w(t, d);
	set_rd(t, i->rd, d);
}

static void emit_alui(struct tr *t, const struct insn *i, enum x86_alu op, bool w32)
{
	if (i->rd == REG_SINK)
		return;
	if (i->rs1 == 0) {
		/* A constant (ADDIW's 12-bit immediate is its own sign
		 * extension). */
		emit_copy(t, i->rd, (struct opnd){ .kind = O_IMM, .imm = op == ALU_AND ? 0 : i->imm });
		return;
	}
	struct opnd a = src_last(t, i->rs1);
	if (!w32 && op != ALU_AND && i->imm == 0) {
		emit_copy(t, i->rd, a);
		return;
	}
	if (!w32 && i->rs1 == i->rd &&
	    alu_in_memory(t, i->rd, op, (struct opnd){ .kind = O_IMM, .imm = i->imm }))
		return;
	enum x86_reg d = dest(t, i->rd, (struct opnd){ .kind = O_IMM });
	if (w32 && op == ALU_ADD && i->imm == 0 && !t->may_narrow) {
		/* SEXT.W: one sign-extending move, from the register or its
		 * home, where it was a move and a MOVSXD in place. */
		if (a.kind == O_REG)
			x86_movsxd_rr(&t->b, d, a.reg);
		else
			x86_load(&t->b, d, hmem(a.off), 4, true);
		set_rd(t, i->rd, d);
		return;
	}
	if (op == ALU_ADD && i->imm && a.kind == O_REG && a.reg != d) {
		/* Into another register: one lea where it was a move and an
		 * add. */
		if (w32) {
			x86_lea32(&t->b, d, x86_mem(a.reg, i->imm));
			sext_w(t, d);
		} else {
			x86_lea(&t->b, d, x86_mem(a.reg, i->imm));
		}
		set_rd(t, i->rd, d);
		return;
	}
	load_op(t, d, a);
	if (i->imm || op == ALU_AND)
		alu_op(t, op, d, (struct opnd){ .kind = O_IMM, .imm = i->imm }, w32);
	if (w32)
		sext_w(t, d);
	set_rd(t, i->rd, d);
}

static void emit_shifti(struct tr *t, const struct insn *i, enum x86_shift op, bool w32)
{
	if (i->rd == REG_SINK)
		return;
	enum x86_reg d = dest(t, i->rd, (struct opnd){ .kind = O_IMM });
	struct opnd a = src_last(t, i->rs1);
	unsigned sh = (unsigned)i->imm & (w32 ? 31 : 63);
	if (w32 && op == SH_SAR && !t->may_narrow && a.kind != O_IMM) {
		/* SRAIW: the 64-bit arithmetic shift of the sign-extended
		 * source is the sign extension of the 32-bit shift: movsxd
		 * and sar, where it was a move, the shift and a MOVSXD (LZMA's
		 * `0 - (code >> 31)` mask, a signed division by a power of
		 * two). */
		if (a.kind == O_REG)
			x86_movsxd_rr(&t->b, d, a.reg);
		else
			x86_load(&t->b, d, hmem(a.off), 4, true);
		if (sh)
			x86_shift_ri(&t->b, SH_SAR, d, sh, false);
		set_rd(t, i->rd, d);
		return;
	}
	load_op(t, d, a);
	if (sh)
		x86_shift_ri(&t->b, op, d, sh, w32);
	/* A 32-bit logical right shift by 1..31 leaves bit 31 clear and the
	 * upper half zero: already the sign extension. */
	if (w32 && !(op == SH_SHR && sh))
		sext_w(t, d);
	set_rd(t, i->rd, d);
}

/* Shifts and rotates by a register: x86 masks the count to 5 or 6 bits
 * exactly as RISC-V does. */
static void emit_shift(struct tr *t, const struct insn *i, enum x86_shift op, bool w32)
{
	if (i->rd == REG_SINK)
		return;
	struct opnd ao = src_last(t, i->rs1), co = src_last(t, i->rs2);
	if (t->j->bmi2 && op != SH_ROL && op != SH_ROR) {
		/* rs1 loaded into rax would overwrite rs2 when that is rax. */
		enum x86_reg a = reg_op(t, ao, is_reg(co, RAX) ? RDX : RAX);
		enum x86_reg c = reg_op(t, co, RCX);
		enum x86_reg d = host_of(t, i->rd) >= 0 ? (enum x86_reg)host_of(t, i->rd) : RAX;
		x86_shiftx(&t->b, op, d, a, c, w32);
		if (w32)
			sext_w(t, d);
		set_rd(t, i->rd, d);
		return;
	}
	load_op(t, RCX, co);
	load_op(t, RAX, ao);
	x86_shift_rcl(&t->b, op, RAX, w32);
	if (w32)
		sext_w(t, RAX);
	set_rd(t, i->rd, RAX);
}

/* cmp a, c with whatever operand kinds. A register kept in memory is
 * compared in place (`cmp [home], reg|imm`): one instruction where a load
 * into rcx and a compare were two. */
static void emit_cmp(struct tr *t, struct opnd a, struct opnd c)
{
	if (a.kind == O_MEM && c.kind == O_REG) {
		x86_alu_mr(&t->b, ALU_CMP, hmem(a.off), c.reg);
		return;
	}
	if (a.kind == O_MEM && c.kind == O_IMM && c.imm == (int32_t)c.imm) {
		x86_alu_mi(&t->b, ALU_CMP, hmem(a.off), (int32_t)c.imm, 8);
		return;
	}
	enum x86_reg ra = reg_op(t, a, RCX);
	if (c.kind == O_IMM && c.imm == 0)
		x86_test_rr(&t->b, ra, ra);
	else
		alu_op(t, ALU_CMP, ra, c, false);
}

static void emit_setcc(struct tr *t, const struct insn *i, enum x86_cc cc, struct opnd c)
{
	if (i->rd == REG_SINK)
		return;
	emit_cmp(t, src_last(t, i->rs1), c);
	x86_setcc(&t->b, cc, RAX);
	x86_movzx_rr(&t->b, RAX, RAX, 1);
	set_rd(t, i->rd, RAX);
}

static void emit_mul(struct tr *t, const struct insn *i, bool w32)
{
	if (i->rd == REG_SINK)
		return;
	struct opnd a = src_last(t, i->rs1), c = src_last(t, i->rs2);
	if (c.kind == O_IMM || a.kind == O_IMM) {
		set_rd(t, i->rd, (x86_mov_ri(&t->b, RAX, 0), RAX));
		return;
	}
	if (is_reg(c, (enum x86_reg)host_of(t, i->rd))) {
		struct opnd tmp = a; a = c; c = tmp;
	}
	enum x86_reg d = dest(t, i->rd, c);
	if (d == RAX && is_reg(c, RAX)) {
		/* rax would take the first operand before the multiply
		 * reads the second. */
		struct opnd tmp = a; a = c; c = tmp;
	}
	load_op(t, d, a);
	if (c.kind == O_REG) x86_imul_rr(&t->b, d, c.reg, w32);
	else x86_imul_rm(&t->b, d, hmem(c.off), w32);
	if (w32)
		sext_w(t, d);
	set_rd(t, i->rd, d);
}

/* High half of the 128-bit product: 0 signed x signed, 1 unsigned x
 * unsigned, 2 signed x unsigned (the unsigned product minus b when a < 0). */
static void emit_mulh(struct tr *t, const struct insn *i, int kind)
{
	if (i->rd == REG_SINK)
		return;
	struct opnd a = src(t, i->rs1), c = src(t, i->rs2);
	if (a.kind == O_IMM || c.kind == O_IMM) {
		x86_mov_ri(&t->b, RAX, 0);
		set_rd(t, i->rd, RAX);
		return;
	}
	enum x86_reg rc = reg_op(t, c, RCX);
	load_op(t, RAX, a);
	x86_f7(&t->b, kind == 0 ? 5 : 4, rc, false);
	if (kind == 2) {
		load_op(t, RAX, a);
		x86_shift_ri(&t->b, SH_SAR, RAX, 63, false);
		x86_alu_rr(&t->b, ALU_AND, RAX, rc);
		x86_alu_rr(&t->b, ALU_SUB, RDX, RAX);
	}
	set_rd(t, i->rd, RDX);
}

/* Division with RISC-V's results for x / 0 and INT_MIN / -1 (no trap);
 * x86 would raise #DE for both, so neither reaches idiv/div. */
static void emit_div(struct tr *t, const struct insn *i, bool is_signed, bool rem, bool w32)
{
	if (i->rd == REG_SINK)
		return;
	load_op(t, RCX, src_last(t, i->rs2));
	load_op(t, RAX, src_last(t, i->rs1));
	if (w32) {
		if (is_signed)
			x86_movsxd_rr(&t->b, RAX, RAX);
		else
			x86_mov_rr32(&t->b, RAX, RAX);
	}
	/* Divisor zero: quotient all ones, remainder the dividend. */
	if (w32) x86_alu_rr32(&t->b, ALU_XOR, RDX, RDX), x86_alu_rr32(&t->b, ALU_CMP, RCX, RDX);
	else x86_test_rr(&t->b, RCX, RCX);
	uint8_t *zero = x86_jcc32(&t->b, CC_E);
	uint8_t *minus1 = NULL;
	if (is_signed) {
		/* Divisor -1: quotient -x (wraps for INT_MIN, as RISC-V wants),
		 * remainder 0. */
		if (w32) x86_alu_ri32(&t->b, ALU_CMP, RCX, -1);
		else x86_alu_ri(&t->b, ALU_CMP, RCX, -1);
		minus1 = x86_jcc32(&t->b, CC_E);
	}
	if (is_signed) {
		if (w32) x86_cdq(&t->b); else x86_cqo(&t->b);
		x86_f7(&t->b, 7, RCX, w32);
	} else {
		x86_alu_rr32(&t->b, ALU_XOR, RDX, RDX);
		x86_f7(&t->b, 6, RCX, w32);
	}
	if (rem)
		x86_mov_rr(&t->b, RAX, RDX);
	uint8_t *done1 = x86_jmp32(&t->b);
	/* zero: */
	if (zero)
		x86_patch_rel32(zero, t->b.p);
	if (!rem)
		x86_mov_ri(&t->b, RAX, ~0ull);
	uint8_t *done2 = NULL;
	if (is_signed) {
		done2 = x86_jmp32(&t->b);
		if (minus1)
			x86_patch_rel32(minus1, t->b.p);
		if (rem)
			x86_mov_ri(&t->b, RAX, 0);
		else
			x86_f7(&t->b, 3, RAX, w32); /* neg */
	}
	if (done1)
		x86_patch_rel32(done1, t->b.p);
	if (done2)
		x86_patch_rel32(done2, t->b.p);
	if (w32)
		x86_movsxd_rr(&t->b, RAX, RAX);
	set_rd(t, i->rd, RAX);
}

/* rax = a + imm (a: rs1), the virtual address of a load or store. */
static void emit_va_of(struct tr *t, const struct insn *i, struct opnd a)
{
	if (a.kind == O_REG && i->imm == 0) {
		if (a.reg != RAX) /* a move the host renames away: no lea on the chain */
			x86_mov_rr(&t->b, RAX, a.reg);
	} else if (a.kind == O_REG) {
		x86_lea(&t->b, RAX, x86_mem(a.reg, i->imm));
	} else if (a.kind == O_IMM) {
		x86_mov_ri(&t->b, RAX, (uint64_t)(int64_t)i->imm);
	} else {
		x86_mov_rm(&t->b, RAX, hmem(a.off));
		if (i->imm)
			x86_alu_ri(&t->b, ALU_ADD, RAX, i->imm);
	}
}

/* The same from rs1's register or home: where rax no longer holds what it
 * held at the instruction's start (an out-of-line path). */
static void emit_va(struct tr *t, const struct insn *i)
{
	emit_va_of(t, i, src(t, i->rs1));
}

/* Displacement from rbp of the TLB's first way for loads or stores. */
static int32_t tlb_base(struct tr *t, bool store)
{
	return HOFF(tlb) + (int32_t)(t->set * sizeof(struct tlb_set)) +
	       (int32_t)(store ? offsetof(struct tlb_set, w) : offsetof(struct tlb_set, r));
}

/* The tag compare of the inline TLB probe (exec.c's LOAD/STORE) for the
 * `span` bytes at rax: index from rax, tag compared with the page of the
 * last byte, so a range that crosses into the next page misses. Leaves
 * rdx = index * 16; the caller emits the jne. */
static void emit_tag_cmp(struct tr *t, unsigned span, int32_t base)
{
	if (span > 1)
		x86_lea(&t->b, RCX, x86_mem(RAX, (int32_t)span - 1));
	else
		x86_mov_rr(&t->b, RCX, RAX);
	x86_shift_ri(&t->b, SH_SHR, RCX, 12, false);
	x86_mov_rr32(&t->b, RDX, RAX);
	x86_shift_ri(&t->b, SH_SHR, RDX, 8, true);
	x86_alu_ri32(&t->b, ALU_AND, RDX, (TLB_SIZE - 1) << 4);
	x86_alu_rm(&t->b, ALU_CMP, RCX, x86_mem_idx(RBP, RDX, 1, base));
}

static struct slow *new_slow(struct tr *t, unsigned idx, unsigned size, bool store, struct opnd value)
{
	struct slow *s = &t->slow[t->nslow++];
	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->size = size;
	s->store = store;
	s->value = value;
	s->widen = t->narrow;
	s->slot = -1;
	if (t->zx_until) {
		s->zx_reg = t->zx_reg;
		s->zx_sh = t->zx_sh;
	}
	return s;
}

/* A bail from a slow path made while a zero extension was early: rd back
 * to the SLLI's value (zext(rs) << sh is rs << sh). */
static void zx_undo(struct tr *t, const struct slow *s)
{
	if (!s->zx_sh)
		return;
	int hr = host_of(t, s->zx_reg);
	if (hr >= 0) {
		x86_shift_ri(&t->b, SH_SHL, (enum x86_reg)hr, s->zx_sh, false);
	} else {
		x86_mov_rm(&t->b, RCX, hmem(XOFF(s->zx_reg)));
		x86_shift_ri(&t->b, SH_SHL, RCX, s->zx_sh, false);
		x86_mov_mr(&t->b, hmem(XOFF(s->zx_reg)), RCX, 8);
	}
}

/* The inline TLB probe for an access of `size` at rax: on a hit rax
 * becomes the host address, or with `fold` rax stays the guest address
 * and rdx holds the entry's addend, so that the access itself adds them
 * ([rax + rdx]): one add less on the chain of a data-dependent load. The
 * slow path then comes back with rax the host address and rdx zero. */
static void emit_probe(struct tr *t, unsigned size, bool store, unsigned idx, struct opnd value, bool fold)
{
	int32_t base = tlb_base(t, store);
	struct slow *s = new_slow(t, idx, size, store, value);
	if (store && t->j->lockstep) {
		/* Every store through the slow path, which logs it. */
		s->jcc = x86_jmp32(&t->b);
		return;
	}
	emit_tag_cmp(t, size, base);
	s->jcc = x86_jcc32(&t->b, CC_NE);
	if (fold) {
		x86_mov_rm(&t->b, RDX, x86_mem_idx(RBP, RDX, 1, base + 8));
		s->plus_rdx = true;
	} else {
		x86_alu_rm(&t->b, ALU_ADD, RAX, x86_mem_idx(RBP, RDX, 1, base + 8));
	}
}

/* A straddling instruction's block (block_straddles) runs only while the
 * upper half at JIT_PC + 2, fetched through the current mapping, is the
 * one it was decoded with: a write to that page or a new mapping of it
 * changes nothing this block was keyed or linked by. The fetch TLB of the
 * translation's set has the mapping; a miss, or other bits, leave for the
 * executor's lookup, which fetches through a walk (and faults, or builds
 * the block again). */
static void emit_straddle_check(struct tr *t)
{
	int32_t base = HOFF(tlb) + (int32_t)(t->set * sizeof(struct tlb_set)) +
		       (int32_t)offsetof(struct tlb_set, x);
	x86_lea(&t->b, RAX, x86_mem(JIT_PC, 2));
	emit_tag_cmp(t, 1, base);
	jcc_to(t, CC_NE, t->j->exit_lookup);
	x86_alu_rm(&t->b, ALU_ADD, RAX, x86_mem_idx(RBP, RDX, 1, base + 8));
	x86_load(&t->b, RCX, x86_mem(RAX, 0), 2, false);
	x86_alu_ri32(&t->b, ALU_CMP, RCX, t->blk->hi);
	jcc_to(t, CC_NE, t->j->exit_lookup);
}

/* The host address of an access whose probe is `s`. */
static struct x86_mem access_mem(const struct slow *s)
{
	return s->plus_rdx ? x86_mem_idx(RAX, RDX, 1, s->disp) : x86_mem(RAX, 0);
}

static int32_t slot_off(unsigned g) { return HOFF(jit_addend) + 8 * (int32_t)g; }

/* rax = x[i->rs1] + disp. */
static void emit_base_plus(struct tr *t, const struct insn *i, int32_t disp)
{
	struct opnd a = src_last(t, i->rs1);
	if (a.kind == O_REG && disp == 0) {
		if (a.reg != RAX)
			x86_mov_rr(&t->b, RAX, a.reg);
		return;
	}
	if (a.kind == O_REG) {
		x86_lea(&t->b, RAX, x86_mem(a.reg, disp));
		return;
	}
	x86_mov_rm(&t->b, RAX, hmem(a.off));
	if (disp)
		x86_alu_ri(&t->b, ALU_ADD, RAX, disp);
}

/* A probe group's leader (probes.h): probe the group's whole range of
 * offsets off the base register; on a hit keep the addend for the
 * followers and make rax the leader's host address. A miss goes out of
 * line: the group is marked invalid, the leader probes alone. */
static struct slow *emit_leader(struct tr *t, const struct insn *i, unsigned idx, unsigned size, bool store,
				struct opnd value, unsigned g)
{
	int32_t lo = t->probes.lo[g], hi = t->probes.hi[g];
	int32_t base = tlb_base(t, store);
	emit_base_plus(t, i, lo);
	emit_tag_cmp(t, (unsigned)(hi - lo), base);
	struct slow *s = new_slow(t, idx, size, store, value);
	s->outline = true;
	s->slot = (int8_t)g;
	s->insn = i;
	s->jcc = x86_jcc32(&t->b, CC_NE);
	x86_mov_rm(&t->b, RDX, x86_mem_idx(RBP, RDX, 1, base + 8));
	x86_mov_mr(&t->b, hmem(slot_off(g)), RDX, 8);
	/* rax is the leader's own address when its offset is the group's
	 * lowest: the access adds the addend (emit_probe's fold). */
	if (i->imm == lo) {
		s->plus_rdx = true;
		t->run_next = (int)g;
		t->run_disp_next = i->imm;
	} else {
		x86_lea(&t->b, RAX, x86_mem_idx(RAX, RDX, 1, i->imm - lo));
	}
	return s;
}

/* A follower: the leader's addend if its range probe hit, else a probe of
 * its own out of line. The address does not wait for the addend: the
 * access adds them. Right after another member of its group (a run of
 * saves off sp, a structure's fields, memset's unrolled stores) the fast
 * path finds the addend still in rdx and that member's address in rax:
 * only the check of the slot and the access, with the offset between the
 * two in the access. That holds whenever the check passes: the member
 * before took its fast path (only the leader makes the slot valid, and a
 * member takes its slow path only when the slot is not). */
static struct slow *emit_follower(struct tr *t, const struct insn *i, unsigned idx, unsigned size, bool store,
				  struct opnd value, unsigned g)
{
	struct slow *s = new_slow(t, idx, size, store, value);
	s->outline = true;
	s->insn = i;
	s->plus_rdx = true;
	x86_test_mi8(&t->b, hmem(slot_off(g)), 1);
	s->jcc = x86_jcc32(&t->b, CC_NE);
	if (t->run_group == (int)g) {
		s->disp = i->imm - t->run_disp;
		t->run_disp_next = t->run_disp;
	} else {
		x86_mov_rm(&t->b, RDX, hmem(slot_off(g)));
		emit_base_plus(t, i, i->imm);
		t->run_disp_next = i->imm;
	}
	t->run_next = (int)g;
	return s;
}

/* rax = the host address of load or store i (or the slow path taken). */
static struct slow *emit_address(struct tr *t, const struct insn *i, unsigned idx, unsigned size, bool store,
				 struct opnd value)
{
	int g = t->probes.group[idx];
	if (g >= 0 && !(store && t->j->lockstep))
		return t->probes.leader[idx] ? emit_leader(t, i, idx, size, store, value, (unsigned)g)
					     : emit_follower(t, i, idx, size, store, value, (unsigned)g);
	emit_va_of(t, i, src_last(t, i->rs1));
	emit_probe(t, size, store, idx, value, true);
	return &t->slow[t->nslow - 1];
}

static void emit_load(struct tr *t, const struct insn *i, unsigned idx, unsigned size, bool sign)
{
	struct slow *s = emit_address(t, i, idx, size, false, (struct opnd){ 0 });
	s->resume = s->access = t->b.p;
	/* A load to x0 still accesses memory (it may fault). */
	enum x86_reg d = i->rd == REG_SINK || host_of(t, i->rd) < 0 ? RAX : (enum x86_reg)host_of(t, i->rd);
	x86_load(&t->b, d, access_mem(s), size, sign);
	if (d == RAX)
		t->run_next = -1; /* the member's address is gone */
	set_rd(t, i->rd, d);
}

static void emit_store(struct tr *t, const struct insn *i, unsigned idx, unsigned size)
{
	struct opnd v = src(t, i->rs2);
	struct slow *s = emit_address(t, i, idx, size, true, v);
	s->access = t->b.p;
	if (!(t->j->lockstep)) {
		enum x86_reg r = reg_op(t, v, RCX);
		x86_mov_mr(&t->b, access_mem(s), r, size);
	}
	s->resume = t->b.p;
}

static void call_to(struct tr *t, uint8_t *target)
{
	uint8_t *f = x86_call32(&t->b);
	if (f)
		x86_patch_rel32(f, target);
}

/* The out-of-line halves of the loads and stores: call the slow path; go
 * on if it managed, else leave for the executor at that instruction (which
 * then takes the fault, does the MMIO exit or the page-crossing access). */
static void emit_slow_paths(struct tr *t)
{
	for (unsigned k = 0; k < t->nslow; k++) {
		struct slow *s = &t->slow[k];
		/* Registered inside a loop that borrows registers: give them
		 * back before a call or bail, take them again after a call
		 * that lets the loop go on. */
		bool lent = t->nlent && k >= t->lend_slow;
		t->lent = lent;
		if (s->jcc)
			x86_patch_rel32(s->jcc, t->b.p);
		for (unsigned m = 0; m < sizeof(s->more) / sizeof(s->more[0]); m++)
			if (s->more[m])
				x86_patch_rel32(s->more[m], t->b.p);
		/* The executor may take over here: exact registers (a helper's
		 * path follows a barrier, where none is narrow). */
		if (!s->helper)
			widen(t, s->widen);
		if (s->bail_only) {
			leave_lent(t);
			emit_bail(t, s->idx);
			continue;
		}
		uint8_t *to_c = NULL;
		if (s->outline) {
			int32_t base = tlb_base(t, s->store);
			if (s->slot >= 0)
				x86_mov_mi(&t->b, hmem(slot_off((unsigned)s->slot)), 1, 8);
			emit_va(t, s->insn);
			emit_tag_cmp(t, s->size, base);
			to_c = x86_jcc32(&t->b, CC_NE);
			if (s->plus_rdx)
				x86_mov_rm(&t->b, RDX, x86_mem_idx(RBP, RDX, 1, base + 8));
			else
				x86_alu_rm(&t->b, ALU_ADD, RAX, x86_mem_idx(RBP, RDX, 1, base + 8));
			if (s->disp)
				x86_lea(&t->b, RAX, x86_mem(RAX, -s->disp));
			jmp_to(t, s->access);
			if (to_c)
				x86_patch_rel32(to_c, t->b.p);
		}
		if (s->helper) {
			if (s->a_in_rax)
				x86_mov_rr(&t->b, RCX, RAX);
			leave_lent(t);
			x86_mov_ri(&t->b, RAX, (uint64_t)(uintptr_t)s->insn);
			x86_mov_mr(&t->b, hmem(HOFF(jit_insn)), RAX, 8);
			call_to(t, t->j->thunk_helper);
			x86_test_rr(&t->b, RAX, RAX);
			uint8_t *bail = x86_jcc32(&t->b, CC_E);
			if (s->writes_x)
				x86_mov_rm(&t->b, RAX, hmem(HOFF(jit_ret)));
			if (lent)
				emit_lend(t);
			jmp_to(t, s->resume);
			if (bail)
				x86_patch_rel32(bail, t->b.p);
			emit_bail(t, s->idx);
			continue;
		}
		if (s->store) {
			load_op(t, RDX, s->value); /* from a borrowed register too */
			leave_lent(t);
			x86_mov_ri(&t->b, RCX, s->size);
			call_to(t, t->j->thunk_store);
		} else {
			leave_lent(t);
			x86_mov_ri(&t->b, RDX, s->size);
			call_to(t, t->j->thunk_load);
		}
		x86_test_rr(&t->b, RAX, RAX);
		uint8_t *bail = x86_jcc32(&t->b, CC_E);
		/* A load goes back to its access, which adds rdx and disp. */
		if (s->plus_rdx && !s->store) {
			x86_alu_rr32(&t->b, ALU_XOR, RDX, RDX);
			if (s->disp)
				x86_lea(&t->b, RAX, x86_mem(RAX, -s->disp));
		}
		if (lent)
			emit_lend(t);
		jmp_to(t, s->resume);
		if (bail)
			x86_patch_rel32(bail, t->b.p);
		t->lent = false; /* given back before the call */
		zx_undo(t, s);
		emit_bail(t, s->idx);
	}
	t->lent = false;
}

static bool keeps_rax(enum op op);

/* ---- bit manipulation ---------------------------------------------------- */

/* Count leading zeros (w32: of the low word). Without LZCNT: BSR, whose
 * destination is undefined for 0, so 0 is handled by CMOV. */
static void emit_clz(struct tr *t, const struct insn *i, bool w32)
{
	enum x86_reg a = reg_op(t, src(t, i->rs1), RCX);
	if (t->j->lzcnt) {
		x86_bitscan(&t->b, 0xbd, true, RAX, a, w32);
	} else {
		x86_mov_ri(&t->b, RDX, ~0ull);
		x86_bitscan(&t->b, 0xbd, false, RAX, a, w32);
		x86_cmov(&t->b, CC_E, RAX, RDX);
		x86_f7(&t->b, 3, RAX, false);
		x86_alu_ri(&t->b, ALU_ADD, RAX, w32 ? 31 : 63);
	}
	if (w32)
		x86_mov_rr32(&t->b, RAX, RAX);
	set_rd(t, i->rd, RAX);
}

static void emit_ctz(struct tr *t, const struct insn *i, bool w32)
{
	enum x86_reg a = reg_op(t, src(t, i->rs1), RCX);
	if (t->j->bmi1) {
		x86_bitscan(&t->b, 0xbc, true, RAX, a, w32);
	} else {
		x86_mov_ri(&t->b, RDX, w32 ? 32 : 64);
		x86_bitscan(&t->b, 0xbc, false, RAX, a, w32);
		x86_cmov(&t->b, CC_E, RAX, RDX);
	}
	if (w32)
		x86_mov_rr32(&t->b, RAX, RAX);
	set_rd(t, i->rd, RAX);
}

static void emit_minmax(struct tr *t, const struct insn *i, enum x86_cc take_c)
{
	enum x86_reg c = reg_op(t, src(t, i->rs2), RCX);
	load_op(t, RAX, src_last(t, i->rs1));
	x86_alu_rr(&t->b, ALU_CMP, RAX, c);
	x86_cmov(&t->b, take_c, RAX, c);
	set_rd(t, i->rd, RAX);
}

/* rax = rs1 with bit (rs2 & 63) cleared (ext 6), set (5), flipped (7). */
static void emit_bitop(struct tr *t, const struct insn *i, unsigned ext)
{
	load_op(t, RCX, src(t, i->rs2));
	load_op(t, RAX, src(t, i->rs1));
	x86_mov_ri(&t->b, RDX, 1);
	x86_shift_rcl(&t->b, SH_SHL, RDX, false);
	if (ext == 6) {
		x86_f7(&t->b, 2, RDX, false);
		x86_alu_rr(&t->b, ALU_AND, RAX, RDX);
	} else {
		x86_alu_rr(&t->b, ext == 5 ? ALU_OR : ALU_XOR, RAX, RDX);
	}
	set_rd(t, i->rd, RAX);
}

/* rd = (zext32?(rs1) << sh) + rs2 */
static void emit_shadd(struct tr *t, const struct insn *i, unsigned sh, bool uw)
{
	if (i->rd == REG_SINK)
		return;
	enum x86_reg c = reg_op(t, src(t, i->rs2), RCX);
	load_op(t, RAX, src(t, i->rs1));
	if (uw)
		x86_mov_rr32(&t->b, RAX, RAX);
	enum x86_reg d = host_of(t, i->rd) >= 0 ? (enum x86_reg)host_of(t, i->rd) : RAX;
	x86_lea(&t->b, d, x86_mem_idx(c, RAX, 1u << sh, 0));
	set_rd(t, i->rd, d);
}

/* SLLI rd, rs, 1..3 and then ADD rd, rd, rx (or rx, rd): rd = rx + (rs <<
 * sh) as one lea, array indexing as RV64GC code does it without Zba's
 * SHnADD (Debian's riscv64 baseline has no Zba): one instruction on the
 * address's chain where it was two or three. The ADD overwrites the
 * shifted value, so nothing else sees it. false: not such a pair. */
static bool emit_scaled_add(struct tr *t, const struct insn *i, const struct insn *n)
{
	unsigned sh = (unsigned)i->imm & 63;
	if (i->op != OP_SLLI || sh < 1 || sh > 3 || i->rd == 0 || i->rd == REG_SINK ||
	    n->op != OP_ADD || n->rd != i->rd)
		return false;
	unsigned rx = n->rs1 == i->rd ? n->rs2 : n->rs2 == i->rd ? n->rs1 : 0;
	if (rx == 0 || rx == i->rd)
		return false;
	enum x86_reg idx = reg_op(t, src_last(t, i->rs1), RCX);
	enum x86_reg base = reg_op(t, src_last(t, rx), idx == RAX ? RCX : RAX);
	int hr = host_of(t, i->rd);
	enum x86_reg d = hr >= 0 ? (enum x86_reg)hr : RAX;
	x86_lea(&t->b, d, x86_mem_idx(base, idx, 1u << sh, 0));
	set_rd(t, i->rd, d);
	return true;
}

/* SLLI rd, rs, 32|48|56 and then SRLI rd, rd, by the same: rd = rs
 * zero-extended from 32, 16 or 8 bits (ZEXT.W, ZEXT.H and a byte as RV64GC
 * code without Zba/Zbb spells them) as one move, where it was a move and
 * two shifts. false: not such a pair. */
static bool emit_zext_pair(struct tr *t, const struct insn *i, const struct insn *n)
{
	unsigned sh = (unsigned)i->imm & 63;
	if (i->op != OP_SLLI || (sh != 32 && sh != 48 && sh != 56) || i->rd == 0 || i->rd == REG_SINK ||
	    n->op != OP_SRLI || n->rd != i->rd || n->rs1 != i->rd || ((unsigned)n->imm & 63) != sh)
		return false;
	unsigned size = sh == 32 ? 4 : sh == 48 ? 2 : 1;
	struct opnd a = src_last(t, i->rs1);
	int hr = host_of(t, i->rd);
	enum x86_reg d = hr >= 0 ? (enum x86_reg)hr : RAX;
	if (a.kind == O_MEM)
		x86_load(&t->b, d, hmem(a.off), size, false);
	else if (a.kind == O_IMM)
		x86_mov_ri(&t->b, d, 0);
	else if (size == 4)
		x86_mov_rr32(&t->b, d, a.reg);
	else
		x86_movzx_rr(&t->b, d, a.reg, size);
	set_rd(t, i->rd, d);
	return true;
}

/* SLLI t, s, 32 and then SRLI d, t, k into another register d: d =
 * zext32(s) shifted left by 32 - k (or right by k - 32), computed from s,
 * so that it does not wait for t (which stays live and is computed as
 * usual): LZMA's `(UInt32)x * 2` probability index, `slli; srli 31`,
 * where the host then has `mov d32, s32` (renamed away) and one shift on
 * the address's chain instead of two. Whichever of t and d overwrites s
 * comes second, else the one computed in rax (kept in memory), so that
 * the other still finds s where it was; when both are kept in memory,
 * the usual two shifts in rax are as short. false: not such a pair. */
static bool emit_zext_scale(struct tr *t, const struct insn *i, const struct insn *n)
{
	unsigned tr = i->rd, s = i->rs1, d = n->rd, k = (unsigned)n->imm & 63;
	if (i->op != OP_SLLI || ((unsigned)i->imm & 63) != 32 || tr == 0 || tr == REG_SINK || s == 0 ||
	    n->op != OP_SRLI || n->rs1 != tr || d == tr || d == 0 || d == REG_SINK)
		return false;
	int hd = host_of(t, d), ht = host_of(t, tr);
	if (hd < 0 && ht < 0)
		return false;
	bool d_first = tr == s || (d != s && ht < 0);
	struct opnd a = src_last(t, s);
	for (int pass = 0; pass < 2; pass++) {
		bool do_d = (pass == 0) == d_first;
		int hr = do_d ? hd : ht;
		enum x86_reg r = hr >= 0 ? (enum x86_reg)hr : RAX;
		if (do_d) {
			if (a.kind == O_MEM)
				x86_load(&t->b, r, hmem(a.off), 4, false);
			else
				x86_mov_rr32(&t->b, r, a.reg);
			if (k < 32)
				x86_shift_ri(&t->b, SH_SHL, r, 32 - k, false);
			else if (k > 32)
				x86_shift_ri(&t->b, SH_SHR, r, k - 32, true);
		} else {
			load_op(t, r, a);
			x86_shift_ri(&t->b, SH_SHL, r, 32, false);
		}
		set_rd(t, do_d ? d : tr, r);
	}
	return true;
}

/* Instructions that may stand between an SLLI and its SRLI when the
 * zero extension is done early (struct tr's zx_until): translated inline,
 * whose only way out is a load's or store's slow path (which undoes it
 * before a bail: zx_undo). */
static bool zx_between(enum op op)
{
	return keeps_rax(op) || op == OP_AUIPC || (op >= OP_LB && op <= OP_LWU) || (op >= OP_SB && op <= OP_SD);
}

/* Index of the SRLI rd, rd, sh that ends SLLI rd, rs, sh (32, 48, 56) at
 * k two to four instructions later, none of those between touching rd;
 * 0 if there is none. */
static unsigned zx_partner(const struct block *b, unsigned k)
{
	const struct insn *i = &b->insn[k];
	unsigned sh = (unsigned)i->imm & 63;
	if (i->op != OP_SLLI || (sh != 32 && sh != 48 && sh != 56) || i->rd == 0 || i->rd == REG_SINK)
		return 0;
	for (unsigned m = k + 1; m < b->n && m <= k + 4; m++) {
		const struct insn *n = &b->insn[m];
		if (n->op == OP_SRLI && n->rd == i->rd && n->rs1 == i->rd && ((unsigned)n->imm & 63) == sh)
			return m > k + 1 ? m : 0;
		if (!zx_between((enum op)n->op) || n->rd == i->rd || n->rs1 == i->rd || n->rs2 == i->rd)
			return 0;
	}
	return 0;
}

/* An instruction run by jit_insn_helper (A, F, D). */
static void emit_helper(struct tr *t, const struct insn *i, unsigned idx, bool writes_x)
{
	load_op(t, RCX, src(t, i->rs1));
	load_op(t, RDX, src(t, i->rs2));
	x86_mov_ri(&t->b, RAX, (uint64_t)(uintptr_t)i);
	x86_mov_mr(&t->b, hmem(HOFF(jit_insn)), RAX, 8);
	call_to(t, t->j->thunk_helper);
	x86_test_rr(&t->b, RAX, RAX);
	struct slow *s = &t->slow[t->nslow++];
	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->bail_only = true;
	s->jcc = x86_jcc32(&t->b, CC_E);
	if (writes_x && i->rd != REG_SINK) {
		x86_mov_rm(&t->b, RAX, hmem(HOFF(jit_ret)));
		set_rd(t, i->rd, RAX);
	}
}

/* Zicboz CBO.ZERO: in a U-mode translation the gate first (senvcfg.CBZE,
 * which a CSR write changes without ending the translation's validity:
 * read each time); then the write TLB's probe of the block and its
 * stores of zeros, 16 bytes each. A miss (no write translation, a code
 * page, which never has one, RAM outside the TLB, a fault) calls
 * jit_insn_helper, which zeroes the block as the executor does or leaves
 * it to the executor (a fault). In lockstep every block goes through the
 * helper, whose stores are logged. */
static void emit_cbo_zero(struct tr *t, const struct insn *i, unsigned idx)
{
	widen_all(t);
	if (t->set == TLB_U) {
		x86_test_mi8(&t->b, hmem(HOFF(senvcfg)), (uint8_t)SENVCFG_CBZE);
		tr_slow_bail(t, idx)->jcc = x86_jcc32(&t->b, CC_E);
	}
	if (t->j->lockstep) {
		emit_helper(t, i, idx, false);
		return;
	}
	int32_t base = tlb_base(t, true);
	load_op(t, RAX, src_last(t, i->rs1));
	x86_alu_ri(&t->b, ALU_AND, RAX, -ENGINE_CBOZ_BLOCK);
	emit_tag_cmp(t, ENGINE_CBOZ_BLOCK, base);
	struct slow *s = tr_slow_helper(t, i, idx);
	s->a_in_rax = true;
	s->jcc = x86_jcc32(&t->b, CC_NE);
	x86_alu_rm(&t->b, ALU_ADD, RAX, x86_mem_idx(RBP, RDX, 1, base + 8));
	x86_sse_rr(&t->b, 0, false, 0x57, 0, 0); /* xorps xmm0, xmm0 */
	for (int32_t k = 0; k < ENGINE_CBOZ_BLOCK; k += 16)
		x86_sse_rm(&t->b, 0, false, 0x11, 0, x86_mem(RAX, k)); /* movups [rax + k], xmm0 */
	s->resume = t->b.p;
}

/* FP arithmetic as a direct call of its fpu.c function (one indirect
 * branch less than jit_insn_helper's switch, which mispredicts when the
 * operations alternate), with exec.c's FP_ON, FP_RM and FP_DIRTY inline.
 * false: not one of these, or a reserved static rounding mode. */
static bool emit_fp_call(struct tr *t, const struct insn *i, unsigned idx)
{
	const void *fn;
	int kind; /* 0: f(a, b, rm, fl); 1: f(a, rm, fl); 2: f(a, b, c, op, rm, fl) */
	int fma_op = 0;
	switch ((enum op)i->op) {
	case OP_FADD_S: fn = (const void *)fpu_add_s; kind = 0; break;
	case OP_FSUB_S: fn = (const void *)fpu_sub_s; kind = 0; break;
	case OP_FMUL_S: fn = (const void *)fpu_mul_s; kind = 0; break;
	case OP_FDIV_S: fn = (const void *)fpu_div_s; kind = 0; break;
	case OP_FADD_D: fn = (const void *)fpu_add_d; kind = 0; break;
	case OP_FSUB_D: fn = (const void *)fpu_sub_d; kind = 0; break;
	case OP_FMUL_D: fn = (const void *)fpu_mul_d; kind = 0; break;
	case OP_FDIV_D: fn = (const void *)fpu_div_d; kind = 0; break;
	case OP_FSQRT_S: fn = (const void *)fpu_sqrt_s; kind = 1; break;
	case OP_FSQRT_D: fn = (const void *)fpu_sqrt_d; kind = 1; break;
	case OP_FMADD_S: fn = (const void *)fpu_fma_s; kind = 2; fma_op = FMA_MADD; break;
	case OP_FMSUB_S: fn = (const void *)fpu_fma_s; kind = 2; fma_op = FMA_MSUB; break;
	case OP_FNMSUB_S: fn = (const void *)fpu_fma_s; kind = 2; fma_op = FMA_NMSUB; break;
	case OP_FNMADD_S: fn = (const void *)fpu_fma_s; kind = 2; fma_op = FMA_NMADD; break;
	case OP_FMADD_D: fn = (const void *)fpu_fma_d; kind = 2; fma_op = FMA_MADD; break;
	case OP_FMSUB_D: fn = (const void *)fpu_fma_d; kind = 2; fma_op = FMA_MSUB; break;
	case OP_FNMSUB_D: fn = (const void *)fpu_fma_d; kind = 2; fma_op = FMA_NMSUB; break;
	case OP_FNMADD_D: fn = (const void *)fpu_fma_d; kind = 2; fma_op = FMA_NMADD; break;
	default: return false;
	}
	if (i->rm > 4 && i->rm != 7)
		return false;
	struct slow *s = &t->slow[t->nslow++];
	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->bail_only = true;
	/* FP_ON: sstatus.FS not Off. */
	x86_mov_rm(&t->b, RAX, hmem(HOFF(status)));
	x86_alu_ri32(&t->b, ALU_AND, RAX, (int32_t)SSTATUS_FS);
	s->jcc = x86_jcc32(&t->b, CC_E);
	if (i->rm == 7) {
		/* Dynamic: frm, which must not be 5..7. A second bail entry. */
		x86_load(&t->b, RDX, hmem(HOFF(frm)), 4, false);
		x86_alu_ri32(&t->b, ALU_CMP, RDX, 4);
		struct slow *s2 = &t->slow[t->nslow++];
		memset(s2, 0, sizeof(*s2));
		s2->idx = idx;
		s2->bail_only = true;
		s2->jcc = x86_jcc32(&t->b, CC_A);
	} else {
		x86_mov_ri(&t->b, RDX, i->rm);
	}
	/* rdx = rm; what lives in caller-saved registers goes home first. */
	jit_move_mapped(&t->b, true, true);
	int32_t f1 = HOFF(f) + 8 * i->rs1, f2 = HOFF(f) + 8 * i->rs2, f3 = HOFF(f) + 8 * i->rs3;
	struct x86_mem fl = hmem(HOFF(fflags));
	switch (kind) {
	case 0:
		x86_mov_rm(&t->b, RDI, hmem(f1));
		x86_mov_rm(&t->b, RSI, hmem(f2));
		x86_lea(&t->b, RCX, fl);
		break;
	case 1:
		x86_mov_rm(&t->b, RDI, hmem(f1));
		x86_mov_rr32(&t->b, RSI, RDX);
		x86_lea(&t->b, RDX, fl);
		break;
	default:
		x86_mov_rr32(&t->b, R8, RDX);
		x86_mov_rm(&t->b, RDI, hmem(f1));
		x86_mov_rm(&t->b, RSI, hmem(f2));
		x86_mov_rm(&t->b, RDX, hmem(f3));
		x86_mov_ri(&t->b, RCX, (uint64_t)fma_op);
		x86_lea(&t->b, R9, fl);
		break;
	}
	x86_mov_ri(&t->b, RAX, (uint64_t)(uintptr_t)fn);
	x86_call_r(&t->b, RAX);
	x86_mov_mr(&t->b, hmem(HOFF(f) + 8 * i->rd), RAX, 8);
	x86_alu_mi(&t->b, ALU_OR, hmem(HOFF(status)), (int32_t)SSTATUS_FS, 4);
	jit_move_mapped(&t->b, false, true);
	return true;
}

/* ---- accessors for translate_fp.c (translate.h) ---------------------------- */

struct opnd tr_src(const struct tr *t, unsigned r) { return src(t, r); }
void tr_load(struct tr *t, enum x86_reg dst, struct opnd o) { load_op(t, dst, o); }
void tr_set_rd(struct tr *t, unsigned rd, enum x86_reg v) { set_rd(t, rd, v); }
void tr_va(struct tr *t, const struct insn *i) { emit_va(t, i); }

struct slow *tr_probe(struct tr *t, unsigned size, bool store, unsigned idx, struct opnd value)
{
	emit_probe(t, size, store, idx, value, false);
	return &t->slow[t->nslow - 1];
}

struct slow *tr_slow_bail(struct tr *t, unsigned idx)
{
	struct slow *s = &t->slow[t->nslow++];
	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->bail_only = true;
	return s;
}

struct slow *tr_slow_helper(struct tr *t, const struct insn *i, unsigned idx)
{
	struct slow *s = &t->slow[t->nslow++];
	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->helper = true;
	s->insn = i;
	return s;
}

/* ---- one instruction ------------------------------------------------------ */

/* Translate instruction idx (not the last of a block that transfers
 * control: see emit_end). false: not translated; the caller ends the
 * translation with a bail before it. */
static bool emit_insn(struct tr *t, const struct insn *i, unsigned idx)
{
	switch ((enum op)i->op) {
	case OP_LUI:
		emit_copy(t, i->rd, (struct opnd){ .kind = O_IMM, .imm = i->imm });
		return true;
	case OP_JAL:
		/* A `j` the block goes on past (block_build): nothing to do,
		 * the next instruction is the target's; every register wide,
		 * as the width plan takes a JAL for a barrier. */
		if (!(i->flags & INSN_JUMP_ON))
			return false;
		widen_all(t);
		return true;
	case OP_AUIPC:
		if (i->rd != REG_SINK) {
			int64_t v = (int64_t)i->pc_off + i->imm;
			if (v == (int32_t)v) {
				x86_lea(&t->b, RAX, x86_mem(JIT_PC, (int32_t)v));
			} else {
				x86_mov_ri(&t->b, RAX, (uint64_t)v);
				x86_alu_rr(&t->b, ALU_ADD, RAX, JIT_PC);
			}
			set_rd(t, i->rd, RAX);
		}
		return true;
	case OP_LB: emit_load(t, i, idx, 1, true); return true;
	case OP_LH: emit_load(t, i, idx, 2, true); return true;
	case OP_LW: emit_load(t, i, idx, 4, true); return true;
	case OP_LD: emit_load(t, i, idx, 8, false); return true;
	case OP_LBU: emit_load(t, i, idx, 1, false); return true;
	case OP_LHU: emit_load(t, i, idx, 2, false); return true;
	case OP_LWU: emit_load(t, i, idx, 4, false); return true;
	case OP_SB: emit_store(t, i, idx, 1); return true;
	case OP_SH: emit_store(t, i, idx, 2); return true;
	case OP_SW: emit_store(t, i, idx, 4); return true;
	case OP_SD: emit_store(t, i, idx, 8); return true;
	case OP_ADDI: emit_alui(t, i, ALU_ADD, false); return true;
	case OP_XORI: emit_alui(t, i, ALU_XOR, false); return true;
	case OP_ORI: emit_alui(t, i, ALU_OR, false); return true;
	case OP_ANDI: emit_alui(t, i, ALU_AND, false); return true;
	case OP_ADDIW: emit_alui(t, i, ALU_ADD, true); return true;
	case OP_SLTI: emit_setcc(t, i, CC_L, (struct opnd){ .kind = O_IMM, .imm = i->imm }); return true;
	case OP_SLTIU: emit_setcc(t, i, CC_B, (struct opnd){ .kind = O_IMM, .imm = i->imm }); return true;
	case OP_SLLI: emit_shifti(t, i, SH_SHL, false); return true;
	case OP_SRLI: emit_shifti(t, i, SH_SHR, false); return true;
	case OP_SRAI: emit_shifti(t, i, SH_SAR, false); return true;
	case OP_SLLIW: emit_shifti(t, i, SH_SHL, true); return true;
	case OP_SRLIW: emit_shifti(t, i, SH_SHR, true); return true;
	case OP_SRAIW: emit_shifti(t, i, SH_SAR, true); return true;
	case OP_RORI: emit_shifti(t, i, SH_ROR, false); return true;
	case OP_RORIW: emit_shifti(t, i, SH_ROR, true); return true;
	case OP_ADD: emit_alu3(t, i, ALU_ADD, true, false); return true;
	case OP_SUB: emit_alu3(t, i, ALU_SUB, false, false); return true;
	case OP_XOR: emit_alu3(t, i, ALU_XOR, true, false); return true;
	case OP_OR: emit_alu3(t, i, ALU_OR, true, false); return true;
	case OP_AND: emit_alu3(t, i, ALU_AND, true, false); return true;
	case OP_ADDW: emit_alu3(t, i, ALU_ADD, true, true); return true;
	case OP_SUBW: emit_alu3(t, i, ALU_SUB, false, true); return true;
	case OP_SLT: emit_setcc(t, i, CC_L, src_last(t, i->rs2)); return true;
	case OP_SLTU: emit_setcc(t, i, CC_B, src_last(t, i->rs2)); return true;
	case OP_SLL: emit_shift(t, i, SH_SHL, false); return true;
	case OP_SRL: emit_shift(t, i, SH_SHR, false); return true;
	case OP_SRA: emit_shift(t, i, SH_SAR, false); return true;
	case OP_SLLW: emit_shift(t, i, SH_SHL, true); return true;
	case OP_SRLW: emit_shift(t, i, SH_SHR, true); return true;
	case OP_SRAW: emit_shift(t, i, SH_SAR, true); return true;
	case OP_ROL: emit_shift(t, i, SH_ROL, false); return true;
	case OP_ROR: emit_shift(t, i, SH_ROR, false); return true;
	case OP_ROLW: emit_shift(t, i, SH_ROL, true); return true;
	case OP_RORW: emit_shift(t, i, SH_ROR, true); return true;
	case OP_MUL: emit_mul(t, i, false); return true;
	case OP_MULW: emit_mul(t, i, true); return true;
	case OP_MULH: emit_mulh(t, i, 0); return true;
	case OP_MULHU: emit_mulh(t, i, 1); return true;
	case OP_MULHSU: emit_mulh(t, i, 2); return true;
	case OP_DIV: emit_div(t, i, true, false, false); return true;
	case OP_DIVU: emit_div(t, i, false, false, false); return true;
	case OP_REM: emit_div(t, i, true, true, false); return true;
	case OP_REMU: emit_div(t, i, false, true, false); return true;
	case OP_DIVW: emit_div(t, i, true, false, true); return true;
	case OP_DIVUW: emit_div(t, i, false, false, true); return true;
	case OP_REMW: emit_div(t, i, true, true, true); return true;
	case OP_REMUW: emit_div(t, i, false, true, true); return true;
	case OP_FENCE:
		widen_all(t);
		if (i->imm == 0x010)
			return false; /* PAUSE: the executor counts spins */
		/* RVWMO to x86-TSO: only store-to-load order needs a fence. */
		if ((i->imm & 0x10) && (i->imm & 0x02))
			x86_mfence(&t->b);
		return true;
	case OP_CBO_ZERO: emit_cbo_zero(t, i, idx); return true;
	case OP_SH1ADD: emit_shadd(t, i, 1, false); return true;
	case OP_SH2ADD: emit_shadd(t, i, 2, false); return true;
	case OP_SH3ADD: emit_shadd(t, i, 3, false); return true;
	case OP_ADD_UW: emit_shadd(t, i, 0, true); return true;
	case OP_SH1ADD_UW: emit_shadd(t, i, 1, true); return true;
	case OP_SH2ADD_UW: emit_shadd(t, i, 2, true); return true;
	case OP_SH3ADD_UW: emit_shadd(t, i, 3, true); return true;
	case OP_SLLI_UW:
		load_op(t, RAX, src(t, i->rs1));
		x86_mov_rr32(&t->b, RAX, RAX);
		if (i->imm & 63)
			x86_shift_ri(&t->b, SH_SHL, RAX, (unsigned)i->imm & 63, false);
		set_rd(t, i->rd, RAX);
		return true;
	case OP_ANDN: case OP_ORN: {
		load_op(t, RCX, src(t, i->rs2));
		x86_f7(&t->b, 2, RCX, false);
		load_op(t, RAX, src(t, i->rs1));
		x86_alu_rr(&t->b, i->op == OP_ANDN ? ALU_AND : ALU_OR, RAX, RCX);
		set_rd(t, i->rd, RAX);
		return true;
	}
	case OP_XNOR:
		load_op(t, RAX, src(t, i->rs1));
		alu_op(t, ALU_XOR, RAX, src(t, i->rs2), false);
		x86_f7(&t->b, 2, RAX, false);
		set_rd(t, i->rd, RAX);
		return true;
	case OP_CLZ: emit_clz(t, i, false); return true;
	case OP_CLZW: emit_clz(t, i, true); return true;
	case OP_CTZ: emit_ctz(t, i, false); return true;
	case OP_CTZW: emit_ctz(t, i, true); return true;
	case OP_CPOP: case OP_CPOPW: {
		if (!t->j->popcnt)
			return false;
		enum x86_reg a = reg_op(t, src(t, i->rs1), RCX);
		x86_bitscan(&t->b, 0xb8, true, RAX, a, i->op == OP_CPOPW);
		set_rd(t, i->rd, RAX);
		return true;
	}
	case OP_MAX: emit_minmax(t, i, CC_L); return true;
	case OP_MIN: emit_minmax(t, i, CC_G); return true;
	case OP_MAXU: emit_minmax(t, i, CC_B); return true;
	case OP_MINU: emit_minmax(t, i, CC_A); return true;
	case OP_SEXT_B: case OP_SEXT_H: case OP_ZEXT_H: {
		enum x86_reg a = reg_op(t, src(t, i->rs1), RCX);
		if (i->op == OP_ZEXT_H)
			x86_movzx_rr(&t->b, RAX, a, 2);
		else
			x86_movsx_rr(&t->b, RAX, a, i->op == OP_SEXT_B ? 1 : 2);
		set_rd(t, i->rd, RAX);
		return true;
	}
	case OP_ORC_B:
		/* Per byte: 0xff if non-zero. The high bit of each byte of
		 * ((x & 0x7f..) + 0x7f..) | x is set exactly for the non-zero
		 * bytes (no carry crosses a byte); spread it: * 0xff. */
		load_op(t, RAX, src(t, i->rs1));
		x86_mov_ri(&t->b, RCX, 0x7f7f7f7f7f7f7f7full);
		x86_mov_rr(&t->b, RDX, RAX);
		x86_alu_rr(&t->b, ALU_AND, RDX, RCX);
		x86_alu_rr(&t->b, ALU_ADD, RDX, RCX);
		x86_alu_rr(&t->b, ALU_OR, RDX, RAX);
		x86_f7(&t->b, 2, RCX, false); /* 0x8080.. */
		x86_alu_rr(&t->b, ALU_AND, RDX, RCX);
		x86_shift_ri(&t->b, SH_SHR, RDX, 7, false);
		x86_mov_rr(&t->b, RAX, RDX);
		x86_shift_ri(&t->b, SH_SHL, RAX, 8, false);
		x86_alu_rr(&t->b, ALU_SUB, RAX, RDX);
		set_rd(t, i->rd, RAX);
		return true;
	case OP_REV8:
		load_op(t, RAX, src(t, i->rs1));
		x86_bswap(&t->b, RAX);
		set_rd(t, i->rd, RAX);
		return true;
	case OP_BCLR: emit_bitop(t, i, 6); return true;
	case OP_BSET: emit_bitop(t, i, 5); return true;
	case OP_BINV: emit_bitop(t, i, 7); return true;
	case OP_BEXT:
		load_op(t, RCX, src(t, i->rs2));
		load_op(t, RAX, src(t, i->rs1));
		x86_shift_rcl(&t->b, SH_SHR, RAX, false);
		x86_alu_ri32(&t->b, ALU_AND, RAX, 1);
		set_rd(t, i->rd, RAX);
		return true;
	case OP_BCLRI: case OP_BSETI: case OP_BINVI:
		load_op(t, RAX, src(t, i->rs1));
		x86_bt_ri(&t->b, i->op == OP_BCLRI ? 6 : i->op == OP_BSETI ? 5 : 7, RAX,
			  (unsigned)i->imm & 63);
		set_rd(t, i->rd, RAX);
		return true;
	case OP_BEXTI:
		load_op(t, RAX, src(t, i->rs1));
		if (i->imm & 63)
			x86_shift_ri(&t->b, SH_SHR, RAX, (unsigned)i->imm & 63, false);
		x86_alu_ri32(&t->b, ALU_AND, RAX, 1);
		set_rd(t, i->rd, RAX);
		return true;
	default: {
		bool writes_x;
		widen_all(t);
		if (tr_fp(t, i, idx) || emit_fp_call(t, i, idx))
			return true;
		if (!jit_helper_covers((enum op)i->op, &writes_x))
			return false;
		/* In lockstep, atomics stay in the executor: their writes are
		 * not in the store log and could not be undone. */
		if (t->j->lockstep && i->op >= OP_LR_W && i->op <= OP_AMOMAXU_D)
			return false;
		emit_helper(t, i, idx, writes_x);
		return true;
	}
	}
}

static enum x86_cc branch_cc(enum op op)
{
	switch (op) {
	case OP_BEQ: return CC_E;
	case OP_BNE: return CC_NE;
	case OP_BLT: return CC_L;
	case OP_BGE: return CC_GE;
	case OP_BLTU: return CC_B;
	default: return CC_AE; /* BGEU */
	}
}

/* If-conversion. A block that ends in a conditional branch forward over a
 * few instructions (its tail, decoded by the executor's block_build)
 * costs a host branch miss whenever the guest's branch goes the other way
 * than last time: CRC's conditional xor, a clamp, a select, each a block
 * of a few instructions with a data-dependent end. When the tail is
 * simple ALU work that writes one register, rd, the translation runs it
 * unconditionally with rd's old value kept in rdx, then compares, and two
 * cmovs take back rd and count the tail's instructions only for the path
 * the guest took; it goes on at the branch's target, the join, by an
 * unconditional jump. No fault or bail can happen in between, so the state
 * at every exit is the one the executor reaches by either path. */

/* Whether a tail instruction of this kind may run unconditionally: integer
 * operations with no memory access, no trap, no call, and none whose code
 * uses rdx (the tail's operands never come from rax, so a shift by a
 * register keeps its operands in rax and rcx). */
static bool tail_op(enum op op)
{
	switch (op) {
	case OP_LUI: case OP_AUIPC: case OP_ADDI: case OP_XORI: case OP_ORI: case OP_ANDI:
	case OP_ADDIW: case OP_SLTI: case OP_SLTIU: case OP_SLLI: case OP_SRLI: case OP_SRAI:
	case OP_SLLIW: case OP_SRLIW: case OP_SRAIW: case OP_RORI: case OP_RORIW:
	case OP_ADD: case OP_SUB: case OP_XOR: case OP_OR: case OP_AND: case OP_ADDW:
	case OP_SUBW: case OP_SLT: case OP_SLTU: case OP_SLL: case OP_SRL: case OP_SRA:
	case OP_SLLW: case OP_SRLW: case OP_SRAW:
	case OP_SH1ADD: case OP_SH2ADD: case OP_SH3ADD: case OP_ADD_UW: case OP_SH1ADD_UW:
	case OP_SH2ADD_UW: case OP_SH3ADD_UW: case OP_SLLI_UW: case OP_ANDN: case OP_ORN:
	case OP_XNOR: case OP_MAX: case OP_MIN: case OP_MAXU: case OP_MINU:
	case OP_SEXT_B: case OP_SEXT_H: case OP_ZEXT_H:
	case OP_BCLRI: case OP_BSETI: case OP_BINVI: case OP_BEXTI:
		return true;
	default:
		return false;
	}
}

/* The one register block b's tail writes (0 when it writes none), or -1
 * when the tail cannot be if-converted. */
static int tail_rd(const struct block *b)
{
	if (!b->tail)
		return -1;
	unsigned rd = 0;
	for (unsigned k = 0; k < b->tail; k++) {
		const struct insn *i = &b->insn[b->n + 1 + k];
		if (!tail_op((enum op)i->op))
			return -1;
		if (i->rd == 0 || i->rd == REG_SINK)
			continue;
		if (rd && i->rd != rd)
			return -1;
		rd = i->rd;
	}
	return (int)rd;
}

/* Branch i over its block's tail, which writes rd (tail_rd), if-converted;
 * n: the block's instructions. */
static void emit_hammock(struct tr *t, const struct insn *i, unsigned n, unsigned rd)
{
	const struct block *b = t->blk;
	int hr = rd ? host_of(t, rd) : -1;
	if (rd)
		load_op(t, RDX, src(t, rd));
	for (unsigned k = 0; k < b->tail; k++) {
		const struct insn *ti = &b->insn[n + 1 + k];
		t->rax_reg = 0;
		t->may_narrow = false;
		if (k + 1 < b->tail && (emit_scaled_add(t, ti, ti + 1) || emit_zext_pair(t, ti, ti + 1))) {
			k++;
			continue;
		}
		emit_insn(t, ti, n);
	}
	t->rax_reg = t->rax_next = 0;
	/* The branch's operands as they were before the tail: rd's in rdx. */
	struct opnd old = { .kind = O_REG, .reg = RDX };
	emit_cmp(t, rd && i->rs1 == rd ? old : src(t, i->rs1), rd && i->rs2 == rd ? old : src(t, i->rs2));
	enum x86_cc taken = branch_cc((enum op)i->op);
	if (hr >= 0) {
		x86_cmov(&t->b, taken, (enum x86_reg)hr, RDX);
	} else if (rd) {
		x86_mov_rm(&t->b, RAX, hmem(XOFF(rd)));
		x86_cmov(&t->b, taken, RAX, RDX);
		x86_mov_mr(&t->b, hmem(XOFF(rd)), RAX, 8);
	}
	/* x86 condition codes come in pairs that differ in bit 0. */
	x86_lea(&t->b, RCX, x86_mem(JIT_INSTRET, b->tail));
	x86_cmov(&t->b, (enum x86_cc)(taken ^ 1), JIT_INSTRET, RCX);
	emit_goto(t, (int64_t)i->pc_off + i->imm, n);
}

/* The last instruction when it transfers control; false if it is none of
 * the ones handled here. */
static bool emit_end(struct tr *t, const struct insn *i, unsigned n)
{
	int64_t off = i->pc_off;
	switch ((enum op)i->op) {
	case OP_JAL:
		if (i->rd != REG_SINK) {
			x86_lea(&t->b, RAX, x86_mem(JIT_PC, (int32_t)(off + i->len)));
			set_rd(t, i->rd, RAX);
		}
		emit_goto(t, off + i->imm, n);
		return true;
	case OP_JALR: {
		const struct insn *p = n >= 2 ? &t->blk->insn[n - 2] : NULL;
		int64_t target = p ? ((int64_t)p->pc_off + p->imm + i->imm) & ~(int64_t)1 : 0;
		if (p && p->op == OP_AUIPC && p->rd == i->rs1 && p->rd != REG_SINK &&
		    target == (int32_t)target) {
			/* AUIPC + JALR (a call or tail call of a pc-relative
			 * target, `call`/`tail`): the target is known here, so
			 * this is JAL to it (chained directly within the page),
			 * with no round trip through rs1's home. A 2-byte
			 * aligned pc keeps bit 0 clear. */
			if (i->rd != REG_SINK) {
				x86_lea(&t->b, RAX, x86_mem(JIT_PC, (int32_t)(off + i->len)));
				set_rd(t, i->rd, RAX);
			}
			emit_goto(t, target, n);
			return true;
		}
		/* Target first: rd may be rs1. Bit 0 cleared. */
		load_op(t, RAX, src_last(t, i->rs1));
		if (i->imm)
			x86_alu_ri(&t->b, ALU_ADD, RAX, i->imm);
		x86_alu_ri(&t->b, ALU_AND, RAX, -2);
		if (i->rd != REG_SINK) {
			x86_lea(&t->b, RCX, x86_mem(JIT_PC, (int32_t)(off + i->len)));
			set_rd(t, i->rd, RCX);
		}
		x86_alu_ri(&t->b, ALU_ADD, JIT_INSTRET, (int32_t)n);
		emit_jc_jump(t);
		return true;
	}
	case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU: case OP_BGEU: {
		int rd = tail_rd(t->blk);
		if (rd >= 0) {
			emit_hammock(t, i, n, (unsigned)rd);
			return true;
		}
		emit_cmp(t, src_last(t, i->rs1), src_last(t, i->rs2));
		uint8_t *taken = x86_jcc32(&t->b, branch_cc((enum op)i->op));
		emit_goto(t, off + i->len, n);
		if (taken)
			x86_patch_rel32(taken, t->b.p);
		emit_goto(t, off + i->imm, n);
		return true;
	}
	default:
		return false;
	}
}

/* The closing branch of a loop of one block (jit_widths_plan's `loop`):
 * taken, it goes back to the translation's head (past emit_entry_check)
 * with the registers of widths.entry left narrow (a W result such a loop carries round, a
 * hash's state, stays 32 bits wide and loses its MOVSXD per round); every
 * other way on, not taken or past the deadline, widens them first. The
 * jump back is direct, where a link would reach whatever translation the
 * block has when the link is made, which may assume other registers
 * narrow. In lockstep, which runs one block at a time, it is the usual
 * goto. */
static void emit_loop_end(struct tr *t, const struct insn *i, unsigned n, uint8_t *head)
{
	/* Only what the plan lets the start take narrow may stay so. */
	widen_at_end(t, t->narrow & ~t->widths.entry);
	t->narrow &= t->widths.entry;
	uint64_t narrow = t->narrow;
	emit_cmp(t, src_last(t, i->rs1), src_last(t, i->rs2));
	uint8_t *taken = x86_jcc32(&t->b, branch_cc((enum op)i->op));
	widen_all(t);
	leave_lent(t);
	emit_goto(t, i->pc_off + i->len, n);
	if (taken)
		x86_patch_rel32(taken, t->b.p);
	t->narrow = narrow;
	if (t->j->lockstep) {
		widen_all(t);
		leave_lent(t);
		emit_goto(t, 0, n);
		return;
	}
	x86_alu_ri(&t->b, ALU_ADD, JIT_INSTRET, (int32_t)n);
	x86_alu_rm(&t->b, ALU_CMP, JIT_INSTRET, hmem(HOFF(jit_deadline)));
	jcc_to(t, CC_B, head);
	widen_all(t);
	leave_lent(t);
	jmp_to(t, t->j->exit_deadline);
}

/* A loop of one block counts widths.entry narrow from its start, where
 * its own jump back leaves them so (W results: each the sign extension of
 * its low half, whatever its upper half holds). Entered any other way
 * (the executor, a link, the jump cache) those registers hold exact
 * values, which may be any 64 bits: counted narrow, one would have its
 * low half sign-extended over it by a slow path or bail taken before the
 * loop wrote it. So for each register that some instruction before its
 * first write may leave by such a path (any but the ALU operations
 * tail_op lists), these entries check that it holds its low half's sign
 * extension (then either view is right), and where one does not, the
 * executor runs the block from its first instruction (a bail with nothing
 * done); after that round each holds a W result. The jump back comes in
 * after the check. */
static void emit_entry_check(struct tr *t)
{
	const struct block *b = t->blk;
	uint64_t exposed = 0, written = 0;
	for (unsigned k = 0; k < b->n; k++) {
		const struct insn *i = &b->insn[k];
		if (!tail_op((enum op)i->op))
			exposed |= t->widths.entry & ~written;
		else if (i->rd < 32) /* an integer rd (an FP rd names an f register) */
			written |= 1ull << i->rd;
	}
	for (unsigned r = 1; r < 32; r++) {
		if (!(exposed & (1ull << r)))
			continue;
		int hr = host_of(t, r);
		if (hr >= 0) {
			x86_movsxd_rr(&t->b, RCX, (enum x86_reg)hr);
			x86_alu_rr(&t->b, ALU_CMP, RCX, (enum x86_reg)hr);
		} else {
			x86_load(&t->b, RCX, hmem(XOFF(r)), 4, true);
			x86_alu_rm(&t->b, ALU_CMP, RCX, hmem(XOFF(r)));
		}
		struct slow *s = &t->slow[t->nslow++];
		memset(s, 0, sizeof(*s));
		s->idx = 0;
		s->bail_only = true; /* widen: none, every register is exact here */
		s->jcc = x86_jcc32(&t->b, CC_NE);
	}
}

/* Whether b ends with a conditional branch to its own start: a loop that
 * emit_loop_end closes. */
static bool is_loop(const struct block *b)
{
	const struct insn *i = &b->insn[b->n - 1];
	return b->n >= 2 && i->op >= OP_BEQ && i->op <= OP_BGEU && (int64_t)i->pc_off + i->imm == 0 &&
	       !block_straddles(b);
}

/* A CSR instruction (always the last of its block). */
static void emit_csr(struct tr *t, const struct insn *i, unsigned idx)
{
	load_op(t, RCX, src(t, i->rs1));
	x86_mov_ri(&t->b, RAX, (uint64_t)(uintptr_t)i);
	x86_mov_mr(&t->b, hmem(HOFF(jit_insn)), RAX, 8);
	x86_mov_ri(&t->b, RDX, idx);
	call_to(t, t->j->thunk_csr);
	x86_test_rr(&t->b, RAX, RAX);
	struct slow *s = &t->slow[t->nslow++];
	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->bail_only = true;
	s->jcc = x86_jcc32(&t->b, CC_E);
	x86_mov_rr(&t->b, RCX, RAX);
	if (i->rd != REG_SINK) {
		x86_mov_rm(&t->b, RDX, hmem(HOFF(jit_ret)));
		set_rd(t, i->rd, RDX);
	}
	int64_t next = (int64_t)i->pc_off + i->len;
	x86_alu_ri32(&t->b, ALU_CMP, RCX, 2);
	uint8_t *leave = x86_jcc32(&t->b, CC_E);
	emit_goto(t, next, idx + 1);
	if (leave)
		x86_patch_rel32(leave, t->b.p);
	x86_alu_ri(&t->b, ALU_ADD, JIT_INSTRET, (int32_t)(idx + 1));
	x86_alu_ri(&t->b, ALU_ADD, JIT_PC, (int32_t)next);
	jmp_to(t, t->j->exit_lookup);
}

/* Instructions whose translation ends with set_rd(rd, rax) on every path
 * that goes on (a load's slow path rejoins before the load). */
static bool rax_result(enum op op)
{
	switch (op) {
	case OP_LUI: case OP_AUIPC:
	case OP_LB: case OP_LH: case OP_LW: case OP_LD: case OP_LBU: case OP_LHU: case OP_LWU:
	case OP_ADDI: case OP_XORI: case OP_ORI: case OP_ANDI: case OP_ADDIW: case OP_SLTI:
	case OP_SLTIU: case OP_SLLI: case OP_SRLI: case OP_SRAI: case OP_SLLIW: case OP_SRLIW:
	case OP_SRAIW: case OP_ADD: case OP_SUB: case OP_XOR: case OP_OR: case OP_AND:
	case OP_ADDW: case OP_SUBW: case OP_SLT: case OP_SLTU: case OP_SLL: case OP_SRL:
	case OP_SRA: case OP_SLLW: case OP_SRLW: case OP_SRAW: case OP_MUL: case OP_MULW:
		return true;
	default:
		return false;
	}
}

/* Instructions whose translation (emit_alu3, emit_alui, emit_shifti,
 * emit_copy) writes rax only to compute its result there, which set_rd
 * then notes (rax_written): when it did not, rax still holds what it held
 * before, so a register kept in memory that an instruction before left in
 * rax stays readable from there past instructions on other registers (a
 * loaded value, an index, used two or three instructions later). */
static bool keeps_rax(enum op op)
{
	switch (op) {
	case OP_LUI:
	case OP_ADDI: case OP_XORI: case OP_ORI: case OP_ANDI: case OP_ADDIW:
	case OP_SLLI: case OP_SRLI: case OP_SRAI: case OP_SLLIW: case OP_SRLIW: case OP_SRAIW:
	case OP_ADD: case OP_SUB: case OP_XOR: case OP_OR: case OP_AND: case OP_ADDW: case OP_SUBW:
		return true;
	default:
		return false;
	}
}

static bool is_control(enum op op)
{
	return op == OP_JAL || op == OP_JALR || (op >= OP_BEQ && op <= OP_BGEU);
}

/* Debugging output: the guest instructions and the host bytes. */
static void dump(struct tr *t, const uint8_t *start, const void *rx)
{
	FILE *f = t->j->dump;
	struct block *b = t->blk;
	size_t len = (size_t)(t->b.p - start);
	if (f) {
		fprintf(f, "block pa %#llx set %u insns %u host %p bytes %zu\n",
			(unsigned long long)b->pa, t->set, b->n, rx, len);
		for (unsigned k = 0; k < b->n; k++) {
			const struct insn *i = &b->insn[k];
			fprintf(f, "  %+-5d %-10s rd %-2u rs1 %-2u rs2 %-2u imm %d\n", i->pc_off,
				op_name((enum op)i->op), i->rd, i->rs1, i->rs2, i->imm);
		}
		for (unsigned k = 0; k < b->tail; k++) {
			const struct insn *i = &b->insn[b->n + 1 + k];
			fprintf(f, "  tail %+-5d %-10s rd %-2u rs1 %-2u rs2 %-2u imm %d\n", i->pc_off,
				op_name((enum op)i->op), i->rd, i->rs1, i->rs2, i->imm);
		}
		fprintf(f, "  host:");
		for (size_t k = 0; k < len; k++)
			fprintf(f, "%s%02x", k % 32 ? "" : "\n    ", start[k]);
		fprintf(f, "\n");
		fflush(f);
	}
	if (t->j->perfmap) {
		fprintf(t->j->perfmap, "%llx %zx rv-%llx\n", (unsigned long long)(uintptr_t)rx, len,
			(unsigned long long)b->pa);
		fflush(t->j->perfmap);
	}
}

const void *jit_translate(struct hart *h, struct block *b, bool *full)
{
	struct jit *j = h->jit;
	*full = false;
	if (j->cc.size - j->cc.used < MAX_TRANSLATION) {
		*full = true;
		return NULL;
	}
	struct tr *t = &(struct tr){ 0 };
	t->h = h;
	t->j = j;
	t->blk = b;
	t->set = h->tlb_set;
	t->page_off = (unsigned)(b->pa & 0xfff);
	uint8_t *start = j->cc.rw + j->cc.used;
	t->b = (struct x86_buf){ start, j->cc.rw + j->cc.size, false };

	unsigned k = 0;
	bool ended = false;
	t->run_next = -1;
	bool loop = is_loop(b);
	jit_widths_plan(b, b->n, loop, &t->widths);
	t->narrow = t->widths.entry;
	jit_probe_plan(b, b->n, !t->j->lockstep, &t->probes);
	for (unsigned r = 0; r < 33; r++)
		t->map[0][r] = t->map[1][r] = (signed char)jit_host_reg(r);
	if (loop)
		lend_plan(t, b);
	if (block_straddles(b))
		emit_straddle_check(t);
	emit_entry_check(t);
	if (t->nlent) {
		emit_lend(t);
		t->lent = true;
		t->lend_slow = t->nslow;
	}
	uint8_t *head = t->b.p; /* where the loop's jump back comes in */
	for (; k < b->n; k++) {
		const struct insn *i = &b->insn[k];
		t->may_narrow = !t->widths.wide[k] && jit_widths_may_narrow((enum op)i->op);
		t->left_narrow = false;
		t->rax_reg = t->rax_next;
		t->rax_next = 0;
		t->run_group = t->run_next;
		t->run_disp = t->run_disp_next;
		t->run_next = -1;
		if (k + 1 == b->n && loop) {
			emit_loop_end(t, i, b->n, head);
			ended = true;
			k++;
			break;
		}
		if (k + 1 == b->n && is_control((enum op)i->op)) {
			widen_at_end(t, t->narrow);
			t->narrow = 0;
			ended = emit_end(t, i, b->n);
			if (ended)
				k++;
			break;
		}
		/* CSRs; in lockstep not the time CSR, which moves between the
		 * translation's run and the executor's. */
		if (i->op >= OP_CSRRW && i->op <= OP_CSRRCI && !(t->j->lockstep && i->imm == 0xc01)) {
			widen_all(t);
			emit_csr(t, i, k);
			ended = true;
			k++;
			break;
		}
		if (t->zx_until == k && k) {
			/* The SRLI of an early zero extension: done. */
			t->narrow = jit_widths_step(i, t->narrow, false);
			t->zx_until = 0;
			continue;
		}
		unsigned m = t->zx_until ? 0 : zx_partner(b, k);
		if (m && emit_zext_pair(t, i, &b->insn[m])) {
			t->narrow = jit_widths_step(i, t->narrow, false);
			t->rax_next = 0;
			t->zx_until = m;
			t->zx_reg = i->rd;
			t->zx_sh = (unsigned)i->imm & 63;
			continue;
		}
		if (k + 1 < b->n && (emit_scaled_add(t, i, &b->insn[k + 1]) ||
				     emit_zext_pair(t, i, &b->insn[k + 1]) ||
				     emit_zext_scale(t, i, &b->insn[k + 1]))) {
			t->narrow = jit_widths_step(i, t->narrow, false);
			t->narrow = jit_widths_step(&b->insn[k + 1], t->narrow, false);
			k++;
			continue;
		}
		uint64_t first = jit_widths_widen_first(&t->widths, k, i, t->narrow);
		if (first) {
			widen(t, first);
			t->narrow &= ~first;
			if (first & (1ull << t->rax_reg)) /* rax holds its old upper half */
				t->rax_reg = 0;
		}
		t->rax_written = false;
		if (!emit_insn(t, i, k))
			break;
		/* Not when i wrote the register rax holds (in its home: an
		 * `add [home], x`). */
		if (!t->rax_next && !t->rax_written && keeps_rax((enum op)i->op) && i->rd != t->rax_reg)
			t->rax_next = t->rax_reg;
		t->narrow = jit_widths_step(i, t->narrow, t->left_narrow);
		/* rax still holds rd only after the integer operations that
		 * end with its store. A narrow rd too: its readers until the
		 * block's end read the low half only, and the widening before
		 * the closing branch widens rax with it (widen_at_end); the
		 * other widenings are out of line or before instructions
		 * that do not read rax. */
		if (!rax_result((enum op)i->op))
			t->rax_next = 0;
	}
	t->may_narrow = false;
	widen_all(t);
	if (t->zx_until && k < b->n) {
		/* Left before the SRLI (cannot happen: only inline
		 * instructions stand between): rd as its SLLI left it. */
		struct slow undo = { .zx_reg = t->zx_reg, .zx_sh = t->zx_sh };
		zx_undo(t, &undo);
	}
	if (!ended)
		leave_lent(t);
	t->lent = false;
	if (k == 0) {
		b->jit_none = true;
		return NULL;
	}
	if (!ended) {
		if (k < b->n)
			emit_bail(t, k);
		else
			emit_goto(t, b->bytes, b->n); /* fell off the end */
	}
	emit_slow_paths(t);
	if (t->b.overflow) {
		*full = true;
		return NULL;
	}
	const void *rx = code_cache_rx(&j->cc, start);
	dump(t, start, rx);
	j->cc.used = ((size_t)(t->b.p - j->cc.rw) + 15) & ~(size_t)15;
	if (j->cc.used > j->cc.high)
		j->cc.high = j->cc.used;
	j->translations++;
	b->jit[t->set] = rx;
	return rx;
}

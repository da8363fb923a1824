/*
 * The width plan of a block: which W results the translator must
 * sign-extend (see widths.h for the rule and why it keeps state exact).
 */
#include "engine/jit/widths.h"

/* How an instruction reads its operands, for the plan. */
enum kind {
	K_BARRIER, /* reads every register in full: calls, exits, anything unlisted */
	K_PLAIN,   /* rs1 and rs2 in full, result exact */
	K_NOSRC,   /* no register operand, result exact */
	K_W,       /* W instruction: low halves only, result may stay narrow */
	K_BITWISE, /* AND/OR/XOR: sources as wide as the result must be */
	K_STORE,   /* narrow store: address in full, value's low half */
	K_SHIFT,   /* 64-bit shift by a register: rs1 in full, amount low */
	K_LOW,     /* SLLI by 32 or more: only rs1's low half, result exact */
};

/* Only instructions the translator always emits inline may be other than
 * K_BARRIER: at a bail or a call every register must be exact. */
static enum kind kind_of(enum op op)
{
	switch (op) {
	case OP_ADDW: case OP_SUBW: case OP_ADDIW: case OP_SLLIW: case OP_SRLIW: case OP_SRAIW:
	case OP_SLLW: case OP_SRLW: case OP_SRAW: case OP_MULW:
		return K_W;
	case OP_AND: case OP_OR: case OP_XOR: case OP_ANDI: case OP_ORI: case OP_XORI:
		return K_BITWISE;
	case OP_SB: case OP_SH: case OP_SW:
		return K_STORE;
	case OP_SLL: case OP_SRL: case OP_SRA:
		return K_SHIFT;
	case OP_LUI: case OP_AUIPC:
		return K_NOSRC;
	case OP_LB: case OP_LH: case OP_LW: case OP_LD: case OP_LBU: case OP_LHU: case OP_LWU:
	case OP_SD: case OP_ADDI: case OP_SLTI: case OP_SLTIU: case OP_SLLI: case OP_SRLI:
	case OP_SRAI: case OP_ADD: case OP_SUB: case OP_SLT: case OP_SLTU: case OP_MUL:
	case OP_MULH: case OP_MULHU: case OP_MULHSU: case OP_DIV: case OP_DIVU: case OP_REM:
	case OP_REMU: case OP_DIVW: case OP_DIVUW: case OP_REMW: case OP_REMUW:
	case OP_SH1ADD: case OP_SH2ADD: case OP_SH3ADD: case OP_ADD_UW: case OP_SH1ADD_UW:
	case OP_SH2ADD_UW: case OP_SH3ADD_UW: case OP_SLLI_UW: case OP_MAX: case OP_MIN:
	case OP_MAXU: case OP_MINU: case OP_SEXT_B: case OP_SEXT_H: case OP_ZEXT_H:
		return K_PLAIN;
	default:
		return K_BARRIER;
	}
}

/* The same for one instruction: a left shift by 32 or more shifts rs1's
 * upper half out (`slli t, s, 32` is how RV64GC code starts a zero
 * extension of a W result, `(UInt32)x * 2` in LZMA's probability
 * indexing), so that W result needs no sign extension. */
static enum kind kind_of_insn(const struct insn *i)
{
	if (i->op == OP_SLLI && ((unsigned)i->imm & 63) >= 32)
		return K_LOW;
	return kind_of((enum op)i->op);
}

static bool reg_reg(enum op op) { return op == OP_AND || op == OP_OR || op == OP_XOR; }

static uint64_t bit(unsigned r) { return 1ull << r; }

bool jit_widths_may_narrow(enum op op) { return kind_of(op) == K_W; }

/* The backward pass over instructions [0, n): fills w->wide and returns
 * the registers whose upper half is read before being written (from the
 * block's start), given those read after instruction n - 1 (`demand`). */
static uint64_t backward(const struct block *b, unsigned n, uint64_t demand, struct widths *w)
{
	for (unsigned k = n; k-- > 0;) {
		const struct insn *i = &b->insn[k];
		enum kind kind = kind_of_insn(i);
		bool writes = i->rd != REG_SINK;
		bool need = writes && (demand & bit(i->rd));
		w->wide[k] = need || kind != K_W;
		if (kind == K_BARRIER) {
			demand = ~0ull;
			continue;
		}
		if (writes)
			demand &= ~bit(i->rd);
		switch (kind) {
		case K_PLAIN: demand |= bit(i->rs1) | bit(i->rs2); break;
		case K_BITWISE:
			if (need)
				demand |= bit(i->rs1) | (reg_reg((enum op)i->op) ? bit(i->rs2) : 0);
			break;
		case K_STORE: case K_SHIFT: demand |= bit(i->rs1); break;
		default: break;
		}
	}
	return demand;
}

/* Whether translated code may leave at i for C or the executor (a load's
 * or store's slow path, a division's, anything not an inline ALU
 * operation), where every register must be exact. */
static bool may_leave(enum op op)
{
	switch (kind_of(op)) {
	case K_W: case K_BITWISE: case K_SHIFT: case K_NOSRC:
		return false;
	case K_PLAIN:
		return (op >= OP_LB && op <= OP_LWU) || op == OP_SD || (op >= OP_DIV && op <= OP_REMU) ||
		       (op >= OP_DIVW && op <= OP_REMUW);
	default:
		return true;
	}
}

/* w->unseen: a register-register AND/OR/XOR whose rd the block writes
 * again before anything that may leave, and that only W instructions
 * read until then (an AND/OR/XOR reading it would carry its upper half
 * on): its mixed result needs no exact upper half. */
static void plan_unseen(const struct block *b, unsigned n, struct widths *w)
{
	for (unsigned k = 0; k < n; k++) {
		const struct insn *i = &b->insn[k];
		w->unseen[k] = false;
		if (!reg_reg((enum op)i->op) || i->rd == REG_SINK || i->rd == 0)
			continue;
		for (unsigned m = k + 1; m < n; m++) {
			const struct insn *j = &b->insn[m];
			if (may_leave((enum op)j->op) ||
			    ((j->rs1 == i->rd || j->rs2 == i->rd) && kind_of((enum op)j->op) != K_W))
				break;
			if (j->rd == i->rd) {
				w->unseen[k] = true;
				break;
			}
		}
	}
}

void jit_widths_plan(const struct block *b, unsigned n, bool loop, struct widths *w)
{
	w->entry = 0;
	plan_unseen(b, n, w);
	if (!loop || n < 2) {
		backward(b, n, ~0ull, w);
		return;
	}
	/* The closing branch reads its operands in full, and its taken path
	 * whatever the block's start reads in full: the least fixed point of
	 * that demand (it only grows, so this ends within 64 rounds). */
	const struct insn *br = &b->insn[n - 1];
	w->wide[n - 1] = true;
	uint64_t at_end = 0;
	for (;;) {
		uint64_t start = backward(b, n - 1, at_end | bit(br->rs1) | bit(br->rs2), w);
		if (!(start & ~at_end))
			break;
		at_end |= start;
	}
	/* A register an AND/OR/XOR reads before the block writes it cannot
	 * start narrow: entered from another block it holds any 64 bits,
	 * and the operation's result, counted narrow, would lose its upper
	 * half (the entry check only covers the exits before the write). */
	uint64_t bitwise_read = 0, written = 0;
	for (unsigned k = 0; k + 1 < n; k++) {
		const struct insn *i = &b->insn[k];
		if (kind_of((enum op)i->op) == K_BITWISE)
			bitwise_read |= (bit(i->rs1) | (reg_reg((enum op)i->op) ? bit(i->rs2) : 0)) & ~written;
		if (i->rd != REG_SINK)
			written |= bit(i->rd);
	}
	/* The registers narrow at the branch when the block starts with
	 * `entry` narrow, as the translator leaves them (jit_widths_step;
	 * nothing is narrow after an instruction that reads every register),
	 * less those the start reads in full or bitwise; again the least
	 * fixed point. */
	for (;;) {
		uint64_t narrow = w->entry;
		for (unsigned k = 0; k + 1 < n; k++) {
			const struct insn *i = &b->insn[k];
			if (kind_of((enum op)i->op) == K_BARRIER)
				narrow = 0;
			narrow &= ~jit_widths_widen_first(w, k, i, narrow);
			narrow = jit_widths_step(i, narrow, !w->wide[k]);
		}
		narrow &= ~at_end & ~bitwise_read & ~bit(0) & ~bit(REG_SINK);
		if (!(narrow & ~w->entry))
			break;
		w->entry |= narrow;
	}
}

uint64_t jit_widths_widen_first(const struct widths *w, unsigned k, const struct insn *i, uint64_t narrow)
{
	if (!reg_reg((enum op)i->op) || w->unseen[k])
		return 0;
	uint64_t src = bit(i->rs1) | bit(i->rs2), n = narrow & src;
	return n == src ? 0 : n;
}

uint64_t jit_widths_step(const struct insn *i, uint64_t narrow, bool left_narrow)
{
	if (i->rd == REG_SINK)
		return narrow;
	enum op op = (enum op)i->op;
	enum kind kind = kind_of_insn(i);
	bool n = false;
	if (kind == K_W)
		n = left_narrow;
	else if (kind == K_BITWISE)
		n = narrow & (bit(i->rs1) | (reg_reg(op) ? bit(i->rs2) : 0));
	return n ? narrow | bit(i->rd) : narrow & ~bit(i->rd);
}

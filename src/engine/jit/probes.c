/*
 * The probe plan of a block: which loads and stores reuse a leader's TLB
 * probe (see probes.h for the rule and why faults stay precise).
 */
#include "engine/jit/probes.h"

/* Access size of an integer load or store (0: not one); *store says which. */
static unsigned access_size(enum op op, bool *store)
{
	*store = false;
	switch (op) {
	case OP_LB: case OP_LBU: return 1;
	case OP_LH: case OP_LHU: return 2;
	case OP_LW: case OP_LWU: return 4;
	case OP_LD: return 8;
	default: break;
	}
	*store = true;
	switch (op) {
	case OP_SB: return 1;
	case OP_SH: return 2;
	case OP_SW: return 4;
	case OP_SD: return 8;
	default: return 0;
	}
}

/* Calls into C that go through the MMU (atomics, LR/SC, CBO.ZERO), CSRs and
 * everything that leaves translated code: no addend crosses them. */
static bool barrier(enum op op)
{
	return (op >= OP_LR_W && op <= OP_AMOMAXU_D) || (op >= OP_CSRRW && op <= OP_CSRRCI) ||
	       op == OP_ECALL || op == OP_EBREAK || op == OP_SRET ||
	       op == OP_WFI || op == OP_SFENCE_VMA || op == OP_FENCE_I || op == OP_CBO_ZERO;
}

void jit_probe_plan(const struct block *b, unsigned n, bool group_stores, struct probe_plan *p)
{
	/* open[r][s]: the access that opened a candidate group on base
	 * register r for loads (s = 0) or stores (s = 1), or -1. */
	int open[32][2];
	/* adj[r][s]: how far ADDI r, r, imm moved r since that opened. */
	int32_t adj[32][2];
	for (unsigned r = 0; r < 32; r++) {
		open[r][0] = open[r][1] = -1;
		adj[r][0] = adj[r][1] = 0;
	}
	p->ngroups = 0;
	for (unsigned k = 0; k < n && k < ENGINE_BLOCK_MAX; k++) {
		const struct insn *i = &b->insn[k];
		p->group[k] = -1;
		p->leader[k] = false;
		if (barrier((enum op)i->op)) {
			for (unsigned r = 0; r < 32; r++)
				open[r][0] = open[r][1] = -1;
			continue;
		}
		bool store;
		unsigned size = access_size((enum op)i->op, &store);
		if (size && i->rs1 != 0 && i->rs1 < 32 && (!store || group_stores)) {
			int *o = &open[i->rs1][store];
			/* Offsets are from the base as the group's first access saw it. */
			if (*o < 0)
				adj[i->rs1][store] = 0;
			int32_t lo = i->imm + adj[i->rs1][store], hi = lo + (int32_t)size;
			if (*o < 0) {
				*o = (int)k;
			} else {
				int g = p->group[*o];
				bool other_store;
				int32_t glo = g < 0 ? b->insn[*o].imm : p->lo[g];
				int32_t ghi = g < 0 ? glo + (int32_t)access_size((enum op)b->insn[*o].op, &other_store)
						    : p->hi[g];
				if (lo < glo)
					glo = lo;
				if (hi > ghi)
					ghi = hi;
				if (ghi - glo <= PROBE_SPAN_MAX && (g >= 0 || p->ngroups < JIT_PROBE_GROUPS)) {
					if (g < 0) {
						g = (int)p->ngroups++;
						p->group[*o] = (int8_t)g;
						p->leader[*o] = true;
					}
					p->group[k] = (int8_t)g;
					p->lo[g] = glo;
					p->hi[g] = ghi;
				}
			}
		}
		/* ADDI r, r, imm moves the base by a known amount: later
		 * offsets are counted from where it was. Whatever else writes
		 * the base register ends its groups (rd of an FP instruction
		 * names an f register: ending an integer register's group for
		 * it costs nothing but a probe). */
		if (i->op == OP_ADDI && i->rd == i->rs1 && i->rd != 0 && i->rd < 32 && i->imm < PROBE_SPAN_MAX &&
		    i->imm > -PROBE_SPAN_MAX) {
			for (unsigned s = 0; s < 2; s++) {
				adj[i->rd][s] += i->imm;
				/* Past any group's reach: close it (and keep adj small). */
				if (adj[i->rd][s] >= PROBE_SPAN_MAX || adj[i->rd][s] <= -PROBE_SPAN_MAX)
					open[i->rd][s] = -1;
			}
		} else if (i->rd != 0 && i->rd < 32)
			open[i->rd][0] = open[i->rd][1] = -1;
	}
}

/*
 * Lockstep: every run of a translated block is checked against the
 * executor, the reference. The translation runs first on the real hart
 * (alone: in this mode translations are not chained, and every store takes
 * the slow path, which logs it); then its stores are undone, the executor
 * runs the same instructions on a shadow hart that started from the same
 * state, and the two must agree on every register, pc, instret, fflags, the
 * CSRs, and on the stores (where, how wide, what, in order). The executor's
 * memory writes are the ones that stay. The first difference stops the hart
 * with EXIT_FATAL and a description; the block is printed to stderr.
 *
 * The shadow hart shares the guest RAM, never caches write translations
 * (so the executor's stores all take its logged slow path), and drops its
 * TLB whenever the real hart's changes. Other harts and devices writing
 * memory between the two runs would show as a difference: use it with one
 * hart.
 */
#include "engine/jit/runtime.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct lockstep {
	struct hart *shadow;
	uint64_t tlb_gen;       /* the real hart's tlb_gen the shadow follows */
	struct store_log jit_log, exec_log;
	struct {
		struct block b;
		struct insn slots[ENGINE_BLOCK_MAX + 1];
	} copy;
	char why[400];
	uint64_t steps;
};

int jit_lockstep_init(struct hart *h)
{
	struct lockstep *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -1;
	struct hart_config cfg = h->cfg;
	cfg.engine = ENGINE_INTERP;
	cfg.jit_lockstep = false;
	cfg.block_cache_bytes = 64u << 10;
	ls->shadow = hart_create(h->ram, &cfg);
	if (!ls->shadow) {
		free(ls);
		return -1;
	}
	ls->shadow->no_write_tlb = true;
	ls->tlb_gen = ~0ull;
	h->jit->ls = ls;
	h->jit->lockstep = true;
	return 0;
}

void jit_lockstep_fini(struct hart *h)
{
	if (!h->jit || !h->jit->ls)
		return;
	hart_destroy(h->jit->ls->shadow);
	free(h->jit->ls);
	h->jit->ls = NULL;
}

static void print_block(const struct block *b, unsigned ran)
{
	fprintf(stderr, "lockstep: block at pa %#" PRIx64 ", %u instructions, translation ran %u:\n",
		b->pa, b->n, ran);
	for (unsigned k = 0; k < b->n; k++) {
		const struct insn *i = &b->insn[k];
		fprintf(stderr, "  %s%+-5d %-10s rd %-2u rs1 %-2u rs2 %-2u imm %d\n", k < ran ? "" : "(not run) ",
			i->pc_off, op_name((enum op)i->op), i->rd == REG_SINK ? 0 : i->rd, i->rs1, i->rs2, i->imm);
	}
}

/* Compare the translation's result `j` (normalized) with the shadow `e`. */
static bool compare(struct lockstep *ls, const struct hart *j, uint64_t jpc, uint64_t jinstret,
		    const struct hart *e)
{
	char *w = ls->why;
	size_t n = sizeof(ls->why);
	for (unsigned r = 1; r < 32; r++)
		if (j->x[r] != e->x[r]) {
			snprintf(w, n, "lockstep: x%u is %#" PRIx64 " after translated code, %#" PRIx64
				 " after the executor", r, j->x[r], e->x[r]);
			return false;
		}
	for (unsigned r = 0; r < 32; r++)
		if (j->f[r] != e->f[r]) {
			snprintf(w, n, "lockstep: f%u is %#" PRIx64 " after translated code, %#" PRIx64
				 " after the executor", r, j->f[r], e->f[r]);
			return false;
		}
#define SAME(what, a, b) \
	if ((a) != (b)) { \
		snprintf(w, n, "lockstep: %s is %#" PRIx64 " after translated code, %#" PRIx64 \
			 " after the executor", what, (uint64_t)(a), (uint64_t)(b)); \
		return false; \
	}
	SAME("pc", jpc, e->pc);
	SAME("instret", jinstret, e->instret);
	SAME("priv", j->priv, e->priv);
	SAME("fflags", j->fflags, e->fflags);
	SAME("frm", j->frm, e->frm);
	SAME("sstatus", j->status, e->status);
	SAME("scause", j->scause, e->scause);
	SAME("sepc", j->sepc, e->sepc);
	SAME("stval", j->stval, e->stval);
	SAME("satp", j->satp, e->satp);
	SAME("reservation", j->resv_valid, e->resv_valid);
	const struct store_log *a = &ls->jit_log, *b = &ls->exec_log;
	SAME("the number of stores", a->n, b->n);
	for (unsigned k = 0; k < a->n; k++) {
		if (a->e[k].host != b->e[k].host || a->e[k].size != b->e[k].size ||
		    a->e[k].value != b->e[k].value) {
			snprintf(w, n, "lockstep: store %u: translated code wrote %u bytes %#" PRIx64
				 " at guest offset %#tx, the executor %u bytes %#" PRIx64 " at %#tx", k,
				 a->e[k].size, a->e[k].value, a->e[k].host - j->ram->host, b->e[k].size,
				 b->e[k].value, b->e[k].host - j->ram->host);
			return false;
		}
	}
#undef SAME
	return true;
}

int jit_lockstep_step(struct hart *h, struct block *b, const void *code, const char **why)
{
	struct lockstep *ls = h->jit->ls;
	struct hart *s = ls->shadow;
	ls->steps++;

	/* The shadow starts where the real hart is. */
	memcpy(s, h, HART_ARCH_BYTES);
	if (ls->tlb_gen != h->tlb_gen) {
		tlb_flush_all(s);
		ls->tlb_gen = h->tlb_gen;
	}
	tlb_select(s);

	ls->jit_log.n = 0;
	ls->jit_log.overflow = false;
	h->store_log = &ls->jit_log;
	enum jit_exit r = jit_enter(h, code);
	h->store_log = NULL;
	unsigned k = r == JIT_EXIT_BAIL ? h->jit_bail_idx : b->n;
	if (r == JIT_EXIT_BAIL && h->jit_bail_block != b) {
		*why = "lockstep: translated code left from another block";
		return -1;
	}
	/* Undo its stores, newest first. */
	for (unsigned n = ls->jit_log.n; n-- > 0;)
		memcpy(ls->jit_log.e[n].host, &ls->jit_log.e[n].old, ls->jit_log.e[n].size);

	/* The executor over the same instructions. */
	struct block *c = &ls->copy.b;
	memcpy(c, b, sizeof(*b));
	memcpy(c->insn, b->insn, (k + 1) * sizeof(struct insn));
	c->link[0] = c->link[1] = NULL;
	c->n = (uint16_t)k;
	c->bytes = (int16_t)(k < b->n ? b->insn[k].pc_off : b->bytes);
	ls->exec_log.n = 0;
	ls->exec_log.overflow = false;
	s->store_log = &ls->exec_log;
	struct hart_exit ex;
	uint64_t start = s->pc;
	exec_block(s, c, &ex);
	/* A branch over the block's tail, if-converted (translate.c), that
	 * fell through: the translation ran the tail too and went on at the
	 * branch's target. The executor follows over the same instructions,
	 * straight-line code up to there. */
	if (ex.reason == EXIT_NONE && r != JIT_EXIT_BAIL && b->tail && s->pc == start + b->bytes &&
	    h->pc != s->pc) {
		const struct insn *tail = &b->insn[b->n + 1];
		memcpy(c->insn, tail, b->tail * sizeof(struct insn));
		for (unsigned k = 0; k < b->tail; k++)
			c->insn[k].pc_off = (int16_t)(tail[k].pc_off - b->bytes);
		c->n = b->tail;
		c->bytes = (int16_t)(tail[b->tail - 1].pc_off + tail[b->tail - 1].len - b->bytes);
		c->tail = 0;
		exec_block(s, c, &ex);
	}
	s->store_log = NULL;

	uint64_t jpc = h->pc, jinstret = h->instret;
	if (r == JIT_EXIT_BAIL) {
		jpc += b->insn[k].pc_off;
		jinstret += k;
	}
	bool ok = ex.reason == EXIT_NONE && !ls->jit_log.overflow && !ls->exec_log.overflow &&
		  compare(ls, h, jpc, jinstret, s);
	if (!ok) {
		if (ex.reason != EXIT_NONE)
			snprintf(ls->why, sizeof(ls->why), "lockstep: the executor left with exit %s where "
				 "translated code ran on", exit_reason_name(ex.reason));
		print_block(b, k);
		fprintf(stderr, "%s\n", ls->why);
		*why = ls->why;
		return -1;
	}
	return (int)r;
}

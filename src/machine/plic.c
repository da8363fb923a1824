/*
 * The PLIC model (see plic.h). Behaviour follows the RISC-V PLIC
 * specification (riscv-plic-spec 1.0.0): interrupt gateways (section
 * "Interrupt Gateways": a source's gateway forwards one request and sends
 * no other until the handler completes it), priorities where 0 means "never
 * interrupt", per-context enables and thresholds (a context is notified
 * only by pending, enabled sources whose priority exceeds its threshold),
 * claim (returns the highest-priority pending enabled source above the
 * threshold, ties to the lowest ID, and clears its pending bit) and complete
 * (ignored unless the source is enabled for that context).
 *
 * Level-triggered gateway: while a source is not claimed, its pending bit
 * follows its input line; after a claim it stays clear until the complete,
 * when a line still high makes it pending again.
 */
#include "machine/plic.h"

#include <string.h>

#include "base/snapfile.h"

static bool bit_get(const uint32_t *w, unsigned n)
{
	return (w[n / 32] >> (n % 32)) & 1;
}

static void bit_put(uint32_t *w, unsigned n, bool v)
{
	if (v)
		w[n / 32] |= 1u << (n % 32);
	else
		w[n / 32] &= ~(1u << (n % 32));
}

/* Highest-priority source deliverable to `ctx` above its threshold, or 0. */
static unsigned plic_best(const struct plic *p, unsigned ctx)
{
	unsigned best = 0;
	uint32_t best_prio = p->threshold[ctx];
	for (unsigned w = 0; w < PLIC_WORDS; w++) {
		uint32_t cand = p->pending[w] & p->enable[ctx][w];
		while (cand) {
			unsigned src = w * 32 + (unsigned)__builtin_ctz(cand);
			cand &= cand - 1;
			if (p->priority[src] > best_prio) {
				best = src;
				best_prio = p->priority[src];
			}
		}
	}
	return best;
}

/* Recompute every context's notification; report S-mode changes. */
static void plic_update(struct plic *p)
{
	for (unsigned ctx = 0; ctx < p->nctx; ctx++) {
		bool level = plic_best(p, ctx) != 0;
		if (level == p->out[ctx])
			continue;
		p->out[ctx] = level;
		if ((ctx & 1) && p->cfg.set_ext)
			p->cfg.set_ext(p->cfg.ctx, ctx / 2, level);
	}
}

/* The gateway of one source: pending follows the line unless claimed. */
static void plic_gateway(struct plic *p, unsigned src)
{
	if (!bit_get(p->claimed, src))
		bit_put(p->pending, src, bit_get(p->level, src));
}

int plic_init(struct plic *p, const struct plic_config *cfg)
{
	memset(p, 0, sizeof(*p));
	if (cfg->nharts == 0 || cfg->nharts > BOARD_MAX_HARTS)
		return -1;
	if (pthread_mutex_init(&p->lock, NULL) != 0)
		return -1;
	p->cfg = *cfg;
	p->nctx = 2 * cfg->nharts;
	return 0;
}

void plic_destroy(struct plic *p)
{
	pthread_mutex_destroy(&p->lock);
}

void plic_set_irq(void *plic, unsigned irq, bool level)
{
	struct plic *p = plic;
	if (irq == 0 || irq >= PLIC_NSRC)
		return;
	pthread_mutex_lock(&p->lock);
	bit_put(p->level, irq, level);
	plic_gateway(p, irq);
	plic_update(p);
	pthread_mutex_unlock(&p->lock);
}

static uint32_t plic_claim(struct plic *p, unsigned ctx)
{
	unsigned src = plic_best(p, ctx);
	if (src) {
		bit_put(p->pending, src, false);
		bit_put(p->claimed, src, true);
	}
	return src;
}

static void plic_complete(struct plic *p, unsigned ctx, uint32_t src)
{
	if (src == 0 || src >= PLIC_NSRC || !bit_get(p->enable[ctx], src))
		return;
	bit_put(p->claimed, src, false);
	plic_gateway(p, src);
}

/* Source 0 and sources past the last one are hardwired to zero. */
static uint32_t valid_mask(unsigned word)
{
	uint32_t m = ~0u;
	if (word == 0)
		m &= ~1u;
	unsigned first = word * 32;
	if (first + 32 > PLIC_NSRC)
		m &= (PLIC_NSRC - first >= 32) ? ~0u : ((1u << (PLIC_NSRC - first)) - 1);
	return m;
}

static bool plic_mmio_read(void *dev, uint64_t off, unsigned size, uint64_t *value)
{
	struct plic *p = dev;
	uint32_t v = 0;
	*value = 0;
	if (size != 4 || (off & 3))
		return false;
	pthread_mutex_lock(&p->lock);
	if (off < PLIC_PENDING_BASE) {
		uint64_t src = off / 4;
		if (src < PLIC_NSRC)
			v = p->priority[src];
	} else if (off < PLIC_ENABLE_BASE) {
		uint64_t w = (off - PLIC_PENDING_BASE) / 4;
		if (w < PLIC_WORDS)
			v = p->pending[w];
	} else if (off < PLIC_CONTEXT_BASE) {
		uint64_t ctx = (off - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE;
		uint64_t w = (off - PLIC_ENABLE_BASE) % PLIC_ENABLE_STRIDE / 4;
		if (ctx < p->nctx && w < PLIC_WORDS)
			v = p->enable[ctx][w];
	} else {
		uint64_t ctx = (off - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE;
		uint64_t reg = (off - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE;
		if (ctx < p->nctx && reg == 0) {
			v = p->threshold[ctx];
		} else if (ctx < p->nctx && reg == 4) {
			v = plic_claim(p, (unsigned)ctx);
			plic_update(p);
		}
	}
	pthread_mutex_unlock(&p->lock);
	*value = v;
	return true;
}

static bool plic_mmio_write(void *dev, uint64_t off, unsigned size, uint64_t value)
{
	struct plic *p = dev;
	uint32_t v = (uint32_t)value;
	if (size != 4 || (off & 3))
		return false;
	pthread_mutex_lock(&p->lock);
	if (off < PLIC_PENDING_BASE) {
		uint64_t src = off / 4;
		if (src > 0 && src < PLIC_NSRC)
			p->priority[src] = v & PLIC_MAX_PRIORITY;
	} else if (off < PLIC_ENABLE_BASE) {
		/* Pending bits are read-only. */
	} else if (off < PLIC_CONTEXT_BASE) {
		uint64_t ctx = (off - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE;
		uint64_t w = (off - PLIC_ENABLE_BASE) % PLIC_ENABLE_STRIDE / 4;
		if (ctx < p->nctx && w < PLIC_WORDS)
			p->enable[ctx][w] = v & valid_mask((unsigned)w);
	} else {
		uint64_t ctx = (off - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE;
		uint64_t reg = (off - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE;
		if (ctx < p->nctx && reg == 0)
			p->threshold[ctx] = v & PLIC_MAX_PRIORITY;
		else if (ctx < p->nctx && reg == 4)
			plic_complete(p, (unsigned)ctx, v);
	}
	plic_update(p);
	pthread_mutex_unlock(&p->lock);
	return true;
}

const struct mmio_ops plic_mmio_ops = {
	.read = plic_mmio_read,
	.write = plic_mmio_write,
};

/* ---- snapshots (section "PLIC") ----
 * Priorities, input levels, gateway state (pending, claimed), enables and
 * thresholds of every context. The notification outputs are recomputed on
 * load and pushed to every hart, so a restored hart's external interrupt
 * line matches what the PLIC decides. */

#define PLIC_SNAP_VERSION 1

void plic_save(struct plic *p, struct snap_writer *w)
{
	pthread_mutex_lock(&p->lock);
	snap_section_begin(w, SNAP_TAG('P', 'L', 'I', 'C'), 0, PLIC_SNAP_VERSION);
	snap_put_u32(w, PLIC_NSRC);
	snap_put_u32(w, p->nctx);
	for (unsigned s = 0; s < PLIC_NSRC; s++)
		snap_put_u32(w, p->priority[s]);
	for (unsigned k = 0; k < PLIC_WORDS; k++) {
		snap_put_u32(w, p->level[k]);
		snap_put_u32(w, p->pending[k]);
		snap_put_u32(w, p->claimed[k]);
	}
	for (unsigned c = 0; c < p->nctx; c++) {
		snap_put_u32(w, p->threshold[c]);
		for (unsigned k = 0; k < PLIC_WORDS; k++)
			snap_put_u32(w, p->enable[c][k]);
	}
	pthread_mutex_unlock(&p->lock);
}

int plic_load(struct plic *p, struct snap_reader *r)
{
	if (r->version != PLIC_SNAP_VERSION) {
		snap_reader_fail(r, "PLIC state version %u is not known", r->version);
		return -1;
	}
	uint32_t nsrc = snap_get_u32(r), nctx = snap_get_u32(r);
	if (r->overrun)
		return -1;
	if (nsrc != PLIC_NSRC || nctx != p->nctx) {
		snap_reader_fail(r, "%u sources and %u contexts; this VM's PLIC has %u and %u",
				 nsrc, nctx, PLIC_NSRC, p->nctx);
		return -1;
	}
	uint32_t prio[PLIC_NSRC], level[PLIC_WORDS], pend[PLIC_WORDS], claimed[PLIC_WORDS];
	uint32_t thr[PLIC_MAX_CTX], en[PLIC_MAX_CTX][PLIC_WORDS];
	for (unsigned s = 0; s < PLIC_NSRC; s++)
		prio[s] = snap_get_u32(r);
	for (unsigned k = 0; k < PLIC_WORDS; k++) {
		level[k] = snap_get_u32(r);
		pend[k] = snap_get_u32(r);
		claimed[k] = snap_get_u32(r);
		if ((level[k] | pend[k] | claimed[k]) & ~valid_mask(k))
			snap_reader_fail(r, "interrupt bits set for sources that do not exist");
	}
	for (unsigned c = 0; c < nctx; c++) {
		thr[c] = snap_get_u32(r);
		if (thr[c] > PLIC_MAX_PRIORITY)
			snap_reader_fail(r, "context %u threshold %u", c, thr[c]);
		for (unsigned k = 0; k < PLIC_WORDS; k++) {
			en[c][k] = snap_get_u32(r);
			if (en[c][k] & ~valid_mask(k))
				snap_reader_fail(r, "context %u enables sources that do not exist", c);
		}
	}
	for (unsigned s = 0; s < PLIC_NSRC; s++)
		if (prio[s] > PLIC_MAX_PRIORITY || (s == 0 && prio[s]))
			snap_reader_fail(r, "source %u priority %u", s, prio[s]);
	if (r->overrun || r->invalid)
		return -1;
	pthread_mutex_lock(&p->lock);
	memcpy(p->priority, prio, sizeof(prio));
	memcpy(p->level, level, sizeof(level));
	memcpy(p->pending, pend, sizeof(pend));
	memcpy(p->claimed, claimed, sizeof(claimed));
	for (unsigned c = 0; c < nctx; c++) {
		p->threshold[c] = thr[c];
		memcpy(p->enable[c], en[c], sizeof(en[c]));
	}
	for (unsigned c = 0; c < p->nctx; c++) {
		p->out[c] = plic_best(p, c) != 0;
		if ((c & 1) && p->cfg.set_ext)
			p->cfg.set_ext(p->cfg.ctx, c / 2, p->out[c]);
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

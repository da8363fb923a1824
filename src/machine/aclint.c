/*
 * ACLINT MSWI and MTIMER registers (see aclint.h; RISC-V ACLINT
 * specification 1.0, sections 2 and 3, in the SiFive CLINT layout).
 * Registers are read and written as whole or half words: a 1, 2, 4 or
 * 8-byte access at any offset sees the bytes of the little-endian registers
 * it covers, so no access can fail.
 */
#include "machine/aclint.h"

#include <string.h>

#include "base/snapfile.h"

int aclint_init(struct aclint *a, const struct aclint_config *cfg)
{
	memset(a, 0, sizeof(*a));
	if (cfg->nharts == 0 || cfg->nharts > BOARD_MAX_HARTS)
		return -1;
	if (pthread_mutex_init(&a->lock, NULL) != 0)
		return -1;
	a->cfg = *cfg;
	for (unsigned h = 0; h < BOARD_MAX_HARTS; h++)
		a->mtimecmp[h] = ~0ull; /* "no timer" until software sets one */
	return 0;
}

void aclint_destroy(struct aclint *a)
{
	pthread_mutex_destroy(&a->lock);
}

/* The 8-byte-aligned doubleword containing `off`, as currently read.
 * Returns false for offsets that hold no register. */
static bool aclint_dword(struct aclint *a, uint64_t off, uint64_t *v)
{
	uint64_t n = a->cfg.nharts;
	if (off < ACLINT_MSWI_BASE + 4 * n) {
		unsigned h = (unsigned)(off / 8) * 2;
		uint64_t lo = a->msip[h];
		uint64_t hi = h + 1 < n ? a->msip[h + 1] : 0;
		*v = lo | hi << 32;
		return true;
	}
	if (off >= ACLINT_MTIMECMP_BASE && off < ACLINT_MTIMECMP_BASE + 8 * n) {
		*v = a->mtimecmp[(off - ACLINT_MTIMECMP_BASE) / 8];
		return true;
	}
	if (off >= ACLINT_MTIME && off < ACLINT_MTIME + 8) {
		*v = a->cfg.time ? a->cfg.time(a->cfg.ctx) : 0;
		return true;
	}
	return false;
}

/* Write back the doubleword at 8-byte-aligned `off`. */
static void aclint_store(struct aclint *a, uint64_t off, uint64_t dw)
{
	uint64_t n = a->cfg.nharts;
	if (off < ACLINT_MSWI_BASE + 4 * n) {
		unsigned h = (unsigned)(off / 8) * 2;
		a->msip[h] = (uint32_t)dw & 1; /* only bit 0 is writable */
		if (h + 1 < n)
			a->msip[h + 1] = (uint32_t)(dw >> 32) & 1;
	} else if (off >= ACLINT_MTIMECMP_BASE && off < ACLINT_MTIMECMP_BASE + 8 * n) {
		a->mtimecmp[(off - ACLINT_MTIMECMP_BASE) / 8] = dw;
	}
	/* mtime is read-only here: writes are ignored. */
}

static bool aclint_mmio_read(void *dev, uint64_t off, unsigned size, uint64_t *value)
{
	struct aclint *a = dev;
	uint64_t dw = 0, shift = (off & 7) * 8;
	*value = 0;
	if ((off & 7) + size > 8)
		return true; /* straddles two registers: reads as zero */
	pthread_mutex_lock(&a->lock);
	bool known = aclint_dword(a, off & ~7ull, &dw);
	pthread_mutex_unlock(&a->lock);
	if (known)
		*value = size == 8 ? dw : (dw >> shift) & ((1ull << (8 * size)) - 1);
	return true;
}

static bool aclint_mmio_write(void *dev, uint64_t off, unsigned size, uint64_t value)
{
	struct aclint *a = dev;
	uint64_t dw = 0, shift = (off & 7) * 8;
	if ((off & 7) + size > 8)
		return true;
	pthread_mutex_lock(&a->lock);
	if (aclint_dword(a, off & ~7ull, &dw)) {
		uint64_t mask = size == 8 ? ~0ull : ((1ull << (8 * size)) - 1) << shift;
		dw = (dw & ~mask) | ((value << shift) & mask);
		aclint_store(a, off & ~7ull, dw);
	}
	pthread_mutex_unlock(&a->lock);
	return true;
}

const struct mmio_ops aclint_mmio_ops = {
	.read = aclint_mmio_read,
	.write = aclint_mmio_write,
};

/* ---- snapshots (section "ACLI"): msip and mtimecmp per hart; mtime is
 * the VM's time, which the VM restores itself ---- */

#define ACLINT_SNAP_VERSION 1

void aclint_save(struct aclint *a, struct snap_writer *w)
{
	pthread_mutex_lock(&a->lock);
	snap_section_begin(w, SNAP_TAG('A', 'C', 'L', 'I'), 0, ACLINT_SNAP_VERSION);
	snap_put_u32(w, a->cfg.nharts);
	for (unsigned h = 0; h < a->cfg.nharts; h++) {
		snap_put_u32(w, a->msip[h]);
		snap_put_u64(w, a->mtimecmp[h]);
	}
	pthread_mutex_unlock(&a->lock);
}

int aclint_load(struct aclint *a, struct snap_reader *r)
{
	if (r->version != ACLINT_SNAP_VERSION) {
		snap_reader_fail(r, "ACLINT state version %u is not known", r->version);
		return -1;
	}
	uint32_t n = snap_get_u32(r);
	if (!r->overrun && n != a->cfg.nharts) {
		snap_reader_fail(r, "%u harts; this VM has %u", n, a->cfg.nharts);
		return -1;
	}
	uint32_t msip[BOARD_MAX_HARTS];
	uint64_t cmp[BOARD_MAX_HARTS];
	for (unsigned h = 0; h < n && !r->overrun; h++) {
		msip[h] = snap_get_u32(r);
		cmp[h] = snap_get_u64(r);
		if (msip[h] > 1)
			snap_reader_fail(r, "msip of hart %u is %u", h, msip[h]);
	}
	if (r->overrun || r->invalid)
		return -1;
	pthread_mutex_lock(&a->lock);
	memcpy(a->msip, msip, n * sizeof(msip[0]));
	memcpy(a->mtimecmp, cmp, n * sizeof(cmp[0]));
	pthread_mutex_unlock(&a->lock);
	return 0;
}

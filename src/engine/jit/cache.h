/*
 * The JIT's code cache: one memfd mapped twice, a writable view the
 * translator emits into and an executable view the hart runs, so no page is
 * ever writable and executable in one mapping (W^X). Bump allocation; full
 * means the whole cache is emptied (the caller drops every translation).
 *
 * System calls: memfd_create, ftruncate, two mmap (PROT_READ|PROT_WRITE and
 * PROT_READ|PROT_EXEC, both MAP_SHARED) and close at creation; at run time
 * only madvise(MADV_REMOVE) on the writable view when the cache is emptied
 * while idle (gives the pages back); munmap at destruction.
 */
#ifndef SKIFF_ENGINE_JIT_CACHE_H
#define SKIFF_ENGINE_JIT_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct code_cache {
	uint8_t *rw;      /* writable view */
	uint8_t *rx;      /* executable view of the same pages */
	size_t size, used;
	size_t high;      /* bytes ever used since the pages were last given back */
};

/* 0, or -errno. */
int code_cache_init(struct code_cache *c, size_t size);
void code_cache_destroy(struct code_cache *c);
/* Forget everything; `give_back` also returns the pages to the host. */
void code_cache_reset(struct code_cache *c, int give_back);

/* The executable address of a pointer into the writable view. */
static inline const void *code_cache_rx(const struct code_cache *c, const uint8_t *rw)
{
	return c->rx + (rw - c->rw);
}

static inline uint8_t *code_cache_rw(const struct code_cache *c, const void *rx)
{
	return c->rw + ((const uint8_t *)rx - c->rx);
}

#endif

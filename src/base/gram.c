/* Guest RAM reservation and checked access; see gram.h. */
#include "base/gram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int gram_init(struct gram *r, uint64_t base, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	if (size == 0 || (size & (GRAM_PAGE_SIZE - 1)) || base & (GRAM_PAGE_SIZE - 1))
		return -EINVAL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->host = p;
	r->base = base;
	r->size = size;
	r->npages = size >> GRAM_PAGE_SHIFT;
	r->code = calloc(r->npages, sizeof(*r->code));
	r->gen = calloc(r->npages, sizeof(*r->gen));
	if (!r->code || !r->gen) {
		gram_destroy(r);
		return -ENOMEM;
	}
	return 0;
}

void gram_destroy(struct gram *r)
{
	if (r->host)
		munmap(r->host, r->size);
	free((void *)r->code);
	free((void *)r->gen);
	memset(r, 0, sizeof(*r));
}

uint64_t gram_resident_bytes(const struct gram *r)
{
	unsigned char vec[4096];
	const uint64_t chunk = sizeof(vec) << GRAM_PAGE_SHIFT;
	uint64_t pages = 0;
	for (uint64_t off = 0; off < r->size; off += chunk) {
		uint64_t len = r->size - off < chunk ? r->size - off : chunk;
		if (mincore(r->host + off, len, vec))
			return 0;
		for (uint64_t i = 0; i < len >> GRAM_PAGE_SHIFT; i++)
			pages += vec[i] & 1;
	}
	return pages << GRAM_PAGE_SHIFT;
}

void gram_written(struct gram *r, uint64_t gpa, uint64_t len)
{
	if (len == 0 || !gram_contains(r, gpa, len))
		return;
	uint64_t first = (gpa - r->base) >> GRAM_PAGE_SHIFT;
	uint64_t last = (gpa - r->base + len - 1) >> GRAM_PAGE_SHIFT;
	for (uint64_t p = first; p <= last; p++) {
		if (atomic_load_explicit(&r->code[p], memory_order_relaxed)) {
			atomic_store_explicit(&r->code[p], 0, memory_order_relaxed);
			atomic_fetch_add_explicit(&r->gen[p], 1, memory_order_release);
		}
	}
}

int gram_read(const struct gram *r, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gram_ptr(r, gpa, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

int gram_write(struct gram *r, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gram_ptr(r, gpa, len);
	if (!p)
		return -1;
	memcpy(p, src, len);
	gram_written(r, gpa, len);
	return 0;
}

int gram_discard(struct gram *r, uint64_t gpa, uint64_t len)
{
	uint64_t start = (gpa + GRAM_PAGE_SIZE - 1) & ~(GRAM_PAGE_SIZE - 1);
	uint64_t end = (gpa + len) & ~(GRAM_PAGE_SIZE - 1);
	if (!gram_contains(r, gpa, len))
		return -1;
	if (end <= start)
		return 0;
	gram_written(r, start, end - start);
	return madvise(gram_ptr(r, start, end - start), end - start, MADV_DONTNEED) ? -1 : 0;
}

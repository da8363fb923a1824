/*
 * Reading a fuzz input as a stream of little-endian numbers: take() past
 * the end gives zero bytes, so every input, however short, drives a whole
 * run of the target's steps.
 */
#ifndef SKIFF_FUZZ_CURSOR_H
#define SKIFF_FUZZ_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct cursor {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t take(struct cursor *c, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		v |= (uint64_t)(c->n ? *c->p : 0) << (8 * i);
		if (c->n) {
			c->p++;
			c->n--;
		}
	}
	return v;
}

#endif

/*
 * XXH64; see xxh64.h. Section numbers are those of the xxHash
 * specification (xxhash_spec.md, "XXH64 algorithm description").
 * Lanes are read little-endian whatever the host's byte order.
 */
#include "xxh64.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static uint64_t rotl(uint64_t x, unsigned r)
{
	return x << r | x >> (64 - r);
}

static uint64_t le64(const uint8_t *p)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
#else
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
#endif
}

/* p is 8-byte aligned: one load even where unaligned ones are split into
 * bytes (RISC-V compilers assume they are slow). */
static uint64_t le64_aligned(const uint8_t *p)
{
	return le64(__builtin_assume_aligned(p, 8));
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Step 2: one lane into one accumulator. */
static uint64_t round64(uint64_t acc, uint64_t lane)
{
	acc += lane * P2;
	acc = rotl(acc, 31);
	return acc * P1;
}

/* Step 3: an accumulator merged into the converged value. */
static uint64_t merge(uint64_t acc, uint64_t v)
{
	acc ^= round64(0, v);
	return acc * P1 + P4;
}

static inline void stripe(uint64_t acc[4], const uint8_t *p, bool aligned)
{
	for (int i = 0; i < 4; i++)
		acc[i] = round64(acc[i], aligned ? le64_aligned(p + 8 * i) : le64(p + 8 * i));
}

/* Step 1: initialise the accumulators. */
void xxh64_init(struct xxh64 *h, uint64_t seed)
{
	memset(h, 0, sizeof(*h));
	h->seed = seed;
	h->acc[0] = seed + P1 + P2;
	h->acc[1] = seed + P2;
	h->acc[2] = seed;
	h->acc[3] = seed - P1;
}

void xxh64_update(struct xxh64 *h, const void *data, size_t n)
{
	const uint8_t *p = data;
	h->total += n;
	if (h->fill) {
		size_t take = 32 - h->fill < n ? 32 - h->fill : n;
		memcpy(h->stripe + h->fill, p, take);
		h->fill += take;
		p += take;
		n -= take;
		if (h->fill < 32)
			return;
		stripe(h->acc, h->stripe, false);
		h->fill = 0;
	}
	if (((uintptr_t)p & 7) == 0) {
		for (; n >= 32; p += 32, n -= 32)
			stripe(h->acc, p, true);
	}
	for (; n >= 32; p += 32, n -= 32)
		stripe(h->acc, p, false);
	memcpy(h->stripe, p, n);
	h->fill = n;
}

uint64_t xxh64_digest(const struct xxh64 *h)
{
	uint64_t acc;
	if (h->total >= 32) {   /* step 3: converge the four accumulators */
		const uint64_t *a = h->acc;
		acc = rotl(a[0], 1) + rotl(a[1], 7) + rotl(a[2], 12) + rotl(a[3], 18);
		for (int i = 0; i < 4; i++)
			acc = merge(acc, a[i]);
	} else {                /* a short input has no stripe */
		acc = h->seed + P5;
	}
	acc += h->total;        /* step 4 */
	const uint8_t *p = h->stripe;
	size_t n = h->fill;
	for (; n >= 8; p += 8, n -= 8) {   /* step 5: the remaining input */
		acc ^= round64(0, le64(p));
		acc = rotl(acc, 27) * P1 + P4;
	}
	if (n >= 4) {
		acc ^= (uint64_t)le32(p) * P1;
		acc = rotl(acc, 23) * P2 + P3;
		p += 4;
		n -= 4;
	}
	for (; n; p++, n--) {
		acc ^= *p * P5;
		acc = rotl(acc, 11) * P1;
	}
	acc ^= acc >> 33;       /* step 6: final mix */
	acc *= P2;
	acc ^= acc >> 29;
	acc *= P3;
	acc ^= acc >> 32;
	return acc;
}

void xxh64_hex(const struct xxh64 *h, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)xxh64_digest(h));
}

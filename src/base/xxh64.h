/*
 * XXH64, the 64-bit xxHash (the algorithm as its specification,
 * xxhash_spec.md, defines it; output equal to `xxhsum -H64`), for checking
 * copied files end to end: `skiff cp` hashes what it sends or receives and
 * skiff's guest agent hashes the file in the guest (guest-file-hash).
 * Not a cryptographic hash: it finds a lost, doubled or damaged piece of a
 * copy at about one guest instruction a byte, where SHA-256 costs the
 * guest some eighty. Shared by the host and the guest agent, which is
 * built from this file too, so it uses libc alone.
 */
#ifndef SKIFF_BASE_XXH64_H
#define SKIFF_BASE_XXH64_H

#include <stddef.h>
#include <stdint.h>

struct xxh64 {
	uint64_t acc[4];
	uint64_t total;
	uint8_t stripe[32];
	size_t fill;
	uint64_t seed;
};

void xxh64_init(struct xxh64 *h, uint64_t seed);
void xxh64_update(struct xxh64 *h, const void *data, size_t n);
uint64_t xxh64_digest(const struct xxh64 *h);
/* The digest as 16 lowercase hex digits and a NUL (xxhsum's form). */
void xxh64_hex(const struct xxh64 *h, char out[17]);

#endif

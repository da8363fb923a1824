/*
 * Sizes as people write them on a command line: a whole number with an
 * optional binary suffix K, M, G or T (any case), which may be followed by
 * "i", "B" or "iB" (2G, 2GiB, 512m, 64KB). A plain number counts in a unit
 * the caller chooses (MiB for memory, bytes for a rate).
 */
#ifndef SKIFF_BASE_SIZE_H
#define SKIFF_BASE_SIZE_H

#include <stdint.h>

/* 0 with the size in bytes in *out, or -1 when `s` is not a size or the
 * size does not fit in 64 bits. */
int size_parse(const char *s, uint64_t plain_unit, uint64_t *out);

#endif

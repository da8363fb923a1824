/*
 * Shared helpers for the differential ISA test programs (tests/isa/progs).
 * Every program prints its results as plain text, one result per line, and
 * ends with "done"; the checker runs it under qemu-riscv64 and under
 * skiff-isa-run and compares the two outputs byte for byte. Only
 * deterministic values are printed (no addresses, no counter values).
 */
#ifndef ISA_PROGS_COMMON_H
#define ISA_PROGS_COMMON_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t u64;
typedef int64_t i64;
typedef uint32_t u32;

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Integer operands that hit the usual edges: zero, one, all ones, the
 * signed extremes of 64 and 32 bits, shift amounts around 32 and 64, and
 * a few mixed bit patterns. */
static const u64 int_vals[] = {
	0x0000000000000000ull, 0x0000000000000001ull, 0xffffffffffffffffull,
	0x0000000000000002ull, 0xfffffffffffffffeull, 0x7fffffffffffffffull,
	0x8000000000000000ull, 0x8000000000000001ull, 0x000000007fffffffull,
	0x0000000080000000ull, 0x00000000ffffffffull, 0xffffffff80000000ull,
	0xffffffff7fffffffull, 0x0000000100000000ull, 0x000000000000001full,
	0x0000000000000020ull, 0x0000000000000021ull, 0x000000000000003full,
	0x0000000000000040ull, 0x0000000000000041ull, 0x123456789abcdef0ull,
	0xfedcba9876543210ull, 0x00000000deadbeefull, 0x5555555555555555ull,
	0xaaaaaaaaaaaaaaaaull, 0x0000000000000fffull, 0xfffffffffffff800ull,
	0x8000000080000000ull, 0x00ff00ff00ff00ffull, 0x0000000000000080ull,
};

static inline void done(void)
{
	puts("done");
	fflush(stdout);
}

#endif

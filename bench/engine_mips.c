/*
 * Engine throughput: guest instructions per second for three fixed loops
 * run on one hart in S-mode with no MMU (an integer loop, a memory-heavy
 * loop over 1 MiB, an FP loop). Prints one line per loop. Performance is
 * measured here, never asserted in tests.
 *
 *   build/bench/engine-mips [iterations-scale [loop-name]]
 *
 * SKIFF_ENGINE=interp|jit picks the execution tier (default: the engine's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "engine/engine.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (64ull << 20)

static uint32_t i_type(uint32_t op, uint32_t f3, unsigned rd, unsigned rs1, int32_t imm)
{
	return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t r_type(uint32_t op, uint32_t f3, uint32_t f7, unsigned rd, unsigned rs1, unsigned rs2)
{
	return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t s_type(uint32_t op, uint32_t f3, unsigned rs1, unsigned rs2, int32_t imm)
{
	uint32_t u = (uint32_t)imm;
	return ((u >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | op;
}
static uint32_t bne(unsigned rs1, unsigned rs2, int32_t off)
{
	uint32_t u = (uint32_t)off;
	return ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 |
	       1 << 12 | ((u >> 1) & 0xf) << 8 | ((u >> 11) & 1) << 7 | 0x63;
}
#define ADDI(rd, rs1, imm) i_type(0x13, 0, rd, rs1, imm)
#define XOR(rd, rs1, rs2) r_type(0x33, 4, 0, rd, rs1, rs2)
#define ADD(rd, rs1, rs2) r_type(0x33, 0, 0, rd, rs1, rs2)
#define MUL(rd, rs1, rs2) r_type(0x33, 0, 1, rd, rs1, rs2)
#define SLLI(rd, rs1, sh) i_type(0x13, 1, rd, rs1, sh)
#define SRLI(rd, rs1, sh) i_type(0x13, 5, rd, rs1, sh)
#define LD(rd, rs1, imm) i_type(0x03, 3, rd, rs1, imm)
#define SD(rs2, rs1, imm) s_type(0x23, 3, rs1, rs2, imm)
#define FADD_D(rd, rs1, rs2) r_type(0x53, 7, 0x01, rd, rs1, rs2)
#define FMUL_D(rd, rs1, rs2) r_type(0x53, 7, 0x09, rd, rs1, rs2)
#define FMADD_D(rd, rs1, rs2, rs3) ((rs3) << 27 | 1 << 25 | (rs2) << 20 | (rs1) << 15 | 7 << 12 | (rd) << 7 | 0x43)
#define ECALL 0x73u

struct loop { const char *name; uint32_t code[24]; unsigned n; unsigned body; };

int main(int argc, char **argv)
{
	long scale = argc > 1 ? atol(argv[1]) : 1;
	int32_t iters = (int32_t)(2000000 * (scale > 0 ? scale : 1));
	struct loop loops[] = {
		{ "integer", {
			/* x5 = count (set by the host), x6..x9 mixed arithmetic */
			ADD(6, 6, 5), XOR(7, 7, 6), SLLI(8, 7, 3), SRLI(9, 8, 5),
			ADD(6, 6, 9), MUL(7, 7, 6), ADDI(5, 5, -1), bne(5, 0, -28),
			ECALL }, 9, 8 },
		{ "memory", {
			/* loads and stores walking 1 MiB: x10 = base, x11 = offset */
			ADD(12, 10, 11), LD(13, 12, 0), ADDI(13, 13, 1), SD(13, 12, 0),
			LD(14, 12, 8), ADD(14, 14, 13), SD(14, 12, 8),
			ADDI(11, 11, 64), SLLI(11, 11, 44), SRLI(11, 11, 44), /* wrap at 1 MiB */
			ADDI(5, 5, -1), bne(5, 0, -44), ECALL }, 13, 12 },
		{ "fp", {
			/* f1 += f2 * f3; f4 = f4 * f5 + f1 */
			FMADD_D(1, 2, 3, 1), FMUL_D(4, 4, 5), FADD_D(4, 4, 1),
			FMADD_D(6, 1, 5, 4), ADDI(5, 5, -1), bne(5, 0, -20), ECALL }, 7, 6 },
	};
	struct gram ram;
	if (gram_init(&ram, RAM_BASE, RAM_SIZE))
		return 1;
	struct hart_config cfg = { .timebase_hz = 10000000, .engine = engine_default_tier() };
	const char *tier = getenv("SKIFF_ENGINE");
	if (tier && engine_tier_parse(tier, &cfg.engine)) {
		fprintf(stderr, "SKIFF_ENGINE: %s is not interp or jit\n", tier);
		return 2;
	}
	struct hart *h = hart_create(&ram, &cfg);
	if (!h) {
		fprintf(stderr, "cannot create the hart (engine %s)\n", engine_tier_name(cfg.engine));
		return 1;
	}
	for (size_t k = 0; k < sizeof(loops) / sizeof(loops[0]); k++) {
		struct loop *l = &loops[k];
		if (argc > 2 && strcmp(argv[2], l->name))
			continue;
		gram_write(&ram, RAM_BASE, l->code, l->n * 4);
		hart_reset(h, RAM_BASE, 0);
		hart_csr_write(h, 0x100, 3u << 13); /* FS dirty: FP on */
		hart_set_reg(h, 5, (uint64_t)iters);
		hart_set_reg(h, 10, RAM_BASE + (16u << 20));
		double t0 = clock_monotonic_s();
		struct hart_exit ex;
		do
			hart_run(h, &ex);
		while (ex.reason == EXIT_KICK);
		double dt = clock_monotonic_s() - t0;
		if (ex.reason != EXIT_SBI) {
			fprintf(stderr, "%s: unexpected exit %s\n", l->name, exit_reason_name(ex.reason));
			return 1;
		}
		double insns = (double)iters * l->body;
		printf("%-8s %6.0f MIPS  (%.0f M instructions in %.2f s)\n", l->name,
		       insns / dt / 1e6, insns / 1e6, dt);
	}
	hart_destroy(h);
	gram_destroy(&ram);
	return 0;
}

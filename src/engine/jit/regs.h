/*
 * The JIT's register convention, shared by the translator and the runtime
 * stubs. While translated code runs:
 *   rbp       the hart + HART_BIAS (so x[0..31] are 8-bit displacements)
 *   rsp       16-byte aligned, ready for calls into C
 *   rax, rcx, rdx   scratch
 *   the other eleven host registers hold eleven guest registers; the rest
 *   of the guest registers live in h->x[] and are used as memory operands.
 * The guest registers chosen are those compiled RISC-V code uses most
 * (sp, the argument registers that GCC also uses as temporaries, ra, s0,
 * s1). Mapped registers are loaded on entry and stored on every exit, and
 * the caller-saved ones around calls into C.
 */
#ifndef SKIFF_ENGINE_JIT_REGS_H
#define SKIFF_ENGINE_JIT_REGS_H

#include <stddef.h>

#include "engine/hart.h"
#include "engine/jit/x86.h"

#define HART_BIAS 128

/* Displacement of a hart field from rbp. */
#define HOFF(field) ((int32_t)offsetof(struct hart, field) - HART_BIAS)
#define XOFF(r) (HOFF(x) + 8 * (int32_t)(r))

static inline struct x86_mem hmem(int32_t off) { return x86_mem(RBP, off); }

#define JIT_MAPPED 11

/* Host register of guest register r, or -1 when it lives in memory. */
static inline int jit_host_reg(unsigned r)
{
	static const signed char map[33] = {
		[0] = -1, [1] = RSI, [2] = RBX, [3] = -1, [4] = -1, [5] = R11, [6] = -1, [7] = -1,
		[8] = R15, [9] = R10, [10] = R14, [11] = RDI, [12] = R8, [13] = R9, [14] = R13,
		[15] = R12, [16] = -1, [17] = -1, [18] = -1, [19] = -1, [20] = -1, [21] = -1,
		[22] = -1, [23] = -1, [24] = -1, [25] = -1, [26] = -1, [27] = -1, [28] = -1,
		[29] = -1, [30] = -1, [31] = -1, [32] = -1,
	};
	return r < 33 ? map[r] : -1;
}

/* The guest registers held in host registers, and which of those host
 * registers a call into C may clobber. */
static inline unsigned jit_mapped_guest(unsigned k)
{
	static const unsigned char g[JIT_MAPPED] = { 1, 2, 5, 8, 9, 10, 11, 12, 13, 14, 15 };
	return g[k];
}

static inline int jit_caller_saved(int host)
{
	return host == RSI || host == RDI || host == R8 || host == R9 || host == R10 || host == R11;
}

#endif

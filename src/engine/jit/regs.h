/*
 * The JIT's register convention, shared by the translator and the runtime
 * stubs. While translated code runs:
 *   rbp       the hart + HART_BIAS (so x[0..31] are 8-bit displacements)
 *   rsp       16-byte aligned, ready for calls into C
 *   rax, rcx, rdx   scratch
 *   rsi       h->pc: the start of the block running (JIT_PC)
 *   r11       h->instret: instructions retired before that block
 *             (JIT_INSTRET)
 *   the other nine host registers hold nine guest registers; the rest of
 *   the guest registers live in h->x[] and are used as memory operands.
 * pc and instret change at every block transition, and chained blocks run
 * on without leaving: in memory they were three read-modify-writes of the
 * hart per transition (with the countdown), each waiting on the last one's
 * store. The nine guest registers are those compiled RISC-V code uses most
 * (sp, the argument registers that GCC also allocates first as
 * temporaries, s0, s1); ra and t0, which the convention held before, are
 * rarer (ra is written by a call and read by its return).
 * A loop of one block may lend, inside itself, the host registers of
 * those of the nine it never names to registers it uses that live in
 * memory (translate.c lend_plan); it gives them back on every way out,
 * so all other code sees this map.
 * All eleven are loaded on entry and stored on every exit, and the ones in
 * caller-saved host registers around calls into C (so C sees h->pc and
 * h->instret as the executor keeps them, and what it changes is taken
 * back).
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

#define JIT_PC RSI
#define JIT_INSTRET R11

/* Host registers with a fixed meaning: nine guest registers, pc, instret. */
#define JIT_MAPPED 11

/* Host register of guest register r, or -1 when it lives in memory. */
static inline int jit_host_reg(unsigned r)
{
	static const signed char map[33] = {
		[0] = -1, [1] = -1, [2] = RBX, [3] = -1, [4] = -1, [5] = -1, [6] = -1, [7] = -1,
		[8] = R15, [9] = R10, [10] = R14, [11] = RDI, [12] = R8, [13] = R9, [14] = R13,
		[15] = R12, [16] = -1, [17] = -1, [18] = -1, [19] = -1, [20] = -1, [21] = -1,
		[22] = -1, [23] = -1, [24] = -1, [25] = -1, [26] = -1, [27] = -1, [28] = -1,
		[29] = -1, [30] = -1, [31] = -1, [32] = -1,
	};
	return r < 33 ? map[r] : -1;
}

/* Guest registers held in host registers: the first JIT_MAPPED_X of the
 * registers of fixed meaning; pc and instret are the last two. */
#define JIT_MAPPED_X (JIT_MAPPED - 2)

static inline unsigned jit_mapped_guest(unsigned k)
{
	static const unsigned char g[JIT_MAPPED_X] = { 2, 8, 9, 10, 11, 12, 13, 14, 15 };
	return g[k];
}

/* The k-th register of fixed meaning: its host register and the
 * displacement of its home in the hart. */
static inline enum x86_reg jit_mapped_host(unsigned k)
{
	if (k < JIT_MAPPED_X)
		return (enum x86_reg)jit_host_reg(jit_mapped_guest(k));
	return k == JIT_MAPPED_X ? JIT_PC : JIT_INSTRET;
}

static inline int32_t jit_mapped_home(unsigned k)
{
	if (k < JIT_MAPPED_X)
		return XOFF(jit_mapped_guest(k));
	return k == JIT_MAPPED_X ? HOFF(pc) : HOFF(instret);
}

static inline int jit_caller_saved(int host)
{
	return host == RSI || host == RDI || host == R8 || host == R9 || host == R10 || host == R11;
}

/* Store (or load) the registers of fixed meaning; only those a call into
 * C may clobber when `volatile_only`. */
static inline void jit_move_mapped(struct x86_buf *b, bool store, bool volatile_only)
{
	for (unsigned k = 0; k < JIT_MAPPED; k++) {
		enum x86_reg r = jit_mapped_host(k);
		if (volatile_only && !jit_caller_saved(r))
			continue;
		if (store)
			x86_mov_mr(b, hmem(jit_mapped_home(k)), r, 8);
		else
			x86_mov_rm(b, r, hmem(jit_mapped_home(k)));
	}
}

#endif

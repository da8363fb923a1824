/*
 * Which W-instruction results the translator must sign-extend.
 *
 * RV64's W instructions (ADDW, SLLIW, ...) produce the sign extension of a
 * 32-bit result; on x86 that is a 32-bit operation and a MOVSXD. In
 * compiled 32-bit C arithmetic the result mostly feeds other W
 * instructions, which read only the low half, so the MOVSXD is work
 * nobody looks at and one more cycle on the dependency chain. A backward
 * pass over the block finds, for every instruction, whether the upper half
 * of its result is read before the register is written again; where it is
 * not, the translator leaves the register "narrow": its low 32 bits are
 * right and its architectural value is their sign extension.
 *
 * Narrow values may only meet instructions that read the low half (W
 * instructions, narrow stores, shift amounts, left shifts by 32 or more)
 * or bitwise AND/OR/XOR, which commute with sign extension: their result
 * is narrow-exact too when every source is narrow (or an immediate). Where one source of a
 * register-register one is narrow and the other exact, the exact one may
 * hold any 64 bits (sext(a) & b is no sign extension): the translator
 * widens the narrow one first (jit_widths_widen_first) and the result is
 * exact, unless the block writes rd again before anything that may leave
 * (w->unseen: nobody sees that result's upper half, as in 7-Zip's speed
 * test, ADDW and XOR in turn on a0 and an exact a2).
 * Anything else reads every register's upper half: other instructions'
 * operands, the block's end (every register is live out), and every
 * instruction translated as a call into C or not translated at all. The
 * one other way out of a block, a load's or store's slow path, widens the
 * narrow registers first (jit_widths_step tracks which are narrow), so
 * the executor and trap handlers always see exact registers.
 */
#ifndef SKIFF_ENGINE_JIT_WIDTHS_H
#define SKIFF_ENGINE_JIT_WIDTHS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/hart.h"

struct widths {
	/* wide[k]: instruction k's result must be exact in all 64 bits. */
	bool wide[ENGINE_BLOCK_MAX];
	/* unseen[k]: instruction k is a register-register AND/OR/XOR whose
	 * rd is written again before anything that may leave translated
	 * code: its result's upper half is never seen. */
	bool unseen[ENGINE_BLOCK_MAX];
	/* Registers that may be narrow when the block starts: its own
	 * closing branch back to its start leaves them so (a loop of one
	 * block); 0 for any other block. */
	uint64_t entry;
};

/* Plan the first n instructions of b (those the translator will emit;
 * after them every register must be exact). With `loop`, the n-th
 * instruction is a conditional branch back to the block's start, whose
 * taken path keeps the registers in w->entry narrow: those the block
 * never reads in full before it writes them. Entered from another
 * block, such a register holds any 64-bit value until the block writes
 * it, which a slow path's widening would change: the translation checks
 * on that entry that each is its own low half's sign extension
 * (translate.c emit_entry_check); the branch's other paths widen them. */
void jit_widths_plan(const struct block *b, unsigned n, bool loop, struct widths *w);

/* Whether op's sign extension may be left out when its result is not
 * wide (an x86 32-bit operation gives the right low half). */
bool jit_widths_may_narrow(enum op op);

/* The narrow registers the translator sign-extends before instruction
 * k, i (given those narrow before it): a register-register AND/OR/XOR's
 * narrow source when the other is exact, unless w->unseen[k]. */
uint64_t jit_widths_widen_first(const struct widths *w, unsigned k, const struct insn *i, uint64_t narrow);

/* The narrow registers after instruction i, given those before it (less
 * jit_widths_widen_first's) and whether its result was left narrow. */
uint64_t jit_widths_step(const struct insn *i, uint64_t narrow, bool left_narrow);

#endif

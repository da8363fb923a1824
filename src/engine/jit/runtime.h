/*
 * The JIT's per-hart state and the pieces of it the translator needs: the
 * code cache, the addresses of the shared routines at the start of the
 * cache (entry, exits, slow-path thunks), host CPU features, and the
 * debugging outputs.
 */
#ifndef SKIFF_ENGINE_JIT_RUNTIME_H
#define SKIFF_ENGINE_JIT_RUNTIME_H

#include <stdio.h>

#include "engine/jit/cache.h"
#include "engine/jit/jit.h"

struct jit {
	struct code_cache cc;
	/* Shared routines, as addresses in the writable view. */
	uint8_t *enter;        /* int enter(struct hart *, const void *code) */
	uint8_t *exit;         /* eax = exit code */
	uint8_t *exit_lookup;  /* JIT_EXIT_LOOKUP */
	uint8_t *exit_deadline; /* JIT_EXIT_LOOKUP, the timer to be looked at */
	uint8_t *exit_bail;    /* rcx = block, edx = index */
	uint8_t *exit_link;    /* rcx = jump field, rdx = target pa */
	uint8_t *jc_miss;      /* jumped to (not called) when a jump-cache probe for JIT_PC missed */
	uint8_t *thunk_load;   /* rax = va, edx = size -> rax = host pointer or 0 */
	uint8_t *thunk_store;  /* rax = va, rdx = value, ecx = size -> eax = 1 done, 0 not */
	uint8_t *thunk_helper; /* rcx = x[rs1], rdx = x[rs2], h->jit_insn set -> rax 1 done, 0 not */
	uint8_t *thunk_csr;    /* rcx = x[rs1], edx = index in block, h->jit_insn set -> rax 0, 1 or 2 */
	size_t common_bytes;   /* the shared routines' size */
	/* Host features. */
	bool bmi1, bmi2, lzcnt, popcnt;
	bool fma; /* FMA3 usable (as fpu.c decides it: then its results are the host's) */
	/* Debugging. */
	FILE *dump;            /* SKIFF_JIT_DUMP */
	FILE *perfmap;         /* SKIFF_JIT_PERFMAP: /tmp/perf-PID.map */
	char *dump_buf, *perfmap_buf;  /* their stdio buffers (debug_open) */
	FILE *stats;           /* SKIFF_JIT_STATS=1: counts printed to stderr at the end */
	uint64_t entries, bails[OP_COUNT];
	/* Calls into C from translated code (counted only with stats on). */
	uint64_t load_slow, store_slow, helper_calls, csr_calls;
	bool lockstep;         /* translate for lockstep: stores via the slow path */
	struct lockstep *ls;
	uint64_t translations;
};

/* Slow paths called from the thunks. */
void *jit_load_slow(struct hart *h, uint64_t va, unsigned size);
uint64_t jit_store_slow(struct hart *h, uint64_t va, uint64_t value, unsigned size);

/* helpers.c */
uint64_t jit_insn_helper(struct hart *h, uint64_t a, uint64_t b);
bool jit_helper_covers(enum op op, bool *writes_x);
uint64_t jit_csr_helper(struct hart *h, uint64_t a, uint64_t idx);

/* Emit the shared routines at the start of an empty cache. */
int jit_emit_common(struct hart *h);

#endif

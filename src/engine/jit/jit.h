/*
 * The JIT tier's interface to the executor (exec.c). Blocks decoded by the
 * executor are translated to x86-64 once they have run jit_threshold times;
 * the executor enters a translation with jit_enter() and gets back one of
 * the exits below. Translated code chains straight to other translations
 * (a patched jump inside a page, the per-hart jump cache across pages and
 * for indirect jumps) and leaves only when it meets an instruction it does
 * not translate, a memory access it cannot finish, or an unknown target.
 *
 * On hosts other than x86-64 the JIT is compiled out: jit_available() is
 * false and no hart gets one.
 */
#ifndef SKIFF_ENGINE_JIT_JIT_H
#define SKIFF_ENGINE_JIT_JIT_H

#include "engine/hart.h"

enum jit_exit {
	/* h->pc is the next block to run (instret is up to date); when
	 * h->jit_link is set, the jump there may be patched to its
	 * translation (see jit_link). */
	JIT_EXIT_LOOKUP,
	/* Run on in the executor at h->jit_bail_block->insn[h->jit_bail_idx]:
	 * h->pc is that block's start and the instructions before that index
	 * are done but not yet counted in instret (the executor counts them,
	 * as if it had run them). */
	JIT_EXIT_BAIL,
};

/* How many bytes of code cache a hart gets by default. */
#define JIT_DEFAULT_CACHE (32u << 20)
#define JIT_DEFAULT_THRESHOLD 16

#if defined(__x86_64__)
#define JIT_AVAILABLE 1

/* Create the hart's JIT state (its code cache); 0 or -errno. */
int jit_create(struct hart *h, size_t cache_bytes);
void jit_destroy(struct hart *h);
/* Translate b for the hart's current TLB set. Returns the entry, or NULL
 * when nothing could be translated (b->jit_none is then set) or when the
 * code cache is full (then *full is set: flush and retry later). */
const void *jit_translate(struct hart *h, struct block *b, bool *full);
/* Run translated code from `code` (h->pc must be its block's start). */
enum jit_exit jit_enter(struct hart *h, const void *code);
/* Point the jump recorded in h->jit_link at `code` and forget it. */
void jit_link(struct hart *h, const void *code);
/* Drop every translation (the block cache is being emptied). */
void jit_reset(struct hart *h, bool give_back);
/* Bytes of code cache in use. */
size_t jit_bytes(const struct hart *h);
/* Blocks translated since the hart was created. */
uint64_t jit_translations(const struct hart *h);

/* Lockstep (lockstep.c): run b's translation and the executor on a shadow
 * hart, compare, and leave h as the translation left it. Returns the exit
 * as jit_enter does, or -1 with *why set on a mismatch. */
int jit_lockstep_step(struct hart *h, struct block *b, const void *code, const char **why);
int jit_lockstep_init(struct hart *h);
void jit_lockstep_fini(struct hart *h);

#else
#define JIT_AVAILABLE 0
static inline int jit_create(struct hart *h, size_t cache_bytes) { (void)h; (void)cache_bytes; return -38; }
static inline void jit_destroy(struct hart *h) { (void)h; }
static inline const void *jit_translate(struct hart *h, struct block *b, bool *full)
{
	(void)h; (void)full;
	b->jit_none = true;
	return NULL;
}
static inline enum jit_exit jit_enter(struct hart *h, const void *code) { (void)h; (void)code; return JIT_EXIT_LOOKUP; }
static inline void jit_link(struct hart *h, const void *code) { (void)h; (void)code; }
static inline void jit_reset(struct hart *h, bool give_back) { (void)h; (void)give_back; }
static inline size_t jit_bytes(const struct hart *h) { (void)h; return 0; }
static inline uint64_t jit_translations(const struct hart *h) { (void)h; return 0; }
static inline int jit_lockstep_step(struct hart *h, struct block *b, const void *code, const char **why)
{
	(void)h; (void)b; (void)code; (void)why;
	return JIT_EXIT_LOOKUP;
}
static inline int jit_lockstep_init(struct hart *h) { (void)h; return -1; }
static inline void jit_lockstep_fini(struct hart *h) { (void)h; }
#endif

#endif

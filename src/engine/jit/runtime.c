/*
 * The JIT's runtime: per-hart creation and teardown, the routines every
 * translation shares (emitted at the start of the code cache: the entry
 * trampoline, the exits back to the executor, the thunks that call the
 * memory slow paths), the slow paths themselves, linking, and the
 * debugging outputs (SKIFF_JIT_DUMP, SKIFF_JIT_PERFMAP).
 */
#include "engine/jit/runtime.h"

#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/guest_access.h"
#include "engine/jit/regs.h"

static void detect_features(struct jit *j)
{
	unsigned a, b, c, d;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		j->bmi1 = b & (1u << 3);
		j->bmi2 = b & (1u << 8);
	}
	if (__get_cpuid(1, &a, &b, &c, &d))
		j->popcnt = c & (1u << 23);
	if (__get_cpuid(0x80000001, &a, &b, &c, &d))
		j->lzcnt = c & (1u << 5); /* ABM */
	j->fma = __builtin_cpu_supports("fma");
}

static void jmp_to(struct x86_buf *b, uint8_t *target)
{
	uint8_t *f = x86_jmp32(b);
	if (f)
		x86_patch_rel32(f, target);
}

/* A call into C from a thunk: the thunk was called from aligned code, so
 * the stack is 8 off; args already in rdi, rsi, rdx, rcx. */
static void call_c(struct x86_buf *b, const void *fn)
{
	x86_alu_ri(b, ALU_SUB, RSP, 8);
	x86_mov_ri(b, RAX, (uint64_t)(uintptr_t)fn);
	x86_call_r(b, RAX);
	x86_alu_ri(b, ALU_ADD, RSP, 8);
}

int jit_emit_common(struct hart *h)
{
	struct jit *j = h->jit;
	struct x86_buf b = { j->cc.rw, j->cc.rw + j->cc.size, false };
	static const enum x86_reg saved[] = { RBP, RBX, R12, R13, R14, R15 };

	/* enter(rdi = hart, rsi = code): save the callee-saved registers,
	 * align the stack, load the mapped guest registers, jump. */
	j->enter = b.p;
	for (unsigned k = 0; k < 6; k++)
		x86_push(&b, saved[k]);
	x86_alu_ri(&b, ALU_SUB, RSP, 8);
	x86_lea(&b, RBP, x86_mem(RDI, HART_BIAS));
	x86_mov_rr(&b, RAX, RSI);
	jit_move_mapped(&b, false, false);
	x86_jmp_r(&b, RAX);

	/* exit(eax = code) */
	j->exit = b.p;
	jit_move_mapped(&b, true, false);
	x86_alu_ri(&b, ALU_ADD, RSP, 8);
	for (int k = 5; k >= 0; k--)
		x86_pop(&b, saved[k]);
	x86_ret(&b);

	j->exit_lookup = b.p;
	x86_mov_ri(&b, RAX, JIT_EXIT_LOOKUP);
	jmp_to(&b, j->exit);

	/* The deadline passed: have the executor's loop look at the timer
	 * now (a store racing with hart_poke's zeroing writes the same 0). */
	j->exit_deadline = b.p;
	x86_mov_mi(&b, hmem(HOFF(timer_countdown)), 0, 4);
	x86_mov_ri(&b, RAX, JIT_EXIT_LOOKUP);
	jmp_to(&b, j->exit);

	j->exit_bail = b.p;
	x86_mov_mr(&b, hmem(HOFF(jit_bail_block)), RCX, 8);
	x86_mov_mr(&b, hmem(HOFF(jit_bail_idx)), RDX, 4);
	x86_mov_ri(&b, RAX, JIT_EXIT_BAIL);
	jmp_to(&b, j->exit);

	j->exit_link = b.p;
	x86_mov_mr(&b, hmem(HOFF(jit_link)), RCX, 8);
	x86_mov_mr(&b, hmem(HOFF(jit_link_pa)), RDX, 8);
	x86_mov_ri(&b, RAX, JIT_EXIT_LOOKUP);
	jmp_to(&b, j->exit);

	/* jc_miss: a jump-cache probe for JIT_PC missed. On to the code
	 * jc_refill finds (an entry filled before the mappings were last
	 * flushed that still holds, or a translated block), else leave for
	 * the executor's lookup. Jumped to from translated code, whose
	 * stack is aligned for a call. */
	j->jc_miss = b.p;
	jit_move_mapped(&b, true, true);
	x86_lea(&b, RDI, x86_mem(RBP, -HART_BIAS));
	x86_mov_ri(&b, RAX, (uint64_t)(uintptr_t)jc_refill);
	x86_call_r(&b, RAX);
	jit_move_mapped(&b, false, true);
	x86_test_rr(&b, RAX, RAX);
	uint8_t *miss = x86_jcc32(&b, CC_E);
	if (miss)
		x86_patch_rel32(miss, j->exit_lookup);
	x86_jmp_r(&b, RAX);

	/* thunk_load(rax = va, edx = size): rax = host pointer or 0. */
	j->thunk_load = b.p;
	jit_move_mapped(&b, true, true);
	x86_lea(&b, RDI, x86_mem(RBP, -HART_BIAS));
	x86_mov_rr(&b, RSI, RAX);
	call_c(&b, (const void *)jit_load_slow);
	jit_move_mapped(&b, false, true);
	x86_ret(&b);

	/* thunk_store(rax = va, rdx = value, ecx = size): rax = 1 if done. */
	j->thunk_store = b.p;
	jit_move_mapped(&b, true, true);
	x86_lea(&b, RDI, x86_mem(RBP, -HART_BIAS));
	x86_mov_rr(&b, RSI, RAX);
	call_c(&b, (const void *)jit_store_slow);
	jit_move_mapped(&b, false, true);
	x86_ret(&b);

	/* thunk_helper(rcx = a, rdx = b): jit_insn_helper(h, a, b). */
	j->thunk_helper = b.p;
	jit_move_mapped(&b, true, true);
	x86_lea(&b, RDI, x86_mem(RBP, -HART_BIAS));
	x86_mov_rr(&b, RSI, RCX);
	call_c(&b, (const void *)jit_insn_helper);
	jit_move_mapped(&b, false, true);
	x86_ret(&b);

	/* thunk_csr(rcx = a, edx = index): jit_csr_helper(h, a, index). */
	j->thunk_csr = b.p;
	jit_move_mapped(&b, true, true);
	x86_lea(&b, RDI, x86_mem(RBP, -HART_BIAS));
	x86_mov_rr(&b, RSI, RCX);
	call_c(&b, (const void *)jit_csr_helper);
	jit_move_mapped(&b, false, true);
	x86_ret(&b);

	if (b.overflow)
		return -1;
	j->common_bytes = (size_t)(b.p - j->cc.rw);
	j->cc.used = (j->common_bytes + 63) & ~(size_t)63;
	if (j->cc.used > j->cc.high)
		j->cc.high = j->cc.used;
	return 0;
}

/* A debugging output, opened before the sandbox confines the vCPU
 * thread that writes it: with a buffer of our own, stdio never asks the
 * kernel for the file's block size (fstat) at the first write, a call the
 * vCPU class does not have. NULL (and no buffer) if it cannot be opened. */
static FILE *debug_open(const char *path, char **buf)
{
	enum { DEBUG_BUF = 1 << 16 };
	FILE *f = fopen(path, "a");
	*buf = f ? malloc(DEBUG_BUF) : NULL;
	if (f && (!*buf || setvbuf(f, *buf, _IOFBF, DEBUG_BUF))) {
		fclose(f);
		free(*buf);
		*buf = NULL;
		return NULL;
	}
	return f;
}

int jit_create(struct hart *h, size_t cache_bytes)
{
	struct jit *j = calloc(1, sizeof(*j));
	if (!j)
		return -12;
	int r = code_cache_init(&j->cc, cache_bytes ? cache_bytes : JIT_DEFAULT_CACHE);
	if (r) {
		free(j);
		return r;
	}
	detect_features(j);
	h->jit = j;
	if (jit_emit_common(h)) {
		jit_destroy(h);
		return -12;
	}
	const char *dump = getenv("SKIFF_JIT_DUMP");
	if (dump && *dump)
		j->dump = debug_open(dump, &j->dump_buf);
	const char *st = getenv("SKIFF_JIT_STATS");
	if (st && *st == '1')
		j->stats = stderr;
	const char *pm = getenv("SKIFF_JIT_PERFMAP");
	if (pm && *pm == '1') {
		char path[64];
		snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
		j->perfmap = debug_open(path, &j->perfmap_buf);
	}
	return 0;
}

void jit_destroy(struct hart *h)
{
	struct jit *j = h->jit;
	if (!j)
		return;
	if (j->stats) {
		fprintf(j->stats, "jit: hart %u: %llu translations, %llu entries, code cache %zu of %zu bytes used\n",
			h->cfg.hartid, (unsigned long long)j->translations, (unsigned long long)j->entries,
			j->cc.used, j->cc.size);
		fprintf(j->stats, "jit:   jump-cache misses: %llu entries of older salts kept, %llu dropped; %llu filled from the block table; %llu on an entry another pc held\n",
			(unsigned long long)h->jc_kept, (unsigned long long)h->jc_dropped,
			(unsigned long long)h->jc_found, (unsigned long long)h->jc_conflicts);
		fprintf(j->stats, "jit:   %llu instructions retired; calls into C: %llu load and %llu store slow paths (TLB misses, code pages), %llu helper, %llu CSR\n",
			(unsigned long long)h->instret, (unsigned long long)j->load_slow,
			(unsigned long long)j->store_slow, (unsigned long long)j->helper_calls,
			(unsigned long long)j->csr_calls);
		const struct mmu_stats *m = &h->mmu_stats;
		fprintf(j->stats, "jit:   satp writes %llu (%llu to the same value); whole-TLB flushes %llu, %llu keeping global entries; by cause: %llu satp, %llu SFENCE.VMA, %llu remote\n",
			(unsigned long long)m->satp_writes, (unsigned long long)m->satp_same,
			(unsigned long long)m->flush_all, (unsigned long long)m->flush_nonglobal,
			(unsigned long long)m->flush_satp, (unsigned long long)m->flush_sfence,
			(unsigned long long)m->flush_remote);
		fprintf(j->stats, "jit:   SFENCE.VMA x0,x0 %llu, x0,asid %llu, va,x0 %llu, va,asid %llu; jump cache emptied %llu, unmapped %llu\n",
			(unsigned long long)m->sfence[0], (unsigned long long)m->sfence[1],
			(unsigned long long)m->sfence[2], (unsigned long long)m->sfence[3],
			(unsigned long long)h->jc_clears, (unsigned long long)h->jc_unmaps);
		fprintf(j->stats, "jit:   page walks: %llu load, %llu store, %llu fetch; %llu to a global leaf\n",
			(unsigned long long)m->walks[ACCESS_READ], (unsigned long long)m->walks[ACCESS_WRITE],
			(unsigned long long)m->walks[ACCESS_EXEC], (unsigned long long)m->walks_global);
		for (int n = 0; n < 12; n++) {
			int best = -1;
			for (int op = 0; op < OP_COUNT; op++)
				if (j->bails[op] && (best < 0 || j->bails[op] > j->bails[best]))
					best = op;
			if (best < 0)
				break;
			fprintf(j->stats, "jit:   left for the executor at %-10s %llu times\n",
				op_name((enum op)best), (unsigned long long)j->bails[best]);
			j->bails[best] = 0;
		}
	}
	code_cache_destroy(&j->cc);
	if (j->dump)
		fclose(j->dump);
	if (j->perfmap)
		fclose(j->perfmap);
	free(j->dump_buf);
	free(j->perfmap_buf);
	free(j);
	h->jit = NULL;
}

void jit_reset(struct hart *h, bool give_back)
{
	struct jit *j = h->jit;
	code_cache_reset(&j->cc, give_back);
	jit_emit_common(h);
	h->jit_link = NULL;
	jc_clear(h);
}

uint64_t jit_translations(const struct hart *h) { return h->jit ? h->jit->translations : 0; }

/* Translations only: the shared routines are there even when empty. */
size_t jit_bytes(const struct hart *h)
{
	return h->jit ? h->jit->cc.used - ((h->jit->common_bytes + 63) & ~(size_t)63) : 0;
}

enum jit_exit jit_enter(struct hart *h, const void *code)
{
	struct jit *j = h->jit;
	int (*enter)(struct hart *, const void *) =
		(int (*)(struct hart *, const void *))code_cache_rx(&j->cc, j->enter);
	enum jit_exit r = (enum jit_exit)enter(h, code);
	if (j->stats) {
		j->entries++;
		if (r == JIT_EXIT_BAIL)
			j->bails[h->jit_bail_block->insn[h->jit_bail_idx].op]++;
	}
	return r;
}

void jit_link(struct hart *h, const void *code)
{
	x86_patch_rel32(h->jit_link, code_cache_rw(&h->jit->cc, code));
	h->jit_link = NULL;
}

/* ---- slow paths ---------------------------------------------------------- */

/* A load the inline TLB probe missed: translate (which fills the TLB) and
 * hand back the host address, or 0 to leave the access to the executor
 * (a fault, MMIO, or an access across a page boundary). */
void *jit_load_slow(struct hart *h, uint64_t va, unsigned size)
{
	if (h->jit->stats)
		h->jit->load_slow++;
	if ((va & 0xfff) + size > GRAM_PAGE_SIZE)
		return NULL;
	uint64_t pa;
	if (mmu_translate(h, va, ACCESS_READ, &pa))
		return NULL;
	return gram_ptr(h->ram, pa, size);
}

/* A store the inline probe missed (or every store, in lockstep mode): do
 * it here, noting writes to code pages; 0 leaves it to the executor. */
uint64_t jit_store_slow(struct hart *h, uint64_t va, uint64_t value, unsigned size)
{
	if (h->jit->stats)
		h->jit->store_slow++;
	if ((va & 0xfff) + size > GRAM_PAGE_SIZE)
		return 0;
	uint64_t pa;
	if (mmu_translate(h, va, ACCESS_WRITE, &pa))
		return 0;
	uint8_t *p = gram_ptr(h->ram, pa, size);
	if (!p)
		return 0;
	if (h->store_log)
		store_log_add(h->store_log, p, value, size);
	guest_copy(p, &value, size);
	uint64_t pn = (pa - h->ram->base) >> GRAM_PAGE_SHIFT;
	if (atomic_load_explicit(&h->ram->code[pn], memory_order_relaxed))
		gram_written(h->ram, pa, size);
	return 1;
}

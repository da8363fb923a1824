/*
 * Hart lifecycle and the engine's API towards the monitor (engine.h):
 * creation with its block cache, reset to the Linux boot state, register
 * access, and the calls other threads use to post interrupts and requests.
 */
#include "base/clock.h"
#include "engine/hart.h"
#include "engine/jit/jit.h"

#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>

/* The table holds at most 2 * BC_SETS blocks; the rest of a full arena is
 * blocks it dropped. A full arena empties the block cache and with it every
 * translation, which then has to earn its runs in the executor again: with
 * 8 MiB the Linux boot of the default image filled it 29 times and built
 * 1.16 M blocks (202 k translations); with 32 MiB it never fills and builds
 * 240 k (46 k translations). The arena is lazily backed and an idle hart
 * gives it back, so the size costs memory only while code runs. */
#define DEFAULT_BLOCK_CACHE (32u << 20)

bool engine_jit_available(void) { return JIT_AVAILABLE; }

/* The JIT where there is one: it is checked against the executor by the
 * same tests (lockstep, the differential ISA checks under both tiers). */
enum engine_tier engine_default_tier(void)
{
	return JIT_AVAILABLE ? ENGINE_JIT : ENGINE_INTERP;
}

int engine_tier_parse(const char *name, enum engine_tier *out)
{
	if (!strcmp(name, "interp"))
		*out = ENGINE_INTERP;
	else if (!strcmp(name, "jit"))
		*out = ENGINE_JIT;
	else
		return -1;
	return 0;
}

const char *engine_tier_name(enum engine_tier t) { return t == ENGINE_JIT ? "jit" : "interp"; }

struct hart *hart_create(struct gram *ram, const struct hart_config *cfg)
{
	if (cfg->engine == ENGINE_JIT && !JIT_AVAILABLE)
		return NULL;
	struct hart *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ram = ram;
	tlb_init(h);
	h->jc_salt = 1;
	h->woke_ns = clock_monotonic_ns();
	h->ram_host = ram->host;
	h->ram_base = ram->base;
	h->ram_gen = ram->gen;
	h->cfg = *cfg;
	if (!h->cfg.timebase_hz)
		h->cfg.timebase_hz = 10000000;
	h->bc_size = cfg->block_cache_bytes ? cfg->block_cache_bytes : DEFAULT_BLOCK_CACHE;
	/* Lazily backed: only the part of the arena in use costs memory, and
	 * an idle hart gives that back (exec.c). A boot fills most of it, 4
	 * KiB at a time from the front: on huge pages that is a fault per
	 * 2 MiB instead of one per 4 KiB (7k fewer faults per boot). Its
	 * first 2 MiB stay small: a hart that runs little code (an idle
	 * secondary hart keeps up to BC_IDLE_BYTES) holds only what it used. */
	bool huge;
	void *arena = gram_map_huge(h->bc_size, &huge);
	if (huge && arena != MAP_FAILED)
		madvise(arena, h->bc_size < GRAM_HUGE_SIZE ? h->bc_size : GRAM_HUGE_SIZE,
			MADV_NOHUGEPAGE);
	h->bc_table = calloc(2 * BC_SETS, sizeof(*h->bc_table));
	if (arena == MAP_FAILED || !h->bc_table) {
		if (arena != MAP_FAILED)
			munmap(arena, h->bc_size);
		free(h->bc_table);
		free(h);
		return NULL;
	}
	h->bc_arena = arena;
	h->jit_threshold = UINT32_MAX;
	if (cfg->engine == ENGINE_JIT) {
		/* The code cache needs room for a few translations at least. */
		if ((cfg->jit_cache_bytes && cfg->jit_cache_bytes < (1u << 20)) ||
		    jit_create(h, cfg->jit_cache_bytes) ||
		    (cfg->jit_lockstep && jit_lockstep_init(h))) {
			hart_destroy(h);
			return NULL;
		}
		h->jit_threshold = cfg->jit_threshold ? cfg->jit_threshold : JIT_DEFAULT_THRESHOLD;
	}
	hart_reset(h, 0, 0);
	return h;
}

void hart_destroy(struct hart *h)
{
	if (!h)
		return;
	jit_lockstep_fini(h);
	jit_destroy(h);
	munmap(h->bc_arena, h->bc_size);
	free(h->bc_table);
	free(h);
}

void hart_reset(struct hart *h, uint64_t entry, uint64_t arg1)
{
	memset(h->x, 0, sizeof(h->x));
	memset(h->f, 0, sizeof(h->f));
	h->x[10] = h->cfg.hartid;
	h->x[11] = arg1;
	h->pc = entry;
	h->priv = PRIV_S;
	h->fflags = h->frm = 0;
	h->status = 0;
	h->instret = 0;
	atomic_store(&h->mip, 0);
	h->stip = 0;
	h->sie = 0;
	h->stvec = h->scounteren = h->senvcfg = h->sscratch = 0;
	h->sepc = h->scause = h->stval = h->satp = 0;
	h->stimecmp = ~0ull;
	h->resv_valid = false;
	h->timer_countdown = 1;
	h->jit_deadline = 0;
	h->code_epoch = atomic_load(&h->ram->code_epoch);
	atomic_store(&h->kick, 0);
	atomic_store(&h->fence_i_done, atomic_load(&h->fence_i_req));
	atomic_store(&h->sfence_done, atomic_load(&h->sfence_req));
	hart_poke(h);
	tlb_flush_all(h);
	tlb_select(h);
	block_cache_flush(h);
}

void hart_set_irq(struct hart *h, uint64_t bits, bool level)
{
	if (level)
		atomic_fetch_or(&h->mip, bits);
	else
		atomic_fetch_and(&h->mip, ~bits);
	hart_poke(h);
}

void hart_kick(struct hart *h)
{
	atomic_store(&h->kick, 1);
	hart_poke(h);
}

/* Posts the flush to every hart first and then waits for each, so the wait
 * is the slowest hart's, not the sum. A hart outside hart_run flushes before
 * its next instruction; one inside does so within a block, and the caller
 * must not return to its guest before that (the guest may free the old page
 * tables, or jump to the code it just wrote). */
void harts_flush(struct hart *const *harts, unsigned n, enum hart_flush what)
{
	uint64_t ticket[n ? n : 1];
	for (unsigned k = 0; k < n; k++) {
		struct hart *h = harts[k];
		ticket[k] = atomic_fetch_add(what == HART_FLUSH_CODE ? &h->fence_i_req : &h->sfence_req, 1) + 1;
		hart_poke(h);
	}
	for (unsigned k = 0; k < n; k++) {
		struct hart *h = harts[k];
		_Atomic uint64_t *done = what == HART_FLUSH_CODE ? &h->fence_i_done : &h->sfence_done;
		while (atomic_load(&h->in_run) && atomic_load(done) < ticket[k])
			sched_yield();
	}
}

void hart_request_fence_i(struct hart *h) { harts_flush(&h, 1, HART_FLUSH_CODE); }
void hart_request_sfence(struct hart *h) { harts_flush(&h, 1, HART_FLUSH_TLB); }

bool hart_wakeup_pending(struct hart *h)
{
	timer_update(h);
	return ((atomic_load(&h->mip) | h->stip) & h->sie) != 0;
}

uint64_t hart_get_reg(const struct hart *h, unsigned reg) { return reg < 32 ? h->x[reg] : 0; }

void hart_set_reg(struct hart *h, unsigned reg, uint64_t value)
{
	if (reg > 0 && reg < 32)
		h->x[reg] = value;
}

uint64_t hart_get_freg(const struct hart *h, unsigned reg) { return reg < 32 ? h->f[reg] : 0; }
uint64_t hart_get_pc(const struct hart *h) { return h->pc; }
void hart_set_pc(struct hart *h, uint64_t pc) { h->pc = pc; }
uint32_t hart_get_fcsr(const struct hart *h) { return h->frm << 5 | h->fflags; }
enum priv hart_get_priv(const struct hart *h) { return h->priv; }

void hart_set_priv(struct hart *h, enum priv p)
{
	h->priv = p;
	tlb_select(h);
}

int hart_csr_read(struct hart *h, unsigned csr, uint64_t *value)
{
	uint8_t priv = h->priv;
	uint64_t fs = h->status & SSTATUS_FS;
	h->priv = PRIV_S; /* the monitor may look at everything */
	h->status |= SSTATUS_FS;
	int r = csr_read(h, csr, value);
	h->priv = priv;
	h->status = (h->status & ~SSTATUS_FS) | fs;
	return r;
}

int hart_csr_write(struct hart *h, unsigned csr, uint64_t value)
{
	uint8_t priv = h->priv;
	bool fcsr = csr <= 3;
	uint64_t fs = h->status & SSTATUS_FS;
	h->priv = PRIV_S;
	if (fcsr)
		h->status |= SSTATUS_FS;
	int r = csr_write(h, csr, value);
	h->priv = priv;
	if (fcsr)
		h->status = (h->status & ~SSTATUS_FS) | fs;
	tlb_select(h);
	return r;
}

uint64_t hart_get_timecmp(const struct hart *h) { return h->stimecmp; }

void hart_set_timecmp(struct hart *h, uint64_t value)
{
	h->stimecmp = value;
	timer_update(h);
	hart_poke(h);
}

uint64_t hart_time(const struct hart *h) { return time_now(h); }
uint64_t hart_instret(const struct hart *h) { return h->instret; }
uint64_t hart_block_cache_bytes(const struct hart *h) { return h->bc_used + jit_bytes(h); }
uint64_t hart_blocks_built(const struct hart *h) { return h->blocks_built; }
uint64_t hart_translations(const struct hart *h) { return jit_translations(h); }

const char *exit_reason_name(enum exit_reason r)
{
	static const char *const names[EXIT_REASONS] = {
		[EXIT_NONE] = "none", [EXIT_SBI] = "sbi", [EXIT_WFI] = "wfi",
		[EXIT_MMIO] = "mmio", [EXIT_KICK] = "kick",
		[EXIT_USER_ECALL] = "user_ecall", [EXIT_FATAL] = "fatal",
		[EXIT_PAUSE] = "pause",
	};
	return r < EXIT_REASONS ? names[r] : "?";
}

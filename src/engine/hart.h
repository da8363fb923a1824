/*
 * The hart's internal state, shared by the engine's own files (exec, mmu,
 * csr, hart). Nothing outside src/engine/ includes this; the monitor uses
 * engine.h.
 */
#ifndef SKIFF_ENGINE_HART_H
#define SKIFF_ENGINE_HART_H

#include "engine/decode.h"
#include "engine/engine.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* sstatus fields (privileged spec 10.1.1). */
#define SSTATUS_SIE  (1ull << 1)
#define SSTATUS_SPIE (1ull << 5)
#define SSTATUS_SPP  (1ull << 8)
#define SSTATUS_FS   (3ull << 13)
#define SSTATUS_SUM  (1ull << 18)
#define SSTATUS_MXR  (1ull << 19)
#define SSTATUS_UXL  (2ull << 32)
#define SSTATUS_SD   (1ull << 63)
#define SSTATUS_WRITABLE (SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP | SSTATUS_FS | \
			  SSTATUS_SUM | SSTATUS_MXR)

/* senvcfg fields (privileged spec 10.1.10). FIOM is kept and has no
 * effect (no I/O ordering is weaker than a fence here); CBZE enables
 * CBO.ZERO in U-mode. In S-mode CBO.ZERO is always enabled: the monitor
 * plays M-mode, and its menvcfg.CBZE reads as 1. */
#define SENVCFG_FIOM (1ull << 0)
#define SENVCFG_CBZE (1ull << 7)
#define SENVCFG_WRITABLE (SENVCFG_FIOM | SENVCFG_CBZE)

/* Exception causes (privileged spec table 10.2). */
enum cause {
	CAUSE_MISALIGNED_FETCH = 0,
	CAUSE_FETCH_ACCESS = 1,
	CAUSE_ILLEGAL = 2,
	CAUSE_BREAKPOINT = 3,
	CAUSE_MISALIGNED_LOAD = 4,
	CAUSE_LOAD_ACCESS = 5,
	CAUSE_MISALIGNED_STORE = 6,
	CAUSE_STORE_ACCESS = 7,
	CAUSE_ECALL_U = 8,
	CAUSE_ECALL_S = 9,
	CAUSE_FETCH_PAGE = 12,
	CAUSE_LOAD_PAGE = 13,
	CAUSE_STORE_PAGE = 15,
};
#define CAUSE_INTERRUPT (1ull << 63)

enum access { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC };

/* A TLB entry maps one guest virtual page to host memory: a hit is
 * `tag == va >> 12`, and the host address is `va + addend`. */
struct tlb_entry {
	uint64_t tag;
	uintptr_t addend;
};

/* Probe groups one translation may have (jit/probes.h). */
#define JIT_PROBE_GROUPS 4

/* 4096 entries per access type and set (16 MiB of 4 KiB pages): 7-Zip's
 * match finder or bzip2's sort touch several MiB at random, which 1024
 * entries (and their second way) missed every few hundred instructions;
 * a miss is a call into C. A flush empties only the indexes filled since
 * the last one (struct tlb_marks), so the size costs the frequent flushes
 * (every context switch, every short process) nothing more. */
#define TLB_BITS 12
#define TLB_SIZE (1u << TLB_BITS)
#define TLB_INVALID (~0ull)
/* In an entry's shift byte (struct tlb_set): the mapping is global. */
#define TLB_GLOBAL 0x80
#define TLB_SHIFT(s) ((s) & 0x7f)

struct tlb_set {
	struct tlb_entry r[TLB_SIZE], w[TLB_SIZE], x[TLB_SIZE];
	/* A second way for loads and stores: the entry a fill pushed out of
	 * r[]/w[] at the same index. mmu_translate looks there before it
	 * walks and swaps the two ways on a hit, so two hot pages whose
	 * numbers agree in their low TLB_BITS (which depends on where ASLR
	 * put a program's buffers) cost a call into C, not a page walk, and
	 * the one in use sits where the inline probes look. */
	struct tlb_entry r2[TLB_SIZE], w2[TLB_SIZE];
	/* log2 of the size of the page each entry came from (12, or 21, 30...
	 * for a superpage): an entry caches one 4 KiB piece of a superpage,
	 * and SFENCE.VMA of any address in that superpage must drop it. Or'ed
	 * with TLB_GLOBAL when the leaf was global (tlb_flush_nonglobal). */
	uint8_t r_shift[TLB_SIZE], w_shift[TLB_SIZE], x_shift[TLB_SIZE];
	uint8_t r2_shift[TLB_SIZE], w2_shift[TLB_SIZE];
};

/* Which TLB set applies: U-mode, S-mode, S-mode with SUM. */
enum { TLB_U, TLB_S, TLB_S_SUM, TLB_SETS };

/* A set of TLB indexes per set, as bits, with a summary word per set
 * whose bit w says bits[set][w] may be nonzero: visiting or clearing the
 * marks costs what was marked, not the TLB's size. */
struct tlb_marks {
	uint64_t sum[TLB_SETS];
	uint64_t bits[TLB_SETS][TLB_SIZE / 64];
};
_Static_assert(TLB_SIZE / 64 <= 64, "one summary word per set");

/* A decoded block: straight-line instructions from one guest-physical page
 * ending at a control transfer, a state-changing instruction, the page end
 * or ENGINE_BLOCK_MAX instructions (the first JAL x0 to a target in the
 * same page does not end it: the block goes on at the target, see
 * block_build); or a 32-bit instruction alone that
 * straddles its page's end (its lower half in the page). The last slot is
 * a sentinel, followed by the block's tail (see tail). */
#define BLOCK_TAIL_MAX 3
struct block {
	uint64_t pa;
	/* Direct successors in the same page (taken, not taken), linked once
	 * seen so that hot loops go block to block without a lookup. */
	struct block *link[2];
	uint32_t gen;      /* page generation it was decoded under */
	uint16_t n;        /* instructions, not counting the sentinel */
	/* Offset from the start of the pc after the last instruction when it
	 * falls through: the bytes covered, unless a JAL went on to a target
	 * elsewhere in the page (INSN_JUMP_ON); then possibly negative. */
	int16_t bytes;
	/* The JIT tier (jit/): times the block ran in the executor, and its
	 * translation for each TLB set (code specializes on the set), or
	 * NULL. jit_none: the first instruction is one the JIT leaves to the
	 * executor, so translating would gain nothing. */
	uint32_t heat;
	bool jit_none;
	uint8_t jit_shift; /* translated at heat jit_threshold << jit_shift (exec.c) */
	/* A block that ends in a conditional branch forward over at most
	 * BLOCK_TAIL_MAX instructions of the same page: those instructions
	 * (the fall-through path up to the branch's target), decoded after
	 * the sentinel for the JIT's if-conversion; 0 when there are none.
	 * The executor never runs them from here. */
	uint8_t tail;
	/* A block whose one instruction straddles its page's end: that
	 * instruction's upper half, which lies on the next virtual page and
	 * is compared at each run (block_straddles). */
	uint16_t hi;
	const void *jit[TLB_SETS];
	struct insn insn[];
};

/* Whether b is a straddling instruction alone (see struct block): keyed
 * and invalidated by its first page like any block, it is also only run
 * after its upper half, fetched through the current mapping, was compared
 * with b->hi (the executor's lookup, and its translation's entry). */
static inline bool block_straddles(const struct block *b)
{
	return (int64_t)(b->pa & 0xfff) + b->bytes > (int64_t)GRAM_PAGE_SIZE;
}

/* What a pending MMIO load writes back. */
enum load_kind { LK_B, LK_H, LK_W, LK_D, LK_BU, LK_HU, LK_WU, LK_FW, LK_FD, LK_NONE };

/* Stores recorded for the JIT's lockstep check: where (host address), the
 * bytes before and the value written. */
#define STORE_LOG_MAX 128
struct store_log {
	unsigned n;
	bool overflow;
	struct logged_store {
		uint8_t *host;
		uint64_t old, value;
		uint8_t size;
	} e[STORE_LOG_MAX];
};

static inline void store_log_add(struct store_log *l, void *host, uint64_t value, unsigned size)
{
	if (l->n == STORE_LOG_MAX) {
		l->overflow = true;
		return;
	}
	struct logged_store *s = &l->e[l->n++];
	s->host = host;
	s->size = (uint8_t)size;
	s->old = 0;
	__builtin_memcpy(&s->old, host, size);
	s->value = 0;
	__builtin_memcpy(&s->value, &value, size);
}

/* Jump cache: guest virtual pc -> translated code, one table per TLB set,
 * probed inline by translated code for indirect and cross-page jumps. 4096
 * entries: with 1024 the hot kernel code of a boot missed often enough to
 * cost a quarter of the trips through the dispatcher (1-hart boot: 4.0M
 * entries into translated code at 1024, 3.3M at 4096). */
#define JC_BITS 12
#define JC_SIZE (1u << JC_BITS)
#define JC_LOG 64
/* Which virtual pages (by the low bits of their number) may have entries
 * since the last clear: SFENCE.VMA of a page outside it has nothing to
 * drop, and most fenced pages are data. */
#define JC_PAGE_BITS 4096
/* An entry's key is its va XOR h->jc_salt as it was when the entry was
 * filled: translated code compares the key with pc ^ jc_salt, so changing
 * the salt makes every entry miss at once without touching one. A salt is
 * odd (a key never equals 0, the empty entry) and differs from the others
 * in use only in bits 1..JC_BITS, the bits that pick the entry: a key
 * filled under another salt matches no pc that probes its entry. */
struct jc_entry {
	uint64_t key;
	const void *code;
};
/* What an entry was filled with, to revalidate it after the salt changed
 * (jc_refill): its guest pc (0: empty) and the guest-physical
 * address of the translated block. */
struct jc_meta {
	uint64_t va, pa;
};
#define JC_SALT_MASK ((JC_SIZE - 1) << 1 | 1)

struct hart {
	/* ---- Architectural state: what a snapshot saves and restores, and
	 * what the JIT's lockstep mode compares. x[] must stay first: the
	 * JIT addresses it from the hart pointer. */
	uint64_t x[33];          /* x0..x31 and the x0 sink */
	uint64_t f[32];
	uint64_t pc;
	uint8_t priv;
	uint32_t fflags, frm;
	uint64_t status;         /* sstatus, stored bits */
	uint64_t instret;
	/* Interrupts: SSIP/SEIP posted by any thread; STIP from the timer. */
	_Atomic uint64_t mip;
	uint64_t stip;
	uint64_t sie;
	uint64_t stvec, scounteren, senvcfg, sscratch, sepc, scause, stval;
	uint64_t satp, stimecmp;
	/* LR/SC reservation (address, value at LR). */
	bool resv_valid;
	uint64_t resv_addr, resv_val;

	/* ---- Run state. */
	/* Something asynchronous to look at. The threads that set it also
	 * zero timer_countdown and jit_deadline (hart_poke), which the
	 * executor counts down and translated code compares instret with,
	 * instead of reading attention at every block transition. */
	_Atomic int attention;
	_Atomic int kick;
	/* Remote SFENCE.VMA and FENCE.I: requests and completions, and
	 * whether the hart is inside hart_run (only then must a requester
	 * wait). */
	_Atomic uint64_t sfence_req, sfence_done, fence_i_req, fence_i_done;
	_Atomic bool in_run;
	int timer_countdown;      /* blocks until the next timer check */
	/* Translated code leaves for that check once instret reaches this
	 * (set at each check, zeroed by hart_poke). */
	uint64_t jit_deadline;
	unsigned pause_spins;     /* PAUSEs since the last exit */

	/* Trap storm detection: exceptions taken with no instruction retired
	 * in between mean the guest's handler itself faults forever. */
	uint64_t storm_instret;
	unsigned storm_count;
	bool storm;
	uint64_t storm_cause, storm_tval, storm_pc;

	/* The MMIO exit in progress (a snapshot is taken between exits). */
	struct {
		uint8_t kind, rd, len;
		bool write;
		uint64_t addr, va;
	} mmio;

	struct gram *ram;
	/* Copies of ram fields the fetch path uses, to save dependent loads. */
	uint8_t *ram_host;
	uint64_t ram_base;
	_Atomic uint32_t *ram_gen;
	uint64_t code_epoch;     /* ram->code_epoch when the write TLB was last emptied */

	struct hart_config cfg;

	/* ---- Caches of translations: never saved; a restore drops them all
	 * (tlb_flush_all, block_cache_flush, which also empties the JIT's
	 * code cache and the jump cache). */
	struct tlb_entry *tlb_r, *tlb_w, *tlb_x; /* the selected set */
	unsigned tlb_set;                        /* its index in tlb[] */
	uint64_t tlb_gen;                        /* bumped by every flush */
	/* Since the last full flush, per half of the address space (user
	 * pages low, the kernel's high: a program's transparent huge page
	 * must not make its own fences search the kernel's many pieces): the
	 * largest superpage an entry came from (log2 bytes, 0: none), the
	 * virtual span those superpages cover, and the indexes filled from
	 * them. SFENCE.VMA of an address in the span looks at those indexes
	 * only, and among them only where a piece of its superpage can sit. */
	struct tlb_super {
		uint8_t shift;
		uint64_t lo, hi;
		struct tlb_marks idx;
	} tlb_super[2];
	/* Since the last full flush, the indexes filled (a superset of those
	 * holding any valid entry, of any array and way): what a flush
	 * empties. Since the last flush of any kind, the indexes filled from
	 * non-global leaves: what tlb_flush_nonglobal drops, while the global
	 * entries (the kernel's pages) stay, and stay in tlb_filled. */
	struct tlb_marks tlb_filled, tlb_local;
	/* The indexes a write entry (of either way) was filled at since the
	 * write TLB was last emptied: what tlb_flush_writes visits, each time
	 * a page becomes a code page (often, in a guest that starts programs),
	 * while tlb_filled gathers the kernel's many global read entries. */
	struct tlb_marks tlb_wfilled;
	/* Address-space changes and what follows them (statistics, printed
	 * with SKIFF_JIT_STATS; each counted on a slow path only). */
	struct mmu_stats {
		uint64_t satp_writes, satp_same;  /* satp writes; of them, to the value it held */
		uint64_t flush_all, flush_satp, flush_sfence, flush_remote; /* whole-TLB flushes, by cause */
		uint64_t flush_nonglobal;         /* flushes that kept global entries */
		uint64_t sfence[4];               /* SFENCE.VMA by (rs1 != x0) << 1 | (rs2 != x0) */
		uint64_t walks[3], walks_global;  /* page walks by access type; of them, to a G leaf */
	} mmu_stats;
	bool no_write_tlb;  /* lockstep's shadow: every store takes store_slow */
	struct store_log *store_log; /* lockstep: stores done are recorded */

	/* Decoded-block cache (exec.c): a two-way set-associative table keyed
	 * by the block's guest-physical address, into a bump arena that is
	 * emptied whole when full, and given back to the host when the hart
	 * idles (see block_cache_idle). A way with b == NULL is empty. */
	struct bc_entry {
		uint64_t pa;
		struct block *b;
	} *bc_table;               /* BC_SETS sets of two ways */
	uint8_t *bc_arena;
	size_t bc_size, bc_used;
	size_t bc_blocks;          /* blocks built since the last flush */
	/* Host CLOCK_MONOTONIC times: when the hart last left WFI (or was
	 * created) and last entered it; and since the idle check last looked
	 * (block_cache_idle), the time it slept in WFI and the time it ran. */
	uint64_t woke_ns, slept_at_ns, slept_ns, ran_ns;
	bool in_wfi;               /* the last exit was WFI: hart_run notes the wake */
	uint64_t blocks_built;     /* ever (statistics, tests) */

	/* JIT tier (jit/): NULL when the hart only executes. */
	struct jit *jit;
	uint32_t jit_threshold;    /* runs before a block is translated */
	/* How translated code left it (see jit/jit.h). */
	struct block *jit_bail_block;
	uint32_t jit_bail_idx;
	unsigned jit_link_set;
	const struct insn *jit_insn; /* the instruction jit_insn_helper runs */
	uint64_t jit_ret;          /* its integer result */
	/* Per probe group of the running translation (jit/probes.h): the
	 * TLB addend its leader found, or 1 (never an addend: those are
	 * page-aligned differences) when its members probe alone. */
	uint64_t jit_addend[JIT_PROBE_GROUPS];
	uint8_t *jit_link;         /* a jump to patch to the next block ... */
	uint64_t jit_link_pa;      /* ... if that one starts at this address */
	unsigned jc_logged;        /* jump-cache entries filled under the current salt */
	bool jc_old;               /* entries of older salts may be in the table */
	uint64_t jc_code_writes;   /* ram->code_writes when the jump cache was last emptied */
	uint16_t jc_log[JC_LOG];   /* which (set << JC_BITS | index) */
	uint64_t jc_pages[JC_PAGE_BITS / 64]; /* bit (va >> 12) % JC_PAGE_BITS, current salt */
	uint64_t jc_salt;          /* see struct jc_entry */
	/* jc_refill's outcomes (statistics, tests): entries of older salts
	 * kept and dropped, entries filled from the block table; and its
	 * calls on an entry that held another pc. */
	uint64_t jc_kept, jc_dropped, jc_found;
	uint64_t jc_conflicts;     /* misses on an entry that another pc held */
	uint64_t jc_clears, jc_unmaps; /* jc_clear and jc_unmap_all calls */
	struct jc_entry jc[TLB_SETS][JC_SIZE];
	struct jc_meta jc_meta[TLB_SETS][JC_SIZE];
	struct tlb_set tlb[TLB_SETS];
};

#define BC_SET_BITS 15
#define BC_SETS (1u << BC_SET_BITS)
/* Block transitions between two looks at the timer (stimecmp), which no
 * other thread watches for the hart. Translated code leaves for the
 * executor's loop to look, so a hart with the JIT looks less often: a
 * block transition there costs a few nanoseconds and a trip through the
 * loop far more, while 4096 transitions of translated code still take
 * tens of microseconds, against a Linux tick of milliseconds. */
#define TIMER_CHECK_BLOCKS 512
#define TIMER_CHECK_BLOCKS_JIT 4096
/* Translated code counts instructions instead (h->jit_deadline): chained
 * blocks pass 4096 jumps back in about as many instructions as this. */
#define TIMER_CHECK_INSNS_JIT 32768
#define TRAP_STORM_LIMIT 1000

/* csr.c */
int csr_read(struct hart *h, unsigned csr, uint64_t *val);
int csr_write(struct hart *h, unsigned csr, uint64_t val);
/* Enter the S-mode trap handler; sets pc. */
void trap_take(struct hart *h, uint64_t cause, uint64_t tval, uint64_t epc);
void sret(struct hart *h);
/* Highest-priority deliverable interrupt cause, or 0. */
uint64_t irq_deliverable(struct hart *h);
void timer_update(struct hart *h);
uint64_t time_now(const struct hart *h);

/* mmu.c */
/* Every entry empty: a new hart's TLB (later flushes empty what was filled). */
void tlb_init(struct hart *h);
void tlb_select(struct hart *h);
void tlb_flush_all(struct hart *h);
/* Drop every entry but those of global mappings: a satp write within a
 * translation mode, SFENCE.VMA x0, asid. */
void tlb_flush_nonglobal(struct hart *h);
void tlb_flush_va(struct hart *h, uint64_t va);
void tlb_flush_writes(struct hart *h);
/* tlb_flush_writes if a page became a code page since the last one. */
void tlb_sync_writes(struct hart *h);
/* Translate va for `acc`; on success sets *pa and returns 0, else returns the
 * exception cause. Fills the TLB when the page is RAM and may be cached. */
int mmu_translate(struct hart *h, uint64_t va, enum access acc, uint64_t *pa);

/* exec.c */
void block_cache_flush(struct hart *h);
/* Host pointer for an atomic access: 0, or an exception cause + 1. */
int amo_ptr(struct hart *h, uint64_t va, unsigned size, bool lr, void **out);
/* Zicboz CBO.ZERO of the block holding a (the gate is the caller's): 0,
 * or an exception cause + 1 (stval: a). */
int cbo_zero(struct hart *h, uint64_t a);
/* Whether CBO.ZERO may run now (SENVCFG_CBZE); otherwise it is an
 * illegal instruction. */
static inline bool cbo_zero_enabled(const struct hart *h)
{
	return h->priv != PRIV_U || (h->senvcfg & SENVCFG_CBZE);
}
/* FENCE.I, local or requested by another hart: the hart must not run code
 * older than the last write to its page. */
void code_fence(struct hart *h);
/* Empty the jump cache (translations of some code went). */
void jc_clear(struct hart *h);
/* Every mapping may have changed (a whole SFENCE.VMA, a satp write): the
 * jump cache's entries stay, but each is revalidated before its next use. */
void jc_unmap_all(struct hart *h);
/* Translated code's jump-cache probe for h->pc missed: the code for pc
 * from an entry filled before the last jc_unmap_all, if pc still maps
 * (for fetch, now) to the page it was translated from (the entry then
 * holds again), else from the block table if pc's block is translated
 * (then entered in the jump cache). NULL otherwise: the executor looks pc
 * up (and raises a fetch fault, if any). */
const void *jc_refill(struct hart *h);
/* Drop the jump-cache entries in the 2^shift-byte virtual region holding
 * va (SFENCE.VMA of one address: only the mapping of its page, or of the
 * superpage holding it, may have changed). */
void jc_drop_region(struct hart *h, uint64_t va, unsigned shift);
/* Run one block (a copy whose handlers it fills in) and return at the
 * next block boundary, or at an exit. */
void exec_block(struct hart *h, struct block *b, struct hart_exit *ex);

/* The architectural state is the start of struct hart, up to attention. */
#define HART_ARCH_BYTES offsetof(struct hart, attention)

/* Ask the hart to look at `attention` soon: set it, and zero the countdown
 * and the deadline that the executor and translated code check (a racing
 * decrement or reset can delay this by at most TIMER_CHECK_BLOCKS blocks
 * or TIMER_CHECK_INSNS_JIT instructions). */
static inline void hart_poke(struct hart *h)
{
	atomic_store_explicit(&h->attention, 1, memory_order_release);
	__atomic_store_n(&h->timer_countdown, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&h->jit_deadline, 0, __ATOMIC_RELAXED);
}

#endif

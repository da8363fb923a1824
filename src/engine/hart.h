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

#define TLB_BITS 8
#define TLB_SIZE (1u << TLB_BITS)
#define TLB_INVALID (~0ull)

struct tlb_set {
	struct tlb_entry r[TLB_SIZE], w[TLB_SIZE], x[TLB_SIZE];
};

/* Which TLB set applies: U-mode, S-mode, S-mode with SUM. */
enum { TLB_U, TLB_S, TLB_S_SUM, TLB_SETS };

/* A decoded block: straight-line instructions from one guest-physical page
 * ending at a control transfer, a state-changing instruction, the page end
 * or ENGINE_BLOCK_MAX instructions. The last slot is a sentinel. */
struct block {
	uint64_t pa;
	/* Direct successors in the same page (taken, not taken), linked once
	 * seen so that hot loops go block to block without a lookup. */
	struct block *link[2];
	uint32_t gen;      /* page generation it was decoded under */
	uint16_t n;        /* instructions, not counting the sentinel */
	uint16_t bytes;    /* guest bytes covered */
	struct insn insn[];
};

/* What a pending MMIO load writes back. */
enum load_kind { LK_B, LK_H, LK_W, LK_D, LK_BU, LK_HU, LK_WU, LK_FW, LK_FD, LK_NONE };

struct hart {
	uint64_t x[33];          /* x0..x31 and the x0 sink */
	uint64_t f[32];
	uint64_t pc;
	struct tlb_entry *tlb_r, *tlb_w, *tlb_x; /* current set */
	uint8_t priv;
	uint32_t fflags, frm;
	uint64_t status;         /* sstatus, stored bits */
	uint64_t instret;

	/* Interrupts: SSIP/SEIP posted by any thread; STIP from the timer. */
	_Atomic uint64_t mip;
	uint64_t stip;
	uint64_t sie;
	_Atomic int attention;   /* something asynchronous to look at */
	_Atomic int kick;
	/* Remote SFENCE.VMA and FENCE.I: requests and completions, and
	 * whether the hart is inside hart_run (only then must a requester
	 * wait). */
	_Atomic uint64_t sfence_req, sfence_done, fence_i_req, fence_i_done;
	_Atomic bool in_run;
	int timer_countdown;
	unsigned pause_spins;     /* PAUSEs since the last exit */

	uint64_t stvec, scounteren, senvcfg, sscratch, sepc, scause, stval;
	uint64_t satp, stimecmp;

	/* Trap storm detection: exceptions taken with no instruction retired
	 * in between mean the guest's handler itself faults forever. */
	uint64_t storm_instret;
	unsigned storm_count;
	bool storm;
	uint64_t storm_cause, storm_tval, storm_pc;

	/* LR/SC reservation (address, value at LR). */
	bool resv_valid;
	uint64_t resv_addr, resv_val;

	/* The MMIO exit in progress. */
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
	uint64_t code_epoch;     /* last ram->code_epoch seen */

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
	uint64_t bc_flushed_ns;    /* host CLOCK_MONOTONIC of the last flush */

	struct hart_config cfg;
	struct tlb_set tlb[TLB_SETS];
};

#define BC_SET_BITS 13
#define BC_SETS (1u << BC_SET_BITS)
#define TIMER_CHECK_BLOCKS 512
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
void tlb_select(struct hart *h);
void tlb_flush_all(struct hart *h);
void tlb_flush_va(struct hart *h, uint64_t va);
void tlb_flush_writes(struct hart *h);
/* Translate va for `acc`; on success sets *pa and returns 0, else returns the
 * exception cause. Fills the TLB when the page is RAM and may be cached. */
int mmu_translate(struct hart *h, uint64_t va, enum access acc, uint64_t *pa);

/* exec.c */
void block_cache_flush(struct hart *h);

#endif

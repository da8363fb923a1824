/*
 * The engine: one virtual RISC-V hart (RV64GC + Zicntr, Zihintpause, Zba,
 * Zbb, Zbs, Zicboz, Sstc; Sv39/48/57) running the guest's S and U modes. It knows
 * nothing of devices, SBI or policy: when the monitor must act, hart_run()
 * returns an exit (struct hart_exit) and the monitor completes it.
 *
 * Threading: a hart is driven by one host thread. Other threads may only call
 * hart_set_irq(), hart_kick() and hart_request_fence_i(); those are atomic and
 * the running hart notices them at its next block boundary (a block is at
 * most ENGINE_BLOCK_MAX instructions).
 */
#ifndef SKIFF_ENGINE_ENGINE_H
#define SKIFF_ENGINE_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/gram.h"

#define ENGINE_BLOCK_MAX 64

/* Zicboz: the bytes one CBO.ZERO zeroes (its cache block: a power of two,
 * naturally aligned, at most a page), which the device tree tells the
 * guest in riscv,cboz-block-size. */
#define ENGINE_CBOZ_BLOCK 64

/* Privilege levels as encoded in the spec. */
enum priv { PRIV_U = 0, PRIV_S = 1 };

/* Interrupt bits of sip/sie (privileged spec 10.1.3). */
#define IRQ_SSI (1ull << 1)
#define IRQ_STI (1ull << 5)
#define IRQ_SEI (1ull << 9)

enum exit_reason {
	EXIT_NONE,
	EXIT_SBI,        /* ECALL from S-mode; pc points at the ecall */
	EXIT_WFI,        /* WFI with nothing pending; pc is past the wfi */
	EXIT_MMIO,       /* access outside RAM; complete with hart_mmio_complete */
	EXIT_KICK,       /* hart_kick() was called */
	EXIT_USER_ECALL, /* ECALL from U-mode when hart_config.user_ecall_exits */
	EXIT_FATAL,      /* the hart cannot go on (see exit.fatal) */
	EXIT_PAUSE,      /* the hart spins in a PAUSE loop (a lock, a flag):
			  * give its host CPU to others; pc is past the pause */
	EXIT_REASONS
};
/* PAUSEs a hart executes inside one hart_run before EXIT_PAUSE. */
#define ENGINE_PAUSE_SPINS 256

struct hart_exit {
	enum exit_reason reason;
	union {
		struct {
			uint64_t addr;  /* guest-physical */
			uint64_t value; /* the value stored, for writes */
			uint8_t size;   /* 1, 2, 4 or 8 */
			bool write;
		} mmio;
		struct {
			const char *what;
			uint64_t pc, cause, tval;
		} fatal;
	};
};

/* Execution tiers: the executor (decoded blocks, threaded dispatch) is the
 * reference and runs everywhere; the JIT (x86-64 hosts only) translates hot
 * blocks to host code and leaves the rest to the executor. */
enum engine_tier { ENGINE_INTERP, ENGINE_JIT };

/* The tier a hart gets when the configuration does not name one. */
enum engine_tier engine_default_tier(void);
bool engine_jit_available(void);
/* "interp" or "jit" to a tier: 0, or -1 for anything else. */
int engine_tier_parse(const char *name, enum engine_tier *out);
const char *engine_tier_name(enum engine_tier t);

struct hart_config {
	uint32_t hartid;
	/* Differential test runner: U-mode ECALL exits instead of trapping. */
	bool user_ecall_exits;
	/* Guest time: host CLOCK_MONOTONIC minus time_base_ns, at timebase_hz. */
	uint64_t time_base_ns;
	uint64_t timebase_hz;
	/* Bytes reserved for the decoded-block cache (0: default). */
	uint64_t block_cache_bytes;
	/* Execution tier. ENGINE_JIT where it is not available makes
	 * hart_create fail. */
	enum engine_tier engine;
	/* JIT: code cache bytes (0: 32 MiB), runs of a block before it is
	 * translated (0: default), and the lockstep check (debugging: every
	 * translated block runs again in the executor on a shadow hart and
	 * must agree; the first disagreement ends the run with EXIT_FATAL). */
	uint64_t jit_cache_bytes;
	uint32_t jit_threshold;
	bool jit_lockstep;
};

struct hart;

/* Allocate and reset a hart bound to guest RAM `ram`. NULL on failure. */
struct hart *hart_create(struct gram *ram, const struct hart_config *cfg);
void hart_destroy(struct hart *h);

/* Reset to the state the Linux boot protocol expects (S-mode, satp = 0,
 * interrupts off) with pc = entry, a0 = hartid, a1 = arg1. */
void hart_reset(struct hart *h, uint64_t entry, uint64_t arg1);

/* Run until an exit. */
void hart_run(struct hart *h, struct hart_exit *exit);

/* Complete the MMIO exit just returned: `value` is the loaded value (ignored
 * for stores); `fault` turns the access into an access-fault exception. */
void hart_mmio_complete(struct hart *h, uint64_t value, bool fault);

/* From any thread. */
void hart_set_irq(struct hart *h, uint64_t bits, bool level);
void hart_kick(struct hart *h);
/* Flush decoded code (SBI remote fence.i) or translations (remote
 * sfence.vma). Each returns once the hart can no longer use old code or an
 * old translation: at once if it is not running, else after it reaches its
 * next block boundary. Never call them for the calling hart's own hart while
 * that hart is inside hart_run. */
void hart_request_fence_i(struct hart *h);
void hart_request_sfence(struct hart *h);
/* The same for several harts at once: all are asked first, then waited
 * for. */
enum hart_flush { HART_FLUSH_CODE, HART_FLUSH_TLB };
void harts_flush(struct hart *const *harts, unsigned n, enum hart_flush what);

/* Register and CSR access for the monitor (same thread as hart_run). */
uint64_t hart_get_reg(const struct hart *h, unsigned reg);
void hart_set_reg(struct hart *h, unsigned reg, uint64_t value);
uint64_t hart_get_freg(const struct hart *h, unsigned reg);
uint64_t hart_get_pc(const struct hart *h);
void hart_set_pc(struct hart *h, uint64_t pc);
uint32_t hart_get_fcsr(const struct hart *h);
enum priv hart_get_priv(const struct hart *h);
void hart_set_priv(struct hart *h, enum priv p);
/* CSR access by number with the hart's own rules (no privilege check);
 * 0 on success, -1 for a CSR the hart does not have. */
int hart_csr_read(struct hart *h, unsigned csr, uint64_t *value);
int hart_csr_write(struct hart *h, unsigned csr, uint64_t value);
/* The stimecmp deadline in guest time ticks (SBI set_timer writes it too). */
uint64_t hart_get_timecmp(const struct hart *h);
void hart_set_timecmp(struct hart *h, uint64_t value);
/* Current guest time in ticks. */
uint64_t hart_time(const struct hart *h);
uint64_t hart_instret(const struct hart *h);
/* Bytes the hart's decoded-block cache and JIT code cache take now (0
 * after it gave its memory back to the host while idle). */
uint64_t hart_block_cache_bytes(const struct hart *h);
/* Blocks decoded since the hart was created (for tests and statistics). */
uint64_t hart_blocks_built(const struct hart *h);
/* Blocks translated by the JIT since the hart was created (the same). */
uint64_t hart_translations(const struct hart *h);
/* True if an enabled interrupt is pending (a WFI should not sleep). */
bool hart_wakeup_pending(struct hart *h);

const char *exit_reason_name(enum exit_reason r);

/* Snapshots (hart_snapshot.c): the hart's architectural state as section
 * "HART" (instance = hartid), and back. A load checks every value, drops
 * all translations and decoded code, and fails (with the reason in the
 * reader) leaving the hart untouched. The hart must not be running. */
struct snap_writer;
struct snap_reader;
void hart_save(const struct hart *h, struct snap_writer *w);
int hart_load(struct hart *h, struct snap_reader *r);
/* Move the origin of guest time (a restored VM's time goes on from where
 * the snapshot left it). The hart must not be running. */
void hart_set_time_base(struct hart *h, uint64_t time_base_ns);

#endif

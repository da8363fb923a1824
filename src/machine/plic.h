/*
 * The platform-level interrupt controller, laid out like the SiFive PLIC that
 * Linux drives as "sifive,plic-1.0.0" / "riscv,plic0": sources
 * 1..BOARD_PLIC_NDEV, two contexts per hart as on QEMU's virt board (context
 * 2h is hart h's M-mode, present but wired to nothing; 2h+1 is its S-mode,
 * reported through the set_ext callback). Sources are level triggered; a
 * device drives its line with plic_set_irq() (usually through an irq_line
 * from plic_irq_line()). Thread-safe.
 */
#ifndef SKIFF_MACHINE_PLIC_H
#define SKIFF_MACHINE_PLIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine/board.h"
#include "machine/bus.h"

#define PLIC_NSRC    (BOARD_PLIC_NDEV + 1)       /* source 0 means "none" */
#define PLIC_WORDS   ((PLIC_NSRC + 31) / 32)
#define PLIC_MAX_CTX (2 * BOARD_MAX_HARTS)
#define PLIC_MAX_PRIORITY 7                      /* 3 priority bits */

/* Register layout (offsets from the PLIC base). */
#define PLIC_PRIORITY_BASE  0x0        /* + 4 * source */
#define PLIC_PENDING_BASE   0x1000     /* + 4 * word */
#define PLIC_ENABLE_BASE    0x2000     /* + 0x80 * context + 4 * word */
#define PLIC_ENABLE_STRIDE  0x80
#define PLIC_CONTEXT_BASE   0x200000   /* + 0x1000 * context */
#define PLIC_CONTEXT_STRIDE 0x1000     /* threshold at +0, claim/complete at +4 */

struct plic_config {
	unsigned nharts;  /* 1..BOARD_MAX_HARTS */
	/* Hart `hart`'s S-mode external interrupt (SEIP) changed to `level`.
	 * Called with the PLIC's lock held, from any thread: it must not call
	 * back into the PLIC (hart_set_irq(h, IRQ_SEI, level) is the intent). */
	void (*set_ext)(void *ctx, unsigned hart, bool level);
	void *ctx;
};

struct plic {
	pthread_mutex_t lock;
	struct plic_config cfg;
	unsigned nctx;
	uint32_t priority[PLIC_NSRC];
	uint32_t level[PLIC_WORDS];    /* input lines as the devices drive them */
	uint32_t pending[PLIC_WORDS];  /* gateway has forwarded a request */
	uint32_t claimed[PLIC_WORDS];  /* claimed, not yet completed */
	uint32_t enable[PLIC_MAX_CTX][PLIC_WORDS];
	uint32_t threshold[PLIC_MAX_CTX];
	bool out[PLIC_MAX_CTX];        /* last notification level per context */
};

/* 0, or -1 if nharts is out of range or the lock cannot be made. */
int plic_init(struct plic *p, const struct plic_config *cfg);
void plic_destroy(struct plic *p);

/* Drive source `irq`'s input line (signature of irq_line.set; `plic` is a
 * struct plic *). Out-of-range sources are ignored. */
void plic_set_irq(void *plic, unsigned irq, bool level);

static inline struct irq_line plic_irq_line(struct plic *p, unsigned irq)
{
	return (struct irq_line){ .set = plic_set_irq, .ctrl = p, .irq = irq };
}

/* Snapshots (section "PLIC"); a load checks every value, changes nothing
 * on failure, and tells every hart its external interrupt level. */
struct snap_writer;
struct snap_reader;
void plic_save(struct plic *p, struct snap_writer *w);
int plic_load(struct plic *p, struct snap_reader *r);

/* The MMIO interface (32-bit aligned accesses; others fault). */
extern const struct mmio_ops plic_mmio_ops;

#endif

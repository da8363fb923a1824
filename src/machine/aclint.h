/*
 * The ACLINT's machine-level parts in the CLINT-compatible layout of QEMU's
 * virt board: MSWI (one msip word per hart at +0) and MTIMER (mtimecmp per
 * hart at +0x4000, mtime at +0xbff8). skiff runs guests in S-mode and
 * implements SBI itself, so Linux never uses this device; it exists so the
 * map matches the device tree. mtime reads a time source; msip and mtimecmp
 * are stored only, since an M-mode interrupt has nowhere to go.
 */
#ifndef SKIFF_MACHINE_ACLINT_H
#define SKIFF_MACHINE_ACLINT_H

#include <pthread.h>
#include <stdint.h>

#include "machine/board.h"
#include "machine/bus.h"

#define ACLINT_MSWI_BASE     0x0000
#define ACLINT_MTIMECMP_BASE 0x4000
#define ACLINT_MTIME         0xbff8

struct aclint_config {
	unsigned nharts;                 /* 1..BOARD_MAX_HARTS */
	/* Current time in ticks of BOARD_TIMEBASE_HZ. */
	uint64_t (*time)(void *ctx);
	void *ctx;
};

struct aclint {
	pthread_mutex_t lock;
	struct aclint_config cfg;
	uint32_t msip[BOARD_MAX_HARTS];
	uint64_t mtimecmp[BOARD_MAX_HARTS];
};

/* 0, or -1 if nharts is out of range. */
int aclint_init(struct aclint *a, const struct aclint_config *cfg);
void aclint_destroy(struct aclint *a);

/* Snapshots (section "ACLI"). */
struct snap_writer;
struct snap_reader;
void aclint_save(struct aclint *a, struct snap_writer *w);
int aclint_load(struct aclint *a, struct snap_reader *r);

/* The MMIO interface: any access succeeds; unknown offsets read 0. */
extern const struct mmio_ops aclint_mmio_ops;

#endif

/*
 * The power-control register at BOARD_SYSCON_BASE, as QEMU's virt board's
 * "sifive,test0" device that Linux drives through its syscon-poweroff and
 * syscon-reboot nodes: writing 0x5555 to offset 0 powers off, 0x7777
 * reboots, and 0x3333 | code << 16 powers off reporting failure `code`.
 */
#ifndef SKIFF_MACHINE_SYSCON_H
#define SKIFF_MACHINE_SYSCON_H

#include <stdatomic.h>
#include <stdint.h>

#include "machine/bus.h"

#define SYSCON_POWEROFF 0x5555
#define SYSCON_REBOOT   0x7777
#define SYSCON_FAIL     0x3333

enum power_action {
	POWER_OFF,
	POWER_REBOOT,
	POWER_FAIL,    /* power off with an error; code in syscon.fail_code */
};

struct syscon {
	/* Called from the vCPU thread that wrote the register. */
	void (*power)(void *ctx, enum power_action a);
	void *ctx;
	_Atomic uint16_t fail_code; /* set before power(ctx, POWER_FAIL) is called */
};

void syscon_init(struct syscon *s, void (*power)(void *ctx, enum power_action a),
		 void *ctx);

/* Snapshots (section "SYSC"). */
struct snap_writer;
struct snap_reader;
void syscon_save(struct syscon *s, struct snap_writer *w);
int syscon_load(struct syscon *s, struct snap_reader *r);

/* The MMIO interface: reads are 0; writes at offset 0 act as above. */
extern const struct mmio_ops syscon_mmio_ops;

#endif

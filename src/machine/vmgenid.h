/*
 * The VM generation ID ("microsoft,vmgenid" in the device tree; Linux's
 * drivers/virt/vmgenid.c, built into the default guest's kernel): 16 bytes
 * the guest reads, and an interrupt that says they changed. A VM restored
 * from a snapshot gets a new ID; the guest's driver then hands it to
 * add_vmfork_randomness(), which reseeds the kernel's random number
 * generator at once, so that clones of one snapshot do not share their
 * random numbers. Firecracker does the same on its snapshot load.
 *
 * The register window: bytes 0..15 the ID (little-endian 128-bit value,
 * any access width), the rest reads as zero; writes are ignored. The
 * interrupt is a level the device raises with a new ID and lowers when the
 * guest reads the ID (the driver's handler copies it and acknowledges
 * nothing else).
 */
#ifndef SKIFF_MACHINE_VMGENID_H
#define SKIFF_MACHINE_VMGENID_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine/bus.h"

#define VMGENID_BYTES 16

struct vmgenid {
	pthread_mutex_t lock;
	uint8_t id[VMGENID_BYTES];
	bool raised;              /* the interrupt line */
	uint8_t next[VMGENID_BYTES];
	bool next_due;            /* `next` is drawn, not yet the guest's */
	struct irq_line irq;
};

/* A random first ID. 0, or -1 (the ID could not be drawn: see errno). */
int vmgenid_init(struct vmgenid *g, const struct irq_line *irq);
void vmgenid_destroy(struct vmgenid *g);

/* A restored VM: draw its next ID now (0, or -1: see errno), and make it
 * the guest's, with the interrupt, once the VM runs (vmgenid_publish). Until
 * then the device and its snapshot section keep the loaded ID, so a
 * restored VM saved again before it ran saves what it loaded. */
int vmgenid_prepare(struct vmgenid *g);
void vmgenid_publish(struct vmgenid *g);

/* Snapshots (section "VGID"): the ID and the line. */
struct snap_writer;
struct snap_reader;
void vmgenid_save(struct vmgenid *g, struct snap_writer *w);
int vmgenid_load(struct vmgenid *g, struct snap_reader *r);

extern const struct mmio_ops vmgenid_mmio_ops;

#endif

/*
 * A tiny virtio driver for fuzz targets that play the guest against a real
 * device model through its virtio-mmio transport (fuzz_mmio.c,
 * fuzz_console.c): guest RAM of its own, every register access through
 * virtio_mmio_ops, split virtqueues laid out as Linux lays them out, and
 * buffers made available and reaped as a driver does (virtio 1.2 2.7,
 * 4.2.3). After each notification it waits until the device's I/O thread
 * is idle, so an input replays the same way every time.
 */
#ifndef SKIFF_TESTS_FUZZ_VIRTIO_DRIVER_H
#define SKIFF_TESTS_FUZZ_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"
#include "virtio/virtio_mmio.h"

#define FD_RAM_BASE 0x80000000ull
#define FD_RAM_SIZE (1024u * 1024)
#define FD_QUEUES 8
#define FD_QSIZE 16

struct fd_queue {
	uint64_t desc, avail, used;   /* ring areas in guest RAM */
	uint64_t bufs;                /* FD_QSIZE buffers of FD_BUF bytes */
	uint16_t avail_idx, used_seen, next_desc;
	bool live;
};
#define FD_BUF 512

struct fuzz_driver {
	struct gram ram;
	struct virtio_mmio mmio;
	struct virtio_dev *dev;
	struct fd_queue q[FD_QUEUES];
	unsigned irq_raised;
	/* Set when the input wrote rings or queue registers behind the
	 * driver's back: used entries are then reaped but not judged. */
	bool untrusted;
	/* The writable bytes of the chain fd_reap() returned last. */
	uint32_t reaped_room;
};

/* Guest RAM (FD_RAM_SIZE at FD_RAM_BASE); 0 or -errno. */
int fd_init_ram(struct fuzz_driver *d);
/* Attach the transport to a device made on d->ram. */
void fd_attach(struct fuzz_driver *d, struct virtio_dev *dev);
void fd_destroy_ram(struct fuzz_driver *d);

uint32_t fd_read(struct fuzz_driver *d, uint64_t off);
void fd_write(struct fuzz_driver *d, uint64_t off, uint32_t value);

/* Reset, ACKNOWLEDGE|DRIVER, accept the device's features masked by
 * `want`, FEATURES_OK; set up queues 0..nq-1 (those the device has); then
 * DRIVER_OK. false if the device refused something. */
bool fd_bring_up(struct fuzz_driver *d, uint64_t want, unsigned nq);

/* Make one chain available on queue q: `out` (n bytes, device-readable)
 * then `in_len` device-writable bytes (at most FD_BUF each), and notify.
 * false when the queue is not live or full. */
bool fd_send(struct fuzz_driver *d, unsigned q, const void *out, size_t n, size_t in_len);
/* The next used entry of queue q: copies what the device wrote (at most
 * cap bytes) and returns its length, or -1 when none. A head this driver
 * did not make available, or a used length beyond what the chain offered,
 * aborts (the device lied), unless d->untrusted. */
long fd_reap(struct fuzz_driver *d, unsigned q, void *buf, size_t cap);
/* Wait until the device's I/O thread has nothing left to do. */
void fd_settle(struct fuzz_driver *d);

#endif

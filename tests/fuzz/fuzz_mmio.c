/*
 * libFuzzer target for the virtio-mmio transport (src/virtio/virtio_mmio.c)
 * and the common device state behind it (src/virtio/virtio.c: status,
 * feature negotiation, queue setup and reset, interrupts, notifications):
 * any sequence of register reads and writes of any size at any offset, as
 * a hostile guest driver may do them, mixed with proper driver bring-ups,
 * requests, and scribbles over guest RAM (rings included), against real
 * device models (virtio-rng, and virtio-console with three ports) and
 * their I/O threads.
 *
 * Input: byte 0 picks the device; then steps, each a byte choosing a raw
 * register write or read (offset, size, value from the input), a driver
 * bring-up with the input's feature mask, a request on a queue, a write
 * into guest RAM, or a notification. The registers that never change must
 * read back right (magic, version, device and vendor id) at any time;
 * AddressSanitizer and UBSan watch everything else.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "virtio_driver.h"
#include "virtio/console.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#define MAX_STEPS 256

static void check_identity(struct fuzz_driver *d, uint32_t device_id)
{
	if (fd_read(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC ||
	    fd_read(d, VIRTIO_MMIO_VERSION) != 2 ||
	    fd_read(d, VIRTIO_MMIO_DEVICE_ID) != device_id ||
	    fd_read(d, VIRTIO_MMIO_VENDOR_ID) != VIRTIO_MMIO_VENDOR)
		abort();
}

static void step(struct fuzz_driver *d, struct cursor *c, uint8_t what, uint32_t device_id)
{
	uint8_t buf[FD_BUF];
	switch (what & 7) {
	case 0:     /* a register write: any offset in the window, any size */
	case 1: {   /* ... or a read */
		unsigned size = 1u << (what >> 3 & 3);
		uint64_t off = what & 0x20 ? take(c, 2) & 0x1ff : (take(c, 1) * 4) & 0xff;
		if (what & 1) {
			uint64_t v;
			virtio_mmio_ops.read(&d->mmio, off, size, &v);
		} else {
			virtio_mmio_ops.write(&d->mmio, off, size, take(c, size));
			fd_settle(d);
		}
		break;
	}
	case 2:     /* a driver brings the device up */
		fd_bring_up(d, take(c, 8), FD_QUEUES);
		break;
	case 3: {   /* a request on a queue */
		unsigned q = (unsigned)take(c, 1) % FD_QUEUES;
		size_t out = (size_t)take(c, 1) % 64, in = (size_t)take(c, 1) * 2;
		for (size_t i = 0; i < out; i++)
			buf[i] = (uint8_t)take(c, 1);
		fd_send(d, q, buf, out, in);
		while (fd_reap(d, q, buf, sizeof(buf)) >= 0)
			;
		break;
	}
	case 4: {   /* the driver scribbles over guest RAM: rings, buffers */
		uint64_t gpa = FD_RAM_BASE + (take(c, 3) % (FD_QUEUES * 0x10000ull));
		size_t n = 1 + (size_t)take(c, 1) % 16;
		uint8_t b[16];
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)take(c, 1);
		gram_write(&d->ram, gpa, b, n);
		break;
	}
	case 5:     /* notify any queue number */
		fd_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, what & 0x80 ? (uint32_t)take(c, 4) :
			 (uint32_t)take(c, 1) % (FD_QUEUES + 2));
		fd_settle(d);
		break;
	case 6:     /* acknowledge interrupts */
		fd_write(d, VIRTIO_MMIO_INTERRUPT_ACK, fd_read(d, VIRTIO_MMIO_INTERRUPT_STATUS));
		break;
	case 7:
		check_identity(d, device_id);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fuzz_driver *d = malloc(sizeof(*d));
	if (!d || fd_init_ram(d))
		abort();   /* the harness itself, not guest input */
	char err[256];
	struct virtio_rng *rng = NULL;
	struct virtio_console *con = NULL;
	struct virtio_dev *dev;
	if (data[0] & 1) {
		static const struct virtio_console_port_config ports[3] = {
			{ .name = NULL }, { .name = "org.qemu.guest_agent.0" }, { .name = "data" },
		};
		con = virtio_console_create(&d->ram, ports, 3, err, sizeof(err));
		dev = con ? virtio_console_dev(con) : NULL;
	} else {
		rng = virtio_rng_create(&d->ram, err, sizeof(err));
		dev = rng ? virtio_rng_dev(rng) : NULL;
	}
	if (!dev) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	fd_attach(d, dev);
	/* Raw register writes and RAM scribbles break the driver's view of
	 * its queues: used entries are reaped, not judged. */
	d->untrusted = true;
	uint32_t device_id = dev->ops->device_id;
	struct cursor c = { data + 1, size - 1 };
	for (int n = 0; c.n && n < MAX_STEPS; n++)
		step(d, &c, (uint8_t)take(&c, 1), device_id);
	check_identity(d, device_id);
	if (con)
		virtio_console_destroy(con);
	else
		virtio_rng_destroy(rng);
	fd_destroy_ram(d);
	free(d);
	return 0;
}

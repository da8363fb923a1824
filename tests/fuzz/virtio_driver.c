/* The fuzz targets' tiny virtio driver; see virtio_driver.h. */
#include "virtio_driver.h"

#include <stdlib.h>
#include <string.h>

#include "virtio/virtio.h"

/* Each queue's areas: descriptors, available ring, used ring, then its
 * buffers, 64 KiB apart. */
#define Q_STRIDE 0x10000ull

static void on_irq(void *ctrl, unsigned irq, bool level)
{
	(void)irq;
	if (level)
		((struct fuzz_driver *)ctrl)->irq_raised++;
}

int fd_init_ram(struct fuzz_driver *d)
{
	memset(d, 0, sizeof(*d));
	return gram_init(&d->ram, FD_RAM_BASE, FD_RAM_SIZE);
}

void fd_attach(struct fuzz_driver *d, struct virtio_dev *dev)
{
	d->dev = dev;
	struct irq_line irq = { .set = on_irq, .ctrl = d, .irq = 1 };
	virtio_mmio_init(&d->mmio, dev, &irq);
	for (unsigned q = 0; q < FD_QUEUES; q++) {
		uint64_t a = FD_RAM_BASE + q * Q_STRIDE;
		d->q[q] = (struct fd_queue){ .desc = a, .avail = a + 0x1000, .used = a + 0x2000,
					     .bufs = a + 0x3000 };
	}
}

void fd_destroy_ram(struct fuzz_driver *d)
{
	gram_destroy(&d->ram);
}

uint32_t fd_read(struct fuzz_driver *d, uint64_t off)
{
	uint64_t v = 0;
	virtio_mmio_ops.read(&d->mmio, off, 4, &v);
	return (uint32_t)v;
}

void fd_write(struct fuzz_driver *d, uint64_t off, uint32_t value)
{
	virtio_mmio_ops.write(&d->mmio, off, 4, value);
}

static void put16(struct fuzz_driver *d, uint64_t gpa, uint16_t v)
{
	gram_write(&d->ram, gpa, &v, 2);
}

static uint16_t get16(struct fuzz_driver *d, uint64_t gpa)
{
	uint16_t v = 0;
	gram_read(&d->ram, gpa, &v, 2);
	return v;
}

bool fd_bring_up(struct fuzz_driver *d, uint64_t want, unsigned nq)
{
	fd_write(d, VIRTIO_MMIO_STATUS, 0);
	fd_write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	fd_write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	for (unsigned w = 0; w < 2; w++) {
		fd_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, w);
		uint32_t f = fd_read(d, VIRTIO_MMIO_DEVICE_FEATURES) & (uint32_t)(want >> (32 * w));
		fd_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, w);
		fd_write(d, VIRTIO_MMIO_DRIVER_FEATURES, f);
	}
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	fd_write(d, VIRTIO_MMIO_STATUS, st);
	if (!(fd_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		return false;
	for (unsigned q = 0; q < nq && q < FD_QUEUES; q++) {
		struct fd_queue *fq = &d->q[q];
		fq->live = false;
		fq->avail_idx = fq->used_seen = fq->next_desc = 0;
		fd_write(d, VIRTIO_MMIO_QUEUE_SEL, q);
		if (fd_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX) < FD_QSIZE)
			continue;
		gram_discard(&d->ram, fq->desc, 0x3000);
		fd_write(d, VIRTIO_MMIO_QUEUE_NUM, FD_QSIZE);
		fd_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)fq->desc);
		fd_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(fq->desc >> 32));
		fd_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)fq->avail);
		fd_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(fq->avail >> 32));
		fd_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)fq->used);
		fd_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(fq->used >> 32));
		fd_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
		fq->live = fd_read(d, VIRTIO_MMIO_QUEUE_READY) == 1;
	}
	fd_write(d, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	return (fd_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK) != 0;
}

bool fd_send(struct fuzz_driver *d, unsigned q, const void *out, size_t n, size_t in_len)
{
	if (q >= FD_QUEUES || !d->q[q].live || n > FD_BUF || in_len > FD_BUF)
		return false;
	struct fd_queue *fq = &d->q[q];
	/* Chains not reaped yet keep their descriptors (two at most each). */
	if (((uint16_t)(fq->avail_idx - fq->used_seen) + 1u) * 2 > FD_QSIZE)
		return false;
	uint16_t head = fq->next_desc, k = head;
	unsigned ndesc = (n ? 1 : 0) + (in_len ? 1 : 0);
	if (!ndesc)
		return false;
	for (unsigned i = 0; i < ndesc; i++) {
		bool is_out = n && i == 0;
		uint64_t buf = fq->bufs + (uint64_t)k * FD_BUF;
		if (is_out)
			gram_write(&d->ram, buf, out, n);
		struct { uint64_t addr; uint32_t len; uint16_t flags, next; } desc = {
			.addr = buf,
			.len = (uint32_t)(is_out ? n : in_len),
			.flags = (uint16_t)((is_out ? 0 : 2) | (i + 1 < ndesc ? 1 : 0)),
			.next = (uint16_t)((k + 1) % FD_QSIZE),
		};
		gram_write(&d->ram, fq->desc + 16ull * k, &desc, sizeof(desc));
		k = (uint16_t)((k + 1) % FD_QSIZE);
	}
	fq->next_desc = k;
	put16(d, fq->avail + 4 + 2ull * (fq->avail_idx % FD_QSIZE), head);
	fq->avail_idx++;
	put16(d, fq->avail + 2, fq->avail_idx);
	fd_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	fd_settle(d);
	return true;
}

long fd_reap(struct fuzz_driver *d, unsigned q, void *buf, size_t cap)
{
	if (q >= FD_QUEUES || !d->q[q].live)
		return -1;
	struct fd_queue *fq = &d->q[q];
	if (get16(d, fq->used + 2) == fq->used_seen)
		return -1;
	uint64_t e = fq->used + 4 + 8ull * (fq->used_seen % FD_QSIZE);
	uint32_t id = 0, len = 0;
	gram_read(&d->ram, e, &id, 4);
	gram_read(&d->ram, e + 4, &len, 4);
	fq->used_seen++;
	if (d->untrusted)
		return 0;   /* nothing in it can be trusted */
	if (id >= FD_QSIZE)
		abort();   /* not a head this driver made available */
	/* The chain's writable part: its last descriptor if it has the flag. */
	uint32_t writable = 0;
	for (uint16_t k = (uint16_t)id;; k = (uint16_t)((k + 1) % FD_QSIZE)) {
		struct { uint64_t addr; uint32_t len; uint16_t flags, next; } desc;
		gram_read(&d->ram, fq->desc + 16ull * k, &desc, sizeof(desc));
		if (desc.flags & 2) {
			writable = desc.len;
			if (len > writable)
				abort();   /* the device claims to have written more */
			size_t n = len < cap ? len : cap;
			gram_read(&d->ram, desc.addr, buf, n);
		}
		if (!(desc.flags & 1))
			break;
	}
	if (len > writable)
		abort();
	d->reaped_room = writable;
	return (long)len;
}

void fd_settle(struct fuzz_driver *d)
{
	virtio_dev_wait_idle(d->dev);
}

/*
 * A miniature virtio driver for the virtio unit tests: it plays the guest
 * against a device through the virtio-mmio registers (virtio_mmio_ops) and
 * split rings it lays out in a struct gram, the way Linux's virtio_mmio and
 * virtio_ring do. Also the tests' check counters ("N passed, N failed").
 * Header-only; every test program includes it once.
 */
#ifndef SKIFF_TESTS_VIRTIO_GUEST_H
#define SKIFF_TESTS_VIRTIO_GUEST_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/gram.h"
#include "virtio/virtio.h"
#include "virtio/virtio_mmio.h"
#include "virtio/virtq.h"

/* ---- checks ---- */

static int vt_passed, vt_failed;

#define CHECK(cond) vt_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ(a, b) vt_eq((uint64_t)(a), (uint64_t)(b), #a " == " #b, __FILE__, __LINE__)

static inline void vt_check(int ok, const char *what, const char *file, int line)
{
	if (ok) {
		vt_passed++;
	} else {
		vt_failed++;
		printf("FAIL %s:%d: %s\n", file, line, what);
	}
}

static inline void vt_eq(uint64_t a, uint64_t b, const char *what, const char *file, int line)
{
	if (a == b) {
		vt_passed++;
	} else {
		vt_failed++;
		printf("FAIL %s:%d: %s (0x%" PRIx64 " != 0x%" PRIx64 ")\n", file, line, what, a, b);
	}
}

static inline int vt_report(void)
{
	printf("%d passed, %d failed\n", vt_passed, vt_failed);
	/* A program that checked nothing has not shown anything works. */
	return vt_failed || !vt_passed ? 1 : 0;
}

/* ---- the guest ---- */

#define VG_RAM_BASE 0x80000000ull
#define VG_RAM_SIZE (16ull << 20)

struct vg_queue {
	uint16_t size;
	uint64_t desc, avail, used;     /* guest-physical */
	uint16_t next_desc;             /* simple allocator: descriptors in order */
	uint16_t avail_idx;             /* driver's shadow of avail->idx */
	uint16_t last_used;
};

struct vguest {
	struct gram ram;
	struct virtio_mmio t;
	struct virtio_dev *dev;
	uint64_t brk;                   /* bump allocator in guest RAM */
	_Atomic int irq_level;
	_Atomic int irq_rises;
	struct vg_queue q[VIRTIO_MAX_QUEUES];
};

static inline void vg_irq(void *ctrl, unsigned irq, bool level)
{
	(void)irq;
	struct vguest *g = ctrl;
	if (level && !atomic_load(&g->irq_level))
		atomic_fetch_add(&g->irq_rises, 1);
	atomic_store(&g->irq_level, level);
}

/* RAM only; attach a device with vg_attach. */
static inline int vg_init(struct vguest *g)
{
	memset(g, 0, sizeof(*g));
	if (gram_init(&g->ram, VG_RAM_BASE, VG_RAM_SIZE))
		return -1;
	g->brk = VG_RAM_BASE + 0x10000;
	return 0;
}

static inline void vg_attach(struct vguest *g, struct virtio_dev *dev)
{
	struct irq_line line = { .set = vg_irq, .ctrl = g, .irq = 1 };
	g->dev = dev;
	dev->quiet = true;
	virtio_mmio_init(&g->t, dev, &line);
	atomic_store(&g->irq_level, 0);
	atomic_store(&g->irq_rises, 0);
	memset(g->q, 0, sizeof(g->q));
}

static inline void vg_fini(struct vguest *g)
{
	gram_destroy(&g->ram);
}

static inline uint64_t vg_alloc(struct vguest *g, uint64_t len, uint64_t align)
{
	g->brk = (g->brk + align - 1) & ~(align - 1);
	uint64_t a = g->brk;
	g->brk += len;
	if (g->brk > VG_RAM_BASE + VG_RAM_SIZE) {
		fprintf(stderr, "test guest out of RAM\n");
		exit(2);
	}
	memset(gram_ptr(&g->ram, a, len), 0, len);
	return a;
}

static inline void *vg_host(struct vguest *g, uint64_t gpa)
{
	return gram_ptr(&g->ram, gpa, 1);
}

static inline uint32_t vg_r32(struct vguest *g, uint64_t off)
{
	uint64_t v = 0;
	if (!virtio_mmio_ops.read(&g->t, off, 4, &v))
		return 0xdeadbeef;
	return (uint32_t)v;
}

static inline void vg_w32(struct vguest *g, uint64_t off, uint32_t v)
{
	virtio_mmio_ops.write(&g->t, off, 4, v);
}

static inline uint32_t vg_status(struct vguest *g)
{
	return vg_r32(g, VIRTIO_MMIO_STATUS);
}

static inline uint64_t vg_device_features(struct vguest *g)
{
	vg_w32(g, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = vg_r32(g, VIRTIO_MMIO_DEVICE_FEATURES);
	vg_w32(g, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = vg_r32(g, VIRTIO_MMIO_DEVICE_FEATURES);
	return lo | hi << 32;
}

/* Reset, ACKNOWLEDGE, DRIVER, write features, FEATURES_OK (3.1.1). Returns
 * true if the device kept FEATURES_OK. */
static inline bool vg_negotiate(struct vguest *g, uint64_t features)
{
	vg_w32(g, VIRTIO_MMIO_STATUS, 0);
	vg_w32(g, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	vg_w32(g, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vg_w32(g, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vg_w32(g, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	vg_w32(g, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vg_w32(g, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	vg_w32(g, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		   VIRTIO_STATUS_FEATURES_OK);
	return vg_status(g) & VIRTIO_STATUS_FEATURES_OK;
}

static inline void vg_driver_ok(struct vguest *g)
{
	vg_w32(g, VIRTIO_MMIO_STATUS, vg_status(g) | VIRTIO_STATUS_DRIVER_OK);
}

/* Lay out and program queue q with `size` entries; QueueReady = 1. */
static inline void vg_queue_setup(struct vguest *g, unsigned q, uint16_t size)
{
	struct vg_queue *vq = &g->q[q];
	memset(vq, 0, sizeof(*vq));
	vq->size = size;
	vq->desc = vg_alloc(g, 16ull * size, 16);
	vq->avail = vg_alloc(g, 6 + 2ull * size, 2);
	vq->used = vg_alloc(g, 6 + 8ull * size, 4);
	vg_w32(g, VIRTIO_MMIO_QUEUE_SEL, q);
	vg_w32(g, VIRTIO_MMIO_QUEUE_NUM, size);
	vg_w32(g, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vq->desc);
	vg_w32(g, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(vq->desc >> 32));
	vg_w32(g, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)vq->avail);
	vg_w32(g, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(vq->avail >> 32));
	vg_w32(g, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)vq->used);
	vg_w32(g, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(vq->used >> 32));
	vg_w32(g, VIRTIO_MMIO_QUEUE_READY, 1);
}

static inline struct virtq_desc *vg_desc(struct vguest *g, unsigned q, unsigned i)
{
	return (struct virtq_desc *)vg_host(g, g->q[q].desc + 16ull * i);
}

static inline uint16_t *vg_avail(struct vguest *g, unsigned q)
{
	return (uint16_t *)vg_host(g, g->q[q].avail);   /* [0] flags [1] idx [2..] ring */
}

static inline uint16_t *vg_used_event(struct vguest *g, unsigned q)
{
	return vg_avail(g, q) + 2 + g->q[q].size;
}

static inline uint16_t vg_used_idx(struct vguest *g, unsigned q)
{
	return __atomic_load_n((uint16_t *)vg_host(g, g->q[q].used + 2), __ATOMIC_ACQUIRE);
}

static inline uint16_t vg_used_flags(struct vguest *g, unsigned q)
{
	return __atomic_load_n((uint16_t *)vg_host(g, g->q[q].used), __ATOMIC_ACQUIRE);
}

static inline uint16_t vg_avail_event(struct vguest *g, unsigned q)
{
	return __atomic_load_n((uint16_t *)vg_host(g, g->q[q].used + 4 + 8ull * g->q[q].size),
			       __ATOMIC_ACQUIRE);
}

/* Publish descriptor chain `head` in the available ring (no notify). */
static inline void vg_publish(struct vguest *g, unsigned q, uint16_t head)
{
	struct vg_queue *vq = &g->q[q];
	uint16_t *a = vg_avail(g, q);
	a[2 + (vq->avail_idx & (vq->size - 1))] = head;
	vq->avail_idx++;
	__atomic_store_n(&a[1], vq->avail_idx, __ATOMIC_RELEASE);
}

static inline void vg_notify(struct vguest *g, unsigned q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vg_w32(g, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

struct vg_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Build a chain from segs (readable first) in the queue's descriptor table,
 * or in an indirect table when `indirect`. Returns the head index. */
static inline uint16_t vg_chain(struct vguest *g, unsigned q, const struct vg_seg *segs,
				unsigned n, bool indirect)
{
	struct vg_queue *vq = &g->q[q];
	if (indirect) {
		uint64_t table = vg_alloc(g, 16ull * n, 16);
		struct virtq_desc *t = vg_host(g, table);
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = segs[i].gpa;
			t[i].len = segs[i].len;
			t[i].flags = (segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				     (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			t[i].next = (uint16_t)(i + 1);
		}
		uint16_t head = vq->next_desc;
		vq->next_desc = (uint16_t)((vq->next_desc + 1) % vq->size);
		struct virtq_desc *d = vg_desc(g, q, head);
		d->addr = table;
		d->len = 16 * n;
		d->flags = VIRTQ_DESC_F_INDIRECT;
		d->next = 0;
		return head;
	}
	uint16_t head = vq->next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = vq->next_desc;
		vq->next_desc = (uint16_t)((vq->next_desc + 1) % vq->size);
		struct virtq_desc *d = vg_desc(g, q, idx);
		d->addr = segs[i].gpa;
		d->len = segs[i].len;
		d->flags = (segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
			   (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		d->next = vq->next_desc;
	}
	return head;
}

static inline uint16_t vg_submit(struct vguest *g, unsigned q, const struct vg_seg *segs,
				 unsigned n, bool indirect)
{
	uint16_t head = vg_chain(g, q, segs, n, indirect);
	vg_publish(g, q, head);
	vg_notify(g, q);
	return head;
}

static inline void vg_sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* Wait (up to ~3 s) for the next used entry. true with id/len filled. */
static inline bool vg_wait_used(struct vguest *g, unsigned q, uint32_t *id, uint32_t *len)
{
	struct vg_queue *vq = &g->q[q];
	for (int i = 0; i < 30000; i++) {
		if (vg_used_idx(g, q) != vq->last_used) {
			uint32_t *e = vg_host(g, vq->used + 4 + 8ull * (vq->last_used & (vq->size - 1)));
			if (id)
				*id = e[0];
			if (len)
				*len = e[1];
			vq->last_used++;
			return true;
		}
		vg_sleep_us(100);
	}
	return false;
}

/* Wait (up to ~3 s) for a condition polled by fn. */
static inline bool vg_wait(bool (*fn)(struct vguest *g), struct vguest *g)
{
	for (int i = 0; i < 30000; i++) {
		if (fn(g))
			return true;
		vg_sleep_us(100);
	}
	return false;
}

static inline bool vg_needs_reset(struct vguest *g)
{
	return vg_status(g) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

/* Wait until the device's I/O thread has done all it was asked to before
 * now: what it did not do by then, it will not do (no fixed wait). */
static inline void vg_settle(struct vguest *g)
{
	virtio_dev_wait_idle(g->dev);
}

#endif

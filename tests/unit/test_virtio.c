/*
 * Unit tests for the virtio foundation: the virtio-mmio transport
 * (src/virtio/virtio_mmio.c), the device core and its I/O thread
 * (virtio.c) and the split virtqueue (virtq.c). A test guest (virtio_guest.h)
 * drives an "echo" device, which copies each request's readable bytes into
 * its writable part, through registers and rings in a struct gram: feature
 * negotiation, queue setup, requests (direct and indirect), used ring
 * contents, interrupts and their suppression (NO_INTERRUPT, EVENT_IDX),
 * config space, reset; then hostile rings (loops, indices out of range, bad
 * indirect tables, buffers outside RAM, ...) which must each put the device
 * in DEVICE_NEEDS_RESET and nothing worse; and the virtq core on its own.
 */
#include "virtio_guest.h"

#define ECHO_ID 0x2a
#define ECHO_F_TEST 0
#define ECHO_QSIZE 16

struct echo {
	struct virtio_dev dev;
	uint8_t config[16];
	_Atomic int resets;
};

static uint32_t echo_req(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	uint8_t buf[4096];
	size_t n = req->out_len < sizeof(buf) ? (size_t)req->out_len : sizeof(buf);
	n = virtq_req_read(req, 0, buf, n);
	return (uint32_t)virtq_req_write(req, 0, buf, n);
}

static void echo_process(struct virtio_dev *dev, struct virtq *vq)
{
	virtio_dev_serve(dev, vq, echo_req);
}

static bool echo_cfg_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *v)
{
	struct echo *e = (struct echo *)dev;
	*v = virtio_config_get(e->config, sizeof(e->config), off, size);
	return true;
}

static bool echo_cfg_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t v)
{
	struct echo *e = (struct echo *)dev;
	if (off == 8 && size == 1) {
		e->config[8] = (uint8_t)v;
		virtio_dev_config_changed(dev);
	}
	return true;
}

static void echo_reset(struct virtio_dev *dev)
{
	atomic_fetch_add(&((struct echo *)dev)->resets, 1);
}

static const struct virtio_dev_ops echo_ops = {
	.name = "echo",
	.device_id = ECHO_ID,
	.config_read = echo_cfg_read,
	.config_write = echo_cfg_write,
	.queue_process = echo_process,
	.reset = echo_reset,
};

static struct echo *echo_new(struct vguest *g)
{
	struct echo *e = calloc(1, sizeof(*e));
	char err[200];
	uint16_t sizes[2] = { ECHO_QSIZE, ECHO_QSIZE };
	if (virtio_dev_init(&e->dev, &echo_ops, &g->ram, 1ull << ECHO_F_TEST, 2, sizes,
			    err, sizeof(err)) ||
	    virtio_dev_start(&e->dev, err, sizeof(err))) {
		fprintf(stderr, "echo: %s\n", err);
		exit(2);
	}
	for (int i = 0; i < 16; i++)
		e->config[i] = (uint8_t)(0x10 + i);
	vg_attach(g, &e->dev);
	return e;
}

static void echo_free(struct echo *e)
{
	virtio_dev_fini(&e->dev);
	free(e);
}

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_INDIRECT (1ull << VIRTIO_F_RING_INDIRECT_DESC)
#define F_EVENT_IDX (1ull << VIRTIO_F_RING_EVENT_IDX)

/* Negotiate, set up queue 0 (and 1), DRIVER_OK. */
static void echo_up(struct vguest *g, uint64_t features)
{
	CHECK(vg_negotiate(g, features));
	vg_queue_setup(g, 0, ECHO_QSIZE);
	vg_queue_setup(g, 1, 8);
	vg_driver_ok(g);
}

static void test_registers(void)
{
	struct vguest g;
	vg_init(&g);
	struct echo *e = echo_new(&g);

	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_VERSION), 2);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_DEVICE_ID), ECHO_ID);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	uint64_t f = vg_device_features(&g);
	CHECK(f & F_V1);
	CHECK(f & F_INDIRECT);
	CHECK(f & F_EVENT_IDX);
	CHECK(f & (1ull << ECHO_F_TEST));
	vg_w32(&g, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	vg_w32(&g, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_NUM_MAX), ECHO_QSIZE);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_READY), 0);
	vg_w32(&g, VIRTIO_MMIO_QUEUE_SEL, 2);   /* no such queue */
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	vg_w32(&g, VIRTIO_MMIO_QUEUE_READY, 1); /* ignored */
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_READY), 0);
	vg_w32(&g, VIRTIO_MMIO_QUEUE_NOTIFY, 7); /* ignored */
	vg_w32(&g, VIRTIO_MMIO_SHM_SEL, 0);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);

	/* Control registers: 32-bit aligned accesses only. */
	uint64_t v;
	CHECK(!virtio_mmio_ops.read(&g.t, VIRTIO_MMIO_MAGIC_VALUE, 2, &v));
	CHECK(!virtio_mmio_ops.read(&g.t, VIRTIO_MMIO_MAGIC_VALUE + 1, 4, &v));
	CHECK(!virtio_mmio_ops.read(&g.t, VIRTIO_MMIO_MAGIC_VALUE, 8, &v));
	CHECK(!virtio_mmio_ops.write(&g.t, VIRTIO_MMIO_STATUS, 1, 1));
	CHECK_EQ(vg_status(&g), 0);

	/* Config space at 0x100, any width; past its end reads 0. */
	CHECK(virtio_mmio_ops.read(&g.t, 0x100, 1, &v));
	CHECK_EQ(v, 0x10);
	CHECK(virtio_mmio_ops.read(&g.t, 0x102, 2, &v));
	CHECK_EQ(v, 0x1312);
	CHECK(virtio_mmio_ops.read(&g.t, 0x104, 4, &v));
	CHECK_EQ(v, 0x17161514);
	CHECK(virtio_mmio_ops.read(&g.t, 0x108, 8, &v));
	CHECK_EQ(v, 0x1f1e1d1c1b1a1918ull);
	CHECK(virtio_mmio_ops.read(&g.t, 0x10e, 4, &v));
	CHECK_EQ(v, 0);
	CHECK(virtio_mmio_ops.read(&g.t, 0xffc, 4, &v));
	CHECK_EQ(v, 0);

	/* A config write that changes the space bumps ConfigGeneration; a
	 * change notification only goes out after DRIVER_OK. */
	uint32_t gen = vg_r32(&g, VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_mmio_ops.write(&g.t, 0x108, 1, 0xaa);
	CHECK(vg_r32(&g, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	echo_up(&g, F_V1);
	virtio_mmio_ops.write(&g.t, 0x108, 1, 0xbb);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_CONFIG);
	CHECK_EQ(atomic_load(&g.irq_level), 1);
	vg_w32(&g, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_CONFIG);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CHECK_EQ(atomic_load(&g.irq_level), 0);

	echo_free(e);
	vg_fini(&g);
}

static void test_negotiation(void)
{
	struct vguest g;
	vg_init(&g);
	struct echo *e = echo_new(&g);

	/* Legacy drivers (no VERSION_1) are refused. */
	CHECK(!vg_negotiate(&g, 1ull << ECHO_F_TEST));
	/* A feature that was not offered is refused. */
	CHECK(!vg_negotiate(&g, F_V1 | (1ull << 5)));
	/* DRIVER_OK without FEATURES_OK: the device fails. */
	vg_driver_ok(&g);
	CHECK(!(vg_status(&g) & VIRTIO_STATUS_DRIVER_OK));
	CHECK(vg_needs_reset(&g));
	/* Reset clears it. */
	int resets = atomic_load(&e->resets);
	vg_w32(&g, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(vg_status(&g), 0);
	CHECK_EQ(atomic_load(&e->resets), resets + 1);
	/* Good set. */
	CHECK(vg_negotiate(&g, F_V1 | F_EVENT_IDX | (1ull << ECHO_F_TEST)));
	CHECK_EQ(e->dev.driver_features, F_V1 | F_EVENT_IDX | (1ull << ECHO_F_TEST));
	/* Feature writes after FEATURES_OK are ignored. */
	vg_w32(&g, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vg_w32(&g, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	CHECK_EQ(e->dev.driver_features, F_V1 | F_EVENT_IDX | (1ull << ECHO_F_TEST));
	/* The driver cannot clear status bits without a reset. */
	vg_w32(&g, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	CHECK(vg_status(&g) & VIRTIO_STATUS_FEATURES_OK);
	vg_driver_ok(&g);
	CHECK(vg_status(&g) & VIRTIO_STATUS_DRIVER_OK);
	CHECK(!vg_needs_reset(&g));

	echo_free(e);
	vg_fini(&g);
}

/* One echo round trip on queue q: returns true if it came back right. */
static bool echo_roundtrip(struct vguest *g, unsigned q, bool indirect, unsigned nseg)
{
	uint64_t out = vg_alloc(g, 256, 8), in = vg_alloc(g, 256, 8);
	uint8_t *po = vg_host(g, out), *pi = vg_host(g, in);
	for (int i = 0; i < 256; i++)
		po[i] = (uint8_t)(i * 7 + q);
	memset(pi, 0, 256);
	struct vg_seg segs[8];
	unsigned n = 0;
	/* Readable part split in nseg pieces; writable part in two. */
	for (unsigned k = 0; k < nseg; k++)
		segs[n++] = (struct vg_seg){ out + k * (256 / nseg), 256 / nseg, false };
	segs[n++] = (struct vg_seg){ in, 100, true };
	segs[n++] = (struct vg_seg){ in + 100, 156, true };
	uint16_t head = vg_submit(g, q, segs, n, indirect);
	uint32_t id = 0, len = 0;
	if (!vg_wait_used(g, q, &id, &len))
		return false;
	return id == head && len == 256 / nseg * nseg && !memcmp(po, pi, len);
}

static void test_requests(void)
{
	struct vguest g;
	vg_init(&g);
	struct echo *e = echo_new(&g);
	echo_up(&g, F_V1 | F_INDIRECT);

	CHECK(vg_r32(&g, VIRTIO_MMIO_QUEUE_READY) == 0 || 1);
	vg_w32(&g, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_READY), 1);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_DESC_LOW), (uint32_t)g.q[0].desc);

	CHECK(echo_roundtrip(&g, 0, false, 1));
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_USED);
	CHECK_EQ(atomic_load(&g.irq_level), 1);
	vg_w32(&g, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_USED);
	CHECK_EQ(atomic_load(&g.irq_level), 0);
	CHECK(echo_roundtrip(&g, 0, false, 4));
	CHECK(echo_roundtrip(&g, 0, true, 4));
	CHECK(echo_roundtrip(&g, 1, true, 2));
	CHECK(echo_roundtrip(&g, 1, false, 2));
	/* Many more than the queue size, so indices wrap. */
	bool all = true;
	for (int i = 0; i < 3 * ECHO_QSIZE; i++)
		all &= echo_roundtrip(&g, 0, i & 1, 1 + (i % 3));
	CHECK(all);
	/* A batch: several chains published, one notify. */
	uint64_t bufs = vg_alloc(&g, 8 * 64, 8);
	uint16_t heads[6];
	for (int i = 0; i < 6; i++) {
		struct vg_seg s[2] = { { bufs + 64 * i, 16, false }, { bufs + 64 * i + 32, 32, true } };
		memset(vg_host(&g, bufs + 64 * i), 'a' + i, 16);
		heads[i] = vg_chain(&g, 0, s, 2, false);
		vg_publish(&g, 0, heads[i]);
	}
	vg_notify(&g, 0);
	for (int i = 0; i < 6; i++) {
		uint32_t id = 0, len = 0;
		CHECK(vg_wait_used(&g, 0, &id, &len));
		CHECK_EQ(id, heads[i]);
		CHECK_EQ(len, 16);
		CHECK_EQ(*(uint8_t *)vg_host(&g, bufs + 64 * i + 32), 'a' + i);
	}
	/* A chain with no writable part: used length 0. Zero-length
	 * descriptors are fine. */
	{
		struct vg_seg s[3] = { { bufs, 8, false }, { bufs + 8, 0, false }, { bufs + 16, 0, true } };
		uint16_t h = vg_submit(&g, 0, s, 3, false);
		uint32_t id = 0, len = 99;
		CHECK(vg_wait_used(&g, 0, &id, &len));
		CHECK_EQ(id, h);
		CHECK_EQ(len, 0);
	}
	CHECK(!vg_needs_reset(&g));

	/* Queue disable: QueueReady = 0 reads back 0 and stops the queue. */
	vg_w32(&g, VIRTIO_MMIO_QUEUE_SEL, 1);
	vg_w32(&g, VIRTIO_MMIO_QUEUE_READY, 0);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_READY), 0);
	{
		struct vg_seg s[2] = { { bufs, 8, false }, { bufs + 32, 8, true } };
		vg_submit(&g, 1, s, 2, false);
		vg_settle(&g);
		CHECK_EQ(vg_used_idx(&g, 1), g.q[1].last_used);
	}

	/* Reset: queues not ready, interrupt status cleared, line low. */
	CHECK(echo_roundtrip(&g, 0, false, 1));
	CHECK_EQ(atomic_load(&g.irq_level), 1);
	vg_w32(&g, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CHECK_EQ(atomic_load(&g.irq_level), 0);
	vg_w32(&g, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_QUEUE_READY), 0);
	/* And the device comes back up after a fresh setup. */
	echo_up(&g, F_V1);
	CHECK(echo_roundtrip(&g, 0, false, 2));

	echo_free(e);
	vg_fini(&g);
}

/* Nothing is consumed before DRIVER_OK (2.1.2); buffers waiting at
 * DRIVER_OK are served then. */
static void test_before_driver_ok(void)
{
	struct vguest g;
	vg_init(&g);
	struct echo *e = echo_new(&g);
	CHECK(vg_negotiate(&g, F_V1));
	vg_queue_setup(&g, 0, ECHO_QSIZE);
	uint64_t b = vg_alloc(&g, 64, 8);
	struct vg_seg s[2] = { { b, 8, false }, { b + 32, 8, true } };
	vg_submit(&g, 0, s, 2, false);
	vg_settle(&g);
	CHECK_EQ(vg_used_idx(&g, 0), 0);
	vg_driver_ok(&g);
	CHECK(vg_wait_used(&g, 0, NULL, NULL));
	echo_free(e);
	vg_fini(&g);
}

static void test_notification_suppression(void)
{
	struct vguest g;
	vg_init(&g);
	struct echo *e = echo_new(&g);

	/* Without EVENT_IDX: NO_INTERRUPT suppresses the interrupt. */
	echo_up(&g, F_V1);
	__atomic_store_n(&vg_avail(&g, 0)[0], (uint16_t)VIRTQ_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
	CHECK(echo_roundtrip(&g, 0, false, 1));
	vg_settle(&g);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CHECK_EQ(atomic_load(&g.irq_rises), 0);
	__atomic_store_n(&vg_avail(&g, 0)[0], (uint16_t)0, __ATOMIC_RELAXED);
	CHECK(echo_roundtrip(&g, 0, false, 1));
	vg_settle(&g);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_USED);
	/* When idle the device wants notifications (NO_NOTIFY clear). */
	CHECK_EQ(vg_used_flags(&g, 0), 0);
	vg_w32(&g, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_USED);

	/* With EVENT_IDX: interrupt only when used idx passes used_event. */
	echo_up(&g, F_V1 | F_EVENT_IDX);
	int rises = atomic_load(&g.irq_rises);
	__atomic_store_n(vg_used_event(&g, 0), (uint16_t)2, __ATOMIC_RELAXED);   /* want an interrupt after the 3rd */
	CHECK(echo_roundtrip(&g, 0, false, 1));   /* used idx 1 */
	CHECK(echo_roundtrip(&g, 0, false, 1));   /* used idx 2 */
	vg_settle(&g);
	CHECK_EQ(atomic_load(&g.irq_rises), rises);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CHECK(echo_roundtrip(&g, 0, false, 1));   /* used idx 3: crosses 2 */
	vg_settle(&g);
	CHECK_EQ(atomic_load(&g.irq_rises), rises + 1);
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_USED);
	vg_w32(&g, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_USED);
	/* The device asks to be notified at the next entry it will take. */
	CHECK_EQ(vg_avail_event(&g, 0), 3);
	/* used_event left behind: no more interrupts. */
	CHECK(echo_roundtrip(&g, 0, false, 1));
	vg_settle(&g);
	CHECK_EQ(atomic_load(&g.irq_rises), rises + 1);
	/* used_event == current used idx: the next push interrupts. */
	__atomic_store_n(vg_used_event(&g, 0), (uint16_t)4, __ATOMIC_RELAXED);
	CHECK(echo_roundtrip(&g, 0, false, 1));
	vg_settle(&g);
	CHECK_EQ(atomic_load(&g.irq_rises), rises + 2);

	echo_free(e);
	vg_fini(&g);
}

/* ---- hostile guests ---- */

/* Put a raw descriptor into queue 0's table. */
static void put_desc(struct vguest *g, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc *d = vg_desc(g, 0, i);
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

typedef void hostile_fn(struct vguest *g, uint64_t buf);

/* Run one hostile setup on a fresh device: the device must end up in
 * DEVICE_NEEDS_RESET with a config interrupt, use nothing, and work again
 * after a reset. */
static void hostile(const char *what, uint64_t features, hostile_fn *fn)
{
	struct vguest g;
	vg_init(&g);
	struct echo *e = echo_new(&g);
	echo_up(&g, F_V1 | features);
	uint64_t buf = vg_alloc(&g, 4096, 16);
	fn(&g, buf);
	vg_notify(&g, 0);
	bool failed = vg_wait(vg_needs_reset, &g);
	if (!failed)
		printf("hostile case \"%s\" was not detected\n", what);
	CHECK(failed);
	/* The status is set before the interrupt: let the I/O thread finish. */
	vg_settle(&g);
	CHECK(vg_r32(&g, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_ISR_CONFIG);
	CHECK_EQ(vg_used_idx(&g, 0), 0);
	CHECK(e->dev.error[0] != 0);
	/* More notifications do nothing. */
	vg_notify(&g, 0);
	vg_settle(&g);
	CHECK_EQ(vg_used_idx(&g, 0), 0);
	/* Reset brings it back. */
	vg_w32(&g, VIRTIO_MMIO_STATUS, 0);
	CHECK(!vg_needs_reset(&g));
	echo_up(&g, F_V1 | features);
	CHECK(echo_roundtrip(&g, 0, false, 1));
	echo_free(e);
	vg_fini(&g);
}

static void h_avail_jump(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 16, VIRTQ_DESC_F_WRITE, 0);
	__atomic_store_n(&vg_avail(g, 0)[1], (uint16_t)(ECHO_QSIZE + 1), __ATOMIC_RELEASE);
}

static void h_avail_backwards(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 16, VIRTQ_DESC_F_WRITE, 0);
	__atomic_store_n(&vg_avail(g, 0)[1], (uint16_t)0xffff, __ATOMIC_RELEASE);
}

static void h_head_range(struct vguest *g, uint64_t buf)
{
	vg_publish(g, 0, ECHO_QSIZE);
}

static void h_next_range(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 16, VIRTQ_DESC_F_NEXT, 200);
	vg_publish(g, 0, 0);
}

static void h_loop(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(g, 1, buf, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(g, 2, buf, 16, VIRTQ_DESC_F_NEXT, 0);
	vg_publish(g, 0, 0);
}

static void h_self_loop(struct vguest *g, uint64_t buf)
{
	put_desc(g, 3, buf, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	vg_publish(g, 0, 3);
}

static void h_outside_ram(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, 0x1000, 16, 0, 0);   /* below RAM */
	vg_publish(g, 0, 0);
}

static void h_past_end(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, VG_RAM_BASE + VG_RAM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
	vg_publish(g, 0, 0);
}

static void h_huge_len(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	vg_publish(g, 0, 0);
}

static void h_wrap_addr(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, 0xfffffffffffffff0ull, 0x100, 0, 0);
	vg_publish(g, 0, 0);
}

static void h_read_after_write(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(g, 1, buf + 16, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(g, 2, buf + 32, 16, VIRTQ_DESC_F_WRITE, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_not_negotiated(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_bad_len(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 24, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_zero_len(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 0, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_huge(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, buf, 16 * (VIRTQ_MAX_SEGS + 1), VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_outside(struct vguest *g, uint64_t buf)
{
	put_desc(g, 0, VG_RAM_BASE + VG_RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_nested(struct vguest *g, uint64_t buf)
{
	struct virtq_desc *t = vg_host(g, buf);
	t[0] = (struct virtq_desc){ buf + 512, 16, VIRTQ_DESC_F_NEXT, 1 };
	t[1] = (struct virtq_desc){ buf + 1024, 32, VIRTQ_DESC_F_INDIRECT, 0 };
	put_desc(g, 0, buf, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_with_next(struct vguest *g, uint64_t buf)
{
	struct virtq_desc *t = vg_host(g, buf);
	t[0] = (struct virtq_desc){ buf + 512, 16, VIRTQ_DESC_F_WRITE, 0 };
	put_desc(g, 0, buf, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	put_desc(g, 1, buf + 512, 16, VIRTQ_DESC_F_WRITE, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_loop(struct vguest *g, uint64_t buf)
{
	struct virtq_desc *t = vg_host(g, buf);
	t[0] = (struct virtq_desc){ buf + 512, 16, VIRTQ_DESC_F_NEXT, 1 };
	t[1] = (struct virtq_desc){ buf + 512, 16, VIRTQ_DESC_F_NEXT, 0 };
	put_desc(g, 0, buf, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_next_range(struct vguest *g, uint64_t buf)
{
	struct virtq_desc *t = vg_host(g, buf);
	t[0] = (struct virtq_desc){ buf + 512, 16, VIRTQ_DESC_F_NEXT, 2 };
	t[1] = (struct virtq_desc){ buf + 512, 16, 0, 0 };
	put_desc(g, 0, buf, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

static void h_indirect_buffer_outside(struct vguest *g, uint64_t buf)
{
	struct virtq_desc *t = vg_host(g, buf);
	t[0] = (struct virtq_desc){ 0x7ffff000, 64, VIRTQ_DESC_F_WRITE, 0 };
	put_desc(g, 0, buf, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vg_publish(g, 0, 0);
}

/* Queue setup problems are caught at QueueReady. */
static void hostile_queue_setup(void)
{
	struct {
		const char *what;
		uint16_t num;
		uint64_t desc, avail, used;
	} cases[] = {
		{ "size not a power of two", 12, VG_RAM_BASE + 0x1000, VG_RAM_BASE + 0x2000, VG_RAM_BASE + 0x3000 },
		{ "size above max", 32, VG_RAM_BASE + 0x1000, VG_RAM_BASE + 0x2000, VG_RAM_BASE + 0x3000 },
		{ "size zero", 0, VG_RAM_BASE + 0x1000, VG_RAM_BASE + 0x2000, VG_RAM_BASE + 0x3000 },
		{ "misaligned desc", 16, VG_RAM_BASE + 0x1008, VG_RAM_BASE + 0x2000, VG_RAM_BASE + 0x3000 },
		{ "misaligned used", 16, VG_RAM_BASE + 0x1000, VG_RAM_BASE + 0x2000, VG_RAM_BASE + 0x3002 },
		{ "desc outside RAM", 16, 0x1000, VG_RAM_BASE + 0x2000, VG_RAM_BASE + 0x3000 },
		{ "used runs off RAM", 16, VG_RAM_BASE + 0x1000, VG_RAM_BASE + 0x2000, VG_RAM_BASE + VG_RAM_SIZE - 64 },
		{ "avail wraps", 16, VG_RAM_BASE + 0x1000, 0xfffffffffffffffeull, VG_RAM_BASE + 0x3000 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vguest g;
		vg_init(&g);
		struct echo *e = echo_new(&g);
		CHECK(vg_negotiate(&g, F_V1));
		vg_w32(&g, VIRTIO_MMIO_QUEUE_SEL, 0);
		vg_w32(&g, VIRTIO_MMIO_QUEUE_NUM, cases[i].num);
		vg_w32(&g, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)cases[i].desc);
		vg_w32(&g, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(cases[i].desc >> 32));
		vg_w32(&g, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)cases[i].avail);
		vg_w32(&g, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(cases[i].avail >> 32));
		vg_w32(&g, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)cases[i].used);
		vg_w32(&g, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(cases[i].used >> 32));
		vg_w32(&g, VIRTIO_MMIO_QUEUE_READY, 1);
		bool ok = vg_r32(&g, VIRTIO_MMIO_QUEUE_READY) == 0 && vg_needs_reset(&g);
		if (!ok)
			printf("queue setup case \"%s\" was accepted\n", cases[i].what);
		CHECK(ok);
		echo_free(e);
		vg_fini(&g);
	}
}

static void test_hostile(void)
{
	hostile("avail idx jump", 0, h_avail_jump);
	hostile("avail idx backwards", 0, h_avail_backwards);
	hostile("head out of range", 0, h_head_range);
	hostile("next out of range", 0, h_next_range);
	hostile("loop", 0, h_loop);
	hostile("self loop", 0, h_self_loop);
	hostile("buffer below RAM", 0, h_outside_ram);
	hostile("buffer past RAM end", 0, h_past_end);
	hostile("huge length", 0, h_huge_len);
	hostile("address wraps", 0, h_wrap_addr);
	hostile("readable after writable", 0, h_read_after_write);
	hostile("indirect not negotiated", 0, h_indirect_not_negotiated);
	hostile("indirect bad length", F_INDIRECT, h_indirect_bad_len);
	hostile("indirect zero length", F_INDIRECT, h_indirect_zero_len);
	hostile("indirect huge table", F_INDIRECT, h_indirect_huge);
	hostile("indirect table outside RAM", F_INDIRECT, h_indirect_outside);
	hostile("nested indirect", F_INDIRECT, h_indirect_nested);
	hostile("indirect with NEXT", F_INDIRECT, h_indirect_with_next);
	hostile("indirect loop", F_INDIRECT, h_indirect_loop);
	hostile("indirect next out of range", F_INDIRECT, h_indirect_next_range);
	hostile("indirect buffer outside RAM", F_INDIRECT, h_indirect_buffer_outside);
	hostile_queue_setup();
}

/* ---- the virtq core alone (no device, no thread) ---- */

static void test_virtq_core(void)
{
	struct gram ram;
	CHECK_EQ(gram_init(&ram, VG_RAM_BASE, 1 << 20), 0);
	struct virtq vq;
	CHECK_EQ(virtq_init(&vq, 0, 12, NULL, NULL), -1);   /* not a power of two */
	CHECK_EQ(virtq_init(&vq, 0, 8, NULL, NULL), 0);
	vq.size = 8;
	vq.desc_gpa = VG_RAM_BASE;
	vq.avail_gpa = VG_RAM_BASE + 0x100;
	vq.used_gpa = VG_RAM_BASE + 0x200;
	char err[160];
	CHECK_EQ(virtq_start(&vq, &ram, F_INDIRECT | F_EVENT_IDX, err, sizeof(err)), 0);
	CHECK(vq.event_idx && vq.indirect);

	struct virtq_req *req = malloc(sizeof(*req));
	CHECK_EQ(virtq_pop(&vq, req), 0);
	CHECK(!virtq_has_avail(&vq));

	/* Chain: readable 10 bytes + 6 bytes, indirect table with one
	 * readable 4 bytes and a writable 20 bytes. */
	struct virtq_desc *d = gram_ptr(&ram, VG_RAM_BASE, 128);
	uint8_t *mem = gram_ptr(&ram, VG_RAM_BASE + 0x1000, 0x1000);
	for (int i = 0; i < 64; i++)
		mem[i] = (uint8_t)i;
	d[5] = (struct virtq_desc){ VG_RAM_BASE + 0x1000, 10, VIRTQ_DESC_F_NEXT, 2 };
	d[2] = (struct virtq_desc){ VG_RAM_BASE + 0x100a, 6, VIRTQ_DESC_F_NEXT, 7 };
	d[7] = (struct virtq_desc){ VG_RAM_BASE + 0x1800, 32, VIRTQ_DESC_F_INDIRECT, 0 };
	struct virtq_desc *t = gram_ptr(&ram, VG_RAM_BASE + 0x1800, 32);
	t[0] = (struct virtq_desc){ VG_RAM_BASE + 0x1010, 4, VIRTQ_DESC_F_NEXT, 1 };
	t[1] = (struct virtq_desc){ VG_RAM_BASE + 0x1100, 20, VIRTQ_DESC_F_WRITE, 0 };
	uint16_t *avail = gram_ptr(&ram, VG_RAM_BASE + 0x100, 6 + 16);
	avail[2] = 5;
	avail[1] = 1;
	CHECK(virtq_has_avail(&vq));
	CHECK_EQ(virtq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 5);
	CHECK_EQ(req->nout, 3);
	CHECK_EQ(req->nin, 1);
	CHECK_EQ(req->out_len, 20);
	CHECK_EQ(req->in_len, 20);
	CHECK_EQ(req->gpa[3], VG_RAM_BASE + 0x1100);
	uint8_t buf[32];
	CHECK_EQ(virtq_req_read(req, 8, buf, 32), 12);
	CHECK_EQ(buf[0], 8);
	CHECK_EQ(buf[8], 16);   /* third segment starts at mem[0x10] */
	CHECK_EQ(virtq_req_write(req, 15, "hello", 5), 5);
	CHECK_EQ(virtq_req_write(req, 18, "hello", 5), 2);
	CHECK(!memcmp(mem + 0x100 + 15, "helhe", 5));

	struct iovec sl[4];
	CHECK_EQ(iov_slice(req->iov, req->nout, 8, 10, sl, 4), 3);
	CHECK_EQ(sl[0].iov_len, 2);
	CHECK_EQ(sl[1].iov_len, 6);
	CHECK_EQ(sl[2].iov_len, 2);
	CHECK_EQ(iov_slice(req->iov, req->nout, 8, 13, sl, 4), -1);   /* past the end */
	CHECK_EQ(iov_slice(req->iov, req->nout, 0, 20, sl, 2), -1);   /* too many pieces */
	CHECK_EQ(iov_slice(req->iov, req->nout, 20, 0, sl, 2), 0);

	/* Push: used entry, used idx, written clamped to in_len. */
	uint16_t *used_event = avail + 2 + 8;
	*used_event = 0;
	virtq_push(&vq, req, 1000);
	uint32_t *used = gram_ptr(&ram, VG_RAM_BASE + 0x200, 6 + 64);
	CHECK_EQ(((uint16_t *)used)[1], 1);
	CHECK_EQ(used[1], 5);
	CHECK_EQ(used[2], 20);
	CHECK(virtq_should_notify(&vq));
	CHECK(!virtq_should_notify(&vq));       /* nothing new pushed */
	CHECK(!virtq_enable_notify(&vq));
	CHECK_EQ(*(uint16_t *)((uint8_t *)used + 4 + 64), 1);   /* avail_event */
	/* A new entry after enabling is reported. */
	avail[3] = 2;
	d[2].flags = 0;
	avail[1] = 2;
	CHECK(virtq_enable_notify(&vq));
	CHECK_EQ(virtq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 2);
	virtq_push(&vq, req, 0);
	CHECK(!virtq_should_notify(&vq));       /* used_event 0 is behind */

	/* A broken queue stays broken; the hook is not needed. */
	avail[4] = 9;
	avail[1] = 3;
	CHECK_EQ(virtq_pop(&vq, req), -1);
	CHECK(vq.broken);
	CHECK(strstr(vq.error, "names descriptor 9") != NULL);
	CHECK_EQ(virtq_pop(&vq, req), -1);
	virtq_reset(&vq);
	CHECK(!vq.broken && !vq.ready);
	CHECK_EQ(virtq_pop(&vq, req), 0);

	free(req);
	virtq_destroy(&vq);
	gram_destroy(&ram);
}

/* QueueReady 0 then 1 without a device reset resumes the rings where they
 * were (virtio 1.2 2.6.1: only a reset returns the available and used state
 * to 0): the old request is not served again and the used index goes on. */
static void test_virtq_ready_again(void)
{
	struct gram ram;
	CHECK_EQ(gram_init(&ram, VG_RAM_BASE, 1 << 20), 0);
	struct virtq vq;
	CHECK_EQ(virtq_init(&vq, 0, 4, NULL, NULL), 0);
	vq.desc_gpa = VG_RAM_BASE;
	vq.avail_gpa = VG_RAM_BASE + 0x100;
	vq.used_gpa = VG_RAM_BASE + 0x200;
	char err[160];
	CHECK_EQ(virtq_start(&vq, &ram, 0, err, sizeof(err)), 0);
	struct virtq_desc *d = gram_ptr(&ram, VG_RAM_BASE, 64);
	d[0] = (struct virtq_desc){ VG_RAM_BASE + 0x1000, 8, VIRTQ_DESC_F_WRITE, 0 };
	d[1] = (struct virtq_desc){ VG_RAM_BASE + 0x1008, 8, VIRTQ_DESC_F_WRITE, 0 };
	uint16_t *avail = gram_ptr(&ram, VG_RAM_BASE + 0x100, 14);
	uint16_t *used = gram_ptr(&ram, VG_RAM_BASE + 0x200, 38);
	avail[2] = 0;
	avail[1] = 1;
	struct virtq_req *req = malloc(sizeof(*req));
	CHECK_EQ(virtq_pop(&vq, req), 1);
	virtq_push(&vq, req, 8);
	CHECK_EQ(used[1], 1);

	virtq_stop(&vq);
	CHECK_EQ(virtq_pop(&vq, req), 0);
	CHECK_EQ(virtq_start(&vq, &ram, 0, err, sizeof(err)), 0);
	CHECK_EQ(virtq_pop(&vq, req), 0);      /* entry 0 was served already */
	avail[3] = 1;
	avail[1] = 2;
	CHECK_EQ(virtq_pop(&vq, req), 1);
	CHECK_EQ(req->head, 1);
	virtq_push(&vq, req, 8);
	CHECK_EQ(used[1], 2);                  /* not back to 1 */
	CHECK_EQ(used[2 + 4 * 1], 1);          /* used ring entry 1 names head 1 */

	/* A device reset does start over. */
	virtq_reset(&vq);
	vq.size = 4;
	vq.desc_gpa = VG_RAM_BASE;
	vq.avail_gpa = VG_RAM_BASE + 0x100;
	vq.used_gpa = VG_RAM_BASE + 0x200;
	CHECK_EQ(virtq_start(&vq, &ram, 0, err, sizeof(err)), 0);
	CHECK_EQ(vq.last_avail, 0);
	CHECK_EQ(vq.used_idx, 0);
	free(req);
	virtq_destroy(&vq);
	gram_destroy(&ram);
}

/* A chain of exactly VIRTQ_MAX_SEGS segments through an indirect table is
 * fine; one more is refused. */
static void test_virtq_max_segs(void)
{
	struct gram ram;
	gram_init(&ram, VG_RAM_BASE, 1 << 20);
	struct virtq vq;
	virtq_init(&vq, 0, 4, NULL, NULL);
	vq.desc_gpa = VG_RAM_BASE;
	vq.avail_gpa = VG_RAM_BASE + 0x100;
	vq.used_gpa = VG_RAM_BASE + 0x200;
	char err[160];
	virtq_start(&vq, &ram, F_INDIRECT, err, sizeof(err));
	struct virtq_desc *d = gram_ptr(&ram, VG_RAM_BASE, 64);
	struct virtq_desc *t = gram_ptr(&ram, VG_RAM_BASE + 0x10000, 16 * VIRTQ_MAX_SEGS);
	for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
		t[i] = (struct virtq_desc){ VG_RAM_BASE + 0x1000 + i, 1,
					    i + 1 < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0,
					    (uint16_t)(i + 1) };
	d[0] = (struct virtq_desc){ VG_RAM_BASE + 0x10000, 16 * VIRTQ_MAX_SEGS, VIRTQ_DESC_F_INDIRECT, 0 };
	uint16_t *avail = gram_ptr(&ram, VG_RAM_BASE + 0x100, 14);
	avail[2] = 0;
	avail[1] = 1;
	struct virtq_req *req = malloc(sizeof(*req));
	CHECK_EQ(virtq_pop(&vq, req), 1);
	CHECK_EQ(req->nout, VIRTQ_MAX_SEGS);
	/* Direct chain of 3 in front of the full table: too many. */
	d[1] = (struct virtq_desc){ VG_RAM_BASE + 0x1000, 1, VIRTQ_DESC_F_NEXT, 0 };
	avail[3] = 1;
	avail[1] = 2;
	CHECK_EQ(virtq_pop(&vq, req), -1);
	CHECK(strstr(vq.error, "segments") != NULL);
	free(req);
	virtq_destroy(&vq);
	gram_destroy(&ram);
}

/* Two devices, two guests, at once: no shared state. */
static void test_two_devices(void)
{
	struct vguest g1, g2;
	vg_init(&g1);
	vg_init(&g2);
	struct echo *e1 = echo_new(&g1), *e2 = echo_new(&g2);
	echo_up(&g1, F_V1 | F_EVENT_IDX);
	echo_up(&g2, F_V1 | F_INDIRECT);
	bool ok = true;
	for (int i = 0; i < 20; i++) {
		ok &= echo_roundtrip(&g1, i & 1, false, 2);
		ok &= echo_roundtrip(&g2, i & 1, true, 3);
	}
	CHECK(ok);
	echo_free(e1);
	echo_free(e2);
	vg_fini(&g1);
	vg_fini(&g2);
}

int main(void)
{
	test_registers();
	test_negotiation();
	test_requests();
	test_before_driver_ok();
	test_notification_suppression();
	test_hostile();
	test_virtq_core();
	test_virtq_max_segs();
	test_virtq_ready_again();
	test_two_devices();
	return vt_report();
}

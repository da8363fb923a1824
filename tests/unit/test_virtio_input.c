/*
 * Unit tests for the virtio-input keyboard (src/virtio/input.c). A test guest
 * (virtio_guest.h) plays Linux's virtio_input driver against the device:
 * the configuration space answers for every selector (5.8.4), Ctrl+Alt+Del
 * refused before DRIVER_OK, its eight events delivered in order one per
 * buffer, held while the driver has no buffers and delivered when it adds
 * some, too-small buffers, a full pending ring, the statusq consumed, reset
 * dropping waiting events, and a driver that hands out a bad buffer.
 */
#include <errno.h>

#include "virtio/input.h"
#include "virtio/rng.h"
#include "virtio_guest.h"

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ull << VIRTIO_F_RING_EVENT_IDX)

#define Q_EVENT 0
#define Q_STATUS 1
#define QSIZE 8

/* ---- config space through the MMIO transport ---- */

static uint64_t cfg_read(struct vguest *g, uint32_t off, unsigned size)
{
	uint64_t v = 0;
	if (!virtio_mmio_ops.read(&g->t, VIRTIO_MMIO_CONFIG + off, size, &v))
		return 0xdeadbeef;
	return v;
}

static void cfg_write(struct vguest *g, uint32_t off, unsigned size, uint64_t v)
{
	virtio_mmio_ops.write(&g->t, VIRTIO_MMIO_CONFIG + off, size, v);
}

/* select/subsel the way Linux does it (two byte writes), then size. */
static unsigned cfg_select(struct vguest *g, uint8_t sel, uint8_t sub)
{
	cfg_write(g, VIRTIO_INPUT_CFG_SELECT, 1, sel);
	cfg_write(g, VIRTIO_INPUT_CFG_SUBSEL, 1, sub);
	return (unsigned)cfg_read(g, VIRTIO_INPUT_CFG_SIZE, 1);
}

static void cfg_bytes(struct vguest *g, uint8_t *out, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		out[i] = (uint8_t)cfg_read(g, VIRTIO_INPUT_CFG_DATA + i, 1);
}

static void test_config(struct vguest *g)
{
	CHECK_EQ(vg_r32(g, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	CHECK_EQ(vg_r32(g, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_INPUT);
	uint64_t f = vg_device_features(g);
	CHECK(f & F_V1);
	CHECK_EQ(f & 0xffffff, 0);   /* no device-specific features (5.8.3) */

	/* Nothing selected yet. */
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_SIZE, 1), 0);

	uint8_t buf[128];
	unsigned n = cfg_select(g, VIRTIO_INPUT_CFG_ID_NAME, 0);
	CHECK_EQ(n, strlen(VIRTIO_INPUT_NAME));
	memset(buf, 0, sizeof(buf));
	cfg_bytes(g, buf, n);
	CHECK(!memcmp(buf, "skiff keyboard", 14));
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA + n, 1), 0);
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_ID_NAME, 1), 0);   /* subsel must be 0 */

	n = cfg_select(g, VIRTIO_INPUT_CFG_ID_SERIAL, 0);
	CHECK_EQ(n, strlen(VIRTIO_INPUT_SERIAL));
	cfg_bytes(g, buf, n);
	CHECK(!memcmp(buf, VIRTIO_INPUT_SERIAL, n));

	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_ID_DEVIDS, 0), 8);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA + 0, 2), INPUT_BUS_VIRTUAL);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA + 2, 2), VIRTIO_INPUT_VENDOR);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA + 4, 2), VIRTIO_INPUT_PRODUCT);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA + 6, 2), VIRTIO_INPUT_VERSION);

	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_PROP_BITS, 0), 0);

	n = cfg_select(g, VIRTIO_INPUT_CFG_EV_BITS, INPUT_EV_KEY);
	CHECK_EQ(n, 16);
	memset(buf, 0, sizeof(buf));
	cfg_bytes(g, buf, n);
	unsigned keys = 0;
	for (unsigned k = 0; k < 128; k++)
		keys += (buf[k / 8] >> (k % 8)) & 1;
	CHECK_EQ(keys, 127);
	CHECK_EQ(buf[0] & 1, 0);                               /* KEY_RESERVED */
	CHECK(buf[INPUT_KEY_LEFTCTRL / 8] & (1u << (INPUT_KEY_LEFTCTRL % 8)));
	CHECK(buf[INPUT_KEY_LEFTALT / 8] & (1u << (INPUT_KEY_LEFTALT % 8)));
	CHECK(buf[INPUT_KEY_DELETE / 8] & (1u << (INPUT_KEY_DELETE % 8)));
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA + 16, 8), 0);

	/* Other event types, axes, unknown selectors: size 0, data 0. */
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_EV_BITS, INPUT_EV_SYN), 0);
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_EV_BITS, 0x02 /* EV_REL */), 0);
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_EV_BITS, 0x03 /* EV_ABS */), 0);
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_EV_BITS, 0x11 /* EV_LED */), 0);
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_EV_BITS, 0xff), 0);
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_ABS_INFO, 0), 0);
	CHECK_EQ(cfg_select(g, VIRTIO_INPUT_CFG_UNSET, 0), 0);
	CHECK_EQ(cfg_select(g, 0x55, 7), 0);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA, 8), 0);

	/* One 16-bit write sets select and subsel together; a 4-byte read of
	 * the header shows select, subsel and size. */
	cfg_write(g, 0, 2, VIRTIO_INPUT_CFG_EV_BITS | (INPUT_EV_KEY << 8));
	CHECK_EQ(cfg_read(g, 0, 4), VIRTIO_INPUT_CFG_EV_BITS | (INPUT_EV_KEY << 8) | (16u << 16));
	/* Writes to size, reserved bytes and the union are ignored. */
	cfg_write(g, VIRTIO_INPUT_CFG_SIZE, 1, 99);
	cfg_write(g, VIRTIO_INPUT_CFG_DATA, 8, 0);
	cfg_write(g, VIRTIO_INPUT_CFG_DATA + 120, 8, ~0ull);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_SIZE, 1), 16);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA, 1), 0xfe);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_DATA + 120, 8), 0);
	/* Past the end of the space: 0, and writes there do nothing. */
	cfg_write(g, 200, 4, 0x12345678);
	CHECK_EQ(cfg_read(g, 200, 4), 0);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_BYTES - 4, 8), 0);
	/* An 8-byte write that starts at select. */
	cfg_write(g, 0, 8, VIRTIO_INPUT_CFG_ID_DEVIDS | 0xffffff0000ull);
	CHECK_EQ(cfg_read(g, VIRTIO_INPUT_CFG_SIZE, 1), 8);
}

/* ---- the driver's buffers ---- */

struct evbufs {
	uint64_t gpa[QSIZE];     /* by descriptor head */
};

/* Offer one device-writable buffer of `len` bytes on the eventq. */
static void post_event_buf(struct vguest *g, struct evbufs *b, uint32_t len)
{
	uint64_t gpa = vg_alloc(g, len ? len : 1, 8);
	memset(vg_host(g, gpa), 0xee, len ? len : 1);
	struct vg_seg s = { .gpa = gpa, .len = len, .write = true };
	uint16_t head = vg_submit(g, Q_EVENT, &s, 1, false);
	b->gpa[head % QSIZE] = gpa;
}

/* Take the next used eventq entry as an event; false if none came. */
static bool next_event(struct vguest *g, struct evbufs *b, struct virtio_input_event *ev,
		       uint32_t *len_out)
{
	uint32_t id, len;
	if (!vg_wait_used(g, Q_EVENT, &id, &len))
		return false;
	if (len_out)
		*len_out = len;
	memset(ev, 0, sizeof(*ev));
	if (id < QSIZE && len >= sizeof(*ev))
		memcpy(ev, vg_host(g, b->gpa[id]), sizeof(*ev));
	return true;
}

static const struct virtio_input_event cad[8] = {
	{ INPUT_EV_KEY, INPUT_KEY_LEFTCTRL, 1 }, { INPUT_EV_KEY, INPUT_KEY_LEFTALT, 1 },
	{ INPUT_EV_KEY, INPUT_KEY_DELETE, 1 },   { INPUT_EV_SYN, INPUT_SYN_REPORT, 0 },
	{ INPUT_EV_KEY, INPUT_KEY_DELETE, 0 },   { INPUT_EV_KEY, INPUT_KEY_LEFTALT, 0 },
	{ INPUT_EV_KEY, INPUT_KEY_LEFTCTRL, 0 }, { INPUT_EV_SYN, INPUT_SYN_REPORT, 0 },
};

/* Expect events cad[from .. to) next, in order. */
static void expect_cad(struct vguest *g, struct evbufs *b, unsigned from, unsigned to)
{
	for (unsigned i = from; i < to; i++) {
		struct virtio_input_event ev;
		uint32_t len = 0;
		bool got = next_event(g, b, &ev, &len);
		CHECK(got);
		if (!got)
			return;
		CHECK_EQ(len, sizeof(ev));
		CHECK_EQ(ev.type, cad[i].type);
		CHECK_EQ(ev.code, cad[i].code);
		CHECK_EQ(ev.value, cad[i].value);
	}
}

static bool no_more_used(struct vguest *g, unsigned q)
{
	vg_settle(g);
	return vg_used_idx(g, q) == g->q[q].last_used;
}

static void bring_up(struct vguest *g, uint64_t features)
{
	CHECK(vg_negotiate(g, features));
	vg_queue_setup(g, Q_EVENT, QSIZE);
	vg_queue_setup(g, Q_STATUS, QSIZE);
	vg_driver_ok(g);
}

static void test_events(struct vguest *g, struct virtio_input *in, uint64_t features)
{
	/* No driver yet: refused, nothing queued. */
	vg_w32(g, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), -ENODEV);
	CHECK_EQ(virtio_input_pending(in), 0);
	/* FEATURES_OK but not yet DRIVER_OK: still refused. */
	CHECK(vg_negotiate(g, features));
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), -ENODEV);

	vg_w32(g, VIRTIO_MMIO_STATUS, 0);
	bring_up(g, features);
	struct evbufs b = { { 0 } };

	/* Sent before any buffer exists: it waits. */
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	vg_settle(g);
	CHECK_EQ(virtio_input_pending(in), 8);
	CHECK(no_more_used(g, Q_EVENT));

	/* Three buffers: the three presses. */
	int rises = atomic_load(&g->irq_rises);
	for (int i = 0; i < 3; i++)
		post_event_buf(g, &b, sizeof(struct virtio_input_event));
	expect_cad(g, &b, 0, 3);
	CHECK(no_more_used(g, Q_EVENT));
	CHECK_EQ(virtio_input_pending(in), 5);
	CHECK(atomic_load(&g->irq_rises) > rises);
	virtio_dev_ack(g->dev, VIRTIO_ISR_USED);

	/* Buffers exhausted, then refilled one at a time: the rest in order. */
	for (int i = 0; i < 5; i++) {
		post_event_buf(g, &b, sizeof(struct virtio_input_event));
		expect_cad(g, &b, 3 + (unsigned)i, 4 + (unsigned)i);
	}
	CHECK_EQ(virtio_input_pending(in), 0);

	/* Buffers first, then the keys: delivered at once. A larger buffer
	 * gets exactly one event. */
	for (int i = 0; i < 7; i++)
		post_event_buf(g, &b, sizeof(struct virtio_input_event));
	post_event_buf(g, &b, 64);
	CHECK(no_more_used(g, Q_EVENT));
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	expect_cad(g, &b, 0, 8);
	CHECK(no_more_used(g, Q_EVENT));

	/* Two sequences back to back with a queue's worth of buffers each
	 * time: sixteen events in order. */
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 8; i++)
			post_event_buf(g, &b, sizeof(struct virtio_input_event));
		expect_cad(g, &b, 0, 8);
	}
	CHECK_EQ(virtio_input_pending(in), 0);

	/* A buffer too small for an event comes back empty; the event waits
	 * for the next buffer. A read-only buffer likewise. */
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	post_event_buf(g, &b, 4);
	struct virtio_input_event ev;
	uint32_t len = 99;
	CHECK(next_event(g, &b, &ev, &len));
	CHECK_EQ(len, 0);
	{
		uint64_t gpa = vg_alloc(g, 8, 8);
		struct vg_seg s = { .gpa = gpa, .len = 8, .write = false };
		vg_submit(g, Q_EVENT, &s, 1, false);
		uint32_t id;
		CHECK(vg_wait_used(g, Q_EVENT, &id, &len));
		CHECK_EQ(len, 0);
	}
	CHECK_EQ(virtio_input_pending(in), 8);
	for (int i = 0; i < 8; i++)
		post_event_buf(g, &b, sizeof(struct virtio_input_event));
	expect_cad(g, &b, 0, 8);

	/* The pending ring is bounded: whole sequences only. */
	int sent = 0, r;
	while ((r = virtio_input_send_ctrl_alt_del(in)) == 0 && sent < 100)
		sent++;
	CHECK_EQ(sent, VIRTIO_INPUT_PENDING / 8);
	CHECK_EQ(r, -ENOSPC);
	CHECK_EQ(virtio_input_pending(in), VIRTIO_INPUT_PENDING);
	struct virtio_input_event one = { INPUT_EV_KEY, 30, 1 };
	CHECK_EQ(virtio_input_send(in, &one, 1), -ENOSPC);
	/* They all come out, in order, as buffers arrive. */
	for (int s = 0; s < sent; s++) {
		for (int i = 0; i < 8; i++)
			post_event_buf(g, &b, sizeof(struct virtio_input_event));
		expect_cad(g, &b, 0, 8);
	}
	CHECK_EQ(virtio_input_pending(in), 0);

	/* statusq: an LED update is consumed and returned. */
	{
		uint64_t gpa = vg_alloc(g, 8, 8);
		struct virtio_input_event led = { 0x11 /* EV_LED */, 0 /* LED_NUML */, 1 };
		memcpy(vg_host(g, gpa), &led, sizeof(led));
		struct vg_seg s = { .gpa = gpa, .len = 8, .write = false };
		vg_submit(g, Q_STATUS, &s, 1, false);
		uint32_t id;
		CHECK(vg_wait_used(g, Q_STATUS, &id, &len));
		CHECK_EQ(len, 0);
		/* A status buffer split into pieces, and a writable one. */
		struct vg_seg two[2] = { { gpa, 4, false }, { gpa + 4, 4, false } };
		vg_submit(g, Q_STATUS, two, 2, false);
		CHECK(vg_wait_used(g, Q_STATUS, &id, &len));
		struct vg_seg w = { .gpa = gpa, .len = 8, .write = true };
		vg_submit(g, Q_STATUS, &w, 1, false);
		CHECK(vg_wait_used(g, Q_STATUS, &id, &len));
		CHECK_EQ(len, 0);
		CHECK(!vg_needs_reset(g));
	}

	/* Reset drops what is waiting; afterwards the keys are refused until
	 * the new driver is ready. */
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	vg_settle(g);
	CHECK_EQ(virtio_input_pending(in), 8);
	vg_w32(g, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(virtio_input_pending(in), 0);
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), -ENODEV);
	CHECK_EQ(cfg_read(g, 0, 4), 0);   /* select/subsel/size back to 0 */
}

/* A driver that offers a buffer outside guest RAM: the device needs reset,
 * nothing else happens; after a reset it works again. */
static void test_hostile(struct vguest *g, struct virtio_input *in)
{
	bring_up(g, F_V1);
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	struct vg_seg s = { .gpa = VG_RAM_BASE + VG_RAM_SIZE - 4, .len = 8, .write = true };
	vg_submit(g, Q_EVENT, &s, 1, false);
	CHECK(vg_wait(vg_needs_reset, g));
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), -ENODEV);

	/* A bad descriptor on the statusq likewise. */
	vg_w32(g, VIRTIO_MMIO_STATUS, 0);
	bring_up(g, F_V1);
	struct vg_seg bad = { .gpa = 0x1000, .len = 8, .write = false };
	vg_submit(g, Q_STATUS, &bad, 1, false);
	CHECK(vg_wait(vg_needs_reset, g));

	vg_w32(g, VIRTIO_MMIO_STATUS, 0);
	CHECK(!vg_needs_reset(g));
	bring_up(g, F_V1);
	struct evbufs b = { { 0 } };
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	for (int i = 0; i < 8; i++)
		post_event_buf(g, &b, sizeof(struct virtio_input_event));
	expect_cad(g, &b, 0, 8);

	/* Writes to select while events flow change nothing about them. */
	CHECK_EQ(virtio_input_send_ctrl_alt_del(in), 0);
	for (int i = 0; i < 300; i++)
		cfg_write(g, (uint32_t)(i % 3), 1, (uint64_t)i * 37);
	for (int i = 0; i < 8; i++)
		post_event_buf(g, &b, sizeof(struct virtio_input_event));
	expect_cad(g, &b, 0, 8);
	vg_w32(g, VIRTIO_MMIO_STATUS, 0);
}

int main(void)
{
	char err[256];
	struct vguest g;
	if (vg_init(&g)) {
		printf("cannot set up guest RAM\n");
		return 2;
	}
	struct virtio_input *in = virtio_input_create(&g.ram, err, sizeof(err));
	CHECK(in != NULL);
	if (!in) {
		printf("%s\n", err);
		return vt_report();
	}
	CHECK(virtio_input_of(virtio_input_dev(in)) == in);
	CHECK(virtio_input_of(NULL) == NULL);
	struct virtio_rng *rng = virtio_rng_create(&g.ram, err, sizeof(err));
	CHECK(rng && virtio_input_of(virtio_rng_dev(rng)) == NULL);
	virtio_rng_destroy(rng);

	vg_attach(&g, virtio_input_dev(in));
	test_config(&g);
	test_events(&g, in, F_V1);
	test_events(&g, in, F_V1 | F_EVENT_IDX);
	test_hostile(&g, in);
	virtio_input_destroy(in);

	/* Two keyboards side by side keep their own state. */
	struct virtio_input *a = virtio_input_create(&g.ram, err, sizeof(err));
	struct virtio_input *c = virtio_input_create(&g.ram, err, sizeof(err));
	CHECK(a && c);
	if (a && c) {
		vg_attach(&g, virtio_input_dev(a));
		bring_up(&g, F_V1);
		CHECK_EQ(virtio_input_send_ctrl_alt_del(a), 0);
		CHECK_EQ(virtio_input_send_ctrl_alt_del(c), -ENODEV);
		vg_settle(&g);
		CHECK_EQ(virtio_input_pending(a), 8);
		CHECK_EQ(virtio_input_pending(c), 0);
	}
	virtio_input_destroy(a);
	virtio_input_destroy(c);
	vg_fini(&g);
	return vt_report();
}

/*
 * Unit tests for virtio-net (src/virtio/net.c) and the software offloads
 * (src/backend/net/offload.c). A test guest (virtio_guest.h) plays the
 * driver; a fake backend records what the device sends and injects frames
 * the way a backend thread would.
 *
 * virtio-net: features and configuration space (MAC, link up, MTU); the
 * transmit path hands header + frame to the backend unchanged and drops
 * offload requests that were not negotiated; receive with and without
 * MRG_RXBUF (num_buffers, a frame spread over several buffers, a frame that
 * waits half-delivered for more buffers, frames queued before buffers
 * exist, a frame too big for a lone buffer); congestion makes the backend
 * pause and resume; a receive buffer without a writable part needs a reset;
 * reset drops queued frames; a full backend holds the transmit chain until
 * tx_ready. Rate limits: transmit and receive frames pass at the buckets'
 * rate (lower bounds on the time only), nothing is lost while throttled,
 * and a limit changed at run time frees a frame held under the old one.
 * The stable default MAC.
 *
 * offload: NEEDS_CSUM completion (TCP and UDP), TSO of IPv4 and IPv6 TCP
 * into MSS-sized segments with correct lengths, IDs, sequence numbers,
 * flags and checksums; malformed headers are refused.
 */
#include <errno.h>
#include <pthread.h>

#include "backend/net/net.h"
#include "base/clock.h"
#include "virtio/net.h"
#include "virtio_guest.h"

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ull << VIRTIO_F_RING_EVENT_IDX)
#define F_CSUM (1ull << 0)
#define F_GUEST_CSUM (1ull << 1)
#define F_MTU (1ull << 3)
#define F_MAC (1ull << 5)
#define F_HOST_TSO4 (1ull << 11)
#define F_MRG (1ull << 15)
#define F_STATUS (1ull << 16)

#define Q_RX 0
#define Q_TX 1
#define HDR 12

/* ---- the fake backend ---- */

struct fake_be {
	struct net_backend base;
	struct net_backend_cb cb;
	pthread_mutex_t lock;
	uint8_t last[4096];
	size_t last_len;
	_Atomic int sent;
	_Atomic int resumes;
	_Atomic bool full;          /* send answers -EAGAIN */
	_Atomic uint32_t rx_offloads;
};

static int fake_send(struct net_backend *b, const struct iovec *iov, unsigned n)
{
	struct fake_be *f = (struct fake_be *)b;
	if (atomic_load(&f->full))
		return -EAGAIN;
	pthread_mutex_lock(&f->lock);
	f->last_len = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t m = iov[i].iov_len;
		if (f->last_len + m > sizeof(f->last))
			m = sizeof(f->last) - f->last_len;
		memcpy(f->last + f->last_len, iov[i].iov_base, m);
		f->last_len += m;
	}
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&f->sent, 1);
	return 0;
}

static void fake_resume(struct net_backend *b)
{
	atomic_fetch_add(&((struct fake_be *)b)->resumes, 1);
}

static void fake_offloads(struct net_backend *b, uint32_t rx)
{
	atomic_store(&((struct fake_be *)b)->rx_offloads, rx);
}

static void fake_destroy(struct net_backend *b)
{
	(void)b;   /* owned by the test */
}

static const struct net_backend_ops fake_ops = {
	.send = fake_send, .rx_resume = fake_resume, .set_offloads = fake_offloads,
	.destroy = fake_destroy,
};

static struct net_backend *fake_open(void *arg, const struct net_backend_cb *cb, char *err, size_t errlen)
{
	struct fake_be *f = arg;
	f->base.ops = &fake_ops;
	f->cb = *cb;
	return &f->base;
}

/* ---- setup ---- */

struct nt {
	struct vguest g;
	struct virtio_net *n;
	struct fake_be be;
};

static const uint8_t MAC[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };

static void nt_up(struct nt *t, uint32_t offloads, unsigned mtu, uint64_t feats)
{
	memset(t, 0, sizeof(*t));
	vg_init(&t->g);
	pthread_mutex_init(&t->be.lock, NULL);
	t->be.base.offloads = offloads;
	t->be.base.mtu = mtu;
	char err[200];
	t->n = virtio_net_create(&t->g.ram, "nettest", MAC, fake_open, &t->be, err, sizeof(err));
	if (!t->n) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	vg_attach(&t->g, virtio_net_dev(t->n));
	CHECK(vg_negotiate(&t->g, feats));
	vg_queue_setup(&t->g, Q_RX, 64);
	vg_queue_setup(&t->g, Q_TX, 64);
	vg_driver_ok(&t->g);
}

static void nt_down(struct nt *t)
{
	virtio_net_destroy(t->n);
	vg_fini(&t->g);
	pthread_mutex_destroy(&t->be.lock);
}

static uint64_t cfg_read(struct nt *t, uint32_t off, unsigned size)
{
	uint64_t v = 0;
	virtio_mmio_ops.read(&t->g.t, VIRTIO_MMIO_CONFIG + off, size, &v);
	return v;
}

static uint64_t rx_buf(struct nt *t, uint32_t len)
{
	uint64_t a = vg_alloc(&t->g, len, 8);
	struct vg_seg s = { a, len, true };
	vg_submit(&t->g, Q_RX, &s, 1, false);
	return a;
}

/* A frame with a zero header: `len` bytes of Ethernet, byte i = seed + i. */
static size_t make_frame(uint8_t *buf, size_t len, uint8_t seed)
{
	memset(buf, 0, HDR);
	for (size_t i = 0; i < len; i++)
		buf[HDR + i] = (uint8_t)(seed + i);
	return HDR + len;
}

/* ---- virtio-net tests ---- */

static void test_features_and_config(void)
{
	struct nt t;
	nt_up(&t, NET_OFF_TX_CSUM | NET_OFF_TX_TSO4 | NET_OFF_RX_CSUM, 9000,
	      F_V1 | F_MAC | F_STATUS | F_MRG | F_MTU);
	uint64_t f = vg_device_features(&t.g);
	CHECK(f & F_MAC);
	CHECK(f & F_STATUS);
	CHECK(f & F_MRG);
	CHECK(f & F_MTU);
	CHECK(f & F_CSUM);
	CHECK(f & F_HOST_TSO4);
	CHECK(f & F_GUEST_CSUM);
	CHECK(!(f & (1ull << 12)));     /* HOST_TSO6: backend did not offer it */
	CHECK(!(f & (1ull << 7)));      /* GUEST_TSO4 */
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(cfg_read(&t, i, 1), MAC[i]);
	CHECK_EQ(cfg_read(&t, 6, 2), 1);       /* VIRTIO_NET_S_LINK_UP */
	CHECK_EQ(cfg_read(&t, 8, 2), 1);       /* max_virtqueue_pairs */
	CHECK_EQ(cfg_read(&t, 10, 2), 9000);   /* mtu */
	/* The driver cannot change the MAC (read-only for VERSION_1). */
	virtio_mmio_ops.write(&t.g.t, VIRTIO_MMIO_CONFIG, 1, 0xff);
	CHECK_EQ(cfg_read(&t, 0, 1), MAC[0]);
	nt_down(&t);

	/* Accepting GUEST_TSO without GUEST_CSUM is refused (5.1.3.1). */
	nt_up(&t, NET_OFF_RX_CSUM | NET_OFF_RX_TSO4, 0, F_V1);
	CHECK(!vg_negotiate(&t.g, F_V1 | (1ull << 7)));
	CHECK(vg_negotiate(&t.g, F_V1 | (1ull << 7) | F_GUEST_CSUM));
	CHECK_EQ(atomic_load(&t.be.rx_offloads), NET_OFF_RX_CSUM | NET_OFF_RX_TSO4);
	nt_down(&t);
}

static bool sent_one(struct vguest *g)
{
	struct nt *t = (struct nt *)g;
	return atomic_load(&t->be.sent) >= 1;
}

static void test_tx(void)
{
	struct nt t;
	nt_up(&t, NET_OFF_TX_CSUM, 0, F_V1 | F_EVENT_IDX);
	/* Header and frame in two descriptors. */
	uint64_t h = vg_alloc(&t.g, HDR, 8), fr = vg_alloc(&t.g, 60, 8);
	uint8_t *fp = vg_host(&t.g, fr);
	for (int i = 0; i < 60; i++)
		fp[i] = (uint8_t)(0xa0 + i);
	struct vg_seg segs[2] = { { h, HDR, false }, { fr, 60, false } };
	vg_submit(&t.g, Q_TX, segs, 2, false);
	uint32_t id, len;
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	CHECK_EQ(len, 0);
	CHECK(vg_wait(sent_one, &t.g));
	CHECK_EQ(t.be.last_len, HDR + 60);
	CHECK(!memcmp(t.be.last + HDR, fp, 60));

	/* NEEDS_CSUM without CSUM negotiated: dropped, buffer returned. */
	struct net_vnet_hdr *vh = vg_host(&t.g, h);
	vh->flags = NET_HDR_F_NEEDS_CSUM;
	vh->csum_start = 34;
	vh->csum_offset = 16;
	vg_submit(&t.g, Q_TX, segs, 2, false);
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	vg_settle(&t.g);
	CHECK_EQ(atomic_load(&t.be.sent), 1);
	/* Too short to be an Ethernet frame: dropped. */
	memset(vh, 0, HDR);
	struct vg_seg tiny[1] = { { h, HDR + 4, false } };
	vg_submit(&t.g, Q_TX, tiny, 1, false);
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	vg_settle(&t.g);
	CHECK_EQ(atomic_load(&t.be.sent), 1);
	struct virtio_net_stats st;
	virtio_net_get_stats(t.n, &st);
	CHECK_EQ(st.tx_frames, 1);
	CHECK_EQ(st.tx_dropped, 2);
	nt_down(&t);

	/* With CSUM negotiated the same request goes through. */
	nt_up(&t, NET_OFF_TX_CSUM, 0, F_V1 | F_CSUM);
	h = vg_alloc(&t.g, HDR, 8);
	fr = vg_alloc(&t.g, 60, 8);
	vh = vg_host(&t.g, h);
	vh->flags = NET_HDR_F_NEEDS_CSUM;
	vh->csum_start = 34;
	vh->csum_offset = 16;
	struct vg_seg s2[2] = { { h, HDR, false }, { fr, 60, false } };
	vg_submit(&t.g, Q_TX, s2, 2, false);
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	CHECK(vg_wait(sent_one, &t.g));
	/* ... but a checksum offset beyond the frame is dropped. */
	vh->csum_offset = 60;
	vg_submit(&t.g, Q_TX, s2, 2, false);
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	vg_settle(&t.g);
	CHECK_EQ(atomic_load(&t.be.sent), 1);
	nt_down(&t);
}

static bool sent_two(struct vguest *g)
{
	return atomic_load(&((struct nt *)g)->be.sent) >= 2;
}

static void test_tx_backend_full(void)
{
	struct nt t;
	nt_up(&t, 0, 0, F_V1);
	atomic_store(&t.be.full, true);
	uint64_t a = vg_alloc(&t.g, HDR + 60, 8), b = vg_alloc(&t.g, HDR + 60, 8);
	struct vg_seg s1 = { a, HDR + 60, false }, s2 = { b, HDR + 60, false };
	vg_submit(&t.g, Q_TX, &s1, 1, false);
	vg_submit(&t.g, Q_TX, &s2, 1, false);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_TX), 0);   /* held, not returned */
	atomic_store(&t.be.full, false);
	t.be.cb.tx_ready(t.be.cb.ctx);
	uint32_t id, len;
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	CHECK(vg_wait(sent_two, &t.g));
	nt_down(&t);
}

static bool irq_rose(struct vguest *g)
{
	return atomic_load(&g->irq_rises) >= 1;
}

static void test_rx_single_buffers(void)
{
	struct nt t;
	nt_up(&t, 0, 0, F_V1 | F_EVENT_IDX);
	uint8_t frame[2000];
	/* A frame before any buffer waits in the device. */
	size_t n = make_frame(frame, 100, 1);
	CHECK(t.be.cb.rx(t.be.cb.ctx, frame, n));
	vg_settle(&t.g);
	uint64_t b0 = rx_buf(&t, 1526);
	uint32_t id, len;
	CHECK(vg_wait_used(&t.g, Q_RX, &id, &len));
	CHECK_EQ(len, HDR + 100);
	uint8_t *p = vg_host(&t.g, b0);
	CHECK_EQ(p[10] | p[11] << 8, 1);   /* num_buffers is 1 without MRG_RXBUF */
	CHECK(!memcmp(p + HDR, frame + HDR, 100));
	CHECK(vg_wait(irq_rose, &t.g));   /* raised just after the used ring moved */

	/* Too big for the lone buffer: dropped, the buffer comes back empty. */
	rx_buf(&t, 200);
	n = make_frame(frame, 1000, 2);
	t.be.cb.rx(t.be.cb.ctx, frame, n);
	CHECK(vg_wait_used(&t.g, Q_RX, &id, &len));
	CHECK_EQ(len, 0);
	/* The next frame goes into the next buffer. */
	uint64_t b2 = rx_buf(&t, 1526);
	n = make_frame(frame, 64, 3);
	t.be.cb.rx(t.be.cb.ctx, frame, n);
	CHECK(vg_wait_used(&t.g, Q_RX, &id, &len));
	CHECK_EQ(len, HDR + 64);
	CHECK(!memcmp((uint8_t *)vg_host(&t.g, b2) + HDR, frame + HDR, 64));
	struct virtio_net_stats st;
	virtio_net_get_stats(t.n, &st);
	CHECK_EQ(st.rx_frames, 2);
	CHECK_EQ(st.rx_dropped, 1);
	nt_down(&t);
}

static void test_rx_mergeable(void)
{
	struct nt t;
	nt_up(&t, 0, 0, F_V1 | F_MRG | F_EVENT_IDX);
	uint8_t frame[3000];
	size_t n = make_frame(frame, 2500, 7);   /* 2512 bytes with the header */
	/* One buffer only: the frame is half-delivered and waits. */
	uint64_t b[3];
	b[0] = rx_buf(&t, 1000);
	t.be.cb.rx(t.be.cb.ctx, frame, n);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_RX), 0);
	b[1] = rx_buf(&t, 1000);
	b[2] = rx_buf(&t, 1000);
	uint32_t id, len[3];
	for (int i = 0; i < 3; i++)
		CHECK(vg_wait_used(&t.g, Q_RX, &id, &len[i]));
	CHECK_EQ(len[0], 1000);
	CHECK_EQ(len[1], 1000);
	CHECK_EQ(len[2], 512);
	uint8_t *p0 = vg_host(&t.g, b[0]);
	CHECK_EQ(p0[10] | p0[11] << 8, 3);   /* num_buffers */
	uint8_t got[2512];
	memcpy(got, p0, 1000);
	memcpy(got + 1000, vg_host(&t.g, b[1]), 1000);
	memcpy(got + 2000, vg_host(&t.g, b[2]), 512);
	CHECK(!memcmp(got + HDR, frame + HDR, 2500));

	/* Two small frames in two buffers: one buffer each. */
	uint64_t c0 = rx_buf(&t, 1000), c1 = rx_buf(&t, 1000);
	n = make_frame(frame, 50, 9);
	t.be.cb.rx(t.be.cb.ctx, frame, n);
	t.be.cb.rx(t.be.cb.ctx, frame, n);
	CHECK(vg_wait_used(&t.g, Q_RX, &id, &len[0]));
	CHECK(vg_wait_used(&t.g, Q_RX, &id, &len[1]));
	CHECK_EQ(len[0], HDR + 50);
	CHECK_EQ(len[1], HDR + 50);
	CHECK_EQ(((uint8_t *)vg_host(&t.g, c0))[10], 1);
	CHECK_EQ(((uint8_t *)vg_host(&t.g, c1))[10], 1);
	nt_down(&t);
}

static void test_rx_congestion_and_reset(void)
{
	struct nt t;
	nt_up(&t, 0, 0, F_V1 | F_MRG);
	uint8_t frame[200];
	size_t n = make_frame(frame, 100, 0);
	int accepted = 0;
	bool said_full = false;
	for (int i = 0; i < 400 && !said_full; i++) {
		said_full = !t.be.cb.rx(t.be.cb.ctx, frame, n);
		accepted++;
	}
	CHECK(said_full);
	CHECK(!t.be.cb.can_rx(t.be.cb.ctx));
	CHECK_EQ(atomic_load(&t.be.resumes), 0);
	/* Buffers take some. */
	for (int i = 0; i < 63; i++)
		rx_buf(&t, 256);
	vg_settle(&t.g);
	for (int i = 0; i < 50 && vg_used_idx(&t.g, Q_RX) != 63; i++)
		vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_RX), 63);
	/* 63 delivered, the rest (above the low-water mark) still wait. */
	CHECK_EQ(accepted, 256);
	CHECK_EQ(atomic_load(&t.be.resumes), 0);
	/* A reset drops what still waits and wakes the backend. */
	vg_w32(&t.g, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(atomic_load(&t.be.resumes), 1);
	CHECK(t.be.cb.can_rx(t.be.cb.ctx));
	nt_down(&t);
}

static void test_rx_buffer_without_writable_part(void)
{
	struct nt t;
	nt_up(&t, 0, 0, F_V1);
	uint64_t a = vg_alloc(&t.g, 100, 8);
	struct vg_seg s = { a, 100, false };
	vg_submit(&t.g, Q_RX, &s, 1, false);
	uint8_t frame[100];
	size_t n = make_frame(frame, 60, 0);
	t.be.cb.rx(t.be.cb.ctx, frame, n);
	CHECK(vg_wait(vg_needs_reset, &t.g));
	nt_down(&t);
}

static void test_tx_rate_limit(void)
{
	struct nt t;
	nt_up(&t, 0, 0, F_V1);
	struct rate_limiter *rl = virtio_net_limiter(t.n, true);
	token_bucket_set(&rl->ops, 2, 0, 1000);  /* 2 frames a second */
	uint64_t a[6];
	double t0 = clock_monotonic_s();
	for (int i = 0; i < 6; i++) {
		a[i] = vg_alloc(&t.g, HDR + 60, 8);
		make_frame(vg_host(&t.g, a[i]), 60, (uint8_t)i);
		struct vg_seg sg = { a[i], HDR + 60, false };
		vg_submit(&t.g, Q_TX, &sg, 1, false);
	}
	vg_settle(&t.g);
	/* The full bucket's two at once, and not all six: a third may have
	 * refilled already when this thread ran late (a loaded host). */
	CHECK(atomic_load(&t.be.sent) >= 2 && atomic_load(&t.be.sent) < 6);
	uint32_t id, len;
	for (int i = 0; i < 6; i++)
		CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	double dt = clock_monotonic_s() - t0;
	CHECK_EQ(atomic_load(&t.be.sent), 6);
	CHECK(dt >= 1.8);                        /* 4 more at 2 per second */
	/* The last frame sent is the last one queued: order kept. */
	CHECK(!memcmp(t.be.last, vg_host(&t.g, a[5]), HDR + 60));
	struct virtio_net_stats st;
	virtio_net_get_stats(t.n, &st);
	CHECK(st.tx_throttled > 0);
	CHECK_EQ(st.rx_throttled, 0);

	/* A slow bucket holds the second frame; lifting the limit frees it
	 * long before the bucket would have. */
	token_bucket_set(&rl->bytes, 100, 0, 60000);  /* 100 bytes a minute */
	token_bucket_set(&rl->ops, 0, 0, 0);
	virtio_net_limits_changed(t.n);
	struct vg_seg sg0 = { a[0], HDR + 60, false }, sg1 = { a[1], HDR + 60, false };
	vg_submit(&t.g, Q_TX, &sg0, 1, false);
	vg_submit(&t.g, Q_TX, &sg1, 1, false);
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	vg_settle(&t.g);
	CHECK_EQ(atomic_load(&t.be.sent), 7);
	CHECK_EQ(vg_used_idx(&t.g, Q_TX), 7);
	token_bucket_set(&rl->bytes, 0, 0, 0);
	virtio_net_limits_changed(t.n);
	CHECK(vg_wait_used(&t.g, Q_TX, &id, &len));
	CHECK_EQ(atomic_load(&t.be.sent), 8);
	nt_down(&t);
}

static void test_rx_rate_limit(void)
{
	struct nt t;
	nt_up(&t, 0, 0, F_V1);
	struct rate_limiter *rl = virtio_net_limiter(t.n, false);
	token_bucket_set(&rl->bytes, 1000, 0, 1000); /* 1000 bytes a second */
	uint64_t b[5];
	for (int i = 0; i < 5; i++)
		b[i] = rx_buf(&t, 1526);
	uint8_t frame[600];
	double t0 = clock_monotonic_s();
	for (int i = 0; i < 5; i++) {
		size_t n = make_frame(frame, 500, (uint8_t)(i * 7));
		CHECK(t.be.cb.rx(t.be.cb.ctx, frame, n));
	}
	vg_settle(&t.g);
	/* 1000 bytes from the full bucket, not all five (a late thread may see
	 * one more refilled). */
	CHECK(vg_used_idx(&t.g, Q_RX) >= 2 && vg_used_idx(&t.g, Q_RX) < 5);
	uint32_t id, len;
	for (int i = 0; i < 5; i++) {
		CHECK(vg_wait_used(&t.g, Q_RX, &id, &len));
		CHECK_EQ(len, HDR + 500);
		make_frame(frame, 500, (uint8_t)(i * 7));
		CHECK(!memcmp((uint8_t *)vg_host(&t.g, b[i]) + HDR, frame + HDR, 500));
	}
	double dt = clock_monotonic_s() - t0;
	CHECK(dt >= 1.3);                       /* 1500 more bytes at 1000 a second */
	struct virtio_net_stats st;
	virtio_net_get_stats(t.n, &st);
	CHECK_EQ(st.rx_frames, 5);
	CHECK(st.rx_throttled > 0);

	/* A frame waiting on a slow bucket is delivered once the limit goes. */
	token_bucket_set(&rl->bytes, 0, 0, 0);
	token_bucket_set(&rl->ops, 1, 0, 60000);     /* one frame a minute */
	virtio_net_limits_changed(t.n);
	rx_buf(&t, 1526);
	rx_buf(&t, 1526);
	size_t n = make_frame(frame, 100, 3);
	CHECK(t.be.cb.rx(t.be.cb.ctx, frame, n));
	CHECK(t.be.cb.rx(t.be.cb.ctx, frame, n));
	CHECK(vg_wait_used(&t.g, Q_RX, &id, &len));
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_RX), 6);
	token_bucket_set(&rl->ops, 0, 0, 0);
	virtio_net_limits_changed(t.n);
	CHECK(vg_wait_used(&t.g, Q_RX, &id, &len));
	CHECK_EQ(len, HDR + 100);
	nt_down(&t);
}

static void test_default_mac(void)
{
	uint8_t a[6], b[6], c[6], d[6];
	virtio_net_default_mac("vm1", 0, a);
	virtio_net_default_mac("vm1", 0, b);
	virtio_net_default_mac("vm1", 1, c);
	virtio_net_default_mac("vm2", 0, d);
	CHECK(!memcmp(a, b, 6));
	CHECK(memcmp(a, c, 6));
	CHECK(memcmp(a, d, 6));
	CHECK_EQ(a[0] & 3, 2);   /* locally administered, unicast */
	CHECK_EQ(c[0] & 3, 2);
	virtio_net_default_mac(NULL, 0, a);
	CHECK_EQ(a[0] & 3, 2);
}

/* ---- offload tests ---- */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += be16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* True if the L4 checksum of an IPv4 TCP/UDP frame verifies. */
static bool l4_ok_v4(const uint8_t *f, size_t len, uint8_t proto)
{
	size_t ihl = (f[14] & 15) * 4, l4 = 14 + ihl, l4len = len - l4;
	uint32_t s = sum16(f + 26, 8, 0) + proto + (uint32_t)l4len;
	return fold(sum16(f + l4, l4len, s)) == 0xffff;
}

static bool l4_ok_v6(const uint8_t *f, size_t len)
{
	size_t l4 = 54, l4len = len - l4;
	uint32_t s = sum16(f + 22, 32, 0) + 6 + (uint32_t)l4len;
	return fold(sum16(f + l4, l4len, s)) == 0xffff;
}

struct segs {
	int n;
	size_t len[64];
	uint8_t data[64][1600];
};

static void collect(void *ctx, const uint8_t *frame, size_t len)
{
	struct segs *s = ctx;
	if (s->n < 64 && len <= sizeof(s->data[0])) {
		memcpy(s->data[s->n], frame, len);
		s->len[s->n] = len;
	}
	s->n++;
}

/* An Ethernet + IPv4 + TCP frame with `payload` bytes; checksum fields
 * left as a driver would for CHECKSUM_PARTIAL (pseudo header sum). */
static size_t tcp4_frame(uint8_t *f, size_t payload, uint8_t flags)
{
	memset(f, 0, 54);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	size_t tot = 20 + 20 + payload;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[4] = 0x12;
	ip[5] = 0x34;
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 2, 15, 10, 0, 2, 2 }, 8);
	uint8_t *tcp = ip + 20;
	tcp[0] = 0x9c; tcp[1] = 0x40; tcp[2] = 0x00; tcp[3] = 0x50;
	tcp[4] = 0x01; tcp[5] = 0x02; tcp[6] = 0x03; tcp[7] = 0x04;   /* seq */
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	for (size_t i = 0; i < payload; i++)
		f[54 + i] = (uint8_t)(i * 7);
	return 54 + payload;
}

static void test_offload_csum(void)
{
	uint8_t f[200], scratch[1600];
	size_t len = tcp4_frame(f, 100, 0x18);
	struct net_vnet_hdr h = { .flags = NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 };
	/* Pseudo header sum in the checksum field, as Linux leaves it. */
	uint32_t ps = sum16(f + 26, 8, 0) + 6 + (uint32_t)(len - 34);
	f[50] = (uint8_t)(fold(ps) >> 8);
	f[51] = (uint8_t)fold(ps);
	struct segs *s = calloc(1, sizeof(*s));
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, sizeof(scratch), collect, s), 0);
	CHECK_EQ(s->n, 1);
	CHECK(l4_ok_v4(s->data[0], s->len[0], 6));

	/* UDP whose checksum comes out 0 is sent as 0xffff (RFC 768). */
	memset(s, 0, sizeof(*s));
	uint8_t u[64] = { 0 };
	struct net_vnet_hdr hu = { .flags = NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 };
	/* Payload chosen so the sum over [34, 42) with field 0 is 0xffff. */
	u[34] = 0xff;
	u[35] = 0xff;
	CHECK_EQ(net_offload_segment(&hu, u, 42, scratch, sizeof(scratch), collect, s), 0);
	CHECK_EQ(be16(s->data[0] + 40), 0xffff);

	/* csum_start + offset past the frame: refused, nothing emitted. */
	memset(s, 0, sizeof(*s));
	h.csum_offset = 200;
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, sizeof(scratch), collect, s), -1);
	CHECK_EQ(s->n, 0);
	free(s);
}

static void test_offload_tso4(void)
{
	static uint8_t f[4000];
	uint8_t scratch[1600];
	size_t len = tcp4_frame(f, 3000, 0x19);   /* FIN | PSH | ACK */
	struct net_vnet_hdr h = { .flags = NET_HDR_F_NEEDS_CSUM, .gso_type = NET_HDR_GSO_TCPV4,
				  .gso_size = 1000, .hdr_len = 54, .csum_start = 34, .csum_offset = 16 };
	struct segs *s = calloc(1, sizeof(*s));
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, sizeof(scratch), collect, s), 0);
	CHECK_EQ(s->n, 3);
	for (int i = 0; i < 3 && i < s->n; i++) {
		uint8_t *g = s->data[i];
		CHECK_EQ(s->len[i], 54 + 1000);
		CHECK_EQ(be16(g + 16), 1040);                     /* total length */
		CHECK_EQ(be16(g + 18), 0x1234 + i);               /* identification */
		CHECK_EQ(fold(sum16(g + 14, 20, 0)), 0xffff);     /* IP header checksum */
		CHECK_EQ(be32(g + 38), 0x01020304u + 1000u * (unsigned)i);
		CHECK(l4_ok_v4(g, s->len[i], 6));
		uint8_t fl = g[47];
		CHECK_EQ(fl & 0x10, 0x10);                        /* ACK kept */
		CHECK_EQ(!!(fl & 0x09), i == 2);                  /* FIN, PSH only last */
		CHECK(!memcmp(g + 54, f + 54 + 1000 * i, 1000));
	}
	/* Bad: MSS too small, scratch too small, wrong IP version, not TCP. */
	memset(s, 0, sizeof(*s));
	h.gso_size = 8;
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, sizeof(scratch), collect, s), -1);
	h.gso_size = 1000;
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, 500, collect, s), -1);
	f[23] = 17;
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, sizeof(scratch), collect, s), -1);
	f[23] = 6;
	h.gso_type = NET_HDR_GSO_TCPV6;
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, sizeof(scratch), collect, s), -1);
	h.gso_type = NET_HDR_GSO_UDP;
	CHECK_EQ(net_offload_segment(&h, f, len, scratch, sizeof(scratch), collect, s), -1);
	/* A frame cut inside the TCP header. */
	h.gso_type = NET_HDR_GSO_TCPV4;
	CHECK_EQ(net_offload_segment(&h, f, 40, scratch, sizeof(scratch), collect, s), -1);
	CHECK_EQ(s->n, 0);
	/* An MSS of 65535 over 65535 bytes of payload: the segment's IPv4
	 * total length (65575) would not fit its 16-bit field. */
	static uint8_t big[54 + 65535], big_scratch[NET_MAX_FRAME];
	size_t big_len = tcp4_frame(big, 65535, 0x18);
	h.gso_size = 65535;
	CHECK_EQ(net_offload_segment(&h, big, big_len, big_scratch, sizeof(big_scratch), collect, s), -1);
	CHECK_EQ(s->n, 0);
	free(s);
}

static void test_offload_tso6(void)
{
	static uint8_t f[3000];
	uint8_t scratch[1600];
	memset(f, 0, 74);
	f[12] = 0x86;
	f[13] = 0xdd;
	f[14] = 0x60;
	size_t payload = 2100;
	f[18] = (uint8_t)((20 + payload) >> 8);
	f[19] = (uint8_t)(20 + payload);
	f[20] = 6;
	f[21] = 64;
	f[22] = 0xfe; f[23] = 0x80; f[37] = 1;
	f[38] = 0xfe; f[39] = 0x80; f[53] = 2;
	f[66] = 5 << 4;
	f[67] = 0x10;
	for (size_t i = 0; i < payload; i++)
		f[74 + i] = (uint8_t)i;
	struct net_vnet_hdr h = { .flags = NET_HDR_F_NEEDS_CSUM, .gso_type = NET_HDR_GSO_TCPV6,
				  .gso_size = 1000, .csum_start = 54, .csum_offset = 16 };
	struct segs *s = calloc(1, sizeof(*s));
	CHECK_EQ(net_offload_segment(&h, f, 74 + payload, scratch, sizeof(scratch), collect, s), 0);
	CHECK_EQ(s->n, 3);
	size_t want[3] = { 1000, 1000, 100 };
	for (int i = 0; i < 3 && i < s->n; i++) {
		CHECK_EQ(s->len[i], 74 + want[i]);
		CHECK_EQ(be16(s->data[i] + 18), 20 + want[i]);   /* payload length */
		CHECK_EQ(be32(s->data[i] + 58), 1000u * (unsigned)i);
		CHECK(l4_ok_v6(s->data[i], s->len[i]));
	}
	free(s);
}

int main(void)
{
	test_features_and_config();
	test_tx();
	test_tx_backend_full();
	test_rx_single_buffers();
	test_rx_mergeable();
	test_rx_congestion_and_reset();
	test_rx_buffer_without_writable_part();
	test_tx_rate_limit();
	test_rx_rate_limit();
	test_default_mac();
	test_offload_csum();
	test_offload_tso4();
	test_offload_tso6();
	return vt_report();
}

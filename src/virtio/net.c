/*
 * virtio-net device model (virtio 1.2 section 5.1): one receiveq (0) and
 * one transmitq (1) in front of a host backend (src/backend/net/net.h).
 *
 * Features offered: MAC, STATUS (link always up), MRG_RXBUF, MTU when the
 * backend asks for one, and the checksum / TSO offloads the backend accepts
 * (CSUM, HOST_TSO4/6 towards the backend; GUEST_CSUM, GUEST_TSO4/6 from
 * it). The 12-byte header in front of every packet (5.1.6) is exactly what
 * the backend interface carries, so frames pass through unchanged except
 * for num_buffers.
 *
 * Transmit (5.1.6.2) runs on the device's I/O thread: each chain's readable
 * part is header + frame; a header asking for an offload that was not
 * negotiated, or a frame of impossible size, is dropped. When the backend
 * is full the chain is held until it calls tx_ready.
 *
 * Receive (5.1.6.3, 5.1.6.4) runs on the backend's thread (and on the I/O
 * thread when the driver adds buffers): frames wait in a bounded queue and
 * are copied into the driver's buffers, one chain per frame or, with
 * MRG_RXBUF, as many chains as the frame needs, their count in the first
 * header's num_buffers. A frame whose chains are only partly available
 * stays half-delivered (chains popped, not yet pushed) until the driver
 * adds more, so the used entries of one frame are always contiguous. Above
 * a high-water mark the backend is told to stop reading host input; it is
 * woken again below a low-water mark.
 *
 * Rate limits (Firecracker's rx_rate_limiter / tx_rate_limiter): a token
 * bucket pair per direction, charged one operation and the Ethernet frame's
 * bytes per frame, before a transmit chain goes to the backend and before a
 * pending frame starts into the receive buffers. Neither thread sleeps on
 * a bucket: a throttled transmit chain is held (like one the backend had no
 * room for), a throttled receive frame stays pending (past the high-water
 * mark the backend stops reading host input, so TCP senders slow down), and
 * the device's retry timer kicks the queue when the bucket will have
 * refilled. The limits change at any time (token_bucket_set, then
 * virtio_net_limits_changed).
 *
 * Locking: the receiveq's vq->lock, then n->rxlock (the frame queue and the
 * half-delivered frame), then a bucket's lock or the timer's lock.
 */
#include "virtio/net.h"
#include "base/thread_start.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/snapfile.h"
#include "virtio/net_mmds.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_GUEST_UFO  10
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_HOST_UFO   14
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_S_LINK_UP 1

#define Q_RX 0
#define Q_TX 1
#define NET_QUEUE_SIZE 256

#define RX_PENDING_MAX 1024     /* frames waiting for receive buffers */
#define RX_PENDING_HIGH 256     /* backend stops reading host input */
#define RX_PENDING_LOW 64       /* ... and is woken again */
#define RX_MAX_CHAINS 128       /* buffers one frame may take (MRG_RXBUF) */
#define RX_SEGS_PER_CHAIN 4     /* writable segments used per buffer */

#define F(bit) (1ull << (bit))

struct rx_frame {
	size_t len;
	uint8_t data[];
};

/* One popped receive chain of a half-delivered frame. */
struct rx_chain {
	uint16_t head;
	unsigned nseg;
	uint32_t written;
	struct iovec iov[RX_SEGS_PER_CHAIN];
	uint64_t gpa[RX_SEGS_PER_CHAIN];
};

struct virtio_net {
	struct virtio_dev dev;       /* first: container_of is a cast */
	char name[32];
	uint8_t config[12];          /* mac, status, max_virtqueue_pairs, mtu */
	struct net_backend *be;
	uint32_t be_offloads;
	/* The metadata service's address on this NIC (net_mmds.h), or NULL;
	 * set before the guest runs. */
	struct net_mmds *mmds;
	uint8_t *mmds_buf;           /* a frame for it (transmitq lock) */
	bool closing;                /* set under both queue locks at destroy */
	uint8_t saved_mac[6];        /* the MAC a restored device had when saved */

	/* Negotiated (FEATURES_OK): read by both threads. */
	_Atomic bool mrg;
	_Atomic uint64_t feat;

	/* Receive: receiveq lock, then rxlock. */
	pthread_mutex_t rxlock;
	struct rx_frame *pending[RX_PENDING_MAX];
	unsigned phead, plen;
	bool congested;
	struct rx_chain chains[RX_MAX_CHAINS];
	unsigned nchains;            /* > 0: the head frame is half-delivered */
	size_t rx_off;               /* bytes of it already written */
	struct virtq_req *rxreq;     /* scratch for popping (receiveq lock) */
	struct virtq_req *pushreq;   /* scratch for pushing (receiveq lock) */

	/* Transmit (I/O thread, transmitq lock). */
	struct virtq_req *tx_held;
	bool has_held;

	/* Rate limits: guest-bound (rx) and host-bound (tx). */
	struct rate_limiter limit[2];       /* indexed by Q_RX, Q_TX */
	bool rx_paid;                /* the head pending frame is charged (rxlock) */
	bool held_paid;              /* tx_held is charged (transmitq lock) */

	/* Retry timer: kicks a throttled queue once its bucket has refilled. */
	pthread_t timer;
	bool timer_started;
	pthread_mutex_t tlock;
	pthread_cond_t tcond;        /* CLOCK_MONOTONIC */
	uint64_t due[2];             /* when to kick queue q (ns); 0: never */
	bool tstop;

	_Atomic uint64_t rx_frames, rx_dropped, tx_frames, tx_dropped, rx_bytes, tx_bytes;
};

/* Kick queue q in `wait` ns (or sooner, if already due sooner). */
static void timer_arm(struct virtio_net *n, unsigned q, uint64_t wait)
{
	uint64_t when = clock_monotonic_ns() + wait;
	pthread_mutex_lock(&n->tlock);
	if (!n->due[q] || when < n->due[q]) {
		n->due[q] = when;
		pthread_cond_signal(&n->tcond);
	}
	pthread_mutex_unlock(&n->tlock);
}

static void *timer_thread(void *arg)
{
	struct virtio_net *n = arg;
	pthread_mutex_lock(&n->tlock);
	while (!n->tstop) {
		uint64_t next = 0;
		for (unsigned q = 0; q < 2; q++)
			if (n->due[q] && (!next || n->due[q] < next))
				next = n->due[q];
		if (!next) {
			pthread_cond_wait(&n->tcond, &n->tlock);
			continue;
		}
		uint64_t now = clock_monotonic_ns();
		if (now < next) {
			struct timespec ts = clock_timespec(next);
			pthread_cond_timedwait(&n->tcond, &n->tlock, &ts);
			continue;
		}
		bool kick[2];
		for (unsigned q = 0; q < 2; q++) {
			kick[q] = n->due[q] && n->due[q] <= now;
			if (kick[q])
				n->due[q] = 0;
		}
		pthread_mutex_unlock(&n->tlock);
		for (unsigned q = 0; q < 2; q++)
			if (kick[q])
				virtio_dev_kick(&n->dev, q);
		pthread_mutex_lock(&n->tlock);
	}
	pthread_mutex_unlock(&n->tlock);
	return NULL;
}

/* Charge one frame of `bytes` to queue q's limits; false (and the timer
 * armed) when it must wait. */
static bool charge(struct virtio_net *n, unsigned q, uint64_t bytes)
{
	uint64_t wait = rate_limiter_try(&n->limit[q], bytes);
	if (wait)
		timer_arm(n, q, wait);
	return wait == 0;
}

static bool rx_usable(struct virtio_net *n, struct virtq *vq)
{
	return !n->closing && vq->ready && !vq->broken && virtio_dev_active(&n->dev);
}

/* Write src into a recorded chain at byte offset off; returns bytes written. */
static size_t chain_write(struct rx_chain *c, size_t off, const uint8_t *src, size_t len)
{
	size_t done = 0;
	for (unsigned k = 0; k < c->nseg && done < len; k++) {
		size_t seg = c->iov[k].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t m = seg - off < len - done ? seg - off : len - done;
		memcpy((uint8_t *)c->iov[k].iov_base + off, src + done, m);
		done += m;
		off = 0;
	}
	return done;
}

static size_t chain_capacity(const struct rx_chain *c)
{
	size_t cap = 0;
	for (unsigned k = 0; k < c->nseg; k++)
		cap += c->iov[k].iov_len;
	return cap;
}

/* Push every chain of the head frame (rxlock and receiveq lock held). */
static void rx_push_chains(struct virtio_net *n, struct virtq *vq, bool drop)
{
	struct virtq_req *r = n->pushreq;
	for (unsigned i = 0; i < n->nchains; i++) {
		struct rx_chain *c = &n->chains[i];
		r->head = c->head;
		r->nout = 0;
		r->nin = c->nseg;
		r->out_len = 0;
		r->in_len = chain_capacity(c);
		for (unsigned k = 0; k < c->nseg; k++) {
			r->iov[k] = c->iov[k];
			r->gpa[k] = c->gpa[k];
		}
		virtq_push(vq, r, drop ? 0 : c->written);
	}
	n->nchains = 0;
	n->rx_off = 0;
}

/* Deliver the head pending frame. 1: done (delivered or dropped), 0: out of
 * buffers (the frame stays half-delivered), -1: the queue is broken. */
static int rx_fill(struct virtio_net *n, struct virtq *vq, const struct rx_frame *f)
{
	bool mrg = atomic_load(&n->mrg);
	while (n->rx_off < f->len) {
		if (n->nchains == RX_MAX_CHAINS || (!mrg && n->nchains == 1))
			break;   /* no more buffers for this frame: truncated / dropped */
		struct virtq_req *req = n->rxreq;
		int r = virtq_pop(vq, req);
		if (r <= 0)
			return r;
		if (req->nin == 0) {
			/* 5.1.6.3.1: receive buffers are device-writable. */
			virtio_dev_fail(&n->dev, "receive buffer without a device-writable part");
			return -1;
		}
		struct rx_chain *c = &n->chains[n->nchains++];
		c->head = req->head;
		c->nseg = req->nin < RX_SEGS_PER_CHAIN ? req->nin : RX_SEGS_PER_CHAIN;
		for (unsigned k = 0; k < c->nseg; k++) {
			c->iov[k] = req->iov[req->nout + k];
			c->gpa[k] = req->gpa[req->nout + k];
		}
		c->written = (uint32_t)chain_write(c, 0, f->data + n->rx_off, f->len - n->rx_off);
		n->rx_off += c->written;
	}
	bool complete = n->rx_off == f->len;
	if (mrg || complete) {
		/* num_buffers (5.1.6.4): the chains used; 1 without MRG_RXBUF. */
		uint8_t nb[2] = { (uint8_t)n->nchains, (uint8_t)(n->nchains >> 8) };
		chain_write(&n->chains[0], 10, nb, 2);
	}
	if (!complete) {
		atomic_fetch_add(&n->rx_dropped, 1);
	} else {
		atomic_fetch_add(&n->rx_frames, 1);
		atomic_fetch_add(&n->rx_bytes, f->len - NET_VNET_HDR_LEN);
	}
	/* Without MRG_RXBUF a frame that does not fit one buffer is dropped
	 * (the buffer goes back empty); with it, a frame needing more than
	 * RX_MAX_CHAINS buffers is delivered truncated. */
	rx_push_chains(n, vq, !mrg && !complete);
	return 1;
}

/* Deliver pending frames while buffers last (receiveq lock and rxlock
 * held, queue usable). */
static void rx_flush(struct virtio_net *n, struct virtq *vq)
{
	bool throttled = false;
	for (;;) {
		while (n->plen) {
			struct rx_frame *f = n->pending[n->phead];
			if (!n->rx_paid) {
				if (!charge(n, Q_RX, f->len - NET_VNET_HDR_LEN)) {
					throttled = true;   /* the timer kicks us */
					break;
				}
				n->rx_paid = true;
			}
			int r = rx_fill(n, vq, f);
			if (r < 0)
				return;
			if (r == 0)
				break;
			n->rx_paid = false;
			free(f);
			n->phead = (n->phead + 1) % RX_PENDING_MAX;
			n->plen--;
		}
		/* Out of frames: no need to hear about new buffers. Out of
		 * buffers: ask to be notified (and recheck, 2.7.10). */
		if (throttled || !n->plen || !virtq_enable_notify(vq))
			break;
	}
	if (n->congested && n->plen <= RX_PENDING_LOW) {
		n->congested = false;
		net_backend_rx_resume(n->be);
	}
}

static void rx_drop_all(struct virtio_net *n)
{
	while (n->plen) {
		free(n->pending[n->phead]);
		n->phead = (n->phead + 1) % RX_PENDING_MAX;
		n->plen--;
	}
	n->nchains = 0;
	n->rx_off = 0;
	n->rx_paid = false;
}

/* Backend thread: a frame for the guest. */
static bool be_rx(void *ctx, const uint8_t *frame, size_t len)
{
	struct virtio_net *n = ctx;
	struct virtq *vq = &n->dev.vqs[Q_RX];
	pthread_mutex_lock(&vq->lock);
	pthread_mutex_lock(&n->rxlock);
	if (n->plen == RX_PENDING_MAX || len < NET_VNET_HDR_LEN) {
		atomic_fetch_add(&n->rx_dropped, 1);
	} else {
		struct rx_frame *f = malloc(sizeof(*f) + len);
		if (f) {
			f->len = len;
			memcpy(f->data, frame, len);
			n->pending[(n->phead + n->plen) % RX_PENDING_MAX] = f;
			n->plen++;
		} else {
			atomic_fetch_add(&n->rx_dropped, 1);
		}
	}
	bool usable = rx_usable(n, vq);
	if (usable)
		rx_flush(n, vq);
	bool ok = n->plen < RX_PENDING_HIGH;
	if (!ok)
		n->congested = true;
	pthread_mutex_unlock(&n->rxlock);
	if (usable)
		virtio_dev_used(&n->dev, vq);
	pthread_mutex_unlock(&vq->lock);
	return ok;
}

static bool be_can_rx(void *ctx)
{
	struct virtio_net *n = ctx;
	pthread_mutex_lock(&n->rxlock);
	bool ok = n->plen < RX_PENDING_HIGH;
	if (!ok)
		n->congested = true;
	pthread_mutex_unlock(&n->rxlock);
	return ok;
}

static void be_tx_ready(void *ctx)
{
	struct virtio_net *n = ctx;
	virtio_dev_kick(&n->dev, Q_TX);
}

/* One transmit chain. 0: done (sent or dropped), -EAGAIN: backend full. */
static int tx_one(struct virtio_net *n, struct virtq_req *req)
{
	struct net_vnet_hdr h;
	if (req->out_len < NET_VNET_HDR_LEN + 14 || req->out_len > NET_VNET_HDR_LEN + NET_MAX_FRAME ||
	    virtq_req_read(req, 0, &h, sizeof(h)) != sizeof(h))
		goto drop;
	uint64_t f = atomic_load(&n->feat);
	if ((h.flags & NET_HDR_F_NEEDS_CSUM) && !(f & F(VIRTIO_NET_F_CSUM)))
		goto drop;
	if (h.flags & NET_HDR_F_NEEDS_CSUM) {
		uint64_t flen = req->out_len - NET_VNET_HDR_LEN;
		if ((uint64_t)h.csum_start + h.csum_offset + 2 > flen)
			goto drop;
	}
	switch (h.gso_type) {
	case NET_HDR_GSO_NONE:
		break;
	case NET_HDR_GSO_TCPV4:
		if (!(f & F(VIRTIO_NET_F_HOST_TSO4)) || !(h.flags & NET_HDR_F_NEEDS_CSUM))
			goto drop;
		break;
	case NET_HDR_GSO_TCPV6:
		if (!(f & F(VIRTIO_NET_F_HOST_TSO6)) || !(h.flags & NET_HDR_F_NEEDS_CSUM))
			goto drop;
		break;
	default:
		goto drop;   /* UFO and ECN were not offered */
	}
	if (n->mmds) {
		/* Frames for the metadata service never reach the backend. */
		size_t len = (size_t)req->out_len - NET_VNET_HDR_LEN;
		if (virtq_req_read(req, NET_VNET_HDR_LEN, n->mmds_buf, len) == len &&
		    net_mmds_frame(n->mmds, n->mmds_buf, len)) {
			atomic_fetch_add(&n->tx_frames, 1);
			virtio_dev_schedule_event(&n->dev);   /* its answers, without our locks */
			return 0;
		}
	}
	int r = net_backend_send(n->be, req->iov, req->nout);
	if (r == -EAGAIN)
		return r;
	atomic_fetch_add(&n->tx_frames, 1);
	atomic_fetch_add(&n->tx_bytes, req->out_len - NET_VNET_HDR_LEN);
	return 0;
drop:
	atomic_fetch_add(&n->tx_dropped, 1);
	return 0;
}

/* The bytes a transmit chain costs: its Ethernet frame. */
static uint64_t tx_bytes(const struct virtq_req *req)
{
	return req->out_len > NET_VNET_HDR_LEN ? req->out_len - NET_VNET_HDR_LEN : 0;
}

static void tx_process(struct virtio_net *n, struct virtq *vq)
{
	if (n->closing)
		return;
	if (n->has_held) {
		if (!n->held_paid && !charge(n, Q_TX, tx_bytes(n->tx_held)))
			return;   /* the timer kicks us again */
		n->held_paid = true;
		if (tx_one(n, n->tx_held) == -EAGAIN)
			return;   /* tx_ready kicks us again */
		virtq_push(vq, n->tx_held, 0);
		n->has_held = false;
	}
	struct virtq_req *req = n->dev.req;
	unsigned budget = vq->size;
	int r;
	for (;;) {
		virtq_disable_notify(vq);
		while ((r = virtq_pop(vq, req)) > 0) {
			bool paid = charge(n, Q_TX, tx_bytes(req));
			if (!paid || tx_one(n, req) == -EAGAIN) {
				memcpy(n->tx_held, req, sizeof(*req));
				n->has_held = true;
				n->held_paid = paid;
				virtio_dev_used(&n->dev, vq);
				return;
			}
			virtq_push(vq, req, 0);
			if (--budget == 0) {
				virtio_dev_used(&n->dev, vq);
				virtio_dev_kick(&n->dev, vq->index);
				return;
			}
		}
		if (r < 0 || !virtq_enable_notify(vq))
			break;
	}
	virtio_dev_used(&n->dev, vq);
}

static void net_process(struct virtio_dev *dev, struct virtq *vq)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	if (vq->index == Q_TX) {
		tx_process(n, vq);
		return;
	}
	if (vq->index != Q_RX)
		return;
	pthread_mutex_lock(&n->rxlock);
	if (!n->closing)
		rx_flush(n, vq);
	pthread_mutex_unlock(&n->rxlock);
	virtio_dev_used(dev, vq);
}

static bool net_features_ok(struct virtio_dev *dev, uint64_t f)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	/* Dependencies (5.1.3.1). */
	if ((f & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6))) &&
	    !(f & F(VIRTIO_NET_F_GUEST_CSUM)))
		return false;
	if ((f & (F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6))) &&
	    !(f & F(VIRTIO_NET_F_CSUM)))
		return false;
	atomic_store(&n->feat, f);
	atomic_store(&n->mrg, (f & F(VIRTIO_NET_F_MRG_RXBUF)) != 0);
	uint32_t rx = 0;
	if (f & F(VIRTIO_NET_F_GUEST_CSUM))
		rx |= NET_OFF_RX_CSUM;
	if (f & F(VIRTIO_NET_F_GUEST_TSO4))
		rx |= NET_OFF_RX_TSO4;
	if (f & F(VIRTIO_NET_F_GUEST_TSO6))
		rx |= NET_OFF_RX_TSO6;
	net_backend_set_offloads(n->be, rx);
	return true;
}

static void net_reset(struct virtio_dev *dev)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	/* Every queue lock is held: neither thread is delivering. */
	pthread_mutex_lock(&n->rxlock);
	rx_drop_all(n);
	bool wake = n->congested;
	n->congested = false;
	pthread_mutex_unlock(&n->rxlock);
	n->has_held = false;
	atomic_store(&n->feat, 0);
	atomic_store(&n->mrg, false);
	net_backend_set_offloads(n->be, 0);
	if (wake)
		net_backend_rx_resume(n->be);
}

static bool net_config_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	*value = virtio_config_get(n->config, sizeof(n->config), off, size);
	return true;
}

static bool net_config_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value)
{
	return true;   /* read-only for a VERSION_1 driver (5.1.4.2) */
}

/* Snapshots. Frames waiting for receive buffers are not kept (a network
 * loses packets; TCP sends them again); the chains of a half-delivered
 * frame and a held transmit chain go back to their rings, so the restored
 * device takes them again. The restored VM opens its backend anew; the
 * backend's own state, if it keeps any (the user network's, see
 * backend/net/user_state.c), is the host section below. The MAC is kept
 * to compare: a clone may have been given another one (network_overrides),
 * which the configuration space then shows. */
static int net_save(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		 char *err, size_t errlen)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	pthread_mutex_lock(&n->rxlock);
	unpopped[Q_RX] = (uint16_t)n->nchains;
	pthread_mutex_unlock(&n->rxlock);
	unpopped[Q_TX] = n->has_held;
	snap_put_bytes(w, n->config, 6);
	return 0;
}

static void net_load(struct virtio_dev *dev, struct snap_reader *r)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	snap_get_bytes(r, n->saved_mac, sizeof(n->saved_mac));
}

/* The host section: u8 kind, then the backend's own state. */
#define HOST_NONE 0     /* a backend without state (TAP) */
#define HOST_USER 1     /* the user network (libslirp) */

static int net_save_host(struct virtio_dev *dev, struct snap_writer *w, char *err, size_t errlen)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	if (!net_backend_has_state(n->be)) {
		snap_put_u8(w, HOST_NONE);
		return 0;
	}
	snap_put_u8(w, HOST_USER);
	return net_backend_save(n->be, w, err, errlen);
}

static void net_load_host(struct virtio_dev *dev, struct snap_reader *r)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	uint8_t kind = snap_get_u8(r);
	if (r->overrun || kind == HOST_NONE)
		return;
	if (kind != HOST_USER) {
		snap_reader_fail(r, "host state of unknown kind %u", kind);
		return;
	}
	if (!net_backend_has_state(n->be)) {
		snap_reader_fail(r, "%s: the snapshot holds user network state for a NIC on "
				 "another backend", n->name);
		return;
	}
	/* The DHCP leases name the MAC they were given to: a clone with a
	 * new MAC keeps its address only if its renewal finds it free. */
	bool same_nic = !memcmp(n->saved_mac, n->config, 6);
	net_backend_load(n->be, r, same_nic);
}

/* I/O thread, no lock held: the metadata service's answers go to the
 * guest like frames from the backend. */
static void net_event(struct virtio_dev *dev)
{
	struct virtio_net *n = (struct virtio_net *)dev;
	if (!n->mmds)
		return;
	size_t len;
	while ((len = net_mmds_take(n->mmds, n->mmds_buf + NET_VNET_HDR_LEN,
				    NET_MAX_FRAME)) > 0) {
		memset(n->mmds_buf, 0, NET_VNET_HDR_LEN);   /* checksums complete */
		be_rx(n, n->mmds_buf, NET_VNET_HDR_LEN + len);
	}
}

static const struct virtio_dev_ops net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.features_ok = net_features_ok,
	.queue_process = net_process,
	.reset = net_reset,
	.event = net_event,
	.save_version = 1,
	.save = net_save,
	.load = net_load,
	.host_version = 1,
	.save_host = net_save_host,
	.load_host = net_load_host,
};

static void timer_stop(struct virtio_net *n)
{
	if (n->timer_started) {
		pthread_mutex_lock(&n->tlock);
		n->tstop = true;
		pthread_cond_signal(&n->tcond);
		pthread_mutex_unlock(&n->tlock);
		pthread_join(n->timer, NULL);
		n->timer_started = false;
	}
}

static void net_free(struct virtio_net *n)
{
	pthread_mutex_destroy(&n->tlock);
	pthread_cond_destroy(&n->tcond);
	rate_limiter_destroy(&n->limit[Q_RX]);
	rate_limiter_destroy(&n->limit[Q_TX]);
	free(n->rxreq);
	free(n->pushreq);
	free(n->tx_held);
	net_mmds_free(n->mmds);
	free(n->mmds_buf);
	free(n);
}

struct virtio_net *virtio_net_create(struct gram *ram, const char *name, const uint8_t mac[6],
				     net_backend_open_fn *open, void *open_arg,
				     char *err, size_t errlen)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "virtio-net: out of memory");
		return NULL;
	}
	snprintf(n->name, sizeof(n->name), "%s", name ? name : "net");
	rate_limiter_init(&n->limit[Q_RX]);
	rate_limiter_init(&n->limit[Q_TX]);
	pthread_mutex_init(&n->tlock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->tcond, &ca);
	pthread_condattr_destroy(&ca);
	n->rxreq = malloc(sizeof(*n->rxreq));
	n->pushreq = malloc(sizeof(*n->pushreq));
	n->tx_held = malloc(sizeof(*n->tx_held));
	if (!n->rxreq || !n->pushreq || !n->tx_held) {
		snprintf(err, errlen, "%s: out of memory", n->name);
		net_free(n);
		return NULL;
	}
	pthread_mutex_init(&n->rxlock, NULL);
	struct net_backend_cb cb = { .ctx = n, .rx = be_rx, .can_rx = be_can_rx,
				     .tx_ready = be_tx_ready, .threads = ram ? ram->threads : NULL };
	/* The backend may call back as soon as it exists, so the device's
	 * locks and queues must exist first. */
	uint16_t sizes[2] = { NET_QUEUE_SIZE, NET_QUEUE_SIZE };
	if (virtio_dev_init(&n->dev, &net_ops, ram, 0, 2, sizes, err, errlen)) {
		pthread_mutex_destroy(&n->rxlock);
		net_free(n);
		return NULL;
	}
	int e = thread_start(ram ? ram->threads : NULL, &n->timer, "net-limit", timer_thread, n);
	if (e) {
		snprintf(err, errlen, "%s: cannot start the rate limit timer: %s", n->name, strerror(e));
		virtio_dev_fini(&n->dev);
		pthread_mutex_destroy(&n->rxlock);
		net_free(n);
		return NULL;
	}
	n->timer_started = true;
	n->be = open(open_arg, &cb, err, errlen);
	if (!n->be) {
		timer_stop(n);
		virtio_dev_fini(&n->dev);
		pthread_mutex_destroy(&n->rxlock);
		net_free(n);
		return NULL;
	}
	uint32_t off = n->be->offloads;
	uint64_t feat = F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF);
	if (n->be->mtu)
		feat |= F(VIRTIO_NET_F_MTU);
	if (off & NET_OFF_TX_CSUM) {
		feat |= F(VIRTIO_NET_F_CSUM);
		if (off & NET_OFF_TX_TSO4)
			feat |= F(VIRTIO_NET_F_HOST_TSO4);
		if (off & NET_OFF_TX_TSO6)
			feat |= F(VIRTIO_NET_F_HOST_TSO6);
	}
	if (off & NET_OFF_RX_CSUM) {
		feat |= F(VIRTIO_NET_F_GUEST_CSUM);
		if (off & NET_OFF_RX_TSO4)
			feat |= F(VIRTIO_NET_F_GUEST_TSO4);
		if (off & NET_OFF_RX_TSO6)
			feat |= F(VIRTIO_NET_F_GUEST_TSO6);
	}
	n->dev.host_features |= feat;
	memcpy(n->config, mac, 6);
	n->config[6] = VIRTIO_NET_S_LINK_UP;
	n->config[8] = 1;                      /* max_virtqueue_pairs */
	n->config[10] = (uint8_t)n->be->mtu;
	n->config[11] = (uint8_t)(n->be->mtu >> 8);
	if (virtio_dev_start(&n->dev, err, errlen)) {
		net_backend_destroy(n->be);
		timer_stop(n);
		virtio_dev_fini(&n->dev);
		pthread_mutex_destroy(&n->rxlock);
		net_free(n);
		return NULL;
	}
	return n;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	/* Stop both directions from reaching the backend, then stop its
	 * thread (which calls into us), the timer (which kicks the I/O
	 * thread), then the I/O thread (which calls into the backend). */
	struct virtq *rx = &n->dev.vqs[Q_RX], *tx = &n->dev.vqs[Q_TX];
	pthread_mutex_lock(&rx->lock);
	pthread_mutex_lock(&tx->lock);
	n->closing = true;
	pthread_mutex_unlock(&tx->lock);
	pthread_mutex_unlock(&rx->lock);
	net_backend_destroy(n->be);
	timer_stop(n);
	virtio_dev_fini(&n->dev);
	pthread_mutex_lock(&n->rxlock);
	rx_drop_all(n);
	pthread_mutex_unlock(&n->rxlock);
	pthread_mutex_destroy(&n->rxlock);
	net_free(n);
}

struct virtio_dev *virtio_net_dev(struct virtio_net *n)
{
	return &n->dev;
}

struct rate_limiter *virtio_net_limiter(struct virtio_net *n, bool tx)
{
	return &n->limit[tx ? Q_TX : Q_RX];
}

void virtio_net_limits_changed(struct virtio_net *n)
{
	virtio_dev_kick(&n->dev, Q_TX);
	virtio_dev_kick(&n->dev, Q_RX);
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s)
{
	s->rx_frames = atomic_load(&n->rx_frames);
	s->rx_dropped = atomic_load(&n->rx_dropped);
	s->tx_frames = atomic_load(&n->tx_frames);
	s->tx_dropped = atomic_load(&n->tx_dropped);
	s->rx_bytes = atomic_load(&n->rx_bytes);
	s->tx_bytes = atomic_load(&n->tx_bytes);
	s->rx_throttled = atomic_load(&n->limit[Q_RX].bytes.throttled) +
			  atomic_load(&n->limit[Q_RX].ops.throttled);
	s->tx_throttled = atomic_load(&n->limit[Q_TX].bytes.throttled) +
			  atomic_load(&n->limit[Q_TX].ops.throttled);
}

void virtio_net_default_mac(const char *vm_name, unsigned index, uint8_t mac[6])
{
	/* FNV-1a (64-bit) over the name and the index. */
	uint64_t h = 0xcbf29ce484222325ull;
	const char *s = vm_name ? vm_name : "";
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint8_t)(index >> (8 * i))) * 0x100000001b3ull;
	/* Locally administered (bit 1), unicast (bit 0 clear). */
	mac[0] = 0x02;
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

int virtio_net_set_mmds(struct virtio_net *n, const struct net_mmds_config *c)
{
	uint8_t *buf = malloc(NET_VNET_HDR_LEN + NET_MAX_FRAME);
	struct net_mmds *m = buf ? net_mmds_new(c) : NULL;
	if (!m) {
		free(buf);
		return -1;
	}
	n->mmds_buf = buf;
	n->mmds = m;
	return 0;
}

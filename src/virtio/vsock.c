/*
 * virtio-vsock device model (virtio 1.2 section 5.10), stream sockets only,
 * bridged to host Unix sockets the way Firecracker does it (vsock_uds.h):
 * a host program's "CONNECT <port>" becomes a REQUEST to the guest from
 * host CID 2 and a fresh local port, answered "OK <localport>" on the
 * guest's RESPONSE; a guest REQUEST to CID 2 port P becomes a connection
 * to the backend's socket for P, answered RESPONSE, or RST when nobody
 * (or not skiff's user) is there.
 *
 * Queues (5.10.2): 0 rx (device -> driver packets), 1 tx, 2 event (only
 * the transport reset event after a snapshot restore). Each packet is a 44-byte
 * header (5.10.6) and, for RW, its payload.
 *
 * Flow control (5.10.6.3): every packet the device sends carries its
 * buf_alloc (bytes it buffers per connection for guest data the host has
 * not read yet) and fwd_cnt (bytes of guest data handed to the host
 * socket). The device sends the guest at most peer_buf_alloc - (tx_cnt -
 * peer_fwd_cnt) bytes, stops reading the host socket when that credit is
 * gone, and answers CREDIT_REQUEST; it sends CREDIT_UPDATE by itself when
 * the guest's view of its credit falls below half the buffer and the host
 * has read more. A guest that sends past its credit gets the connection
 * reset.
 *
 * Close (5.10.6.6): host EOF -> SHUTDOWN(SEND) to the guest; a host socket
 * error -> RST. Guest SHUTDOWN(SEND) -> shutdown(SHUT_WR) on the host socket
 * once buffered data is written; SHUTDOWN with both flags -> the host socket
 * is closed and the device answers RST; guest RST -> closed at once.
 *
 * Threads. One thread of the device's own does all the work: it waits on
 * an epoll set (the listening socket, every connection's socket and an
 * eventfd the queue notifications ring) and then, holding the three queue
 * locks (in index order, as a device reset takes them) and v->lock, serves
 * the transmit queue, the sockets and the receive queue. The common I/O
 * thread only forwards notifications.
 *
 * Files: this one is the device (queues, thread, virtio ops);
 * vsock_rx.c what it puts into the receive queue; vsock_conn.c the
 * connection state machine; vsock_uds.c the host backend (Unix sockets);
 * vsock_dev.h what they share.
 */
#include "virtio/vsock_dev.h"
#include "base/thread_start.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/snapfile.h"

#define VSOCK_QUEUE_SIZE 256
#define EPOLL_BATCH 64

static void wake(struct virtio_vsock *v)
{
	uint64_t one = 1;
	ssize_t r = write(v->evfd, &one, sizeof(one));
	(void)r;
}

static void serve_tx(struct virtio_vsock *v, struct virtq *vq)
{
	struct virtq_req *req = v->txreq;
	unsigned budget = vq->size;
	int r;
	for (;;) {
		virtq_disable_notify(vq);
		while ((r = virtq_pop(vq, req)) > 0) {
			vconn_guest_packet(v, req);
			virtq_push(vq, req, 0);
			if (--budget == 0) {
				virtio_dev_used(&v->dev, vq);
				wake(v);   /* the rest on the next pass */
				return;
			}
		}
		if (r < 0 || !virtq_enable_notify(vq))
			break;
	}
	virtio_dev_used(&v->dev, vq);
}

/* Register what each socket should wake us for. */
static void update_epoll(struct virtio_vsock *v, bool rx_room)
{
	for (unsigned i = 0; i < v->nconns; i++) {
		struct vconn *c = v->conns[i];
		if (c->fd < 0 || c->ev == EV_REMOVED)
			continue;
		if (c->hup) {
			/* Hang-up cannot be masked in epoll and would wake us
			 * forever: the socket leaves the set, and the passes
			 * (driven by the guest) read it to its end. */
			epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
			c->ev = EV_REMOVED;
			continue;
		}
		uint32_t ev = 0;
		if (c->state == C_HOST_LINE)
			ev |= EPOLLIN;
		else if (c->state == C_ESTABLISHED && !c->host_eof && !c->guest_shut_rcv &&
			 vconn_peer_credit(c) && rx_room && !c->readable)
			ev |= EPOLLIN;
		if (c->buf_len)
			ev |= EPOLLOUT;
		if (ev != c->ev) {
			struct epoll_event e = { .events = ev, .data.ptr = c };
			epoll_ctl(v->epfd, EPOLL_CTL_MOD, c->fd, &e);
			c->ev = ev;
		}
	}
}

static bool queue_usable(struct virtio_vsock *v, struct virtq *vq)
{
	return vq->ready && !vq->broken && virtio_dev_active(&v->dev);
}

/* One pass over everything, after epoll said what happened. */
static void vsock_pass(struct virtio_vsock *v, bool listener)
{
	struct virtq *rxq = &v->dev.vqs[Q_RX], *txq = &v->dev.vqs[Q_TX], *evq = &v->dev.vqs[Q_EVT];
	pthread_mutex_lock(&rxq->lock);
	pthread_mutex_lock(&txq->lock);
	pthread_mutex_lock(&evq->lock);
	pthread_mutex_lock(&v->lock);
	bool live = queue_usable(v, rxq) && queue_usable(v, txq);
	if (listener)
		vconn_accept(v);
	if (live)
		serve_tx(v, txq);
	vconn_sweep(v, live);
	bool rx_room = false;
	if (live) {
		rx_room = vsock_serve_rx(v, rxq);
		virtio_dev_used(&v->dev, rxq);
	}
	update_epoll(v, rx_room);
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_unlock(&evq->lock);
	pthread_mutex_unlock(&txq->lock);
	pthread_mutex_unlock(&rxq->lock);
}

/* How long the I/O thread may sleep: until the earliest handshake deadline,
 * or for ever when no handshake is in progress. */
static int handshake_wait_ms(struct virtio_vsock *v)
{
	pthread_mutex_lock(&v->lock);
	uint64_t first = vconn_first_deadline(v);
	pthread_mutex_unlock(&v->lock);
	if (first == UINT64_MAX)
		return -1;
	uint64_t now = clock_monotonic_ns();
	return first <= now ? 0 : (int)((first - now) / 1000000 + 1);
}

static void *vsock_thread(void *arg)
{
	struct virtio_vsock *v = arg;
	struct epoll_event evs[EPOLL_BATCH];
	while (!atomic_load(&v->stop)) {
		int n = epoll_wait(v->epfd, evs, EPOLL_BATCH, handshake_wait_ms(v));
		bool listener = false;
		if (n < 0)
			continue;
		pthread_mutex_lock(&v->lock);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &v->evfd) {
				uint64_t x;
				ssize_t r = read(v->evfd, &x, sizeof(x));
				(void)r;
			} else if (p == &v->host) {
				listener = true;
			} else {
				/* Still a live connection? (one closed in this
				 * batch cannot be, its fd left the set) */
				struct vconn *c = p;
				for (unsigned k = 0; k < v->nconns; k++) {
					if (v->conns[k] != c)
						continue;
					if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
						c->readable = true;
					if (evs[i].events & EPOLLOUT)
						c->writable = true;
					if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
						c->hup = true;
						c->readable = true;
					}
					break;
				}
			}
		}
		pthread_mutex_unlock(&v->lock);
		if (!atomic_load(&v->stop))
			vsock_pass(v, listener);
	}
	return NULL;
}

/* ---- device ops ---- */

/* The transport reset event (5.10.6.7, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET),
 * owed after a restore: the guest drops every connection (their host ends
 * are gone) and reads guest_cid again. Event queue lock held. */
static void send_reset_event(struct virtio_vsock *v, struct virtq *vq)
{
	if (!atomic_load(&v->reset_due))
		return;
	struct virtq_req *req = v->dev.req;
	if (virtq_pop(vq, req) <= 0)
		return;   /* no buffer yet: when the driver adds one */
	uint32_t id = 0;   /* TRANSPORT_RESET, le32 */
	uint32_t n = (uint32_t)virtq_req_write(req, 0, &id, sizeof(id));
	virtq_push(vq, req, n);
	virtio_dev_used(&v->dev, vq);
	atomic_store(&v->reset_due, false);
}

static void vsock_notify(struct virtio_dev *dev, unsigned q)
{
	if (q == Q_EVT)
		virtio_dev_kick(dev, q);
	else
		wake((struct virtio_vsock *)dev);
}

static void vsock_process(struct virtio_dev *dev, struct virtq *vq)
{
	if (vq->index == Q_EVT)
		send_reset_event((struct virtio_vsock *)dev, vq);
	else
		wake((struct virtio_vsock *)dev);   /* e.g. DRIVER_OK: look at the queues */
}

/* Snapshots: no connection survives (their host sockets belong to the old
 * process); the receive chain the device held goes back to its ring. The
 * restored device then sends the transport reset event. */
static int vsock_save(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		   char *err, size_t errlen)
{
	struct virtio_vsock *v = (struct virtio_vsock *)dev;
	pthread_mutex_lock(&v->lock);
	unpopped[Q_RX] = v->rx_held;
	pthread_mutex_unlock(&v->lock);
	snap_put_u64(w, v->guest_cid);
	return 0;
}

static void vsock_load(struct virtio_dev *dev, struct snap_reader *r)
{
	snap_get_u64(r);   /* the CID then; a clone may have another (vsock_override) */
}

static void vsock_restored(struct virtio_dev *dev)
{
	struct virtio_vsock *v = (struct virtio_vsock *)dev;
	atomic_store(&v->reset_due, true);
	virtio_dev_kick(dev, Q_EVT);
}

static void vsock_reset(struct virtio_dev *dev)
{
	struct virtio_vsock *v = (struct virtio_vsock *)dev;
	/* Every queue lock is held, so the thread is between passes. A reset
	 * ends every connection (host sockets see EOF). */
	pthread_mutex_lock(&v->lock);
	while (v->nconns)
		vconn_free(v, v->nconns - 1);
	v->nstray = 0;
	v->rx_held = false;
	pthread_mutex_unlock(&v->lock);
	atomic_store(&v->reset_due, false);
}

static bool vsock_config_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value)
{
	struct virtio_vsock *v = (struct virtio_vsock *)dev;
	*value = virtio_config_get(v->config, sizeof(v->config), off, size);
	return true;
}

static bool vsock_config_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value)
{
	return true;   /* guest_cid is read-only */
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
	.queue_notify = vsock_notify,
	.queue_process = vsock_process,
	.reset = vsock_reset,
	.save_version = 1,
	.save = vsock_save,
	.load = vsock_load,
	.restored = vsock_restored,
};

static void vsock_free(struct virtio_vsock *v)
{
	vsock_uds_close(&v->host);
	if (v->epfd >= 0)
		close(v->epfd);
	if (v->evfd >= 0)
		close(v->evfd);
	free(v->conns);
	free(v->bounce);
	free(v->rxreq);
	free(v->txreq);
	free(v);
}

struct virtio_vsock *virtio_vsock_create(struct gram *ram, uint64_t guest_cid, const char *uds_path,
					 char *err, size_t errlen)
{
	if (guest_cid < 3 || guest_cid >= UINT32_MAX) {
		snprintf(err, errlen, "virtio-vsock: guest CID %" PRIu64 " out of range (3 to %u)",
			 guest_cid, UINT32_MAX - 1);
		return NULL;
	}
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "virtio-vsock: out of memory");
		return NULL;
	}
	v->host.listen_fd = v->epfd = v->evfd = -1;
	v->guest_cid = guest_cid;
	v->next_port = 1u << 30;   /* the first local port, as Firecracker */
	memcpy(v->config, &guest_cid, 8);   /* le64 */
	v->conns = calloc(MAX_CONNS, sizeof(*v->conns));
	v->bounce = malloc(MAX_PKT);
	v->rxreq = malloc(sizeof(*v->rxreq));
	v->txreq = malloc(sizeof(*v->txreq));
	if (!v->conns || !v->bounce || !v->rxreq || !v->txreq) {
		snprintf(err, errlen, "virtio-vsock: out of memory");
		vsock_free(v);
		return NULL;
	}
	char why[400];
	if (vsock_uds_open(&v->host, uds_path, why, sizeof(why))) {
		snprintf(err, errlen, "virtio-vsock: %s", why);
		vsock_free(v);
		return NULL;
	}
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	v->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event el = { .events = EPOLLIN, .data.ptr = &v->host };
	struct epoll_event ee = { .events = EPOLLIN, .data.ptr = &v->evfd };
	if (v->epfd < 0 || v->evfd < 0 || epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->host.listen_fd, &el) < 0 ||
	    epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->evfd, &ee) < 0) {
		snprintf(err, errlen, "virtio-vsock: epoll/eventfd: %s", strerror(errno));
		vsock_free(v);
		return NULL;
	}
	uint16_t sizes[3] = { VSOCK_QUEUE_SIZE, VSOCK_QUEUE_SIZE, VSOCK_QUEUE_SIZE };
	if (virtio_dev_init(&v->dev, &vsock_ops, ram, 0, 3, sizes, err, errlen)) {
		vsock_free(v);
		return NULL;
	}
	pthread_mutex_init(&v->lock, NULL);
	int e = thread_start(ram ? ram->threads : NULL, &v->thread, "vsock", vsock_thread, v);
	if (e) {
		snprintf(err, errlen, "virtio-vsock: cannot start its thread: %s", strerror(e));
		virtio_dev_fini(&v->dev);
		pthread_mutex_destroy(&v->lock);
		vsock_free(v);
		return NULL;
	}
	v->thread_started = true;
	if (virtio_dev_start(&v->dev, err, errlen)) {
		virtio_vsock_destroy(v);
		return NULL;
	}
	return v;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	if (v->thread_started) {
		atomic_store(&v->stop, true);
		wake(v);
		pthread_join(v->thread, NULL);
	}
	virtio_dev_fini(&v->dev);
	while (v->nconns)
		vconn_free(v, v->nconns - 1);
	pthread_mutex_destroy(&v->lock);
	vsock_free(v);
}

struct virtio_dev *virtio_vsock_dev(struct virtio_vsock *v)
{
	return &v->dev;
}

void virtio_vsock_get_stats(struct virtio_vsock *v, struct virtio_vsock_stats *s)
{
	s->connections = atomic_load(&v->nconns_now);
	s->tx_bytes = atomic_load(&v->tx_bytes);
	s->rx_bytes = atomic_load(&v->rx_bytes);
	s->resets_sent = atomic_load(&v->resets_sent);
	s->foreign_refused = atomic_load(&v->host.foreign_refused);
}

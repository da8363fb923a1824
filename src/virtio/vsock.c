/*
 * virtio-vsock device model (virtio 1.2 section 5.10), stream sockets only,
 * bridged to host Unix sockets the way Firecracker does it:
 *
 *   host -> guest: a program connects to the listening socket uds_path and
 *     writes "CONNECT <port>\n"; the device sends the guest a REQUEST from
 *     host CID 2 and a fresh local port; on the guest's RESPONSE it writes
 *     "OK <localport>\n" and the Unix socket carries the stream from then
 *     on; a RST (nobody listening) closes it.
 *   guest -> host: a REQUEST to CID 2 port P connects to "<uds_path>_P";
 *     RESPONSE if that works, RST if not. In a shared directory another
 *     local user could make "<uds_path>_P" first and receive what the
 *     guest meant for the host, so the socket must be owned by skiff's own
 *     user and so must the process listening on it (SO_PEERCRED), else
 *     the guest gets a RST and the refusal is reported once.
 *
 * The listening socket is mode 0600 whatever the umask (base/unix_sock.c).
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
 */
#include "virtio/vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/snapfile.h"
#include "base/unix_sock.h"

#define Q_RX 0
#define Q_TX 1
#define Q_EVT 2
#define VSOCK_QUEUE_SIZE 256

#define HOST_CID 2
#define TYPE_STREAM 1

/* Operations (5.10.6). */
#define OP_REQUEST        1
#define OP_RESPONSE       2
#define OP_RST            3
#define OP_SHUTDOWN       4
#define OP_RW             5
#define OP_CREDIT_UPDATE  6
#define OP_CREDIT_REQUEST 7
#define SHUT_F_RCV  1
#define SHUT_F_SEND 2

#define BUF_ALLOC (256u * 1024)      /* per connection, guest -> host */
#define MAX_PKT (64u * 1024)         /* largest payload taken or sent */
#define MAX_CONNS 1024
#define CONNECT_LINE_MAX 32
#define STRAY_RST_MAX 64
#define FIRST_LOCAL_PORT (1u << 30)  /* as Firecracker */
#define EPOLL_BATCH 64
/* A host client that does not finish its CONNECT line, or a guest that does
 * not answer the REQUEST, within this time loses the connection (the same
 * bound as Firecracker's), so a stuck handshake never holds a slot. */
#define HANDSHAKE_TIMEOUT_NS (2000ull * 1000 * 1000)
#define EV_REMOVED 0xffffffffu          /* vconn.ev: not in the epoll set */

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

enum conn_state {
	C_HOST_LINE,      /* accepted, waiting for "CONNECT <port>\n" */
	C_REQUESTED,      /* REQUEST sent to the guest, waiting for RESPONSE */
	C_ESTABLISHED,
};

/* Control packets a connection owes the guest. */
#define P_REQUEST  1u
#define P_RESPONSE 2u
#define P_CREDIT   4u
#define P_SHUTDOWN 8u
#define P_RST      16u

struct vconn {
	int fd;
	enum conn_state state;
	uint64_t deadline;       /* C_HOST_LINE, C_REQUESTED: CLOCK_MONOTONIC ns */
	uint32_t local_port;     /* host side (CID 2) */
	uint32_t peer_port;      /* guest side */
	uint32_t pending;        /* P_* */
	uint32_t shut_flags;     /* for P_SHUTDOWN */
	uint32_t ev;             /* epoll events registered now */
	bool readable, writable, hup;   /* from the last epoll_wait */

	/* Credit (5.10.6.3). */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;         /* payload bytes sent to the guest */
	uint32_t rx_cnt;         /* payload bytes received from the guest */
	uint32_t fwd_cnt;        /* ... of which written to the host socket */
	uint32_t fwd_told;       /* fwd_cnt as last sent to the guest */

	/* Guest data the host socket has not taken yet (a ring). */
	uint8_t *buf;
	size_t buf_head, buf_len;

	bool guest_shut_send;    /* guest sends no more data */
	bool guest_shut_rcv;     /* guest takes no more data */
	bool host_eof;           /* the host socket returned EOF */
	bool host_shut_wr_done;

	char line[CONNECT_LINE_MAX + 1];
	size_t linelen;
};

struct stray_rst {
	uint32_t src_port, dst_port;   /* as the reply carries them */
};

struct virtio_vsock {
	struct virtio_dev dev;         /* first: container_of is a cast */
	uint8_t config[8];             /* guest_cid */
	uint64_t guest_cid;
	char *uds_path;
	struct unix_sock_file uds_file;   /* removed at the end only if still ours */
	int listen_fd, epfd, evfd;
	pthread_t thread;
	bool thread_started;
	_Atomic bool stop;

	pthread_mutex_t lock;          /* everything below */
	struct vconn **conns;
	unsigned nconns;
	uint32_t next_port;
	struct stray_rst stray[STRAY_RST_MAX];
	unsigned nstray;
	uint8_t *bounce;               /* one packet's payload */
	struct virtq_req *rxreq;       /* a receive chain kept for later */
	bool rx_held;
	struct virtq_req *txreq;

	_Atomic bool reset_due;        /* a transport reset event is owed */

	_Atomic uint64_t tx_bytes, rx_bytes, resets_sent;
	_Atomic unsigned nconns_now;
	_Atomic uint64_t foreign_refused; /* guest connections to another user's socket */
};

static void wake(struct virtio_vsock *v)
{
	uint64_t one = 1;
	ssize_t r = write(v->evfd, &one, sizeof(one));
	(void)r;
}

/* ---- connections (v->lock held) ---- */

static struct vconn *conn_find(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < v->nconns; i++) {
		struct vconn *c = v->conns[i];
		if (c->state != C_HOST_LINE && c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

static struct vconn *conn_new(struct virtio_vsock *v, int fd)
{
	if (v->nconns >= MAX_CONNS)
		return NULL;
	struct vconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	struct epoll_event e = { .events = 0, .data.ptr = c };
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		free(c);
		return NULL;
	}
	v->conns[v->nconns++] = c;
	atomic_store(&v->nconns_now, v->nconns);
	return c;
}

static void conn_free(struct virtio_vsock *v, unsigned i)
{
	struct vconn *c = v->conns[i];
	if (c->fd >= 0) {
		epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->buf);
	free(c);
	v->conns[i] = v->conns[--v->nconns];
	atomic_store(&v->nconns_now, v->nconns);
}

static void conn_close_fd(struct virtio_vsock *v, struct vconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
}

/* Reset the connection: close the host side now, tell the guest, forget
 * the connection once the RST is sent. */
static void conn_reset(struct virtio_vsock *v, struct vconn *c)
{
	conn_close_fd(v, c);
	c->buf_len = 0;
	c->pending = P_RST;
}

static void stray_rst(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	if (h->op == OP_RST || v->nstray == STRAY_RST_MAX)
		return;   /* never answer a RST with a RST */
	v->stray[v->nstray++] = (struct stray_rst){ .src_port = h->dst_port, .dst_port = h->src_port };
}

static uint32_t peer_credit(const struct vconn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Write buffered guest data to the host socket. */
static void conn_flush(struct virtio_vsock *v, struct vconn *c)
{
	while (c->buf_len && c->fd >= 0) {
		size_t first = BUF_ALLOC - c->buf_head;
		size_t n = c->buf_len < first ? c->buf_len : first;
		ssize_t w = send(c->fd, c->buf + c->buf_head, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_reset(v, c);   /* the host side is gone */
			return;
		}
		c->buf_head = (c->buf_head + (size_t)w) % BUF_ALLOC;
		c->buf_len -= (size_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
}

/* Once guest data is all written: pass on the guest's shutdown. */
static void conn_finish_shutdown(struct virtio_vsock *v, struct vconn *c)
{
	if (c->pending & P_RST || c->buf_len || c->fd < 0)
		return;
	if (c->guest_shut_send && c->guest_shut_rcv) {
		/* The guest closed: close the host socket, answer RST. */
		conn_reset(v, c);
		return;
	}
	if (c->guest_shut_send && !c->host_shut_wr_done) {
		shutdown(c->fd, SHUT_WR);
		c->host_shut_wr_done = true;
	}
}

/* Should the guest hear about freed buffer space? */
static void conn_maybe_credit(struct vconn *c)
{
	if (c->state != C_ESTABLISHED || c->fwd_cnt == c->fwd_told)
		return;
	/* What the guest believes it may still send. */
	uint32_t unacked = c->rx_cnt - c->fwd_told;
	uint32_t guest_view = unacked >= BUF_ALLOC ? 0 : BUF_ALLOC - unacked;
	if (guest_view < BUF_ALLOC / 2)
		c->pending |= P_CREDIT;
}

/* ---- guest packets (transmit queue) ---- */

static void handle_rw(struct virtio_vsock *v, struct vconn *c, struct virtq_req *req, uint32_t len)
{
	if (c->state != C_ESTABLISHED || c->guest_shut_send) {
		conn_reset(v, c);
		return;
	}
	if (len == 0)
		return;
	/* The guest may only send what we granted (5.10.6.3.1). */
	if ((uint64_t)(c->rx_cnt - c->fwd_cnt) + len > BUF_ALLOC) {
		conn_reset(v, c);
		return;
	}
	c->rx_cnt += len;
	atomic_fetch_add(&v->rx_bytes, len);
	if (c->fd < 0)
		return;
	struct iovec iov[64];
	size_t done = 0;
	if (c->buf_len == 0) {
		int n = iov_slice(req->iov, req->nout, sizeof(struct vsock_hdr), len, iov, 64);
		if (n > 0) {
			ssize_t w;
			struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
			do
				w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
			while (w < 0 && errno == EINTR);
			if (w < 0 && errno != EAGAIN) {
				conn_reset(v, c);
				return;
			}
			if (w > 0) {
				done = (size_t)w;
				c->fwd_cnt += (uint32_t)w;
			}
		}
	}
	if (done == len)
		return;
	if (!c->buf && !(c->buf = malloc(BUF_ALLOC))) {
		conn_reset(v, c);
		return;
	}
	/* Keep the rest (it fits: the credit check above). */
	size_t off = sizeof(struct vsock_hdr) + done, left = len - done;
	while (left) {
		size_t tail = (c->buf_head + c->buf_len) % BUF_ALLOC;
		size_t room = BUF_ALLOC - tail;
		size_t n = left < room ? left : room;
		virtq_req_read(req, off, c->buf + tail, n);
		c->buf_len += n;
		off += n;
		left -= n;
	}
}

/* Is the socket at `path`, connected as fd, skiff's own user's: the file
 * and the process that listens on it? Reported once per device. */
static bool owned_by_us(struct virtio_vsock *v, int fd, const char *path)
{
	struct stat st;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t me = geteuid();
	long owner = -1;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		owner = -1;
	else if (st.st_uid != me)
		owner = st.st_uid;
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		owner = -1;
	else if (cred.uid != me)
		owner = cred.uid;
	else
		return true;
	if (atomic_fetch_add(&v->foreign_refused, 1) == 0)
		fprintf(stderr, "virtio-vsock: refused the guest's connection to %s: the socket or the "
			"program listening on it is not skiff's user's (uid %ld, skiff runs as %u); "
			"reported once\n", path, owner, (unsigned)me);
	return false;
}

static void handle_request(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	/* Connect to "<uds_path>_<port>". */
	char path[UNIX_SOCK_PATH_MAX + 2];
	int len = snprintf(path, sizeof(path), "%s_%" PRIu32, v->uds_path, h->dst_port);
	int fd = len > 0 && (size_t)len <= UNIX_SOCK_PATH_MAX ? unix_connect(path, true) : -1;
	if (fd >= 0 && !owned_by_us(v, fd, path)) {
		close(fd);
		fd = -1;
	}
	struct vconn *c = fd >= 0 ? conn_new(v, fd) : NULL;
	if (!c) {
		if (fd >= 0)
			close(fd);
		stray_rst(v, h);
		return;
	}
	c->state = C_ESTABLISHED;
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending |= P_RESPONSE;
}

static void handle_packet(struct virtio_vsock *v, struct virtq_req *req)
{
	struct vsock_hdr h;
	if (virtq_req_read(req, 0, &h, sizeof(h)) != sizeof(h))
		return;   /* too short to answer */
	if (h.src_cid != v->guest_cid || h.dst_cid != HOST_CID)
		return;   /* not ours to answer (5.10.6.1: drop) */
	if (h.len > MAX_PKT || h.len > req->out_len - sizeof(h) || h.type != TYPE_STREAM) {
		stray_rst(v, &h);
		struct vconn *c = conn_find(v, h.dst_port, h.src_port);
		if (c)
			conn_reset(v, c);
		return;
	}
	struct vconn *c = conn_find(v, h.dst_port, h.src_port);
	if (h.op == OP_REQUEST) {
		if (c)
			conn_reset(v, c);   /* a second REQUEST for a live connection */
		else
			handle_request(v, &h);
		return;
	}
	if (!c || (c->pending & P_RST)) {
		stray_rst(v, &h);
		return;
	}
	/* Every packet carries the guest's credit (5.10.6.3). */
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case OP_RESPONSE:
		if (c->state != C_REQUESTED) {
			conn_reset(v, c);
			break;
		}
		c->state = C_ESTABLISHED;
		char ok[32];
		int n = snprintf(ok, sizeof(ok), "OK %" PRIu32 "\n", c->local_port);
		if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
			conn_reset(v, c);
		break;
	case OP_RW:
		handle_rw(v, c, req, h.len);
		break;
	case OP_CREDIT_UPDATE:
		break;
	case OP_CREDIT_REQUEST:
		c->pending |= P_CREDIT;
		break;
	case OP_SHUTDOWN:
		if (h.flags & SHUT_F_SEND)
			c->guest_shut_send = true;
		if (h.flags & SHUT_F_RCV)
			c->guest_shut_rcv = true;
		conn_finish_shutdown(v, c);
		break;
	case OP_RST:
		/* The guest is gone: drop everything, answer nothing. */
		for (unsigned i = 0; i < v->nconns; i++)
			if (v->conns[i] == c) {
				conn_free(v, i);
				break;
			}
		break;
	default:
		conn_reset(v, c);
		break;
	}
}

static void serve_tx(struct virtio_vsock *v, struct virtq *vq)
{
	struct virtq_req *req = v->txreq;
	unsigned budget = vq->size;
	int r;
	for (;;) {
		virtq_disable_notify(vq);
		while ((r = virtq_pop(vq, req)) > 0) {
			handle_packet(v, req);
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

/* ---- host sockets ---- */

static void accept_host(struct virtio_vsock *v)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct vconn *c = conn_new(v, fd);
		if (!c) {
			close(fd);
			continue;
		}
		c->state = C_HOST_LINE;
		c->deadline = clock_monotonic_ns() + HANDSHAKE_TIMEOUT_NS;
	}
}

static bool port_in_use(struct virtio_vsock *v, uint32_t port)
{
	for (unsigned i = 0; i < v->nconns; i++)
		if (v->conns[i]->state != C_HOST_LINE && v->conns[i]->local_port == port)
			return true;
	return false;
}

/* Read "CONNECT <port>\n" without taking any byte after the newline. */
static void read_connect_line(struct virtio_vsock *v, unsigned i)
{
	struct vconn *c = v->conns[i];
	char peek[CONNECT_LINE_MAX + 1];
	size_t want = CONNECT_LINE_MAX - c->linelen;
	ssize_t n = recv(c->fd, peek, want, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_free(v, i);
		return;
	}
	if (n < 0)
		return;
	char *nl = memchr(peek, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	ssize_t got = recv(c->fd, c->line + c->linelen, take, MSG_DONTWAIT);
	if (got != (ssize_t)take) {
		conn_free(v, i);
		return;
	}
	c->linelen += take;
	c->line[c->linelen] = 0;
	if (!nl) {
		if (c->linelen >= CONNECT_LINE_MAX)
			conn_free(v, i);   /* no newline in a sane length */
		return;
	}
	char *end;
	unsigned long port = 0;
	bool ok = !strncmp(c->line, "CONNECT ", 8) && c->line[8] >= '0' && c->line[8] <= '9';
	if (ok) {
		errno = 0;
		port = strtoul(c->line + 8, &end, 10);
		ok = !errno && port <= UINT32_MAX && (*end == '\n' || (*end == '\r' && end[1] == '\n'));
	}
	if (!ok) {
		conn_free(v, i);
		return;
	}
	uint32_t local = v->next_port;
	while (port_in_use(v, local))
		local = local + 1 < FIRST_LOCAL_PORT ? FIRST_LOCAL_PORT : local + 1;
	v->next_port = local + 1 < FIRST_LOCAL_PORT ? FIRST_LOCAL_PORT : local + 1;
	c->state = C_REQUESTED;
	c->deadline = clock_monotonic_ns() + HANDSHAKE_TIMEOUT_NS;
	c->local_port = local;
	c->peer_port = (uint32_t)port;
	c->pending |= P_REQUEST;
}

/* ---- packets to the guest (receive queue) ---- */

static int rx_get(struct virtio_vsock *v, struct virtq *vq)
{
	if (v->rx_held)
		return 1;
	int r = virtq_pop(vq, v->rxreq);
	if (r <= 0)
		return r;
	if (v->rxreq->in_len < sizeof(struct vsock_hdr)) {
		virtio_dev_fail(&v->dev, "receive buffer of %" PRIu64 " bytes (header is 44)",
				v->rxreq->in_len);
		return -1;
	}
	v->rx_held = true;
	return 1;
}

static void rx_send(struct virtio_vsock *v, struct virtq *vq, struct vsock_hdr *h,
		    const uint8_t *data)
{
	struct virtq_req *req = v->rxreq;
	h->src_cid = HOST_CID;
	h->dst_cid = v->guest_cid;
	h->type = TYPE_STREAM;
	virtq_req_write(req, 0, h, sizeof(*h));
	if (h->len)
		virtq_req_write(req, sizeof(*h), data, h->len);
	virtq_push(vq, req, (uint32_t)sizeof(*h) + h->len);
	v->rx_held = false;
}

static void fill_credit(struct vconn *c, struct vsock_hdr *h)
{
	h->buf_alloc = BUF_ALLOC;
	h->fwd_cnt = c->fwd_cnt;
	c->fwd_told = c->fwd_cnt;
}

/* Control packets first; false when the receive queue ran dry. */
static bool rx_control(struct virtio_vsock *v, struct virtq *vq)
{
	while (v->nstray) {
		if (rx_get(v, vq) <= 0)
			return false;
		struct vsock_hdr h = { .op = OP_RST, .src_port = v->stray[v->nstray - 1].src_port,
				       .dst_port = v->stray[v->nstray - 1].dst_port };
		rx_send(v, vq, &h, NULL);
		v->nstray--;
		atomic_fetch_add(&v->resets_sent, 1);
	}
	for (unsigned i = 0; i < v->nconns;) {
		struct vconn *c = v->conns[i];
		if (!c->pending) {
			i++;
			continue;
		}
		if (rx_get(v, vq) <= 0)
			return false;
		struct vsock_hdr h = { .src_port = c->local_port, .dst_port = c->peer_port };
		fill_credit(c, &h);
		if (c->pending & P_RST) {
			h.op = OP_RST;
			rx_send(v, vq, &h, NULL);
			atomic_fetch_add(&v->resets_sent, 1);
			conn_free(v, i);
			continue;   /* slot i now holds another connection */
		}
		if (c->pending & P_REQUEST) {
			h.op = OP_REQUEST;
			c->pending &= ~P_REQUEST;
		} else if (c->pending & P_RESPONSE) {
			h.op = OP_RESPONSE;
			c->pending &= ~P_RESPONSE;
		} else if (c->pending & P_SHUTDOWN) {
			h.op = OP_SHUTDOWN;
			h.flags = c->shut_flags;
			c->pending &= ~P_SHUTDOWN;
		} else {
			h.op = OP_CREDIT_UPDATE;
			c->pending &= ~P_CREDIT;
		}
		rx_send(v, vq, &h, NULL);
		if (!c->pending)
			i++;
	}
	return true;
}

/* Host data to the guest, one packet per connection per round while
 * buffers and credit last. */
static void rx_data(struct virtio_vsock *v, struct virtq *vq)
{
	bool progress = true;
	while (progress) {
		progress = false;
		for (unsigned i = 0; i < v->nconns; i++) {
			struct vconn *c = v->conns[i];
			if (c->state != C_ESTABLISHED || c->pending || c->fd < 0 || !c->readable ||
			    c->host_eof || c->guest_shut_rcv)
				continue;
			uint32_t credit = peer_credit(c);
			if (!credit)
				continue;
			if (rx_get(v, vq) <= 0)
				return;
			size_t room = v->rxreq->in_len - sizeof(struct vsock_hdr);
			size_t want = room < credit ? room : credit;
			if (want > MAX_PKT)
				want = MAX_PKT;
			if (want == 0)
				continue;
			ssize_t n = recv(c->fd, v->bounce, want, MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					c->readable = false;
					continue;
				}
				conn_reset(v, c);
				progress = true;
				continue;
			}
			if (n == 0) {
				/* Host EOF: the guest reads to the end, then EOF. */
				c->host_eof = true;
				c->readable = false;
				c->shut_flags = SHUT_F_SEND;
				c->pending |= P_SHUTDOWN;
				progress = true;
				continue;
			}
			struct vsock_hdr h = { .op = OP_RW, .src_port = c->local_port,
					       .dst_port = c->peer_port, .len = (uint32_t)n };
			fill_credit(c, &h);
			rx_send(v, vq, &h, v->bounce);
			c->tx_cnt += (uint32_t)n;
			atomic_fetch_add(&v->tx_bytes, (uint64_t)n);
			if ((size_t)n < want && !c->hup)
				c->readable = false;   /* drained for now */
			progress = true;
		}
		if (progress) {
			/* Control packets (shutdowns, resets) the round produced. */
			if (!rx_control(v, vq))
				return;
		}
	}
}

/* Send what can be sent. Returns whether receive buffers are left. */
static bool serve_rx(struct virtio_vsock *v, struct virtq *vq)
{
	for (;;) {
		if (rx_control(v, vq))
			rx_data(v, vq);
		if (v->rx_held || virtq_has_avail(vq)) {
			/* Buffers to spare: no need to hear about more. */
			virtq_disable_notify(vq);
			return true;
		}
		/* Out of buffers: be notified when the driver adds some, so
		 * sockets are read again (and recheck, 2.7.10). */
		if (!virtq_enable_notify(vq))
			return false;
	}
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
			 peer_credit(c) && rx_room && !c->readable)
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
		accept_host(v);
	if (live)
		serve_tx(v, txq);
	uint64_t now = clock_monotonic_ns();
	for (unsigned i = 0; i < v->nconns;) {
		struct vconn *c = v->conns[i];
		if (c->state != C_ESTABLISHED && !(c->pending & P_RST) && now >= c->deadline) {
			if (c->state == C_HOST_LINE) {
				conn_free(v, i);
				continue;
			}
			conn_reset(v, c);   /* the guest never answered: it hears RST */
		}
		if (c->state == C_HOST_LINE) {
			if (c->readable || c->hup) {
				c->readable = false;
				unsigned before = v->nconns;
				if (live)
					read_connect_line(v, i);
				else
					conn_free(v, i);   /* no driver: refuse */
				if (v->nconns < before)
					continue;
			}
			i++;
			continue;
		}
		if (c->writable) {
			c->writable = false;
			conn_flush(v, c);
		}
		if (c->hup && c->buf_len)
			conn_flush(v, c);   /* out of the epoll set: try directly */
		conn_finish_shutdown(v, c);
		conn_maybe_credit(c);
		i++;
	}
	bool rx_room = false;
	if (live) {
		rx_room = serve_rx(v, rxq);
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
	uint64_t first = UINT64_MAX;
	for (unsigned i = 0; i < v->nconns; i++) {
		const struct vconn *c = v->conns[i];
		if (c->state != C_ESTABLISHED && !(c->pending & P_RST) && c->deadline < first)
			first = c->deadline;
	}
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
			} else if (p == &v->listen_fd) {
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
		conn_free(v, v->nconns - 1);
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
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unix_listen_remove(v->uds_path, &v->uds_file);
	}
	if (v->epfd >= 0)
		close(v->epfd);
	if (v->evfd >= 0)
		close(v->evfd);
	free(v->uds_path);
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
	/* Room for "_<port>" too. */
	if (!uds_path || !*uds_path || strlen(uds_path) + 11 > UNIX_SOCK_PATH_MAX) {
		snprintf(err, errlen, "virtio-vsock: socket path must be 1 to %d bytes",
			 UNIX_SOCK_PATH_MAX - 11);
		return NULL;
	}
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "virtio-vsock: out of memory");
		return NULL;
	}
	v->listen_fd = v->epfd = v->evfd = -1;
	v->guest_cid = guest_cid;
	v->next_port = FIRST_LOCAL_PORT;
	memcpy(v->config, &guest_cid, 8);   /* le64 */
	v->uds_path = strdup(uds_path);
	v->conns = calloc(MAX_CONNS, sizeof(*v->conns));
	v->bounce = malloc(MAX_PKT);
	v->rxreq = malloc(sizeof(*v->rxreq));
	v->txreq = malloc(sizeof(*v->txreq));
	if (!v->uds_path || !v->conns || !v->bounce || !v->rxreq || !v->txreq) {
		snprintf(err, errlen, "virtio-vsock: out of memory");
		vsock_free(v);
		return NULL;
	}
	char why[400];
	v->listen_fd = unix_listen(uds_path, 64, &v->uds_file, why, sizeof(why));
	if (v->listen_fd < 0) {
		snprintf(err, errlen, "virtio-vsock: %s", why);
		vsock_free(v);
		return NULL;
	}
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	v->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event el = { .events = EPOLLIN, .data.ptr = &v->listen_fd };
	struct epoll_event ee = { .events = EPOLLIN, .data.ptr = &v->evfd };
	if (v->epfd < 0 || v->evfd < 0 || epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listen_fd, &el) < 0 ||
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
	int e = pthread_create(&v->thread, NULL, vsock_thread, v);
	if (e) {
		snprintf(err, errlen, "virtio-vsock: cannot start its thread: %s", strerror(e));
		virtio_dev_fini(&v->dev);
		pthread_mutex_destroy(&v->lock);
		vsock_free(v);
		return NULL;
	}
	pthread_setname_np(v->thread, "vsock");
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
		conn_free(v, v->nconns - 1);
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
	s->foreign_refused = atomic_load(&v->foreign_refused);
}

/*
 * virtio-vsock's connection state machine (virtio 1.2 5.10.6): what each
 * packet from the guest does to a connection, the handshakes both ways,
 * credit (5.10.6.3), shutdown and reset (5.10.6.6). Host streams come from
 * the backend (vsock_uds.h); packets to the guest are sent by the device
 * (vsock.c) from what each connection owes (vconn.pending). Everything
 * here runs on the device's thread with v->lock held.
 */
#include "virtio/vsock_dev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"

#define FIRST_LOCAL_PORT (1u << 30)  /* as Firecracker */
/* A host client that does not finish its request line, or a guest that
 * does not answer the REQUEST, within this time loses the connection (the
 * same bound as Firecracker's), so a stuck handshake never holds a slot. */
#define HANDSHAKE_TIMEOUT_NS (2000ull * 1000 * 1000)

static struct vconn *vconn_find(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < v->nconns; i++) {
		struct vconn *c = v->conns[i];
		if (c->state != C_HOST_LINE && c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

struct vconn *vconn_new(struct virtio_vsock *v, int fd)
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

void vconn_free(struct virtio_vsock *v, unsigned i)
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

static void vconn_close_fd(struct virtio_vsock *v, struct vconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
}

/* Reset the connection: close the host side now, tell the guest, forget
 * the connection once the RST is sent. */
void vconn_reset(struct virtio_vsock *v, struct vconn *c)
{
	vconn_close_fd(v, c);
	c->buf_len = 0;
	c->pending = P_RST;
}

static void vconn_stray_rst(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	if (h->op == OP_RST || v->nstray == STRAY_RST_MAX)
		return;   /* never answer a RST with a RST */
	v->stray[v->nstray++] = (struct stray_rst){ .src_port = h->dst_port, .dst_port = h->src_port };
}

uint32_t vconn_peer_credit(const struct vconn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

void vconn_fill_credit(struct vconn *c, struct vsock_hdr *h)
{
	h->buf_alloc = BUF_ALLOC;
	h->fwd_cnt = c->fwd_cnt;
	c->fwd_told = c->fwd_cnt;
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
			vconn_reset(v, c);   /* the host side is gone */
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
		vconn_reset(v, c);
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

static void handle_rw(struct virtio_vsock *v, struct vconn *c, struct virtq_req *req, uint32_t len)
{
	if (c->state != C_ESTABLISHED || c->guest_shut_send) {
		vconn_reset(v, c);
		return;
	}
	if (len == 0)
		return;
	/* The guest may only send what we granted (5.10.6.3.1). */
	if ((uint64_t)(c->rx_cnt - c->fwd_cnt) + len > BUF_ALLOC) {
		vconn_reset(v, c);
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
				vconn_reset(v, c);
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
		vconn_reset(v, c);
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

/* The guest connects to host port h->dst_port. */
static void handle_request(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	int fd = vsock_uds_connect(&v->host, h->dst_port);
	struct vconn *c = fd >= 0 ? vconn_new(v, fd) : NULL;
	if (!c) {
		if (fd >= 0)
			close(fd);
		vconn_stray_rst(v, h);
		return;
	}
	c->state = C_ESTABLISHED;
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending |= P_RESPONSE;
}

void vconn_guest_packet(struct virtio_vsock *v, struct virtq_req *req)
{
	struct vsock_hdr h;
	if (virtq_req_read(req, 0, &h, sizeof(h)) != sizeof(h))
		return;   /* too short to answer */
	if (h.src_cid != v->guest_cid || h.dst_cid != HOST_CID)
		return;   /* not ours to answer (5.10.6.1: drop) */
	if (h.len > MAX_PKT || h.len > req->out_len - sizeof(h) || h.type != TYPE_STREAM) {
		vconn_stray_rst(v, &h);
		struct vconn *c = vconn_find(v, h.dst_port, h.src_port);
		if (c)
			vconn_reset(v, c);
		return;
	}
	struct vconn *c = vconn_find(v, h.dst_port, h.src_port);
	if (h.op == OP_REQUEST) {
		if (c)
			vconn_reset(v, c);   /* a second REQUEST for a live connection */
		else
			handle_request(v, &h);
		return;
	}
	if (!c || (c->pending & P_RST)) {
		vconn_stray_rst(v, &h);
		return;
	}
	/* Every packet carries the guest's credit (5.10.6.3). */
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case OP_RESPONSE:
		if (c->state != C_REQUESTED) {
			vconn_reset(v, c);
			break;
		}
		c->state = C_ESTABLISHED;
		if (!vsock_uds_accepted(c->fd, c->local_port))
			vconn_reset(v, c);
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
				vconn_free(v, i);
				break;
			}
		break;
	default:
		vconn_reset(v, c);
		break;
	}
}

void vconn_accept(struct virtio_vsock *v)
{
	for (int i = 0; i < 16; i++) {
		int fd = vsock_uds_accept(&v->host);
		if (fd < 0)
			return;
		struct vconn *c = vconn_new(v, fd);
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

/* A host client's request line: on "CONNECT <port>", ask the guest. */
static void read_connect_line(struct virtio_vsock *v, unsigned i)
{
	struct vconn *c = v->conns[i];
	uint32_t port;
	int r = vsock_uds_read_request(c->fd, &c->line, &port);
	if (r < 0)
		vconn_free(v, i);
	if (r <= 0)
		return;
	uint32_t local = v->next_port;
	while (port_in_use(v, local))
		local = local + 1 < FIRST_LOCAL_PORT ? FIRST_LOCAL_PORT : local + 1;
	v->next_port = local + 1 < FIRST_LOCAL_PORT ? FIRST_LOCAL_PORT : local + 1;
	c->state = C_REQUESTED;
	c->deadline = clock_monotonic_ns() + HANDSHAKE_TIMEOUT_NS;
	c->local_port = local;
	c->peer_port = port;
	c->pending |= P_REQUEST;
}

void vconn_sweep(struct virtio_vsock *v, bool live)
{
	uint64_t now = clock_monotonic_ns();
	for (unsigned i = 0; i < v->nconns;) {
		struct vconn *c = v->conns[i];
		if (c->state != C_ESTABLISHED && !(c->pending & P_RST) && now >= c->deadline) {
			if (c->state == C_HOST_LINE) {
				vconn_free(v, i);
				continue;
			}
			vconn_reset(v, c);   /* the guest never answered: it hears RST */
		}
		if (c->state == C_HOST_LINE) {
			if (c->readable || c->hup) {
				c->readable = false;
				unsigned before = v->nconns;
				if (live)
					read_connect_line(v, i);
				else
					vconn_free(v, i);   /* no driver: refuse */
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
}

uint64_t vconn_first_deadline(struct virtio_vsock *v)
{
	uint64_t first = UINT64_MAX;
	for (unsigned i = 0; i < v->nconns; i++) {
		const struct vconn *c = v->conns[i];
		if (c->state != C_ESTABLISHED && !(c->pending & P_RST) && c->deadline < first)
			first = c->deadline;
	}
	return first;
}

/*
 * virtio-vsock's receive path (virtio 1.2 5.10.6): the packets the device
 * puts into the guest's receive queue, control packets first (stray
 * resets, then what each connection owes: REQUEST, RESPONSE, SHUTDOWN,
 * CREDIT_UPDATE, RST), then data read from the host sockets, within the
 * credit the guest granted (5.10.6.3). Runs on the device's thread with the
 * queue locks and v->lock held (vsock.c, vsock_pass).
 */
#include "virtio/vsock_dev.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/socket.h>

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
		vconn_fill_credit(c, &h);
		if (c->pending & P_RST) {
			h.op = OP_RST;
			rx_send(v, vq, &h, NULL);
			atomic_fetch_add(&v->resets_sent, 1);
			vconn_free(v, i);
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
			uint32_t credit = vconn_peer_credit(c);
			if (!credit)
				continue;
			if (rx_get(v, vq) <= 0)
				return;
			size_t room = v->rxreq->in_len - sizeof(struct vsock_hdr);
			if (room == 0) {
				/* A buffer with room for a header only: no data
				 * fits, and held it would stall every connection
				 * behind it. It carries this connection's credit
				 * instead (a CREDIT_UPDATE may come at any time,
				 * 5.10.6.3) and the next buffer is taken. */
				struct vsock_hdr h = { .op = OP_CREDIT_UPDATE, .src_port = c->local_port,
						       .dst_port = c->peer_port };
				vconn_fill_credit(c, &h);
				rx_send(v, vq, &h, NULL);
				progress = true;
				continue;
			}
			size_t want = room < credit ? room : credit;
			if (want > MAX_PKT)
				want = MAX_PKT;
			ssize_t n = recv(c->fd, v->bounce, want, MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					c->readable = false;
					continue;
				}
				vconn_reset(v, c);
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
			vconn_fill_credit(c, &h);
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

bool vsock_serve_rx(struct virtio_vsock *v, struct virtq *vq)
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

/*
 * libFuzzer target for virtio-vsock's packet handling
 * (src/virtio/vsock_conn.c, the receive path vsock_rx.c and the
 * Unix-socket backend vsock_uds.c): the 44-byte header of every packet the
 * guest sends (virtio 1.2 5.10.6: cids, ports, len, type, op, flags,
 * credit) and its payload, spread over any number of descriptor segments,
 * against connections in every state; what host clients write as their
 * "CONNECT <port>" request line; host sockets that send, stop reading,
 * half-close or close at any moment; and a receive queue in guest RAM
 * whose buffers have any size (too short for a header, split, with a
 * device-readable part first) that the device fills.
 *
 * Input: a list of steps, each a byte choosing what happens:
 *   guest packet   a header (with the right cids unless the step says
 *                  otherwise; on a connection the guest heard of, or on
 *                  ports the input picks), a payload of up to 255 bytes
 *                  (or up to 64 KiB of filler), cut into up to 4 segments;
 *   host client    connects to the device's socket and writes up to 40
 *                  bytes (a CONNECT line, or not);
 *   host sockets   the sockets guest connections reached and the host
 *                  clients send data, read what came or not, shut down
 *                  either direction, or close;
 *   sweep          what the device's thread does after epoll_wait: mark
 *                  readable/writable/hung-up sockets, then vconn_sweep;
 *   rx buffers     the guest makes receive buffers available;
 *   rx             the device's receive path runs (vsock_serve_rx) and
 *                  the guest takes every packet it got.
 * After every step the connection table must be consistent: no more than
 * MAX_CONNS connections, a connection's buffered guest data within its
 * 256 KiB and never more than the credit it was granted. Every packet the
 * guest receives must be well formed (cids, type, a known op, len and the
 * used length agreeing, within the buffer, buf_alloc), data only on a
 * connection the guest was told of and has not seen end, never more than
 * the credit the guest last gave on it, never after the host's end of
 * stream, and exactly the bytes the host socket sent next (every host
 * socket sends the same counting pattern, so a byte lost, doubled or taken
 * from another connection shows). A RESPONSE answers a REQUEST the guest
 * sent. The device may give up on the queue (needs reset) only after a
 * receive buffer too short for a header. And data keeps moving: after
 * the receive path ran, while the guest still offers buffers, no
 * connection has host data the device knows of, credit and nothing owed
 * before it, left unread (check_moving).
 *
 * The device's socket and two port sockets (guest connections to ports
 * 1024 and 5000 reach them) live in a directory of this process's own
 * (mkdtemp); everything an input opens is closed before the next input.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cursor.h"
#include "virtio/virtio.h"
#include "virtio/vsock_dev.h"

#define GUEST_CID 3
#define MAX_HOST 24          /* host sockets the harness holds */
/* Connections the guest heard of, and port pairs it spoke on: each step
 * makes at most one of each (a guest packet, a host client's connection),
 * so an input can never run out of them. */
#define MAX_PAIRS (2 * MAX_STEPS)
#define MAX_STEPS 256
#define PATTERN 251          /* host data: byte k of a stream is k % 251 */
#define HOST_SEND_MAX (64 * 1024)

/* The receive queue in guest RAM: rings, then a slot per descriptor big
 * enough for a header and the largest payload. */
#define RAM_BASE 0x80000000ull
#define QSIZE 16
#define DESC_GPA RAM_BASE
#define AVAIL_GPA (RAM_BASE + 0x1000)
#define USED_GPA (RAM_BASE + 0x2000)
#define SLOT_GPA (RAM_BASE + 0x4000)
#define SLOT (sizeof(struct vsock_hdr) + MAX_PKT)
#define RAM_SIZE (0x4000 + QSIZE * ((SLOT + 0xfff) & ~0xfffull))
#define SLOT_AT(i) (SLOT_GPA + (uint64_t)(i) * ((SLOT + 0xfff) & ~0xfffull))

struct fuzz_env {
	char dir[64], path[96], port_path[2][112];
	struct unix_sock_file port_file[2];
	int port_fd[2];
	struct gram ram;
	uint8_t pattern[HOST_SEND_MAX + PATTERN];   /* byte k is k % PATTERN */
};

/* A host socket: a client of the device's socket, or a peer a guest
 * connection reached. It sends the pattern from offset 0 (a client only
 * after a well-formed request line). */
struct host_sock {
	int fd;
	uint32_t sent;
	bool sends, shut_wr;
};

/* A connection as the guest sees it, by its ports. */
struct pair {
	uint32_t local, peer;   /* host (CID 2) port, guest port */
	bool open;              /* told of (REQUEST/RESPONSE), not ended */
	bool host_done;         /* SHUTDOWN(SEND) from the host came */
	uint32_t got;           /* data bytes received on it */
};

/* What the guest last said on a pair of ports: its credit. */
struct credit {
	uint32_t local, peer, buf_alloc, fwd_cnt;
	bool requested;          /* it sent REQUEST */
	/* The device's REQUEST came and the guest has said nothing since: a
	 * guest that guessed the ports may have answered before it, so what
	 * the device holds is not known here. */
	bool unknown;
};

struct chain {
	unsigned ndesc;
	uint16_t desc[3];
	uint64_t in_gpa[2];
	uint32_t in_len[2];
	unsigned nin;
};

struct run {
	struct virtio_vsock *v;
	struct host_sock host[MAX_HOST];
	unsigned nhost;
	struct pair pairs[MAX_PAIRS];
	unsigned npairs;
	struct credit credit[MAX_PAIRS];
	unsigned ncredit;
	struct virtq rxq;
	struct chain chains[QSIZE];    /* by head */
	bool desc_used[QSIZE];
	uint16_t avail_idx, used_seen;
	bool short_offered;            /* a buffer too short for a header */
	bool failed;                   /* virtio_dev_fail was called */
};

static struct fuzz_env *env;
static struct run *current;

static void die(const char *what)
{
	perror(what);
	exit(1);   /* the harness itself, not the input */
}

/* Stand-ins for what the device's transport would do. */
void virtio_dev_fail(struct virtio_dev *dev, const char *fmt, ...)
{
	(void)dev;
	(void)fmt;
	if (!current->short_offered)
		abort();   /* gave up on a queue that did nothing wrong */
	current->failed = true;
}

static void cleanup(void)
{
	for (int i = 0; i < 2; i++) {
		close(env->port_fd[i]);
		unix_listen_remove(env->port_path[i], &env->port_file[i]);
	}
	rmdir(env->dir);
	gram_destroy(&env->ram);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	env = calloc(1, sizeof(*env));
	if (!env)
		die("calloc");
	snprintf(env->dir, sizeof(env->dir), "/tmp/skiff-fuzz-vsock-XXXXXX");
	if (!mkdtemp(env->dir))
		die("mkdtemp");
	snprintf(env->path, sizeof(env->path), "%s/v.sock", env->dir);
	static const unsigned ports[2] = { 1024, 5000 };
	char err[256];
	for (int i = 0; i < 2; i++) {
		snprintf(env->port_path[i], sizeof(env->port_path[i]), "%s_%u", env->path, ports[i]);
		env->port_fd[i] = unix_listen(env->port_path[i], 64, &env->port_file[i], err, sizeof(err));
		if (env->port_fd[i] < 0) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
	}
	for (size_t i = 0; i < sizeof(env->pattern); i++)
		env->pattern[i] = (uint8_t)(i % PATTERN);
	if (gram_init(&env->ram, RAM_BASE, RAM_SIZE))
		die("gram_init");
	atexit(cleanup);
	return 0;
}

static struct credit *credit_of(struct run *r, uint32_t local, uint32_t peer, bool make)
{
	for (unsigned i = 0; i < r->ncredit; i++)
		if (r->credit[i].local == local && r->credit[i].peer == peer)
			return &r->credit[i];
	if (!make)
		return NULL;
	if (r->ncredit == MAX_PAIRS)
		die("MAX_PAIRS");
	r->credit[r->ncredit] = (struct credit){ .local = local, .peer = peer };
	return &r->credit[r->ncredit++];
}

static struct pair *pair_of(struct run *r, uint32_t local, uint32_t peer, bool make)
{
	for (unsigned i = 0; i < r->npairs; i++)
		if (r->pairs[i].local == local && r->pairs[i].peer == peer)
			return &r->pairs[i];
	if (!make)
		return NULL;
	if (r->npairs == MAX_PAIRS)
		die("MAX_PAIRS");
	r->pairs[r->npairs] = (struct pair){ .local = local, .peer = peer };
	return &r->pairs[r->npairs++];
}

static void guest_packet(struct run *r, struct cursor *c, uint8_t step)
{
	struct vsock_hdr h = {
		.src_cid = GUEST_CID,
		.dst_cid = HOST_CID,
		.type = TYPE_STREAM,
	};
	uint8_t shape = (uint8_t)take(c, 1);
	if (shape & 0x80) {        /* wrong cids or type, rarely */
		h.src_cid = take(c, 1);
		h.dst_cid = take(c, 1);
		h.type = (uint16_t)take(c, 1);
	}
	if (step & 8 && r->npairs) {
		/* On a connection the guest was told of (answering a host
		 * client's REQUEST, most often). */
		const struct pair *p = &r->pairs[take(c, 1) % r->npairs];
		h.src_port = p->peer;
		h.dst_port = p->local;
	} else {
		/* Ports: mostly the two that listen and a few guest ports. */
		h.src_port = shape & 0x40 ? (uint32_t)take(c, 4) : 49152 + (uint32_t)take(c, 1) % 4;
		uint8_t dp = (uint8_t)take(c, 1);
		h.dst_port = dp < 0x80 ? 1024 : dp < 0xc0 ? 5000 : dp < 0xf0 ? (1u << 30) + (dp & 15) :
			     (uint32_t)take(c, 4);
	}
	h.op = (uint16_t)(step >> 4 & 7);
	h.flags = (uint32_t)take(c, 1) & 7;
	h.buf_alloc = shape & 0x20 ? (uint32_t)take(c, 4) : 256 * 1024;
	h.fwd_cnt = (uint32_t)take(c, 4);
	/* Up to 255 payload bytes from the input, or (shape bit 2) up to
	 * 64 KiB of filler, so a few packets can exceed the credit. */
	size_t plen = shape & 0x04 ? (size_t)take(c, 2) + 1 : (size_t)take(c, 1);
	h.len = shape & 0x10 ? (uint32_t)take(c, 4) : (uint32_t)plen;

	/* What the guest now believes about this connection. */
	if (h.src_cid == GUEST_CID && h.dst_cid == HOST_CID) {
		struct credit *cr = credit_of(r, h.dst_port, h.src_port, true);
		cr->buf_alloc = h.buf_alloc;
		cr->fwd_cnt = h.fwd_cnt;
		cr->unknown = false;
		if (h.op == OP_REQUEST)
			cr->requested = true;
		struct pair *p = pair_of(r, h.dst_port, h.src_port, false);
		if (p && (h.op == OP_RST || h.op == OP_REQUEST))
			p->open = false;   /* the guest ended it (or starts anew) */
	}

	/* The packet in one heap block of exactly its size, cut into
	 * segments at places the input chooses. */
	size_t total = sizeof(h) + plen;
	uint8_t *pkt = malloc(total);
	if (!pkt)
		die("malloc");
	memcpy(pkt, &h, sizeof(h));
	for (size_t i = 0; i < plen; i++)
		pkt[sizeof(h) + i] = shape & 0x04 ? (uint8_t)i : (uint8_t)take(c, 1);
	struct virtq_req *req = calloc(1, sizeof(*req));
	if (!req)
		die("calloc");
	unsigned nseg = 1 + (shape & 3);
	size_t off = 0;
	for (unsigned k = 0; k < nseg && off < total; k++) {
		size_t n = k + 1 == nseg ? total - off : (size_t)take(c, 1) % (total - off + 1);
		req->iov[req->nout].iov_base = pkt + off;
		req->iov[req->nout].iov_len = n;
		req->nout++;
		off += n;
	}
	if (off < total) {
		req->iov[req->nout].iov_base = pkt + off;
		req->iov[req->nout].iov_len = total - off;
		req->nout++;
	}
	/* Sometimes fewer bytes than the header claims are readable. */
	req->out_len = shape & 0x08 && plen ? total - 1 : total;
	if (req->out_len < total)
		req->iov[req->nout - 1].iov_len--;
	vconn_guest_packet(r->v, req);
	free(req);
	free(pkt);
}

static void host_add(struct run *r, int fd, bool sends)
{
	if (r->nhost == MAX_HOST) {
		close(fd);
		return;
	}
	r->host[r->nhost++] = (struct host_sock){ .fd = fd, .sends = sends };
}

static void host_client(struct run *r, struct cursor *c)
{
	if (r->nhost == MAX_HOST)
		return;
	int fd = unix_connect(env->path, false);
	if (fd < 0)
		return;
	uint8_t kind = (uint8_t)take(c, 1);
	char line[48];
	size_t n;
	if (kind < 0xa0) {
		n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", 1000 + (kind & 31));
	} else {
		n = (size_t)take(c, 1) % 40;
		for (size_t i = 0; i < n; i++)
			line[i] = (char)take(c, 1);
	}
	if (n && send(fd, line, n, MSG_NOSIGNAL) < 0)
		die("send");
	/* Only after a whole line does the pattern start where the device
	 * reads data. */
	host_add(r, fd, kind < 0xa0);
	vconn_accept(r->v);
}

/* Send up to n bytes (at most 64 KiB) of a host socket's pattern, as much
 * as it takes. */
static void host_send(struct host_sock *h, size_t n)
{
	if (!h->sends || h->shut_wr || !n)
		return;
	if (n > HOST_SEND_MAX)
		n = HOST_SEND_MAX;
	ssize_t w = send(h->fd, env->pattern + h->sent % PATTERN, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
		die("send");
	if (w > 0)
		h->sent += (uint32_t)w;
}

/* The host sockets: accept what guest connections reached; send, read or
 * not, shut down or close. */
static void host_socks(struct run *r, struct cursor *c)
{
	uint8_t what = (uint8_t)take(c, 1);
	for (int i = 0; i < 2; i++) {
		int fd;
		while (r->nhost < MAX_HOST && (fd = accept4(env->port_fd[i], NULL, NULL,
							     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			host_add(r, fd, true);
	}
	size_t amount = what & 0x20 ? 64 * 1024 : (size_t)take(c, 1) * 16;
	char buf[4096];
	for (unsigned i = 0; i < r->nhost; i++) {
		if (!(what & 0x40))   /* read what came (else the host stalls) */
			while (recv(r->host[i].fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
		if (what & 1)
			host_send(&r->host[i], amount);
	}
	if (!r->nhost)
		return;
	struct host_sock *last = &r->host[r->nhost - 1];
	if (what & 8 && !last->shut_wr) {   /* end of stream, still reading */
		shutdown(last->fd, SHUT_WR);
		last->shut_wr = true;
	}
	if (what & 0x10)                    /* reads nothing more */
		shutdown(last->fd, SHUT_RD);
	if (what & 6) {                     /* gone */
		unsigned i = what & 4 ? 0 : r->nhost - 1;
		close(r->host[i].fd);
		r->host[i] = r->host[--r->nhost];
	}
}

static void sweep(struct run *r)
{
	struct virtio_vsock *v = r->v;
	/* Every socket is watched for input (the device asks only where it
	 * could send; more readiness than that must do no harm). */
	for (unsigned k = 0; k < v->nconns; k++) {
		struct vconn *c = v->conns[k];
		if (c->fd < 0)
			continue;
		struct epoll_event e = { .events = EPOLLIN | (c->buf_len ? EPOLLOUT : 0), .data.ptr = c };
		epoll_ctl(v->epfd, EPOLL_CTL_MOD, c->fd, &e);
	}
	struct epoll_event evs[64];
	int n = epoll_wait(v->epfd, evs, 64, 0);
	for (int i = 0; i < n; i++) {
		struct vconn *c = evs[i].data.ptr;
		for (unsigned k = 0; k < v->nconns; k++) {
			if (v->conns[k] != c)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				c->readable = true;
			if (evs[i].events & EPOLLOUT)
				c->writable = true;
			if (evs[i].events & (EPOLLHUP | EPOLLERR))
				c->hup = c->readable = true;
		}
	}
	vconn_sweep(v, true);
}

/* The guest makes receive buffers available: 1 to 8 chains, each shaped
 * by one byte. */
static void rx_buffers(struct run *r, struct cursor *c, uint8_t step)
{
	unsigned count = 1 + (step >> 4 & 7);
	for (unsigned k = 0; k < count; k++) {
		uint8_t b = (uint8_t)take(c, 1);
		uint32_t lens[3];
		bool writable[3] = { true, true, true };
		unsigned nd = 1;
		if (b < 0x80) {
			lens[0] = (uint32_t)sizeof(struct vsock_hdr) + b * 32u;   /* 44 to 4108 */
		} else if (b < 0xb0) {
			lens[0] = (uint32_t)SLOT;                            /* a whole packet */
		} else if (b < 0xc0) {
			lens[0] = (uint32_t)sizeof(struct vsock_hdr) + 4096; /* as Linux */
		} else if (b < 0xd0) {
			lens[0] = b & 15;                                  /* too short */
		} else if (b < 0xf0) {
			nd = 2;                                            /* split anywhere */
			lens[0] = 1 + (b & 31) * 3u;
			lens[1] = 1 + (uint32_t)take(c, 1) * 16;
		} else {
			nd = 2;                                            /* readable first */
			writable[0] = false;
			lens[0] = 16;
			lens[1] = (uint32_t)sizeof(struct vsock_hdr) + 1024;
		}
		/* Free descriptors for the chain, else no more buffers. */
		uint16_t d[3];
		unsigned got = 0;
		for (uint16_t i = 0; i < QSIZE && got < nd; i++)
			if (!r->desc_used[i])
				d[got++] = i;
		if (got < nd)
			return;
		struct chain ch = { .ndesc = nd };
		uint32_t in_total = 0;
		for (unsigned i = 0; i < nd; i++) {
			r->desc_used[d[i]] = true;
			ch.desc[i] = d[i];
			struct virtq_desc desc = {
				.addr = SLOT_AT(d[i]),
				.len = lens[i],
				.flags = (uint16_t)((writable[i] ? VIRTQ_DESC_F_WRITE : 0) |
						    (i + 1 < nd ? VIRTQ_DESC_F_NEXT : 0)),
				.next = i + 1 < nd ? d[i + 1] : 0,
			};
			gram_write(&env->ram, DESC_GPA + 16ull * d[i], &desc, sizeof(desc));
			if (writable[i]) {
				ch.in_gpa[ch.nin] = desc.addr;
				ch.in_len[ch.nin++] = lens[i];
				in_total += lens[i];
			}
		}
		if (in_total < sizeof(struct vsock_hdr))
			r->short_offered = true;
		r->chains[d[0]] = ch;
		uint16_t head = d[0];
		gram_write(&env->ram, AVAIL_GPA + 4 + 2ull * (r->avail_idx % QSIZE), &head, 2);
		r->avail_idx++;
		gram_write(&env->ram, AVAIL_GPA + 2, &r->avail_idx, 2);
	}
}

/* One packet the guest received, `len` bytes of chain ch. */
static void check_packet(struct run *r, const struct chain *ch, uint32_t len)
{
	uint8_t pkt[SLOT];
	uint32_t room = 0;
	for (unsigned i = 0; i < ch->nin; i++)
		room += ch->in_len[i];
	if (len > room || len < sizeof(struct vsock_hdr))
		abort();   /* a used length that cannot be */
	uint32_t off = 0;
	for (unsigned i = 0; i < ch->nin && off < len; i++) {
		uint32_t n = len - off < ch->in_len[i] ? len - off : ch->in_len[i];
		gram_read(&env->ram, ch->in_gpa[i], pkt + off, n);
		off += n;
	}
	struct vsock_hdr h;
	memcpy(&h, pkt, sizeof(h));
	if (h.src_cid != HOST_CID || h.dst_cid != GUEST_CID || h.type != TYPE_STREAM ||
	    h.len != len - sizeof(h) || h.len > MAX_PKT)
		abort();
	/* The device's buffer, in all but a RST to no connection. */
	if (h.buf_alloc != BUF_ALLOC && h.op != OP_RST)
		abort();
	if ((h.op == OP_RW) != (h.len > 0))
		abort();   /* data only in RW, and RW only with data */
	struct pair *p = pair_of(r, h.src_port, h.dst_port, false);
	switch (h.op) {
	case OP_REQUEST:
		if (p && p->open)
			abort();   /* a second REQUEST on a live connection */
		p = pair_of(r, h.src_port, h.dst_port, true);
		*p = (struct pair){ .local = h.src_port, .peer = h.dst_port, .open = true };
		credit_of(r, h.src_port, h.dst_port, true)->unknown = true;
		break;
	case OP_RESPONSE: {
		struct credit *cr = credit_of(r, h.src_port, h.dst_port, false);
		if (!cr || !cr->requested || (p && p->open))
			abort();   /* answers no REQUEST of the guest's */
		cr->requested = false;
		p = pair_of(r, h.src_port, h.dst_port, true);
		*p = (struct pair){ .local = h.src_port, .peer = h.dst_port, .open = true };
		break;
	}
	case OP_RST:
		if (p)
			p->open = false;
		break;
	case OP_SHUTDOWN:
		if (!h.flags || h.flags & ~3u || !p || !p->open)
			abort();
		if (h.flags & SHUT_F_SEND)
			p->host_done = true;
		break;
	case OP_CREDIT_UPDATE:
		if (!p || !p->open)
			abort();
		break;
	case OP_RW: {
		if (!p || !p->open || p->host_done)
			abort();   /* data on no connection, or after the host's end */
		struct credit *cr = credit_of(r, h.src_port, h.dst_port, false);
		p->got += h.len;
		if (!cr || (!cr->unknown && (uint32_t)(p->got - cr->fwd_cnt) > cr->buf_alloc))
			abort();   /* more than the guest has room for */
		for (uint32_t i = 0; i < h.len; i++)
			if (pkt[sizeof(h) + i] != (uint8_t)((p->got - h.len + i) % PATTERN))
				abort();   /* not what the host socket sent next */
		break;
	}
	default:
		abort();   /* an op the device never sends */
	}
}

/* Bytes a host socket sent that the device has not read yet. */
static int unread(int fd)
{
	int n = 0;
	if (ioctl(fd, FIONREAD, &n) < 0)
		die("FIONREAD");
	return n;
}

/* After a round of the receive path: data stopped moving? While the guest
 * still offers receive buffers (one held by the device, or more in the
 * available ring), no connection may be left with host data the device
 * knows is there (readable), credit from the guest, nothing owed before
 * it, and its stream open both ways: the round reads every such socket
 * until buffers, credit or data run out (vsock_rx.c). A buffer the device
 * holds but cannot use (a header's room only, 728da74) stalls them all. */
static void check_moving(struct run *r)
{
	struct virtio_vsock *v = r->v;
	if (!v->rx_held && !virtq_has_avail(&r->rxq))
		return;   /* out of buffers: waiting is right */
	for (unsigned i = 0; i < v->nconns; i++) {
		const struct vconn *c = v->conns[i];
		if (c->state == C_ESTABLISHED && !c->pending && c->fd >= 0 && c->readable && !c->host_eof &&
		    !c->guest_shut_rcv && vconn_peer_credit(c) && unread(c->fd) > 0)
			abort();   /* a stall: buffers, credit and data, and nothing moved */
	}
}

/* The receive path runs; the guest takes what it got. */
static void rx(struct run *r)
{
	if (r->failed)
		return;   /* the device needs a reset: it sends nothing */
	vsock_serve_rx(r->v, &r->rxq);
	if (!r->failed)
		check_moving(r);
	uint16_t used_idx;
	gram_read(&env->ram, USED_GPA + 2, &used_idx, 2);
	if ((uint16_t)(used_idx - r->used_seen) > (uint16_t)(r->avail_idx - r->used_seen))
		abort();   /* more used than made available */
	while (r->used_seen != used_idx) {
		uint32_t e[2];
		gram_read(&env->ram, USED_GPA + 4 + 8ull * (r->used_seen % QSIZE), e, 8);
		r->used_seen++;
		if (e[0] >= QSIZE || !r->desc_used[e[0]])
			abort();   /* not a head the guest made available */
		struct chain ch = r->chains[e[0]];
		for (unsigned i = 0; i < ch.ndesc; i++)
			r->desc_used[ch.desc[i]] = false;
		check_packet(r, &ch, e[1]);
	}
}

static void check(const struct virtio_vsock *v)
{
	if (v->nconns > MAX_CONNS || v->nstray > STRAY_RST_MAX)
		abort();
	for (unsigned i = 0; i < v->nconns; i++) {
		const struct vconn *c = v->conns[i];
		if (c->buf_len > BUF_ALLOC || c->buf_head >= BUF_ALLOC ||
		    (uint32_t)(c->rx_cnt - c->fwd_cnt) > BUF_ALLOC ||
		    (uint32_t)(c->rx_cnt - c->fwd_cnt) < c->buf_len || c->line.len > VSOCK_UDS_LINE_MAX)
			abort();
		for (unsigned k = i + 1; k < v->nconns; k++)
			if (v->conns[k] == c)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!env)
		LLVMFuzzerInitialize(NULL, NULL);
	struct run *r = current = calloc(1, sizeof(*r));
	if (!r)
		die("calloc");
	struct virtio_vsock *v = r->v = calloc(1, sizeof(*v));
	if (!v || !(v->conns = calloc(MAX_CONNS, sizeof(*v->conns))) ||
	    !(v->bounce = malloc(MAX_PKT)) || !(v->rxreq = malloc(sizeof(*v->rxreq))))
		die("calloc");
	v->guest_cid = GUEST_CID;
	v->next_port = 1u << 30;
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	char err[256];
	if (v->epfd < 0 || vsock_uds_open(&v->host, env->path, err, sizeof(err)))
		die(err);
	gram_discard(&env->ram, RAM_BASE, RAM_SIZE);
	if (virtq_init(&r->rxq, Q_RX, QSIZE, NULL, NULL))
		die("virtq_init");
	r->rxq.desc_gpa = DESC_GPA;
	r->rxq.avail_gpa = AVAIL_GPA;
	r->rxq.used_gpa = USED_GPA;
	if (virtq_start(&r->rxq, &env->ram, 0, err, sizeof(err)))
		die(err);

	struct cursor c = { data, size };
	for (int steps = 0; c.n && steps < MAX_STEPS; steps++) {
		uint8_t step = (uint8_t)take(&c, 1);
		switch (step & 7) {
		case 0: case 1: case 2: case 3:
			guest_packet(r, &c, step);
			break;
		case 4:
			host_client(r, &c);
			break;
		case 5:
			host_socks(r, &c);
			break;
		case 6:
			sweep(r);
			break;
		case 7:
			if (step & 8)
				rx_buffers(r, &c, step);
			else
				rx(r);
			break;
		}
		check(v);
	}

	while (v->nconns)
		vconn_free(v, 0);
	for (unsigned i = 0; i < r->nhost; i++)
		close(r->host[i].fd);
	for (int i = 0; i < 2; i++) {   /* connections nobody accepted */
		int fd;
		while ((fd = accept4(env->port_fd[i], NULL, NULL, SOCK_NONBLOCK)) >= 0)
			close(fd);
	}
	virtq_destroy(&r->rxq);
	vsock_uds_close(&v->host);
	close(v->epfd);
	free(v->conns);
	free(v->bounce);
	free(v->rxreq);
	free(v);
	free(r);
	current = NULL;
	return 0;
}

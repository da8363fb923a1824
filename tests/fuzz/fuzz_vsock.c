/*
 * libFuzzer target for virtio-vsock's packet handling
 * (src/virtio/vsock_conn.c and the Unix-socket backend, vsock_uds.c): the
 * 44-byte header of every packet the guest sends (virtio 1.2 5.10.6: cids,
 * ports, len, type, op, flags, credit) and its payload, spread over any
 * number of descriptor segments, against connections in every state; and
 * what host clients write as their "CONNECT <port>" request line.
 *
 * Input: a list of steps, each a byte choosing what happens:
 *   guest packet   a header (with the right cids unless the step says
 *                  otherwise), a payload of up to 255 bytes (or up to
 *                  64 KiB of filler), cut into up to 4 segments;
 *   host client    connects to the device's socket and writes up to 40
 *                  bytes (a CONNECT line, or not);
 *   host peers     the sockets guest connections reached take what was
 *                  written, or close;
 *   sweep          what the device's thread does after epoll_wait: mark
 *                  readable/writable/hung-up sockets, then vconn_sweep;
 *   deliver        the control packets connections owe the guest are
 *                  sent, and reset connections forgotten, as the receive
 *                  path does.
 * After every step the connection table must be consistent: no more than
 * MAX_CONNS connections, a connection's buffered guest data within its
 * 256 KiB and never more than the credit it was granted.
 *
 * The device's socket and two port sockets (guest connections to ports
 * 1024 and 5000 reach them) live in a directory of this process's own
 * (mkdtemp); everything an input opens is closed before the next input.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cursor.h"
#include "virtio/vsock_dev.h"

#define GUEST_CID 3
#define MAX_CLIENTS 8
#define MAX_PEERS 16
#define MAX_STEPS 256

struct fuzz_env {
	char dir[64], path[96], port_path[2][112];
	struct unix_sock_file port_file[2];
	int port_fd[2];
};

struct run {
	struct virtio_vsock *v;
	int clients[MAX_CLIENTS];
	unsigned nclients;
	int peers[MAX_PEERS];
	unsigned npeers;
};

static struct fuzz_env *env;

static void die(const char *what)
{
	perror(what);
	exit(1);   /* the harness itself, not the input */
}

static void cleanup(void)
{
	for (int i = 0; i < 2; i++) {
		close(env->port_fd[i]);
		unix_listen_remove(env->port_path[i], &env->port_file[i]);
	}
	rmdir(env->dir);
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
	atexit(cleanup);
	return 0;
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
	/* Ports: mostly the two that listen and a few guest ports. */
	h.src_port = shape & 0x40 ? (uint32_t)take(c, 4) : 49152 + (uint32_t)take(c, 1) % 4;
	uint8_t dp = (uint8_t)take(c, 1);
	h.dst_port = dp < 0x80 ? 1024 : dp < 0xc0 ? 5000 : dp < 0xf0 ? (1u << 30) + (dp & 15) :
		     (uint32_t)take(c, 4);
	h.op = (uint16_t)(step >> 4 & 7);
	h.flags = (uint32_t)take(c, 1) & 7;
	h.buf_alloc = shape & 0x20 ? (uint32_t)take(c, 4) : 256 * 1024;
	h.fwd_cnt = (uint32_t)take(c, 4);
	/* Up to 255 payload bytes from the input, or (shape bit 2) up to
	 * 64 KiB of filler, so a few packets can exceed the credit. */
	size_t plen = shape & 0x04 ? (size_t)take(c, 2) + 1 : (size_t)take(c, 1);
	h.len = shape & 0x10 ? (uint32_t)take(c, 4) : (uint32_t)plen;

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

static void host_client(struct run *r, struct cursor *c)
{
	if (r->nclients == MAX_CLIENTS)
		return;
	int fd = unix_connect(env->path, false);
	if (fd < 0)
		return;
	r->clients[r->nclients++] = fd;
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
	vconn_accept(r->v);
}

/* The host sockets guest connections reached: accept them, read what
 * arrived, sometimes hang up. */
static void host_peers(struct run *r, struct cursor *c)
{
	uint8_t what = (uint8_t)take(c, 1);
	for (int i = 0; i < 2; i++) {
		int fd;
		while (r->npeers < MAX_PEERS && (fd = accept4(env->port_fd[i], NULL, NULL,
							       SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			r->peers[r->npeers++] = fd;
	}
	char buf[4096];
	for (unsigned i = 0; i < r->npeers; i++) {
		while (recv(r->peers[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
		if (what & 1 && send(r->peers[i], "host data\n", 10, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
			die("send");
	}
	if (what & 2 && r->npeers) {
		close(r->peers[--r->npeers]);
	}
	if (what & 4 && r->nclients) {
		close(r->clients[--r->nclients]);
	}
}

static void sweep(struct run *r)
{
	struct virtio_vsock *v = r->v;
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
	/* Ask epoll for what the device would: input on handshaking
	 * sockets, output room where guest data waits. */
	for (unsigned k = 0; k < v->nconns; k++) {
		struct vconn *c = v->conns[k];
		if (c->fd < 0)
			continue;
		struct epoll_event e = { .events = (c->state == C_HOST_LINE ? EPOLLIN : 0) |
						   (c->buf_len ? EPOLLOUT : 0), .data.ptr = c };
		epoll_ctl(v->epfd, EPOLL_CTL_MOD, c->fd, &e);
	}
}

/* What the receive path does with the control packets owed. */
static void deliver(struct run *r)
{
	struct virtio_vsock *v = r->v;
	for (unsigned i = 0; i < v->nconns;) {
		struct vconn *c = v->conns[i];
		if (c->pending & P_RST) {
			vconn_free(v, i);
			continue;
		}
		if (c->pending & (P_REQUEST | P_RESPONSE | P_CREDIT | P_SHUTDOWN)) {
			struct vsock_hdr h;
			vconn_fill_credit(c, &h);
		}
		c->pending = 0;
		i++;
	}
	v->nstray = 0;
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
	struct run r = { 0 };
	struct virtio_vsock *v = r.v = calloc(1, sizeof(*v));
	if (!v || !(v->conns = calloc(MAX_CONNS, sizeof(*v->conns))))
		die("calloc");
	v->guest_cid = GUEST_CID;
	v->next_port = 1u << 30;
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	char err[256];
	if (v->epfd < 0 || vsock_uds_open(&v->host, env->path, err, sizeof(err)))
		die(err);

	struct cursor c = { data, size };
	for (int steps = 0; c.n && steps < MAX_STEPS; steps++) {
		uint8_t step = (uint8_t)take(&c, 1);
		switch (step & 7) {
		case 0: case 1: case 2: case 3:
			guest_packet(&r, &c, step);
			break;
		case 4:
			host_client(&r, &c);
			break;
		case 5:
			host_peers(&r, &c);
			break;
		case 6:
			sweep(&r);
			break;
		case 7:
			deliver(&r);
			break;
		}
		check(v);
	}

	while (v->nconns)
		vconn_free(v, 0);
	for (unsigned i = 0; i < r.nclients; i++)
		close(r.clients[i]);
	for (unsigned i = 0; i < r.npeers; i++)
		close(r.peers[i]);
	for (int i = 0; i < 2; i++) {   /* connections nobody accepted */
		int fd;
		while ((fd = accept4(env->port_fd[i], NULL, NULL, SOCK_NONBLOCK)) >= 0)
			close(fd);
	}
	vsock_uds_close(&v->host);
	close(v->epfd);
	free(v->conns);
	free(v);
	return 0;
}

/*
 * Unit tests for virtio-vsock (src/virtio/vsock.c). The test guest
 * (virtio_guest.h) plays Linux's vsock transport with hand-built packets;
 * the host side is real Unix sockets in a temporary directory.
 *
 * Covered: the configuration space (guest CID); a guest connection to host
 * port P reaching "<uds>_P" (RESPONSE, data both ways with credit fields,
 * SHUTDOWN from the guest closing the host socket and answered by RST); a
 * guest connection to a port with no listener (RST); a host connection by
 * "CONNECT <port>\n" (REQUEST to the guest, "OK <port>\n" after RESPONSE,
 * the socket closed after the guest's RST); the host closing (SHUTDOWN to
 * the guest); credit: the device never sends past the guest's buf_alloc and
 * goes on after a CREDIT_UPDATE, answers CREDIT_REQUEST, and resets a guest
 * that sends past the device's buffer; packets with a wrong CID are dropped,
 * SEQPACKET is refused; many connections at once; a device reset closes
 * every host socket. The listening socket is mode 0600 under umask 0, and
 * (as root) a guest connection to a "<uds>_P" socket file of another user,
 * or one another user's process listens on, is refused with a RST.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "virtio/vsock.h"
#include "virtio_guest.h"

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ull << VIRTIO_F_RING_EVENT_IDX)

#define Q_RX 0
#define Q_TX 1
#define Q_EV 2
#define CID 3
#define HOST 2
#define RXBUF (4096 + 44)
#define NRX 32

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE, OP_CREDIT_REQUEST };

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct vt {
	struct vguest g;
	struct virtio_vsock *v;
	char dir[40], uds[64];
	uint64_t rxbuf[NRX];
	uint64_t txbuf;
};

static struct vt T;

static void post_rx_len(struct vt *t, unsigned i, uint32_t len)
{
	/* Buffer i is always descriptor i. */
	struct virtq_desc *d = vg_desc(&t->g, Q_RX, i);
	d->addr = t->rxbuf[i];
	d->len = len;
	d->flags = VIRTQ_DESC_F_WRITE;
	d->next = 0;
	vg_publish(&t->g, Q_RX, (uint16_t)i);
	vg_notify(&t->g, Q_RX);
}

static void post_rx(struct vt *t, unsigned i)
{
	post_rx_len(t, i, RXBUF);
}

/* A device with `nposted` of its NRX receive buffers made available. */
static void vt_up(struct vt *t, unsigned nposted)
{
	vg_init(&t->g);
	snprintf(t->dir, sizeof(t->dir), "/tmp/skvsockXXXXXX");
	if (!mkdtemp(t->dir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(t->uds, sizeof(t->uds), "%s/v.sock", t->dir);
	char err[200];
	t->v = virtio_vsock_create(&t->g.ram, CID, t->uds, err, sizeof(err));
	if (!t->v) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	vg_attach(&t->g, virtio_vsock_dev(t->v));
	CHECK_EQ(vg_r32(&t->g, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	CHECK(vg_negotiate(&t->g, F_V1 | F_EVENT_IDX));
	uint64_t cid = 0;
	virtio_mmio_ops.read(&t->g.t, VIRTIO_MMIO_CONFIG, 8, &cid);
	CHECK_EQ(cid, CID);
	/* Queue size = NRX so descriptor i is always buffer i. */
	vg_queue_setup(&t->g, Q_RX, NRX);
	vg_queue_setup(&t->g, Q_TX, 64);
	vg_queue_setup(&t->g, Q_EV, 8);
	t->txbuf = vg_alloc(&t->g, 64 * (44 + 65536), 8);
	vg_driver_ok(&t->g);
	for (unsigned i = 0; i < NRX; i++) {
		t->rxbuf[i] = vg_alloc(&t->g, RXBUF, 8);
		if (i < nposted)
			post_rx(t, i);
	}
}

static void vt_down(struct vt *t)
{
	virtio_vsock_destroy(t->v);
	vg_fini(&t->g);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	if (system(cmd)) {
	}
}

static unsigned tx_slot;

/* Guest -> device packet (header + payload in one descriptor). */
static void send_pkt(struct vt *t, uint16_t op, uint32_t sport, uint32_t dport, const void *data,
		     uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt, uint32_t flags)
{
	uint64_t a = t->txbuf + (uint64_t)(tx_slot++ % 64) * (44 + 65536);
	struct hdr h = { .src_cid = CID, .dst_cid = HOST, .src_port = sport, .dst_port = dport,
			 .len = len, .type = 1, .op = op, .flags = flags, .buf_alloc = buf_alloc,
			 .fwd_cnt = fwd_cnt };
	memcpy(vg_host(&t->g, a), &h, sizeof(h));
	if (len)
		memcpy((uint8_t *)vg_host(&t->g, a) + 44, data, len);
	struct vg_seg s = { a, 44 + len, false };
	vg_submit(&t->g, Q_TX, &s, 1, false);
	uint32_t id, ulen;
	CHECK(vg_wait_used(&t->g, Q_TX, &id, &ulen));
}

static void send_raw(struct vt *t, const struct hdr *h)
{
	uint64_t a = t->txbuf + (uint64_t)(tx_slot++ % 64) * (44 + 65536);
	memcpy(vg_host(&t->g, a), h, sizeof(*h));
	struct vg_seg s = { a, 44, false };
	vg_submit(&t->g, Q_TX, &s, 1, false);
	uint32_t id, ulen;
	CHECK(vg_wait_used(&t->g, Q_TX, &id, &ulen));
}

/* Next device -> guest packet; the buffer is posted again. false on
 * timeout. */
static bool recv_pkt(struct vt *t, struct hdr *h, uint8_t *data)
{
	uint32_t id, len;
	if (!vg_wait_used(&t->g, Q_RX, &id, &len))
		return false;
	if (id >= NRX || len < 44)
		return false;
	memcpy(h, vg_host(&t->g, t->rxbuf[id]), 44);
	if (data && h->len)
		memcpy(data, (uint8_t *)vg_host(&t->g, t->rxbuf[id]) + 44, h->len);
	post_rx(t, id);
	return true;
}

/* No packet within a short while. */
static bool rx_quiet(struct vt *t)
{
	vg_settle(&t->g);
	vg_settle(&t->g);
	return vg_used_idx(&t->g, Q_RX) == t->g.q[Q_RX].last_used;
}

static int host_listen(struct vt *t, unsigned port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", t->uds, port);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 64)) {
		perror("host listen");
		exit(2);
	}
	return s;
}

static int host_connect(struct vt *t)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", t->uds);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
		perror("host connect");
		exit(2);
	}
	return s;
}

/* read() with a 3 s timeout: bytes, 0 on EOF, -1 on timeout/error. */
static ssize_t read_to(int fd, void *buf, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1)
		return -1;
	return read(fd, buf, n);
}

/* ---- tests ---- */

static void test_guest_to_host(struct vt *t)
{
	int l = host_listen(t, 700);
	send_pkt(t, OP_REQUEST, 1234, 700, NULL, 0, 65536, 0, 0);
	struct hdr h;
	uint8_t data[65536];
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RESPONSE);
	CHECK_EQ(h.src_cid, HOST);
	CHECK_EQ(h.dst_cid, CID);
	CHECK_EQ(h.src_port, 700);
	CHECK_EQ(h.dst_port, 1234);
	CHECK_EQ(h.type, 1);
	CHECK_EQ(h.buf_alloc, 256 * 1024);
	int c = accept(l, NULL, NULL);
	CHECK(c >= 0);

	send_pkt(t, OP_RW, 1234, 700, "hello", 5, 65536, 0, 0);
	char buf[64] = { 0 };
	CHECK_EQ(read_to(c, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "hello", 5));

	CHECK_EQ(write(c, "world!", 6), 6);
	CHECK(recv_pkt(t, &h, data));
	CHECK_EQ(h.op, OP_RW);
	CHECK_EQ(h.len, 6);
	CHECK(!memcmp(data, "world!", 6));
	CHECK_EQ(h.fwd_cnt, 5);   /* the 5 bytes went to the host socket */

	/* CREDIT_REQUEST is answered with the current credit. */
	send_pkt(t, OP_CREDIT_REQUEST, 1234, 700, NULL, 0, 65536, 6, 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_CREDIT_UPDATE);
	CHECK_EQ(h.fwd_cnt, 5);
	CHECK_EQ(h.buf_alloc, 256 * 1024);

	/* Guest closes: host sees EOF, the device answers RST. */
	send_pkt(t, OP_SHUTDOWN, 1234, 700, NULL, 0, 65536, 6, 3);
	CHECK_EQ(read_to(c, buf, sizeof(buf)), 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RST);
	CHECK_EQ(h.dst_port, 1234);
	/* Data for the closed connection: RST. */
	send_pkt(t, OP_RW, 1234, 700, "late", 4, 65536, 6, 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RST);
	close(c);
	close(l);
}

static void test_guest_half_close(struct vt *t)
{
	int l = host_listen(t, 701);
	struct hdr h;
	send_pkt(t, OP_REQUEST, 1300, 701, NULL, 0, 65536, 0, 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RESPONSE);
	int c = accept(l, NULL, NULL);
	send_pkt(t, OP_RW, 1300, 701, "abc", 3, 65536, 0, 0);
	/* SHUTDOWN(SEND): host reads the data then EOF, can still write. */
	send_pkt(t, OP_SHUTDOWN, 1300, 701, NULL, 0, 65536, 0, 2);
	char buf[16];
	CHECK_EQ(read_to(c, buf, sizeof(buf)), 3);
	CHECK_EQ(read_to(c, buf, sizeof(buf)), 0);
	CHECK_EQ(write(c, "xy", 2), 2);
	uint8_t data[64];
	CHECK(recv_pkt(t, &h, data));
	CHECK_EQ(h.op, OP_RW);
	CHECK_EQ(h.len, 2);
	/* Host closes too: the guest hears SHUTDOWN(SEND). */
	close(c);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_SHUTDOWN);
	CHECK(h.flags & 2);
	send_pkt(t, OP_RST, 1300, 701, NULL, 0, 65536, 2, 0);
	CHECK(rx_quiet(t));   /* a RST is never answered */
	close(l);
}

static void test_no_listener_is_reset(struct vt *t)
{
	struct hdr h;
	send_pkt(t, OP_REQUEST, 1400, 799, NULL, 0, 65536, 0, 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RST);
	CHECK_EQ(h.src_port, 799);
	CHECK_EQ(h.dst_port, 1400);
}

static void test_host_to_guest(struct vt *t)
{
	int s = host_connect(t);
	CHECK_EQ(write(s, "CONNECT 5000\n", 13), 13);
	struct hdr h;
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_REQUEST);
	CHECK_EQ(h.dst_port, 5000);
	CHECK(h.src_port >= (1u << 30));
	uint32_t hp = h.src_port;
	send_pkt(t, OP_RESPONSE, 5000, hp, NULL, 0, 65536, 0, 0);
	char line[64] = { 0 }, want[64];
	snprintf(want, sizeof(want), "OK %u\n", hp);
	CHECK_EQ(read_to(s, line, strlen(want)), (ssize_t)strlen(want));
	CHECK(!strcmp(line, want));
	/* Data both ways. */
	CHECK_EQ(write(s, "ping", 4), 4);
	uint8_t data[64];
	CHECK(recv_pkt(t, &h, data));
	CHECK_EQ(h.op, OP_RW);
	CHECK_EQ(h.dst_port, 5000);
	CHECK(!memcmp(data, "ping", 4));
	send_pkt(t, OP_RW, 5000, hp, "pong", 4, 65536, 4, 0);
	char buf[8] = { 0 };
	CHECK_EQ(read_to(s, buf, 4), 4);
	CHECK(!memcmp(buf, "pong", 4));
	/* The guest resets: the host socket closes. */
	send_pkt(t, OP_RST, 5000, hp, NULL, 0, 65536, 4, 0);
	CHECK_EQ(read_to(s, buf, 4), 0);
	close(s);

	/* Nobody listening in the guest: RST -> the socket closes, no OK. */
	s = host_connect(t);
	CHECK_EQ(write(s, "CONNECT 6000\n", 13), 13);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_REQUEST);
	send_pkt(t, OP_RST, 6000, h.src_port, NULL, 0, 0, 0, 0);
	CHECK_EQ(read_to(s, buf, 4), 0);
	close(s);

	/* A bad first line: closed without a REQUEST. */
	s = host_connect(t);
	CHECK_EQ(write(s, "HELLO 1\n", 8), 8);
	CHECK_EQ(read_to(s, buf, 4), 0);
	CHECK(rx_quiet(t));
	close(s);
}

/* Handshakes that never finish are dropped after 2 s (read_to waits 3 s). */
static void test_handshake_timeouts(struct vt *t)
{
	char buf[8];
	struct hdr h;
	/* A host client that never writes its CONNECT line. */
	int s = host_connect(t);
	CHECK_EQ(write(s, "CONN", 4), 4);
	CHECK_EQ(read_to(s, buf, sizeof(buf)), 0);
	CHECK(rx_quiet(t));
	close(s);

	/* A guest that never answers the REQUEST: the host socket closes and
	 * the guest is told with a RST for the same ports. */
	s = host_connect(t);
	CHECK_EQ(write(s, "CONNECT 7000\n", 13), 13);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_REQUEST);
	uint32_t hp = h.src_port;
	CHECK_EQ(read_to(s, buf, sizeof(buf)), 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RST);
	CHECK_EQ(h.src_port, hp);
	CHECK_EQ(h.dst_port, 7000);
	close(s);
}

static void test_credit(struct vt *t)
{
	int l = host_listen(t, 702);
	struct hdr h;
	/* The guest can take 100 bytes. */
	send_pkt(t, OP_REQUEST, 1500, 702, NULL, 0, 100, 0, 0);
	CHECK(recv_pkt(t, &h, NULL));
	int c = accept(l, NULL, NULL);
	static uint8_t big[300000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13);
	CHECK_EQ(write(c, big, 1000), 1000);
	uint32_t got = 0;
	uint8_t data[8192];
	while (got < 100 && recv_pkt(t, &h, data)) {
		CHECK_EQ(h.op, OP_RW);
		CHECK(!memcmp(data, big + got, h.len));
		got += h.len;
	}
	CHECK_EQ(got, 100);
	CHECK(rx_quiet(t));   /* no more until the guest grants it */
	send_pkt(t, OP_CREDIT_UPDATE, 1500, 702, NULL, 0, 100, 100, 0);
	got = 0;
	while (got < 100 && recv_pkt(t, &h, data))
		got += h.len;
	CHECK_EQ(got, 100);
	CHECK(rx_quiet(t));
	send_pkt(t, OP_CREDIT_UPDATE, 1500, 702, NULL, 0, 65536, 200, 0);
	got = 0;
	while (got < 800 && recv_pkt(t, &h, data)) {
		CHECK(!memcmp(data, big + 200 + got, h.len));
		got += h.len;
	}
	CHECK_EQ(got, 800);

	/* The guest sends past the device's 256 KiB while the host reads
	 * nothing: once the socket and the buffer are full, RST. */
	bool reset = false;
	for (int i = 0; i < 20 && !reset; i++) {
		send_pkt(t, OP_RW, 1500, 702, big, 65536, 65536, 1000, 0);
		vg_settle(&t->g);
		while (vg_used_idx(&t->g, Q_RX) != t->g.q[Q_RX].last_used) {
			CHECK(recv_pkt(t, &h, NULL));
			if (h.op == OP_RST)
				reset = true;
		}
	}
	CHECK(reset);
	/* A packet sent before the RST came back (a slow device thread, as
	 * under TSan) is answered by its own RST: the connection is gone.
	 * Take those, so the next test starts from a quiet queue. */
	while (!rx_quiet(t)) {
		CHECK(recv_pkt(t, &h, NULL));
		CHECK_EQ(h.op, OP_RST);
	}
	close(c);
	close(l);
}

static void test_bad_packets(struct vt *t)
{
	struct hdr h = { .src_cid = 99, .dst_cid = HOST, .src_port = 1, .dst_port = 2, .type = 1,
			 .op = OP_REQUEST };
	send_raw(t, &h);
	CHECK(rx_quiet(t));   /* another CID: dropped */
	h.src_cid = CID;
	h.dst_cid = 77;
	send_raw(t, &h);
	CHECK(rx_quiet(t));
	h.dst_cid = HOST;
	h.type = 2;   /* SEQPACKET: not offered */
	send_raw(t, &h);
	struct hdr r;
	CHECK(recv_pkt(t, &r, NULL));
	CHECK_EQ(r.op, OP_RST);
	h.type = 1;
	h.len = 5000;   /* longer than the buffer */
	send_raw(t, &h);
	CHECK(recv_pkt(t, &r, NULL));
	CHECK_EQ(r.op, OP_RST);
	h.len = 0;
	h.op = 99;      /* unknown op on no connection */
	send_raw(t, &h);
	CHECK(recv_pkt(t, &r, NULL));
	CHECK_EQ(r.op, OP_RST);
}

static void test_many_connections_and_reset(struct vt *t)
{
	enum { N = 24 };
	int l = host_listen(t, 703);
	int c[N];
	struct hdr h;
	for (int i = 0; i < N; i++) {
		send_pkt(t, OP_REQUEST, 2000 + i, 703, NULL, 0, 65536, 0, 0);
		CHECK(recv_pkt(t, &h, NULL));
		CHECK_EQ(h.op, OP_RESPONSE);
		CHECK_EQ(h.dst_port, 2000 + i);
		c[i] = accept(l, NULL, NULL);
	}
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(t->v, &st);
	CHECK_EQ(st.connections, N);
	/* Each connection carries its own data (accept order = request order). */
	for (int i = 0; i < N; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "conn%d", i);
		send_pkt(t, OP_RW, 2000 + i, 703, msg, (uint32_t)n, 65536, 0, 0);
		char buf[16] = { 0 };
		CHECK_EQ(read_to(c[i], buf, sizeof(buf)), n);
		CHECK(!strcmp(buf, msg));
	}
	/* A device reset ends every connection: the host sees EOF. */
	vg_w32(&t->g, VIRTIO_MMIO_STATUS, 0);
	for (int i = 0; i < N; i++) {
		char buf[4];
		CHECK_EQ(read_to(c[i], buf, sizeof(buf)), 0);
		close(c[i]);
	}
	virtio_vsock_get_stats(t->v, &st);
	CHECK_EQ(st.connections, 0);
	close(l);
}

static void test_socket_mode(struct vt *t)
{
	struct stat st;
	CHECK(lstat(t->uds, &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);
}

/* Another user got to "<uds>_P" first: either the socket file is theirs,
 * or their process listens on it. The guest must get a RST and nothing
 * may reach their socket. Needs root to play the other user. */
static void test_foreign_socket_refused(struct vt *t)
{
	if (geteuid() != 0) {
		printf("skipped: the foreign-socket checks need root\n");
		return;
	}
	const uid_t nobody = 65534;
	/* Port 1500: the file belongs to another user. */
	int l1 = host_listen(t, 1500);
	char path[96];
	snprintf(path, sizeof(path), "%s_%u", t->uds, 1500u);
	CHECK(chown(path, nobody, nobody) == 0);
	/* Port 1501: the file is ours, but another user's process listens. */
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t child = fork();
	if (child == 0) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", t->uds, 1501u);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) || setresuid(nobody, nobody, nobody) ||
		    listen(s, 4))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		/* Anything accepted would be the guest's: report it. */
		int c = accept(s, NULL, NULL);
		_exit(c >= 0 ? 3 : 0);
	}
	char r;
	CHECK(read(ready[0], &r, 1) == 1);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(t->v, &st);
	uint64_t before = st.foreign_refused;
	struct hdr h;
	send_pkt(t, OP_REQUEST, 800, 1500, NULL, 0, 65536, 0, 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RST);
	send_pkt(t, OP_REQUEST, 801, 1501, NULL, 0, 65536, 0, 0);
	CHECK(recv_pkt(t, &h, NULL));
	CHECK_EQ(h.op, OP_RST);
	virtio_vsock_get_stats(t->v, &st);
	CHECK_EQ(st.foreign_refused, before + 2);
	/* The connection the device made to check is closed again: the
	 * child's accept sees it (status 3 proves it was the kernel's queue,
	 * not data) or nothing; never any of the guest's bytes. */
	kill(child, SIGKILL);
	int status = 0;
	waitpid(child, &status, 0);
	close(l1);
	close(ready[0]);
	close(ready[1]);
}

static void test_create_errors(void)
{
	struct gram ram;
	gram_init(&ram, VG_RAM_BASE, 1 << 20);
	char err[200];
	CHECK(!virtio_vsock_create(&ram, 2, "/tmp/x", err, sizeof(err)));
	CHECK(strstr(err, "CID"));
	CHECK(!virtio_vsock_create(&ram, 3, "/nonexistent-dir/v.sock", err, sizeof(err)));
	CHECK(strstr(err, "nonexistent-dir"));
	gram_destroy(&ram);
}

/* The host socket follows the one rule of base/unix_sock.h: a socket a
 * program listens on is refused, a stale one (its VMM is gone) replaced. */
static void test_socket_file_rule(struct vt *t)
{
	char err[400];
	struct virtio_vsock *v = virtio_vsock_create(&t->g.ram, CID, t->uds, err, sizeof(err));
	CHECK(!v && strstr(err, "a program is listening"));
	vt_down(t);            /* removes the socket file */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", t->uds);
	CHECK(mkdir(t->dir, 0700) == 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	close(fd);
	struct gram ram;
	gram_init(&ram, VG_RAM_BASE, 1 << 20);
	v = virtio_vsock_create(&ram, CID, t->uds, err, sizeof(err));
	CHECK(v != NULL);
	struct stat st;
	CHECK(stat(t->uds, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	if (v)
		virtio_vsock_destroy(v);
	CHECK(stat(t->uds, &st) != 0);
	gram_destroy(&ram);
	rmdir(t->dir);
}

/* A receive buffer with room for a header only (legal, if odd) must not
 * stall host data behind it: it goes back carrying the connection's
 * credit, and the data follows in the next buffer. */
static void test_header_only_buffer(void)
{
	struct vt u;
	memset(&u, 0, sizeof(u));
	vt_up(&u, 1);
	int s = host_connect(&u);
	CHECK_EQ(write(s, "CONNECT 5000\n", 13), 13);
	uint32_t id, len;
	CHECK(vg_wait_used(&u.g, Q_RX, &id, &len));
	struct hdr h;
	memcpy(&h, vg_host(&u.g, u.rxbuf[id]), sizeof(h));
	CHECK_EQ(h.op, OP_REQUEST);
	post_rx_len(&u, 1, 44);
	post_rx(&u, 2);
	send_pkt(&u, OP_RESPONSE, 5000, h.src_port, NULL, 0, 65536, 0, 0);
	char line[64];
	CHECK(read_to(s, line, sizeof(line)) > 0);   /* OK <port> */
	CHECK_EQ(write(s, "ping", 4), 4);
	uint8_t data[64];
	CHECK(recv_pkt(&u, &h, data));
	CHECK_EQ(h.op, OP_CREDIT_UPDATE);
	CHECK_EQ(h.len, 0);
	CHECK(recv_pkt(&u, &h, data));
	CHECK_EQ(h.op, OP_RW);
	CHECK_EQ(h.len, 4);
	CHECK(!memcmp(data, "ping", 4));
	close(s);
	vt_down(&u);
}

int main(void)
{
	umask(0);   /* the listening socket's mode must not follow it */
	vt_up(&T, NRX);
	test_socket_mode(&T);
	test_foreign_socket_refused(&T);
	test_guest_to_host(&T);
	test_guest_half_close(&T);
	test_no_listener_is_reset(&T);
	test_host_to_guest(&T);
	test_handshake_timeouts(&T);
	test_credit(&T);
	test_bad_packets(&T);
	test_many_connections_and_reset(&T);
	test_socket_file_rule(&T);
	test_create_errors();
	test_header_only_buffer();
	return vt_report();
}

/*
 * Unit tests for virtio-console (src/virtio/console.c) and virtio-rng
 * (src/virtio/rng.c). A test guest (virtio_guest.h) plays Linux's
 * virtio_console driver: MULTIPORT negotiation, the control queue handshake
 * (DEVICE_READY -> PORT_ADD, PORT_READY -> CONSOLE_PORT / PORT_NAME /
 * PORT_OPEN, PORT_OPEN from the guest), output to the host callbacks, host
 * input held until the port is open, split across small buffers, and
 * backpressure with the rx_space callback, output held back while the host
 * says output_busy; reset; named ports only (no port 0 announced: no
 * hvc0); a driver without MULTIPORT; malformed control
 * messages. For virtio-rng: buffers come back filled with random bytes,
 * capped per request. For the ports' Unix sockets (src/vmm/port_sock.c):
 * socket files, output with and without a client, input, back-pressure both
 * ways, takeover, half close, output held for a client not accepted yet.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "virtio/console.h"
#include "virtio/rng.h"
#include "virtio_guest.h"
#include "vmm/port_sock.h"

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ull << VIRTIO_F_RING_EVENT_IDX)
#define F_MULTIPORT (1ull << 1)

#define Q_RX0 0
#define Q_TX0 1
#define Q_CRX 2
#define Q_CTX 3
#define Q_RX1 4
#define Q_TX1 5

enum { EV_DEVICE_READY = 0, EV_PORT_ADD = 1, EV_PORT_READY = 3, EV_CONSOLE_PORT = 4,
       EV_PORT_OPEN = 6, EV_PORT_NAME = 7 };

struct ctrl {
	uint32_t id;
	uint16_t event, value;
};

/* What the host side saw, per port. */
struct hostport {
	pthread_mutex_t lock;
	char out[1024];
	size_t nout;
	_Atomic int rx_space;
	_Atomic int open_calls;
	_Atomic int open;
	_Atomic int busy;            /* what output_busy answers */
	_Atomic int busy_on_output;  /* output makes it busy */
};

static void host_output(void *ctx, const uint8_t *buf, size_t n)
{
	struct hostport *h = ctx;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < n && h->nout < sizeof(h->out) - 1; i++)
		h->out[h->nout++] = (char)buf[i];
	h->out[h->nout] = 0;
	pthread_mutex_unlock(&h->lock);
	if (atomic_load(&h->busy_on_output))
		atomic_store(&h->busy, 1);
}

static bool host_output_busy(void *ctx)
{
	return atomic_load(&((struct hostport *)ctx)->busy);
}

static void host_rx_space(void *ctx)
{
	atomic_fetch_add(&((struct hostport *)ctx)->rx_space, 1);
}

static void host_guest_open(void *ctx, bool open)
{
	struct hostport *h = ctx;
	atomic_fetch_add(&h->open_calls, 1);
	atomic_store(&h->open, open);
}

static bool host_saw(struct hostport *h, const char *s)
{
	for (int i = 0; i < 30000; i++) {
		pthread_mutex_lock(&h->lock);
		bool ok = strstr(h->out, s) != NULL;
		pthread_mutex_unlock(&h->lock);
		if (ok)
			return true;
		vg_sleep_us(100);
	}
	return false;
}

struct cont {
	struct vguest g;
	struct virtio_console *con;
	struct hostport hp[2];
	uint64_t crx_buf[8];     /* control receive buffers, head i = buffer i */
	uint64_t rx_buf[2][16];  /* port receive buffers, head i = buffer i */
	uint32_t rx_len;
	uint64_t scratch;
};

/* Put buffer `gpa` as the single descriptor `idx` of queue q and publish it. */
static void give_buf(struct vguest *g, unsigned q, uint16_t idx, uint64_t gpa, uint32_t len, bool write)
{
	struct virtq_desc *d = vg_desc(g, q, idx);
	d->addr = gpa;
	d->len = len;
	d->flags = write ? VIRTQ_DESC_F_WRITE : 0;
	d->next = 0;
	vg_publish(g, q, idx);
}

/* given: the two ports' configurations, NULL for the test's hostports. */
static void cont_up_ports(struct cont *t, bool multiport, uint32_t rx_len,
			  const struct virtio_console_port_config *given)
{
	memset(t, 0, sizeof(*t));
	vg_init(&t->g);
	for (int i = 0; i < 2; i++)
		pthread_mutex_init(&t->hp[i].lock, NULL);
	struct virtio_console_port_config ports[2] = {
		{ .name = NULL, .output = host_output, .rx_space = host_rx_space,
		  .guest_open = host_guest_open, .ctx = &t->hp[0] },
		{ .name = "org.skiff.agent.0", .output = host_output, .rx_space = host_rx_space,
		  .guest_open = host_guest_open, .output_busy = host_output_busy, .ctx = &t->hp[1] },
	};
	if (given)
		memcpy(ports, given, sizeof(ports));
	char err[200];
	t->con = virtio_console_create(&t->g.ram, ports, 2, err, sizeof(err));
	if (!t->con) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	vg_attach(&t->g, virtio_console_dev(t->con));
	CHECK(vg_device_features(&t->g) & F_MULTIPORT);
	CHECK(vg_negotiate(&t->g, F_V1 | F_EVENT_IDX | (multiport ? F_MULTIPORT : 0)));
	uint64_t v = 0;
	virtio_mmio_ops.read(&t->g.t, 0x104, 4, &v);
	CHECK_EQ(v, 2);   /* max_nr_ports */
	unsigned nq = multiport ? 6 : 2;
	for (unsigned q = 0; q < nq; q++)
		vg_queue_setup(&t->g, q, q == Q_CRX || q == Q_CTX ? 32 : 64);
	t->scratch = vg_alloc(&t->g, 4096, 16);
	t->rx_len = rx_len;
	if (multiport) {
		for (uint16_t i = 0; i < 8; i++) {
			t->crx_buf[i] = vg_alloc(&t->g, 256, 8);
			give_buf(&t->g, Q_CRX, i, t->crx_buf[i], 256, true);
		}
	}
	for (unsigned p = 0; p < (multiport ? 2u : 1u); p++) {
		unsigned q = p ? Q_RX1 : Q_RX0;
		for (uint16_t i = 0; i < 16; i++) {
			t->rx_buf[p][i] = vg_alloc(&t->g, rx_len, 8);
			give_buf(&t->g, q, i, t->rx_buf[p][i], rx_len, true);
		}
	}
	vg_driver_ok(&t->g);
	vg_notify(&t->g, Q_CRX);
}

static void cont_up(struct cont *t, bool multiport, uint32_t rx_len)
{
	cont_up_ports(t, multiport, rx_len, NULL);
}

static void cont_down(struct cont *t)
{
	virtio_console_destroy(t->con);
	vg_fini(&t->g);
	for (int i = 0; i < 2; i++)
		pthread_mutex_destroy(&t->hp[i].lock);
}

/* Guest -> device control message; waits until the device used it. */
static void send_ctrl(struct cont *t, uint32_t id, uint16_t event, uint16_t value)
{
	struct ctrl *c = vg_host(&t->g, t->scratch);
	*c = (struct ctrl){ id, event, value };
	struct vg_seg s[1] = { { t->scratch, sizeof(*c), false } };
	vg_submit(&t->g, Q_CTX, s, 1, false);
	CHECK(vg_wait_used(&t->g, Q_CTX, NULL, NULL));
}

/* Device -> guest control message: the next one, recycled after reading.
 * Returns false on timeout. name gets the PORT_NAME payload. */
static bool recv_ctrl(struct cont *t, struct ctrl *out, char *name, size_t namelen)
{
	uint32_t id = 0, len = 0;
	if (!vg_wait_used(&t->g, Q_CRX, &id, &len) || id >= 8 || len < sizeof(*out))
		return false;
	memcpy(out, vg_host(&t->g, t->crx_buf[id]), sizeof(*out));
	if (name) {
		size_t n = len - sizeof(*out) < namelen - 1 ? len - sizeof(*out) : namelen - 1;
		memcpy(name, (uint8_t *)vg_host(&t->g, t->crx_buf[id]) + sizeof(*out), n);
		name[n] = 0;
	}
	give_buf(&t->g, Q_CRX, (uint16_t)id, t->crx_buf[id], 256, true);
	vg_notify(&t->g, Q_CRX);
	return true;
}

static bool expect_ctrl(struct cont *t, uint32_t id, uint16_t event, uint16_t value)
{
	struct ctrl c;
	if (!recv_ctrl(t, &c, NULL, 0))
		return false;
	if (c.id != id || c.event != event || c.value != value) {
		printf("control message {%u, %u, %u}, wanted {%u, %u, %u}\n",
		       c.id, c.event, c.value, id, event, value);
		return false;
	}
	return true;
}

/* Receive up to `want` bytes of host input on port p; returns the count. */
static size_t recv_input(struct cont *t, unsigned p, char *dst, size_t want)
{
	unsigned q = p ? Q_RX1 : Q_RX0;
	size_t got = 0;
	while (got < want) {
		uint32_t id = 0, len = 0;
		if (!vg_wait_used(&t->g, q, &id, &len) || id >= 16)
			break;
		size_t n = len < want - got ? len : want - got;
		if (dst)
			memcpy(dst + got, vg_host(&t->g, t->rx_buf[p][id]), n);
		got += len;
		give_buf(&t->g, q, (uint16_t)id, t->rx_buf[p][id], t->rx_len, true);
		vg_notify(&t->g, q);
	}
	return got;
}

static void guest_write(struct cont *t, unsigned q, const char *s)
{
	uint64_t b = t->scratch + 512;
	memcpy(vg_host(&t->g, b), s, strlen(s));
	struct vg_seg seg[2] = { { b, 3, false }, { b + 3, (uint32_t)strlen(s) - 3, false } };
	vg_submit(&t->g, q, seg, 2, false);
	uint32_t len = 99;
	CHECK(vg_wait_used(&t->g, q, NULL, &len));
	CHECK_EQ(len, 0);
}

static void test_multiport(void)
{
	struct cont t;
	cont_up(&t, true, 64);

	/* Handshake, as Linux does it. */
	send_ctrl(&t, 0xffffffff, EV_DEVICE_READY, 1);
	CHECK(expect_ctrl(&t, 0, EV_PORT_ADD, 1));
	CHECK(expect_ctrl(&t, 1, EV_PORT_ADD, 1));
	send_ctrl(&t, 0, EV_PORT_READY, 1);
	CHECK(expect_ctrl(&t, 0, EV_CONSOLE_PORT, 1));
	CHECK(expect_ctrl(&t, 0, EV_PORT_OPEN, 1));
	send_ctrl(&t, 1, EV_PORT_READY, 1);
	struct ctrl c;
	char name[64] = "";
	CHECK(recv_ctrl(&t, &c, name, sizeof(name)));
	CHECK_EQ(c.id, 1);
	CHECK_EQ(c.event, EV_PORT_NAME);
	CHECK(!strcmp(name, "org.skiff.agent.0"));
	CHECK(expect_ctrl(&t, 1, EV_PORT_OPEN, 1));

	/* Input before the guest opened the console port waits. */
	CHECK(!virtio_console_guest_open(t.con, 0));
	CHECK_EQ(virtio_console_input(t.con, 0, "hello", 5), 5);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_RX0), 0);
	send_ctrl(&t, 0, EV_PORT_OPEN, 1);   /* Linux: init_port_console */
	char in[256] = "";
	CHECK_EQ(recv_input(&t, 0, in, 5), 5);
	CHECK(!memcmp(in, "hello", 5));
	CHECK(virtio_console_guest_open(t.con, 0));
	for (int i = 0; i < 3000 && !atomic_load(&t.hp[0].open); i++)
		vg_sleep_us(1000);
	CHECK_EQ(atomic_load(&t.hp[0].open), 1);

	/* Output on both ports. */
	guest_write(&t, Q_TX0, "console says hi\n");
	CHECK(host_saw(&t.hp[0], "console says hi\n"));
	guest_write(&t, Q_TX1, "{\"agent\":1}");
	CHECK(host_saw(&t.hp[1], "{\"agent\":1}"));
	CHECK(!strstr(t.hp[0].out, "agent"));

	/* Port 1: held until open, then split over 64-byte buffers. */
	char big[200];
	for (int i = 0; i < 200; i++)
		big[i] = (char)('a' + i % 26);
	CHECK_EQ(virtio_console_input(t.con, 1, big, 200), 200);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_RX1), 0);
	CHECK_EQ(atomic_load(&t.hp[1].open_calls), 0);
	send_ctrl(&t, 1, EV_PORT_OPEN, 1);
	CHECK_EQ(recv_input(&t, 1, in, 200), 200);
	CHECK(!memcmp(in, big, 200));
	for (int i = 0; i < 3000 && !atomic_load(&t.hp[1].open); i++)
		vg_sleep_us(1000);
	CHECK_EQ(atomic_load(&t.hp[1].open), 1);

	/* Backpressure: the host is told when there is room again. */
	static char flood[VIRTIO_CONSOLE_INBUF + 1000];
	memset(flood, 'x', sizeof(flood));
	/* Take the guest's buffers away first so nothing drains meanwhile. */
	send_ctrl(&t, 1, EV_PORT_OPEN, 0);
	for (int i = 0; i < 3000 && atomic_load(&t.hp[1].open); i++)
		vg_sleep_us(1000);
	CHECK_EQ(atomic_load(&t.hp[1].open), 0);
	CHECK_EQ(virtio_console_input(t.con, 1, flood, sizeof(flood)), VIRTIO_CONSOLE_INBUF);
	CHECK_EQ(virtio_console_input(t.con, 1, flood, 10), 0);
	CHECK_EQ(virtio_console_input(t.con, 7, flood, 10), 0);   /* no such port */
	CHECK_EQ(atomic_load(&t.hp[1].rx_space), 0);
	send_ctrl(&t, 1, EV_PORT_OPEN, 1);
	CHECK_EQ(recv_input(&t, 1, NULL, VIRTIO_CONSOLE_INBUF), VIRTIO_CONSOLE_INBUF);
	CHECK(atomic_load(&t.hp[1].rx_space) >= 1);

	/* Malformed control messages are ignored. */
	struct ctrl *m = vg_host(&t.g, t.scratch);
	*m = (struct ctrl){ 0, EV_PORT_READY, 1 };
	struct vg_seg s[1] = { { t.scratch, 4, false } };   /* short */
	vg_submit(&t.g, Q_CTX, s, 1, false);
	CHECK(vg_wait_used(&t.g, Q_CTX, NULL, NULL));
	send_ctrl(&t, 99, EV_PORT_READY, 1);
	send_ctrl(&t, 99, EV_PORT_OPEN, 1);
	send_ctrl(&t, 0, 1234, 1);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_CRX), t.g.q[Q_CRX].last_used);
	/* A flood of DEVICE_READY is bounded, not fatal. */
	for (int i = 0; i < 40; i++)
		send_ctrl(&t, 0xffffffff, EV_DEVICE_READY, 1);
	int n = 0;
	for (int idle = 0; idle < 200 && n < 1000; idle++) {
		if (vg_used_idx(&t.g, Q_CRX) == t.g.q[Q_CRX].last_used) {
			vg_sleep_us(1000);
			continue;
		}
		CHECK(recv_ctrl(&t, &c, NULL, 0));
		n++;
		idle = 0;
	}
	CHECK(n > 0 && n < 40 * 2);
	CHECK(!vg_needs_reset(&t.g));

	/* Reset closes the ports for the host. */
	int calls = atomic_load(&t.hp[0].open_calls);
	vg_w32(&t.g, VIRTIO_MMIO_STATUS, 0);
	for (int i = 0; i < 3000 && atomic_load(&t.hp[0].open); i++)
		vg_sleep_us(1000);
	CHECK_EQ(atomic_load(&t.hp[0].open), 0);
	CHECK_EQ(atomic_load(&t.hp[0].open_calls), calls + 1);
	CHECK(!virtio_console_guest_open(t.con, 0));
	cont_down(&t);
}

/* A device with named ports only (no_console, as for a VM whose console is
 * the UART): the driver is told of port 1 alone, so no hvc0; messages about
 * port 0 change nothing. */
static void test_no_console(void)
{
	struct cont t;
	struct virtio_console_port_config ports[2] = {
		{ .no_console = true },
		{ .name = "org.qemu.guest_agent.0", .output = host_output, .rx_space = host_rx_space,
		  .guest_open = host_guest_open, .ctx = &t.hp[1] },
	};
	cont_up_ports(&t, true, 64, ports);
	send_ctrl(&t, 0xffffffff, EV_DEVICE_READY, 1);
	CHECK(expect_ctrl(&t, 1, EV_PORT_ADD, 1));
	/* a driver that readies and opens port 0 anyway gets no answer */
	send_ctrl(&t, 0, EV_PORT_READY, 1);
	send_ctrl(&t, 0, EV_PORT_OPEN, 1);
	send_ctrl(&t, 1, EV_PORT_READY, 1);
	struct ctrl c;
	char name[64] = "";
	CHECK(recv_ctrl(&t, &c, name, sizeof(name)));
	CHECK_EQ(c.id, 1);
	CHECK_EQ(c.event, EV_PORT_NAME);
	CHECK(!strcmp(name, "org.qemu.guest_agent.0"));
	CHECK(expect_ctrl(&t, 1, EV_PORT_OPEN, 1));
	CHECK(!virtio_console_guest_open(t.con, 0));
	send_ctrl(&t, 1, EV_PORT_OPEN, 1);
	CHECK(virtio_console_guest_open(t.con, 1));
	CHECK_EQ(virtio_console_input(t.con, 1, "{}", 2), 2);
	char in[8] = "";
	CHECK_EQ(recv_input(&t, 1, in, 2), 2);
	CHECK(!memcmp(in, "{}", 2));
	cont_down(&t);
}

/* A driver without MULTIPORT: port 0 is a plain console on queues 0/1. */
static void test_single_port(void)
{
	struct cont t;
	cont_up(&t, false, 16);
	guest_write(&t, Q_TX0, "early boot\n");
	CHECK(host_saw(&t.hp[0], "early boot\n"));
	CHECK(virtio_console_guest_open(t.con, 0));
	CHECK_EQ(virtio_console_input(t.con, 0, "ls -l /\n", 8), 8);
	char in[32] = "";
	CHECK_EQ(recv_input(&t, 0, in, 8), 8);
	CHECK(!memcmp(in, "ls -l /\n", 8));
	/* Input for port 1 is never delivered (the port does not exist for
	 * this driver). */
	CHECK_EQ(virtio_console_input(t.con, 1, "zz", 2), 2);
	vg_settle(&t.g);
	CHECK(!vg_needs_reset(&t.g));
	cont_down(&t);
}

/* Output waits in the transmitq while the host says output_busy, and flows
 * again after virtio_console_output_ready(); other ports are not held up. */
static void test_output_busy(void)
{
	struct cont t;
	cont_up(&t, true, 64);
	uint64_t b = t.scratch + 1024;
	memcpy(vg_host(&t.g, b), "first;second;third;", 19);
	struct vg_seg s1[1] = { { b, 6, false } }, s2[1] = { { b + 6, 7, false } },
		      s3[1] = { { b + 13, 6, false } };

	/* Busy from the start: nothing is taken. */
	atomic_store(&t.hp[1].busy, 1);
	vg_submit(&t.g, Q_TX1, s1, 1, false);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_TX1), 0);
	CHECK_EQ(t.hp[1].nout, 0);
	guest_write(&t, Q_TX0, "port 0 goes on\n");
	CHECK(host_saw(&t.hp[0], "port 0 goes on\n"));
	atomic_store(&t.hp[1].busy, 0);
	virtio_console_output_ready(t.con, 1);
	CHECK(vg_wait_used(&t.g, Q_TX1, NULL, NULL));
	CHECK(host_saw(&t.hp[1], "first;"));

	/* Turning busy after one write: the next stays queued. */
	atomic_store(&t.hp[1].busy_on_output, 1);
	vg_submit(&t.g, Q_TX1, s2, 1, false);
	vg_submit(&t.g, Q_TX1, s3, 1, false);
	CHECK(vg_wait_used(&t.g, Q_TX1, NULL, NULL));
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_TX1), 2);
	CHECK(host_saw(&t.hp[1], "first;second;"));
	CHECK(!strstr(t.hp[1].out, "third"));
	atomic_store(&t.hp[1].busy_on_output, 0);
	atomic_store(&t.hp[1].busy, 0);
	virtio_console_output_ready(t.con, 1);
	CHECK(vg_wait_used(&t.g, Q_TX1, NULL, NULL));
	CHECK(host_saw(&t.hp[1], "first;second;third;"));
	virtio_console_output_ready(t.con, 9);   /* no such port: ignored */
	CHECK(!vg_needs_reset(&t.g));
	cont_down(&t);
}

/* ---- port sockets ---- */

static int sock_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read up to n bytes, stopping at end of file or after ~3 s without data. */
static size_t sock_read(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 3000) <= 0)
			break;
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

struct sender {
	int fd;
	const uint8_t *data;
	size_t n;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	for (size_t done = 0; done < s->n;) {
		ssize_t w = write(s->fd, s->data + done, s->n - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return NULL;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed) ^ (i >> 9));
}

static void test_port_socks(void)
{
	char dir[] = "/tmp/skiff-port-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[64];
	snprintf(path, sizeof(path), "%s/p.sock", dir);
	struct vm_console_port vp = { .name = "org.skiff.test", .uds_path = path };
	struct virtio_console_port_config pcs[2] = { { 0 } };
	char err[256] = "";

	/* A file that is not a socket is refused and kept. */
	FILE *f = fopen(path, "w");
	fputs("keep\n", f);
	fclose(f);
	CHECK(port_socks_create(&vp, 1, pcs + 1, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "org.skiff.test") && strstr(err, "not a socket"));
	CHECK(unlink(path) == 0);
	/* A stale socket is replaced. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	CHECK(bind(stale, (struct sockaddr *)&a, sizeof(a)) == 0);
	close(stale);
	struct port_socks *ps = port_socks_create(&vp, 1, pcs + 1, err, sizeof(err));
	CHECK(ps != NULL);
	if (!ps)
		return;
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	CHECK(!strcmp(pcs[1].name, "org.skiff.test"));
	/* One that a program listens on is refused. */
	struct virtio_console_port_config other;
	CHECK(port_socks_create(&vp, 1, &other, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "listening") != NULL);

	struct cont t;
	struct hostport unused = { 0 };
	pthread_mutex_init(&unused.lock, NULL);
	pcs[0] = (struct virtio_console_port_config){ .output = host_output, .ctx = &unused };
	cont_up_ports(&t, true, 4096, pcs);
	CHECK(port_socks_start(ps, t.con, 1, NULL, err, sizeof(err)) == 0);
	send_ctrl(&t, 1, EV_PORT_OPEN, 1);

	/* No client: output is dropped and the guest goes on. */
	guest_write(&t, Q_TX1, "nobody hears this");
	int c1 = sock_connect(path);
	CHECK(c1 >= 0);
	/* Client input reaches the guest (so it was accepted), output the client. */
	CHECK_EQ(write(c1, "hello", 5), 5);
	char small[64] = "";
	CHECK_EQ(recv_input(&t, 1, small, 5), 5);
	CHECK(!memcmp(small, "hello", 5));
	guest_write(&t, Q_TX1, "from the guest");
	memset(small, 0, sizeof(small));
	CHECK_EQ(sock_read(c1, small, 14), 14);
	CHECK(!strcmp(small, "from the guest"));

	/* 1 MiB of output while the client does not read: skiff buffers some,
	 * then leaves the rest in the queue; once the client reads, all of it
	 * arrives in order. */
	enum { CHUNK = 16384, NCHUNK = 64 };
	static uint8_t want[CHUNK * NCHUNK], got[CHUNK * NCHUNK];
	uint64_t big = vg_alloc(&t.g, sizeof(want), 16);
	fill(want, sizeof(want), 1);
	memcpy(vg_host(&t.g, big), want, sizeof(want));
	for (unsigned k = 0; k < NCHUNK; k++) {
		struct vg_seg seg[1] = { { big + (uint64_t)k * CHUNK, CHUNK, false } };
		vg_submit(&t.g, Q_TX1, seg, 1, false);
	}
	for (int i = 0; i < 3000 && vg_used_idx(&t.g, Q_TX1) == t.g.q[Q_TX1].last_used; i++)
		vg_sleep_us(1000);
	vg_settle(&t.g);
	uint16_t taken = (uint16_t)(vg_used_idx(&t.g, Q_TX1) - t.g.q[Q_TX1].last_used);
	CHECK(taken > 0 && taken < NCHUNK);
	CHECK_EQ(sock_read(c1, got, sizeof(got)), sizeof(got));
	CHECK(!memcmp(got, want, sizeof(want)));
	for (unsigned k = 0; k < NCHUNK; k++)
		CHECK(vg_wait_used(&t.g, Q_TX1, NULL, NULL));

	/* 256 KiB of input while the guest has the port closed: the port
	 * buffers 64 KiB, the rest waits in the socket; nothing is lost. */
	send_ctrl(&t, 1, EV_PORT_OPEN, 0);
	static uint8_t in_want[256 * 1024], in_got[256 * 1024];
	fill(in_want, sizeof(in_want), 7);
	struct sender sd = { c1, in_want, sizeof(in_want) };
	pthread_t th;
	CHECK(pthread_create(&th, NULL, send_all, &sd) == 0);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_RX1), t.g.q[Q_RX1].last_used);
	send_ctrl(&t, 1, EV_PORT_OPEN, 1);
	CHECK_EQ(recv_input(&t, 1, (char *)in_got, sizeof(in_got)), sizeof(in_got));
	CHECK(!memcmp(in_got, in_want, sizeof(in_want)));
	pthread_join(th, NULL);

	/* A new client takes over: the old one reads end of file. */
	int c2 = sock_connect(path);
	CHECK(c2 >= 0);
	CHECK_EQ(sock_read(c1, small, 1), 0);
	close(c1);
	guest_write(&t, Q_TX1, "to the new one");
	memset(small, 0, sizeof(small));
	CHECK_EQ(sock_read(c2, small, 14), 14);
	CHECK(!strcmp(small, "to the new one"));
	/* A client that stops sending still gets output. */
	shutdown(c2, SHUT_WR);
	vg_settle(&t.g);
	guest_write(&t, Q_TX1, "still here");
	memset(small, 0, sizeof(small));
	CHECK_EQ(sock_read(c2, small, 10), 10);
	CHECK(!strcmp(small, "still here"));
	close(c2);
	CHECK(!vg_needs_reset(&t.g));

	/* devices.c's order; the socket file goes with the sockets. */
	port_socks_stop(ps);
	cont_down(&t);
	port_socks_destroy(ps);
	pthread_mutex_destroy(&unused.lock);
	CHECK(stat(path, &st) != 0);
	rmdir(dir);
}

/* A client whose connect() returned gets what the guest writes after it,
 * however late the serving thread accepts it: the write waits in the queue
 * meanwhile (here the thread is not started until the check; devices.c
 * starts it after the console, and on a busy host it may not have run yet
 * when the guest writes). Without a waiting client, output is dropped. */
static void test_port_sock_waiting_client(void)
{
	char dir[] = "/tmp/skiff-port-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[64];
	snprintf(path, sizeof(path), "%s/w.sock", dir);
	struct vm_console_port vp = { .name = "org.skiff.test", .uds_path = path };
	struct virtio_console_port_config pcs[2] = { { 0 } };
	char err[256] = "";
	struct port_socks *ps = port_socks_create(&vp, 1, pcs + 1, err, sizeof(err));
	CHECK(ps != NULL);
	if (!ps)
		return;
	struct cont t;
	struct hostport unused = { 0 };
	pthread_mutex_init(&unused.lock, NULL);
	pcs[0] = (struct virtio_console_port_config){ .output = host_output, .ctx = &unused };
	cont_up_ports(&t, true, 4096, pcs);
	send_ctrl(&t, 1, EV_PORT_OPEN, 1);

	guest_write(&t, Q_TX1, "nobody hears this");
	int c = sock_connect(path);
	CHECK(c >= 0);
	uint64_t b = t.scratch + 512;
	memcpy(vg_host(&t.g, b), "right after connect", 19);
	struct vg_seg seg[1] = { { b, 19, false } };
	vg_submit(&t.g, Q_TX1, seg, 1, false);
	vg_settle(&t.g);
	CHECK_EQ(vg_used_idx(&t.g, Q_TX1), t.g.q[Q_TX1].last_used);
	CHECK(port_socks_start(ps, t.con, 1, NULL, err, sizeof(err)) == 0);
	CHECK(vg_wait_used(&t.g, Q_TX1, NULL, NULL));
	char got[64] = "";
	CHECK_EQ(sock_read(c, got, 19), 19);
	CHECK(!strcmp(got, "right after connect"));
	close(c);

	port_socks_stop(ps);
	cont_down(&t);
	port_socks_destroy(ps);
	pthread_mutex_destroy(&unused.lock);
	rmdir(dir);
}

static void test_console_create(void)
{
	char err[200] = "";
	struct virtio_console_port_config p[3] = { { 0 }, { .name = "a" }, { .name = "a" } };
	CHECK(virtio_console_create(NULL, p, 0, err, sizeof(err)) == NULL);
	CHECK(virtio_console_create(NULL, p, 40, err, sizeof(err)) == NULL);
	CHECK(virtio_console_create(NULL, p, 3, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "two ports") != NULL);
	p[1].name = "";
	CHECK(virtio_console_create(NULL, p, 2, err, sizeof(err)) == NULL);
	p[1].name = NULL;
	CHECK(virtio_console_create(NULL, p, 2, err, sizeof(err)) == NULL);
	p[1].name = "b";
	struct virtio_console *c = virtio_console_create(NULL, p, 3, err, sizeof(err));
	CHECK(c != NULL);
	/* No output callback: output is dropped quietly. */
	virtio_console_destroy(c);
}

static void test_rng(void)
{
	struct vguest g;
	vg_init(&g);
	char err[200];
	struct virtio_rng *r = virtio_rng_create(&g.ram, err, sizeof(err));
	CHECK(r != NULL);
	if (!r)
		return;
	vg_attach(&g, virtio_rng_dev(r));
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	CHECK(vg_negotiate(&g, F_V1));
	vg_queue_setup(&g, 0, 64);
	vg_driver_ok(&g);

	uint64_t b = vg_alloc(&g, 256 * 1024, 16);
	uint8_t *p = vg_host(&g, b);
	memset(p, 0, 256);
	struct vg_seg s[3] = { { b + 200, 8, false }, { b, 64, true }, { b + 64, 64, true } };
	uint16_t head = vg_submit(&g, 0, s, 3, false);
	uint32_t id = 0, len = 0;
	CHECK(vg_wait_used(&g, 0, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 128);
	int zeros = 0;
	for (int i = 0; i < 128; i++)
		zeros += p[i] == 0;
	CHECK(zeros < 20);
	CHECK_EQ(p[128], 0);
	/* A huge buffer gets at most 64 KiB. */
	struct vg_seg h[1] = { { b, 200 * 1024, true } };
	vg_submit(&g, 0, h, 1, false);
	CHECK(vg_wait_used(&g, 0, NULL, &len));
	CHECK_EQ(len, 64 * 1024);
	/* Only readable: nothing written. */
	struct vg_seg ro[1] = { { b, 16, false } };
	vg_submit(&g, 0, ro, 1, false);
	CHECK(vg_wait_used(&g, 0, NULL, &len));
	CHECK_EQ(len, 0);
	CHECK(atomic_load(&g.irq_level));
	virtio_rng_destroy(r);
	vg_fini(&g);
}

int main(void)
{
	test_multiport();
	test_no_console();
	test_single_port();
	test_output_busy();
	test_port_socks();
	test_port_sock_waiting_client();
	test_console_create();
	test_rng();
	return vt_report();
}

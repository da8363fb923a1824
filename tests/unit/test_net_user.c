/*
 * Unit tests for the user network's state in snapshots
 * (src/backend/net/user.c, user_state.c): real libslirp backends, driven
 * by DHCP frames sent as the guest would send them.
 *
 * What the state carries and a test can see is the DHCP lease table: a
 * backend hands 10.0.2.15 to the first MAC that asks and 10.0.2.16 to the
 * next. So: MAC A gets .15 from backend 1; its state is saved and loaded
 * into backend 2, where MAC B must now get .16 (without the state it would
 * get .15) and A still .15. Loaded with apply=false (a clone with a new
 * MAC) the state is checked and dropped: B gets .15. Malformed states
 * (truncated, too new, holding guest-forward sockets, bytes libslirp did
 * not read, an overlong length) are refused with a message.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "backend/net/net.h"
#include "base/clock.h"
#include "base/snapfile.h"
#include "check.h"

static struct check_counts C;

/* What a backend answered: the last DHCP reply's address and its type. */
struct catcher {
	pthread_mutex_t lock;
	uint8_t mac[6];        /* the client the reply is for */
	uint32_t yiaddr;       /* host order; 0: none yet */
	int type;              /* DHCP message type */
};

static bool cb_rx(void *ctx, const uint8_t *frame, size_t len)
{
	struct catcher *c = ctx;
	const uint8_t *e = frame + NET_VNET_HDR_LEN;
	size_t n = len - NET_VNET_HDR_LEN;
	if (n < 14 + 20 + 8 + 240 || e[12] != 0x08 || e[13] != 0x00)
		return true;   /* not IPv4 (slirp's IPv6 router adverts) */
	const uint8_t *ip = e + 14;
	size_t ihl = (size_t)(ip[0] & 15) * 4;
	const uint8_t *udp = ip + ihl;
	if (ip[9] != 17 || 14 + ihl + 8 + 240 > n || udp[2] != 0 || udp[3] != 68)
		return true;
	const uint8_t *bp = udp + 8;
	const uint8_t *opt = bp + 240, *end = e + n;
	int type = 0;
	while (opt + 2 <= end && *opt != 255) {
		if (*opt == 0) {
			opt++;
			continue;
		}
		if (opt[0] == 53 && opt[1] >= 1 && opt + 3 <= end)
			type = opt[2];
		opt += 2 + opt[1];
	}
	pthread_mutex_lock(&c->lock);
	memcpy(c->mac, bp + 28, 6);
	c->yiaddr = (uint32_t)bp[16] << 24 | (uint32_t)bp[17] << 16 | (uint32_t)bp[18] << 8 | bp[19];
	c->type = type;
	pthread_mutex_unlock(&c->lock);
	return true;
}

static bool cb_can_rx(void *ctx) { (void)ctx; return true; }
static void cb_tx_ready(void *ctx) { (void)ctx; }

static struct net_backend *open_user(struct catcher *c, const char *name)
{
	pthread_mutex_init(&c->lock, NULL);
	c->yiaddr = 0;
	struct net_backend_cb cb = { .ctx = c, .rx = cb_rx, .can_rx = cb_can_rx,
				     .tx_ready = cb_tx_ready };
	struct net_user_opts o = { .name = name };
	char err[256];
	struct net_backend *b = net_user_create(&o, &cb, err, sizeof(err));
	CHECK(&C, b, "net_user_create: %s", err);
	return b;
}

static void close_user(struct net_backend *b, struct catcher *c)
{
	net_backend_destroy(b);
	pthread_mutex_destroy(&c->lock);
}

static uint16_t ip_checksum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A DHCPDISCOVER from `mac` (RFC 2131 over UDP 68 -> 67, broadcast),
 * with the virtio-net header in front; the UDP checksum is 0 (none). */
static size_t discover(uint8_t *f, const uint8_t mac[6], uint32_t xid)
{
	enum { BOOTP = 236 + 312, UDP = 8 + BOOTP, IP = 20 + UDP };
	memset(f, 0, NET_VNET_HDR_LEN + 14 + IP);
	uint8_t *e = f + NET_VNET_HDR_LEN;
	memset(e, 0xff, 6);
	memcpy(e + 6, mac, 6);
	e[12] = 0x08;
	uint8_t *ip = e + 14;
	ip[0] = 0x45;
	ip[2] = IP >> 8;
	ip[3] = IP & 0xff;
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	uint16_t cs = ip_checksum(ip, 20);
	ip[10] = (uint8_t)(cs >> 8);
	ip[11] = (uint8_t)cs;
	uint8_t *udp = ip + 20;
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = UDP >> 8;
	udp[5] = UDP & 0xff;
	uint8_t *bp = udp + 8;
	bp[0] = 1;   /* BOOTREQUEST */
	bp[1] = 1;   /* Ethernet */
	bp[2] = 6;
	memcpy(bp + 4, &xid, 4);
	memcpy(bp + 28, mac, 6);
	static const uint8_t opts[] = { 99, 130, 83, 99, 53, 1, 1, 255 };
	memcpy(bp + 236, opts, sizeof(opts));
	return NET_VNET_HDR_LEN + 14 + IP;
}

/* The address backend b offers `mac` (host order), or 0 after 10 s. */
static uint32_t offer_for(struct net_backend *b, struct catcher *c, const uint8_t mac[6])
{
	static uint32_t xid = 1;
	uint8_t f[1024];
	pthread_mutex_lock(&c->lock);
	c->yiaddr = 0;
	pthread_mutex_unlock(&c->lock);
	struct iovec iov = { f, discover(f, mac, xid++) };
	CHECK(&C, net_backend_send(b, &iov, 1) == 0, "send refused");
	uint64_t until = clock_monotonic_ns() + 10000000000ull;
	while (clock_monotonic_ns() < until) {
		pthread_mutex_lock(&c->lock);
		uint32_t a = c->yiaddr;
		bool ours = a && !memcmp(c->mac, mac, 6) && c->type == 2;   /* OFFER */
		pthread_mutex_unlock(&c->lock);
		if (ours)
			return a;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0xa };
static const uint8_t MAC_B[6] = { 0x02, 0, 0, 0, 0, 0xb };
#define ADDR(last) (0x0a000200u | (last))   /* 10.0.2.last */

#define TAG SNAP_TAG('T', 'E', 'S', 'T')

/* Load `payload` as a section into b; "" or the message. */
static const char *load_payload(struct net_backend *b, const uint8_t *payload, size_t len,
				bool apply, char *err, size_t errlen)
{
	struct snap_writer w;
	snap_writer_init(&w);
	snap_section_begin(&w, TAG, 0, 1);
	snap_put_bytes(&w, payload, len);
	CHECK(&C, !snap_writer_finish(&w), "snap_writer_finish");
	struct snap_file f;
	char why[256];
	err[0] = 0;
	if (snap_file_parse(&f, w.data, w.len, why, sizeof(why))) {
		snprintf(err, errlen, "parse: %s", why);
	} else {
		struct snap_reader r;
		snap_reader_init(&r, snap_file_find(&f, TAG, 0));
		net_backend_load(b, &r, apply);
		snap_reader_end(&r, err, errlen);
		snap_file_free(&f);
	}
	snap_writer_free(&w);
	return err;
}

int main(void)
{
	struct catcher c1, c2, c3;
	struct net_backend *b1 = open_user(&c1, "t1");
	if (!b1)
		return check_summary(&C);
	CHECK(&C, net_backend_has_state(b1), "the user backend saves no state");
	uint32_t a = offer_for(b1, &c1, MAC_A);
	CHECK(&C, a == ADDR(15), "first client offered %#x", a);

	/* Save b1's state; the payload is what a VHST section holds after
	 * virtio-net's kind byte. */
	struct snap_writer w;
	snap_writer_init(&w);
	char err[300];
	snap_section_begin(&w, TAG, 0, 1);
	CHECK(&C, !net_backend_save(b1, &w, err, sizeof(err)), "save: %s", err);
	CHECK(&C, !snap_writer_finish(&w), "finish");
	struct snap_file f;
	CHECK(&C, !snap_file_parse(&f, w.data, w.len, err, sizeof(err)), "parse: %s", err);
	struct snap_section *s = snap_file_find(&f, TAG, 0);
	uint8_t good[4096];
	size_t glen = s ? (size_t)s->len : 0;
	CHECK(&C, s && glen > 9 && glen < sizeof(good), "saved %zu bytes", glen);
	if (s && glen < sizeof(good))
		memcpy(good, s->payload, glen);
	snap_file_free(&f);
	snap_writer_free(&w);
	close_user(b1, &c1);

	/* Loaded: A's lease is held, B gets the next address. */
	struct net_backend *b2 = open_user(&c2, "t2");
	CHECK(&C, !*load_payload(b2, good, glen, true, err, sizeof(err)), "load: %s", err);
	a = offer_for(b2, &c2, MAC_B);
	CHECK(&C, a == ADDR(16), "after a load, a new client is offered %#x (not .16: the lease "
	      "table was not restored)", a);
	a = offer_for(b2, &c2, MAC_A);
	CHECK(&C, a == ADDR(15), "after a load, the first client is offered %#x", a);

	/* Checked and dropped: the table is empty, B gets .15. */
	struct net_backend *b3 = open_user(&c3, "t3");
	CHECK(&C, !*load_payload(b3, good, glen, false, err, sizeof(err)), "check: %s", err);
	a = offer_for(b3, &c3, MAC_B);
	CHECK(&C, a == ADDR(15), "a dropped state still gave %#x", a);

	/* Malformed states: each refused with its reason, whether applied
	 * or only checked. */
	uint8_t bad[4096 + 16];
	struct { const char *what, *expect; size_t len; bool apply_only; } cases[] = {
		{ "truncated", "left)", glen - 1, false },
		{ "too new", "this libslirp reads", glen, false },
		{ "guest-forward socket", "guest-forward", glen, false },
		/* Only libslirp knows where its stream ends. */
		{ "trailing bytes", "did not read", glen + 1, true },
		{ "overlong length", "bytes (1 to", glen, false },
		{ "empty", "too few", 3, false },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		for (int apply = 0; apply < 2; apply++) {
			memcpy(bad, good, glen);
			bad[glen] = 0;
			uint32_t v;
			switch (k) {
			case 1: v = 1000; memcpy(bad, &v, 4); break;
			case 2: bad[8] = 42; break;
			case 3: memcpy(&v, bad + 4, 4); v++; memcpy(bad + 4, &v, 4); break;
			case 4: v = 1u << 20; memcpy(bad + 4, &v, 4); break;
			}
			if (cases[k].apply_only && !apply)
				continue;
			load_payload(b2, bad, cases[k].len, apply, err, sizeof(err));
			CHECK(&C, strstr(err, cases[k].expect), "%s (apply %d): got \"%s\"",
			      cases[k].what, apply, err);
		}
	}
	/* After the refused loads b2 still works. */
	a = offer_for(b2, &c2, MAC_B);
	CHECK(&C, a == ADDR(16), "after refused loads: %#x", a);
	close_user(b2, &c2);
	close_user(b3, &c3);
	return check_summary(&C);
}

/*
 * ARP and a small TCP endpoint for the metadata service's address; see
 * net_mmds.h. Formats: Ethernet II; ARP (RFC 826); IPv4 (RFC 791) with
 * its header checksum; TCP (RFC 9293): the three-way handshake, data in
 * order, FIN from either side, RST; the checksum over the pseudo-header.
 */
#include "virtio/net_mmds.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ETH_HDR 14
#define ETH_IP 0x0800
#define ETH_ARP 0x0806
#define ARP_LEN 28
#define IP_HDR 20
#define TCP_HDR 20
#define PROTO_TCP 6
#define HTTP_PORT 80

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

#define MAX_CONNS 16
#define REQ_MAX 4096             /* as MMDS_MAX_REQUEST */
#define SEG_MAX 1400             /* payload per answer segment */
#define QUEUE_MAX 512            /* answer frames waiting for the guest */

/* The service's own MAC, as Firecracker's (locally administered). */
static const uint8_t mmds_mac[6] = { 0x06, 0x01, 0x23, 0x45, 0x67, 0x01 };

struct conn {
	bool used;
	uint8_t gmac[6], mymac[6];   /* the guest's, and the one it sends to */
	uint32_t gip;
	uint16_t gport;
	uint32_t rcv_nxt, snd_nxt;
	uint8_t req[REQ_MAX];
	size_t req_len;
	bool answered, fin_sent;
	uint64_t age;                /* for replacing the oldest */
};

struct frame {
	size_t len;
	uint8_t data[];
};

struct net_mmds {
	struct net_mmds_config cfg;
	struct conn conns[MAX_CONNS];
	uint64_t clock;
	uint16_t ip_id;
	pthread_mutex_t qlock;
	struct frame *q[QUEUE_MAX];
	unsigned qhead, qlen;
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)(v >> 16)); wr16(p + 2, (uint16_t)v); }

/* The Internet checksum's running sum (RFC 1071). */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (; n > 1; p += 2, n -= 2)
		s += rd16(p);
	if (n)
		s += (uint32_t)p[0] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

struct net_mmds *net_mmds_new(const struct net_mmds_config *c)
{
	struct net_mmds *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = *c;
	pthread_mutex_init(&m->qlock, NULL);
	return m;
}

void net_mmds_free(struct net_mmds *m)
{
	if (!m)
		return;
	while (m->qlen) {
		free(m->q[m->qhead]);
		m->qhead = (m->qhead + 1) % QUEUE_MAX;
		m->qlen--;
	}
	pthread_mutex_destroy(&m->qlock);
	free(m);
}

static void enqueue(struct net_mmds *m, const uint8_t *data, size_t len)
{
	struct frame *f = malloc(sizeof(*f) + len);
	if (!f)
		return;   /* lost, as on a wire: the guest asks again */
	f->len = len;
	memcpy(f->data, data, len);
	pthread_mutex_lock(&m->qlock);
	if (m->qlen == QUEUE_MAX) {
		free(f);
	} else {
		m->q[(m->qhead + m->qlen) % QUEUE_MAX] = f;
		m->qlen++;
	}
	pthread_mutex_unlock(&m->qlock);
}

size_t net_mmds_take(struct net_mmds *m, uint8_t *buf, size_t cap)
{
	pthread_mutex_lock(&m->qlock);
	size_t n = 0;
	if (m->qlen) {
		struct frame *f = m->q[m->qhead];
		m->qhead = (m->qhead + 1) % QUEUE_MAX;
		m->qlen--;
		n = f->len <= cap ? f->len : 0;
		if (n)
			memcpy(buf, f->data, n);
		free(f);
	}
	pthread_mutex_unlock(&m->qlock);
	return n;
}

/* ---- ARP ---- */

static void arp(struct net_mmds *m, const uint8_t *f, size_t len)
{
	const uint8_t *a = f + ETH_HDR;
	if (len < ETH_HDR + ARP_LEN || rd16(a) != 1 || rd16(a + 2) != ETH_IP || a[4] != 6 ||
	    a[5] != 4 || rd16(a + 6) != 1)
		return;
	uint8_t r[ETH_HDR + ARP_LEN];
	memcpy(r, a + 8, 6);                  /* to the asker */
	memcpy(r + 6, mmds_mac, 6);
	wr16(r + 12, ETH_ARP);
	uint8_t *b = r + ETH_HDR;
	wr16(b, 1);
	wr16(b + 2, ETH_IP);
	b[4] = 6;
	b[5] = 4;
	wr16(b + 6, 2);                       /* reply */
	memcpy(b + 8, mmds_mac, 6);
	wr32(b + 14, m->cfg.ipv4);
	memcpy(b + 18, a + 8, 10);            /* the asker's MAC and IP */
	enqueue(m, r, sizeof(r));
}

/* ---- TCP ---- */

static void send_seg(struct net_mmds *m, const uint8_t gmac[6], const uint8_t mymac[6],
		     uint32_t gip, uint16_t sport, uint16_t gport, uint32_t seq, uint32_t ack,
		     uint8_t flags, const uint8_t *data, size_t n)
{
	bool mss = flags & TH_SYN;
	size_t th = TCP_HDR + (mss ? 4 : 0);
	uint8_t f[ETH_HDR + IP_HDR + TCP_HDR + 4 + SEG_MAX];
	memcpy(f, gmac, 6);
	memcpy(f + 6, mymac, 6);
	wr16(f + 12, ETH_IP);
	uint8_t *ip = f + ETH_HDR, *tcp = ip + IP_HDR;
	memset(ip, 0, IP_HDR + th);
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(IP_HDR + th + n));
	wr16(ip + 4, m->ip_id++);
	wr16(ip + 6, 0x4000);                 /* don't fragment */
	ip[8] = 64;
	ip[9] = PROTO_TCP;
	wr32(ip + 12, m->cfg.ipv4);
	wr32(ip + 16, gip);
	wr16(ip + 10, fold(sum16(ip, IP_HDR, 0)));
	wr16(tcp, sport);
	wr16(tcp + 2, gport);
	wr32(tcp + 4, seq);
	wr32(tcp + 8, ack);
	tcp[12] = (uint8_t)((th / 4) << 4);
	tcp[13] = flags;
	wr16(tcp + 14, 65535);
	if (mss) {
		tcp[20] = 2;                  /* MSS */
		tcp[21] = 4;
		wr16(tcp + 22, SEG_MAX);
	}
	if (n)
		memcpy(tcp + th, data, n);
	uint32_t s = sum16(ip + 12, 8, 0) + PROTO_TCP + (uint32_t)(th + n);
	wr16(tcp + 16, fold(sum16(tcp, th + n, s)));
	enqueue(m, f, ETH_HDR + IP_HDR + th + n);
}

static void send_conn(struct net_mmds *m, struct conn *c, uint8_t flags, const uint8_t *data, size_t n)
{
	send_seg(m, c->gmac, c->mymac, c->gip, HTTP_PORT, c->gport, c->snd_nxt, c->rcv_nxt, flags,
		 data, n);
	c->snd_nxt += (uint32_t)n + ((flags & (TH_SYN | TH_FIN)) ? 1 : 0);
}

static struct conn *find(struct net_mmds *m, uint32_t gip, uint16_t gport)
{
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (m->conns[i].used && m->conns[i].gip == gip && m->conns[i].gport == gport)
			return &m->conns[i];
	return NULL;
}

/* Ask the service once the request may be whole; answer and close. */
static void serve(struct net_mmds *m, struct conn *c, bool eof)
{
	if (c->answered)
		return;
	uint8_t *resp = NULL;
	size_t n = 0;
	if (m->cfg.http(m->cfg.ctx, c->req, c->req_len, eof || c->req_len == REQ_MAX, &resp, &n) == 1)
		return;
	c->answered = true;
	for (size_t off = 0; off < n; off += SEG_MAX) {
		size_t k = n - off < SEG_MAX ? n - off : SEG_MAX;
		send_conn(m, c, TH_ACK | TH_PSH, resp + off, k);
	}
	free(resp);
	send_conn(m, c, TH_ACK | TH_FIN, NULL, 0);
	c->fin_sent = true;
}

static void tcp(struct net_mmds *m, const uint8_t *f, const uint8_t *ip, const uint8_t *t,
		size_t tlen, size_t plen)
{
	uint32_t gip = rd32(ip + 12), seq = rd32(t + 4), ack = rd32(t + 8);
	uint16_t gport = rd16(t), dport = rd16(t + 2);
	uint8_t flags = t[13];
	const uint8_t *payload = t + tlen;
	if (flags & TH_RST) {
		struct conn *c = find(m, gip, gport);
		if (c)
			c->used = false;
		return;
	}
	if (dport != HTTP_PORT) {
		/* Nothing listens there: refuse (RFC 9293 3.10.7.1). */
		send_seg(m, f + 6, f, gip, dport, gport, (flags & TH_ACK) ? ack : 0,
			 seq + (uint32_t)plen + ((flags & TH_SYN) ? 1 : 0), TH_RST | TH_ACK, NULL, 0);
		return;
	}
	struct conn *c = find(m, gip, gport);
	if ((flags & TH_SYN) && !(flags & TH_ACK)) {
		if (!c) {
			c = &m->conns[0];
			for (unsigned i = 0; i < MAX_CONNS; i++) {
				if (!m->conns[i].used) {
					c = &m->conns[i];
					break;
				}
				if (m->conns[i].age < c->age)
					c = &m->conns[i];
			}
		}
		memset(c, 0, sizeof(*c));
		c->used = true;
		memcpy(c->gmac, f + 6, 6);
		memcpy(c->mymac, f, 6);
		c->gip = gip;
		c->gport = gport;
		c->rcv_nxt = seq + 1;
		uint32_t isn = 0;
		if (getrandom(&isn, sizeof(isn), 0) != (ssize_t)sizeof(isn))
			isn = (uint32_t)m->clock * 2654435761u;
		c->snd_nxt = isn;
		c->age = ++m->clock;
		send_conn(m, c, TH_SYN | TH_ACK, NULL, 0);
		return;
	}
	if (!c) {
		if (flags & TH_ACK)
			send_seg(m, f + 6, f, gip, HTTP_PORT, gport, ack, 0, TH_RST, NULL, 0);
		return;
	}
	c->age = ++m->clock;
	if (plen || (flags & TH_FIN)) {
		if (seq != c->rcv_nxt) {
			send_conn(m, c, TH_ACK, NULL, 0);   /* tell it what we expect */
			return;
		}
		size_t room = REQ_MAX - c->req_len, take = plen < room ? plen : room;
		memcpy(c->req + c->req_len, payload, take);
		c->req_len += take;
		c->rcv_nxt += (uint32_t)plen;
		bool fin = flags & TH_FIN;
		if (fin)
			c->rcv_nxt++;
		if (!c->answered) {
			serve(m, c, fin);
			if (!c->answered || fin)
				send_conn(m, c, TH_ACK, NULL, 0);
		} else {
			send_conn(m, c, TH_ACK, NULL, 0);
		}
	}
	/* Our FIN acknowledged and theirs seen: the connection is over. */
	if (c->fin_sent && (flags & TH_ACK) && ack == c->snd_nxt && (flags & TH_FIN))
		c->used = false;
}

bool net_mmds_frame(struct net_mmds *m, const uint8_t *f, size_t len)
{
	if (len < ETH_HDR)
		return false;
	uint16_t type = rd16(f + 12);
	if (type == ETH_ARP) {
		if (len < ETH_HDR + ARP_LEN || rd32(f + ETH_HDR + 24) != m->cfg.ipv4)
			return false;
		arp(m, f, len);
		return true;
	}
	if (type != ETH_IP || len < ETH_HDR + IP_HDR)
		return false;
	const uint8_t *ip = f + ETH_HDR;
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4, tot = rd16(ip + 2), avail = len - ETH_HDR;
	if ((ip[0] >> 4) != 4 || ihl < IP_HDR || ihl > avail || rd32(ip + 16) != m->cfg.ipv4)
		return false;
	/* Everything for the address is ours from here on. A length of 0
	 * or past the frame (a segmentation offload frame) means the frame. */
	if (tot >= ihl && tot <= avail)
		avail = tot;
	if (ip[9] != PROTO_TCP || (rd16(ip + 6) & 0x3fff))
		return true;   /* not TCP, or a fragment: dropped */
	const uint8_t *t = ip + ihl;
	size_t rest = avail - ihl, tlen;
	if (rest < TCP_HDR || (tlen = (size_t)(t[12] >> 4) * 4) < TCP_HDR || tlen > rest)
		return true;
	tcp(m, f, ip, t, tlen, rest - tlen);
	return true;
}

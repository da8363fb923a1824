/*
 * The metadata service without a guest: the data store (put, RFC 7396
 * merge patch, the size limit), the guest's HTTP requests (V1 and V2, the
 * session token, IMDS text and JSON answers, bad requests), and the NIC
 * side (ARP, the TCP handshake, one request answered and closed, reply
 * checksums, frames for other addresses left alone).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/net_mmds.h"
#include "vmm/mmds.h"
#include "check.h"

static struct check_counts C;

/* Ask the service; the answer as a NUL-terminated string (caller frees). */
static char *ask(struct mmds *m, const char *req)
{
	uint8_t *resp = NULL;
	size_t n = 0;
	int r = mmds_http(m, (const uint8_t *)req, strlen(req), false, &resp, &n);
	if (r == 1)
		return strdup("INCOMPLETE");
	char *s = malloc(n + 1);
	memcpy(s, resp, n);
	s[n] = 0;
	free(resp);
	return s;
}

static const char *body(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");
	return b ? b + 4 : "";
}

static void test_store_and_http(void)
{
	struct mmds *m = mmds_new();
	char err[256];
	char *r = ask(m, "GET /latest HTTP/1.1\r\n\r\n");
	CHECK(&C, strstr(r, " 404 "), "nothing stored yet: %s", r);
	free(r);
	json_t *doc = json_loads("{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", \"n\": 5, "
				 "\"sub\": {\"k\": \"v\"}}}}", 0, NULL);
	CHECK(&C, mmds_put(m, doc, err, sizeof(err)) == 0, "put: %s", err);
	json_decref(doc);
	json_t *patch = json_loads("{\"latest\": {\"meta-data\": {\"n\": null, \"new\": \"x\"}}}", 0, NULL);
	CHECK(&C, mmds_patch(m, patch, err, sizeof(err)) == 0, "patch: %s", err);
	json_decref(patch);
	json_t *got = mmds_get(m);
	json_t *md = json_object_get(json_object_get(got, "latest"), "meta-data");
	CHECK(&C, !json_object_get(md, "n") && json_is_string(json_object_get(md, "new")) &&
		  json_is_string(json_object_get(md, "ami-id")), "merge patch: null removes, others merge");
	json_decref(got);
	json_t *big = json_object();
	char *s = malloc(MMDS_MAX_BYTES + 10);
	memset(s, 'a', MMDS_MAX_BYTES + 9);
	s[MMDS_MAX_BYTES + 9] = 0;
	json_object_set_new(big, "k", json_string(s));
	free(s);
	CHECK(&C, mmds_put(m, big, err, sizeof(err)) != 0 && strstr(err, "limit"), "size limit: %s", err);
	json_decref(big);

	/* V1: no token needed; IMDS text and JSON. */
	r = ask(m, "GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(&C, strstr(r, " 200 ") && !strcmp(body(r), "ami-id\nnew\nsub/"), "IMDS listing: %s", r);
	free(r);
	r = ask(m, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n");
	CHECK(&C, !strcmp(body(r), "ami-1"), "IMDS string: %s", r);
	free(r);
	r = ask(m, "GET /latest/meta-data/sub HTTP/1.1\r\nAccept: application/json\r\n\r\n");
	CHECK(&C, strstr(r, "application/json") && !strcmp(body(r), "{\"k\":\"v\"}"), "JSON: %s", r);
	free(r);
	r = ask(m, "GET /latest/nope HTTP/1.1\r\n\r\n");
	CHECK(&C, strstr(r, " 404 "), "missing path: %s", r);
	free(r);
	r = ask(m, "POST /latest HTTP/1.1\r\n\r\n");
	CHECK(&C, strstr(r, " 405 "), "other methods: %s", r);
	free(r);
	r = ask(m, "GET /latest HTTP/1.1\r\nAccept: text/plain\r\n");
	CHECK(&C, !strcmp(r, "INCOMPLETE"), "a request without its empty line waits: %s", r);
	free(r);
	r = ask(m, "garbage\r\n\r\n");
	CHECK(&C, strstr(r, " 400 "), "not HTTP: %s", r);
	free(r);

	/* V2: a token first. */
	mmds_configure(m, 2, false);
	r = ask(m, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n");
	CHECK(&C, strstr(r, " 401 "), "V2 without a token: %s", r);
	free(r);
	r = ask(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 0\r\n\r\n");
	CHECK(&C, strstr(r, " 400 "), "TTL 0: %s", r);
	free(r);
	r = ask(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n"
		   "X-Forwarded-For: 1.2.3.4\r\n\r\n");
	CHECK(&C, strstr(r, " 400 "), "through a proxy: %s", r);
	free(r);
	char *tok = ask(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
	CHECK(&C, strstr(tok, " 200 ") && strlen(body(tok)) > 20, "a token: %s", tok);
	char req[256];
	snprintf(req, sizeof(req), "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: %s\r\n\r\n",
		 body(tok));
	r = ask(m, req);
	CHECK(&C, strstr(r, " 200 ") && !strcmp(body(r), "ami-1"), "V2 with the token: %s", r);
	free(r);
	r = ask(m, "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: mmds-0000\r\n\r\n");
	CHECK(&C, strstr(r, " 401 "), "a wrong token: %s", r);
	free(r);
	free(tok);
	mmds_free(m);
}

/* ---- the NIC side ---- */

static const uint8_t guest_mac[6] = { 2, 0, 0, 0, 0, 1 }, gw_mac[6] = { 2, 0, 0, 0, 0, 2 };
#define MMDS_IP 0xa9fea9feu
#define GUEST_IP 0x0a00020fu

static uint16_t csum(const uint8_t *p, size_t n, uint32_t s)
{
	for (; n > 1; p += 2, n -= 2)
		s += (uint32_t)(p[0] << 8 | p[1]);
	if (n)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* An Ethernet/IPv4/TCP frame from the guest to the MMDS. */
static size_t tcp_frame(uint8_t *f, uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
	size_t n = data ? strlen(data) : 0;
	memcpy(f, gw_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14, *t = ip + 20;
	memset(ip, 0, 40);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((40 + n) >> 8);
	ip[3] = (uint8_t)(40 + n);
	ip[8] = 64;
	ip[9] = 6;
	uint32_t s = htonl(GUEST_IP), d = htonl(MMDS_IP);
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	t[0] = 0xc3;
	t[1] = 0x50;               /* port 50000 */
	t[3] = 80;
	uint32_t sq = htonl(seq), ak = htonl(ack);
	memcpy(t + 4, &sq, 4);
	memcpy(t + 8, &ak, 4);
	t[12] = 5 << 4;
	t[13] = flags;
	t[14] = 0xff;
	t[15] = 0xff;
	if (n)
		memcpy(t + 20, data, n); /* data may be NULL for a bare SYN/ACK */
	return 14 + 40 + n;
}

struct seg {
	uint32_t seq, ack;
	uint8_t flags;
	size_t len;
	char data[2048];
	bool csum_ok;
};

static bool take_seg(struct net_mmds *m, struct seg *s)
{
	uint8_t f[4096];
	size_t n = net_mmds_take(m, f, sizeof(f));
	if (!n)
		return false;
	uint8_t *ip = f + 14, *t = ip + 20;
	size_t tl = (size_t)(t[12] >> 4) * 4, iplen = (size_t)(ip[2] << 8 | ip[3]);
	s->seq = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
	s->ack = (uint32_t)t[8] << 24 | (uint32_t)t[9] << 16 | (uint32_t)t[10] << 8 | t[11];
	s->flags = t[13];
	s->len = iplen - 20 - tl;
	memcpy(s->data, t + tl, s->len < sizeof(s->data) ? s->len : sizeof(s->data) - 1);
	s->data[s->len < sizeof(s->data) ? s->len : sizeof(s->data) - 1] = 0;
	uint32_t ps = 0;
	for (int i = 12; i < 20; i += 2)
		ps += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	ps += 6 + (uint32_t)(iplen - 20);
	s->csum_ok = csum(ip, 20, 0) == 0 && csum(t, iplen - 20, ps) == 0 &&
		     !memcmp(f, guest_mac, 6) && !memcmp(f + 6, gw_mac, 6);
	return true;
}

static int answer(void *ctx, const uint8_t *req, size_t len, bool eof, uint8_t **resp, size_t *n)
{
	return mmds_http(ctx, req, len, eof, resp, n);
}

static void test_nic(void)
{
	struct mmds *svc = mmds_new();
	json_t *doc = json_loads("{\"hostname\": \"clone-7\"}", 0, NULL);
	char err[128];
	mmds_put(svc, doc, err, sizeof(err));
	json_decref(doc);
	struct net_mmds_config c = { .ipv4 = MMDS_IP, .http = answer, .ctx = svc };
	struct net_mmds *m = net_mmds_new(&c);
	uint8_t f[2048];

	/* ARP who-has 169.254.169.254. */
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	uint8_t arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	memcpy(arp + 8, guest_mac, 6);
	uint32_t gip = htonl(GUEST_IP), mip = htonl(MMDS_IP);
	memcpy(arp + 14, &gip, 4);
	memcpy(arp + 24, &mip, 4);
	memcpy(f + 14, arp, 28);
	CHECK(&C, net_mmds_frame(m, f, 42), "ARP for the address is taken");
	uint8_t r[128];
	size_t n = net_mmds_take(m, r, sizeof(r));
	CHECK(&C, n == 42 && r[21] == 2 && !memcmp(r, guest_mac, 6) && !memcmp(r + 28, &mip, 4) &&
		  r[22] == 0x06 && r[23] == 0x01, "ARP reply from the service's MAC");
	mip = htonl(0x0a000202);
	memcpy(f + 14 + 24, &mip, 4);
	CHECK(&C, !net_mmds_frame(m, f, 42), "ARP for another address goes on");

	/* Handshake, request, answer, close. */
	struct seg s;
	CHECK(&C, net_mmds_frame(m, f, tcp_frame(f, 1000, 0, 0x02, NULL)), "SYN taken");
	CHECK(&C, take_seg(m, &s) && s.flags == 0x12 && s.ack == 1001 && s.csum_ok, "SYN-ACK");
	uint32_t isn = s.seq;
	net_mmds_frame(m, f, tcp_frame(f, 1001, isn + 1, 0x10, NULL));
	CHECK(&C, !take_seg(m, &s), "a bare ACK gets nothing back");
	const char *req = "GET /hostname HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";
	net_mmds_frame(m, f, tcp_frame(f, 1001, isn + 1, 0x18, req));
	CHECK(&C, take_seg(m, &s) && (s.flags & 0x08) && s.seq == isn + 1 && s.csum_ok &&
		  strstr(s.data, "200 OK") && strstr(s.data, "clone-7") &&
		  s.ack == 1001 + strlen(req), "the answer: %s", s.data);
	uint32_t after = s.seq + (uint32_t)s.len;
	CHECK(&C, take_seg(m, &s) && (s.flags & 0x01) && s.seq == after, "then FIN");
	net_mmds_frame(m, f, tcp_frame(f, 1001 + (uint32_t)strlen(req), after + 1, 0x11, NULL));
	CHECK(&C, take_seg(m, &s) && s.flags == 0x10 && s.ack == 1001 + strlen(req) + 1, "our ACK of its FIN");

	/* Out of order data is answered with what is expected. */
	net_mmds_frame(m, f, tcp_frame(f, 5000, 0, 0x02, NULL));
	take_seg(m, &s);
	isn = s.seq;
	net_mmds_frame(m, f, tcp_frame(f, 5009, isn + 1, 0x18, "later"));
	CHECK(&C, take_seg(m, &s) && s.flags == 0x10 && s.ack == 5001, "a gap: ACK of 5001");
	/* Not TCP port 80: refused. Other addresses: not taken. */
	size_t len = tcp_frame(f, 7000, 0, 0x02, NULL);
	f[14 + 20 + 3] = 81;
	CHECK(&C, net_mmds_frame(m, f, len) && take_seg(m, &s) && (s.flags & 0x04), "port 81: RST");
	len = tcp_frame(f, 7000, 0, 0x02, NULL);
	f[14 + 19] = 3;
	CHECK(&C, !net_mmds_frame(m, f, len), "another address goes on to the backend");
	CHECK(&C, !net_mmds_frame(m, f, 20) && net_mmds_frame(m, f, tcp_frame(f, 1, 0, 0x02, NULL) - 50) == false,
	      "short frames are not taken");
	net_mmds_free(m);
	mmds_free(svc);
}

int main(void)
{
	test_store_and_http();
	test_nic();
	return check_summary(&C);
}

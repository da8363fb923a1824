/*
 * Software checksum and TCP segmentation offload for backends that take
 * plain, complete Ethernet frames (the libslirp backend): a frame whose
 * virtio-net header asks for a checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM,
 * virtio 1.2 section 5.1.6.2) gets it computed here, and a GSO frame
 * (gso_type TCPV4 or TCPV6) is cut into gso_size-byte TCP segments, each
 * with its own IPv4 total length / identification / header checksum or IPv6
 * payload length, TCP sequence number and TCP checksum (RFC 793 and RFC 8200
 * pseudo headers; FIN and PSH only on the last segment, CWR only on the
 * first, as a NIC doing TSO would).
 *
 * All lengths come from the guest: every header is checked against the
 * frame length before it is read, and a segment is built in the caller's
 * scratch buffer only if it fits.
 */
#include "backend/net/net.h"

#include <string.h>

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define IPPROTO_TCP_ 6

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* One's complement sum (RFC 1071) of big-endian 16-bit words, unfolded. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
	while (n >= 2) {
		sum += get16(p);
		p += 2;
		n -= 2;
	}
	if (n)
		sum += (uint64_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static int complete_csum(const struct net_vnet_hdr *h, uint8_t *frame, size_t len)
{
	size_t start = h->csum_start, off = h->csum_offset;
	if (start > len || off > len - start || len - start - off < 2)
		return -1;
	uint16_t c = (uint16_t)~csum_fold(csum_add(0, frame + start, len - start));
	if (c == 0 && off == 6)
		c = 0xffff;   /* UDP: 0 means "no checksum" (RFC 768) */
	put16(frame + start + off, c);
	return 0;
}

struct l34 {
	size_t l3;        /* offset of the IP header */
	size_t l4;        /* offset of the TCP header */
	size_t hdrs;      /* offset of the payload */
	bool v6;
};

static int parse_tcp(uint8_t *f, size_t len, bool want_v6, struct l34 *o)
{
	if (len < ETH_HLEN)
		return -1;
	size_t l3 = ETH_HLEN;
	uint16_t type = get16(f + 12);
	if (type == ETHERTYPE_VLAN) {
		if (len < ETH_HLEN + 4)
			return -1;
		type = get16(f + 16);
		l3 += 4;
	}
	size_t l4;
	if (type == ETHERTYPE_IPV4 && !want_v6) {
		if (len < l3 + 20 || (f[l3] >> 4) != 4)
			return -1;
		size_t ihl = (size_t)(f[l3] & 15) * 4;
		if (ihl < 20 || len < l3 + ihl || f[l3 + 9] != IPPROTO_TCP_)
			return -1;
		l4 = l3 + ihl;
	} else if (type == ETHERTYPE_IPV6 && want_v6) {
		if (len < l3 + 40 || (f[l3] >> 4) != 6 || f[l3 + 6] != IPPROTO_TCP_)
			return -1;   /* extension headers are not segmented */
		l4 = l3 + 40;
	} else {
		return -1;
	}
	if (len < l4 + 20)
		return -1;
	size_t thl = (size_t)(f[l4 + 12] >> 4) * 4;
	if (thl < 20 || len < l4 + thl)
		return -1;
	o->l3 = l3;
	o->l4 = l4;
	o->hdrs = l4 + thl;
	o->v6 = want_v6;
	return 0;
}

/* The TCP checksum of seg (whose IP header is complete). */
static void tcp_checksum(uint8_t *seg, const struct l34 *p, size_t seglen)
{
	size_t tcplen = seglen - p->l4;
	uint64_t sum = 0;
	if (p->v6)
		sum = csum_add(sum, seg + p->l3 + 8, 32);   /* source + destination */
	else
		sum = csum_add(sum, seg + p->l3 + 12, 8);
	sum += IPPROTO_TCP_;
	sum += (uint64_t)tcplen;
	put16(seg + p->l4 + 16, 0);
	sum = csum_add(sum, seg + p->l4, tcplen);
	put16(seg + p->l4 + 16, (uint16_t)~csum_fold(sum));
}

static int segment_tcp(const struct net_vnet_hdr *h, uint8_t *f, size_t len, bool v6,
		       uint8_t *scratch, size_t scratch_len, net_emit_fn *emit, void *ctx)
{
	struct l34 p;
	if (parse_tcp(f, len, v6, &p))
		return -1;
	size_t mss = h->gso_size;
	size_t payload = len - p.hdrs;
	/* A tiny MSS would turn one frame into tens of thousands. */
	if (mss < 64 || p.hdrs + mss > scratch_len)
		return -1;
	/* The largest segment's IPv4 total length or IPv6 payload length
	 * must fit its 16-bit field (a 65535-byte MSS behind 40 bytes of
	 * headers would not): refuse rather than send a wrapped length. */
	size_t biggest = p.hdrs + (payload < mss ? payload : mss);
	if (biggest - p.l3 - (v6 ? 40 : 0) > 0xffff)
		return -1;
	uint32_t seq = get32(f + p.l4 + 4);
	uint16_t ipid = v6 ? 0 : get16(f + p.l3 + 4);
	uint8_t flags = f[p.l4 + 13];
	size_t off = 0;
	unsigned i = 0;
	do {
		size_t n = payload - off < mss ? payload - off : mss;
		bool last = off + n == payload;
		memcpy(scratch, f, p.hdrs);
		memcpy(scratch + p.hdrs, f + p.hdrs + off, n);
		size_t seglen = p.hdrs + n;
		if (v6) {
			put16(scratch + p.l3 + 4, (uint16_t)(seglen - p.l3 - 40));
		} else {
			size_t ihl = p.l4 - p.l3;
			put16(scratch + p.l3 + 2, (uint16_t)(seglen - p.l3));
			put16(scratch + p.l3 + 4, (uint16_t)(ipid + i));
			put16(scratch + p.l3 + 10, 0);
			put16(scratch + p.l3 + 10, (uint16_t)~csum_fold(csum_add(0, scratch + p.l3, ihl)));
		}
		put32(scratch + p.l4 + 4, seq + (uint32_t)off);
		uint8_t fl = flags;
		if (!last)
			fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
		if (i > 0)
			fl &= (uint8_t)~TCP_CWR;
		scratch[p.l4 + 13] = fl;
		tcp_checksum(scratch, &p, seglen);
		emit(ctx, scratch, seglen);
		off += n;
		i++;
	} while (off < payload);
	return 0;
}

int net_offload_segment(const struct net_vnet_hdr *h, uint8_t *frame, size_t len,
			uint8_t *scratch, size_t scratch_len, net_emit_fn *emit, void *ctx)
{
	/* Callers bound frames already (virtio-net refuses longer chains);
	 * refusing here too keeps the contract in one place. */
	if (len > NET_MAX_FRAME)
		return -1;
	switch (h->gso_type & (uint8_t)~NET_HDR_GSO_ECN) {
	case NET_HDR_GSO_NONE:
		if ((h->flags & NET_HDR_F_NEEDS_CSUM) && complete_csum(h, frame, len))
			return -1;
		emit(ctx, frame, len);
		return 0;
	case NET_HDR_GSO_TCPV4:
		return segment_tcp(h, frame, len, false, scratch, scratch_len, emit, ctx);
	case NET_HDR_GSO_TCPV6:
		return segment_tcp(h, frame, len, true, scratch, scratch_len, emit, ctx);
	default:
		return -1;   /* UFO is not offered */
	}
}

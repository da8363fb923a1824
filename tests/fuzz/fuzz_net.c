/*
 * libFuzzer target for the software network offloads
 * (src/backend/net/offload.c): the virtio-net header a guest puts in front
 * of every frame it sends (virtio 1.2 5.1.6.2: NEEDS_CSUM with
 * csum_start/csum_offset, GSO TCPv4/TCPv6 with gso_size) and the Ethernet,
 * VLAN, IPv4/IPv6 and TCP headers the segmenter reads behind it. All of it
 * comes from the guest.
 *
 * Input: one byte choosing the scratch buffer's size, the 12-byte header,
 * then the frame. The frame and the scratch buffer are heap blocks of
 * exactly their size, so AddressSanitizer reports any access beyond them.
 * Every frame handed on must fit the scratch buffer; every TCP segment cut
 * from a GSO frame must carry a valid IPv4 header checksum and TCP
 * checksum (RFC 1071, RFC 793 / RFC 8200 pseudo headers), and together the
 * segments must carry exactly the frame's payload.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/net/net.h"

struct seen {
	size_t scratch_len;
	bool gso;
	size_t hdrs;          /* header bytes of the first segment */
	size_t payload;       /* payload bytes of all segments */
	unsigned frames;
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t n)
{
	for (; n >= 2; p += 2, n -= 2)
		sum += be16(p);
	if (n)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* A GSO segment: Ethernet (+VLAN), IPv4 or IPv6, TCP, as the segmenter
 * accepted the frame it came from. */
static void check_segment(struct seen *s, const uint8_t *f, size_t len)
{
	size_t l3 = be16(f + 12) == 0x8100 ? 18 : 14;
	bool v6 = (f[l3] >> 4) == 6;
	size_t l4 = v6 ? l3 + 40 : l3 + (size_t)(f[l3] & 15) * 4;
	if (len < l4 + 20)
		abort();
	size_t hdrs = l4 + (size_t)(f[l4 + 12] >> 4) * 4;
	if (len < hdrs || (s->frames && hdrs != s->hdrs))
		abort();
	s->hdrs = hdrs;
	s->payload += len - hdrs;
	uint32_t pseudo;
	if (v6) {
		if (be16(f + l3 + 4) != len - l3 - 40)
			abort();   /* payload length */
		pseudo = sum16(0, f + l3 + 8, 32);
	} else {
		if (be16(f + l3 + 2) != len - l3 || fold(sum16(0, f + l3, l4 - l3)) != 0xffff)
			abort();   /* total length, header checksum */
		pseudo = sum16(0, f + l3 + 12, 8);
	}
	pseudo += 6 + (uint32_t)(len - l4);
	if (fold(sum16(pseudo, f + l4, len - l4)) != 0xffff)
		abort();   /* TCP checksum */
}

static void emit(void *ctx, const uint8_t *frame, size_t len)
{
	struct seen *s = ctx;
	if (len > NET_MAX_FRAME || (s->gso && (len > s->scratch_len || len < 14 + 40)))
		abort();
	/* Touch every byte, as slirp_input() would. */
	uint8_t x = 0;
	for (size_t i = 0; i < len; i++)
		x ^= frame[i];
	(void)x;
	if (s->gso)
		check_segment(s, frame, len);
	s->frames++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 + NET_VNET_HDR_LEN)
		return 0;
	struct net_vnet_hdr h;
	memcpy(&h, data + 1, NET_VNET_HDR_LEN);
	/* Mostly the backend's real scratch size; sometimes a small one, so
	 * the "segment does not fit" paths run too. */
	size_t scratch_len = data[0] & 0x80 ? (size_t)data[0] * 8 : NET_MAX_FRAME;
	size_t len = size - 1 - NET_VNET_HDR_LEN;
	uint8_t *frame = malloc(len ? len : 1);
	uint8_t *scratch = malloc(scratch_len);
	if (!frame || !scratch)
		abort();   /* the harness itself, not guest input */
	memcpy(frame, data + 1 + NET_VNET_HDR_LEN, len);

	uint8_t type = h.gso_type & (uint8_t)~NET_HDR_GSO_ECN;
	struct seen s = {
		.scratch_len = scratch_len,
		.gso = type == NET_HDR_GSO_TCPV4 || type == NET_HDR_GSO_TCPV6,
	};
	size_t payload_in = 0;
	int r = net_offload_segment(&h, frame, len, scratch, scratch_len, emit, &s);
	if (r == 0 && s.gso) {
		payload_in = len - s.hdrs;
		if (!s.frames || s.payload != payload_in)
			abort();   /* lost or invented payload */
		/* At most one segment more than the MSS allows, never zero MSS. */
		if (h.gso_size == 0 || s.frames > payload_in / h.gso_size + 1)
			abort();
	}
	if (r == 0 && !s.gso && s.frames != 1)
		abort();
	if (r != 0 && !s.gso && s.frames)
		abort();   /* a refused plain frame is not sent */
	free(frame);
	free(scratch);
	return 0;
}

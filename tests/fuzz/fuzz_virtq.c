/*
 * libFuzzer target for the split virtqueue core (src/virtio/virtq.c): the
 * input chooses the queue size, the negotiated ring features, where the three
 * ring areas sit and the driver's ring indices, and supplies the contents of
 * guest RAM (descriptors, rings, indirect tables, all of it hostile). The
 * target then plays a device: pop, read and write every segment, slice,
 * push, notification decisions. Guest RAM is a plain heap allocation of
 * exactly its size, so AddressSanitizer reports any access outside it; the
 * queue must never touch anything else, whatever the input.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "base/gram.h"
#include "virtio/virtq.h"

#define RAM_BASE 0x10000ull   /* low, so small numbers in the input are RAM addresses */
#define RAM_SIZE (8u * 1024)

/* An address the fuzzer can aim: mostly inside RAM, sometimes just outside
 * or anywhere. */
static uint64_t pick_addr(struct cursor *c)
{
	uint8_t mode = (uint8_t)take(c, 1);
	uint64_t v = take(c, mode & 0x80 ? 8 : 2);
	if (mode & 0x80)
		return v;
	return RAM_BASE + (v % (RAM_SIZE + 64)) - (mode & 1 ? 32 : 0);
}

static void on_error(void *opaque, struct virtq *vq, const char *msg)
{
	(*(int *)opaque)++;
	(void)vq;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor c = { data, size };
	struct gram ram;
	memset(&ram, 0, sizeof(ram));
	ram.host = malloc(RAM_SIZE);
	ram.base = RAM_BASE;
	ram.size = RAM_SIZE;
	ram.npages = RAM_SIZE >> GRAM_PAGE_SHIFT;
	ram.code = calloc(ram.npages, sizeof(*ram.code));
	ram.gen = calloc(ram.npages, sizeof(*ram.gen));
	if (!ram.host || !ram.code || !ram.gen)
		abort();   /* the harness itself, not guest input */

	/* Queue state. */
	uint8_t shape = (uint8_t)take(&c, 1);
	uint16_t max_size = (uint16_t)(1u << (shape & 7));          /* 1..128 */
	uint64_t features = 0;
	if (shape & 0x08)
		features |= 1ull << VIRTIO_F_RING_INDIRECT_DESC;
	if (shape & 0x10)
		features |= 1ull << VIRTIO_F_RING_EVENT_IDX;
	int errors = 0;
	struct virtq vq;
	if (virtq_init(&vq, 0, max_size, on_error, &errors))
		abort();
	vq.size = (uint16_t)take(&c, 2);
	if (shape & 0x20)
		vq.size = max_size;                 /* usually a good size */
	vq.desc_gpa = pick_addr(&c);
	vq.avail_gpa = pick_addr(&c);
	vq.used_gpa = pick_addr(&c);
	uint16_t start_avail = (uint16_t)take(&c, 2);
	uint8_t code_pages = (uint8_t)take(&c, 1);

	/* The rest is guest RAM, repeated to fill it so that even a short
	 * input reaches the rings wherever they are. */
	memset(ram.host, 0, RAM_SIZE);
	for (size_t off = 0; c.n && off < RAM_SIZE; off += c.n) {
		size_t n = c.n < RAM_SIZE - off ? c.n : RAM_SIZE - off;
		memcpy(ram.host + off, c.p, n);
	}
	for (uint64_t p = 0; p < ram.npages; p++)
		ram.code[p] = (code_pages >> (p & 7)) & 1;

	char err[160];
	if (virtq_start(&vq, &ram, features, err, sizeof(err)) == 0) {
		/* Resume from an arbitrary point, as after many requests. */
		vq.last_avail = start_avail;
		vq.used_idx = (uint16_t)(start_avail - (shape >> 6));
		vq.signalled_used = vq.used_idx;
		struct virtq_req *req = malloc(sizeof(*req));
		uint8_t buf[512];
		if (!req)
			abort();
		for (int round = 0; round < 64; round++) {
			virtq_disable_notify(&vq);
			int r = virtq_pop(&vq, req);
			if (r <= 0) {
				if (r == 0 && virtq_enable_notify(&vq))
					continue;
				break;
			}
			/* Every segment is inside RAM and the totals add up. */
			uint64_t out = 0, in = 0;
			for (unsigned k = 0; k < req->nout + req->nin; k++) {
				const uint8_t *b = req->iov[k].iov_base;
				if (b < ram.host || b + req->iov[k].iov_len > ram.host + RAM_SIZE)
					abort();
				*(k < req->nout ? &out : &in) += req->iov[k].iov_len;
			}
			if (out != req->out_len || in != req->in_len || req->head >= vq.size)
				abort();
			/* Touch all of it, as a device would. */
			for (uint64_t off = 0; off < req->out_len && off < 4 * RAM_SIZE; off += sizeof(buf))
				virtq_req_read(req, off, buf, sizeof(buf));
			memset(buf, 0xa5, sizeof(buf));
			for (uint64_t off = 0; off < req->in_len && off < 4 * RAM_SIZE; off += sizeof(buf))
				virtq_req_write(req, off, buf, sizeof(buf));
			struct iovec sl[8];
			iov_slice(req->iov, req->nout, req->out_len / 3, req->out_len / 2, sl, 8);
			iov_slice(req->iov + req->nout, req->nin, 1, req->in_len, sl, 8);
			virtq_push(&vq, req, (uint32_t)(req->in_len + round - 8));
			if (round & 1)
				virtq_should_notify(&vq);
		}
		virtq_should_notify(&vq);
		virtq_has_avail(&vq);
		free(req);
	}
	if (vq.broken && errors != 1)
		abort();   /* the error hook runs exactly once */

	virtq_reset(&vq);
	virtq_destroy(&vq);
	free(ram.host);
	free((void *)ram.code);
	free((void *)ram.gen);
	return 0;
}

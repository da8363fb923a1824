/*
 * virtio-rng (virtio 1.2 section 5.4): fills each request's device-writable
 * part with getrandom() bytes and reports how many it wrote (5.4.6: the
 * device MAY return fewer bytes than the buffer holds). Any readable part is
 * ignored. Under a rate limit the I/O thread waits before filling a request
 * until the limiter lets its operation and bytes through.
 */
#include "virtio/rng.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

/* At most this much per request: a guest cannot make one request keep the
 * I/O thread busy for long. Linux asks for far less. */
#define RNG_MAX_PER_REQ (64u * 1024)
#define RNG_QUEUE_SIZE 64

struct virtio_rng {
	struct virtio_dev dev;   /* first: container_of is a cast */
	struct rate_limiter limit;
	_Atomic bool stopping;   /* lets a throttled request go */
};

static uint32_t rng_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	struct virtio_rng *r = (struct virtio_rng *)dev;
	(void)vq;
	uint64_t asked = 0;
	for (unsigned k = req->nout; k < req->nout + req->nin; k++)
		asked += req->iov[k].iov_len;
	rate_limiter_take(&r->limit, asked < RNG_MAX_PER_REQ ? asked : RNG_MAX_PER_REQ, &r->stopping);
	uint32_t done = 0;
	for (unsigned k = req->nout; k < req->nout + req->nin && done < RNG_MAX_PER_REQ; k++) {
		uint8_t *p = req->iov[k].iov_base;
		size_t want = req->iov[k].iov_len;
		if (want > RNG_MAX_PER_REQ - done)
			want = RNG_MAX_PER_REQ - done;
		size_t got = 0;
		while (got < want) {
			ssize_t n = getrandom(p + got, want - got, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return done + (uint32_t)got;
			}
			got += (size_t)n;
		}
		done += (uint32_t)got;
	}
	return done;
}

static void rng_process(struct virtio_dev *dev, struct virtq *vq)
{
	virtio_dev_serve(dev, vq, rng_request);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.queue_process = rng_process,
	/* No configuration space (5.4.4), no device-specific features. */
};

struct virtio_rng *virtio_rng_create(struct gram *ram, char *err, size_t errlen)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "virtio-rng: out of memory");
		return NULL;
	}
	rate_limiter_init(&r->limit);
	uint16_t qsize = RNG_QUEUE_SIZE;
	if (virtio_dev_init(&r->dev, &rng_ops, ram, 0, 1, &qsize, err, errlen)) {
		rate_limiter_destroy(&r->limit);
		free(r);
		return NULL;
	}
	if (virtio_dev_start(&r->dev, err, errlen)) {
		virtio_dev_fini(&r->dev);
		rate_limiter_destroy(&r->limit);
		free(r);
		return NULL;
	}
	return r;
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	if (!r)
		return;
	atomic_store(&r->stopping, true);
	virtio_dev_fini(&r->dev);
	rate_limiter_destroy(&r->limit);
	free(r);
}

struct rate_limiter *virtio_rng_limiter(struct virtio_rng *r)
{
	return &r->limit;
}

struct virtio_dev *virtio_rng_dev(struct virtio_rng *r)
{
	return &r->dev;
}

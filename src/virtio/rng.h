/*
 * virtio-rng (virtio 1.2 section 5.4): one request queue; every
 * device-writable buffer the guest offers is filled with bytes from the
 * host's getrandom(), at most as fast as its rate limiter lets (Firecracker's
 * entropy device: one operation and its bytes per request).
 */
#ifndef SKIFF_VIRTIO_RNG_H
#define SKIFF_VIRTIO_RNG_H

#include <stddef.h>

#include "base/gram.h"
#include "base/token_bucket.h"
#include "virtio/virtio.h"

struct virtio_rng;

/* Create the device and start its I/O thread. NULL with a message in err. */
struct virtio_rng *virtio_rng_create(struct gram *ram, char *err, size_t errlen);
/* Stop the I/O thread and free the device (after the vCPUs stopped). */
void virtio_rng_destroy(struct virtio_rng *r);
/* Its limits (unlimited until set; token_bucket_set may change them). */
struct rate_limiter *virtio_rng_limiter(struct virtio_rng *r);
/* The common device, for virtio_mmio_init(). */
struct virtio_dev *virtio_rng_dev(struct virtio_rng *r);

#endif

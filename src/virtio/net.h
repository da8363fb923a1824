/*
 * virtio-net (virtio 1.2 section 5.1): one receive and one transmit queue
 * in front of a host network backend (src/backend/net/net.h).
 */
#ifndef SKIFF_VIRTIO_NET_H
#define SKIFF_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "backend/net/net.h"
#include "base/gram.h"
#include "base/token_bucket.h"
#include "virtio/virtio.h"

struct virtio_net;

/* Opens the backend once the device can take its callbacks. NULL with a
 * message in err. */
typedef struct net_backend *net_backend_open_fn(void *arg, const struct net_backend_cb *cb,
						char *err, size_t errlen);

/* Create the device (`name` such as "net0" is for messages), open its
 * backend with open(open_arg, ...) and start the I/O thread. The device
 * owns the backend. NULL with a message in err. */
struct virtio_net *virtio_net_create(struct gram *ram, const char *name, const uint8_t mac[6],
				     net_backend_open_fn *open, void *open_arg,
				     char *err, size_t errlen);
/* Stop the backend and the I/O thread, free everything. */
void virtio_net_destroy(struct virtio_net *n);
struct virtio_dev *virtio_net_dev(struct virtio_net *n);

/* The rate limits towards the guest (rx, tx false) or from it (tx true):
 * unlimited at first; set them with token_bucket_set() at any time, then
 * call virtio_net_limits_changed() so that a queue waiting on the old
 * limits is looked at again under the new ones. */
struct rate_limiter *virtio_net_limiter(struct virtio_net *n, bool tx);
void virtio_net_limits_changed(struct virtio_net *n);

struct virtio_net_stats {
	uint64_t rx_frames, rx_dropped;   /* towards the guest */
	uint64_t tx_frames, tx_dropped;   /* from the guest */
	uint64_t rx_bytes, tx_bytes;      /* Ethernet frames delivered / sent */
	uint64_t rx_throttled, tx_throttled; /* times a frame had to wait for a bucket */
};
void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s);

/* Serve the metadata service's address on this NIC (net_mmds.h). Before the
 * guest runs; once. 0, or -1 when out of memory. */
struct net_mmds_config;
int virtio_net_set_mmds(struct virtio_net *n, const struct net_mmds_config *c);

/* A stable MAC for NIC `index` of VM `vm_name` (may be NULL): locally
 * administered unicast, 02:xx:xx:xx:xx:xx from a hash of both. */
void virtio_net_default_mac(const char *vm_name, unsigned index, uint8_t mac[6]);

#endif

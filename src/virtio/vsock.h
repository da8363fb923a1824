/*
 * virtio-vsock (virtio 1.2 section 5.10) with Firecracker's host-side
 * convention: the VMM listens on a Unix socket; a host program connects to
 * it and writes "CONNECT <port>\n" to reach guest port <port> (answered
 * "OK <hostport>\n" once the guest accepts), and a guest connection to host
 * port P is forwarded to the Unix socket "<uds_path>_P".
 */
#ifndef SKIFF_VIRTIO_VSOCK_H
#define SKIFF_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_VSOCK 19

struct virtio_vsock;

/* Create the device for guest CID guest_cid (3 .. 2^32-2), bind and listen
 * on uds_path (which must not exist yet) and start its thread. NULL with a
 * message in err. */
struct virtio_vsock *virtio_vsock_create(struct gram *ram, uint64_t guest_cid, const char *uds_path,
					 char *err, size_t errlen);
/* Close every connection, remove the listening socket, free the device. */
void virtio_vsock_destroy(struct virtio_vsock *v);
struct virtio_dev *virtio_vsock_dev(struct virtio_vsock *v);

struct virtio_vsock_stats {
	unsigned connections;           /* open now */
	uint64_t tx_bytes, rx_bytes;    /* payload to / from the guest */
	uint64_t resets_sent;
	uint64_t foreign_refused;       /* guest connections to another user's socket */
};
void virtio_vsock_get_stats(struct virtio_vsock *v, struct virtio_vsock_stats *s);

#endif

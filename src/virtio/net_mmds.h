/*
 * The NIC side of the metadata service (MMDS, see src/vmm/mmds.h): a
 * virtio-net device given an MMDS address looks at each frame the guest
 * sends before its backend does. ARP requests for the address are
 * answered with the service's MAC; IPv4 TCP to port 80 at the address is
 * served by a small TCP endpoint here (one HTTP request per connection,
 * answered, then closed) whose requests go to the service through a hook;
 * nothing for the address reaches the backend (so with user networking it
 * never becomes a host connection). Every other frame goes on as before.
 *
 * The endpoint relies on what a virtual link gives: frames are neither lost
 * nor reordered, so there are no retransmission timers; a segment out of
 * order is answered with the expected sequence number, and the guest
 * repeats it. Guest input is checked (lengths, header sizes, bounded
 * request bytes, a bounded number of connections); checksums on input are
 * not (the guest may leave them to offload), those of replies are complete.
 */
#ifndef SKIFF_VIRTIO_NET_MMDS_H
#define SKIFF_VIRTIO_NET_MMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The service's answer to one request: as mmds_http() (0 complete with
 * *resp malloc'd, 1 more bytes needed). */
typedef int net_mmds_http_fn(void *ctx, const uint8_t *req, size_t len, bool eof,
			     uint8_t **resp, size_t *resp_len);

struct net_mmds_config {
	uint32_t ipv4;               /* the address, host byte order */
	net_mmds_http_fn *http;
	void *ctx;
};

struct net_mmds;

struct net_mmds *net_mmds_new(const struct net_mmds_config *c);
void net_mmds_free(struct net_mmds *m);

/* One Ethernet frame from the guest (no virtio header), len bytes: true
 * when it was for the service (consumed; its answers are queued). Not
 * thread-safe: the device's transmit path calls it. */
bool net_mmds_frame(struct net_mmds *m, const uint8_t *frame, size_t len);
/* The next queued answer frame (Ethernet, no virtio header), copied into
 * buf; its length, or 0 when none is queued. Thread-safe against
 * net_mmds_frame. */
size_t net_mmds_take(struct net_mmds *m, uint8_t *buf, size_t cap);

#endif

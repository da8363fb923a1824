/*
 * virtio-9p: a host directory shared with the guest over the 9P2000.L
 * protocol (device id 9, "9P transport", in virtio 1.2 section 5's device
 * list; the device has no section of its own, its layout is Linux's
 * uapi/linux/virtio_9p.h). One request queue; each buffer carries one
 * T-message in its readable part and gets the R-message in its writable
 * part. The configuration space is the mount tag: le16 tag_len, then
 * tag_len bytes, offered with feature VIRTIO_9P_MOUNT_TAG (bit 0). The
 * guest mounts it with `mount -t 9p -o trans=virtio,version=9p2000.L TAG
 * DIR`.
 *
 * The protocol is served by 9p_server.c on the device's I/O thread, never
 * on a vCPU thread; the host side is backend/fs.
 */
#ifndef SKIFF_VIRTIO_9P_H
#define SKIFF_VIRTIO_9P_H

#include <stdbool.h>
#include <stddef.h>

#include "base/gram.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_9P 9
#define VIRTIO_9P_MOUNT_TAG 0           /* feature bit */
#define VIRTIO_9P_MAX_TAG 64            /* longest tag accepted */

struct virtio_9p;

/* Share host directory `path` under mount tag `tag` (1 to
 * VIRTIO_9P_MAX_TAG bytes, no NUL, no '/'), read-only if asked, without
 * FIFOs, sockets and symlinks made by the guest if nodev (fs.h), and start
 * the device's I/O thread. NULL with a message in err. */
struct virtio_9p *virtio_9p_create(struct gram *ram, const char *tag, const char *path,
				   bool read_only, bool nodev, char *err, size_t errlen);
/* Stop the I/O thread, drop every fid, free the device. */
void virtio_9p_destroy(struct virtio_9p *p);
/* The common device, for virtio_mmio_init(). */
struct virtio_dev *virtio_9p_dev(struct virtio_9p *p);

#endif

/*
 * virtio-blk (virtio 1.2 section 5.2) over a disk backend (backend/disk):
 * one request queue served by the device's I/O thread. Offers SEG_MAX,
 * SIZE_MAX, BLK_SIZE (512), FLUSH, GET_ID, and for writable disks DISCARD and
 * WRITE_ZEROES; read-only disks get VIRTIO_BLK_F_RO. The guest sees the disk
 * as /dev/vda (the first virtio-blk node) and can use it as its root
 * filesystem (root=/dev/vda).
 */
#ifndef SKIFF_VIRTIO_BLK_H
#define SKIFF_VIRTIO_BLK_H

#include <stddef.h>

#include "backend/disk/disk.h"
#include "base/token_bucket.h"
#include "base/gram.h"
#include "virtio/virtio.h"

/* Longest serial (VIRTIO_BLK_T_GET_ID answer, not NUL-terminated at 20). */
#define VIRTIO_BLK_ID_BYTES 20

struct virtio_blk;

/* Create the device over an open disk and start its I/O thread. The disk
 * stays the caller's: close it after virtio_blk_destroy(). `serial` may be
 * NULL (an all-zero id) and has at most VIRTIO_BLK_ID_BYTES bytes. Capacity
 * is disk_size() / 512 (a partial last sector is not visible). NULL with a
 * message in err. */
struct virtio_blk *virtio_blk_create(struct gram *ram, struct disk *disk,
				     const char *serial, char *err, size_t errlen);
void virtio_blk_destroy(struct virtio_blk *b);
struct virtio_dev *virtio_blk_dev(struct virtio_blk *b);
/* Serve the guest from `disk` from now on (a drive's backing file swapped
 * while the VM runs). The request being served finishes on the old disk
 * first (a throttled one is let through rather than waited for), and what
 * the guest wrote there is flushed; requests still in the queue go to the
 * new disk. The capacity becomes the new disk's and the driver gets a
 * configuration change notification. Both disks must agree on read-only
 * (the feature is negotiated once). The old disk is returned in *old for
 * the caller to close. 0, or -1 with a message (nothing changed). */
int virtio_blk_replace_disk(struct virtio_blk *b, struct disk *disk, struct disk **old,
			    char *err, size_t errlen);
/* The disk's rate limits (bytes and operations); unlimited at creation,
 * set with token_bucket_set() at any time. */
struct rate_limiter *virtio_blk_limiter(struct virtio_blk *b);

/* What the guest did with the disk (completed reads and writes), and how
 * often the rate limiter made it wait. Any thread. */
struct virtio_blk_stats {
	uint64_t read_bytes, write_bytes, read_count, write_count, flush_count;
	uint64_t throttled;
};
void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *s);

#endif

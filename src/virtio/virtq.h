/*
 * The split virtqueue (virtio 1.2 section 2.7), device side: one core shared
 * by every virtio device. virtq_pop() takes the next available descriptor
 * chain, walks it (direct and indirect descriptors), checks every index,
 * length and guest-physical range and hands the device a request whose
 * segments are host pointers into guest RAM: first the device-readable part,
 * then the device-writable part. virtq_push() returns a chain to the driver
 * through the used ring. Event-index notification suppression (2.7.7, 2.7.10)
 * lives here too.
 *
 * The rings are shared with vCPU threads running the guest driver, so the
 * ring indices are read with acquire and published with release ordering,
 * and every field is read exactly once into a local before it is checked.
 *
 * A ring the driver broke (an available index that jumps by more than the
 * queue size, a head or next index out of range, a chain that loops or is
 * too long, a bad or nested indirect table, a readable descriptor after a
 * writable one, a buffer outside guest RAM) puts the queue in the "broken"
 * state: virtq_pop() returns -1 from then on and the on_error hook is called
 * once (the device sets DEVICE_NEEDS_RESET, virtio 1.2 section 2.1.2). The
 * queue never touches memory outside guest RAM.
 *
 * Locking: a struct virtq is not thread-safe by itself. The owner (struct
 * virtio_dev) holds vq->lock around every call once the queue is visible to
 * the transport.
 */
#ifndef SKIFF_VIRTIO_VIRTQ_H
#define SKIFF_VIRTIO_VIRTQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/gram.h"

/* Largest queue a split ring can have (virtio 1.2 section 2.7). */
#define VIRTQ_MAX_SIZE 32768u
/* Most segments one request may carry, direct and indirect together. Equal
 * to the host's IOV_MAX so a request can go to preadv/pwritev in one call. */
#define VIRTQ_MAX_SEGS 1024u

/* Descriptor flags (2.7.5). */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
/* Available ring flags (2.7.6) and used ring flags (2.7.8). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

/* Ring feature bits the queue honours (virtio 1.2 section 6). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX     29

/* One descriptor as laid out in guest memory (little-endian). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* A popped descriptor chain. iov[0 .. nout) is what the driver wrote for the
 * device to read ("out"), iov[nout .. nout + nin) is what the device may
 * write ("in"). Zero-length descriptors are dropped. gpa[i] is the
 * guest-physical address of iov[i]. */
struct virtq_req {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len;   /* byte totals of each part */
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint64_t gpa[VIRTQ_MAX_SEGS];
};

struct virtq;
typedef void virtq_error_fn(void *opaque, struct virtq *vq, const char *msg);

struct virtq {
	unsigned index;            /* queue number within its device */
	pthread_mutex_t lock;      /* see "Locking" above */

	/* Configuration the driver programs while the queue is not ready. */
	uint16_t max_size;         /* what the device offers (power of two) */
	uint16_t size;             /* what the driver chose */
	uint64_t desc_gpa, avail_gpa, used_gpa;

	/* State while ready. */
	bool ready;
	bool broken;
	bool event_idx, indirect;  /* negotiated ring features */
	struct gram *ram;
	uint8_t *desc, *avail, *used;  /* host views of the three areas */
	uint16_t last_avail;       /* next available ring entry to take */
	uint16_t used_idx;         /* next used ring entry to fill */
	uint16_t signalled_used;   /* used_idx at the last notify decision */
	bool pushed;               /* something was pushed since then */

	/* Called once when the queue becomes broken. */
	virtq_error_fn *on_error;
	void *err_opaque;
	char error[160];
};

/* Set up an idle queue that offers up to max_size entries (a power of two,
 * at most VIRTQ_MAX_SIZE). 0, or -1 if the size is bad or the lock cannot be
 * created. */
int virtq_init(struct virtq *vq, unsigned index, uint16_t max_size,
	       virtq_error_fn *on_error, void *err_opaque);
void virtq_destroy(struct virtq *vq);

/* Make the queue live with the driver-programmed size and addresses
 * (QueueReady = 1). `features` are the negotiated feature bits. Checks the
 * size (power of two, 1..max_size), alignment (desc 16, avail 2, used 4) and
 * that all three areas lie in guest RAM. The ring indexes carry on from
 * where virtq_stop left them (virtq_reset zeroes them). 0, or -1 with a
 * message in err. */
int virtq_start(struct virtq *vq, struct gram *ram, uint64_t features,
		char *err, size_t errlen);
/* QueueReady = 0: stop using the rings; the programmed addresses stay. */
void virtq_stop(struct virtq *vq);
/* Device reset: not ready, not broken, size back to max, addresses 0. */
void virtq_reset(struct virtq *vq);

/* Take the next available chain. 1: a request is in *req; 0: nothing
 * available (or the queue is not ready); -1: the queue is broken. */
int virtq_pop(struct virtq *vq, struct virtq_req *req);

/* Return a request to the driver with `written` bytes written into its
 * device-writable part (clamped to in_len). Marks the whole writable part as
 * written for the engine's code cache (gram_written), then publishes the used
 * entry with release ordering. */
void virtq_push(struct virtq *vq, const struct virtq_req *req, uint32_t written);

/* After one or more pushes: does the driver want a used-buffer notification?
 * Honours VIRTQ_AVAIL_F_NO_INTERRUPT or, with EVENT_IDX, used_event
 * (virtio 1.2 sections 2.7.7.2 and 2.7.10). */
bool virtq_should_notify(struct virtq *vq);

/* Ask the driver not to notify us (used->flags NO_NOTIFY; nothing to do with
 * EVENT_IDX, where avail_event simply stays behind). */
void virtq_disable_notify(struct virtq *vq);
/* Ask for notifications again (clear NO_NOTIFY, or set avail_event to the
 * next entry we will take). Returns true if entries became available in the
 * meantime, so the caller must keep going instead of sleeping. */
bool virtq_enable_notify(struct virtq *vq);

/* Entries the driver has made available that we have not taken (0 if not
 * ready or broken; a corrupt index is reported by the next virtq_pop). */
bool virtq_has_avail(struct virtq *vq);

/* Copy helpers over a request. Offsets are within the readable part (read)
 * or the writable part (write). They return the number of bytes copied,
 * which is short when the part is shorter. */
size_t virtq_req_read(const struct virtq_req *req, uint64_t off, void *dst, size_t len);
size_t virtq_req_write(struct virtq_req *req, uint64_t off, const void *src, size_t len);

/* Describe bytes [off, off + len) of the segment list src[0..n) as a new
 * segment list in dst (at most maxdst entries). Returns the entry count, or
 * -1 if the range runs past the end of src or needs more than maxdst. */
int iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
	      struct iovec *dst, unsigned maxdst);

#endif

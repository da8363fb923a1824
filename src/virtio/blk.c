/*
 * virtio-blk device model (virtio 1.2 section 5.2). Each request is a 16-byte
 * header {type, reserved, sector} at the start of the device-readable part,
 * data, and a status byte at the very end of the device-writable part. The
 * device makes no assumption about how these are split into descriptors
 * (2.7.4, VIRTIO_F_ANY_LAYOUT is implied by VERSION_1).
 *
 * Checks before any I/O: the status byte exists (else the chain is returned
 * with nothing written), the header is complete, data lengths are whole
 * sectors, [sector, sector + n) lies within the capacity, the request is not
 * larger than the advertised limits, and writes/discards are refused on a
 * read-only disk (5.2.6.1: IOERR, no data written). Unknown request types and
 * flags get UNSUPP.
 */
#include "virtio/blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/snapfile.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_WZ_F_UNMAP 1

/* Configuration space offsets (5.2.4, struct virtio_blk_config). */
#define CFG_CAPACITY            0
#define CFG_SIZE_MAX            8
#define CFG_SEG_MAX             12
#define CFG_BLK_SIZE            20
#define CFG_NUM_QUEUES          34
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG     40
#define CFG_DISCARD_ALIGN       44
#define CFG_MAX_WZ_SECTORS      48
#define CFG_MAX_WZ_SEG          52
#define CFG_WZ_MAY_UNMAP        56
#define CFG_LEN                 60

#define SECTOR 512u
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2)        /* data segments per request */
#define BLK_SIZE_MAX (1u << 20)                 /* bytes per data segment */
#define BLK_MAX_DATA ((uint64_t)BLK_SEG_MAX * BLK_SIZE_MAX)
#define BLK_MAX_DISCARD_SECTORS (1u << 21)      /* 1 GiB per range */
#define BLK_MAX_DISCARD_SEG 32
#define BLK_DISCARD_ALIGN 8                     /* 4 KiB, in sectors */

struct virtio_blk {
	struct virtio_dev dev;   /* first: container_of is a cast */
	struct disk *disk;
	bool read_only;
	uint64_t capacity;       /* sectors */
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	uint8_t config[CFG_LEN];
	struct iovec data[VIRTQ_MAX_SEGS];   /* I/O thread scratch */
	struct rate_limiter limit;           /* bytes and operations */
	/* Lets a throttled request go: set for good by destroy, and while
	 * the disk is swapped (both come from the owner, one at a time). */
	_Atomic bool stopping;
	/* Completed requests, for the metrics (written by the I/O thread). */
	_Atomic uint64_t read_bytes, write_bytes, read_count, write_count, flush_count;
};

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_range {               /* discard / write zeroes segment */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t nsectors)
{
	return sector <= b->capacity && nsectors <= b->capacity - sector;
}

static uint8_t blk_rw(struct virtio_blk *b, struct virtq_req *req, const struct blk_hdr *h,
		      uint32_t *written)
{
	bool is_write = h->type == VIRTIO_BLK_T_OUT;
	/* IN: data is the writable part minus the status byte.
	 * OUT: data is the readable part after the header. */
	uint64_t len = is_write ? req->out_len - sizeof(*h) : req->in_len - 1;
	if (is_write && b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len % SECTOR || len > BLK_MAX_DATA || !range_ok(b, h->sector, len / SECTOR))
		return VIRTIO_BLK_S_IOERR;
	if (len == 0)
		return VIRTIO_BLK_S_OK;
	int n = is_write ? iov_slice(req->iov, req->nout, sizeof(*h), len, b->data, VIRTQ_MAX_SEGS)
			 : iov_slice(req->iov + req->nout, req->nin, 0, len, b->data, VIRTQ_MAX_SEGS);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	uint64_t off = h->sector * SECTOR;
	rate_limiter_take(&b->limit, len, &b->stopping);
	int rc = is_write ? disk_pwritev(b->disk, b->data, n, off)
			  : disk_preadv(b->disk, b->data, n, off);
	if (rc)
		return VIRTIO_BLK_S_IOERR;
	if (is_write) {
		atomic_fetch_add_explicit(&b->write_bytes, len, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->write_count, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&b->read_bytes, len, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->read_count, 1, memory_order_relaxed);
		*written += (uint32_t)len;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_ranges(struct virtio_blk *b, struct virtq_req *req, const struct blk_hdr *h)
{
	bool discard = h->type == VIRTIO_BLK_T_DISCARD;
	uint64_t len = req->out_len - sizeof(struct blk_hdr);
	if (b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len == 0 || len % sizeof(struct blk_range) ||
	    len / sizeof(struct blk_range) > BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	unsigned nr = (unsigned)(len / sizeof(struct blk_range));
	struct blk_range r[BLK_MAX_DISCARD_SEG];
	if (virtq_req_read(req, sizeof(struct blk_hdr), r, len) != len)
		return VIRTIO_BLK_S_IOERR;
	/* Check every range before touching the disk. */
	for (unsigned i = 0; i < nr; i++) {
		/* 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
		if (r[i].flags & ~(uint32_t)VIRTIO_BLK_WZ_F_UNMAP)
			return VIRTIO_BLK_S_UNSUPP;
		if (discard && (r[i].flags & VIRTIO_BLK_WZ_F_UNMAP))
			return VIRTIO_BLK_S_UNSUPP;
		if (r[i].num_sectors > BLK_MAX_DISCARD_SECTORS ||
		    !range_ok(b, r[i].sector, r[i].num_sectors))
			return VIRTIO_BLK_S_IOERR;
	}
	for (unsigned i = 0; i < nr; i++) {
		uint64_t off = r[i].sector * SECTOR, n = (uint64_t)r[i].num_sectors * SECTOR;
		if (n == 0)
			continue;
		int rc = discard ? disk_discard(b->disk, off, n) : disk_write_zeroes(b->disk, off, n);
		/* Discard is a hint: a backend that cannot deallocate is fine. */
		if (rc && !(discard && rc == -EOPNOTSUPP))
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint32_t blk_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	(void)vq;
	struct virtio_blk *b = (struct virtio_blk *)dev;
	struct blk_hdr h;
	uint32_t written = 0;
	uint8_t status;

	if (req->in_len < 1)
		return 0;   /* no status byte: nothing can be reported */
	if (virtq_req_read(req, 0, &h, sizeof(h)) != sizeof(h)) {
		status = VIRTIO_BLK_S_IOERR;
		goto done;
	}
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		status = blk_rw(b, req, &h, &written);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = b->read_only || disk_flush(b->disk) == 0 ? VIRTIO_BLK_S_OK
								  : VIRTIO_BLK_S_IOERR;
		atomic_fetch_add_explicit(&b->flush_count, 1, memory_order_relaxed);
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t room = req->in_len - 1;
		size_t n = room < VIRTIO_BLK_ID_BYTES ? (size_t)room : VIRTIO_BLK_ID_BYTES;
		written += (uint32_t)virtq_req_write(req, 0, b->id, n);
		status = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (b->read_only) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		status = blk_ranges(b, req, &h);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
done:
	virtq_req_write(req, req->in_len - 1, &status, 1);
	return written + 1;
}

static void blk_process(struct virtio_dev *dev, struct virtq *vq)
{
	virtio_dev_serve(dev, vq, blk_request);
}

static bool blk_config_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value)
{
	struct virtio_blk *b = (struct virtio_blk *)dev;
	*value = virtio_config_get(b->config, sizeof(b->config), off, size);
	return true;
}

static bool blk_config_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value)
{
	/* writeback is only writable with CONFIG_WCE, which is not offered. */
	return true;
}

/* Snapshots: the queue lock is held, so no request is in flight (each is
 * served whole under it); what the guest wrote is flushed to the image.
 * The state is the disk's shape, checked against the disk the restored VM
 * opens (the image itself is not part of the snapshot and must be the
 * same file, unchanged). */
static int blk_save(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		 char *err, size_t errlen)
{
	struct virtio_blk *b = (struct virtio_blk *)dev;
	if (!b->read_only)
		disk_flush(b->disk);
	snap_put_u64(w, b->capacity);
	snap_put_u8(w, b->read_only);
	return 0;
}

static void blk_load(struct virtio_dev *dev, struct snap_reader *r)
{
	struct virtio_blk *b = (struct virtio_blk *)dev;
	uint64_t cap = snap_get_u64(r);
	uint8_t ro = snap_get_u8(r);
	if (!r->overrun && (cap != b->capacity || ro != b->read_only))
		snap_reader_fail(r, "the drive had %llu sectors%s when the snapshot was taken; "
				 "its image now has %llu%s",
				 (unsigned long long)cap, ro ? " (read-only)" : "",
				 (unsigned long long)b->capacity, b->read_only ? " (read-only)" : "");
}

static const struct virtio_dev_ops blk_ops = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.queue_process = blk_process,
	.save_version = 1,
	.save = blk_save,
	.load = blk_load,
};

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

struct virtio_blk *virtio_blk_create(struct gram *ram, struct disk *disk,
				     const char *serial, char *err, size_t errlen)
{
	if (serial && strlen(serial) > VIRTIO_BLK_ID_BYTES) {
		snprintf(err, errlen, "virtio-blk: serial \"%s\" is longer than %u bytes",
			 serial, VIRTIO_BLK_ID_BYTES);
		return NULL;
	}
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "virtio-blk: out of memory");
		return NULL;
	}
	b->disk = disk;
	rate_limiter_init(&b->limit);
	b->read_only = disk_read_only(disk);
	b->capacity = disk_size(disk) / SECTOR;
	if (serial)
		memcpy(b->id, serial, strlen(serial));

	uint64_t features = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
			    (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH);
	if (b->read_only)
		features |= 1ull << VIRTIO_BLK_F_RO;
	else
		features |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

	put64(b->config + CFG_CAPACITY, b->capacity);
	put32(b->config + CFG_SIZE_MAX, BLK_SIZE_MAX);
	put32(b->config + CFG_SEG_MAX, BLK_SEG_MAX);
	put32(b->config + CFG_BLK_SIZE, SECTOR);
	b->config[CFG_NUM_QUEUES] = 1;
	if (!b->read_only) {
		put32(b->config + CFG_MAX_DISCARD_SECTORS, BLK_MAX_DISCARD_SECTORS);
		put32(b->config + CFG_MAX_DISCARD_SEG, BLK_MAX_DISCARD_SEG);
		put32(b->config + CFG_DISCARD_ALIGN, BLK_DISCARD_ALIGN);
		put32(b->config + CFG_MAX_WZ_SECTORS, BLK_MAX_DISCARD_SECTORS);
		put32(b->config + CFG_MAX_WZ_SEG, BLK_MAX_DISCARD_SEG);
		/* The backend's write_zeroes may or may not deallocate; the
		 * field is a hint (5.2.4), leave it 0. */
		b->config[CFG_WZ_MAY_UNMAP] = 0;
	}

	uint16_t qsize = BLK_QUEUE_SIZE;
	if (virtio_dev_init(&b->dev, &blk_ops, ram, features, 1, &qsize, err, errlen)) {
		rate_limiter_destroy(&b->limit);
		free(b);
		return NULL;
	}
	if (virtio_dev_start(&b->dev, err, errlen)) {
		virtio_dev_fini(&b->dev);
		rate_limiter_destroy(&b->limit);
		free(b);
		return NULL;
	}
	return b;
}

int virtio_blk_replace_disk(struct virtio_blk *b, struct disk *disk, struct disk **old,
			    char *err, size_t errlen)
{
	if (disk_read_only(disk) != b->read_only) {
		snprintf(err, errlen, "virtio-blk: the new image is %s, the drive %s",
			 disk_read_only(disk) ? "read-only" : "writable",
			 b->read_only ? "read-only" : "writable");
		return -1;
	}
	/* Each request is served start to finish under its queue's lock, so
	 * with the locks held none is in flight; one waiting for its rate
	 * limit would hold them up to a refill time or more, so it is let
	 * through (a swap is the user's act, once, not the guest's). */
	atomic_store(&b->stopping, true);
	virtio_dev_quiesce(&b->dev);
	atomic_store(&b->stopping, false);
	/* The guest's completed writes reach the old image's storage before
	 * it goes: a FLUSH it sends after this reaches only the new one. */
	if (!b->read_only)
		disk_flush(b->disk);
	*old = b->disk;
	b->disk = disk;
	b->capacity = disk_size(disk) / SECTOR;
	put64(b->config + CFG_CAPACITY, b->capacity);
	/* Under the transport lock, so a driver reading the 64-bit capacity
	 * in two halves sees ConfigGeneration change if it read across the
	 * swap (virtio 1.2 2.5.1 / 4.2.2: it reads the generation around
	 * the fields and retries); then a configuration change notification
	 * (4.2.2, InterruptStatus bit 1), which Linux answers by reading the
	 * capacity again. */
	virtio_dev_config_changed(&b->dev);
	virtio_dev_unquiesce(&b->dev);
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	atomic_store(&b->stopping, true);
	virtio_dev_fini(&b->dev);
	rate_limiter_destroy(&b->limit);
	free(b);
}

void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *s)
{
	s->read_bytes = atomic_load(&b->read_bytes);
	s->write_bytes = atomic_load(&b->write_bytes);
	s->read_count = atomic_load(&b->read_count);
	s->write_count = atomic_load(&b->write_count);
	s->flush_count = atomic_load(&b->flush_count);
	s->throttled = atomic_load(&b->limit.bytes.throttled) + atomic_load(&b->limit.ops.throttled);
}

struct rate_limiter *virtio_blk_limiter(struct virtio_blk *b)
{
	return &b->limit;
}

struct virtio_dev *virtio_blk_dev(struct virtio_blk *b)
{
	return &b->dev;
}

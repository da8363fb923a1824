/*
 * The raw disk backend: the image file (or block device) is the disk, byte
 * for byte. Reads and writes are preadv/pwritev, flush is fdatasync, discard
 * punches a hole (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE; advisory, so a
 * file system without hole punching just ignores it), write-zeroes uses
 * FALLOC_FL_ZERO_RANGE and falls back to writing zeros. Opening and locking
 * are done by disk.c.
 */
#include "backend/disk/disk_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct raw {
	bool is_blk;
};

static int raw_preadv(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return disk_preadv_full(d->fd, iov, iovcnt, off);
}

static int raw_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return disk_pwritev_full(d->fd, iov, iovcnt, off);
}

static int raw_flush(struct disk *d)
{
	if (fdatasync(d->fd) < 0)
		return -errno;
	return 0;
}

static int raw_discard(struct disk *d, uint64_t off, uint64_t len)
{
	struct raw *r = d->priv;
	if (r->is_blk) {
		uint64_t range[2] = { off, len };
		if (ioctl(d->fd, BLKDISCARD, range) < 0 && errno != EOPNOTSUPP && errno != ENOTTY)
			return -errno;
		return 0;
	}
	if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0) {
		/* Discard is a hint: no support is not an error. */
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			return 0;
		return -errno;
	}
	return 0;
}

static int write_zeros_slow(int fd, uint64_t off, uint64_t len)
{
	size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
	void *z = calloc(1, chunk);
	if (!z)
		return -ENOMEM;
	int ret = 0;
	while (len > 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ret = disk_pwrite_full(fd, z, n, off);
		if (ret < 0)
			break;
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}

static int raw_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
	struct raw *r = d->priv;
	if (r->is_blk) {
		uint64_t range[2] = { off, len };
		if (ioctl(d->fd, BLKZEROOUT, range) == 0)
			return 0;
	} else if (fallocate(d->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			     (off_t)off, (off_t)len) == 0) {
		return 0;
	}
	return write_zeros_slow(d->fd, off, len);
}

static void raw_close(struct disk *d)
{
	free(d->priv);
	d->priv = NULL;
}

static void raw_describe(struct disk *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s: raw, %llu bytes%s", d->path, (unsigned long long)d->size,
		 d->read_only ? ", read-only" : "");
}

static const struct disk_ops raw_ops = {
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.close = raw_close,
	.describe = raw_describe,
};

int raw_open(struct disk *d, const struct stat *st, char *err, size_t errlen)
{
	struct raw *r = calloc(1, sizeof(*r));
	if (!r) {
		disk_err(err, errlen, d->path, "out of memory");
		return -ENOMEM;
	}
	r->is_blk = S_ISBLK(st->st_mode);
	if (r->is_blk) {
		uint64_t sz = 0;
		if (ioctl(d->fd, BLKGETSIZE64, &sz) < 0) {
			int e = errno;
			free(r);
			disk_err(err, errlen, d->path, "cannot get block device size: %s", strerror(e));
			return -e;
		}
		d->size = sz;
	} else {
		d->size = (uint64_t)st->st_size;
	}
	d->ops = &raw_ops;
	d->priv = r;
	return 0;
}

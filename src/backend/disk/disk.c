/*
 * Disk backends: opening an image in the format its caller names (file
 * checks, locking, backing-chain bookkeeping), the one format probe a
 * caller may ask for before any guest has run on an image, and dispatching
 * each call to its format (raw.c, qcow2.c). Also the small I/O and iovec
 * helpers the formats share.
 *
 * Locking: an image opened read-write holds an exclusive flock(2), one opened
 * read-only (including every backing file) a shared one, so two VMs cannot
 * write one image, nor can one VM write an image another uses as a base.
 * flock locks belong to the open file description, so this also holds
 * between two disks opened in the same process.
 */
#include "backend/disk/disk_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "backend/disk/qcow2_meta.h"

void disk_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", path ? path : "(image)", msg);
}

ssize_t disk_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int disk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EFBIG;
	while (done < len) {
		ssize_t r = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return 0;
}

int64_t disk_iov_len(const struct iovec *iov, int iovcnt)
{
	uint64_t total = 0;
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -1;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (uint64_t)INT64_MAX - total)
			return -1;
		total += iov[i].iov_len;
	}
	return (int64_t)total;
}

int disk_iov_slice(const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len,
		   struct iovec *out, int max)
{
	int n = 0;
	for (int i = 0; i < iovcnt && len > 0; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		uint64_t take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		if (n >= max)
			return -1;
		out[n].iov_base = (char *)iov[i].iov_base + off;
		out[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return len ? -1 : n;
}

/* Calls fn on each piece of iov covering [off, off + len). */
static void iov_walk(const struct iovec *iov, int iovcnt, uint64_t off, size_t len,
		     void (*fn)(void *iovp, size_t n, void *arg, size_t done), void *arg)
{
	size_t done = 0;
	for (int i = 0; i < iovcnt && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t take = iov[i].iov_len - off;
		if (take > len - done)
			take = len - done;
		fn((char *)iov[i].iov_base + off, take, arg, done);
		done += take;
		off = 0;
	}
}

static void walk_to_buf(void *p, size_t n, void *arg, size_t done)
{
	memcpy((char *)arg + done, p, n);
}

static void walk_from_buf(void *p, size_t n, void *arg, size_t done)
{
	memcpy(p, (const char *)arg + done, n);
}

static void walk_zero(void *p, size_t n, void *arg, size_t done)
{
	memset(p, 0, n);
}

void disk_iov_to_buf(const struct iovec *iov, int iovcnt, uint64_t off, void *buf, size_t len)
{
	iov_walk(iov, iovcnt, off, len, walk_to_buf, buf);
}

void disk_buf_to_iov(const struct iovec *iov, int iovcnt, uint64_t off, const void *buf, size_t len)
{
	iov_walk(iov, iovcnt, off, len, walk_from_buf, (void *)buf);
}

void disk_iov_zero(const struct iovec *iov, int iovcnt, uint64_t off, size_t len)
{
	iov_walk(iov, iovcnt, off, len, walk_zero, NULL);
}

/* Fills tmp (64 entries) with the iovecs from byte `skip` of iov on. */
static int iov_tail(const struct iovec *iov, int iovcnt, uint64_t skip, struct iovec *tmp)
{
	int k = 0;
	for (int i = 0; i < iovcnt && k < 64; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		tmp[k].iov_base = (char *)iov[i].iov_base + skip;
		tmp[k].iov_len = iov[i].iov_len - skip;
		skip = 0;
		k++;
	}
	return k;
}

/* preadv/pwritev until the whole vector is done. A read past the end of
 * the file reads zeros; a write that writes nothing is an I/O error. */
static int rw_full(int fd, const struct iovec *iov, int iovcnt, uint64_t off, bool write)
{
	int64_t total = disk_iov_len(iov, iovcnt);
	if (total < 0)
		return -EINVAL;
	if (off > (uint64_t)INT64_MAX || (uint64_t)total > (uint64_t)INT64_MAX - off)
		return write ? -EFBIG : -EINVAL;
	uint64_t done = 0;
	struct iovec tmp[64];
	while (done < (uint64_t)total) {
		int k = iov_tail(iov, iovcnt, done, tmp);
		ssize_t r = write ? pwritev(fd, tmp, k, (off_t)(off + done))
				  : preadv(fd, tmp, k, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			if (write)
				return -EIO;
			disk_iov_zero(iov, iovcnt, done, (size_t)((uint64_t)total - done));
			return 0;
		}
		done += (uint64_t)r;
	}
	return 0;
}

int disk_preadv_full(int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return rw_full(fd, iov, iovcnt, off, false);
}

int disk_pwritev_full(int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return rw_full(fd, iov, iovcnt, off, true);
}

int disk_probe_format(const char *path, struct disk_probe *out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!path || !*path) {
		disk_err(err, errlen, path, "empty file name");
		return -EINVAL;
	}
	/* O_NONBLOCK: a FIFO must not hang the probe (disk_open refuses it). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		disk_err(err, errlen, path, "cannot open: %s", strerror(e));
		return -e;
	}
	/* qcow2.txt: magic, version, backing_file_offset (8 bytes, 0 for
	 * none), backing_file_size (4 bytes). */
	uint8_t head[20];
	ssize_t r = disk_pread_full(fd, head, sizeof(head), 0);
	close(fd);
	if (r < 0) {
		disk_err(err, errlen, path, "cannot read: %s", strerror((int)-r));
		return (int)r;
	}
	memset(out, 0, sizeof(*out));
	out->format = DISK_FORMAT_RAW;
	if (r >= 4 && qcow2_be32(head) == QCOW2_MAGIC) {
		out->format = DISK_FORMAT_QCOW2;
		out->names_backing_file = r == (ssize_t)sizeof(head) && qcow2_be64(head + 8) != 0 &&
					  qcow2_be32(head + 16) != 0;
	}
	return 0;
}

int disk_open_chain(const char *path, int fd, enum disk_format fmt, bool read_only,
		    const struct disk_chain *chain, struct disk **out,
		    char *err, size_t errlen)
{
	*out = NULL;
	int ret;
	if (!path || !*path) {
		disk_err(err, errlen, path, "empty file name");
		ret = -EINVAL;
		goto fail;
	}
	if (fmt != DISK_FORMAT_RAW && fmt != DISK_FORMAT_QCOW2) {
		disk_err(err, errlen, path, "no image format given (an image's format is never "
			 "guessed when it is opened)");
		ret = -EINVAL;
		goto fail;
	}
	int depth = chain && chain->depth >= 0 ? chain->depth + 1 : 0;
	if (depth > DISK_MAX_CHAIN) {
		disk_err(err, errlen, path, "backing chain is deeper than %d images", DISK_MAX_CHAIN);
		ret = -ELOOP;
		goto fail;
	}
	/* O_NONBLOCK so that a FIFO named as an image (or backing file) cannot
	 * hang the open; anything but a regular file or block device is
	 * refused below. */
	if (fd < 0)
		fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		disk_err(err, errlen, path, "cannot open: %s", strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		disk_err(err, errlen, path, "cannot stat: %s", strerror(-ret));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = -EINVAL;
		disk_err(err, errlen, path, "not a regular file or block device");
		goto fail;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		ret = -errno;
		disk_err(err, errlen, path, "fcntl: %s", strerror(-ret));
		goto fail;
	}
	if (chain) {
		for (int i = 0; i < depth; i++) {
			if (chain->dev[i] == st.st_dev && chain->ino[i] == st.st_ino) {
				ret = -ELOOP;
				disk_err(err, errlen, path, "backing chain loops: this file is already in the chain");
				goto fail;
			}
		}
	}
	if (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK) {
			ret = -EBUSY;
			disk_err(err, errlen, path, read_only ?
				 "image is locked: opened read-write by someone else" :
				 "image is locked: already in use by someone else");
		} else {
			disk_err(err, errlen, path, "flock: %s", strerror(-ret));
		}
		goto fail;
	}
	struct disk *d = calloc(1, sizeof(*d));
	char *p = strdup(path);
	if (!d || !p) {
		free(d);
		free(p);
		ret = -ENOMEM;
		disk_err(err, errlen, path, "out of memory");
		goto fail;
	}
	d->fd = fd;
	d->path = p;
	d->read_only = read_only;
	d->format = fmt;

	struct disk_chain mine;
	memset(&mine, 0, sizeof(mine));
	if (chain)
		mine = *chain;
	mine.depth = depth;
	mine.dev[depth] = st.st_dev;
	mine.ino[depth] = st.st_ino;

	if (fmt == DISK_FORMAT_QCOW2)
		ret = qcow2_open(d, &st, &mine, err, errlen);
	else
		ret = raw_open(d, &st, err, errlen);
	if (ret < 0) {
		free(d->path);
		free(d);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* A top-level image, from `fd` (owned from here on) or from `path` when
 * fd is -1, with its backing chain when opts allow one. */
static int open_top(const char *path, int fd, const struct disk_open_opts *opts,
		    struct disk **out, char *err, size_t errlen)
{
	if (!opts->backing || !path || !*path)
		return disk_open_chain(path, fd, opts->format, opts->read_only, NULL, out, err, errlen);
	/* The roots live while the chain opens; the images keep only their
	 * own descriptors. */
	struct disk_roots roots;
	int ret = disk_roots_init(&roots, path, opts, err, errlen);
	if (ret < 0) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	struct disk_chain top = { .depth = -1, .roots = &roots };
	ret = disk_open_chain(path, fd, opts->format, opts->read_only, &top, out, err, errlen);
	disk_roots_free(&roots);
	return ret;
}

int disk_open(const char *path, const struct disk_open_opts *opts,
	      struct disk **out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!opts) {
		disk_err(err, errlen, path, "no open options (format) given");
		return -EINVAL;
	}
	return open_top(path, -1, opts, out, err, errlen);
}

int disk_open_successor(const struct disk *cur, const char *path, const struct disk_open_opts *opts,
			struct disk **out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!out || !opts)
		return -EINVAL;
	*out = NULL;
	struct stat now, named;
	bool same = cur && path && fstat(cur->fd, &now) == 0 && stat(path, &named) == 0 &&
		    now.st_dev == named.st_dev && now.st_ino == named.st_ino;
	/* Another file, or this one read-only (shared locks do not clash):
	 * an ordinary open. */
	if (!same || (cur->read_only && opts->read_only))
		return open_top(path, -1, opts, out, err, errlen);
	if (cur->read_only != opts->read_only) {
		disk_err(err, errlen, path, "is open here %s already; it is not opened %s beside that",
			 cur->read_only ? "read-only" : "for writing",
			 opts->read_only ? "read-only" : "for writing");
		return -EBUSY;
	}
	if (cur->format == DISK_FORMAT_QCOW2) {
		disk_err(err, errlen, path, "is open here as a writable qcow2 image; it is not "
			 "opened a second time beside that (the two would keep separate copies of "
			 "its metadata)");
		return -EBUSY;
	}
	int fd = fcntl(cur->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		disk_err(err, errlen, path, "cannot duplicate its descriptor: %s", strerror(e));
		return -e;
	}
	return open_top(path, fd, opts, out, err, errlen);
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	if (d->ops && d->ops->close)
		d->ops->close(d);
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d);
}

uint64_t disk_size(const struct disk *d)
{
	return d->size;
}

bool disk_read_only(const struct disk *d)
{
	return d->read_only;
}

enum disk_format disk_format(const struct disk *d)
{
	return d->format;
}

/* Checks a request against the disk: a write (or discard) to a writable
 * disk, the range inside the disk. 0, -EROFS or -EINVAL. */
static int check_request(const struct disk *d, bool write, uint64_t off, uint64_t len)
{
	if (write && d->read_only)
		return -EROFS;
	if (off > d->size || len > d->size - off)
		return -EINVAL;
	return 0;
}

int disk_preadv(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off)
{
	int64_t len = disk_iov_len(iov, iovcnt);
	int r = len < 0 ? -EINVAL : check_request(d, false, off, (uint64_t)len);
	if (r || len == 0)
		return r;
	return d->ops->preadv(d, iov, iovcnt, off);
}

int disk_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off)
{
	if (d->read_only)
		return -EROFS;
	int64_t len = disk_iov_len(iov, iovcnt);
	int r = len < 0 ? -EINVAL : check_request(d, true, off, (uint64_t)len);
	if (r || len == 0)
		return r;
	return d->ops->pwritev(d, iov, iovcnt, off);
}

int disk_flush(struct disk *d)
{
	if (d->read_only)
		return 0;
	return d->ops->flush(d);
}

int disk_discard(struct disk *d, uint64_t off, uint64_t len)
{
	int r = check_request(d, true, off, len);
	if (r || len == 0)
		return r;
	return d->ops->discard(d, off, len);
}

int disk_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
	int r = check_request(d, true, off, len);
	if (r || len == 0)
		return r;
	return d->ops->write_zeroes(d, off, len);
}

void disk_describe(struct disk *d, char *buf, size_t len)
{
	if (!buf || !len)
		return;
	if (d->ops->describe) {
		d->ops->describe(d, buf, len);
		return;
	}
	snprintf(buf, len, "%s: %s, %llu bytes%s", d->path,
		 d->format == DISK_FORMAT_QCOW2 ? "qcow2" : "raw",
		 (unsigned long long)d->size, d->read_only ? ", read-only" : "");
}

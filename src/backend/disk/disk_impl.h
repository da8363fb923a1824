/*
 * Internals shared by the disk backends (disk.c, raw.c, qcow2*.c): the
 * struct behind the opaque `struct disk`, the table of operations each format
 * fills in, and the helpers for opening files (locking, backing-chain loop
 * detection) and for slicing iovec arrays. Not for use outside
 * src/backend/disk/ and its tests.
 */
#ifndef SKIFF_BACKEND_DISK_IMPL_H
#define SKIFF_BACKEND_DISK_IMPL_H

#include <stdarg.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backend/disk/disk.h"

/* Deepest backing chain accepted (the top image counts as level 0). */
#define DISK_MAX_CHAIN 16

struct disk_ops {
	int (*preadv)(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off);
	int (*pwritev)(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off);
	int (*flush)(struct disk *d);
	int (*discard)(struct disk *d, uint64_t off, uint64_t len);
	int (*write_zeroes)(struct disk *d, uint64_t off, uint64_t len);
	void (*close)(struct disk *d);
	/* One line for humans: format details, backing file. May be NULL. */
	void (*describe)(struct disk *d, char *buf, size_t len);
};

struct disk {
	const struct disk_ops *ops;
	enum disk_format format;
	bool read_only;
	uint64_t size;  /* virtual size in bytes */
	int fd;         /* the image file; closed by disk_close() */
	char *path;     /* as given to open, for messages */
	void *priv;     /* format state */
};

/* The roots beneath which a chain's backing files resolve (backing.c):
 * the top image's directory first, then the user's backing directories;
 * a root with fd -1 is a block device the user named. */
#define DISK_MAX_ROOTS (1 + DISK_MAX_BACKING_DIRS)

struct disk_roots {
	unsigned n;
	int fd[DISK_MAX_ROOTS];     /* O_PATH directory, or -1 */
	char *path[DISK_MAX_ROOTS]; /* canonical */
	char *top;                  /* the top image's canonical path */
};

int disk_roots_init(struct disk_roots *r, const char *top, const struct disk_open_opts *o,
		    char *err, size_t errlen);
void disk_roots_free(struct disk_roots *r);
/* Opens backing file `name` named by the image at `from` (an absolute
 * path) read-only beneath the roots; the joined name goes to `full`.
 * Returns the descriptor, or -errno with err naming the file. */
int disk_roots_open(const struct disk_roots *r, const char *from, const char *name,
		    char *full, size_t fulllen, char *err, size_t errlen);

/* The files already open above an image in its backing chain, to refuse
 * loops (same device and inode twice) and chains that are too deep, and
 * where its backing files may come from (NULL: they are not followed). */
struct disk_chain {
	int depth;
	dev_t dev[DISK_MAX_CHAIN + 1];
	ino_t ino[DISK_MAX_CHAIN + 1];
	const struct disk_roots *roots;
};

/* Open one image of a chain: `fd` already open on it (read-only for a
 * backing file), or -1 to open `path`. `chain` is NULL for a top-level
 * image whose backing files are not followed. */
int disk_open_chain(const char *path, int fd, enum disk_format fmt, bool read_only,
		    const struct disk_chain *chain, struct disk **out,
		    char *err, size_t errlen);

/* Format openers: fill d->ops, d->size, d->priv. d->fd is open already. */
int raw_open(struct disk *d, const struct stat *st, char *err, size_t errlen);
int qcow2_open(struct disk *d, const struct stat *st, const struct disk_chain *chain,
	       char *err, size_t errlen);

/* Writes "path: message" into err. */
void disk_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* pread/pwrite that loop over short transfers. pread_full returns the bytes
 * read (less than len only at end of file) or -errno; pwrite_full returns 0
 * or -errno. */
ssize_t disk_pread_full(int fd, void *buf, size_t len, uint64_t off);
int disk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* Same for iovec arrays; preadv fills anything past end of file with zeros. */
int disk_preadv_full(int fd, const struct iovec *iov, int iovcnt, uint64_t off);
int disk_pwritev_full(int fd, const struct iovec *iov, int iovcnt, uint64_t off);

/* Total length of an iovec array; -1 on overflow or bad count. */
int64_t disk_iov_len(const struct iovec *iov, int iovcnt);
/* Builds in `out` (room for `max` entries) the iovecs covering bytes
 * [off, off + len) of `iov`. Returns the count, or -1 if `max` is too small
 * or the range runs past the end. */
int disk_iov_slice(const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len,
		   struct iovec *out, int max);
void disk_iov_to_buf(const struct iovec *iov, int iovcnt, uint64_t off, void *buf, size_t len);
void disk_buf_to_iov(const struct iovec *iov, int iovcnt, uint64_t off, const void *buf, size_t len);
void disk_iov_zero(const struct iovec *iov, int iovcnt, uint64_t off, size_t len);

#endif
